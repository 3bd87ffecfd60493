#!/usr/bin/env python3
"""Create the Kafka topics and register the Avro schemas of the local stack.

Every `avro/**/*.avsc` defines one topic: its path under `avro/` with `/` turned
into `.` and the `.avsc` suffix removed, so `avro/public/identity/login.events.avsc`
is the topic `public.identity.login.events`. For each one this script

1. creates the topic (1 partition, replication factor 1), plus the extra topics
   in EXTRA_TOPICS, which have no schema; a topic that exists already is fine;
2. registers the schema (compact JSON) under the subject `<topic>-value`;
   registering an identical schema again returns the same id, so re-runs are safe;
3. sets compatibility NONE on the subjects in COMPATIBILITY_NONE;
4. reads every subject back (`/subjects/<s>/versions/latest` and
   `/schemas/ids/<id>`) to check that the registry serves what was registered.

The registry keeps nothing across restarts, so the stack runs this on every start.
Any failure aborts with a message and exit status 1.

On the production profile's broker (scripts/stack/profile.sh) it connects over SASL_SSL as the
superuser and first makes the users and grants, as the chart's bootstrap Job does on a cluster:

0. every user with a password file in --users-dir gets its SCRAM-SHA-256 credential, and the
   broker's ACLs become exactly the grants of --acls-file (scripts/infra/kafka-acls.txt, the
   file scripts/infra/redpanda-auth.sh grants): missing ones are created, others deleted.

The registry is then called as --registry-user with the password in $SCHEMA_REGISTRY_PASSWORD.

Usage: bootstrap.py [--brokers HOST:PORT] [--registry URL]
                    [--sasl-ssl --ca-file PEM --users-dir DIR --acls-file FILE]
                    [--registry-user NAME]   (password: $SCHEMA_REGISTRY_PASSWORD)
Defaults: $BOOTSTRAP_BROKERS or 127.0.0.1:9092, $SCHEMA_REGISTRY_URL or http://127.0.0.1:8081.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

import requests
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
AVRO_DIR = REPO_ROOT / "avro"

EXTRA_TOPICS = (
    "internal.identity.login.echo",
    "internal.user.message.dead-letter",
    "internal.media.consumer.dead-letter",
)

# Topics whose value schemas may change in any way (compatibility NONE).
COMPATIBILITY_NONE = (
    "internal.platform.unified.events",
    "public.media.upload.approved",
    "public.media.upload.rejected",
    "public.media.download.rejected",
    "public.media.upload.confirmed",
    "internal.media.upload.dead-letter",
    "internal.media.delete.dead-letter",
    "public.media.expired.events",
    "internal.media.upload.retry",
)

REGISTRY_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
HTTP_TIMEOUT = 10
# The broker may accept connections a moment before it answers admin requests.
CREATE_ATTEMPTS = 10
METADATA_WAIT_SECONDS = 30


class BootstrapError(Exception):
    """A failure reported to the operator without a traceback."""


def topic_for(path: Path) -> str:
    relative = path.relative_to(AVRO_DIR).as_posix()
    return relative.removesuffix(".avsc").replace("/", ".")


def discover_schemas() -> dict[str, str]:
    """Topic name -> compact JSON schema, for every .avsc under avro/."""
    schemas: dict[str, str] = {}
    for path in sorted(AVRO_DIR.rglob("*.avsc")):
        try:
            parsed = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise BootstrapError(f"cannot read {path.relative_to(REPO_ROOT)}: {error}") from error
        schemas[topic_for(path)] = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    if not schemas:
        raise BootstrapError(f"no .avsc files under {AVRO_DIR}")
    return schemas


def existing_topics(admin: AdminClient) -> set[str]:
    last_error: KafkaException | None = None
    for _ in range(CREATE_ATTEMPTS):
        try:
            return set(admin.list_topics(timeout=10).topics)
        except KafkaException as error:
            last_error = error
            time.sleep(1)
    raise BootstrapError(f"cannot list the broker's topics: {last_error}")


#: Values of the placeholders of kafka-acls.txt (the defaults of redpanda-auth.sh).
ACL_VARIABLES = {
    "MESSAGE_CONSUMER_GROUP": "go-message-consumer",
    "MEDIA_SERVICE_GROUP": "media-service",
    "FLINK_TRANSACTIONAL_ID_PREFIX": "event-substrate",
}
RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional-id": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
SCRAM_ITERATIONS = 4096


def read_acls(path: Path, environ: dict[str, str]) -> set[AclBinding]:
    """The grants of an ACL file (format: its header) as bindings, placeholders filled from
    `environ` or ACL_VARIABLES."""
    bindings: set[AclBinding] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 5 or fields[2] not in RESOURCE_TYPES:
            raise BootstrapError(f"{path}:{number}: expected PRINCIPAL OPERATIONS TYPE NAME PATTERN")
        principal, operations, kind, name, pattern = fields
        for variable, default in ACL_VARIABLES.items():
            name = name.replace("${" + variable + "}", environ.get(variable, default))
        if kind == "cluster":
            name, pattern_type = "kafka-cluster", ResourcePatternType.LITERAL
        else:
            pattern_type = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}.get(pattern)
            if pattern_type is None:
                raise BootstrapError(f"{path}:{number}: pattern must be literal or prefixed")
        for operation in operations.split(","):
            try:
                op = AclOperation[operation.upper()]
            except KeyError:
                raise BootstrapError(f"{path}:{number}: unknown operation {operation}") from None
            bindings.add(AclBinding(RESOURCE_TYPES[kind], name, pattern_type, f"User:{principal}", "*", op, AclPermissionType.ALLOW))
    return bindings


def apply_security(admin: AdminClient, users_dir: Path, acls_file: Path) -> tuple[int, int, int]:
    """SCRAM credentials for the users with a password file, then the broker's ACLs made equal
    to the file's (for those users). Returns (users, created, deleted)."""
    users = {f.name: f.read_text(encoding="utf-8").strip() for f in sorted(users_dir.iterdir()) if f.is_file()}
    if not users:
        raise BootstrapError(f"no password files in {users_dir}")
    upserts = [
        UserScramCredentialUpsertion(name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, SCRAM_ITERATIONS), password.encode())
        for name, password in users.items()
    ]
    for name, future in admin.alter_user_scram_credentials(upserts, request_timeout=15).items():
        try:
            future.result()
        except KafkaException as error:
            raise BootstrapError(f"SCRAM credential of {name}: {error}") from error

    wanted = {b for b in read_acls(acls_file, dict(os.environ)) if b.principal.removeprefix("User:") in users}
    try:
        present = set(admin.describe_acls(AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY,
        ), request_timeout=15).result())
        missing = sorted(wanted - present, key=str)
        extra = sorted(present - wanted, key=str)
        if missing:
            for future in admin.create_acls(missing, request_timeout=15).values():
                future.result()
        if extra:
            filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                                        b.operation, b.permission_type) for b in extra]
            for future in admin.delete_acls(filters, request_timeout=15).values():
                future.result()
    except KafkaException as error:
        raise BootstrapError(f"ACLs: {error}") from error
    return len(users), len(missing), len(extra)


