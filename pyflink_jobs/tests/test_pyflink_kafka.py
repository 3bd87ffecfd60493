"""The four PyFlink jobs through their real connectors: each job's own table_ddl() (Kafka
sources and sinks, avro-confluent) and build(), as main() runs them, on the local
mini-cluster against the local stack's broker and schema registry, in a topic namespace of its
own. The tests produce Confluent-framed Avro with the registry and decode what the job's Kafka
sinks wrote; the credit check also writes to a fresh migrated database.

The jobs are streaming: a test waits (bounded) for the expected output, then cancels."""

from __future__ import annotations

from datetime import datetime

import psycopg
import pytest

from pyflink_jobs import common
from pyflink_jobs import credit_check_processor as cc
from pyflink_jobs import echo_processor as echo
from pyflink_jobs import move_saga_processor as saga
from pyflink_jobs import ttl_expiry_processor as ttl
from pyflink_jobs.tests import kafka_stack as ks
from pyflink_jobs.tests import runtime

pytestmark = [pytest.mark.flink, pytest.mark.kafka]


def start(ns, job_module, job_name, environ, build):
    """Creates the job's topics, registers its tables like main() and submits build(t_env)."""
    topics = [topic for topic, *_ in job_module.SOURCES.values()]
    topics += [topic for topic, *_ in job_module.SINKS.values()]
    ns.create(*topics)
    _, t_env = common.create_environments(job_name, environ=environ, extra_config=runtime.TEST_CONFIG)
    common.execute_ddl(t_env, job_module.table_ddl(environ))
    return ks.running(build(t_env))


def assert_iso_utc(value):
    assert datetime.fromisoformat(value).tzinfo is not None


def test_echo_copies_login_events(ns):
    environ = ns.environ()
    logins = [
        {"user_id": "u1", "email": "u1@example.com", "login_time": "2026-03-01T10:00:00Z",
         "device_id": None, "user_agent": "Firefox", "ip_address": "10.0.0.1"},
        {"user_id": "u2", "email": "u2@example.com", "login_time": "2026-03-01T11:00:00Z",
         "device_id": "d2", "user_agent": None, "ip_address": None},
    ]
    # echo declares its tables as SOURCE/SINK pairs; the topics are the same idea
    ns.create(echo.SOURCE[1], echo.SINK[1])
    _, t_env = common.create_environments("echo-kafka-test", environ=environ, extra_config=runtime.TEST_CONFIG)
    common.execute_ddl(t_env, echo.table_ddl(environ))
    with ks.running(echo.build(t_env)) as job, ns.reader(echo.SINK[1]) as reader:
        ns.produce(echo.SOURCE[1], logins)
        records = ks.wait_for(job, reader.poll, lambda r: len(r) >= 2, "2 echoed logins")
    assert sorted(records, key=lambda r: r["user_id"]) == logins


def intent(request_id, user="u1"):
    return {"user_id": user, "file_name": f"{request_id}.png", "media_type": "image/png",
            "file_size": 5, "request_id": request_id, "request_time": f"time-{request_id}"}


@pytest.mark.postgres
def test_credit_check_approves_deducts_and_rejects(ns, fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "insert into public.credit_ledger (user_id, amount, event_type, description, event_time,"
            " idempotency_key) values ('u1', 1, 'credit.signup_bonus', 'bonus', 't', 'bonus-u1')"
        )
    environ = ns.environ(**ks.db_environ(fresh_db))
    with start(ns, cc, "credit-check-kafka-test", environ,
               lambda t_env: cc.build(t_env, cc.db_settings(environ))) as job, \
            ns.reader("public.media.upload.approved") as approved, \
            ns.reader("public.media.upload.rejected") as rejected:
        # req-1 twice (a redelivery): approved twice, deducted once; then no credit left
        ns.produce("internal.media.upload.intent", [intent("req-1"), intent("req-1"), intent("req-2")])
        ks.wait_for(job, approved.poll, lambda r: len(r) >= 2, "2 approvals")
        ks.wait_for(job, rejected.poll, lambda r: len(r) >= 1, "1 rejection")

    assert approved.records == [intent("req-1"), intent("req-1")]
    (rejection,) = rejected.records
    assert_iso_utc(rejection.pop("rejected_time"))
    assert rejection == {**{k: v for k, v in intent("req-2").items() if k != "request_time"},
                         "reason": "insufficient_credits"}
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert conn.execute(
            "select user_id, amount, idempotency_key from public.credit_ledger where amount < 0"
        ).fetchall() == [("u1", -1, "credit.upload_deducted:req-1")]


