#!/usr/bin/env python3
"""Walk through the platform's flows against the running local platform (./taskw up), the way a
newcomer would try them, printing each effect as it appears:

    signup    a user is created in auth.users (what Supabase Auth does); the auth trigger posts
              the signup webhook to the gateway; Flink writes the `identity.signup` notification,
              the +2 signup bonus and its `credit.balance_changed` notification
    message   POST /api/v1/events/message; the message-consumer writes the `user.message` row
    upload    POST /api/v1/media/upload-intent; the credit check deducts a credit, the
              media-service signs a PUT URL (`media.upload_ready`); the file is PUT to the object
              store, moved to files/, recorded in media_files (`media.upload_completed`)
    download  POST /api/v1/media/download-intent; a signed GET URL (`media.download_ready`) that
              serves the uploaded bytes
    delete    POST /api/v1/media/delete-intent; `media.file_deleted`, the row soft-deleted and the
              object removed
    all       the five in order

    .venv/bin/python scripts/demo.py all          (or ./taskw demo, ./taskw demo:upload, ...)

The user created by `signup` is remembered in .local/demo.json so the later steps can run on
their own. Every wait is bounded (DEMO_TIMEOUT seconds, default 60); a missing effect ends the
run with exit status 1 and says what did not happen. Addresses come from local-stack.env; the
JWT secret is the local stack's (SUPABASE_JWT_SECRET overrides it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import supabase_apply  # noqa: E402  (the local stack's addresses)

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_FILE = REPO_ROOT / ".local" / "demo.json"
DATABASE_URL = supabase_apply.local_database_url()
GATEWAY = os.environ.get("DEMO_GATEWAY_URL", "http://127.0.0.1:8080")
JWT_SECRET = os.environ.get(
    "SUPABASE_JWT_SECRET", "super-secret-jwt-token-with-at-least-32-characters-long"
)
TIMEOUT = float(os.environ.get("DEMO_TIMEOUT", "60"))
# A 1x1 transparent PNG: the smallest file that is honestly an image/png.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

T = TypeVar("T")


class DemoFailure(Exception):
    """An effect that should have happened did not."""


def say(text: str) -> None:
    print(text, flush=True)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def access_token(user: dict[str, str]) -> str:
    """An HS256 access token as Supabase Auth issues them (sub, email, aud, role, exp)."""
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "sub": user["id"],
        "email": user["email"],
        "aud": "authenticated",
        "role": "authenticated",
        "iat": int(time.time()),
        "exp": int(time.time()) + 3600,
    }
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(JWT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def wait_for(what: str, probe: Callable[[], T | None], started: float) -> T:
    """Polls `probe` until it returns something, then prints how long the effect took."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = probe()
        if found is not None:
            say(f"  ✓ {what} ({time.monotonic() - started:.2f} s)")
            return found
        if time.monotonic() > deadline:
            raise DemoFailure(f"{what}: nothing after {TIMEOUT:.0f} s (is ./taskw up running, processors included? ./taskw status)")
        time.sleep(0.1)


def query_one(sql: str, *params: Any) -> tuple | None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        return conn.execute(sql, params).fetchone()


def notification(user_id: str, event_type: str, **payload: str) -> Callable[[], dict | None]:
    """A probe for the user's newest notification of `event_type` whose payload has `payload`."""

    def probe() -> dict | None:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            rows = conn.execute(
                "select payload from public.user_notifications"
                " where user_id = %s and event_type = %s order by id desc",
                (user_id, event_type),
            ).fetchall()
        for (text,) in rows:
            body = json.loads(text or "{}")
            if all(body.get(k) == v for k, v in payload.items()):
                return body
        return None

    return probe


def load_state() -> dict[str, Any]:
    if not STATE_FILE.exists():
        raise DemoFailure("no demo user yet: run the signup step first (./taskw demo:signup)")
    return json.loads(STATE_FILE.read_text())


def save_state(state: dict[str, Any]) -> None:
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2))


def uploaded_file() -> tuple[dict[str, Any], dict[str, str], str]:
    """The demo state, its user and the file the upload step left."""
    state = load_state()
    if not state.get("file_path"):
        raise DemoFailure("no uploaded file yet: run the upload step first (./taskw demo:upload)")
    return state, state["user"], state["file_path"]


def post(user: dict[str, str], path: str, body: dict[str, Any], expected: int) -> dict:
    response = requests.post(
        f"{GATEWAY}{path}",
        json=body,
        headers={"Authorization": f"Bearer {access_token(user)}"},
        timeout=10,
    )
    if response.status_code != expected:
        raise DemoFailure(f"POST {path} answered {response.status_code}: {response.text}")
    say(f"  ✓ POST {path} → {response.status_code}")
    return response.json() if response.content else {}


