"""The api-gateway against its own OpenAPI document: schemathesis generates requests for every
operation of `GET /openapi.json` (valid and invalid bodies, headers and keys) and checks that no
answer is a server error and every answer (status, content type, headers, body) is one the
document describes.

The test owns its topics, routes file and database; it needs the local stack (broker, registry,
Postgres) and the debug binaries built by the Rust test run. Rate limits are raised so they do not
hide the routes behind 429s (their behaviour is tested in crates/api-gateway).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from confluent_kafka.admin import AdminClient, NewTopic
from openapi_spec_validator import OpenAPIV31SpecValidator

from e2elib import BROKERS, REGISTRY, REPO, SERVER, TARGET, free_port, gateway_env, hs256, supabase_apply, wait_healthy

WEBHOOK_SECRET = "contract-webhook-secret"
# contract file -> gateway setting naming its topic (None: a routes.yaml key)
TOPICS = {
    "public/user/message.events": None,
    "public/identity/signup.events": None,
    "internal/media/upload.intent": "UPLOAD_INTENT",
    "internal/media/download.intent": "DOWNLOAD_INTENT",
    "internal/media/delete.intent": "DELETE_INTENT",
    "public/media/download.events": "DOWNLOAD_EVENTS",
    "public/media/delete.events": "DELETE_EVENTS",
    "internal/media/delete.retry": "DELETE_RETRY",
}


@pytest.fixture()
def gateway(tmp_path: Path):
    binary = TARGET / "api-gateway"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run the Rust tests first (./taskw test does)")
    suffix = uuid.uuid4().hex[:12]
    topics = {contract: f"contract.{contract.replace('/', '.')}-{suffix}" for contract in TOPICS}
    admin = AdminClient({"bootstrap.servers": BROKERS})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
        future.result(30)
    for contract, topic in topics.items():
        requests.post(
            f"{REGISTRY}/subjects/{topic}-value/versions",
            json={"schema": (REPO / "avro" / f"{contract}.avsc").read_text(), "schemaType": "AVRO"},
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            timeout=10,
        ).raise_for_status()
    database = f"contract_{suffix}"
    supabase_apply.apply(f"{SERVER}/{database}", seed=False)
    (tmp_path / "routes.yaml").write_text(
        f"webhookRoutes:\n  signup: {topics['public/identity/signup.events']}\n"
        f"externalRoutes:\n  message: {topics['public/user/message.events']}\n"
    )
    port = free_port()
    settings = {
        "AUTH__WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GATEWAY__RATE_LIMITS__EVENTS__PER_SECOND": "100000",
        "GATEWAY__RATE_LIMITS__EVENTS__BURST": "100000",
        "GATEWAY__RATE_LIMITS__MEDIA__PER_SECOND": "100000",
        "GATEWAY__RATE_LIMITS__MEDIA__BURST": "100000",
        "TELEMETRY__LOG_FORMAT": "json",
    }
    env = gateway_env(port, database, tmp_path / "routes.yaml", **settings)
    for contract, setting in TOPICS.items():
        if setting:
            env[f"APP__GATEWAY__TOPICS__{setting}"] = topics[contract]
    log = tmp_path / "gateway.log"
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        wait_healthy(port, process, "api-gateway")
        deadline = time.monotonic() + 30
        while requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the gateway never became ready"
            time.sleep(0.2)
        yield {"port": port, "log": log}
    finally:
        process.kill()
        process.wait(10)
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')


def test_the_document_lists_every_route_and_the_live_allowlist(gateway) -> None:
    doc = requests.get(f"http://127.0.0.1:{gateway['port']}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    errors = [error.message for error in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == [], errors
    assert set(doc["paths"]) == {
        "/webhooks/{key}", "/api/v1/events/{key}", "/api/v1/events/{key}/batch",
        "/api/v1/media/upload-intent", "/api/v1/media/download-intent", "/api/v1/media/delete-intent",
        "/api/v1/media/upload-url", "/api/v1/media/download-url", "/api/v1/media/delete",
        "/healthz", "/readyz", "/openapi.json",
    }
    key = next(p for p in doc["paths"]["/api/v1/events/{key}"]["post"]["parameters"] if p["name"] == "key")
    assert key["schema"]["enum"] == ["message"]
    batch = doc["components"]["schemas"]["Batch"]["properties"]["events"]
    assert batch["maxItems"] == 100
    limited = doc["paths"]["/api/v1/events/{key}"]["post"]["responses"]["429"]
    assert "Retry-After" in limited["headers"]


def test_schemathesis_finds_no_server_error_and_nothing_outside_the_document(gateway) -> None:
    token = hs256({"sub": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated",
                   "email": "contract@example.com", "exp": int(time.time()) + 3600})
    schemathesis = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "schemathesis"
    if not schemathesis.exists():
        schemathesis = REPO / ".venv" / "bin" / "schemathesis"
    run = subprocess.run(
        [
            schemathesis, "run", f"http://127.0.0.1:{gateway['port']}/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                        "response_headers_conformance,response_schema_conformance",
            "--header", f"Authorization: Bearer {token}",
            "--header", f"X-Webhook-Secret: {WEBHOOK_SECRET}",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", "40",
            "--seed", "18",
            "--workers", "1",
            "--request-timeout", "15",
        ],
        capture_output=True, text=True, timeout=900, env={**os.environ, "NO_COLOR": "1"},
    )
    assert run.returncode == 0, f"{run.stdout[-6000:]}\n{run.stderr[-2000:]}\ngateway log: {gateway['log']}"
