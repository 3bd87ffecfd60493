"""The local platform in the production profile (scripts/stack/profile.sh), as ./taskw
test:production starts it: what the profile promises is in force on the running stack.

- every security check of scripts/stack/security_check.py: plaintext, anonymous, wrong-password
  and non-TLS clients refused; the right credentials let in;
- the broker's ACLs are exactly the grants of scripts/infra/kafka-acls.txt (the file the chart's
  bootstrap Job grants), and they are enforced: a service may not write where it has no grant;
- the three services are ready (Kafka, registry and Postgres reached with their own credentials)
  and connected to Postgres as their own least-privilege roles, none of them as postgres.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, AdminClient, ResourcePatternType, ResourceType

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "stack"))
import bootstrap  # noqa: E402
import security_check  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
import demo  # noqa: E402  (its access tokens, signed with the stack's JWT secret)

BROKERS = os.environ.get("LOCAL_KAFKA_BROKERS", "127.0.0.1:9092")
DATABASE_URL = os.environ.get("LOCAL_DATABASE_URL", "postgresql://postgres@127.0.0.1:54322/substrate")
SERVICES = {"api-gateway": 8080, "media-service": 8090, "message-consumer": 8091}
CA = str(security_check.path_of("TLS_DIR") / "ca.pem")


def running_profile() -> str:
    path = REPO / ".local" / "run" / "profile"
    return path.read_text().strip() if path.exists() else ""


@pytest.fixture(scope="module", autouse=True)
def production_stack() -> None:
    # not a skip: this suite is only run by ./taskw test:production, which starts the profile
    assert running_profile() == "production", "start the production profile first: PROFILE=production ./taskw up"


def client_config(user: str) -> dict[str, str]:
    return {
        "bootstrap.servers": BROKERS, "security.protocol": "SASL_SSL", "ssl.ca.location": CA,
        "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": user,
        "sasl.password": security_check.secret(security_check.path_of("KAFKA_USERS_DIR") / user),
    }


CHECKS = security_check.run_checks() if running_profile() == "production" else []


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: f"{c.part}: {c.what}")
def test_security_check(check: security_check.Check) -> None:
    assert check.passed, f"{check.part}: {check.what}: {check.detail}"


def test_security_checks_cover_every_part() -> None:
    assert {c.part for c in CHECKS} == {"kafka", "registry", "postgres"}
    assert any(not c.detail.startswith("let in") for c in CHECKS)


def test_broker_acls_are_exactly_the_files_grants() -> None:
    admin = AdminClient(client_config("superuser"))
    present = set(admin.describe_acls(AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY,
    ), request_timeout=15).result())
    users = {p.name for p in security_check.path_of("KAFKA_USERS_DIR").iterdir()}
    wanted = {b for b in bootstrap.read_acls(bootstrap.REPO_ROOT / "scripts" / "infra" / "kafka-acls.txt", {})
              if b.principal.removeprefix("User:") in users}
    assert present == wanted
    assert len(wanted) > 20


@pytest.mark.parametrize(("user", "topic", "allowed"), [
    ("message-consumer", "public.user.message.events", False),  # it only reads there
    ("message-consumer", "internal.user.message.dead-letter", True),
    ("api-gateway", "internal.user.message.dead-letter", False),
    ("media-service", "public.identity.login.events", False),
])
def test_acls_are_enforced_on_produce(user: str, topic: str, allowed: bool) -> None:
    results: list[KafkaError | None] = []
    producer = Producer({**client_config(user), "enable.idempotence": True, "message.timeout.ms": 10000,
                         "log_level": 0})
    # not a valid event: a permitted write is only ever to a dead-letter topic, which takes
    # any bytes; a refused one never reaches the topic
    producer.produce(topic, value=b"production-profile acl probe " + uuid.uuid4().hex.encode(),
                     on_delivery=lambda err, _msg: results.append(err))
    producer.flush(15)
    assert len(results) == 1, "no delivery report within 15 s"
    if allowed:
        assert results[0] is None, results[0]
    else:
        assert results[0] is not None and results[0].code() in (
            KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED), results[0]


def test_plaintext_producer_is_refused() -> None:
    admin = AdminClient({"bootstrap.servers": BROKERS, "socket.timeout.ms": 3000, "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


@pytest.mark.parametrize("service", SERVICES)
def test_service_is_ready_with_its_own_credentials(service: str) -> None:
    response = requests.get(f"http://127.0.0.1:{SERVICES[service]}/readyz", timeout=10)
    assert response.status_code == 200, response.text


def test_services_connect_as_their_own_roles_over_tls() -> None:
    # the gateway opens its pool on first use: an idempotent request records its key
    user = {"id": str(uuid.uuid4()), "email": "production-profile@example.com"}
    response = requests.post(
        "http://127.0.0.1:8080/api/v1/events/message", json={"message": "roles check", "visibility": "private", "recipient_id": user["id"],
              "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        headers={"Authorization": f"Bearer {demo.access_token(user)}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=10)
    assert response.status_code == 204, response.text
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        rows = conn.execute(
            "select a.usename, bool_and(s.ssl) from pg_stat_activity a join pg_stat_ssl s using (pid)"
            " where a.usename in ('api_gateway', 'message_consumer', 'media_service', 'flink_writer')"
            " group by a.usename").fetchall()
        roles = conn.execute(
            "select rolname, rolsuper, rolbypassrls from pg_roles"
            " where rolname in ('api_gateway', 'message_consumer', 'media_service')").fetchall()
    connected = dict(rows)
    assert {"api_gateway", "message_consumer", "media_service"} <= set(connected), connected
    assert all(connected.values()), f"a role connected without TLS: {connected}"
    assert sorted(roles) == [(r, False, False) for r in ("api_gateway", "media_service", "message_consumer")]
