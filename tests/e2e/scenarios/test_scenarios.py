"""The seed scenarios of spec §11.1 end to end, against one running fleet of this module: the
api-gateway, media-service and message-consumer binaries, a local-objectstore whose MinIO-style
webhooks reach the media-service, a pg_net worker delivering the auth triggers' webhooks to the
gateway, and every processor (the six Flink SQL files as one job; the credit check, TTL expiry,
move saga and echo PyFlink jobs), all on the module's own topics, consumer groups, database and
object store root (flink_jobs/tests/fleet.py). Starting it takes about a minute; the warmup then
waits until a canary has gone through signup and a whole upload.

What differs from the original Node suite, and why:
- There is no GoTrue locally. Auth is what GoTrue does to the database, as its role
  supabase_auth_admin: a signup inserts into auth.users, a login sets last_sign_in_at (with the
  device metadata), a sign-out deletes an auth.sessions row; the migrations' triggers queue the
  webhooks and the pg_net worker posts them to the gateway. Access tokens are HS256 JWTs signed
  with the fleet's secret, with the claims Supabase Auth issues.
- Reads "as the user" go straight to Postgres as the `authenticated` role with
  `request.jwt.claims` set, which is what PostgREST does with the user's token; every other read
  is the owner's (the spec's admin client).
- The legacy upload route deducts a credit (services spec §9 B8: uploads were free), so the
  balance after a legacy upload is 1, not 2.
- The delete-retry consumer is its own group (media-service-delete-retry), not the saga group:
  delete_retry_health watches that group's committed offset.
- telemetry_health covers /healthz and /readyz of the three services (message-consumer too).
  Prometheus targets, Grafana dashboards and datasources are not part of the local stack, so
  their checks are left out.
- Where the spec only warns (a non-202 warmup intent, a download rejection reason other than
  not_found), these tests assert, since the services' answers are known.
Beyond the spec: effects are also checked on the topics (unified events, the login echo, the
saga topics), in the object store (objects moved, served and removed), and at the end no
notification or ledger row exists twice and nothing was dead-lettered by a service.

Runs under the processors' runner (.venv-flink, PyFlink): `./taskw test:e2e` or
`bash scripts/processors/test.sh tests/e2e/scenarios`. Needs the local stack and the debug
binaries of the Rust test run ($CARGO_TARGET_DIR/debug, default target/debug). On the stack's
production profile (.local/run/profile, or STACK_PROFILE) the fleet connects as deployed: SASL_SSL,
registry credentials, the services' Postgres roles over verified TLS, exactly-once sinks
(flink_jobs/tests/fleet.py); the harness's own clients use kafka_stack's settings.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

E2E_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(E2E_DIR))  # e2elib (the e2e suites' JWT helper and secret)
sys.path.insert(0, str(E2E_DIR.parent / "supabase"))  # supabase_testlib (fresh databases)

import e2elib  # noqa: E402
from supabase_testlib import fresh_database  # noqa: E402

from flink_jobs.tests.fleet import (  # noqa: E402
    BINARIES,
    BUCKET,
    MEDIA_DEAD_LETTER,
    MEDIA_TOPICS,
    MESSAGE_DEAD_LETTER,
    Fleet,
    require_binaries,
)
from pyflink_jobs.tests import kafka_stack as ks  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.flink, pytest.mark.kafka, pytest.mark.postgres]

PNG = "image/png"
#: The warmup's deadline (spec: 180 s): the first effects wait for the processors to start.
WARMUP_TIMEOUT = 180.0
#: The delete-retry backoff base of the fleet (default 5 s): a retry is due this soon.
DELETE_RETRY_BASE_MS = 500


# -------------------------------------------------------------------------------- the fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The module's fleet: its own topics (Kafka namespace), database, object store root and
    ports; every part stopped, the database dropped and the topics deleted afterwards."""
    require_binaries(*BINARIES)
    with ks.namespace() as ns, fresh_database(seed=False) as db:
        running = Fleet(ns, db, tmp_path_factory.mktemp("fleet"), jwt_secret=e2elib.SECRET,
                        media={"delete_retry_base_delay_ms": DELETE_RETRY_BASE_MS})
        try:
            started = time.monotonic()
            ns.create(*running.topics())
            running.start_store()
            running.start_services()
            running.start_gateway()
            running.start_auth_webhooks()
            services = time.monotonic() - started
            running.start_processors(ns.environ(**ks.db_environ(db)))
            jobs = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in running.submitted.items())
            print(f"fleet: services up after {services:.1f} s, processors submitted after "
                  f"{time.monotonic() - started:.1f} s ({jobs}); logs in {running.tmp}")
            yield running
        finally:
            running.stop()


