"""scripts/stack/bootstrap.py against a registry of its own (rivven-schema on a free port):
registering the platform's schemas again is a no-op with the same ids, also after a Flink sink
registered its derived schema under one of its topics (`./taskw up` on a running stack), and a
foreign latest version of any other subject is still an error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
import requests

import e2elib

sys.path.insert(0, str(e2elib.REPO / "scripts" / "stack"))
import bootstrap  # noqa: E402

# what Flink's avro-confluent format derives from the unified-events sink table
FLINK_DERIVED = {
    "type": "record", "name": "record", "namespace": "org.apache.flink.avro.generated",
    "fields": [{"name": n, "type": ["null", "string"], "default": None} for n in (
        "event_id", "event_time", "event_type", "user_id", "email", "device_id", "user_agent",
        "ip_address",
    )],
}


@pytest.fixture
def registry():
    binary = shutil.which("rivven-schema")
    assert binary, "rivven-schema is not installed (./taskw setup installs it)"
    port = e2elib.free_port()
    process = subprocess.Popen(
        [binary, "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"NO_COLOR": "1", "PATH": ""},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/subjects", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                assert process.poll() is None, "rivven-schema exited"
                assert time.monotonic() < deadline, "rivven-schema did not answer within 30 s"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def register_foreign(url: str, subject: str, schema: dict) -> int:
    response = requests.post(
        f"{url}/subjects/{subject}/versions",
        data=json.dumps({"schema": json.dumps(schema), "schemaType": "AVRO"}),
        headers={"Content-Type": bootstrap.REGISTRY_CONTENT_TYPE}, timeout=10,
    )
    response.raise_for_status()
    return response.json()["id"]


def test_bootstrap_again_after_a_flink_sink_registered_its_schema(registry):
    schemas = bootstrap.discover_schemas()
    first = bootstrap.register_schemas(registry, schemas)
    assert set(first) == {f"{topic}-value" for topic in schemas}

    subject = "internal.platform.unified.events-value"
    assert "internal.platform.unified.events" in bootstrap.COMPATIBILITY_NONE
    derived = register_foreign(registry, subject, FLINK_DERIVED)
    assert derived not in first.values()

    # ./taskw up on the running stack: the same ids, no error
    assert bootstrap.register_schemas(registry, schemas) == first
    versions = requests.get(f"{registry}/subjects/{subject}/versions", timeout=10).json()
    assert len(versions) == 2


def test_a_foreign_latest_version_elsewhere_is_still_an_error(registry):
    schemas = bootstrap.discover_schemas()
    first = bootstrap.register_schemas(registry, schemas)
    topic = next(t for t in sorted(schemas) if t not in bootstrap.COMPATIBILITY_NONE)
    subject = f"{topic}-value"
    requests.put(
        f"{registry}/config/{subject}", data=json.dumps({"compatibility": "NONE"}),
        headers={"Content-Type": bootstrap.REGISTRY_CONTENT_TYPE}, timeout=10,
    ).raise_for_status()
    register_foreign(registry, subject, {**FLINK_DERIVED, "name": "other"})
    with pytest.raises(bootstrap.BootstrapError, match="expected id"):
        bootstrap.register_schemas(registry, schemas)
    assert first[subject] > 0
