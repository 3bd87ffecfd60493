"""Helpers of the connector tests: the jobs run with their real Kafka, avro-confluent and JDBC
connectors (the jars scripts/stack/pom.xml puts in .local/jars/flink) against the local
stack's broker, schema registry and PostgreSQL (addresses from local-stack.env, overridable
by the LOCAL_* environment variables that ./taskw exports).

Isolation: every test gets a `KafkaNamespace` with its own suffix. The jobs append it to all
their topics, consumer groups and transactional ids (KAFKA_TOPIC_SUFFIX, see
flink_jobs/sql_runner.py), the namespace creates exactly those topics, registers the avro/
contracts under their `<topic>-value` subjects, and deletes topics and subjects afterwards.
So tests can run in parallel and again, next to the processors of the local session cluster.

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
    admin = AdminClient({"bootstrap.servers": BROKERS, "socket.timeout.ms": 5000})
    try:
        admin.list_topics(timeout=10)
    except Exception as error:  # noqa: BLE001  (any client error means: not reachable)
        raise AssertionError(f"Kafka at {BROKERS} is not reachable ({error}): ./taskw stack:up") from None
    try:
        requests.get(f"{REGISTRY_URL}/subjects", timeout=5).raise_for_status()
    except requests.RequestException as error:
        raise AssertionError(f"schema registry at {REGISTRY_URL} is not reachable ({error})") from None


def create_topics(names: Sequence[str], timeout: float = 30.0) -> None:
    """Creates the topics (one partition, replication 1, like the stack's) and waits until
    the broker's metadata lists them all: creation returns before every broker knows them."""
    admin = AdminClient({"bootstrap.servers": BROKERS})
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

    def __init__(self) -> None:
        self.suffix = f".t{uuid.uuid4().hex[:12]}"
        self.topics: list[str] = []
        self.subjects: list[str] = []
        self.registry = SchemaRegistryClient({"url": REGISTRY_URL})
        self._producers: dict[str, tuple[Producer, AvroSerializer]] = {}

    def topic(self, base: str) -> str:
        return base + self.suffix

    def create(self, *bases: str) -> None:
        """Creates the topics (one partition, as the stack's) and registers the contract of
        every topic that has one, with compatibility NONE where the stack sets it (the Flink
        sinks register their own, equivalent schema on top)."""
        names = [self.topic(b) for b in bases]
        create_topics(names)
        self.topics += names
        with requests.Session() as session:
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
        checkpoints every second (state snapshots and offset commits are exercised)."""
        return {
            "REDPANDA_BROKERS": BROKERS,
            "SCHEMA_REGISTRY_URL": REGISTRY_URL,
            "KAFKA_TOPIC_SUFFIX": self.suffix,
            "FLINK_CONNECTOR_JARS_DIR": str(JARS_DIR),
            "FLINK_CHECKPOINT_INTERVAL_MS": "1000",
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
            self._producers[topic] = (Producer({"bootstrap.servers": BROKERS}), serializer)
        producer, serializer = self._producers[topic]
        extra = {} if timestamp_ms is None else {"timestamp": timestamp_ms}
        for record in records:
            value = serializer(dict(record), SerializationContext(topic, MessageField.VALUE))
            producer.produce(topic, value, **extra)
        assert producer.flush(30) == 0, f"records for {topic} not delivered"

    @contextmanager
    def reader(self, base: str) -> Iterator["TopicReader"]:
        consumer = Consumer({
            "bootstrap.servers": BROKERS,
            "group.id": f"test-reader{self.suffix}-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        })
        consumer.subscribe([self.topic(base)])
        try:
            yield TopicReader(consumer, AvroDeserializer(self.registry), self.topic(base))
        finally:
            consumer.close()

    def delete(self) -> None:
        """Best-effort clean-up: topics, then the subjects (soft, then permanent delete)."""
        if self.topics:
            admin = AdminClient({"bootstrap.servers": BROKERS})
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
                    requests.delete(f"{REGISTRY_URL}/subjects/{quote(subject, safe='')}{suffix}", timeout=5)
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
    """The JDBC URL of a libpq connection string (host, port, dbname)."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    return (
        f"jdbc:postgresql://{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}"
        f"/{parts['dbname']}"
    )


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
        # deployed; the local server trusts local connections; the JDBC sink wants a password
        "SUPABASE_DB_USER": "flink_writer",
        "SUPABASE_DB_PASSWORD": str(parts.get("password", "postgres")),
    }