def signup() -> None:
    user = {"id": str(uuid.uuid4()), "email": f"demo-{uuid.uuid4().hex[:8]}@example.com"}
    say(f"signup: {user['email']} ({user['id']})")
    started = time.monotonic()
    # What Supabase Auth does on signup; the on_auth_user_signup trigger takes it from here.
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email, email_confirmed_at) values (%s, %s, now())",
            (user["id"], user["email"]),
        )
    wait_for("notification identity.signup", notification(user["id"], "identity.signup"), started)
    wait_for(
        "ledger: +2 credit.signup_bonus",
        lambda: query_one(
            "select amount from public.credit_ledger where user_id = %s"
            " and event_type = 'credit.signup_bonus'",
            user["id"],
        ),
        started,
    )
    wait_for(
        "notification credit.balance_changed {amount: 2, reason: signup_bonus}",
        notification(user["id"], "credit.balance_changed", reason="signup_bonus"),
        started,
    )
    (balance,) = query_one(
        "select coalesce(sum(amount), 0) from public.credit_ledger where user_id = %s", user["id"]
    ) or (0,)
    say(f"  balance: {balance} credits")
    save_state({"user": user})


def message() -> None:
    user = load_state()["user"]
    text = f"hello from the demo {uuid.uuid4().hex[:6]}"
    say(f"message: {text!r}")
    started = time.monotonic()
    sent_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = {"message": text, "visibility": "broadcast", "timestamp": sent_at}
    post(user, "/api/v1/events/message", body, 204)
    wait_for(
        "notification user.message",
        lambda: query_one(
            "select id from public.user_notifications where user_id = %s"
            " and event_type = 'user.message' and payload like %s",
            user["id"],
            f"%{text}%",
        ),
        started,
    )


def upload() -> None:
    state = load_state()
    user = state["user"]
    say("upload: demo.png (image/png)")
    started = time.monotonic()
    intent = post(
        user,
        "/api/v1/media/upload-intent",
        {"file_name": "demo.png", "media_type": "image/png", "file_size": len(PNG)},
        202,
    )
    ready = wait_for(
        "notification media.upload_ready (credit deducted, PUT URL signed)",
        notification(user["id"], "media.upload_ready", request_id=intent["request_id"]),
        started,
    )
    # The signed URL binds the content type: the PUT must send exactly the one of the intent.
    put = requests.put(
        ready["upload_url"], data=PNG, headers={"Content-Type": "image/png"}, timeout=10
    )
    if put.status_code != 200:
        raise DemoFailure(f"PUT to the signed URL answered {put.status_code}: {put.text}")
    say(f"  ✓ PUT {ready['file_path']} → 200")
    permanent = "files/" + ready["file_path"].removeprefix("uploads/")
    wait_for(
        f"notification media.upload_completed ({permanent})",
        notification(user["id"], "media.upload_completed", file_path=permanent),
        started,
    )
    wait_for(
        "media_files row active",
        lambda: query_one(
            "select id from public.media_files where user_id = %s and file_path = %s"
            " and status = 'active'",
            user["id"],
            permanent,
        ),
        started,
    )
    (balance,) = query_one(
        "select coalesce(sum(amount), 0) from public.credit_ledger where user_id = %s", user["id"]
    ) or (0,)
    say(f"  balance: {balance} credits")
    state["file_path"] = permanent
    save_state(state)


def download() -> None:
    _, user, path = uploaded_file()
    say(f"download: {path}")
    started = time.monotonic()
    intent = post(user, "/api/v1/media/download-intent", {"file_path": path}, 202)
    ready = wait_for(
        "notification media.download_ready (GET URL signed)",
        notification(user["id"], "media.download_ready", request_id=intent["request_id"]),
        started,
    )
    got = requests.get(ready["download_url"], timeout=10)
    if got.status_code != 200 or got.content != PNG:
        raise DemoFailure(f"GET of the signed URL answered {got.status_code} with {len(got.content)} bytes")
    say(f"  ✓ GET → 200, {len(got.content)} bytes, the uploaded file")


def delete() -> None:
    state, user, path = uploaded_file()
    say(f"delete: {path}")
    started = time.monotonic()
    post(user, "/api/v1/media/delete-intent", {"file_path": path}, 202)
    wait_for(
        "notification media.file_deleted",
        notification(user["id"], "media.file_deleted", file_path=path),
        started,
    )
    wait_for(
        "media_files row deleted",
        lambda: query_one(
            "select id from public.media_files where user_id = %s and file_path = %s"
            " and status = 'deleted'",
            user["id"],
            path,
        ),
        started,
    )
    state.pop("file_path")
    save_state(state)


STEPS = {"signup": signup, "message": message, "upload": upload, "download": download, "delete": delete}


def main(argv: list[str]) -> int:
    names = argv or ["all"]
    if names == ["all"]:
        names = list(STEPS)
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        say(f"usage: demo.py [{'|'.join(STEPS)}|all]...; unknown: {', '.join(unknown)}")
        return 2
    try:
        for name in names:
            STEPS[name]()
    except DemoFailure as failure:
        say(f"  ✗ {failure}")
        return 1
    except (requests.ConnectionError, psycopg.OperationalError) as error:
        say(f"  ✗ cannot reach the platform ({error.__class__.__name__}): start it with ./taskw up")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
