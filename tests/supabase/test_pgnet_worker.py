"""The local pg_net stand-in: net.http_post has pg_net's signature and queues
requests; scripts/pgnet_worker.py delivers them, records the outcome, retries
only connection errors, survives a missing schema and exits 0 on SIGTERM."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from supabase_testlib import (
    WebhookListener,
    fresh_database,
    pgnet_worker,
    stop_worker,
    supabase_apply,
    wait_for_responses,
    wait_until_started,
)

PG_NET_SIGNATURE = (
    "url text, body jsonb DEFAULT '{}'::jsonb, params jsonb DEFAULT '{}'::jsonb, "
    "headers jsonb DEFAULT '{\"Content-Type\": \"application/json\"}'::jsonb, "
    "timeout_milliseconds integer DEFAULT 5000"
)


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db, autocommit=True) as connection:
        yield connection


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_http_post_has_the_pg_net_signature(conn: psycopg.Connection) -> None:
    arguments, result = conn.execute(
        "select pg_get_function_arguments(p.oid), pg_get_function_result(p.oid)"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'net' and p.proname = 'http_post'"
    ).fetchone()

    assert arguments == PG_NET_SIGNATURE
    assert result == "bigint"


def test_http_post_queues_defaults_and_encodes_params(conn: psycopg.Connection) -> None:
    [plain] = conn.execute("select net.http_post('http://example.test/hook')").fetchone()
    [with_params] = conn.execute(
        """select net.http_post(
             url := 'http://example.test/hook?x=1',
             body := '{"k": "v"}',
             params := '{"a b": "ü&=", "z": "1"}',
             timeout_milliseconds := 250)"""
    ).fetchone()

    rows = conn.execute(
        "select id, method, url, headers, convert_from(body, 'UTF8'), timeout_milliseconds"
        " from net.http_request_queue order by id"
    ).fetchall()
    assert rows == [
        (plain, "POST", "http://example.test/hook", {"Content-Type": "application/json"}, "{}", 5000),
        (
            with_params,
            "POST",
            "http://example.test/hook?x=1&a%20b=%C3%BC%26%3D&z=1",
            {"Content-Type": "application/json"},
            '{"k": "v"}',
            250,
        ),
    ]


def test_api_roles_cannot_call_http_post(conn: psycopg.Connection) -> None:
    for role in ("anon", "authenticated", "service_role"):
        allowed = conn.execute(
            "select has_function_privilege("
            "%s, 'net.http_post(text, jsonb, jsonb, jsonb, integer)', 'execute')",
            [role],
        ).fetchone()
        assert allowed == (False,), role


def test_worker_records_http_errors_without_retrying(
    db: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    with WebhookListener(status=401) as listener, pgnet_worker(db, tmp_path / "w.log") as worker:
        [request_id] = conn.execute(
            "select net.http_post(%s, '{\"n\": 1}', headers := '{\"X-Test\": \"yes\"}')",
            [listener.url + "/webhooks/login"],
        ).fetchone()
        wait_for_responses(conn, 1)
        assert stop_worker(worker) == 0
        received = listener.received()

    assert [(r.path, r.headers["x-test"], r.body) for r in received] == [
        ("/webhooks/login", "yes", {"n": 1})
    ]
    response = conn.execute(
        "select id, status_code, timed_out, error_msg, attempts from net._http_response"
    ).fetchall()
    assert response == [(request_id, 401, False, None, 1)]


def test_worker_retries_connection_errors_then_records_the_failure(
    db: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("select net.http_post(%s)", [f"http://127.0.0.1:{unused_port()}/nobody-home"])

    with pgnet_worker(db, tmp_path / "w.log", PGNET_MAX_ATTEMPTS="3") as worker:
        wait_for_responses(conn, 1)
        assert stop_worker(worker) == 0

    status, error, attempts = conn.execute(
        "select status_code, error_msg, attempts from net._http_response"
    ).fetchone()
    assert status is None
    assert "Connection refused" in error
    assert attempts == 3
    log = (tmp_path / "w.log").read_text()
    assert log.count("retrying in") == 2


def test_an_unsendable_request_is_recorded_and_does_not_block_the_queue(
    db: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    with WebhookListener() as listener, pgnet_worker(db, tmp_path / "w.log") as worker:
        conn.execute("select net.http_post('not a url')")
        conn.execute("select net.http_post(%s)", [listener.url + "/after"])
        wait_for_responses(conn, 2)
        assert stop_worker(worker) == 0
        received = listener.received()

    results = conn.execute(
        "select status_code, coalesce(error_msg, '') like 'invalid request:%'"
        " from net._http_response order by id"
    ).fetchall()
    assert results == [(None, True), (204, False)]
    assert [r.path for r in received] == ["/after"]


def test_worker_waits_for_the_schema_and_then_delivers(tmp_path: Path) -> None:
    # The local stack may start the worker before the schema is applied.
    with fresh_database(migrations=False) as dsn, WebhookListener() as listener:
        with pgnet_worker(dsn, tmp_path / "w.log") as worker:
            wait_until_started(tmp_path / "w.log")
            time.sleep(0.5)
            assert worker.poll() is None, "worker exited while net schema was missing"

            supabase_apply.apply(dsn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("select net.http_post(%s)", [listener.url + "/late"])
                wait_for_responses(conn, 1, timeout=20)
            assert stop_worker(worker) == 0

        assert [r.path for r in listener.received()] == ["/late"]
    assert "does not exist" in (tmp_path / "w.log").read_text()


def test_worker_exits_zero_on_sigterm_when_idle(db: str, tmp_path: Path) -> None:
    with pgnet_worker(db, tmp_path / "w.log") as worker:
        wait_until_started(tmp_path / "w.log")
        assert stop_worker(worker) == 0

    assert "pg_net worker stopped" in (tmp_path / "w.log").read_text()
