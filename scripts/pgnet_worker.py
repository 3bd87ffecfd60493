#!/usr/bin/env python3
"""Delivery worker for the local pg_net stand-in (supabase/local/pg_net).

On real Supabase, pg_net's background worker sends the HTTP requests queued by
net.http_post(). On the local stack the stand-in only queues them in
net.http_request_queue; this process sends them and records each outcome in
net._http_response, the same table the real extension fills.

Delivery: at least once. A request is claimed with `for update skip locked`
(several workers may run side by side), sent, then deleted from the queue in
the same transaction that records the response. If the worker dies
mid-request the transaction rolls back and the request is sent again later.
Connection errors (refused, reset, DNS) are retried a few times with
exponential backoff; HTTP error statuses and timeouts are recorded as they
are, like pg_net does. The worker wakes up on NOTIFY pg_net_request_queue
(sent by net.http_post at commit) and polls as a fallback.

Runs until SIGTERM or SIGINT, then exits 0. Logs to stderr.

Environment:
    PGNET_DATABASE_URL     database to serve
                           (default $LOCAL_DATABASE_URL,
                           which ./taskw exports from local-stack.env)
    PGNET_POLL_INTERVAL    seconds between queue polls without NOTIFY (default 1.0)
    PGNET_MAX_ATTEMPTS     connection attempts per request (default 3)
    PGNET_RETRY_BACKOFF    seconds before the first retry, doubled after each (default 0.5)
    PGNET_LOG_LEVEL        logging level (default INFO)
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from types import FrameType

import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger("pgnet_worker")

# must match pg_notify() in supabase/local/pg_net/pg_net--*.sql
CHANNEL = "pg_net_request_queue"
# how long to wait before reconnecting after the database went away
RECONNECT_DELAY_SECONDS = 2.0
# cap on stored response bodies; the queue is for webhooks, not downloads
MAX_CONTENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    database_url: str
    poll_interval: float
    max_attempts: int
    retry_backoff: float

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("PGNET_DATABASE_URL") or os.environ["LOCAL_DATABASE_URL"],
            poll_interval=float(os.environ.get("PGNET_POLL_INTERVAL", "1.0")),
            max_attempts=max(1, int(os.environ.get("PGNET_MAX_ATTEMPTS", "3"))),
            retry_backoff=float(os.environ.get("PGNET_RETRY_BACKOFF", "0.5")),
        )


@dataclass(frozen=True)
class Request:
    id: int
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout_seconds: float


@dataclass
class Outcome:
    status_code: int | None = None
    content_type: str | None = None
    headers: dict[str, str] | None = None
    content: str | None = None
    timed_out: bool = False
    error_msg: str | None = None
    attempts: int = 0


class Stopped(Exception):
    """Shutdown was requested while a request was waiting for a retry."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # pg_net (libcurl defaults) does not follow redirects; the 3xx is the result.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxies from the environment: the database talks to the target directly.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def _is_timeout(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError)


def send_once(request: Request) -> Outcome:
    """One HTTP exchange. Connection-level failures raise OSError (URLError is
    one) or http.client.HTTPException; everything else becomes an Outcome."""
    http_request = urllib.request.Request(
        request.url, data=request.body, headers=request.headers, method=request.method
    )
    try:
        try:
            response = _opener.open(http_request, timeout=request.timeout_seconds)
        except urllib.error.HTTPError as err:
            # 4xx/5xx (and 3xx, see _NoRedirects) are results, not failures
            response = err
        with response:
            content = response.read(MAX_CONTENT_BYTES)
            return Outcome(
                status_code=response.status,
                content_type=response.headers.get("Content-Type"),
                headers=dict(response.headers.items()),
                # text columns cannot hold NUL; one would make the insert
                # fail and the request retry forever
                content=content.decode("utf-8", errors="replace").replace("\x00", ""),
            )
    except (OSError, http.client.HTTPException) as exc:
        if _is_timeout(exc):
            return Outcome(timed_out=True, error_msg=f"timeout after {request.timeout_seconds}s")
        raise