def create_topics(admin: AdminClient, topics: list[str]) -> None:
    # Create only the missing topics, so a re-run makes no failed requests to sort through.
    pending = [t for t in topics if t not in existing_topics(admin)]
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        if not pending:
            break
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=1, replication_factor=1) for t in pending],
            request_timeout=15,
        )
        retry: list[str] = []
        failures: list[str] = []
        for topic, future in futures.items():
            try:
                future.result()
            except KafkaException as exception:
                error: KafkaError = exception.args[0]
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                if error.retriable() or error.code() in (
                    KafkaError._TRANSPORT,
                    KafkaError._TIMED_OUT,
                    KafkaError._ALL_BROKERS_DOWN,
                ):
                    retry.append(topic)
                else:
                    failures.append(f"{topic}: {error.str()}")
        if failures:
            raise BootstrapError("creating topics failed:\n  " + "\n  ".join(failures))
        if not retry:
            break
        if attempt == CREATE_ATTEMPTS:
            raise BootstrapError(f"creating topics still failing after {attempt} attempts: {retry}")
        pending = retry
        time.sleep(1)

    # A created topic reaches the broker's metadata cache a moment after CreateTopics
    # answers (KRaft publishes it with the next metadata image), so a fresh cluster can
    # list it late: wait for it rather than fail the start on that gap.
    deadline = time.monotonic() + METADATA_WAIT_SECONDS
    while True:
        missing = [t for t in topics if t not in existing_topics(admin)]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise BootstrapError(
                f"topics missing from the broker's metadata {METADATA_WAIT_SECONDS} s after creation: {missing}"
            )
        time.sleep(0.2)


def registry_call(session: requests.Session, method: str, url: str, body: dict | None = None) -> dict:
    try:
        response = session.request(
            method,
            url,
            data=None if body is None else json.dumps(body),
            headers={"Content-Type": REGISTRY_CONTENT_TYPE, "Accept": REGISTRY_CONTENT_TYPE},
            timeout=HTTP_TIMEOUT,
        )
    except requests.RequestException as error:
        raise BootstrapError(f"{method} {url}: {error}") from error
    if response.status_code // 100 != 2:
        raise BootstrapError(f"{method} {url}: HTTP {response.status_code}: {response.text.strip()[:500]}")
    try:
        return response.json()
    except ValueError as error:
        raise BootstrapError(f"{method} {url}: response is not JSON: {response.text[:200]!r}") from error