# -------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class User:
    id: str
    email: str

    def token(self) -> str:
        now = int(time.time())
        return e2elib.hs256({"sub": self.id, "email": self.email, "role": "authenticated",
                             "aud": "authenticated", "iat": now, "exp": now + 3600})


@dataclass(frozen=True)
class Upload:
    request_id: str
    staging_path: str
    file_path: str  # the permanent path
    file_name: str
    content: bytes


def new_user(prefix: str) -> User:
    return User(str(uuid.uuid4()), f"{prefix}-{uuid.uuid4().hex[:6]}@e2e-test.local")


def as_gotrue(fleet: Fleet, statement: str, *params) -> None:
    """A write to the auth schema as GoTrue makes it: its role, in a committed transaction
    (pg_net queues the triggers' requests only when it commits)."""
    with psycopg.connect(fleet.db, autocommit=True) as conn, conn.transaction():
        conn.execute("set local role supabase_auth_admin")
        conn.execute(statement, params)


def as_user(fleet: Fleet, user: User, query: str, *params) -> list[tuple]:
    """Rows a query returns for the user through RLS, as PostgREST runs it for their token."""
    with psycopg.connect(fleet.db) as conn, conn.transaction(force_rollback=True):
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     [json.dumps({"sub": user.id, "role": "authenticated", "email": user.email})])
        return conn.execute(query, params).fetchall()


def notifications(fleet: Fleet, user: User | str, event_type: str) -> list[dict]:
    user_id = user.id if isinstance(user, User) else user
    return [json.loads(payload) for (payload,) in fleet.query(
        "select payload from public.user_notifications where user_id = %s and event_type = %s"
        " order by id", user_id, event_type)]


def wait_notification(fleet: Fleet, user: User | str, event_type: str, timeout: float = ks.RESULT_TIMEOUT,
                      **match: Any) -> dict:
    """The user's notification of `event_type` whose payload has the `match` fields."""
    found = fleet.wait(
        lambda: [p for p in notifications(fleet, user, event_type)
                 if all(p.get(k) == v for k, v in match.items())],
        bool, f"{event_type} {match or ''} for {getattr(user, 'email', user)}", timeout)
    return found[0]


def ledger(fleet: Fleet, user: User, event_type: str) -> list[tuple]:
    return fleet.query("select amount, description, idempotency_key from public.credit_ledger"
                       " where user_id = %s and event_type = %s order by id", user.id, event_type)


def balance(fleet: Fleet, user: User) -> int | None:
    found = fleet.query("select balance from public.user_credit_balances where user_id = %s", user.id)
    return found[0][0] if found else None


def media_row(fleet: Fleet, path: str) -> list[tuple]:
    return fleet.query("select user_id, file_name, file_size, media_type, status from public.media_files"
                       " where file_path = %s", path)


def api(fleet: Fleet, user: User | None, path: str, body: dict) -> requests.Response:
    headers = {"Authorization": f"Bearer {user.token()}"} if user else {}
    return requests.post(fleet.url("api-gateway", path), json=body, headers=headers, timeout=15)


def content() -> bytes:
    """A small body, different for every upload, so a served object is known to be this one."""
    return b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes


def put(url: str, body: bytes) -> None:
    """A real PUT to the presigned URL (127.0.0.1, the Host the URL was signed for); the
    signature binds the content type of the intent."""
    response = requests.put(url, data=body, headers={"Content-Type": PNG}, timeout=15)
    assert response.status_code == 200, f"PUT {url}: {response.status_code} {response.text}"


def stored(fleet: Fleet, key: str) -> bytes | None:
    path = fleet.store_root / BUCKET / key
    return path.read_bytes() if path.is_file() else None


def signup(fleet: Fleet, prefix: str, timeout: float = ks.RESULT_TIMEOUT) -> User:
    """A new user, once their `identity.signup` notification is written."""
    user = new_user(prefix)
    as_gotrue(fleet, "insert into auth.users (id, email, email_confirmed_at) values (%s, %s, now())",
              user.id, user.email)
    wait_notification(fleet, user, "identity.signup", timeout=timeout)
    return user


