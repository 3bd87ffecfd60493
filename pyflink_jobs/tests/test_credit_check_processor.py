"""Pure-logic tests of the credit check (spec 4.2): decisions, idempotency per request_id,
error handling. The real Postgres deduction is in test_credit_check_postgres.py."""

from __future__ import annotations

import pytest

from pyflink_jobs import common
from pyflink_jobs import credit_check_processor as cc

NOW = "2026-03-01T10:00:01+00:00"


def intent(request_id="req-1", user_id="u1"):
    return {
        "user_id": user_id,
        "file_name": "cat.png",
        "media_type": "image/png",
        "file_size": 2048,
        "request_id": request_id,
        "request_time": "2026-03-01T10:00:00+00:00",
    }


class MemoryLedger:
    """The ledger's contract in memory: one -1 row per key, only with a balance >= 1."""

    def __init__(self, balances=None, failures=0):
        self.balances = dict(balances or {})
        self.keys: set[str] = set()
        self.failures = failures
        self.calls = 0
        self.resets = 0

    def deduct(self, user_id, file_name, request_id, event_time, request_time=""):
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database went away")
        key = cc.deduction_key(request_id)
        if key in self.keys:
            return cc.Deduction(approved=True, duplicate=True)
        if self.balances.get(user_id, 0) >= 1:
            self.balances[user_id] -= 1
            self.keys.add(key)
            return cc.Deduction(approved=True)
        return cc.Deduction(approved=False)

    def reset(self):
        self.resets += 1


def check(ledger, **kwargs):
    return cc.CreditCheck(ledger, now_iso=lambda: NOW, sleep=lambda s: None, **kwargs)


def test_approval_carries_the_intent():
    out = check(MemoryLedger({"u1": 2})).process(intent())
    assert out == {
        "outcome": "approved",
        **intent(),
        "reason": "",
        "rejected_time": "",
    }
    assert list(out) == [c.name for c in cc.OUTPUT]


def test_rejection_without_credits():
    out = check(MemoryLedger({"u1": 0})).process(intent())
    assert out["outcome"] == "rejected"
    assert out["reason"] == "insufficient_credits"
    assert out["rejected_time"] == NOW
    assert {k: out[k] for k in ("user_id", "file_name", "media_type", "file_size", "request_id")} == {
        "user_id": "u1", "file_name": "cat.png", "media_type": "image/png", "file_size": 2048,
        "request_id": "req-1",
    }
    assert set(c.name for c in common.UPLOAD_REJECTED) <= set(out)


def test_redelivered_intent_is_approved_again_without_a_second_deduction():
    ledger = MemoryLedger({"u1": 1})
    logic = check(ledger)
    first = logic.process(intent())
    second = logic.process(intent())
    assert first == second and first["outcome"] == "approved"
    assert ledger.balances["u1"] == 0


def test_each_request_is_deducted_once():
    ledger = MemoryLedger({"u1": 2})
    logic = check(ledger)
    outcomes = [logic.process(intent(r))["outcome"] for r in ("a", "b", "a", "c", "b")]
    assert outcomes == ["approved", "approved", "approved", "rejected", "approved"]
    assert ledger.balances["u1"] == 0


def test_database_errors_are_retried_after_a_reconnect():
    ledger = MemoryLedger({"u1": 1}, failures=2)
    out = check(ledger, attempts=3).process(intent())
    assert out["outcome"] == "approved"
    assert (ledger.calls, ledger.resets) == (3, 2)


def test_persistent_database_errors_reject_with_internal_error():
    ledger = MemoryLedger({"u1": 1}, failures=10)
    out = check(ledger, attempts=3).process(intent())
    assert (out["outcome"], out["reason"], out["rejected_time"]) == ("rejected", "internal_error", NOW)
    assert ledger.calls == 3


def test_retries_back_off_doubling_and_span_a_database_restart_by_default():
    # A chaos run's database restart takes 2-3 s: the default attempts must outlast it rather
    # than reject an upload for a blip.
    pauses = []
    ledger = MemoryLedger({"u1": 1}, failures=10)
    cc.CreditCheck(ledger, now_iso=lambda: NOW, sleep=pauses.append).process(intent())
    assert pauses == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert ledger.calls == cc.DEFAULT_ATTEMPTS
    assert sum(pauses) >= 10


@pytest.mark.parametrize("missing", ["user_id", "request_id"])
def test_intent_without_ids_is_rejected_without_touching_the_ledger(missing):
    ledger = MemoryLedger({"u1": 5})
    bad = {**intent(), missing: ""}
    out = check(ledger).process(bad)
    assert (out["outcome"], out["reason"]) == ("rejected", "internal_error")
    assert ledger.calls == 0


def test_idempotency_keys():
    assert cc.deduction_key("r-9") == "credit.upload_deducted:r-9"
    assert cc.notification_key("r-9") == "credit.balance_changed:upload_deducted:r-9"


def test_db_settings_defaults_and_environment():
    assert cc.db_settings({}) == {
        "SUPABASE_DB_HOST": "host.docker.internal",
        "SUPABASE_DB_PORT": "54322",
        "SUPABASE_DB_NAME": "postgres",
        "SUPABASE_DB_USER": "postgres",
        "SUPABASE_DB_PASSWORD": "postgres",
    }
    assert cc.db_settings({"SUPABASE_DB_HOST": "db"})["SUPABASE_DB_HOST"] == "db"


def test_output_row_values():
    out = check(MemoryLedger({"u1": 0})).process(intent())
    values = common.dict_to_values(out, cc.OUTPUT)
    assert values == ["rejected", "u1", "cat.png", "image/png", 2048, "req-1", "",
                      "insufficient_credits", NOW]
