"""The SQL processors through their real connectors: the runner's Kafka sources (avro-confluent,
Confluent-framed records produced with the schema registry) on the local broker, and their
real sinks, i.e. the JDBC connector's upserts into a fresh migrated database and the Kafka
sink of the unified events (decoded again with the registry).

Each test runs sql_runner's own code path (builtin_ddl, plan_files, submit) on one file or on
all six (the production job) in a streaming job on the local mini-cluster, in its own topic
namespace and database, waits for the sink's rows and cancels the job."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from flink_jobs import sql_runner
from flink_jobs.tests.sqlfiles import FLINK_JOBS as SQL_DIR
from pyflink_jobs.tests import kafka_stack as ks

pytestmark = [pytest.mark.flink, pytest.mark.kafka, pytest.mark.postgres]

ALL_FILES = (
    "login_events_processor.sql", "signup_events_processor.sql", "signout_events_processor.sql",
    "unified_events_processor.sql", "credit_balance_processor.sql",
    "media_notification_processor.sql",
)
LOGIN_TOPIC = "public.identity.login.events"
SIGNUP_TOPIC = "public.identity.signup.events"
SIGNOUT_TOPIC = "public.identity.signout.events"
SIGNED_TOPIC = "public.media.upload.signed"
EXPIRED_TOPIC = "public.media.expired.events"
CONFIRMED_TOPIC = "public.media.upload.confirmed"


def source_topics(files):
    """The topics of the runner's sources that the files read (a source on a missing topic
    makes the job fail, and the broker does not create topics on demand)."""
    text = "\n".join((SQL_DIR / f).read_text() for f in files)
    return [s.topic for s in sql_runner.SOURCES if re.search(rf"\b{s.name}\b", text)]


def start(ns, fresh_db, files, topics):
    """Creates `topics` and the files' source topics in the namespace, then submits the files
    like sql_runner.main()."""
    ns.create(*dict.fromkeys([*source_topics(files), *topics]))
    environ = ns.environ(**ks.db_environ(fresh_db))
    # parallelism 1 as on the session cluster (the mini-cluster defaults to one per core)
    config = {**sql_runner.flink_configuration(environ), "parallelism.default": "1"}
    t_env = sql_runner.create_table_environment(config)
    for statement in sql_runner.builtin_ddl(environ):
        t_env.execute_sql(statement)
    plan = sql_runner.plan_files([str(SQL_DIR / f) for f in files], environ)
    return ks.RunningJob(sql_runner.submit(t_env, plan))


def rows(conninfo, query, *params):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def notifications(conninfo, event_type):
    return rows(
        conninfo,
        "select user_id, payload, event_time, idempotency_key from public.user_notifications"
        " where event_type = %s order by idempotency_key",
        event_type,
    )


def wait_rows(job, conninfo, query, count, *params):
    return ks.wait_for(
        job, lambda: rows(conninfo, query, *params), lambda r: len(r) >= count, f"{count} row(s): {query}"
    )


def login(user, at, **extra):
    return {"user_id": user, "email": f"{user}@example.com", "login_time": at,
            "device_id": None, "user_agent": "Firefox", "ip_address": "10.0.0.1", **extra}


def test_login_notifications_are_upserted_once_per_login(ns, fresh_db):
    job = start(ns, fresh_db, ["login_events_processor.sql"], [])
    with job:
        first = login("u1", "2026-03-01T10:00:00Z", device_id="d1")
        # the same login twice (a webhook retry) and a second login of the same user
        ns.produce(LOGIN_TOPIC, [first, first, login("u1", "2026-03-01T11:00:00Z")])
        query = "select idempotency_key from public.user_notifications where event_type = 'identity.login'"
        wait_rows(job, fresh_db, query, 2)
        # a marker event after the duplicate: once it is written, the duplicate was processed
        ns.produce(LOGIN_TOPIC, [login("u2", "2026-03-01T12:00:00Z")])
        wait_rows(job, fresh_db, query, 3)

    got = notifications(fresh_db, "identity.login")
    assert [(r[0], r[2], r[3]) for r in got] == [
        ("u1", "2026-03-01T10:00:00Z", "identity.login:u1:2026-03-01T10:00:00Z"),
        ("u1", "2026-03-01T11:00:00Z", "identity.login:u1:2026-03-01T11:00:00Z"),
        ("u2", "2026-03-01T12:00:00Z", "identity.login:u2:2026-03-01T12:00:00Z"),
    ]
    assert json.loads(got[0][1]) == {"email": "u1@example.com", "device_id": "d1",
                                     "user_agent": "Firefox", "ip_address": "10.0.0.1"}


def test_signup_notification(ns, fresh_db):
    job = start(ns, fresh_db, ["signup_events_processor.sql"], [])
    with job:
        ns.produce(SIGNUP_TOPIC, [{"user_id": "u7", "email": "u7@example.com",
                                   "signup_time": "2026-03-01T09:00:00Z"}])
        wait_rows(job, fresh_db, "select 1 from public.user_notifications", 1)

    (row,) = notifications(fresh_db, "identity.signup")
    assert row[0] == "u7" and row[2:] == ("2026-03-01T09:00:00Z", "identity.signup:u7")
    assert json.loads(row[1]) == {"email": "u7@example.com"}


def test_signout_notification(ns, fresh_db):
    job = start(ns, fresh_db, ["signout_events_processor.sql"], [])
    with job:
        ns.produce(SIGNOUT_TOPIC, [{
            "user_id": "u3", "email": None, "signout_time": "2026-03-01T13:00:00Z",
            "device_id": "d3", "user_agent": "curl", "ip_address": None,
        }])
        wait_rows(job, fresh_db, "select 1 from public.user_notifications", 1)

    (row,) = notifications(fresh_db, "identity.signout")
    assert row[0] == "u3" and row[2] == "2026-03-01T13:00:00Z"
    assert row[3] == "identity.signout:u3:2026-03-01T13:00:00Z:d3::curl"
    assert json.loads(row[1])["device_id"] == "d3"


def test_unified_events_reach_kafka_as_avro(ns, fresh_db):
    unified = sql_runner.UNIFIED_TOPIC
    job = start(ns, fresh_db, ["unified_events_processor.sql"], [unified])
    with job, ns.reader(unified) as reader:
        ns.produce(LOGIN_TOPIC, [login("u1", "t-login")])
        ns.produce(SIGNUP_TOPIC, [{"user_id": "u2", "email": "u2@example.com", "signup_time": "t-signup"}])
        ns.produce(SIGNOUT_TOPIC, [{"user_id": "u3", "email": None, "signout_time": "t-signout",
                                    "device_id": None, "user_agent": None, "ip_address": None}])
        records = ks.wait_for(job, reader.poll, lambda r: len(r) >= 3, "3 unified events")

    assert sorted(records, key=lambda r: r["event_id"]) == [
        {"event_id": "u1_t-login", "event_time": "t-login", "event_type": "LOGIN", "user_id": "u1",
         "email": "u1@example.com", "device_id": None, "user_agent": "Firefox",
         "ip_address": "10.0.0.1"},
        {"event_id": "u2_t-signup", "event_time": "t-signup", "event_type": "SIGNUP", "user_id": "u2",
         "email": "u2@example.com", "device_id": None, "user_agent": None, "ip_address": None},
        {"event_id": "u3_t-signout", "event_time": "t-signout", "event_type": "SIGNOUT",
         "user_id": "u3", "email": "", "device_id": None, "user_agent": None, "ip_address": None},
    ]


def expired(request_id, user="u1"):
    return {"user_id": user, "file_path": f"uploads/{user}/{request_id}/a.png", "file_name": "a.png",
            "file_size": 3, "media_type": "image/png", "request_id": request_id,
            "request_time": "t0", "expired_time": f"expired-{request_id}"}


def test_credit_balance_bonus_refund_and_media_file(ns, fresh_db):
    job = start(ns, fresh_db, ["credit_balance_processor.sql"], [])
    with job:
        ns.produce(SIGNUP_TOPIC, [{"user_id": "u1", "email": "u1@example.com", "signup_time": "t-signup"}])
        # the same expiry twice: one refund
        ns.produce(EXPIRED_TOPIC, [expired("r1"), expired("r1")])
        ns.produce(CONFIRMED_TOPIC, [{
            "user_id": "u1", "email": "u1@example.com", "file_path": "files/u1/r2/b.png",
            "file_name": "b.png", "file_size": 9, "media_type": "image/png", "upload_time": "t-up",
        }])
        wait_rows(job, fresh_db, "select 1 from public.credit_ledger", 2)
        wait_rows(job, fresh_db, "select 1 from public.user_notifications", 2)
        wait_rows(job, fresh_db, "select 1 from public.media_files", 1)
        # a marker after the duplicate expiry: once its refund is written, the duplicate was seen
        ns.produce(EXPIRED_TOPIC, [expired("r9")])
        wait_rows(job, fresh_db, "select 1 from public.credit_ledger where idempotency_key = %s", 1,
                  "credit.upload_refunded:r9")

    assert rows(fresh_db, "select user_id, amount, event_type, idempotency_key from public.credit_ledger"
                " order by idempotency_key") == [
        ("u1", 2, "credit.signup_bonus", "credit.signup_bonus:u1"),
        ("u1", 1, "credit.upload_refunded", "credit.upload_refunded:r1"),
        ("u1", 1, "credit.upload_refunded", "credit.upload_refunded:r9"),
    ]
    got = notifications(fresh_db, "credit.balance_changed")
    assert [(r[0], r[3]) for r in got] == [
        ("u1", "credit.balance_changed:signup_bonus:u1"),
        ("u1", "credit.balance_changed:upload_expired:r1"),
        ("u1", "credit.balance_changed:upload_expired:r9"),
    ]
    assert json.loads(got[0][1]) == {"amount": 2, "reason": "signup_bonus"}
    assert rows(fresh_db, "select user_id, file_path, file_size, status from public.media_files") == [
        ("u1", "files/u1/r2/b.png", 9, "active"),
    ]


def test_media_notification_upload_ready(ns, fresh_db):
    job = start(ns, fresh_db, ["media_notification_processor.sql"], [])
    with job:
        ns.produce(SIGNED_TOPIC, [{
            "user_id": "u5", "file_path": "uploads/u5/r5/c.png", "file_name": "c.png",
            "upload_url": "http://objects/r5", "expires_in": 600, "request_id": "r5",
            "signed_time": "t-signed",
        }])
        wait_rows(job, fresh_db, "select 1 from public.user_notifications", 1)

    (row,) = notifications(fresh_db, "media.upload_ready")
    assert row[0] == "u5" and row[2:] == ("t-signed", "media.upload_ready:r5")
    assert json.loads(row[1]) == {"upload_url": "http://objects/r5", "file_path": "uploads/u5/r5/c.png",
                                  "expires_in": 600, "request_id": "r5"}


def test_all_six_files_as_the_one_production_job(ns, fresh_db):
    """The deployment's shape: every file in one job; a signup reaches its three sinks."""
    job = start(ns, fresh_db, ALL_FILES, [sql_runner.UNIFIED_TOPIC])
    with job, ns.reader(sql_runner.UNIFIED_TOPIC) as reader:
        ns.produce(SIGNUP_TOPIC, [{"user_id": "u8", "email": "u8@example.com", "signup_time": "t8"}])
        wait_rows(job, fresh_db, "select 1 from public.user_notifications", 2)
        wait_rows(job, fresh_db, "select 1 from public.credit_ledger", 1)
        (event,) = ks.wait_for(job, reader.poll, lambda r: len(r) >= 1, "the unified SIGNUP event")

    assert event["event_id"] == "u8_t8" and event["event_type"] == "SIGNUP"
    assert [r[3] for r in rows(fresh_db, "select user_id, payload, event_time, idempotency_key"
                                " from public.user_notifications order by idempotency_key")] == [
        "credit.balance_changed:signup_bonus:u8", "identity.signup:u8",
    ]