def with_credits(fleet: Fleet, prefix: str) -> User:
    """A new user whose signup bonus is booked (balance 2)."""
    user = signup(fleet, prefix)
    fleet.wait(lambda: balance(fleet, user), lambda b: b == 2, f"{user.email}'s signup bonus")
    return user


def saga_upload(fleet: Fleet, user: User, file_name: str, timeout: float = ks.RESULT_TIMEOUT) -> Upload:
    """Upload intent -> media.upload_ready -> PUT -> the media_files row, as the frontend does."""
    body = content()
    response = api(fleet, user, "/api/v1/media/upload-intent",
                   {"file_name": file_name, "media_type": PNG, "file_size": len(body)})
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    ready = wait_notification(fleet, user, "media.upload_ready", timeout, request_id=request_id)
    put(ready["upload_url"], body)
    permanent = "files/" + ready["file_path"].removeprefix("uploads/")
    fleet.wait(lambda: media_row(fleet, permanent), bool, f"media_files row of {file_name}", timeout)
    return Upload(request_id, ready["file_path"], permanent, file_name, body)


def legacy_upload(fleet: Fleet, user: User, file_name: str) -> tuple[dict, Upload]:
    """POST /api/v1/media/upload-url (synchronous) -> PUT -> the media_files row."""
    body = content()
    response = api(fleet, user, "/api/v1/media/upload-url",
                   {"file_name": file_name, "media_type": PNG, "file_size": len(body)})
    assert response.status_code == 200, response.text
    answer = response.json()
    put(answer["upload_url"], body)
    permanent = "files/" + answer["file_path"].removeprefix("uploads/")
    fleet.wait(lambda: media_row(fleet, permanent), bool, f"media_files row of {file_name}")
    return answer, Upload("", answer["file_path"], permanent, file_name, body)


def on_topic(fleet: Fleet, base: str, what: str, **match: Any) -> dict:
    """The first record of the run's topic `base` with the `match` fields."""
    with fleet.ns.reader(base) as reader:
        found = fleet.wait(
            lambda: [r for r in reader.poll() if all(r.get(k) == v for k, v in match.items())],
            bool, f"{what} on {base}")
    return found[0]


@dataclass(frozen=True)
class Warmup:
    canary: User
    upload: Upload
    seconds: float


@pytest.fixture(scope="module")
def warmup(fleet) -> Warmup:
    """Spec: warmup.mjs. A canary signs up, signs in and uploads a file, with the generous
    deadline of a fleet whose processors are still starting. Every scenario depends on it, so
    when it fails they all fail at once with its error instead of waiting out their own
    deadlines."""
    started = time.monotonic()
    canary = signup(fleet, "warmup", timeout=WARMUP_TIMEOUT)
    fleet.wait(lambda: ledger(fleet, canary, "credit.signup_bonus"), bool, "the canary's signup bonus",
               timeout=WARMUP_TIMEOUT)
    as_gotrue(fleet, "update auth.users set last_sign_in_at = now() where id = %s", canary.id)
    wait_notification(fleet, canary, "identity.login", timeout=WARMUP_TIMEOUT)
    upload = saga_upload(fleet, canary, "warmup-canary.png", timeout=WARMUP_TIMEOUT)
    return Warmup(canary, upload, time.monotonic() - started)


@pytest.fixture
def platform(fleet, warmup) -> Fleet:
    """The fleet, warmed up."""
    return fleet


# -------------------------------------------------------------------------------- scenarios


def test_warmup(platform, warmup) -> None:
    """The canary went through signup, the bonus, a login, an upload intent, the signed URL,
    the PUT and the move; its file is stored under files/ and its row is active."""
    warm = warmup
    assert media_row(platform, warm.upload.file_path)[0][1:] == (
        "warmup-canary.png", len(warm.upload.content), PNG, "active")
    assert platform.wait(lambda: stored(platform, warm.upload.file_path), bool,
                         "the canary's object under files/") == warm.upload.content
    print(f"warmup: {warm.seconds:.1f} s")


