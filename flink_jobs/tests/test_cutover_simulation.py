"""A cut-over from the original Flink jobs, simulated on the real connectors (docs/cutover.md).

The original jobs committed no offsets and wrote rows without keys. Here the topics hold what
they leave in retention (signups and an expired upload, produced with create times in the
past), the database holds the rows they wrote for those records, the runbook's key step runs,
and the SQL processors start at the cut-over timestamp, which lies a little before the last
original record (the overlap a real cut-over has). Then traffic continues.

Nothing may take effect twice (no second signup notification, bonus or refund, so no credit
is minted) and nothing may be lost (the records after the cut-over are processed)."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from flink_jobs import sql_runner
from flink_jobs.tests.sqlfiles import FLINK_JOBS as SQL_DIR
from flink_jobs.tests.test_sql_processors_kafka import rows, source_topics, wait_rows
from pyflink_jobs.tests import kafka_stack as ks

pytestmark = [pytest.mark.flink, pytest.mark.kafka, pytest.mark.postgres]

FILES = ("signup_events_processor.sql", "credit_balance_processor.sql",
         "media_notification_processor.sql")
SIGNUP_TOPIC = "public.identity.signup.events"
EXPIRED_TOPIC = "public.media.expired.events"


def signup(user, at):
    return {"user_id": user, "email": f"{user}@example.com", "signup_time": at}


def expired(user, request_id, file_name, at):
    return {"user_id": user, "file_path": f"uploads/{user}/{request_id}/{file_name}",
            "file_name": file_name, "file_size": 3, "media_type": "image/png",
            "request_id": request_id, "request_time": at, "expired_time": at}


def iso(millis):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis / 1000)) + f".{millis % 1000:03d}Z"


def original_rows(conn, user, at, refund=None):
    """What the original jobs wrote for a signup (and an expired upload): no keys."""
    notify = ("insert into public.user_notifications (user_id, event_type, payload, event_time)"
              " values (%s, %s, %s, %s)")
    ledger = ("insert into public.credit_ledger (user_id, amount, event_type, description, event_time)"
              " values (%s, %s, %s, %s, %s)")
    conn.execute(notify, [user, "identity.signup", json.dumps({"email": f"{user}@example.com"}), at])
    conn.execute(ledger, [user, 2, "credit.signup_bonus", "Welcome bonus: 2 credits", at])
    conn.execute(notify, [user, "credit.balance_changed",
                          json.dumps({"amount": 2, "reason": "signup_bonus"}), at])
    if refund:
        request_id, file_name, expired_at = refund
        conn.execute(ledger, [user, -1, "credit.upload_deducted", f"Upload: {file_name}", at])
        conn.execute(notify, [user, "media.upload_expired", json.dumps({
            "file_path": f"uploads/{user}/{request_id}/{file_name}", "file_name": file_name,
            "amount_refunded": 1, "request_id": request_id}), expired_at])
        conn.execute(ledger, [user, 1, "credit.upload_refunded",
                              f"Refund: upload expired for {file_name}", expired_at])
        conn.execute(notify, [user, "credit.balance_changed", json.dumps(
            {"amount": 1, "reason": "upload_expired", "file_name": file_name}), expired_at])


def test_cut_over_from_the_original_jobs_has_no_second_effect_and_loses_nothing(ns, fresh_db):
    # Arrange: history in retention. A signed up long before the cut-over, B inside the
    # overlap (after T0, but the original jobs had already handled it), B's upload expired
    # inside the overlap as well.
    now = int(time.time() * 1000)
    t_a, t_0, t_b, t_bx = now - 300_000, now - 120_000, now - 90_000, now - 60_000
    ns.create(*source_topics(FILES))
    ns.produce(SIGNUP_TOPIC, [signup("a", iso(t_a))], timestamp_ms=t_a)
    ns.produce(SIGNUP_TOPIC, [signup("b", iso(t_b))], timestamp_ms=t_b)
    ns.produce(EXPIRED_TOPIC, [expired("b", "req-b", "cat.png", iso(t_bx))], timestamp_ms=t_bx)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        original_rows(conn, "a", iso(t_a))
        original_rows(conn, "b", iso(t_b), refund=("req-b", "cat.png", iso(t_bx)))
        # runbook step 4 (the migration ran when the database was created, before these rows)
        keyed = conn.execute("select * from cutover.key_pre_cutover_rows()").fetchone()
    assert keyed == (6, 3)  # all but the deduction, whose request id the ledger row lacks

    # Act: the SQL processors start at the cut-over timestamp; traffic continues (C signs up,
    # D's upload expires), and those records landing proves the job read past the history.
    environ = ns.environ(**ks.db_environ(fresh_db), KAFKA_SOURCE_STARTUP=f"timestamp:{t_0}")
    config = {**sql_runner.flink_configuration(environ), "parallelism.default": "1"}
    t_env = sql_runner.create_table_environment(config)
    for statement in sql_runner.builtin_ddl(environ):
        t_env.execute_sql(statement)
    plan = sql_runner.plan_files([str(SQL_DIR / f) for f in FILES], environ)
    job = ks.RunningJob(sql_runner.submit(t_env, plan))
    with job:
        now = int(time.time() * 1000)
        ns.produce(SIGNUP_TOPIC, [signup("c", iso(now))])
        ns.produce(EXPIRED_TOPIC, [expired("d", "req-d", "dog.png", iso(now))])
        wait_rows(job, fresh_db, "select 1 from public.credit_ledger where user_id in ('c', 'd')", 2)
        wait_rows(job, fresh_db, "select 1 from public.user_notifications where user_id in ('c', 'd')", 4)

    # Assert: one effect per event, the original rows kept, the new ones written once.
    ledger = rows(fresh_db, "select user_id, amount, event_type from public.credit_ledger"
                            " order by user_id, id")
    assert ledger == [
        ("a", 2, "credit.signup_bonus"),
        ("b", 2, "credit.signup_bonus"), ("b", -1, "credit.upload_deducted"),
        ("b", 1, "credit.upload_refunded"),
        ("c", 2, "credit.signup_bonus"),
        ("d", 1, "credit.upload_refunded"),
    ]
    balances = dict(rows(fresh_db, "select user_id, balance from public.user_credit_balances"))
    assert balances == {"a": 2, "b": 2, "c": 2, "d": 1}, "credits were minted"
    counts = rows(fresh_db, "select user_id, event_type, count(*) from public.user_notifications"
                            " group by 1, 2 order by 1, 2")
    assert counts == [
        ("a", "credit.balance_changed", 1), ("a", "identity.signup", 1),
        ("b", "credit.balance_changed", 2), ("b", "identity.signup", 1),
        ("b", "media.upload_expired", 1),
        ("c", "credit.balance_changed", 1), ("c", "identity.signup", 1),
        ("d", "credit.balance_changed", 1), ("d", "media.upload_expired", 1),
    ]
    # The sink upserts on the key, so a record it saw again rewrites its row in Flink's JSON
    # (no spaces): B's signup, inside the overlap, was read again and landed on the original
    # row; A's, before the cut-over timestamp, was never read again.
    payloads = dict(rows(fresh_db, "select user_id, payload from public.user_notifications"
                                   " where event_type = 'identity.signup'"))
    assert payloads["a"] == json.dumps({"email": "a@example.com"}), "A was replayed"
    assert payloads["b"] == '{"email":"b@example.com"}', "the overlap was not read again"
