"""Pure-logic tests of the move saga (spec 4.4)."""

from __future__ import annotations

import json

import pytest

from pyflink_jobs import common
from pyflink_jobs import move_saga_processor as saga
from pyflink_jobs.tests.fakes import FakeTimerService, states

NOW_ISO = "2026-03-01T10:02:00+00:00"


def received(retry_count=0, permanent="files/u1/abc/cat.png"):
    return {
        "user_id": "u1",
        "email": "u1@example.com",
        "file_path": "uploads/u1/abc/cat.png",
        "file_name": "cat.png",
        "file_size": 2048,
        "media_type": "image/png",
        "upload_time": "2026-03-01T10:01:00+00:00",
        "permanent_path": permanent,
        "retry_count": retry_count,
    }


READY = {"file_path": "files/u1/abc/cat.png", "file_size": 2048, "upload_time": "2026-03-01T10:01:02+00:00"}

CONFIRMED = {
    "_type": "confirmed",
    "user_id": "u1",
    "email": "u1@example.com",
    "file_path": "files/u1/abc/cat.png",
    "file_name": "cat.png",
    "file_size": 2048,
    "media_type": "image/png",
    "upload_time": "2026-03-01T10:01:00+00:00",
}


def new_saga(timeout_seconds=saga.DEFAULT_MOVE_TIMEOUT_SECONDS):
    received_state, ready_state, deadline_state = states(3)
    logic = saga.MoveSaga(
        received_state, ready_state, deadline_state, timeout_seconds=timeout_seconds,
        now_iso=lambda: NOW_ISO,
    )
    return logic, received_state, ready_state


# ---- configuration ------------------------------------------------------------------------


def test_constants():
    assert saga.MAX_RETRIES == 3
    assert saga.DEFAULT_MOVE_TIMEOUT_SECONDS == 10
    assert saga.MAX_RETRIES_REASON == "max retries exceeded"


def test_timeout_comes_from_the_environment_with_one_default(monkeypatch):
    monkeypatch.delenv("MOVE_TIMEOUT_SECONDS", raising=False)
    assert saga.move_timeout_seconds() == saga.DEFAULT_MOVE_TIMEOUT_SECONDS
    assert saga.move_timeout_seconds({}) == 10
    assert saga.move_timeout_seconds({"MOVE_TIMEOUT_SECONDS": "120"}) == 120
    # read when the job is built, not when the module is imported
    monkeypatch.setenv("MOVE_TIMEOUT_SECONDS", "42")
    assert saga.move_timeout_seconds() == 42
    for bad in ("0", "-1", "ten"):
        with pytest.raises(common.ConfigError):
            saga.move_timeout_seconds({"MOVE_TIMEOUT_SECONDS": bad})


# ---- elements -----------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [10, 120])
def test_received_stores_state_and_registers_one_timer(timeout):
    logic, received_state, _ = new_saga(timeout)
    timers = FakeTimerService(7_000)
    assert logic.on_received(received(), timers) == []
    assert json.loads(received_state.value()) == received()
    assert timers.registered == [7_000 + timeout * 1000]


def test_ready_sets_the_flag():
    logic, _, ready_state = new_saga()
    timers = FakeTimerService(0)
    assert logic.on_file_ready(READY, timers) == []
    assert ready_state.value() is True


def test_received_then_ready_confirms_at_once():
    logic, received_state, ready_state = new_saga()
    timers = FakeTimerService(0)
    logic.on_received(received(), timers)
    assert logic.on_file_ready(READY, timers) == [CONFIRMED]
    assert list(CONFIRMED)[1:] == [c.name for c in common.UPLOAD_CONFIRMED]
    assert received_state.value() is None and ready_state.value() is None


def test_ready_then_received_confirms_at_once():
    logic, received_state, ready_state = new_saga()
    timers = FakeTimerService(0)
    logic.on_file_ready(READY, timers)
    assert logic.on_received(received(), timers) == [CONFIRMED]
    assert received_state.value() is None and ready_state.value() is None
    assert timers.pending() == []


def test_fast_path_clears_state_and_a_later_timer_yields_nothing():
    logic, _, _ = new_saga()
    timers = FakeTimerService(0)
    logic.on_received(received(), timers)
    (timer,) = timers.registered
    logic.on_file_ready(READY, timers)
    assert timers.pending() == []
    assert timers.fire_anyway(timer, logic.on_timer) == []