def test_signup(platform) -> None:
    user = signup(platform, "signup")
    [payload] = notifications(platform, user, "identity.signup")
    assert payload == {"email": user.email}
    [(event_time,)] = platform.query("select event_time from public.user_notifications"
                                     " where user_id = %s and event_type = 'identity.signup'", user.id)
    unified = on_topic(platform, "internal.platform.unified.events", "the SIGNUP event",
                       user_id=user.id, event_type="SIGNUP")
    assert unified["event_id"] == f"{user.id}_{event_time}"
    assert (unified["email"], unified["event_time"]) == (user.email, event_time)


def test_login(platform) -> None:
    user = signup(platform, "login")
    device = {"device_id": "e2e-device", "user_agent": "e2e-agent/1.0", "ip_address": "10.1.2.3"}
    as_gotrue(platform, "update auth.users set last_sign_in_at = now(), raw_user_meta_data = %s"
              " where id = %s", json.dumps(device), user.id)
    payload = wait_notification(platform, user, "identity.login")
    assert payload == {"email": user.email, **device}
    unified = on_topic(platform, "internal.platform.unified.events", "the LOGIN event",
                       user_id=user.id, event_type="LOGIN")
    assert {k: unified[k] for k in device} == device
    echo = on_topic(platform, "internal.identity.login.echo", "the echoed login", user_id=user.id)
    assert {k: echo[k] for k in ("email", *device)} == {"email": user.email, **device}


def test_signout(platform) -> None:
    user = signup(platform, "signout")
    as_gotrue(platform, "update auth.users set last_sign_in_at = now() where id = %s", user.id)
    wait_notification(platform, user, "identity.login")
    session = str(uuid.uuid4())
    as_gotrue(platform, "insert into auth.sessions (id, user_id, user_agent, ip) values (%s, %s, %s, %s)",
              session, user.id, "e2e-browser", "192.0.2.7")
    as_gotrue(platform, "delete from auth.sessions where id = %s", session)
    payload = wait_notification(platform, user, "identity.signout")
    assert payload == {"email": user.email, "device_id": None, "user_agent": "e2e-browser",
                       "ip_address": "192.0.2.7"}
    on_topic(platform, "internal.platform.unified.events", "the SIGNOUT event",
             user_id=user.id, event_type="SIGNOUT", email=user.email)


def test_message(platform) -> None:
    user = new_user("message")
    text = f"hello from e2e {uuid.uuid4().hex[:8]}"
    response = api(platform, user, "/api/v1/events/message", {
        "message": text, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "visibility": "direct", "recipient_id": user.id,
        "email": "someone-else@example.com"})  # the token's email wins
    assert response.status_code == 204, response.text
    payload = wait_notification(platform, user, "user.message", message=text)
    assert payload == {"email": user.email, "message": text}
    assert platform.query("select visibility, recipient_id from public.user_notifications"
                          " where user_id = %s and event_type = 'user.message'", user.id) == [
        ("direct", user.id)]
    assert api(platform, None, "/api/v1/events/message", {"message": text}).status_code == 401


def test_rls_isolation(platform) -> None:
    a, b = signup(platform, "rls-a"), signup(platform, "rls-b")
    identity = ("select user_id, event_type from public.user_notifications"
                " where event_type like 'identity.%%'")
    assert as_user(platform, b, identity) == [(b.id, "identity.signup")]
    assert as_user(platform, a, identity) == [(a.id, "identity.signup")]
    text = f"only for me {uuid.uuid4().hex[:8]}"
    response = api(platform, a, "/api/v1/events/message",
                   {"message": text, "timestamp": "2026-01-01T00:00:00Z", "visibility": "direct",
                    "recipient_id": a.id})
    assert response.status_code == 204, response.text
    wait_notification(platform, a, "user.message", message=text)
    messages = "select user_id from public.user_notifications where event_type = 'user.message'"
    assert (a.id,) in as_user(platform, a, messages)
    assert (a.id,) not in as_user(platform, b, messages)
    # the credit ledger, the balance view and media rows are the owner's alone too
    platform.wait(lambda: balance(platform, a), lambda x: x == 2, "a's bonus")
    assert as_user(platform, b, "select 1 from public.credit_ledger where user_id = %s", a.id) == []
    assert as_user(platform, b, "select 1 from public.user_credit_balances where user_id = %s", a.id) == []
    assert as_user(platform, a, "select balance from public.user_credit_balances") == [(2,)]
    # nobody writes the read model through the API
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_user(platform, b, "insert into public.user_notifications (user_id, event_type, payload,"
                " event_time) values (%s, 'identity.signup', '{}', 'now')", a.id)


