"""registry-auth (scripts/stack/registry-auth): the stack's rivven-schema registry with HTTP Basic
auth on every endpoint, started on a free port with a users file of its own. What rivven 0.0.22
answers: 401 without or with wrong credentials (health endpoints included), 403 for a write the
user's role lacks, and reads for every authenticated user. Skipped only where the binary is not
installed (./taskw setup installs it)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

import e2elib

BINARY = Path(
    os.environ.get("REGISTRY_AUTH_BIN")
    or Path.home() / ".cargo" / "registry-auth" / "bin" / "registry-auth"
)
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

# rivven enforces its password policy (8+ characters, upper and lower case, digit, special)
ADMIN = ("schema-admin", "Admin-local-pw1")
READER = ("svc-reader", "Reader:local-pw2")  # a ':' inside the password is allowed
FLINK = ("flink-processor", "Flink-local-pw3")
WRONG = "Wrong-local-pw9"
USERS = f"""# registry-auth users: user:password:role
{ADMIN[0]}:{ADMIN[1]}:admin
{READER[0]}:{READER[1]}:reader

{FLINK[0]}:{FLINK[1]}:writer=t-value,t2-value
"""
SCHEMA = {"type": "record", "name": "T", "namespace": "registry.auth.test",
          "fields": [{"name": "id", "type": "string"}]}
PASSWORDS = (ADMIN[1], READER[1], FLINK[1], WRONG)

pytestmark = pytest.mark.skipif(
    not BINARY.is_file(),
    reason=f"registry-auth is not installed at {BINARY} (PROFILE=production ./taskw setup installs it)",
)


def start(users_file: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = e2elib.free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BINARY), "--host", "127.0.0.1", "--port", str(port),
             "--users-file", str(users_file)],
            stdout=out, stderr=subprocess.STDOUT, env={"NO_COLOR": "1", "PATH": ""},
        )
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    directory = tmp_path_factory.mktemp("registry-auth")
    users_file = directory / "users"
    users_file.write_text(USERS)
    log = directory / "registry-auth.log"
    process, url = start(users_file, log)
    try:
        deadline = time.monotonic() + 30  # each user's password is hashed (PBKDF2) at start
        while True:
            try:
                requests.get(f"{url}/health", timeout=1)
                break
            except requests.RequestException:
                assert process.poll() is None, f"registry-auth exited:\n{log.read_text()}"
                assert time.monotonic() < deadline, "registry-auth did not answer within 30 s"
                time.sleep(0.2)
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=10)


def register(url: str, subject: str, auth: tuple[str, str] | None) -> requests.Response:
    return requests.post(
        f"{url}/subjects/{subject}/versions",
        data=json.dumps({"schema": json.dumps(SCHEMA), "schemaType": "AVRO"}),
        headers={"Content-Type": CONTENT_TYPE}, auth=auth, timeout=10,
    )


def test_every_endpoint_wants_credentials(registry):
    url, _ = registry
    # the health endpoints too: rivven's middleware wraps the whole router
    for path in ("/subjects", "/", "/health", "/health/live", "/health/ready", "/schemas/ids/1",
                 "/config", "/no-such-path"):
        response = requests.get(f"{url}{path}", timeout=10)
        assert response.status_code == 401, path
        assert response.json()["error_code"] == 40101
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert register(url, "t-value", None).status_code == 401
    # Basic only: no session ids as Bearer tokens
    assert requests.get(f"{url}/subjects", headers={"Authorization": "Bearer x"},
                        timeout=10).status_code == 401


def test_wrong_password_and_unknown_user(registry):
    url, _ = registry
    # (rivven locks a user out after 5 failures, every Basic client after 10: keep them few)
    assert requests.get(f"{url}/subjects", auth=(READER[0], WRONG), timeout=10).status_code == 401
    assert requests.get(f"{url}/subjects", auth=("nobody", WRONG), timeout=10).status_code == 401
    assert requests.get(f"{url}/health", auth=READER, timeout=10).json()["status"] == "healthy"


def test_roles(registry):
    url, log = registry
    assert requests.get(f"{url}/subjects", auth=READER, timeout=10).status_code == 200

    # a reader cannot register: rivven answers 403 (40301), the user is known
    denied = register(url, "t-value", READER)
    assert denied.status_code == 403, denied.text
    assert denied.json()["error_code"] == 40301

    created = register(url, "t-value", ADMIN)
    assert created.status_code == 200, created.text
    schema_id = created.json()["id"]

    by_id = requests.get(f"{url}/schemas/ids/{schema_id}", auth=READER, timeout=10)
    assert by_id.status_code == 200, by_id.text
    assert json.loads(by_id.json()["schema"]) == SCHEMA
    latest = requests.get(f"{url}/subjects/t-value/versions/latest", auth=READER, timeout=10)
    assert latest.status_code == 200, latest.text
    assert (latest.json()["id"], latest.json()["version"]) == (schema_id, 1)
    assert requests.get(f"{url}/subjects", auth=READER, timeout=10).json() == ["t-value"]

    # Flink's avro-confluent sink registers its subject's schema (POST .../versions): a writer
    # may on its own subjects (the same schema: the same id), not elsewhere, and deletes nothing
    again = register(url, "t-value", FLINK)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == schema_id
    assert register(url, "t2-value", FLINK).status_code == 200
    assert register(url, "other-value", FLINK).status_code == 403
    assert requests.delete(f"{url}/subjects/t-value", auth=FLINK, timeout=10).status_code == 403
    assert requests.put(f"{url}/config", json={"compatibility": "NONE"}, auth=READER,
                        timeout=10).status_code == 403

    text = log.read_text()
    assert "svc-reader" in text  # the log is the server's
    for password in PASSWORDS:
        assert password not in text


def failed_start(tmp_path: Path, users: str | None) -> str:
    users_file = tmp_path / "users"
    if users is not None:
        users_file.write_text(users)
    log = tmp_path / "start.log"
    process, _ = start(users_file, log)
    assert process.wait(timeout=60) != 0
    return log.read_text()


def test_a_missing_or_malformed_users_file_stops_it(tmp_path):
    assert "cannot read the users file" in failed_start(tmp_path, None)

    cases = {
        "admin-without-role:Admin-local-pw1\n": "line 1: expected user:password:role",
        "# users\nx:Admin-local-pw1:superuser\n": "line 2: user 'x': unknown role 'superuser'",
        "x:Admin-local-pw1:writer\n": "line 1: user 'x': role 'writer' needs its subjects",
        "x:Admin-local-pw1:admin\nx:Admin-local-pw1:reader\n": "line 2: user 'x' is listed twice",
        "# nobody\n\n": "lists no user",
        # rivven's password policy, checked at start
        "weak:admin-local-pw:admin\n": "user 'weak': Internal error: Password must contain",
    }
    for users, message in cases.items():
        text = failed_start(tmp_path, users)
        assert message in text, text
        for password in ("Admin-local-pw1", "admin-local-pw"):
            assert password not in text