# ---- timer --------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_count", [0, 2])
def test_timeout_below_max_retries_emits_a_retry(retry_count):
    logic, received_state, ready_state = new_saga()
    timers = FakeTimerService(0)
    logic.on_received(received(retry_count), timers)
    (retry,) = timers.advance(10**9, logic.on_timer)
    assert retry == {
        "_type": "retry",
        "user_id": "u1",
        "email": "u1@example.com",
        "file_path": "uploads/u1/abc/cat.png",
        "permanent_path": "files/u1/abc/cat.png",
        "file_name": "cat.png",
        "file_size": 2048,
        "media_type": "image/png",
        "upload_time": "2026-03-01T10:01:00+00:00",
        "retry_count": retry_count,  # unchanged: media-service increments it
        "retry_time": NOW_ISO,
    }
    assert set(retry) - {"_type"} == {c.name for c in common.UPLOAD_RETRY}
    assert received_state.value() is None and ready_state.value() is None


@pytest.mark.parametrize("retry_count", [3, 4])
def test_timeout_at_max_retries_emits_a_dead_letter(retry_count):
    logic, received_state, _ = new_saga()
    timers = FakeTimerService(0)
    logic.on_received(received(retry_count), timers)
    (dead,) = timers.advance(10**9, logic.on_timer)
    assert dead["_type"] == "dead_letter"
    assert dead["failure_reason"] == "max retries exceeded"
    assert dead["dead_letter_time"] == NOW_ISO
    assert dead["retry_count"] == retry_count
    assert (dead["file_path"], dead["permanent_path"]) == ("uploads/u1/abc/cat.png", "files/u1/abc/cat.png")
    assert set(dead) - {"_type"} == {c.name for c in common.UPLOAD_DEAD_LETTER}
    assert received_state.value() is None


def test_timer_with_received_and_ready_confirms_and_clears():
    logic, received_state, ready_state = new_saga()
    timers = FakeTimerService(0)
    logic.on_received(received(), timers)
    ready_state.update(True)  # as if the flag had been restored without the fast path
    assert timers.advance(10**9, logic.on_timer) == [CONFIRMED]
    assert received_state.value() is None and ready_state.value() is None


def test_timer_without_state_yields_nothing():
    logic, _, _ = new_saga()
    assert logic.on_timer(5, FakeTimerService(10)) == []


def test_ready_without_received_is_forgotten():
    """Spec 13.3: a file.ready without received no longer keeps its flag forever."""
    logic, _, ready_state = new_saga(timeout_seconds=10)
    timers = FakeTimerService(0)
    logic.on_file_ready(READY, timers)
    assert timers.pending() == [10_000 * (saga.MAX_RETRIES + 1)]
    assert timers.advance(10**9, logic.on_timer) == []
    assert ready_state.value() is None


def test_redelivered_received_does_not_leave_a_second_timer():
    logic, _, _ = new_saga()
    timers = FakeTimerService(0)
    logic.on_received(received(), timers)
    timers.now = 3_000
    logic.on_received(received(), timers)
    first, second = timers.registered
    assert timers.pending() == [second]
    assert timers.fire_anyway(first, logic.on_timer) == []  # stale
    assert [o["_type"] for o in timers.advance(10**9, logic.on_timer)] == ["retry"]


def test_first_attempt_plus_three_retries_then_dead_letter():
    """The loop with media-service: every retry comes back as UploadReceived with
    retry_count + 1, until the saga gives up."""
    logic, _, _ = new_saga()
    timers = FakeTimerService(0)
    outcomes = []
    event = received(0)
    while True:
        logic.on_received(event, timers)
        (out,) = timers.advance(timers.now + 10_000, logic.on_timer)
        outcomes.append((out["_type"], out["retry_count"]))
        if out["_type"] != "retry":
            break
        event = received(out["retry_count"] + 1)
    assert outcomes == [("retry", 0), ("retry", 1), ("retry", 2), ("dead_letter", 3)]


def test_late_ready_after_a_retry_confirms_the_next_attempt():
    logic, _, _ = new_saga()
    timers = FakeTimerService(0)
    logic.on_received(received(0), timers)
    assert timers.advance(10_000, logic.on_timer)[0]["_type"] == "retry"
    logic.on_file_ready(READY, timers)  # the first move finished after all
    assert logic.on_received(received(1), timers) == [CONFIRMED]


def test_output_rows_fit_the_wide_output_type():
    logic, _, _ = new_saga()
    timers = FakeTimerService(0)
    logic.on_received(received(3), timers)
    (dead,) = timers.advance(10**9, logic.on_timer)
    values = common.dict_to_values(dead, saga.OUTPUT)
    assert values[0] == "dead_letter" and values[-2:] == ["max retries exceeded", NOW_ISO]
    assert values[saga.OUTPUT.index(common.Column("retry_time"))] == ""
