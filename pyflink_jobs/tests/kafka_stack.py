"""Helpers of the connector tests: the jobs run with their real Kafka, avro-confluent and JDBC
connectors (the jars scripts/stack/pom.xml puts in .local/jars/flink) against the local
stack's broker, schema registry and PostgreSQL (addresses from local-stack.env, overridable
by the LOCAL_* environment variables that ./taskw exports).

Isolation: every test gets a `KafkaNamespace` with its own suffix. The jobs append it to all
their topics, consumer groups and transactional ids (KAFKA_TOPIC_SUFFIX, see
flink_jobs/sql_runner.py), the namespace creates exactly those topics, registers the avro/
contracts under their `<topic>-value` subjects, and deletes topics and subjects afterwards.
So tests can run in parallel and again, next to the processors of the local session cluster.

Security: the stack runs in one of two profiles (scripts/stack/profile.sh). In the production
profile the broker speaks SASL_SSL only, the registry wants HTTP basic auth and Postgres TLS
with a password per role. This module is the one place the harnesses (these tests,
flink_jobs/tests/fleet.py, tests/e2e/scenarios, scripts/chaos) learn those settings from:
`PROFILE`, `kafka_config()` for every Kafka client, `registry_auth()`/`registry_config()` for
registry calls, and `service_security_env()`/`processor_security_env()`/`db_environ()` for the
services and processors a harness starts. The profile is STACK_PROFILE's when set, else the
running stack's (.local/run/profile), else development; certificates and passwords are read
from .local/tls and .local/secrets (or TLS_DIR, KAFKA_USERS_DIR, REGISTRY_USERS_FILE and
PG_PASSWORDS_DIR, as scripts/stack/lib.sh exports them).

Jobs are streaming: `start_job` submits them to a local mini-cluster (one JVM per pytest
process, started by PyFlink), the test polls the job's sinks until the expected result shows
up or a deadline passes (failing early when the job dies), and the job is cancelled at the end.
"""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.parse import quote

import requests
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

REPO_DIR = Path(__file__).resolve().parents[2]
STACK_ENV_FILE = REPO_DIR / "local-stack.env"

#: How long a test waits for a job's output. Generous: the first job of a run starts the JVM,
#: and Python workers start slowly on a busy 2-core machine. Nothing asserts on timing.
RESULT_TIMEOUT = 180.0


def stack_settings() -> dict[str, str]:
    """local-stack.env (plain KEY=value lines), each value overridden by the environment."""
    settings: dict[str, str] = {}
    for line in STACK_ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            settings[key] = os.environ.get(key, value)
    return settings


STACK = stack_settings()
BROKERS = STACK["LOCAL_KAFKA_BROKERS"]
REGISTRY_URL = STACK["LOCAL_SCHEMA_REGISTRY_URL"]
JARS_DIR = Path(os.environ.get("FLINK_TEST_CONNECTOR_JARS_DIR", REPO_DIR / ".local" / "jars" / "flink"))


# --------------------------------------------------------------------------------------------
# The stack's profile and its security settings (scripts/stack/profile.sh)

LOCAL_DIR = REPO_DIR / ".local"
PROFILE_FILE = LOCAL_DIR / "run" / "profile"
_PROFILES = {"development": "development", "dev": "development", "production": "production", "prod": "production"}


def stack_profile(environ: Mapping[str, str] | None = None) -> str:
    """development or production: STACK_PROFILE when set (the chaos run sets it for its private
    stack; scripts/stack/lib.sh exports it), else what the running shared stack recorded in
    .local/run/profile, else development."""
    environ = os.environ if environ is None else environ
    value = environ.get("STACK_PROFILE", "").strip()
    if not value and PROFILE_FILE.is_file():
        value = PROFILE_FILE.read_text().strip()
    value = value or "development"
    if value not in _PROFILES:
        raise ValueError(f"STACK_PROFILE must be development or production, not {value!r}")
    return _PROFILES[value]


