"""End to end through the running binaries: an authenticated POST to the api-gateway becomes a
row in user_notifications (written by the message-consumer) with the token's identity, visible
through RLS to exactly the right users. Both processes stop cleanly (exit 0) on SIGTERM.

The test owns its topic, consumer group, routes file and database; it needs the local stack
(broker, registry, Postgres) and the debug binaries built by the Rust test run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from confluent_kafka.admin import AdminClient, NewTopic

from e2elib import (
    BROKERS,
    REGISTRY,
    REPO,
    SECRET,
    SERVER,
    TARGET,
    free_port,
    hs256,
    supabase_apply,
    wait_healthy,
)


@pytest.fixture()
def environment(tmp_path: Path):
    for binary in ("api-gateway", "message-consumer"):
        if not (TARGET / binary).exists():
            pytest.fail(f"{TARGET / binary} is missing: run the Rust tests first (./taskw test does)")
    suffix = uuid.uuid4().hex[:12]
    topic = f"e2e.public.user.message.events-{suffix}"
    dead_letters = f"e2e.internal.user.message.dead-letter-{suffix}"
    admin = AdminClient({"bootstrap.servers": BROKERS})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in (topic, dead_letters)]).values():
        future.result(30)
    schema = (REPO / "avro/public/user/message.events.avsc").read_text()
    response = requests.post(
        f"{REGISTRY}/subjects/{topic}-value/versions",
        json={"schema": schema, "schemaType": "AVRO"},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        timeout=10,
    )
    response.raise_for_status()
    database = f"e2e_{suffix}"
    supabase_apply.apply(f"{SERVER}/{database}", seed=False)

    (tmp_path / "routes.yaml").write_text(f"externalRoutes:\n  message: {topic}\n")
    consumer_config = tmp_path / "consumer"
    consumer_config.mkdir()
    (consumer_config / "base.yaml").write_text(
        json.dumps({"consumer": {"group_id": f"e2e-{suffix}", "topics": [topic], "dead_letter_topic": dead_letters}})
    )
    gateway_port, consumer_port = free_port(), free_port()
    common = {
        **os.environ,
        "APP__HTTP__HOST": "127.0.0.1",
        "APP__KAFKA__BROKERS": BROKERS,
        "APP__REGISTRY__URL": REGISTRY,
        "APP__TELEMETRY__LOG_FORMAT": "json",
        "NO_COLOR": "1",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    gateway = subprocess.Popen(
        [TARGET / "api-gateway"],
        env={**common, "APP__HTTP__PORT": str(gateway_port), "APP__AUTH__JWT_SECRET": SECRET,
             "APP__GATEWAY__ROUTES_FILE": str(tmp_path / "routes.yaml")},
        stdout=subprocess.DEVNULL, stderr=open(logs / "gateway.log", "w"),
    )
    consumer = subprocess.Popen(
        [TARGET / "message-consumer"],
        env={**common, "APP__HTTP__PORT": str(consumer_port), "APP_CONFIG_DIR": str(consumer_config),
             "APP__POSTGRES__URL": f"{SERVER}/{database}"},
        stdout=subprocess.DEVNULL, stderr=open(logs / "consumer.log", "w"),
    )
    try:
        wait_healthy(gateway_port, gateway, "api-gateway")
        wait_healthy(consumer_port, consumer, "message-consumer")
        yield {"gateway": gateway_port, "database": database, "processes": (gateway, consumer), "logs": logs}
    finally:
        for process in (gateway, consumer):
            if process.poll() is None:
                process.kill()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')


def visible_to(database: str, user: str) -> list[str]:
    with psycopg.connect(f"{SERVER}/{database}") as conn:
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps({"sub": user, "role": "authenticated"})])
        conn.execute("set local role authenticated")
        rows = conn.execute("select payload from public.user_notifications order by id").fetchall()
    return [json.loads(payload)["message"] for (payload,) in rows]


def test_an_authenticated_message_reaches_the_read_model_with_the_token_identity(environment) -> None:
    alice, bob, carol = (str(uuid.uuid4()) for _ in range(3))
    url = f"http://127.0.0.1:{environment['gateway']}/api/v1/events/message"
    claims = {"sub": alice, "aud": "authenticated", "role": "authenticated", "exp": int(time.time()) + 600}
    headers = {"Authorization": f"Bearer {hs256(claims)}"}
    spoofed = {"user_id": carol, "email": "alice@example.com", "message": "for everyone",
               "timestamp": "2026-02-25T10:00:00.000Z", "visibility": "broadcast", "recipient_id": None}
    direct = {**spoofed, "message": "just for bob", "visibility": "direct", "recipient_id": bob}

    assert requests.post(url, json=spoofed, headers=headers, timeout=10).status_code == 204
    assert requests.post(url, json=direct, headers=headers, timeout=10).status_code == 204
    assert requests.post(url, json=spoofed, timeout=10).status_code == 401

    deadline = time.monotonic() + 60
    rows = []
    while time.monotonic() < deadline and len(rows) < 2:
        with psycopg.connect(f"{SERVER}/{environment['database']}") as conn:
            rows = conn.execute(
                "select user_id, event_type, visibility, recipient_id from public.user_notifications order by id"
            ).fetchall()
        time.sleep(0.2)
    assert rows == [(alice, "user.message", "broadcast", None), (alice, "user.message", "direct", bob)], rows

    assert visible_to(environment["database"], alice) == ["for everyone", "just for bob"]
    assert visible_to(environment["database"], bob) == ["for everyone", "just for bob"]
    assert visible_to(environment["database"], carol) == ["for everyone"]

    for process in environment["processes"]:
        process.send_signal(signal.SIGTERM)
    for process in environment["processes"]:
        assert process.wait(timeout=30) == 0, f"exit code {process.returncode}; logs in {environment['logs']}"
