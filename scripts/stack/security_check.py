#!/usr/bin/env python3
"""Shows that the production profile's security is in force on the running local stack: for
the broker, the registry and Postgres, a client the profile must refuse (plaintext, anonymous,
a wrong password, no TLS) is refused, and a client with the right credentials is let in.

Usage: security_check.py   (the stack's addresses come from local-stack.env's LOCAL_* variables,
which ./taskw exports; the certificates and secrets from .local/tls and .local/secrets, or
TLS_DIR, KAFKA_USERS_DIR, REGISTRY_USERS_FILE and PG_PASSWORDS_DIR as scripts/stack/lib.sh
exports them)

Prints one line per check and exits 1 if any check fails. ./taskw status runs it when the
stack's profile is production; tests/e2e/test_production_profile.py asserts the same checks.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

TIMEOUT = 5
LOCAL = Path(__file__).resolve().parents[2] / ".local"
#: Where scripts/stack/profile.sh keeps the production profile's certificates and secrets.
PATHS = {
    "TLS_DIR": LOCAL / "tls",
    "KAFKA_USERS_DIR": LOCAL / "secrets" / "kafka-users",
    "REGISTRY_USERS_FILE": LOCAL / "secrets" / "registry-users",
    "PG_PASSWORDS_DIR": LOCAL / "secrets" / "postgres",
}


@dataclass(frozen=True)
class Check:
    part: str
    what: str
    passed: bool
    detail: str


def _env(name: str) -> str:
    """A LOCAL_* address: the environment's (./taskw exports local-stack.env), else the file's."""
    if os.environ.get(name):
        return os.environ[name]
    for line in (LOCAL.parent / "local-stack.env").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key == name and not line.startswith("#"):
            return value.strip()
    raise SystemExit(f"security_check: {name} is neither set nor in local-stack.env")


def path_of(name: str) -> Path:
    return Path(os.environ.get(name) or PATHS[name])


def secret(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def registry_credentials(users_file: Path, user: str) -> tuple[str, str]:
    for line in users_file.read_text(encoding="utf-8").splitlines():
        name, _, rest = line.partition(":")
        if name == user:
            return name, rest.split(":")[0]
    raise SystemExit(f"security_check: no registry user {user} in {users_file}")


def kafka_answers(config: dict[str, str]) -> tuple[bool, str]:
    """(True, "") when the broker lists its topics for this client, else (False, why)."""
    admin = AdminClient({**config, "socket.timeout.ms": 3000, "log_level": 0})
    try:
        admin.list_topics(timeout=TIMEOUT)
        return True, ""
    except KafkaException as error:
        return False, error.args[0].str() if error.args else str(error)


def postgres_answers(conninfo: str) -> tuple[bool, str]:
    try:
        with psycopg.connect(conninfo, connect_timeout=TIMEOUT) as conn:
            conn.execute("select 1")
        return True, ""
    except psycopg.OperationalError as error:
        return False, str(error).strip().splitlines()[-1]


def run_checks() -> list[Check]:
    brokers = _env("LOCAL_KAFKA_BROKERS")
    registry = _env("LOCAL_SCHEMA_REGISTRY_URL").rstrip("/")
    tls_dir = path_of("TLS_DIR")
    kafka_users = path_of("KAFKA_USERS_DIR")
    registry_users = path_of("REGISTRY_USERS_FILE")
    pg_passwords = path_of("PG_PASSWORDS_DIR")
    ca = str(tls_dir / "ca.pem")
    checks: list[Check] = []

    def expect(part: str, what: str, allowed: bool, outcome: tuple[bool, str]) -> None:
        answered, why = outcome
        detail = "let in" if answered else f"refused ({why})"
        checks.append(Check(part, what, answered == allowed, detail))

    sasl = {"bootstrap.servers": brokers, "security.protocol": "SASL_SSL", "ssl.ca.location": ca,
            "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "api-gateway"}
    expect("kafka", "plaintext client", False, kafka_answers({"bootstrap.servers": brokers}))
    expect("kafka", "api-gateway, wrong password", False, kafka_answers({**sasl, "sasl.password": "wrong"}))
    expect("kafka", "api-gateway over SASL_SSL", True,
           kafka_answers({**sasl, "sasl.password": secret(kafka_users / "api-gateway")}))

    def registry_get(auth: tuple[str, str] | None) -> tuple[bool, str]:
        try:
            response = requests.get(f"{registry}/subjects", auth=auth, timeout=TIMEOUT)
        except requests.RequestException as error:
            return False, str(error)
        return response.status_code == 200, f"HTTP {response.status_code}"

    user, password = registry_credentials(registry_users, "api-gateway")
    expect("registry", "anonymous GET /subjects", False, registry_get(None))
    expect("registry", "api-gateway, wrong password", False, registry_get((user, "wrong")))
    expect("registry", "api-gateway with its password", True, registry_get((user, password)))

    host, port = brokers.split(",")[0].rsplit(":", 1)[0], _env("LOCAL_POSTGRES_PORT")
    database = _env("LOCAL_DATABASE_URL").rsplit("/", 1)[-1]
    role_password = secret(pg_passwords / "api_gateway")
    base = f"host={host} port={port} dbname={database} connect_timeout={TIMEOUT}"
    expect("postgres", "api_gateway without TLS", False,
           postgres_answers(f"{base} user=api_gateway password={role_password} sslmode=disable"))
    expect("postgres", "api_gateway, wrong password", False,
           postgres_answers(f"{base} user=api_gateway password=wrong sslmode=verify-full sslrootcert={ca}"))
    expect("postgres", "api_gateway over verified TLS", True,
           postgres_answers(f"{base} user=api_gateway password={role_password} sslmode=verify-full sslrootcert={ca}"))
    return checks


def main() -> int:
    checks = run_checks()
    for check in checks:
        mark = "ok  " if check.passed else "FAIL"
        print(f"  {mark} {check.part:<9} {check.what:<32} {check.detail}")
    failed = [c for c in checks if not c.passed]
    if failed:
        print(f"security_check: {len(failed)} of {len(checks)} checks failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
