"""The whole cut-over on the local stack: the Go fleet's state, then the Rust services and the
processors taking over from it (docs/cutover.md).

What the Go fleet leaves behind, written here the way it leaves it:
- records in retention: a user U signed up and uploaded R1 long ago; the original credit check
  charged and approved R2 just before the original jobs stopped (after T0, so the new one reads
  that intent again); in the last seconds the Go media-service signed R2 under a random staging
  key and deleted U's file F0 for the intent D0, and the Go message-consumer wrote U's m2;
- offsets committed under the original group ids, 5 s behind: `media-service-consumer` past R1
  but not R2 and not D0, `go-message-consumer` past m1 but not m2;
- keyless rows of the original writers (signup, bonus, deductions, messages, media files), then
  the runbook's key step; R1's object in the store.

Then the Rust media-service and message-consumer (the built binaries, with their own object
store process sending webhooks) start from those offsets, the SQL and PyFlink processors start
at the cut-over timestamp T0, and traffic continues: U uploads to the URL the Go service gave
out and sends m3; a new user V signs up, lets one upload (R3) expire, completes another (R4)
and deletes it.

Nothing may take effect twice (ledger rows, notifications, media rows, objects; no minted
credit) and nothing may be lost. Without the media-service's replay-window read it fails: R2 is
signed again under another key, that upload never comes, and its expiry refunds a credit U
spent; D0 is answered `not_found` after F0 was deleted. Without the credit check's claim of the
original deduction, R2 is charged again (here: rejected for want of credit).

Needs the local stack and the debug binaries of the Rust test run (./taskw test builds them)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import quote

import psycopg
import pytest
import requests

from flink_jobs.tests.fleet import (
    ACCESS_KEY,
    BUCKET,
    CREDIT_CHECK,
    MEDIA_DEAD_LETTER,
    MEDIA_TOPICS,
    MESSAGE_DEAD_LETTER,
    MESSAGES,
    MOVE_SAGA,
    SECRET_KEY,
    TTL_EXPIRY,
    Fleet,
    require_binaries,
)
from flink_jobs.tests.test_cutover_simulation import iso, original_rows, signup
from flink_jobs.tests.test_sql_processors_kafka import rows
from pyflink_jobs.tests import kafka_stack as ks

pytestmark = [pytest.mark.flink, pytest.mark.kafka, pytest.mark.postgres]

SQL_FILES = ("signup_events_processor.sql", "credit_balance_processor.sql",
             "media_notification_processor.sql")
#: The Rust media-service signs URLs valid this long; the TTL job adds GRACE. Long enough for
#: this test's own PUT of R4, short enough that R3's expiry comes within the test.
URL_EXPIRY, GRACE = 15, 5


def presign_put(port: int, key: str, expires: int = 900) -> str:
    """A SigV4 query-presigned PUT, as the Go media-service handed out (it bound only `host`)."""
    now = dt.datetime.now(dt.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    host = f"127.0.0.1:{port}"
    path = f"/{BUCKET}/" + quote(key, safe="/-_.~")
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{ACCESS_KEY}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                               for k, v in sorted(query.items()))
    canonical = "\n".join(["PUT", path, canonical_query, f"host:{host}", "", "host", "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key_bytes = ("AWS4" + SECRET_KEY).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"http://{host}{path}?{canonical_query}&X-Amz-Signature={signature}"


@pytest.fixture
def fleet(ns, fresh_db, tmp_path):
    """The services and the three processors the cut-over concerns (no gateway: the records
    are produced directly), with short upload URLs so an expiry happens within the test."""
    require_binaries("media-service", "message-consumer", "local-objectstore")
    running = Fleet(ns, fresh_db, tmp_path, sql_files=SQL_FILES,
                    py_jobs=(CREDIT_CHECK, TTL_EXPIRY, MOVE_SAGA),
                    media={"upload_url_expiry_secs": URL_EXPIRY})
    try:
        yield running
    finally:
        running.stop()


def intent(user, request_id, file_name, at=None):
    return {"user_id": user, "file_name": file_name, "media_type": "image/png", "file_size": 3,
            "request_id": request_id, "request_time": iso(at or int(time.time() * 1000))}


def message(user, text, at):
    return {"user_id": user, "email": f"{user}@example.com", "message": text, "timestamp": at,
            "visibility": "broadcast", "recipient_id": None}


def test_the_rust_fleet_takes_over_from_the_go_fleet_without_replays_or_lost_records(ns, fresh_db, fleet):
    now = int(time.time() * 1000)
    t_old, t_0, t_r2, t_go = now - 600_000, now - 120_000, now - 90_000, now - 60_000
    k1, k2 = str(uuid.uuid4()), str(uuid.uuid4())  # the Go service's random staging ids
    r1_path, r2_path = f"uploads/u/{k1}/a.png", f"uploads/u/{k2}/b.png"
    f0 = "files/u/k0/old.png"

    ns.create(*fleet.topics())

    # Arrange 1: the records in retention, with the times they were produced at.
    def at(when, topic, *records):
        ns.produce(topic, list(records), timestamp_ms=when)

    at(t_old, "public.identity.signup.events", signup("u", iso(t_old)))
    at(t_old, "internal.media.upload.intent", intent("u", "R1", "a.png", t_old))
    at(t_old, MEDIA_TOPICS["upload_approved"], intent("u", "R1", "a.png", t_old))
    at(t_old, MEDIA_TOPICS["upload_signed"], {
        "user_id": "u", "file_path": r1_path, "file_name": "a.png", "upload_url": "http://go/r1",
        "expires_in": 900, "request_id": "R1", "signed_time": iso(t_old)})
    at(t_old, MEDIA_TOPICS["upload_received"], {
        "user_id": "u", "email": "u@example.com", "file_path": r1_path, "file_name": "a.png",
        "file_size": 3, "media_type": "image/png", "upload_time": iso(t_old),
        "permanent_path": r1_path.replace("uploads/", "files/", 1), "retry_count": 0})
    at(t_old, "public.media.upload.confirmed", {
        "user_id": "u", "email": "u@example.com", "file_path": r1_path.replace("uploads/", "files/", 1),
        "file_name": "a.png", "file_size": 3, "media_type": "image/png", "upload_time": iso(t_old)})
    at(t_old, MESSAGES, message("u", "m1", iso(t_old)))
    # R2 inside the overlap: asked for and approved just before the original jobs stopped
    at(t_r2, "internal.media.upload.intent", intent("u", "R2", "b.png", t_r2))
    at(t_r2, MEDIA_TOPICS["upload_approved"], intent("u", "R2", "b.png", t_r2))
    # the Go services' last seconds, after the original jobs stopped
    at(t_go, MEDIA_TOPICS["upload_signed"], {
        "user_id": "u", "file_path": r2_path, "file_name": "b.png", "upload_url": "http://go/r2",
        "expires_in": 900, "request_id": "R2", "signed_time": iso(t_go)})
    at(t_go, MEDIA_TOPICS["delete_intent"], {"user_id": "u", "file_path": f0, "request_id": "D0",
                                              "request_time": iso(t_go)})
    at(t_go, MEDIA_TOPICS["delete_events"], {"user_id": "u", "file_path": f0, "file_name": "old.png",
                                              "media_type": "image/png", "file_size": 3,
                                              "delete_time": iso(t_go)})
    at(t_go, MESSAGES, message("u", "m2", iso(t_go)))

    # Arrange 2: the committed offsets of the original groups, one commit interval behind.
    from confluent_kafka import Consumer, TopicPartition

    for group, offsets in ((fleet.media_group, [(MEDIA_TOPICS["upload_approved"], 1),
                                                (MEDIA_TOPICS["delete_intent"], 0)]),
                           (fleet.message_group, [(MESSAGES, 1)])):
        committer = Consumer(ks.kafka_config({"group.id": group}))
        committer.commit(offsets=[TopicPartition(ns.topic(t), 0, o) for t, o in offsets],
                         asynchronous=False)
        committer.close()

    # Arrange 3: the original writers' rows (no keys), R1's object, then the runbook's key step.
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        original_rows(conn, "u", iso(t_old))
        for name, when in (("a.png", t_old + 300), ("b.png", t_r2 + 300)):
            conn.execute("insert into public.credit_ledger (user_id, amount, event_type, description,"
                         " event_time) values ('u', -1, 'credit.upload_deducted', %s, %s)",
                         [f"Upload: {name}", iso(when)])
        conn.execute("insert into public.user_notifications (user_id, event_type, payload, event_time)"
                     " values ('u', 'media.upload_ready', %s, %s)",
                     [json.dumps({"file_name": "a.png", "file_path": r1_path, "request_id": "R1",
                                  "upload_url": "http://go/r1", "expires_in": 900}), iso(t_old)])
        for path, status in ((r1_path.replace("uploads/", "files/", 1), "active"), (f0, "deleted")):
            conn.execute("insert into public.media_files (user_id, file_name, file_path, file_size,"
                         " media_type, status, upload_time) values ('u', %s, %s, 3, 'image/png', %s, %s)",
                         [path.rsplit("/", 1)[1], path, status, iso(t_old)])
        for text, when in (("m1", t_old), ("m2", t_go)):
            conn.execute("insert into public.user_notifications (user_id, event_type, payload,"
                         " event_time, visibility, recipient_id) values ('u', 'user.message', %s, %s,"
                         " 'broadcast', null)",
                         # the Go service's encoding/json: compact
                         [json.dumps({"email": "u@example.com", "message": text}, separators=(",", ":")),
                          iso(when)])
        keyed = conn.execute("select * from cutover.key_pre_cutover_rows()").fetchone()
    assert keyed == (3, 1), "signup, bonus notification, R1's upload_ready; the bonus"
    kept = fleet.store_root / BUCKET / r1_path.replace("uploads/", "files/", 1)
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"aaa")

    # Act 1: the Rust fleet takes over.
    fleet.start_store()
    fleet.start_services()
    environ = ns.environ(
        **ks.db_environ(fresh_db), KAFKA_SOURCE_STARTUP=f"timestamp:{t_0}",
        UPLOAD_TTL_GRACE_SECONDS=str(GRACE), UPLOAD_DETAILS_WAIT_SECONDS="1",
    )
    fleet.start_processors(environ)

    # Act 2: traffic continues. U uploads to the URL the Go service gave out and writes again.
    uploaded = requests.put(presign_put(fleet.store_port, r2_path), data=b"bbb",
                            headers={"Content-Type": "image/png"}, timeout=10)
    assert uploaded.status_code == 200, uploaded.text
    ns.produce(MESSAGES, [message("u", "m3", iso(int(time.time() * 1000)))])
    # V signs up; once the bonus is booked, asks for two uploads.
    ns.produce("public.identity.signup.events", [signup("v", iso(int(time.time() * 1000)))])
    q = lambda sql, *args: rows(fresh_db, sql, *args)  # noqa: E731
    fleet.wait(lambda: q("select 1 from public.credit_ledger where user_id = 'v'"), bool, "V's bonus")
    with ns.reader(MEDIA_TOPICS["upload_signed"]) as signed:
        ns.produce("internal.media.upload.intent", [intent("v", "R3", "c.png"), intent("v", "R4", "d.png")])
        records = fleet.wait(signed.poll, lambda r: any(x["request_id"] == "R4" for x in r), "R4 signed")
    r4 = next(x for x in records if x["request_id"] == "R4")
    put = requests.put(r4["upload_url"], data=b"ddd", headers={"Content-Type": "image/png"}, timeout=10)
    assert put.status_code == 200, put.text
    r4_file = r4["file_path"].replace("uploads/", "files/", 1)
    fleet.wait(lambda: q("select 1 from public.media_files where file_path = %s", r4_file), bool,
               "R4's media row")
    ns.produce(MEDIA_TOPICS["delete_intent"], [{"user_id": "v", "file_path": r4_file, "request_id": "D4",
                                                "request_time": iso(int(time.time() * 1000))}])
    # The last results to wait for: R3's refund (its TTL timer was armed after any second
    # signing of R2 would have been, so an expiry of that would be booked by then), U's upload
    # confirmed, m3 written, D4 done.
    fleet.wait(lambda: q("select 1 from public.credit_ledger where idempotency_key"
                         " = 'credit.upload_refunded:R3'"), bool, "R3's refund", timeout=180)
    fleet.wait(lambda: q("select 1 from public.media_files where file_path = %s",
                         r2_path.replace("uploads/", "files/", 1)), bool, "U's upload confirmed")
    fleet.wait(lambda: q("select 1 from public.user_notifications where payload like '%%m3%%'"), bool, "m3")
    fleet.wait(lambda: q("select status from public.media_files where file_path = %s", r4_file),
               lambda r: r == [("deleted",)], "D4's soft delete")
    fleet.wait(lambda: q("select 1 from public.user_notifications where event_type = 'media.file_deleted'"
                         " and user_id = 'v'"), bool, "D4's notification")
    fleet.wait(fleet.objects, lambda keys: r4_file not in keys, "D4's object removal")

    # Assert: the ledger has one row per effect and no credit was minted.
    ledger = q("select user_id, amount, event_type from public.credit_ledger order by 1, 3, 2")
    assert ledger == [
        ("u", 2, "credit.signup_bonus"), ("u", -1, "credit.upload_deducted"),
        ("u", -1, "credit.upload_deducted"),
        ("v", 2, "credit.signup_bonus"), ("v", -1, "credit.upload_deducted"),
        ("v", -1, "credit.upload_deducted"), ("v", 1, "credit.upload_refunded"),
    ]
    assert q("select idempotency_key from public.credit_ledger where description = 'Upload: b.png'") == [
        ("credit.upload_deducted:R2",)], "R2's intent, read again, claimed the original deduction"
    balances = dict(q("select user_id, balance from public.user_credit_balances"))
    assert balances == {"u": 0, "v": 1}, "credits were minted"
    # Media rows: one per file; objects: the two of U's that remain, nothing in staging.
    files = q("select user_id, file_path, status from public.media_files order by 2")
    assert sorted(files) == sorted([
        ("u", r1_path.replace("uploads/", "files/", 1), "active"), ("u", f0, "deleted"),
        ("u", r2_path.replace("uploads/", "files/", 1), "active"), ("v", r4_file, "deleted"),
    ])
    assert fleet.objects() == sorted([r1_path.replace("uploads/", "files/", 1),
                                      r2_path.replace("uploads/", "files/", 1)])
    # Notifications: none twice; the replayed records answered by nobody a second time.
    doubled = q("select user_id, event_type, payload::jsonb, count(*) from public.user_notifications"
                " group by 1, 2, 3 having count(*) > 1")
    assert doubled == []
    counts = dict(((u, e), n) for u, e, n in q(
        "select user_id, event_type, count(*) from public.user_notifications group by 1, 2"))
    assert counts.get(("u", "user.message")) == 3, "m1, m2 kept, m3 written, m2 not again"
    assert ("u", "media.upload_expired") not in counts, "R2 was signed again and expired"
    assert not [k for k in counts if k[1] == "media.delete_rejected"], "D0 was answered again"
    assert not [k for k in counts if k[1] == "media.upload_rejected"], "R2 was charged again"
    assert counts.get(("u", "media.file_deleted")) == 1
    ready = q("select payload::jsonb ->> 'file_path' from public.user_notifications"
              " where event_type = 'media.upload_ready' and user_id = 'u' order by 1")
    assert sorted(ready) == sorted([(r1_path,), (r2_path,)]), "R2's URL is the Go service's"
    assert counts.get(("v", "media.upload_expired")) == 1
    # Nothing was given up on.
    for dead_letters in (MEDIA_DEAD_LETTER, MESSAGE_DEAD_LETTER):
        with ns.reader(dead_letters) as reader:
            assert reader.poll(2.0) == [], f"records dead-lettered on {dead_letters}"