def same_schema(a: str, b: str) -> bool:
    return json.loads(a) == json.loads(b)


def register_schemas(registry: str, schemas: dict[str, str], auth: tuple[str, str] | None = None) -> dict[str, int]:
    unknown = [t for t in COMPATIBILITY_NONE if t not in schemas]
    if unknown:
        raise BootstrapError(f"COMPATIBILITY_NONE names topics without an .avsc: {unknown}")

    registry = registry.rstrip("/")
    ids: dict[str, int] = {}
    with requests.Session() as session:
        session.auth = auth
        for topic, schema in schemas.items():
            subject = f"{topic}-value"
            url = f"{registry}/subjects/{quote(subject, safe='')}/versions"
            answer = registry_call(session, "POST", url, {"schema": schema, "schemaType": "AVRO"})
            if not isinstance(answer.get("id"), int):
                raise BootstrapError(f"POST {url}: no schema id in {answer!r}")
            ids[subject] = answer["id"]

        for topic in COMPATIBILITY_NONE:
            subject = f"{topic}-value"
            url = f"{registry}/config/{quote(subject, safe='')}"
            answer = registry_call(session, "PUT", url, {"compatibility": "NONE"})
            # Confluent answers {"compatibility": ...}; rivven-schema 0.0.22 {"compatibilityLevel": ...}.
            if "NONE" not in (answer.get("compatibility"), answer.get("compatibilityLevel")):
                raise BootstrapError(f"PUT {url}: unexpected answer {answer!r}")

        for topic, schema in schemas.items():
            subject = f"{topic}-value"
            # A Flink avro-confluent sink registers its own schema under its topic's subject
            # (hence compatibility NONE there), so once the processors have written, ours is
            # an earlier version of those subjects, not the latest.
            if topic not in COMPATIBILITY_NONE:
                url = f"{registry}/subjects/{quote(subject, safe='')}/versions/latest"
                latest = registry_call(session, "GET", url)
                if latest.get("id") != ids[subject] or not same_schema(latest.get("schema", "null"), schema):
                    raise BootstrapError(f"GET {url}: expected id {ids[subject]} and the registered schema, got {latest!r}")
            url = f"{registry}/schemas/ids/{ids[subject]}"
            by_id = registry_call(session, "GET", url)
            if not same_schema(by_id.get("schema", "null"), schema):
                raise BootstrapError(f"GET {url}: schema differs from {subject}: {by_id!r}")
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=os.environ.get("BOOTSTRAP_BROKERS", "127.0.0.1:9092"))
    parser.add_argument("--registry", default=os.environ.get("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081"))
    parser.add_argument("--sasl-ssl", action="store_true", help="SASL_SSL (SCRAM-SHA-256) as superuser")
    parser.add_argument("--ca-file", help="PEM of the CA that signed the broker's certificate")
    parser.add_argument("--users-dir", type=Path, help="one password file per Kafka user (superuser included)")
    parser.add_argument("--acls-file", type=Path, help="the grants (scripts/infra/kafka-acls.txt)")
    parser.add_argument("--registry-user", help="basic auth; the password is $SCHEMA_REGISTRY_PASSWORD")
    args = parser.parse_args()

    config = {"bootstrap.servers": args.brokers, "socket.timeout.ms": 10000}
    if args.sasl_ssl:
        if not (args.ca_file and args.users_dir and args.acls_file):
            parser.error("--sasl-ssl needs --ca-file, --users-dir and --acls-file")
        config |= {
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": args.ca_file,
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "superuser",
            "sasl.password": (args.users_dir / "superuser").read_text(encoding="utf-8").strip(),
        }
    auth = None
    if args.registry_user:
        if not os.environ.get("SCHEMA_REGISTRY_PASSWORD"):
            parser.error("--registry-user needs the password in SCHEMA_REGISTRY_PASSWORD")
        auth = (args.registry_user, os.environ["SCHEMA_REGISTRY_PASSWORD"])

    security = ""
    try:
        schemas = discover_schemas()
        topics = [*schemas, *(t for t in EXTRA_TOPICS if t not in schemas)]
        admin = AdminClient(config)
        if args.sasl_ssl:
            users, created, deleted = apply_security(admin, args.users_dir, args.acls_file)
            security = f"{users} SCRAM users, ACLs as {args.acls_file.name} ({created} created, {deleted} deleted), "
        create_topics(admin, topics)
        ids = register_schemas(args.registry, schemas, auth)
    except BootstrapError as error:
        print(f"bootstrap failed: {error}", file=sys.stderr)
        return 1
    print(
        f"bootstrap: {security}{len(topics)} topics on {args.brokers}, "
        f"{len(ids)} subjects on {args.registry} "
        f"({len(COMPATIBILITY_NONE)} with compatibility NONE)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