def test_credit_economy(platform) -> None:
    user = signup(platform, "credits")
    payload = wait_notification(platform, user, "credit.balance_changed", reason="signup_bonus")
    assert payload == {"amount": 2, "reason": "signup_bonus"}
    assert platform.wait(lambda: ledger(platform, user, "credit.signup_bonus"), bool, "the bonus") == [
        (2, "Welcome bonus: 2 credits", f"credit.signup_bonus:{user.id}")]
    assert balance(platform, user) == 2


def test_media_upload(platform) -> None:
    """The legacy synchronous path: upload-url answers the signed PUT at once."""
    user = with_credits(platform, "legacy-upload")
    answer, upload = legacy_upload(platform, user, "legacy.png")
    assert answer["file_path"].startswith(f"uploads/{user.id}/")
    assert answer["file_path"].endswith("/legacy.png")
    assert answer["expires_in"] > 0
    assert media_row(platform, upload.file_path) == [(user.id, "legacy.png", len(upload.content), PNG, "active")]
    completed = wait_notification(platform, user, "media.upload_completed", file_path=upload.file_path)
    assert completed["file_name"] == "legacy.png"
    # the object was moved: served from files/, gone from staging
    platform.wait(lambda: stored(platform, upload.file_path), lambda b: b == upload.content,
                  "the object under files/")
    platform.wait(lambda: stored(platform, upload.staging_path), lambda b: b is None, "staging emptied")
    # one credit spent in the same transaction as the check (the original route was free)
    assert [amount for amount, *_ in ledger(platform, user, "credit.upload_deducted")] == [-1]
    assert balance(platform, user) == 1


def test_media_download_delete(platform) -> None:
    user = with_credits(platform, "legacy-files")
    _, upload = legacy_upload(platform, user, "keep-or-delete.png")
    response = api(platform, user, "/api/v1/media/download-url", {"file_path": upload.file_path})
    assert response.status_code == 200, response.text
    download = response.json()
    assert "keep-or-delete.png" in download["download_url"] and download["expires_in"] > 0
    got = requests.get(download["download_url"], timeout=15)
    assert (got.status_code, got.content) == (200, upload.content)
    on_topic(platform, "public.media.download.events", "the download audit event",
             user_id=user.id, file_path=upload.file_path)

    response = api(platform, user, "/api/v1/media/delete", {"file_path": upload.file_path})
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert media_row(platform, upload.file_path)[0][-1] == "deleted"
    assert as_user(platform, user, "select 1 from public.media_files where file_path = %s",
                   upload.file_path) == []
    # removed before the answer, or handed to the delete saga's retries if that failed
    platform.wait(lambda: stored(platform, upload.file_path), lambda b: b is None, "the object removed")
    wait_notification(platform, user, "media.file_deleted", file_path=upload.file_path,
                      file_name="keep-or-delete.png")
    again = api(platform, user, "/api/v1/media/download-url", {"file_path": upload.file_path})
    assert again.status_code == 404, again.text


def test_upload_saga(platform) -> None:
    user = with_credits(platform, "saga-upload")
    body = content()
    response = api(platform, user, "/api/v1/media/upload-intent",
                   {"file_name": "saga.png", "media_type": PNG, "file_size": len(body)})
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    ready = wait_notification(platform, user, "media.upload_ready", request_id=request_id)
    assert ready["file_path"].startswith(f"uploads/{user.id}/") and ready["file_path"].endswith("/saga.png")
    assert ready["upload_url"] and ready["expires_in"] > 0
    # the deduction came before the URL: the credit check approved the intent
    assert ledger(platform, user, "credit.upload_deducted") == [
        (-1, "Upload: saga.png", f"credit.upload_deducted:{request_id}")]
    assert balance(platform, user) == 1
    put(ready["upload_url"], body)

    permanent = "files/" + ready["file_path"].removeprefix("uploads/")
    completed = wait_notification(platform, user, "media.upload_completed", file_name="saga.png")
    assert completed == {"file_path": permanent, "file_name": "saga.png", "file_size": len(body),
                         "media_type": PNG}
    # the completion's path is the staging path moved to files/, and the row has it
    platform.wait(lambda: media_row(platform, permanent), bool, "the media_files row")
    assert media_row(platform, permanent) == [(user.id, "saga.png", len(body), PNG, "active")]
    assert stored(platform, permanent) == body
    assert balance(platform, user) == 1