PROFILE = stack_profile()
TLS_DIR = Path(os.environ.get("TLS_DIR") or LOCAL_DIR / "tls")
CA_FILE = TLS_DIR / "ca.pem"
KAFKA_USERS_DIR = Path(os.environ.get("KAFKA_USERS_DIR") or LOCAL_DIR / "secrets" / "kafka-users")
REGISTRY_USERS_FILE = Path(os.environ.get("REGISTRY_USERS_FILE") or LOCAL_DIR / "secrets" / "registry-users")
PG_PASSWORDS_DIR = Path(os.environ.get("PG_PASSWORDS_DIR") or LOCAL_DIR / "secrets" / "postgres")
#: The Kafka identity of the harness's own clients (topics, readers, producers, audits).
HARNESS_KAFKA_USER = "superuser"
#: The registry identity of the harness: it registers the contracts and deletes the subjects.
HARNESS_REGISTRY_USER = "schema-admin"
#: The Flink jobs' user (Kafka and registry), as scripts/stack/flink.sh runs them.
FLINK_USER = "flink-processor"
#: The Flink jobs' Postgres role (migration 20261201000100_flink_writer_role.sql).
FLINK_DB_ROLE = "flink_writer"
#: The saga steps keep at-least-once sinks in production (values.yaml flink.jobs, flink.sh):
#: per-job overrides <JOB>__<SETTING>, as scripts/stack/flink_launch.py applies them.
PRODUCTION_JOB_OVERRIDES = {
    "CREDIT_CHECK_PROCESSOR__KAFKA_SINK_DELIVERY_GUARANTEE": "at-least-once",
    "MOVE_SAGA_PROCESSOR__KAFKA_SINK_DELIVERY_GUARANTEE": "at-least-once",
}


def production() -> bool:
    return PROFILE == "production"


def _secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise AssertionError(
            f"the production profile's secret {path} is missing ({error}): PROFILE=production ./taskw up "
            "makes them (scripts/stack/profile.sh ensure_secrets)"
        ) from None


def kafka_password(user: str) -> str:
    return _secret(KAFKA_USERS_DIR / user)


def pg_password(role: str) -> str:
    return _secret(PG_PASSWORDS_DIR / role)


def _registry_entry(user: str) -> tuple[str, str]:
    """(password, role) of the user in the registry's users file (`user:password:role`)."""
    for line in _secret(REGISTRY_USERS_FILE).splitlines():
        name, _, rest = line.partition(":")
        if name == user and ":" in rest:
            password, role = rest.rsplit(":", 1)
            return password, role.strip()
    raise AssertionError(f"no registry user {user} in {REGISTRY_USERS_FILE}")


def registry_password(user: str) -> str:
    return _registry_entry(user)[0]


def registry_role(user: str) -> str:
    """admin, reader or writer=SUBJECT[,...] (scripts/stack/registry-auth)."""
    return _registry_entry(user)[1]


def kafka_security(user: str = HARNESS_KAFKA_USER) -> dict[str, str]:
    """librdkafka settings of a client authenticating as `user` ({} in development)."""
    if not production():
        return {}
    return {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(CA_FILE),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": kafka_password(user),
    }


