"""Static checks of credit_balance_processor.sql (spec 3.3, rewritten for the runtime's
topics and the idempotent sinks). The source is the confirmed-upload topic
public.media.upload.confirmed; the original test's public.media.upload.events expectation was
stale and is not carried over. The rows it emits are checked on the Flink runtime in
test_sql_processors_runtime.py."""

from __future__ import annotations

import re

from flink_jobs import sql_runner as r
from flink_jobs.tests.sqlfiles import FLINK_JOBS, NOTIFICATIONS_SINK, SHARED_SINK_FILES, TEST_ENV, sinks_of

PATH = FLINK_JOBS / "credit_balance_processor.sql"


def statements():
    return [r.strip_comments(s) for s in r.split_statements(PATH.read_text())]


def inserts():
    return [s for s in statements() if r.classify(s) == "insert"]


def insert_into(sink):
    return [s for s in inserts() if re.match(rf"INSERT\s+INTO\s+{sink}\b", s)]


def test_media_upload_events_source_is_the_confirmed_topic():
    source = next(s for s in r.SOURCES if s.name == "media_upload_events")
    assert (source.topic, source.group) == ("public.media.upload.confirmed", "flink-media-confirmed-consumer")
    assert [(c.name, c.type) for c in source.columns] == [
        ("user_id", "STRING"), ("email", "STRING"), ("file_path", "STRING"), ("file_name", "STRING"),
        ("file_size", "BIGINT"), ("media_type", "STRING"), ("upload_time", "STRING"),
    ]


def test_three_sinks_with_their_tables_and_keys():
    # the file declares the ledger and media_files sinks; the notifications sink is the shared
    # one (sinks/user_notifications.sql) that the runner registers with every file
    sinks = {s.name: s for s in sinks_of(PATH, shared=SHARED_SINK_FILES)}
    assert len([s for s in statements() if s.upper().startswith("CREATE TABLE")]) == 2
    assert {name: (s.options["table-name"], s.primary_key) for name, s in sinks.items()} == {
        "credit_ledger_sink": ("public.credit_ledger", ["idempotency_key"]),
        "media_files_sink": ("public.media_files", ["user_id", "file_path"]),
        NOTIFICATIONS_SINK: ("public.user_notifications", ["idempotency_key"]),
    }
    assert sinks["credit_ledger_sink"].columns == [
        ("user_id", "STRING"), ("amount", "INT"), ("event_type", "STRING"), ("description", "STRING"),
        ("event_time", "STRING"), ("idempotency_key", "STRING"),
    ]
    # no status column: the upsert must never overwrite a soft delete
    assert sinks["media_files_sink"].columns == [
        ("user_id", "STRING"), ("file_name", "STRING"), ("file_path", "STRING"),
        ("file_size", "BIGINT"), ("media_type", "STRING"), ("upload_time", "STRING"),
    ]
    assert [c for c, _ in sinks[NOTIFICATIONS_SINK].columns] == [
        "user_id", "event_type", "payload", "event_time", "idempotency_key",
    ]


def test_exactly_five_inserts():
    assert len(inserts()) == 5
    assert (len(insert_into("credit_ledger_sink")), len(insert_into("media_files_sink")),
            len(insert_into(NOTIFICATIONS_SINK))) == (2, 1, 2)


def test_signup_bonus_insert():
    (bonus,) = [s for s in insert_into("credit_ledger_sink") if "signup_events" in s]
    assert re.search(r"\b2\b", bonus)
    assert "'credit.signup_bonus'" in bonus and "'Welcome bonus: 2 credits'" in bonus
    assert "'credit.signup_bonus:'" in bonus


def test_media_files_insert_reads_confirmed_uploads():
    (media,) = insert_into("media_files_sink")
    assert "FROM media_upload_events" in media
    assert "file_size" in media and "media_type" in media
    assert "status" not in media  # 'active' comes from the column default


def test_signup_notification_insert():
    (notification,) = [s for s in insert_into(NOTIFICATIONS_SINK) if "signup_events" in s]
    assert "'credit.balance_changed'" in notification
    assert re.search(r"JSON_OBJECT\('amount' VALUE 2, 'reason' VALUE 'signup_bonus'\)", notification)


def test_refund_inserts():
    (refund,) = [s for s in insert_into("credit_ledger_sink") if "media_expired_events" in s]
    assert "'credit.upload_refunded'" in refund and "'Refund: upload expired for '" in refund
    (notification,) = [s for s in insert_into(NOTIFICATIONS_SINK) if "media_expired_events" in s]
    assert "'upload_expired'" in notification and "'file_name' VALUE file_name" in notification


def test_conventions():
    text = PATH.read_text()
    for name in ("SUPABASE_DB_JDBC_URL", "SUPABASE_DB_USER", "SUPABASE_DB_PASSWORD"):
        assert "${%s}" % name in text
    assert "LoginModule" not in text
    sinks = sinks_of(PATH, shared=SHARED_SINK_FILES)
    assert len(sinks) == 3
    assert all(s.options["connector"] == "jdbc" for s in sinks)
    assert all(s.primary_key for s in sinks)  # upsert mode: idempotent per event
    assert all(s.options["sink.buffer-flush.max-rows"] == "1" for s in sinks)
    assert all(s.options["password"] == TEST_ENV["SUPABASE_DB_PASSWORD"] for s in sinks)
