"""The PyFlink jobs on the real Flink runtime (local mini-cluster, Python workers in process
mode, checkpoints every second). Kafka tables are replaced by VALUES views and filesystem
sinks with the production names and columns; processing-time timers fire for real, kept
possible by a datagen clock that holds the sources open for a few seconds."""

from __future__ import annotations

from datetime import datetime

import psycopg
import pytest

from pyflink_jobs import common
from pyflink_jobs import credit_check_processor as cc
from pyflink_jobs import echo_processor as echo
from pyflink_jobs import move_saga_processor as saga
from pyflink_jobs import ttl_expiry_processor as ttl
from pyflink_jobs.tests import runtime

pytestmark = pytest.mark.flink

#: The clock keeps the timer jobs' sources open at most this long; the tests cancel the job
#: once the expected rows are committed and SETTLE seconds (more than the remaining timers
#: and a checkpoint) passed without anything else appearing.
ALIVE = 120
SETTLE = 3.0


def sinks(t_env, tmp_path, spec):
    """Filesystem sinks for {table: columns}; returns {table: path}."""
    paths = {}
    for name, cols in spec.items():
        paths[name] = tmp_path / name
        runtime.filesystem_sink(t_env, name, cols, paths[name])
    return paths


def by(rows, key):
    return sorted(rows, key=lambda r: r[key])


def assert_iso_utc(value):
    assert datetime.fromisoformat(value).tzinfo is not None


# ---- TTL ----------------------------------------------------------------------------------


def approved(request_id, user="u1", name="cat.png", size=2048, media_type="image/png"):
    return {"user_id": user, "file_name": name, "media_type": media_type, "file_size": size,
            "request_id": request_id, "request_time": f"intent-time-{request_id}"}


def signed(request_id, user="u1", name="cat.png", expires_in=1):
    return {"user_id": user, "file_path": f"uploads/{user}/{request_id}/{name}", "file_name": name,
            "upload_url": f"http://objects/{request_id}", "expires_in": expires_in,
            "request_id": request_id, "signed_time": f"signed-time-{request_id}"}


def test_ttl_expiry_job_expires_only_unfinished_uploads(tmp_path):
    _, t_env = runtime.table_environment("ttl-expiry-test")
    runtime.values_view(t_env, "upload_approved_source", common.UPLOAD_APPROVED, [
        approved("r1"), approved("r3"), approved("r4"),
    ])
    runtime.values_view(t_env, "upload_signed_source", common.UPLOAD_SIGNED, [
        signed("r1"), signed("r2", user="u2", name="dog.mp4"), signed("r3"), signed("r4"),
    ], alive_seconds=ALIVE)
    runtime.values_view(t_env, "upload_events_source", common.UPLOAD_RECEIVED, [
        {"user_id": "u1", "email": "u1@example.com", "file_path": "uploads/u1/r3/cat.png",
         "file_name": "cat.png", "file_size": 2048, "media_type": "image/png",
         "upload_time": "t", "permanent_path": "files/u1/r3/cat.png", "retry_count": 0},
        # legacy path: received without any signing
        {"user_id": "u9", "email": "u9@example.com", "file_path": "uploads/u9/x/a.png",
         "file_name": "a.png", "file_size": 1, "media_type": "image/png",
         "upload_time": "t", "permanent_path": "files/u9/x/a.png", "retry_count": 0},
    ])
    runtime.values_view(t_env, "upload_confirmed_source", common.UPLOAD_CONFIRMED, [
        {"user_id": "u1", "email": "u1@example.com", "file_path": "files/u1/r4/cat.png",
         "file_name": "cat.png", "file_size": 2048, "media_type": "image/png", "upload_time": "t"},
    ])
    paths = sinks(t_env, tmp_path, {"expired_events_sink": common.UPLOAD_EXPIRED})
    config = {"default_ttl_seconds": 1, "grace_seconds": 1, "details_wait_seconds": 1}
    out = runtime.run_until(
        ttl.build(t_env, config), paths,
        done=lambda rows: len(rows["expired_events_sink"]) >= 2, settle_seconds=SETTLE,
    )

    rows = by(out["expired_events_sink"], "request_id")
    for row in rows:
        assert_iso_utc(row.pop("expired_time"))
    assert rows == [
        # approved + signed, never uploaded: the intent's size, type and time
        {"user_id": "u1", "file_path": "uploads/u1/r1/cat.png", "file_name": "cat.png",
         "file_size": 2048, "media_type": "image/png", "request_id": "r1",
         "request_time": "intent-time-r1"},
        # signed without approval: goes on after the details wait, with fallbacks
        {"user_id": "u2", "file_path": "uploads/u2/r2/dog.mp4", "file_name": "dog.mp4",
         "file_size": 0, "media_type": "", "request_id": "r2",
         "request_time": "signed-time-r2"},
    ]