def kafka_config(*overrides: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The configuration of every Kafka client of the harnesses: the broker, the profile's
    security (as the harness's user), then `overrides` (dicts, for dotted keys such as
    group.id) and `extra`."""
    config: dict[str, Any] = {"bootstrap.servers": BROKERS, **kafka_security()}
    for override in overrides:
        config.update(override)
    config.update(extra)
    return config


def registry_auth(user: str = HARNESS_REGISTRY_USER) -> tuple[str, str] | None:
    """requests' `auth` for the registry (None in development)."""
    return (user, registry_password(user)) if production() else None


def registry_config(user: str = HARNESS_REGISTRY_USER) -> dict[str, str]:
    """A SchemaRegistryClient's configuration."""
    auth = registry_auth(user)
    return {"url": REGISTRY_URL, **({"basic.auth.user.info": f"{auth[0]}:{auth[1]}"} if auth else {})}


def postgres_url(conninfo: str, role: str | None = None) -> str:
    """The URL of the database of `conninfo` for a service (what the Rust services take). In
    production as `role` with its password, over TLS verified against the stack's CA; in
    development as conninfo's user (the server trusts loopback)."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    address = f"{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}/{parts['dbname']}"
    if production() and role:
        return (f"postgres://{role}:{quote(pg_password(role), safe='')}@{address}"
                f"?sslmode=verify-full&sslrootcert={quote(str(CA_FILE), safe='/')}")
    auth = parts.get("user", "postgres") + (f":{parts['password']}" if parts.get("password") else "")
    return f"postgres://{auth}@{address}"


def service_security_env(service: str, conninfo: str, kafka_user: str | None = None) -> dict[str, str]:
    """A Rust service's connection settings (scripts/services/up.sh security_env): in
    production Kafka over SASL_SSL as `kafka_user` (default: the service's own user), the
    registry with the service's credentials, Postgres as the service's role over verified TLS."""
    role = service.replace("-", "_")
    env = {"APP__POSTGRES__URL": postgres_url(conninfo, role)}
    if production():
        user = kafka_user or service
        env |= {
            "APP__KAFKA__TLS": "true",
            "APP__KAFKA__SSL_CA_FILE": str(CA_FILE),
            "APP__KAFKA__SASL_MECHANISM": "SCRAM-SHA-256",
            "APP__KAFKA__SASL_USERNAME": user,
            "APP__KAFKA__SASL_PASSWORD": kafka_password(user),
            "APP__REGISTRY__USERNAME": service,
            "APP__REGISTRY__PASSWORD": registry_password(service),
        }
    return env


def processor_security_env(kafka_user: str = FLINK_USER, registry_user: str = FLINK_USER) -> dict[str, str]:
    """The processors' settings of the profile (scripts/stack/flink.sh flink_env): in production
    SASL_SSL as `kafka_user`, the registry as `registry_user`, exactly-once Kafka sinks except
    the saga steps' (PRODUCTION_JOB_OVERRIDES; apply them with job_environ), libpq's TLS
    settings for the credit check. Nothing in development."""
    if not production():
        return {}
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": kafka_user,
        "KAFKA_SASL_PASSWORD": kafka_password(kafka_user),
        "KAFKA_SSL_CA_FILE": str(CA_FILE),
        "SCHEMA_REGISTRY_USERNAME": registry_user,
        "SCHEMA_REGISTRY_PASSWORD": registry_password(registry_user),
        "KAFKA_SINK_DELIVERY_GUARANTEE": "exactly-once",
        **PRODUCTION_JOB_OVERRIDES,
        **libpq_tls_env(),
    }


def libpq_tls_env() -> dict[str, str]:
    """libpq's TLS settings of the profile (verify the server against the stack's CA)."""
    return {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(CA_FILE)} if production() else {}


def job_environ(job_name: str, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with one job's overrides applied: variables <JOB>__<SETTING>, JOB the job's name
    in upper case with '-' as '_' (scripts/stack/flink_launch.py job_overrides)."""
    prefix = job_name.upper().replace("-", "_") + "__"
    return {**environ, **{k.removeprefix(prefix): v for k, v in environ.items() if k.startswith(prefix)}}


# The credit check's psycopg (in PyFlink's Python workers, children of the JVM this process
# starts) takes its TLS settings from libpq's environment, as on the session cluster
# (flink.sh); set before any JVM starts, so the workers inherit them. The harness's own
# connections (as postgres) verify the server the same way.
for _name, _value in libpq_tls_env().items():
    os.environ.setdefault(_name, _value)


def _load_bootstrap():
    """scripts/stack/bootstrap.py, the stack's own topic/subject conventions."""
    spec = importlib.util.spec_from_file_location("stack_bootstrap", REPO_DIR / "scripts" / "stack" / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bootstrap = _load_bootstrap()
#: topic -> Avro schema (compact JSON) of every contract under avro/
SCHEMAS: dict[str, str] = bootstrap.discover_schemas()


def require_stack() -> None:
    """Fails (never skips) with a clear message when the stack or the jars are missing."""
    jars = sorted(JARS_DIR.glob("*.jar"))
    assert jars, (
        f"no connector jars in {JARS_DIR}: run ./taskw stack:up (scripts/stack/install.sh "
        "resolves scripts/stack/pom.xml into .local/jars)"
    )
    admin = AdminClient(kafka_config({"socket.timeout.ms": 5000}))
    try:
        admin.list_topics(timeout=10)
    except Exception as error:  # noqa: BLE001  (any client error means: not reachable)
        raise AssertionError(
            f"Kafka at {BROKERS} is not reachable ({error}) with the {PROFILE} profile's settings: ./taskw stack:up"
        ) from None
    try:
        requests.get(f"{REGISTRY_URL}/subjects", auth=registry_auth(), timeout=5).raise_for_status()
    except requests.RequestException as error:
        raise AssertionError(f"schema registry at {REGISTRY_URL} is not reachable ({error})") from None


def create_topics(names: Sequence[str], timeout: float = 30.0) -> None:
    """Creates the topics (one partition, replication 1, like the stack's) and waits until
    the broker's metadata lists them all: creation returns before every broker knows them."""
    admin = AdminClient(kafka_config())
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=1, replication_factor=1) for n in names], request_timeout=15
    )
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    deadline = time.monotonic() + timeout
    while True:
        missing = set(names) - set(admin.list_topics(timeout=10).topics)
        if not missing:
            return
        assert time.monotonic() < deadline, f"topics not in the broker's metadata: {sorted(missing)}"
        time.sleep(0.2)


