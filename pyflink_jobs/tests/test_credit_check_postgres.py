"""The credit check's deduction against the real PostgreSQL with the real schema: the
conditional insert, idempotency per request_id, the deduction notification, and concurrent
intents of one user (balance 1, two intents at once -> exactly one approval)."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from pyflink_jobs import credit_check_processor as cc

pytestmark = pytest.mark.postgres

NOW = "2026-03-01T10:00:01+00:00"


def grant(conn, user_id, amount, key):
    conn.execute(
        "insert into public.credit_ledger (user_id, amount, event_type, description, event_time, idempotency_key)"
        " values (%s, %s, 'credit.signup_bonus', 'Welcome bonus: 2 credits', %s, %s)",
        [user_id, amount, NOW, key],
    )


def balance(conn, user_id):
    row = conn.execute(
        "select balance from public.user_credit_balances where user_id = %s", [user_id]
    ).fetchone()
    return row[0] if row else 0


def intent(request_id, user_id="u1"):
    return {
        "user_id": user_id, "file_name": "cat.png", "media_type": "image/png",
        "file_size": 2048, "request_id": request_id,
        "request_time": "2026-03-01T10:00:00+00:00",
    }


def test_deduction_writes_ledger_row_and_notification(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        grant(conn, "u1", 2, "credit.signup_bonus:u1")
        ledger = cc.PostgresLedger(conninfo=fresh_db)
        assert ledger.deduct("u1", "cat.png", "req-1", NOW) == cc.Deduction(approved=True)
        ledger.close()
        row = conn.execute(
            "select user_id, amount, event_type, description, event_time"
            " from public.credit_ledger where idempotency_key = 'credit.upload_deducted:req-1'"
        ).fetchone()
        assert row == ("u1", -1, "credit.upload_deducted", "Upload: cat.png", NOW)
        user_id, event_type, payload, event_time = conn.execute(
            "select user_id, event_type, payload, event_time from public.user_notifications"
            " where idempotency_key = 'credit.balance_changed:upload_deducted:req-1'"
        ).fetchone()
        assert (user_id, event_type, event_time) == ("u1", "credit.balance_changed", NOW)
        assert json.loads(payload) == {
            "amount": -1, "reason": "upload_deducted", "file_name": "cat.png", "request_id": "req-1",
        }
        assert balance(conn, "u1") == 1


def test_redelivered_intent_never_deducts_twice(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        grant(conn, "u1", 1, "bonus")
        logic = cc.CreditCheck(cc.PostgresLedger(conninfo=fresh_db), now_iso=lambda: NOW)
        first = logic.process(intent("req-1"))
        again = logic.process(intent("req-1"))
        logic.ledger.close()
        assert first["outcome"] == "approved" and again == first
        assert balance(conn, "u1") == 0
        assert conn.execute(
            "select count(*) from public.credit_ledger where amount = -1"
        ).fetchone()[0] == 1
        assert conn.execute(
            "select count(*) from public.user_notifications where event_type = 'credit.balance_changed'"
        ).fetchone()[0] == 1


def test_no_credits_no_deduction(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        logic = cc.CreditCheck(cc.PostgresLedger(conninfo=fresh_db), now_iso=lambda: NOW)
        out = logic.process(intent("req-1", user_id="nobody"))
        assert (out["outcome"], out["reason"]) == ("rejected", "insufficient_credits")
        grant(conn, "u2", 1, "bonus-u2")
        assert logic.process(intent("a", "u2"))["outcome"] == "approved"
        assert logic.process(intent("b", "u2"))["outcome"] == "rejected"
        logic.ledger.close()
        assert conn.execute("select count(*) from public.credit_ledger where amount = -1").fetchone()[0] == 1
        assert balance(conn, "u2") == 0


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_intents_with_balance_one_approve_exactly_one(fresh_db, round_):
    """Two credit checks (separate connections, as two parallel operator instances would
    have) get an intent of the same user at the same moment; the balance covers one."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        grant(conn, "u1", 1, "bonus")
    barrier = threading.Barrier(2)
    results: dict[str, dict] = {}
    errors: list[BaseException] = []

    class BarrierLedger(cc.PostgresLedger):
        def deduct(self, *args):
            self.connect()  # connected before the race starts
            barrier.wait(timeout=10)
            return super().deduct(*args)

    def worker(request_id):
        ledger = BarrierLedger(conninfo=fresh_db)
        try:
            results[request_id] = cc.CreditCheck(ledger, now_iso=lambda: NOW).process(intent(request_id))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            ledger.close()

    threads = [threading.Thread(target=worker, args=(r,)) for r in ("req-a", "req-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    outcomes = sorted(r["outcome"] for r in results.values())
    assert outcomes == ["approved", "rejected"]
    rejected = next(r for r in results.values() if r["outcome"] == "rejected")
    assert rejected["reason"] == "insufficient_credits"
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert balance(conn, "u1") == 0
        assert conn.execute("select count(*) from public.credit_ledger where amount = -1").fetchone()[0] == 1


def test_the_readme_statement_alone_is_not_race_free(fresh_db):
    """Why the advisory lock: without it, two transactions that both read the balance before
    either commits both deduct (READ COMMITTED). Shown with two interleaved transactions."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        grant(conn, "u1", 1, "bonus")
    statement = (
        "insert into public.credit_ledger (user_id, amount, event_type, description, event_time, idempotency_key)"
        " select 'u1', -1, 'credit.upload_deducted', 'Upload: x', %s, %s"
        " where (select coalesce(sum(amount), 0) from public.credit_ledger where user_id = 'u1') >= 1"
        " on conflict (idempotency_key) do nothing returning id"
    )
    with psycopg.connect(fresh_db) as a, psycopg.connect(fresh_db) as b:
        assert a.execute(statement, [NOW, "k-a"]).fetchone() is not None
        assert b.execute(statement, [NOW, "k-b"]).fetchone() is not None  # a not committed yet
        a.commit()
        b.commit()
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert balance(conn, "u1") == -1


def original_deduction(conn, user_id, file_name, at):
    """A deduction as the original credit check wrote it: no key, its own processing time."""
    conn.execute(
        "insert into public.credit_ledger (user_id, amount, event_type, description, event_time)"
        " values (%s, -1, 'credit.upload_deducted', %s, %s)",
        [user_id, f"Upload: {file_name}", at],
    )


def test_an_intent_the_original_job_charged_is_not_charged_again(fresh_db):
    # The original job charged u1 for two intents of cat.png (10:00:00 and 10:05:00) just
    # before the cut-over, and for dog.png long before; the new job reads both cat.png intents
    # again, then a third that is new.
    requested = ["2026-03-01T10:00:00Z", "2026-03-01T10:05:00Z", "2026-03-01T10:06:00Z"]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        grant(conn, "u1", 5, "credit.signup_bonus:u1")
        original_deduction(conn, "u1", "dog.png", "2026-03-01T09:00:00.120+00:00")
        original_deduction(conn, "u1", "cat.png", "2026-03-01T10:00:00.250+00:00")
        original_deduction(conn, "u1", "cat.png", "2026-03-01T10:05:00.300+00:00")
        ledger = cc.PostgresLedger(conninfo=fresh_db)
        outcomes = [ledger.deduct("u1", "cat.png", f"req-{n}", NOW, at) for n, at in enumerate(requested)]
        # a redelivery of the new intent, and of a claimed one: nothing more
        outcomes += [ledger.deduct("u1", "cat.png", "req-2", NOW, requested[2]),
                     ledger.deduct("u1", "cat.png", "req-0", NOW, requested[0])]
        ledger.close()
        ledger_rows = conn.execute(
            "select description, event_time, idempotency_key from public.credit_ledger"
            " where amount < 0 order by id"
        ).fetchall()
        final = balance(conn, "u1")
    assert outcomes == [cc.Deduction(approved=True, duplicate=True)] * 2 + [
        cc.Deduction(approved=True)] + [cc.Deduction(approved=True, duplicate=True)] * 2
    assert ledger_rows == [
        ("Upload: dog.png", "2026-03-01T09:00:00.120+00:00", None),
        ("Upload: cat.png", "2026-03-01T10:00:00.250+00:00", "credit.upload_deducted:req-0"),
        ("Upload: cat.png", "2026-03-01T10:05:00.300+00:00", "credit.upload_deducted:req-1"),
        ("Upload: cat.png", NOW, "credit.upload_deducted:req-2"),
    ]
    assert final == 1


def test_an_older_original_deduction_is_not_taken_for_a_new_intent(fresh_db):
    # Charged by the original job at 09:59 for an intent before the cut-over; the same file
    # name asked for again at 10:00 is a new upload and is charged. So is one whose request
    # time does not parse (nothing to match it by).
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        grant(conn, "u1", 3, "credit.signup_bonus:u1")
        original_deduction(conn, "u1", "cat.png", "2026-03-01T09:59:00+00:00")
        ledger = cc.PostgresLedger(conninfo=fresh_db)
        assert ledger.deduct("u1", "cat.png", "req-new", NOW, "2026-03-01T10:00:00Z") == cc.Deduction(approved=True)
        assert ledger.deduct("u1", "cat.png", "req-odd", NOW, "not a time") == cc.Deduction(approved=True)
        ledger.close()
        keys = conn.execute(
            "select idempotency_key from public.credit_ledger where amount < 0 order by id"
        ).fetchall()
    assert keys == [(None,), ("credit.upload_deducted:req-new",), ("credit.upload_deducted:req-odd",)]
