"""Helpers for the Supabase schema tests (real PostgreSQL).

Every test module or test gets its own database, named sb_test_<8 hex>,
built with scripts/supabase_apply.py and dropped afterwards, so tests can run
in parallel and repeatedly on one server. The server defaults to the local
stack's PostgreSQL (LOCAL_DATABASE_URL of local-stack.env, a superuser);
override it with SUPABASE_TEST_SERVER_URL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


supabase_apply = _load_script("supabase_apply")

SERVER_URL = os.environ.get("SUPABASE_TEST_SERVER_URL") or make_conninfo(
    supabase_apply.local_database_url(), dbname="postgres"
)


def conninfo_for(dbname: str) -> str:
    return make_conninfo(SERVER_URL, dbname=dbname)


def drop_database(dbname: str) -> None:
    with psycopg.connect(conninfo_for("postgres"), autocommit=True) as admin:
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
        )


def new_database_name() -> str:
    return f"sb_test_{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def fresh_database(**apply_options) -> Iterator[str]:
    """A new database with bootstrap, migrations and seed applied (options go
    to supabase_apply.apply); yields its connection string, drops it after."""
    dbname = new_database_name()
    try:
        supabase_apply.apply(conninfo_for(dbname), **apply_options)
        yield conninfo_for(dbname)
    finally:
        drop_database(dbname)


@contextlib.contextmanager
def supabase_request(
    conn: psycopg.Connection, role: str, sub: str | None = None
) -> Iterator[psycopg.Connection]:
    """Run statements the way PostgREST runs an API request: in a transaction,
    switched to the JWT's role, with the claims in request.jwt.claims. The
    transaction is always rolled back, so requests leave no trace."""
    claims = {"role": role}
    if sub is not None:
        claims["sub"] = sub
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        yield conn


@contextlib.contextmanager
def as_gotrue(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Write auth tables the way GoTrue does: as the unprivileged
    supabase_auth_admin role, in a transaction that commits (pg_net only
    queues requests of committed transactions)."""
    with conn.transaction():
        conn.execute("set local role supabase_auth_admin")
        yield conn


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    # header names lower-cased
    headers: dict[str, str]
    body: Any


class WebhookListener:
    """A tiny HTTP server on 127.0.0.1 (free port) that records every request
    and answers with `status` (204 by default), standing in for the gateway."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", errors="replace")
                with listener._lock:
                    listener.requests.append(
                        ReceivedRequest(
                            method=self.command,
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                        )
                    )
                self.send_response(listener.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = do_DELETE = _record

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep pytest output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # a short poll interval keeps shutdown (and so each test) quick
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self.requests)

    def __enter__(self) -> WebhookListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def set_gateway_url(conn: psycopg.Connection, url: str) -> None:
    conn.execute("select vault.create_secret(%s, 'gateway_url', 'test listener')", [url])


@contextlib.contextmanager
def pgnet_worker(dsn: str, log_path: Path, **env: str) -> Iterator[subprocess.Popen]:
    """Run scripts/pgnet_worker.py against `dsn` (stderr to log_path); killed
    at the end if the test did not stop it."""
    environment = {
        **os.environ,
        "PGNET_DATABASE_URL": dsn,
        "PGNET_POLL_INTERVAL": "0.2",
        "PGNET_RETRY_BACKOFF": "0.05",
        **env,
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "pgnet_worker.py")],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_until_started(log_path: Path, timeout: float = 30.0) -> None:
    """Wait until the worker logged that it is starting: its signal handlers are installed by
    then, so a SIGTERM is a clean stop rather than the interpreter's default death."""
    deadline = time.monotonic() + timeout
    while "pg_net worker starting" not in log_path.read_text():
        assert time.monotonic() < deadline, f"worker did not start: {log_path.read_text()}"
        time.sleep(0.05)


def stop_worker(process: subprocess.Popen) -> int:
    """SIGTERM the worker and return its exit code."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=15)


def wait_for_responses(conn: psycopg.Connection, count: int, timeout: float = 15.0) -> None:
    """Wait until the worker has recorded `count` responses and the queue is
    empty, i.e. every queued request went out."""
    deadline = time.monotonic() + timeout
    while True:
        done, queued = conn.execute(
            "select (select count(*) from net._http_response),"
            " (select count(*) from net.http_request_queue)"
        ).fetchone()
        if done >= count and queued == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {timeout}s: {done} responses recorded (wanted {count}), {queued} still queued"
            )
        time.sleep(0.05)