# ---- move saga ----------------------------------------------------------------------------


def test_move_saga_job_confirms_retries_and_dead_letters(tmp_path):
    _, t_env = runtime.table_environment("move-saga-test")
    runtime.values_view(t_env, "upload_received_source", common.UPLOAD_RECEIVED, [
        runtime.received("a"), runtime.received("b", 0), runtime.received("c", 3), runtime.received("e", 2),
    ], alive_seconds=ALIVE)
    runtime.values_view(t_env, "file_ready_source", common.FILE_READY, [
        {"file_path": "files/u1/a/f.png", "file_size": 10, "upload_time": "x"},
        {"file_path": "files/u1/d/f.png", "file_size": 10, "upload_time": "x"},  # no received
    ])
    paths = sinks(t_env, tmp_path, {name: cols for name, (_, cols, _) in saga.SINKS.items()})
    out = runtime.run_until(
        saga.build(t_env, timeout_seconds=1), paths,
        done=lambda rows: len(rows["upload_confirmed_sink"]) >= 1
        and len(rows["upload_retry_sink"]) >= 2 and len(rows["upload_dead_letter_sink"]) >= 1,
        settle_seconds=SETTLE,
    )

    assert out["upload_confirmed_sink"] == [
        {"user_id": "u1", "email": "u1@example.com", "file_path": "files/u1/a/f.png",
         "file_name": "f.png", "file_size": 10, "media_type": "image/png",
         "upload_time": "upload-time-a"},
    ]
    retries = by(out["upload_retry_sink"], "file_path")
    for row in retries:
        assert_iso_utc(row.pop("retry_time"))
    assert retries == [
        {**{k: v for k, v in runtime.received(key, count).items()}, "retry_count": count}
        for key, count in (("b", 0), ("e", 2))
    ]
    (dead,) = out["upload_dead_letter_sink"]
    assert_iso_utc(dead.pop("dead_letter_time"))
    assert dead == {**runtime.received("c", 3), "failure_reason": "max retries exceeded"}


# ---- echo ---------------------------------------------------------------------------------


def test_echo_job_copies_login_events(tmp_path):
    _, t_env = runtime.table_environment("echo-test")
    logins = [
        {"user_id": "u1", "email": "u1@example.com", "login_time": "2026-03-01T10:00:00Z",
         "device_id": None, "user_agent": "Firefox", "ip_address": "10.0.0.1"},
        {"user_id": "u2", "email": "u2@example.com", "login_time": "2026-03-01T11:00:00Z",
         "device_id": "d2", "user_agent": None, "ip_address": None},
    ]
    runtime.values_view(t_env, echo.SOURCE[0], common.LOGIN, logins)
    paths = sinks(t_env, tmp_path, {echo.SINK[0]: common.LOGIN})
    runtime.run(echo.build(t_env))
    assert by(runtime.read_rows(paths[echo.SINK[0]]), "user_id") == logins


# ---- credit check (with the real Postgres) -------------------------------------------------


@pytest.mark.postgres
def test_credit_check_job_against_postgres(tmp_path, fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "insert into public.credit_ledger (user_id, amount, event_type, description, event_time, idempotency_key)"
            " values ('u1', 1, 'credit.signup_bonus', 'Welcome bonus: 2 credits', 't', 'bonus-u1')"
        )
    _, t_env = runtime.table_environment("credit-check-test")

    def intent(request_id, user="u1"):
        return {"user_id": user, "file_name": f"{request_id}.png", "media_type": "image/png",
                "file_size": 5, "request_id": request_id, "request_time": f"time-{request_id}"}

    # req-1 is delivered twice (a redelivery after a restart)
    runtime.values_view(t_env, "upload_intent_source", common.UPLOAD_INTENT, [
        intent("req-1"), intent("req-1"), intent("req-2"), intent("req-3", user="u2"),
    ])
    paths = sinks(t_env, tmp_path, {name: cols for name, (_, cols, _) in cc.SINKS.items()})
    runtime.run(cc.build(t_env, cc.db_settings({}), conninfo=fresh_db))

    assert runtime.read_rows(paths["upload_approved_sink"]) == [intent("req-1"), intent("req-1")]
    rejected = by(runtime.read_rows(paths["upload_rejected_sink"]), "request_id")
    for row in rejected:
        assert_iso_utc(row.pop("rejected_time"))
    assert rejected == [
        {**{k: v for k, v in intent(r, u).items() if k != "request_time"}, "reason": "insufficient_credits"}
        for r, u in (("req-2", "u1"), ("req-3", "u2"))
    ]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert conn.execute(
            "select user_id, amount, idempotency_key from public.credit_ledger where amount < 0"
        ).fetchall() == [("u1", -1, "credit.upload_deducted:req-1")]
