"""Both ways of spending a credit take one lock: the gateway's legacy `upload-url` (Rust,
`CREDIT_LOCK_PREFIX` in crates/api-gateway/src/credits.rs) and the upload saga's credit check
(PyFlink, `LOCK_SQL` in pyflink_jobs/credit_check_processor.py).

The test holds the credit check's own lock for a user with one credit, sends both spends at
once, and waits until the database shows both of them queued behind that lock; a path that took
another lock would not queue, and would race the other for the last credit. Once released,
exactly one spend wins and the balance ends at zero, never below.

Needs the local stack (Postgres, broker, registry, object store) and the debug api-gateway binary
(built by the Rust tests, which run first in ./taskw test).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

from e2elib import (
    REPO,
    SERVER,
    TARGET,
    free_port,
    gateway_env,
    hs256,
    supabase_apply,
    wait_healthy,
)

sys.path.insert(0, str(REPO))
from pyflink_jobs.credit_check_processor import LOCK_SQL, PostgresLedger  # noqa: E402


@pytest.fixture()
def gateway(tmp_path: Path):
    """A fresh database and an api-gateway on it; yields (port, database)."""
    if not (TARGET / "api-gateway").exists():
        pytest.fail(f"{TARGET / 'api-gateway'} is missing: run the Rust tests first (./taskw test does)")
    database = f"e2e_lock_{uuid.uuid4().hex[:12]}"
    supabase_apply.apply(f"{SERVER}/{database}", seed=False)
    port = free_port()
    process = subprocess.Popen(
        [TARGET / "api-gateway"],
        env=gateway_env(port, database, REPO / "crates/api-gateway/config/routes.yaml"),
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "gateway.log", "w"),
    )
    try:
        wait_healthy(port, process, "api-gateway")
        yield port, database
    finally:
        process.kill()
        process.wait()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')


def advisory_waiters(database: str) -> int:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        (count,) = conn.execute(
            "select count(*) from pg_stat_activity"
            " where datname = %s and wait_event_type = 'Lock' and wait_event = 'advisory'",
            [database],
        ).fetchone()
    return count


def test_the_legacy_route_and_the_saga_credit_check_queue_on_one_lock(gateway) -> None:
    port, database = gateway
    user = str(uuid.uuid4())
    dsn = f"{SERVER}/{database}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into public.credit_ledger (user_id, amount, event_type, description, event_time)"
            " values (%s, 1, 'credit.signup_bonus', 'Welcome bonus', '2026-02-25T10:00:00Z')",
            [user],
        )
    token = hs256({"sub": user, "aud": "authenticated", "role": "authenticated", "exp": int(time.time()) + 600})
    results: dict[str, object] = {}

    def legacy_spend() -> None:
        response = requests.post(
            f"http://127.0.0.1:{port}/api/v1/media/upload-url",
            json={"file_name": "a.png", "media_type": "image/png", "file_size": 10},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        results["legacy"] = response.status_code

    def saga_spend() -> None:
        ledger = PostgresLedger(conninfo=dsn)
        results["saga"] = ledger.deduct(user, "b.png", str(uuid.uuid4()), "2026-02-25T10:00:01Z").approved
        ledger.reset()

    with psycopg.connect(dsn) as holder:
        # Arrange: the credit check's own lock statement, held by the test.
        holder.execute(LOCK_SQL, {"user_id": user})
        spenders = [threading.Thread(target=legacy_spend), threading.Thread(target=saga_spend)]
        for spender in spenders:
            spender.start()

        # Assert: both spends queue behind it (bounded wait for the two backends to block).
        deadline = time.monotonic() + 30
        while advisory_waiters(database) < 2:
            assert not results, f"a spend finished while the credit lock was held: {results}"
            assert time.monotonic() < deadline, f"only {advisory_waiters(database)} spend(s) wait on the lock"
            time.sleep(0.05)
        assert not results, f"a spend finished while the credit lock was held: {results}"
        holder.rollback()  # releases the lock

    for spender in spenders:
        spender.join(timeout=60)

    # Assert: exactly one of the two bought the last credit; the ledger ends at zero.
    assert sorted([results["legacy"] == 200, results["saga"] is True]) == [False, True], results
    assert results["legacy"] in (200, 402), results
    with psycopg.connect(dsn) as conn:
        (balance,) = conn.execute(
            "select coalesce(sum(amount), 0) from public.credit_ledger where user_id = %s", [user]
        ).fetchone()
        notifications = conn.execute(
            "select payload from public.user_notifications"
            " where user_id = %s and event_type = 'credit.balance_changed'",
            [user],
        ).fetchall()
    assert balance == 0
    # Whichever path won told the user, the same way.
    assert [json.loads(p)["reason"] for (p,) in notifications] == ["upload_deducted"]