def test_download_delete_saga(platform) -> None:
    user = with_credits(platform, "saga-files")
    upload = saga_upload(platform, user, "saga-files.png")

    response = api(platform, user, "/api/v1/media/download-intent", {"file_path": upload.file_path})
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    ready = wait_notification(platform, user, "media.download_ready", request_id=request_id)
    assert ready["file_path"] == upload.file_path and ready["expires_in"] > 0
    assert "saga-files.png" in urlparse(ready["download_url"]).path
    got = requests.get(ready["download_url"], timeout=15)
    assert (got.status_code, got.content) == (200, upload.content)

    response = api(platform, user, "/api/v1/media/delete-intent", {"file_path": upload.file_path})
    assert response.status_code == 202, response.text
    deleted = wait_notification(platform, user, "media.file_deleted", file_path=upload.file_path)
    assert deleted == {"file_path": upload.file_path, "file_name": "saga-files.png"}
    assert media_row(platform, upload.file_path)[0][-1] == "deleted"
    assert as_user(platform, user, "select 1 from public.media_files where file_path = %s",
                   upload.file_path) == []
    platform.wait(lambda: stored(platform, upload.file_path), lambda b: b is None, "the object removed")

    response = api(platform, user, "/api/v1/media/download-intent", {"file_path": upload.file_path})
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    rejected = wait_notification(platform, user, "media.download_rejected", request_id=request_id)
    assert rejected == {"file_path": upload.file_path, "reason": "not_found", "request_id": request_id}


def test_move_saga(platform) -> None:
    user = with_credits(platform, "move")
    upload = saga_upload(platform, user, "move.png")
    assert upload.staging_path.startswith("uploads/")
    assert upload.file_path == "files/" + upload.staging_path.removeprefix("uploads/")
    completed = wait_notification(platform, user, "media.upload_completed", file_path=upload.file_path)
    assert completed["file_name"] == "move.png"
    assert media_row(platform, upload.file_path)[0][-1] == "active"
    assert [amount for amount, *_ in ledger(platform, user, "credit.upload_deducted")] == [-1]
    assert balance(platform, user) == 1
    # the saga's steps on their topics: received (first attempt), ready, confirmed
    received = on_topic(platform, MEDIA_TOPICS["upload_received"], "the upload",
                        file_path=upload.staging_path)
    assert (received["permanent_path"], received["retry_count"]) == (upload.file_path, 0)
    on_topic(platform, MEDIA_TOPICS["file_ready"], "the moved file", file_path=upload.file_path)
    confirmed = on_topic(platform, "public.media.upload.confirmed", "the confirmation",
                         file_path=upload.file_path)
    assert (confirmed["user_id"], confirmed["file_name"]) == (user.id, "move.png")
    assert stored(platform, upload.file_path) == upload.content
    assert stored(platform, upload.staging_path) is None

    response = api(platform, user, "/api/v1/media/download-intent", {"file_path": upload.file_path})
    assert response.status_code == 202, response.text
    ready = wait_notification(platform, user, "media.download_ready", request_id=response.json()["request_id"])
    assert ready["download_url"].startswith("http://127.0.0.1:")


def test_saga_timer_health(platform) -> None:
    """An upload that was received after three retries and never moved: the move saga's timer
    gives up (dead letter), which the user sees as media.upload_failed."""
    user_id, key = str(uuid.uuid4()), uuid.uuid4()
    staging = f"uploads/{user_id}/{key}/never-moved.png"
    permanent = f"files/{user_id}/{key}/never-moved.png"
    platform.ns.produce(MEDIA_TOPICS["upload_received"], [{
        "user_id": user_id, "email": "ghost@e2e-test.local", "file_path": staging,
        "file_name": "never-moved.png", "file_size": 3, "media_type": PNG,
        "upload_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "permanent_path": permanent, "retry_count": 3,
    }])
    failed = wait_notification(platform, user_id, "media.upload_failed")
    # file_path (the permanent path) beyond the spec's payload: spec 13.10, the browser's waiter
    # needs something to match the outcome of its upload by
    assert failed == {"file_name": "never-moved.png", "failure_reason": "max retries exceeded",
                      "retry_count": 3, "file_path": permanent}
    dead = on_topic(platform, "internal.media.upload.dead-letter", "the dead letter", user_id=user_id)
    assert (dead["file_path"], dead["retry_count"]) == (staging, 3)


