"""Pure-logic tests of the upload TTL (spec 4.3, with the fixes of spec 13.3-13.5)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from pyflink_jobs import common
from pyflink_jobs import ttl_expiry_processor as ttl
from pyflink_jobs.tests.fakes import FakeTimerService, states

GRACE = ttl.UPLOAD_TTL_GRACE_SECONDS


def signed(request_id="req-1", path="uploads/u1/abc/cat.png", expires_in=900, **extra):
    return {
        "user_id": "u1",
        "file_path": path,
        "file_name": "cat.png",
        "upload_url": "http://objects/put?sig=1",
        "expires_in": expires_in,
        "request_id": request_id,
        "signed_time": "2026-03-01T10:00:05+00:00",
        **extra,
    }


def approved(request_id="req-1"):
    return {
        "user_id": "u1",
        "file_name": "cat.png",
        "media_type": "image/png",
        "file_size": 2048,
        "request_id": request_id,
        "request_time": "2026-03-01T10:00:00+00:00",
    }


def pending(request_id="req-1", path="uploads/u1/abc/cat.png", expires_in=900):
    return ttl.pending_upload(signed(request_id, path, expires_in), approved(request_id))


def new_ttl(**kwargs):
    signed_state, completed_state, deadline_state = states(3)
    logic = ttl.TTLExpiry(
        signed_state, completed_state, deadline_state,
        now_iso=lambda: "2026-03-01T10:20:05+00:00", **kwargs,
    )
    return logic, signed_state, completed_state


def new_join(**kwargs):
    approved_state, signed_state, deadline_state = states(3)
    return ttl.UploadDetailsJoin(approved_state, signed_state, deadline_state, **kwargs), approved_state, signed_state


# ---- settings -----------------------------------------------------------------------------


def test_defaults():
    assert ttl.UPLOAD_TTL_SECONDS == 900
    assert ttl.UPLOAD_TTL_GRACE_SECONDS == 300
    assert ttl.settings({}) == {
        "default_ttl_seconds": 900, "grace_seconds": 300, "details_wait_seconds": 30,
    }


def test_settings_from_environment():
    config = ttl.settings(
        {"UPLOAD_TTL_SECONDS": "60", "UPLOAD_TTL_GRACE_SECONDS": "0", "UPLOAD_DETAILS_WAIT_SECONDS": "5"}
    )
    assert config == {"default_ttl_seconds": 60, "grace_seconds": 0, "details_wait_seconds": 5}
    with pytest.raises(common.ConfigError):
        ttl.settings({"UPLOAD_TTL_SECONDS": "soon"})


def test_staging_path_of_permanent_path():
    assert ttl.staging_path_of("files/u1/abc/cat.png") == "uploads/u1/abc/cat.png"
    assert ttl.staging_path_of("uploads/u1/abc/cat.png") == "uploads/u1/abc/cat.png"


# ---- signing: state and timer -------------------------------------------------------------


@pytest.mark.parametrize("now", [0, 5_000_000])
def test_signed_upload_stores_state_and_registers_one_timer(now):
    logic, signed_state, completed_state = new_ttl()
    timers = FakeTimerService(now)
    assert logic.on_pending_upload(pending(), timers) == []
    stored = json.loads(signed_state.value())
    assert (stored["user_id"], stored["file_path"], stored["request_id"]) == (
        "u1", "uploads/u1/abc/cat.png", "req-1",
    )
    assert timers.registered == [now + (900 + GRACE) * 1000]
    assert completed_state.value() is False


def test_timer_follows_the_urls_expires_in():
    logic, _, _ = new_ttl()
    timers = FakeTimerService(1000)
    logic.on_pending_upload(pending(expires_in=60), timers)
    assert timers.registered == [1000 + (60 + GRACE) * 1000]


@pytest.mark.parametrize("expires_in", [0, None, -5])
def test_missing_expires_in_falls_back_to_the_default_ttl(expires_in):
    logic, _, _ = new_ttl()
    timers = FakeTimerService(0)
    logic.on_pending_upload(pending(expires_in=expires_in), timers)
    assert timers.registered == [(900 + GRACE) * 1000]


def test_resigning_the_same_path_replaces_state_and_timer():
    logic, signed_state, _ = new_ttl()
    timers = FakeTimerService(0)
    logic.on_pending_upload(pending("req-1"), timers)
    timers.now = 10_000
    logic.on_pending_upload(pending("req-2"), timers)
    assert json.loads(signed_state.value())["request_id"] == "req-2"
    first, second = timers.registered
    assert timers.deleted == [first] and timers.pending() == [second]
    # the replaced timer, should it fire anyway, emits nothing (spec 13.3)
    assert timers.fire_anyway(first, logic.on_timer) == []
    expired = timers.advance(second, logic.on_timer)
    assert [e["request_id"] for e in expired] == ["req-2"]


# ---- completion ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["received", "confirmed"])
def test_completion_cancels_the_ttl(source):
    logic, signed_state, completed_state = new_ttl()
    timers = FakeTimerService(0)
    logic.on_pending_upload(pending(), timers)
    assert logic.on_completion({"staging_path": "uploads/u1/abc/cat.png", "source": source}, timers) == []
    assert signed_state.value() is None and completed_state.value() is None
    assert timers.pending() == []
    assert timers.advance(10**9, logic.on_timer) == []


def test_timer_after_state_was_cleared_emits_nothing():
    """Spec 13.3: the original emitted an expiry for user "" (and so a refund to nobody)."""
    logic, _, _ = new_ttl()
    timers = FakeTimerService(0)
    logic.on_pending_upload(pending(), timers)
    (timer,) = timers.registered
    logic.on_completion({"staging_path": "uploads/u1/abc/cat.png", "source": "received"}, timers)
    assert timers.fire_anyway(timer, logic.on_timer) == []
    # and a timer for a key that never had state
    fresh, _, _ = new_ttl()
    assert fresh.on_timer(123, FakeTimerService(200)) == []


def test_completion_before_signing_prevents_the_ttl():
    logic, signed_state, completed_state = new_ttl()
    timers = FakeTimerService(0)
    logic.on_completion({"staging_path": "uploads/u1/abc/cat.png", "source": "received"}, timers)
    assert completed_state.value() is True
    assert logic.on_pending_upload(pending(), timers) == []
    assert signed_state.value() is None and completed_state.value() is None
    assert timers.pending() == []


def test_completion_without_signing_is_forgotten_after_the_retention():
    """Spec 13.3: an upload.received without signed event (legacy path) no longer keeps a
    completion flag forever."""
    logic, _, completed_state = new_ttl()
    timers = FakeTimerService(0)
    logic.on_completion({"staging_path": "uploads/u1/abc/cat.png", "source": "received"}, timers)
    assert timers.pending() == [ttl.ORPHAN_RETENTION_SECONDS * 1000]
    # a second completion (received, then confirmed) keeps the one timer
    logic.on_completion({"staging_path": "uploads/u1/abc/cat.png", "source": "confirmed"}, timers)
    assert len(timers.pending()) == 1
    assert timers.advance(10**9, logic.on_timer) == []
    assert completed_state.value() is None


# ---- expiry -------------------------------------------------------------------------------


def test_expiry_without_completion_emits_the_expired_event():
    logic, signed_state, completed_state = new_ttl()
    timers = FakeTimerService(0)
    logic.on_pending_upload(pending(), timers)
    (expired,) = timers.advance(10**9, logic.on_timer)
    assert expired == {
        "user_id": "u1",
        "file_path": "uploads/u1/abc/cat.png",
        "file_name": "cat.png",
        "file_size": 2048,            # spec 13.4: from the approval, no longer 0
        "media_type": "image/png",    # spec 13.4: no longer ""
        "request_id": "req-1",
        "request_time": "2026-03-01T10:00:00+00:00",  # the intent's time, not signed_time
        "expired_time": "2026-03-01T10:20:05+00:00",
    }
    assert signed_state.value() is None and completed_state.value() is None


def test_expired_time_is_iso_with_timezone():
    signed_state, completed_state, deadline_state = states(3)
    logic = ttl.TTLExpiry(signed_state, completed_state, deadline_state)
    timers = FakeTimerService(0)
    logic.on_pending_upload(pending(), timers)
    (expired,) = timers.advance(10**9, logic.on_timer)
    assert datetime.fromisoformat(expired["expired_time"]).tzinfo is not None


def test_expired_event_has_the_sink_columns():
    logic, _, _ = new_ttl()
    timers = FakeTimerService(0)
    logic.on_pending_upload(pending(), timers)
    (expired,) = timers.advance(10**9, logic.on_timer)
    assert list(expired) == [c.name for c in common.UPLOAD_EXPIRED]


# ---- details join (approved + signed, keyed by request_id) ----------------------------------


def test_approved_then_signed_gives_the_pending_upload_with_details():
    join, approved_state, signed_state = new_join()
    timers = FakeTimerService(0)
    assert join.on_approved(approved(), timers) == []
    (out,) = join.on_signed(signed(), timers)
    assert out == {
        **signed(), "file_size": 2048, "media_type": "image/png",
        "request_time": "2026-03-01T10:00:00+00:00",
    }
    assert list(out) == [c.name for c in ttl.PENDING_UPLOAD]
    assert approved_state.value() is None and signed_state.value() is None
    assert timers.pending() == []


def test_signed_then_approved_gives_the_same_pending_upload():
    join, _, _ = new_join()
    timers = FakeTimerService(0)
    assert join.on_signed(signed(), timers) == []
    (out,) = join.on_approved(approved(), timers)
    assert out["file_size"] == 2048 and out["media_type"] == "image/png"
    assert timers.pending() == []


def test_signed_without_approval_goes_on_after_the_wait():
    join, _, signed_state = new_join(details_wait_seconds=30)
    timers = FakeTimerService(0)
    join.on_signed(signed(), timers)
    assert timers.pending() == [30_000]
    (out,) = timers.advance(30_000, join.on_timer)
    assert (out["file_size"], out["media_type"], out["request_time"]) == (
        0, "", "2026-03-01T10:00:05+00:00",
    )
    assert signed_state.value() is None


def test_approval_without_signing_is_dropped_after_the_retention():
    join, approved_state, _ = new_join(orphan_retention_seconds=100)
    timers = FakeTimerService(0)
    join.on_approved(approved(), timers)
    assert timers.pending() == [100_000]
    assert timers.advance(10**9, join.on_timer) == []
    assert approved_state.value() is None


def test_join_ignores_stale_timers():
    join, _, _ = new_join()
    timers = FakeTimerService(0)
    join.on_signed(signed(), timers)
    (timer,) = timers.registered
    join.on_approved(approved(), timers)
    assert timers.fire_anyway(timer, join.on_timer) == []


def test_full_path_approved_signed_expired():
    join, _, _ = new_join()
    logic, _, _ = new_ttl()
    timers = FakeTimerService(0)
    join.on_approved(approved(), timers)
    (out,) = join.on_signed(signed(expires_in=60), timers)
    logic.on_pending_upload(out, timers)
    (expired,) = timers.advance(10**9, logic.on_timer)
    assert expired["file_size"] == 2048 and expired["request_time"] == "2026-03-01T10:00:00+00:00"