def test_ttl_expiry_refunds_only_the_unfinished_upload(ns):
    environ = ns.environ(UPLOAD_TTL_GRACE_SECONDS="1", UPLOAD_DETAILS_WAIT_SECONDS="1")
    config = ttl.settings(environ)

    def signed(request_id):
        return {"user_id": "u1", "file_path": f"uploads/u1/{request_id}/cat.png",
                "file_name": "cat.png", "upload_url": f"http://objects/{request_id}",
                "expires_in": 1, "request_id": request_id, "signed_time": f"signed-{request_id}"}

    def approved(request_id):
        return {"user_id": "u1", "file_name": "cat.png", "media_type": "image/png",
                "file_size": 2048, "request_id": request_id, "request_time": f"intent-{request_id}"}

    with start(ns, ttl, "ttl-expiry-kafka-test", environ, lambda t_env: ttl.build(t_env, config)) as job, \
            ns.reader("public.media.expired.events") as reader:
        ns.produce("public.media.upload.approved", [approved("r1"), approved("r2")])
        ns.produce("public.media.upload.signed", [signed("r1"), signed("r2")])
        # r2 reaches staging before its URL expires: no refund
        ns.produce("internal.media.upload.received", [{
            "user_id": "u1", "email": "u1@example.com", "file_path": "uploads/u1/r2/cat.png",
            "file_name": "cat.png", "file_size": 2048, "media_type": "image/png", "upload_time": "t",
            "permanent_path": "files/u1/r2/cat.png", "retry_count": 0,
        }])
        ks.wait_for(job, reader.poll, lambda r: len(r) >= 1, "the expiry of r1")
        # r2's TTL (expires_in 1 s + grace 1 s) ends well within this marker's round trip:
        # an expiry for r2 would have been written before r3's
        ns.produce("public.media.upload.approved", [approved("r3")])
        ns.produce("public.media.upload.signed", [signed("r3")])
        records = ks.wait_for(job, reader.poll, lambda r: any(x["request_id"] == "r3" for x in r),
                              "the expiry of r3")

    for record in records:
        assert_iso_utc(record.pop("expired_time"))
    assert [r["request_id"] for r in records] == ["r1", "r3"]
    assert records[0] == {"user_id": "u1", "file_path": "uploads/u1/r1/cat.png", "file_name": "cat.png",
                          "file_size": 2048, "media_type": "image/png", "request_id": "r1",
                          "request_time": "intent-r1"}


def test_move_saga_confirms_and_retries(ns):
    environ = ns.environ(MOVE_TIMEOUT_SECONDS="1")
    timeout = saga.move_timeout_seconds(environ)
    with start(ns, saga, "move-saga-kafka-test", environ, lambda t_env: saga.build(t_env, timeout)) as job, \
            ns.reader("public.media.upload.confirmed") as confirmed, \
            ns.reader("internal.media.upload.retry") as retried:
        ns.produce("internal.media.upload.received", [runtime.received("a"), runtime.received("b")])
        # only a's file arrives: a is confirmed, b times out and is retried
        ns.produce("internal.media.file.ready", [
            {"file_path": "files/u1/a/f.png", "file_size": 10, "upload_time": "x"},
        ])
        ks.wait_for(job, confirmed.poll, lambda r: len(r) >= 1, "a confirmed")
        ks.wait_for(job, retried.poll, lambda r: len(r) >= 1, "b retried")

    assert confirmed.records == [
        {"user_id": "u1", "email": "u1@example.com", "file_path": "files/u1/a/f.png",
         "file_name": "f.png", "file_size": 10, "media_type": "image/png",
         "upload_time": "upload-time-a"},
    ]
    (retry,) = retried.records
    assert_iso_utc(retry.pop("retry_time"))
    assert retry == runtime.received("b", 0)