class KafkaNamespace:
    """The topics, subjects and consumer groups of one test, all carrying `suffix`."""

    def __init__(self, suffix: str | None = None) -> None:
        #: "" on a broker of the run's own (the chaos run's): the names as deployed
        self.suffix = f".t{uuid.uuid4().hex[:12]}" if suffix is None else suffix
        self.topics: list[str] = []
        self.subjects: list[str] = []
        self.registry = SchemaRegistryClient(registry_config())
        self._producers: dict[str, tuple[Producer, AvroSerializer]] = {}

    def topic(self, base: str) -> str:
        return base + self.suffix

    def kafka_user(self, user: str) -> str:
        """The Kafka user a service or the processors of this namespace connect as. Namespaced
        names (a suffix) fall outside the literal grants of scripts/infra/kafka-acls.txt (the
        message-consumer's topic and group), so they connect as the superuser; the
        per-service grants are proven by tests/production and by a namespace without a suffix
        (the chaos run's private broker), whose services and processors use their own users."""
        return HARNESS_KAFKA_USER if self.suffix else user

    def registry_user(self, user: str) -> str:
        """The registry user the processors of this namespace use. Their avro-confluent sinks
        register their schema under their topic's subject; a role that names its subjects
        (writer=...) covers the deployed subjects only, not namespaced ones, so with a suffix
        the processors use the harness's registry user unless theirs is an admin."""
        if self.suffix and production() and registry_role(user) != "admin":
            return HARNESS_REGISTRY_USER
        return user

    def create(self, *bases: str) -> None:
        """Creates the topics (one partition, as the stack's) and registers the contract of
        every topic that has one, with compatibility NONE where the stack sets it (the Flink
        sinks register their own, equivalent schema on top)."""
        names = [self.topic(b) for b in bases]
        create_topics(names)
        self.topics += names
        with requests.Session() as session:
            session.auth = registry_auth()
            for base in bases:
                if base not in SCHEMAS:
                    continue
                subject = quote(f"{self.topic(base)}-value", safe="")
                bootstrap.registry_call(
                    session, "POST", f"{REGISTRY_URL}/subjects/{subject}/versions",
                    {"schema": SCHEMAS[base], "schemaType": "AVRO"},
                )
                self.subjects.append(f"{self.topic(base)}-value")
                if base in bootstrap.COMPATIBILITY_NONE:
                    bootstrap.registry_call(
                        session, "PUT", f"{REGISTRY_URL}/config/{subject}", {"compatibility": "NONE"}
                    )

    def environ(self, **extra: str) -> dict[str, str]:
        """The jobs' environment: the local stack, this namespace, the pom's connector jars,
        checkpoints every second (state snapshots and offset commits are exercised), and the
        profile's security (processor_security_env; in production exactly-once sinks, whose
        output appears when a checkpoint completes, so every second here)."""
        return {
            "REDPANDA_BROKERS": BROKERS,
            "SCHEMA_REGISTRY_URL": REGISTRY_URL,
            "KAFKA_TOPIC_SUFFIX": self.suffix,
            "FLINK_CONNECTOR_JARS_DIR": str(JARS_DIR),
            "FLINK_CHECKPOINT_INTERVAL_MS": "1000",
            **processor_security_env(self.kafka_user(FLINK_USER), self.registry_user(FLINK_USER)),
            **extra,
        }

    def produce(
        self, base: str, records: Sequence[Mapping[str, Any]], timestamp_ms: int | None = None
    ) -> None:
        """Confluent-framed Avro (magic byte, schema id, body) with the contract registered
        under the topic's subject, as the services write it; `timestamp_ms` sets the records'
        create time (history a test pretends was produced earlier)."""
        topic = self.topic(base)
        if topic not in self._producers:
            serializer = AvroSerializer(
                self.registry, SCHEMAS[base],
                # the registry lacks the POST /subjects/{s} lookup: use the registered version
                conf={"auto.register.schemas": False, "use.latest.version": True},
            )
            self._producers[topic] = (Producer(kafka_config()), serializer)
        producer, serializer = self._producers[topic]
        extra = {} if timestamp_ms is None else {"timestamp": timestamp_ms}
        for record in records:
            value = serializer(dict(record), SerializationContext(topic, MessageField.VALUE))
            producer.produce(topic, value, **extra)
        assert producer.flush(30) == 0, f"records for {topic} not delivered"

    @contextmanager
    def reader(self, base: str) -> Iterator["TopicReader"]:
        consumer = Consumer(kafka_config({
            "group.id": f"test-reader{self.suffix}-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }))
        consumer.subscribe([self.topic(base)])
        try:
            yield TopicReader(consumer, AvroDeserializer(self.registry), self.topic(base))
        finally:
            consumer.close()

    def delete(self) -> None:
        """Best-effort clean-up: topics, then the subjects (soft, then permanent delete)."""
        if self.topics:
            admin = AdminClient(kafka_config())
            for future in admin.delete_topics(self.topics, operation_timeout=15).values():
                try:
                    future.result()
                except Exception:  # noqa: BLE001  (already gone or broker busy: harmless)
                    pass
        subjects = set(self.subjects)
        try:
            subjects |= {s for s in self.registry.get_subjects() if s.endswith(f"{self.suffix}-value")}
        except Exception:  # noqa: BLE001
            pass
        for subject in subjects:
            for suffix in ("", "?permanent=true"):
                try:
                    requests.delete(f"{REGISTRY_URL}/subjects/{quote(subject, safe='')}{suffix}",
                                    auth=registry_auth(), timeout=5)
                except requests.RequestException:
                    pass


class TopicReader:
    """Decodes a topic's records with the registry (the writer's schema, by id)."""

    def __init__(self, consumer: Consumer, deserializer: AvroDeserializer, topic: str) -> None:
        self.consumer = consumer
        self.deserializer = deserializer
        self.topic = topic
        self.records: list[dict[str, Any]] = []

    def poll(self, seconds: float = 0.5) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self.consumer.poll(left)
            if message is None:
                break
            if message.error():
                if message.error().code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                raise AssertionError(f"consuming {self.topic}: {message.error()}")
            value = message.value()
            assert value[:1] == b"\0", "not Confluent-framed (magic byte 0)"
            self.records.append(
                self.deserializer(value, SerializationContext(self.topic, MessageField.VALUE))
            )
        return self.records


@contextmanager
def namespace() -> Iterator[KafkaNamespace]:
    require_stack()
    ns = KafkaNamespace()
    try:
        yield ns
    finally:
        ns.delete()


# --------------------------------------------------------------------------------------------
# Jobs


class RunningJob:
    def __init__(self, result) -> None:
        self.result = result
        self.client = result.get_job_client()

    def status(self) -> str:
        try:
            return str(self.client.get_job_status().result())
        except Exception:  # noqa: BLE001  (the mini-cluster shuts down with its only job)
            return "GONE"

    def check_alive(self) -> None:
        status = self.status()
        if status in ("FAILED", "CANCELED", "FINISHED", "GONE"):
            self.result.wait()  # raises the job's failure, if any
            raise AssertionError(f"the streaming job ended ({status})")
        if status in ("RESTARTING", "FAILING"):
            # nothing in these tests should fail a task: report it instead of waiting it out
            raise AssertionError(
                f"the streaming job is {status}: a task failed (the mini-cluster logs to "
                "site-packages/pyflink/log/ of .venv-flink)"
            )

    def cancel(self) -> None:
        if self.status() not in ("FAILED", "CANCELED", "FINISHED", "GONE"):
            self.client.cancel().result()

    # `with RunningJob(...) as job:` cancels the streaming job however the block ends
    def __enter__(self) -> "RunningJob":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


def running(statement_set) -> RunningJob:
    """Submits the statement set (a streaming job); use the result as a context manager."""
    return RunningJob(statement_set.execute())


def wait_for(
    job: RunningJob,
    observe: Callable[[], Any],
    done: Callable[[Any], bool],
    what: str,
    timeout: float = RESULT_TIMEOUT,
) -> Any:
    """Polls observe() until done(value); fails when the job dies or after `timeout` seconds
    (a deadline for a result, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = observe()
        if done(value):
            return value
        job.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout after {timeout:.0f}s waiting for {what}; last seen: {value!r}")
        time.sleep(0.3)


def jdbc_url(conninfo: str) -> str:
    """The JDBC URL of a libpq connection string (host, port, dbname); in production over TLS
    verified against the stack's CA, as scripts/stack/flink.sh gives it to the JDBC sinks."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    url = f"jdbc:postgresql://{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}/{parts['dbname']}"
    return url + (f"?sslmode=verify-full&sslrootcert={CA_FILE}" if production() else "")


def db_environ(conninfo: str) -> dict[str, str]:
    """SUPABASE_DB_* settings of both job kinds (JDBC sinks, psycopg credit check)."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    return {
        "SUPABASE_DB_JDBC_URL": jdbc_url(conninfo),
        "SUPABASE_DB_HOST": str(parts.get("host", "127.0.0.1")),
        "SUPABASE_DB_PORT": str(parts.get("port", 5432)),
        "SUPABASE_DB_NAME": str(parts["dbname"]),
        # the jobs' least-privilege role (migration 20261201000100_flink_writer_role.sql), as
        # deployed; in development the local server trusts local connections (the JDBC sink
        # wants a password all the same), in production the role has the stack's password
        "SUPABASE_DB_USER": FLINK_DB_ROLE,
        "SUPABASE_DB_PASSWORD": pg_password(FLINK_DB_ROLE) if production() else str(parts.get("password", "postgres")),
        **libpq_tls_env(),
    }