def committed_offset(group: str, topic: str) -> int:
    consumer = Consumer(ks.kafka_config({"group.id": group}))
    try:
        [partition] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return partition.offset
    finally:
        consumer.close()


def high_watermark(topic: str) -> int:
    """The offset the next record of the topic's only partition gets."""
    consumer = Consumer(ks.kafka_config({"group.id": f"watermarks-{uuid.uuid4().hex[:6]}"}))
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        consumer.close()


def assigned(group: str, topic: str) -> bool:
    """Whether a member of the group holds the topic's partition (so a record produced now is
    read by it, even with start_at latest)."""
    # the client must outlive the future: a collected AdminClient never completes it
    admin = AdminClient(ks.kafka_config())
    [future] = admin.describe_consumer_groups([group], request_timeout=10).values()
    description = future.result(timeout=15)
    return any(tp.topic == topic for member in description.members
               for tp in (member.assignment.topic_partitions if member.assignment else []))


def test_delete_retry_health(platform) -> None:
    """A removal handed to the delete saga's retry loop is carried out and its record
    committed by the media-service's delete-retry group; nothing is dead-lettered."""
    retry_topic = platform.ns.topic(MEDIA_TOPICS["delete_retry"])
    dead_topic = platform.ns.topic(MEDIA_TOPICS["delete_dead_letter"])
    listed = AdminClient(ks.kafka_config()).list_topics(timeout=10).topics
    assert retry_topic in listed and dead_topic in listed
    for topic in (retry_topic, dead_topic):
        latest = requests.get(f"{ks.REGISTRY_URL}/subjects/{topic}-value/versions/latest",
                              auth=ks.registry_auth(), timeout=10)
        assert latest.status_code == 200 and latest.json()["schema"], latest.text

    # an object the first removal missed: written into the store's directory, so no webhook
    user_id = str(uuid.uuid4())
    key = f"files/{user_id}/{uuid.uuid4()}/leftover.png"
    leftover = platform.store_root / BUCKET / key
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"old")
    platform.wait(lambda: assigned(platform.retry_group, retry_topic), bool,
                  "the delete-retry group to hold the retry topic", timeout=60)
    high = high_watermark(retry_topic)
    request_id = str(uuid.uuid4())
    platform.ns.produce(MEDIA_TOPICS["delete_retry"], [{
        "user_id": user_id, "file_path": key, "file_name": "leftover.png", "media_type": PNG,
        "file_size": 3, "request_id": request_id, "retry_count": 0,
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }])
    platform.wait(lambda: committed_offset(platform.retry_group, retry_topic), lambda o: o > high,
                  f"the delete-retry group's offset past {high}")
    assert not leftover.exists(), "the retried removal did not remove the object"
    with platform.ns.reader(MEDIA_TOPICS["delete_dead_letter"]) as reader:
        assert [r for r in reader.poll(2.0) if r["request_id"] == request_id] == []


def test_telemetry_health(platform) -> None:
    for service in ("api-gateway", "media-service", "message-consumer"):
        health = requests.get(platform.url(service, "/healthz"), timeout=5)
        assert (health.status_code, health.json().get("status")) == (200, "ok"), (service, health.text)
        ready = requests.get(platform.url(service, "/readyz"), timeout=5)
        assert (ready.status_code, ready.json().get("status")) == (200, "ok"), (service, ready.text)


def test_nothing_twice_and_nothing_dead_lettered(platform) -> None:
    """Beyond the spec, over everything the scenarios did: no notification or ledger row was
    written twice, and no service gave up on a record."""
    doubled = platform.query("select user_id, event_type, payload, count(*) from public.user_notifications"
                             " group by 1, 2, 3 having count(*) > 1")
    assert doubled == []
    assert platform.query("select user_id, event_type, description, count(*) from public.credit_ledger"
                          " group by 1, 2, 3 having count(*) > 1") == []
    assert platform.query("select user_id, balance from public.user_credit_balances where balance < 0") == []
    for dead_letters in (MEDIA_DEAD_LETTER, MESSAGE_DEAD_LETTER):
        with platform.ns.reader(dead_letters) as reader:
            assert reader.poll(2.0) == [], f"records dead-lettered on {dead_letters}"