def deliver(request: Request, settings: Settings, stop: threading.Event) -> Outcome:
    """Send with retries on connection errors; raise Stopped if shutdown comes
    while waiting to retry (the caller then leaves the request queued)."""
    delay = settings.retry_backoff
    for attempt in range(1, settings.max_attempts + 1):
        try:
            outcome = send_once(request)
            outcome.attempts = attempt
            return outcome
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt == settings.max_attempts:
                return Outcome(error_msg=error, attempts=attempt)
            log.warning(
                "request %d to %s failed (attempt %d of %d): %s; retrying in %.1fs",
                request.id, request.url, attempt, settings.max_attempts, error, delay,
            )
            if stop.wait(delay):
                raise Stopped from exc
            delay *= 2
        except Exception as exc:  # noqa: BLE001
            # e.g. a malformed url (ValueError): retrying cannot help, and
            # raising would leave a poison request at the head of the queue
            log.exception("request %d cannot be sent", request.id)
            return Outcome(error_msg=f"invalid request: {type(exc).__name__}: {exc}", attempts=attempt)
    raise AssertionError("unreachable")


def process_one(conn: psycopg.Connection, settings: Settings, stop: threading.Event) -> bool:
    """Deliver the oldest unclaimed request; False when the queue is empty."""
    with conn.transaction():
        row = conn.execute(
            """
            select id, method, url, headers, body, timeout_milliseconds
              from net.http_request_queue
             order by id
             limit 1
               for update skip locked
            """
        ).fetchone()
        if row is None:
            return False
        request_id, method, url, headers, body, timeout_ms = row
        request = Request(
            id=request_id,
            method=method,
            url=url,
            headers={str(k): str(v) for k, v in (headers or {}).items()},
            body=bytes(body) if body is not None else None,
            timeout_seconds=timeout_ms / 1000.0,
        )
        # Stopped propagates and rolls the claim back: the request stays queued.
        outcome = deliver(request, settings, stop)
        conn.execute("delete from net.http_request_queue where id = %s", [request.id])
        conn.execute(
            """
            insert into net._http_response
              (id, status_code, content_type, headers, content, timed_out, error_msg, attempts)
            values (%s, %s, %s, %s, %s, %s, %s, %s)
            """,
            [
                request.id,
                outcome.status_code,
                outcome.content_type,
                Jsonb(outcome.headers) if outcome.headers is not None else None,
                outcome.content,
                outcome.timed_out,
                outcome.error_msg,
                outcome.attempts,
            ],
        )
    if outcome.error_msg:
        log.warning("request %d %s %s failed: %s", request.id, method, url, outcome.error_msg)
    else:
        log.info("request %d %s %s -> %s", request.id, method, url, outcome.status_code)
    return True


def serve(settings: Settings, stop: threading.Event) -> None:
    """Drain the queue, then sleep until NOTIFY or the poll interval, until stopped."""
    with psycopg.connect(settings.database_url, autocommit=True) as listener, psycopg.connect(
        settings.database_url, autocommit=True
    ) as worker:
        listener.execute(f"listen {CHANNEL}")
        log.info("connected; waiting for requests on %s", CHANNEL)
        while not stop.is_set():
            while not stop.is_set() and process_one(worker, settings, stop):
                pass
            if stop.is_set():
                break
            # a notification sent while we were draining is already queued
            # on the connection, so nothing is missed between the two steps
            for _ in listener.notifies(timeout=settings.poll_interval, stop_after=1):
                pass


def run(settings: Settings, stop: threading.Event) -> None:
    """serve() forever, reconnecting when the database is unavailable."""
    while not stop.is_set():
        try:
            serve(settings, stop)
        except Stopped:
            log.info("stopping during a retry; the request stays queued")
        except psycopg.errors.UndefinedTable:
            log.error(
                "net.http_request_queue does not exist: apply the schema first "
                "(scripts/supabase_apply.py); retrying in %.0fs", RECONNECT_DELAY_SECONDS,
            )
            stop.wait(RECONNECT_DELAY_SECONDS)
        except psycopg.OperationalError as exc:
            log.error("database unavailable: %s; retrying in %.0fs", exc, RECONNECT_DELAY_SECONDS)
            stop.wait(RECONNECT_DELAY_SECONDS)


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("PGNET_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    settings = Settings.from_env()
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, finishing the current request", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    log.info(
        "pg_net worker starting (poll %.1fs, %d attempts per request)",
        settings.poll_interval, settings.max_attempts,
    )
    run(settings, stop)
    log.info("pg_net worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
