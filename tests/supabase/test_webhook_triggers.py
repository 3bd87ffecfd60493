"""The auth webhook triggers (spec 2.1-2.3) deliver real HTTP POSTs.

Each test writes auth.users / auth.sessions as GoTrue's unprivileged role,
lets the real scripts/pgnet_worker.py deliver the queued requests to a local
listener named by the vault's gateway_url, and checks exactly what arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from supabase_testlib import (
    WebhookListener,
    as_gotrue,
    pgnet_worker,
    set_gateway_url,
    stop_worker,
    wait_for_responses,
)

SEEDED_SECRET = "super-secret-webhook-key"
SIGNUP_KEYS = {"user_id", "email", "signup_time"}
LOGIN_KEYS = {"user_id", "email", "login_time", "device_id", "user_agent", "ip_address"}
SIGNOUT_KEYS = {"user_id", "email", "signout_time", "device_id", "user_agent", "ip_address"}


@pytest.fixture
def listener() -> Iterator[WebhookListener]:
    with WebhookListener() as running:
        yield running


@pytest.fixture
def conn(db: str, listener: WebhookListener) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db, autocommit=True) as connection:
        set_gateway_url(connection, listener.url)
        yield connection


def assert_webhook_headers(headers: dict[str, str]) -> None:
    assert headers["x-webhook-secret"] == SEEDED_SECRET
    assert headers["content-type"] == "application/json"


def test_signup_posts_once_to_webhooks_signup(
    db: str, conn: psycopg.Connection, listener: WebhookListener, tmp_path: Path
) -> None:
    with pgnet_worker(db, tmp_path / "worker.log") as worker:
        with as_gotrue(conn):
            user_id, created_at = conn.execute(
                "insert into auth.users (email) values ('new@example.test') returning id, created_at"
            ).fetchone()
        wait_for_responses(conn, 1)
        assert stop_worker(worker) == 0

    [request] = listener.received()
    assert (request.method, request.path) == ("POST", "/webhooks/signup")
    assert_webhook_headers(request.headers)
    assert set(request.body) == SIGNUP_KEYS
    assert request.body["user_id"] == str(user_id)
    assert request.body["email"] == "new@example.test"
    assert datetime.fromisoformat(request.body["signup_time"]) == created_at
    status = conn.execute("select status_code from net._http_response").fetchall()
    assert status == [(204,)]


def test_login_posts_once_when_last_sign_in_at_changes(
    db: str, conn: psycopg.Connection, listener: WebhookListener, tmp_path: Path
) -> None:
    with pgnet_worker(db, tmp_path / "worker.log") as worker:
        with as_gotrue(conn):
            [user_id] = conn.execute(
                "insert into auth.users (email) values ('login@example.test') returning id"
            ).fetchone()
        with as_gotrue(conn):
            # GoTrue touches users for other reasons too: no webhook for these
            conn.execute(
                "update auth.users set email_confirmed_at = now(), updated_at = now() where id = %s",
                [user_id],
            )
        with as_gotrue(conn):
            [signed_in_at] = conn.execute(
                """
                update auth.users
                   set last_sign_in_at = now(),
                       raw_user_meta_data = '{"device_id": "dev-1", "user_agent": "ua/1.0", "ip_address": "198.51.100.4"}'
                 where id = %s
                returning last_sign_in_at
                """,
                [user_id],
            ).fetchone()
        wait_for_responses(conn, 2)
        assert stop_worker(worker) == 0

    logins = [r for r in listener.received() if r.path == "/webhooks/login"]
    assert [r.path for r in listener.received()] == ["/webhooks/signup", "/webhooks/login"]
    [login] = logins
    assert login.method == "POST"
    assert_webhook_headers(login.headers)
    assert set(login.body) == LOGIN_KEYS
    assert login.body["user_id"] == str(user_id)
    assert login.body["email"] == "login@example.test"
    assert datetime.fromisoformat(login.body["login_time"]) == signed_in_at
    assert (login.body["device_id"], login.body["user_agent"], login.body["ip_address"]) == (
        "dev-1",
        "ua/1.0",
        "198.51.100.4",
    )


def test_signout_posts_once_per_deleted_session(
    db: str, conn: psycopg.Connection, listener: WebhookListener, tmp_path: Path
) -> None:
    with pgnet_worker(db, tmp_path / "worker.log") as worker:
        with as_gotrue(conn):
            [user_id] = conn.execute(
                "insert into auth.users (email) values ('bye@example.test') returning id"
            ).fetchone()
            [session_id] = conn.execute(
                "insert into auth.sessions (user_id, user_agent, ip) values (%s, 'ua/2.0', '203.0.113.7')"
                " returning id",
                [user_id],
            ).fetchone()
        with as_gotrue(conn):
            conn.execute("delete from auth.sessions where id = %s", [session_id])
        wait_for_responses(conn, 2)
        assert stop_worker(worker) == 0

    assert [r.path for r in listener.received()] == ["/webhooks/signup", "/webhooks/signout"]
    signout = listener.received()[1]
    assert signout.method == "POST"
    assert_webhook_headers(signout.headers)
    assert set(signout.body) == SIGNOUT_KEYS
    assert signout.body == {
        "user_id": str(user_id),
        "email": "bye@example.test",
        "signout_time": signout.body["signout_time"],
        "device_id": None,
        "user_agent": "ua/2.0",
        "ip_address": "203.0.113.7",
    }
    datetime.fromisoformat(signout.body["signout_time"])


def test_deleting_a_user_sends_a_signout_without_email_for_each_session(
    conn: psycopg.Connection,
) -> None:
    # spec 13.19: the trigger cannot tell a sign-out from the cascade
    with as_gotrue(conn):
        [user_id] = conn.execute(
            "insert into auth.users (email) values ('gone@example.test') returning id"
        ).fetchone()
        conn.execute("insert into auth.sessions (user_id) values (%s), (%s)", [user_id, user_id])
    with as_gotrue(conn):
        conn.execute("delete from auth.users where id = %s", [user_id])

    queued = conn.execute(
        "select convert_from(body, 'UTF8')::jsonb from net.http_request_queue"
        " where url like '%/webhooks/signout' order by id"
    ).fetchall()
    assert [(b["user_id"], b["email"]) for (b,) in queued] == [(str(user_id), None)] * 2


def test_triggers_use_vault_secrets_and_send_nothing_without_a_secret(conn: psycopg.Connection) -> None:
    def queue_signup(email: str) -> tuple[str, dict]:
        with as_gotrue(conn):
            conn.execute("insert into auth.users (email) values (%s)", [email])
        return conn.execute(
            "select url, headers from net.http_request_queue order by id desc limit 1"
        ).fetchone()

    conn.execute(
        "select vault.update_secret(id, 'rotated-secret') from vault.secrets where name = 'webhook_secret'"
    )
    conn.execute("delete from vault.secrets where name = 'gateway_url'")
    conn.execute("select vault.create_secret('http://gateway.internal:9999', 'gateway_url')")
    url, headers = queue_signup("vault@example.test")
    assert url == "http://gateway.internal:9999/webhooks/signup"
    assert headers["X-Webhook-Secret"] == "rotated-secret"

    # Without a gateway_url the local development address is used.
    conn.execute("delete from vault.secrets where name = 'gateway_url'")
    url, headers = queue_signup("fallback@example.test")
    assert url == "http://host.docker.internal:8080/webhooks/signup"
    assert headers == {"Content-Type": "application/json", "X-Webhook-Secret": "rotated-secret"}

    # Without a secret nothing is sent (never a well-known default), and the signup, login
    # and signout themselves still succeed.
    conn.execute("delete from vault.secrets")
    queued = conn.execute("select count(*) from net.http_request_queue").fetchone()
    with as_gotrue(conn):
        user_id = conn.execute(
            "insert into auth.users (email) values ('closed@example.test') returning id"
        ).fetchone()[0]
        conn.execute("update auth.users set last_sign_in_at = now() where id = %s", [user_id])
        conn.execute("insert into auth.sessions (user_id) values (%s)", [user_id])
        conn.execute("delete from auth.sessions where user_id = %s", [user_id])
    assert conn.execute("select count(*) from net.http_request_queue").fetchone() == queued
    assert conn.execute(
        "select count(*) from auth.users where email = 'closed@example.test'"
    ).fetchone() == (1,)


def test_a_rolled_back_signup_sends_nothing(conn: psycopg.Connection) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute("set local role supabase_auth_admin")
        conn.execute("insert into auth.users (email) values ('never@example.test')")

    assert conn.execute("select count(*) from net.http_request_queue").fetchone() == (0,)
