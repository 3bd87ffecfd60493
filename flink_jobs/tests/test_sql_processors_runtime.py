"""The six SQL processors on the real Flink runtime (PyPI apache-flink, local mini-cluster).

Each file goes through sql_runner's own planning (splitting, substitution, classification)
and its submit(); only the connectors differ: the twelve Kafka sources are VALUES views with
the same columns (plus the proctime column), and every sink (JDBC, and the Kafka sink
platform_unified_events) is a filesystem table with the same columns and primary key, read
back after the bounded job finished. The rows, keys and JSON payloads are asserted exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flink_jobs import sql_runner as r
from flink_jobs.tests.sqlfiles import FLINK_JOBS, NOTIFICATIONS_SINK, SQL_FILES, TEST_ENV
from pyflink_jobs.tests import runtime

pytestmark = pytest.mark.flink


def table_env():
    config = {**r.flink_configuration(runtime.TEST_ENVIRON), **runtime.TEST_CONFIG}
    return r.create_table_environment(config)


def register_test_tables(t_env, tmp_path: Path, sources: dict[str, list[dict]]) -> dict[str, Path]:
    for source in r.SOURCES:
        runtime.values_view(t_env, source.name, source.columns, sources.get(source.name, []), proctime=True)
    unknown = set(sources) - {s.name for s in r.SOURCES}
    assert not unknown, unknown
    path = tmp_path / r.UNIFIED_SINK
    runtime.filesystem_sink(t_env, r.UNIFIED_SINK, r.UNIFIED_COLUMNS, path)
    return {r.UNIFIED_SINK: path}


def with_filesystem(statement: str, path: Path) -> str:
    replaced, count = re.subn(r"\bWITH\s*\(.*\)\s*$", runtime.filesystem_options(path), statement, flags=re.S)
    assert count == 1
    return replaced


def plan_for_test(t_env, tmp_path, files) -> tuple[r.Plan, dict[str, Path]]:
    plan = r.plan_files([str(f) for f in files], TEST_ENV)
    paths, ddl = {}, []
    for statement in plan.ddl:
        name = re.match(r"CREATE\s+TABLE\s+`?(\w+)", r.strip_comments(statement)).group(1)
        paths[name] = tmp_path / name
        ddl.append(with_filesystem(statement, paths[name]))
    return r.Plan(ddl, plan.inserts), paths


def run_file(tmp_path, name, sources):
    t_env = table_env()
    paths = register_test_tables(t_env, tmp_path, sources)
    plan, sink_paths = plan_for_test(t_env, tmp_path, [FLINK_JOBS / name])
    paths.update(sink_paths)
    r.submit(t_env, plan).wait(120_000)
    return {sink: runtime.read_rows(path) for sink, path in paths.items()}


def notifications(rows):
    """Rows with the payload parsed, sorted by key."""
    out = []
    for row in rows:
        assert ": " not in row["payload"] and ", " not in row["payload"]  # compact JSON
        out.append({**row, "payload": json.loads(row["payload"])})
    return sorted(out, key=lambda row: row["idempotency_key"])


# ---- test data ----------------------------------------------------------------------------

T = "2026-03-01T10:00:00.123456+00:00"
LOGIN_FULL = {"user_id": "u1", "email": "u1@example.com", "login_time": T, "device_id": "dev-1",
              "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "ip_address": "10.0.0.1"}
LOGIN_BARE = {"user_id": "u2", "email": "u2@example.com", "login_time": "2026-03-01T11:00:00+00:00"}
SIGNUP = {"user_id": "u3", "email": "u3@example.com", "signup_time": "2026-03-01T09:00:00+00:00"}
SIGNOUT_FULL = {"user_id": "u1", "email": "u1@example.com", "signout_time": "2026-03-01T12:00:00+00:00",
                "user_agent": "curl/8", "ip_address": "10.0.0.2"}
SIGNOUT_NO_EMAIL = {"user_id": "u4", "signout_time": "2026-03-01T13:00:00+00:00"}

CONFIRMED = {"user_id": "u1", "email": "u1@example.com", "file_path": "files/u1/abc/cat.png",
             "file_name": "cat.png", "file_size": 2048, "media_type": "image/png",
             "upload_time": "2026-03-01T10:05:00+00:00"}
EXPIRED = {"user_id": "u1", "file_path": "uploads/u1/def/dog.mp4", "file_name": "dog.mp4",
           "file_size": 4096, "media_type": "video/mp4", "request_id": "req-exp",
           "request_time": "2026-03-01T10:00:00+00:00", "expired_time": "2026-03-01T10:20:00+00:00"}


# ---- identity -----------------------------------------------------------------------------


def test_login_notifications(tmp_path):
    out = run_file(tmp_path, "login_events_processor.sql", {"login_events": [LOGIN_FULL, LOGIN_BARE]})
    assert notifications(out[NOTIFICATIONS_SINK]) == [
        {"user_id": "u1", "event_type": "identity.login",
         "payload": {"email": "u1@example.com", "device_id": "dev-1",
                     "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "ip_address": "10.0.0.1"},
         "event_time": T, "idempotency_key": f"identity.login:u1:{T}"},
        {"user_id": "u2", "event_type": "identity.login",
         "payload": {"email": "u2@example.com", "device_id": None, "user_agent": None, "ip_address": None},
         "event_time": "2026-03-01T11:00:00+00:00",
         "idempotency_key": "identity.login:u2:2026-03-01T11:00:00+00:00"},
    ]
    assert out[r.UNIFIED_SINK] == []


def test_signup_notifications(tmp_path):
    out = run_file(tmp_path, "signup_events_processor.sql", {"signup_events": [SIGNUP]})
    assert notifications(out[NOTIFICATIONS_SINK]) == [
        {"user_id": "u3", "event_type": "identity.signup", "payload": {"email": "u3@example.com"},
         "event_time": "2026-03-01T09:00:00+00:00", "idempotency_key": "identity.signup:u3"},
    ]


def test_signout_notifications(tmp_path):
    out = run_file(tmp_path, "signout_events_processor.sql", {"signout_events": [SIGNOUT_FULL, SIGNOUT_NO_EMAIL]})
    assert notifications(out[NOTIFICATIONS_SINK]) == [
        {"user_id": "u1", "event_type": "identity.signout",
         "payload": {"email": "u1@example.com", "device_id": None, "user_agent": "curl/8", "ip_address": "10.0.0.2"},
         "event_time": "2026-03-01T12:00:00+00:00",
         "idempotency_key": "identity.signout:u1:2026-03-01T12:00:00+00:00::10.0.0.2:curl/8"},
        {"user_id": "u4", "event_type": "identity.signout",
         "payload": {"email": None, "device_id": None, "user_agent": None, "ip_address": None},
         "event_time": "2026-03-01T13:00:00+00:00",
         "idempotency_key": "identity.signout:u4:2026-03-01T13:00:00+00:00:::"},
    ]


def test_unified_events(tmp_path):
    out = run_file(tmp_path, "unified_events_processor.sql", {
        "login_events": [LOGIN_FULL], "signup_events": [SIGNUP], "signout_events": [SIGNOUT_NO_EMAIL, SIGNOUT_FULL],
    })
    assert sorted(out[r.UNIFIED_SINK], key=lambda row: row["event_id"]) == [
        {"event_id": f"u1_{T}", "event_time": T, "event_type": "LOGIN", "user_id": "u1",
         "email": "u1@example.com", "device_id": "dev-1", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
         "ip_address": "10.0.0.1"},
        # the signout's device, agent and address are dropped (spec 3.2)
        {"event_id": "u1_2026-03-01T12:00:00+00:00", "event_time": "2026-03-01T12:00:00+00:00",
         "event_type": "SIGNOUT", "user_id": "u1", "email": "u1@example.com", "device_id": None,
         "user_agent": None, "ip_address": None},
        {"event_id": "u3_2026-03-01T09:00:00+00:00", "event_time": "2026-03-01T09:00:00+00:00",
         "event_type": "SIGNUP", "user_id": "u3", "email": "u3@example.com", "device_id": None,
         "user_agent": None, "ip_address": None},
        # PlatformEvent.email is not nullable: a signout without email gets "" (spec 13.8)
        {"event_id": "u4_2026-03-01T13:00:00+00:00", "event_time": "2026-03-01T13:00:00+00:00",
         "event_type": "SIGNOUT", "user_id": "u4", "email": "", "device_id": None,
         "user_agent": None, "ip_address": None},
    ]


# ---- credits and media files --------------------------------------------------------------


def test_credit_balance(tmp_path):
    out = run_file(tmp_path, "credit_balance_processor.sql", {
        "signup_events": [SIGNUP],
        "media_upload_events": [CONFIRMED, {**CONFIRMED, "user_id": None}],  # no key: skipped
        "media_expired_events": [EXPIRED],
    })
    assert sorted(out["credit_ledger_sink"], key=lambda row: row["idempotency_key"]) == [
        {"user_id": "u3", "amount": 2, "event_type": "credit.signup_bonus",
         "description": "Welcome bonus: 2 credits", "event_time": "2026-03-01T09:00:00+00:00",
         "idempotency_key": "credit.signup_bonus:u3"},
        {"user_id": "u1", "amount": 1, "event_type": "credit.upload_refunded",
         "description": "Refund: upload expired for dog.mp4", "event_time": "2026-03-01T10:20:00+00:00",
         "idempotency_key": "credit.upload_refunded:req-exp"},
    ]
    assert out["media_files_sink"] == [
        {"user_id": "u1", "file_name": "cat.png", "file_path": "files/u1/abc/cat.png",
         "file_size": 2048, "media_type": "image/png", "upload_time": "2026-03-01T10:05:00+00:00"},
    ]
    assert notifications(out[NOTIFICATIONS_SINK]) == [
        {"user_id": "u3", "event_type": "credit.balance_changed",
         "payload": {"amount": 2, "reason": "signup_bonus"},
         "event_time": "2026-03-01T09:00:00+00:00",
         "idempotency_key": "credit.balance_changed:signup_bonus:u3"},
        {"user_id": "u1", "event_type": "credit.balance_changed",
         "payload": {"amount": 1, "reason": "upload_expired", "file_name": "dog.mp4"},
         "event_time": "2026-03-01T10:20:00+00:00",
         "idempotency_key": "credit.balance_changed:upload_expired:req-exp"},
    ]


def test_media_notifications(tmp_path):
    out = run_file(tmp_path, "media_notification_processor.sql", {
        "upload_signed_events": [{
            "user_id": "u1", "file_path": "uploads/u1/abc/cat.png", "file_name": "cat.png",
            "upload_url": "http://objects/put?X-Sig=a%3Bb", "expires_in": 900, "request_id": "req-up",
            "signed_time": "t-signed"}],
        "upload_rejected_events": [{
            "user_id": "u1", "file_name": "big.mov", "media_type": "video/quicktime", "file_size": 9,
            "request_id": "req-rej", "reason": "insufficient_credits", "rejected_time": "t-rejected"}],
        "media_upload_events": [CONFIRMED],
        "media_expired_events": [EXPIRED],
        "download_signed_events": [{
            "user_id": "u1", "file_path": "files/u1/abc/cat.png", "download_url": "http://objects/get",
            "expires_in": 300, "request_id": "req-dl", "signed_time": "t-dl"}],
        "download_rejected_events": [{
            "user_id": "u1", "file_path": "files/u1/zzz/x.png", "request_id": "req-dlr",
            "reason": "file_not_found", "rejected_time": "t-dlr"}],
        "media_delete_events": [{
            "user_id": "u1", "file_path": "files/u1/abc/cat.png", "file_name": "cat.png",
            "media_type": "image/png", "file_size": 2048, "delete_time": "t-del"}],
        "delete_rejected_events": [{
            "user_id": "u1", "file_path": "files/u1/zzz/x.png", "request_id": "req-delr",
            "reason": "not_authorized", "rejected_time": "t-delr"}],
        "upload_dead_letter_events": [{
            "user_id": "u1", "email": "u1@example.com", "file_path": "uploads/u1/ghi/f.png",
            "permanent_path": "files/u1/ghi/f.png", "file_name": "f.png", "file_size": 7,
            "media_type": "image/png", "upload_time": "t-up", "retry_count": 3,
            "failure_reason": "max retries exceeded", "dead_letter_time": "t-dead"}],
    })
    rows = notifications(out[NOTIFICATIONS_SINK])
    assert {row["user_id"] for row in rows} == {"u1"}
    assert [(row["event_type"], row["payload"], row["event_time"], row["idempotency_key"]) for row in rows] == [
        ("media.delete_rejected",
         {"file_path": "files/u1/zzz/x.png", "reason": "not_authorized", "request_id": "req-delr"},
         "t-delr", "media.delete_rejected:req-delr"),
        ("media.download_ready",
         {"download_url": "http://objects/get", "file_path": "files/u1/abc/cat.png", "expires_in": 300,
          "request_id": "req-dl"},
         "t-dl", "media.download_ready:req-dl"),
        ("media.download_rejected",
         {"file_path": "files/u1/zzz/x.png", "reason": "file_not_found", "request_id": "req-dlr"},
         "t-dlr", "media.download_rejected:req-dlr"),
        ("media.file_deleted", {"file_path": "files/u1/abc/cat.png", "file_name": "cat.png"},
         "t-del", "media.file_deleted:u1:files/u1/abc/cat.png"),
        ("media.upload_completed",
         {"file_path": "files/u1/abc/cat.png", "file_name": "cat.png", "file_size": 2048,
          "media_type": "image/png"},
         "2026-03-01T10:05:00+00:00", "media.upload_completed:u1:files/u1/abc/cat.png"),
        ("media.upload_expired",
         {"file_path": "uploads/u1/def/dog.mp4", "file_name": "dog.mp4", "amount_refunded": 1,
          "request_id": "req-exp"},
         "2026-03-01T10:20:00+00:00", "media.upload_expired:req-exp"),
        # file_path (the permanent path) added so the browser can match it (spec 13.10)
        ("media.upload_failed",
         {"file_name": "f.png", "failure_reason": "max retries exceeded", "retry_count": 3,
          "file_path": "files/u1/ghi/f.png"},
         "t-dead", "media.upload_failed:u1:files/u1/ghi/f.png"),
        ("media.upload_ready",
         {"upload_url": "http://objects/put?X-Sig=a%3Bb", "file_path": "uploads/u1/abc/cat.png",
          "expires_in": 900, "request_id": "req-up"},
         "t-signed", "media.upload_ready:req-up"),
        ("media.upload_rejected",
         {"reason": "insufficient_credits", "request_id": "req-rej", "file_name": "big.mov"},
         "t-rejected", "media.upload_rejected:req-rej"),
    ]


# ---- all six files together, as deployed ----------------------------------------------------


def test_all_six_files_plan_as_one_job(tmp_path):
    t_env = table_env()
    register_test_tables(t_env, tmp_path, {})
    plan, sink_paths = plan_for_test(t_env, tmp_path, SQL_FILES)
    for statement in plan.ddl:
        t_env.execute_sql(statement)
    statement_set = t_env.create_statement_set()
    for statement in plan.inserts:
        statement_set.add_insert_sql(statement)
    explained = statement_set.explain()
    # the shared user_notifications sink, credit_ledger and media_files
    assert len(sink_paths) == 3
    for sink in list(sink_paths) + [r.UNIFIED_SINK]:
        assert sink in explained


def test_generated_kafka_ddl_is_accepted_by_flink():
    """The DDL of the Kafka tables parses (test_sql_processors_kafka.py runs it), and
    the tables have the declared columns plus proctime."""
    t_env = table_env()
    env = {"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p;'x"}
    for statement in r.builtin_ddl(env):
        t_env.execute_sql(statement)
    for source in r.SOURCES:
        names = list(t_env.from_path(source.name).get_schema().get_field_names())
        assert names == [c.name for c in source.columns] + ["proctime"]
    assert list(t_env.from_path(r.UNIFIED_SINK).get_schema().get_field_names()) == [c.name for c in r.UNIFIED_COLUMNS]
