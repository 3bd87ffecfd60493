#!/usr/bin/env python3
"""Runs the Flink SQL processors of Event Substrate as one streaming job.

    python sql_runner.py <file.sql> [more.sql ...]

In Kubernetes the six files run together, in this order: login, signup, signout, unified,
credit_balance, media_notification (spec 3.1).

What it does:

1. Configures the execution environment: checkpointing in exactly-once mode every
   FLINK_CHECKPOINT_INTERVAL_MS (state snapshots; Kafka offsets are committed with each
   checkpoint), optionally a checkpoint directory. Kafka sinks are at-least-once by default,
   so a record is visible downstream as soon as it is written, not one checkpoint later
   (see README.md, "Delivery guarantees").
2. Registers the Kafka sink ``platform_unified_events`` and the twelve Kafka source tables
   (section SOURCES below). Sources start from the consumer group's committed offsets and fall
   back to the earliest offset only for a group that has none, so a restart resumes where the
   last checkpoint left off instead of replaying whole topics.
3. For the shared sink files (SHARED_SINK_FILES: the tables several processor files write
   to, declared once under sinks/), then every SQL file given: splits it into statements with
   a lexer that understands quotes and comments, substitutes ``${NAME}`` placeholders
   (environment, else the defaults below; an unresolved name is an error), executes DDL at
   once and collects every INSERT.
4. Runs all INSERTs as one statement set, i.e. one Flink job.

Connection settings come from the environment, with the names of the original deployment
(DEFAULTS). SASL is configured only when KAFKA_SASL_MECHANISM is set; credentials never
appear in the SQL files.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Sequence

# --------------------------------------------------------------------------------------------
# Settings

#: Values used when the environment does not set a variable. The Kafka SASL variables have no
#: default: a broker without SASL (the local stack) needs none, and the deployments set all
#: four explicitly.
DEFAULTS: dict[str, str] = {
    "REDPANDA_BROKERS": "host.docker.internal:9092",
    "SCHEMA_REGISTRY_URL": "http://host.docker.internal:8081",
    "SUPABASE_DB_JDBC_URL": (
        "jdbc:postgresql://host.docker.internal:54322/postgres"
        "?tcpKeepAlive=true&connectTimeout=10&socketTimeout=30"
    ),
    "SUPABASE_DB_USER": "postgres",
    "SUPABASE_DB_PASSWORD": "postgres",
    # checkpointing (exactly-once state); Kafka offsets are committed when a checkpoint
    # completes. With at-least-once sinks the interval only bounds the replay after a restart.
    "FLINK_CHECKPOINT_INTERVAL_MS": "10000",
    # Kafka sinks: at-least-once writes at once (a restart may repeat records, which every
    # consumer handles idempotently by its event's key); exactly-once uses Kafka transactions
    # committed on checkpoints, which delays every record by up to one checkpoint interval
    "KAFKA_SINK_DELIVERY_GUARANTEE": "at-least-once",
    "KAFKA_TRANSACTIONAL_ID_PREFIX": "event-substrate",
    # must not exceed the broker's transaction.max.timeout.ms (15 minutes by default)
    "KAFKA_TRANSACTION_TIMEOUT_MS": "900000",
    # directory whose *.jar files are added to pipeline.jars when it exists
    "FLINK_CONNECTOR_JARS_DIR": "/opt/flink/usrlib",
    # Where a source starts when the job does not resume from a savepoint or checkpoint:
    #   group-offsets      the group's committed offsets, the earliest offset for a group without
    #   latest             the group's committed offsets, the latest offset for a group without
    #   timestamp:<ms>     the first record at or after that epoch millisecond (a cut-over: the
    #                      original jobs never committed offsets, docs/cutover.md)
    "KAFKA_SOURCE_STARTUP": "group-offsets",
}

#: Variables that may be empty or unset without a default.
OPTIONAL = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    # PEM file of the CA the brokers' certificates are checked against (TLS listeners signed
    # by a private CA); unset: the JVM's trust store
    "KAFKA_SSL_CA_FILE",
    # HTTP basic auth of the schema registry, both or neither
    "SCHEMA_REGISTRY_USERNAME",
    "SCHEMA_REGISTRY_PASSWORD",
    "FLINK_CHECKPOINT_DIR",
    # appended to every Kafka topic, consumer group and transactional id: runs an isolated
    # copy of the processors on a shared broker (the connector tests use one per test)
    "KAFKA_TOPIC_SUFFIX",
)


class ConfigError(ValueError):
    """A setting is missing or malformed, or a SQL file cannot be used."""


def lookup(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The environment's value of `name`, else its default, else None."""
    environ = os.environ if environ is None else environ
    if name in environ:
        return environ[name]
    return DEFAULTS.get(name)


def setting(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Like lookup, but "" for optional variables that are unset."""
    value = lookup(name, environ)
    if value is None:
        if name in OPTIONAL:
            return ""
        raise ConfigError(f"environment variable {name} is not set and has no default")
    return value


def int_setting(name: str, environ: Mapping[str, str] | None = None) -> int:
    raw = setting(name, environ).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


# --------------------------------------------------------------------------------------------
# SQL lexing: statement splitting, comment stripping, placeholder substitution


@dataclass(frozen=True)
class Segment:
    """A piece of SQL text: kind is code, string ('...'), identifier (`...` or "..."),
    line_comment (-- ...) or block_comment (/* ... */)."""

    kind: str
    text: str


def lex(text: str) -> Iterator[Segment]:
    """Splits SQL text into segments. Quotes are escaped by doubling them (Flink SQL);
    an unterminated quote or block comment is an error."""
    i, n = 0, len(text)
    code_start = 0

    def flush_code(end: int) -> Iterator[Segment]:
        if end > code_start:
            yield Segment("code", text[code_start:end])

    while i < n:
        ch = text[i]
        if ch in "'`\"":
            yield from flush_code(i)
            j = i + 1
            while True:
                j = text.find(ch, j)
                if j < 0:
                    kind = "string" if ch == "'" else "identifier"
                    raise ConfigError(f"unterminated {kind} starting at offset {i}")
                if j + 1 < n and text[j + 1] == ch:  # doubled quote = escaped quote
                    j += 2
                    continue
                break
            yield Segment("string" if ch == "'" else "identifier", text[i : j + 1])
            i = code_start = j + 1
        elif text.startswith("--", i):
            yield from flush_code(i)
            j = text.find("\n", i)
            j = n if j < 0 else j
            yield Segment("line_comment", text[i:j])
            i = code_start = j
        elif text.startswith("/*", i):
            yield from flush_code(i)
            j = text.find("*/", i + 2)
            if j < 0:
                raise ConfigError(f"unterminated block comment starting at offset {i}")
            yield Segment("block_comment", text[i : j + 2])
            i = code_start = j + 2
        else:
            i += 1
    yield from flush_code(n)


def split_statements(text: str) -> list[str]:
    """The statements of a SQL script, split on `;` outside quotes and comments, trimmed.
    Chunks that hold only whitespace and comments are dropped."""
    statements: list[str] = []
    current: list[Segment] = []

    def finish() -> None:
        if any(s.kind not in ("line_comment", "block_comment") and s.text.strip() for s in current):
            statements.append("".join(s.text for s in current).strip())
        current.clear()

    for segment in lex(text):
        if segment.kind != "code" or ";" not in segment.text:
            current.append(segment)
            continue
        parts = segment.text.split(";")
        for part in parts[:-1]:
            current.append(Segment("code", part))
            finish()
        current.append(Segment("code", parts[-1]))
    finish()
    return statements


def strip_comments(statement: str) -> str:
    """The statement without comments (each comment becomes one space), trimmed."""
    return "".join(
        " " if s.kind in ("line_comment", "block_comment") else s.text for s in lex(statement)
    ).strip()


_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def substitute(statement: str, resolve: Callable[[str], str | None]) -> str:
    """Replaces every ${NAME} outside comments by resolve(NAME). Inside a string literal the
    value is escaped (quotes doubled), so a password containing ' or ; cannot break the
    statement. Names that resolve to None are collected and reported in one ConfigError."""
    missing: list[str] = []

    def replace(match: re.Match[str], quote: str | None) -> str:
        value = resolve(match.group(1))
        if value is None:
            missing.append(match.group(1))
            return match.group(0)
        return value.replace(quote, quote * 2) if quote else value

    out: list[str] = []
    for segment in lex(statement):
        if segment.kind == "string":
            body = _PLACEHOLDER.sub(lambda m: replace(m, "'"), segment.text[1:-1])
            out.append(f"'{body}'")
        elif segment.kind == "code":
            out.append(_PLACEHOLDER.sub(lambda m: replace(m, None), segment.text))
        else:
            out.append(segment.text)
    if missing:
        names = ", ".join(sorted(set(missing)))
        raise ConfigError(f"unresolved placeholder(s) ${{{names}}}: set them in the environment")
    return "".join(out)


_INSERT = re.compile(r"insert\s+(into|overwrite)\b", re.IGNORECASE)
_UNSUPPORTED = re.compile(
    r"(execute\s+statement\s+set|begin\s+statement\s+set|end\b|select\b|with\b)", re.IGNORECASE
)


def is_insert(statement: str) -> bool:
    """True when the statement (comments ignored) is an INSERT INTO/OVERWRITE."""
    return bool(_INSERT.match(strip_comments(statement)))


def classify(statement: str) -> str:
    """"insert" for statements that go into the shared statement set, "ddl" for statements
    executed at once (CREATE, DROP, ALTER, SET, USE, ...). Queries and explicit statement-set
    blocks are rejected: the runner builds the one statement set itself."""
    body = strip_comments(statement)
    if _INSERT.match(body):
        return "insert"
    if _UNSUPPORTED.match(body):
        raise ConfigError(
            "only DDL and INSERT statements are allowed in processor files, got: "
            + body.split("\n", 1)[0][:80]
        )
    return "ddl"


#: Sink tables that several processor files write to, declared once: every plan registers
#: them before the statements of its files (the files only INSERT INTO them). A table none of
#: a job's files writes to is registered all the same and stays unused.
SHARED_SINK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sinks")
SHARED_SINK_FILES: tuple[str, ...] = (
    # user_notifications_sink: login, signup, signout, credit balance and media notifications
    os.path.join(SHARED_SINK_DIR, "user_notifications.sql"),
)


@dataclass(frozen=True)
class Plan:
    """The statements of some SQL files after substitution, in file order."""

    ddl: list[str]
    inserts: list[str]


def plan_files(
    paths: Sequence[str],
    environ: Mapping[str, str] | None = None,
    shared: Sequence[str] = SHARED_SINK_FILES,
) -> Plan:
    """The statements of the `shared` sink files, then those of `paths`; a file listed twice
    (e.g. a shared file also given in `paths`) is read once, where it first appears."""
    ddl: list[str] = []
    inserts: list[str] = []
    seen: set[str] = set()
    for path in [*shared, *paths]:
        key = os.path.realpath(path)
        if key in seen:
            continue
        seen.add(key)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        try:
            statements = [
                substitute(s, lambda name: lookup(name, environ)) for s in split_statements(text)
            ]
            kinds = [classify(s) for s in statements]
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
        for statement, kind in zip(statements, kinds):
            (inserts if kind == "insert" else ddl).append(statement)
    return Plan(ddl, inserts)


# --------------------------------------------------------------------------------------------
# Built-in Kafka tables


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "STRING"


def columns(spec: str) -> tuple[Column, ...]:
    """'a, b BIGINT, c' -> columns (type STRING unless given)."""
    out = []
    for item in spec.split(","):
        parts = item.split()
        out.append(Column(parts[0], parts[1] if len(parts) > 1 else "STRING"))
    return tuple(out)


@dataclass(frozen=True)
class SourceTable:
    name: str
    topic: str
    group: str
    columns: tuple[Column, ...]


#: The twelve Kafka sources of spec 3.1 (table, topic, consumer group, columns).
SOURCES: tuple[SourceTable, ...] = (
    SourceTable(
        "login_events", "public.identity.login.events", "flink-login-consumer",
        columns("user_id, email, login_time, device_id, user_agent, ip_address"),
    ),
    SourceTable(
        "signup_events", "public.identity.signup.events", "flink-signup-consumer",
        columns("user_id, email, signup_time"),
    ),
    SourceTable(
        "signout_events", "public.identity.signout.events", "flink-signout-consumer",
        columns("user_id, email, signout_time, device_id, user_agent, ip_address"),
    ),
    SourceTable(
        "media_upload_events", "public.media.upload.confirmed", "flink-media-confirmed-consumer",
        columns("user_id, email, file_path, file_name, file_size BIGINT, media_type, upload_time"),
    ),
    SourceTable(
        "media_expired_events", "public.media.expired.events", "flink-expired-consumer",
        columns(
            "user_id, file_path, file_name, file_size BIGINT, media_type, request_id,"
            " request_time, expired_time"
        ),
    ),
    SourceTable(
        "upload_signed_events", "public.media.upload.signed", "flink-upload-signed-consumer",
        columns("user_id, file_path, file_name, upload_url, expires_in INT, request_id, signed_time"),
    ),
    SourceTable(
        "upload_rejected_events", "public.media.upload.rejected", "flink-upload-rejected-consumer",
        columns(
            "user_id, file_name, media_type, file_size BIGINT, request_id, reason, rejected_time"
        ),
    ),
    SourceTable(
        "download_signed_events", "public.media.download.signed",
        "flink-download-signed-consumer",
        columns("user_id, file_path, download_url, expires_in INT, request_id, signed_time"),
    ),
    SourceTable(
        "download_rejected_events", "public.media.download.rejected",
        "flink-download-rejected-consumer",
        columns("user_id, file_path, request_id, reason, rejected_time"),
    ),
    SourceTable(
        "media_delete_events", "public.media.delete.events", "flink-delete-consumer",
        columns("user_id, file_path, file_name, media_type, file_size BIGINT, delete_time"),
    ),
    SourceTable(
        "delete_rejected_events", "public.media.delete.rejected", "flink-delete-rejected-consumer",
        columns("user_id, file_path, request_id, reason, rejected_time"),
    ),
    SourceTable(
        "upload_dead_letter_events", "internal.media.upload.dead-letter",
        "flink-dead-letter-consumer",
        columns(
            "user_id, email, file_path, permanent_path, file_name, file_size BIGINT, media_type,"
            " upload_time, retry_count INT, failure_reason, dead_letter_time"
        ),
    ),
)

UNIFIED_SINK = "platform_unified_events"
UNIFIED_TOPIC = "internal.platform.unified.events"
UNIFIED_COLUMNS = columns(
    "event_id, event_time, event_type, user_id, email, device_id, user_agent, ip_address"
)


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def with_clause(options: Iterable[tuple[str, str]]) -> str:
    return "WITH (\n" + ",\n".join(
        f"  {sql_literal(k)} = {sql_literal(v)}" for k, v in options
    ) + "\n)"


_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
#: flink-sql-connector-kafka relocates the Kafka client under this package.
SHADED_PREFIX = "org.apache.flink.kafka.shaded."


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sasl_options(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Kafka client options for SASL, or none when KAFKA_SASL_MECHANISM is unset or empty.
    The JAAS text is built here and never appears in a SQL file."""
    mechanism = setting("KAFKA_SASL_MECHANISM", environ).strip()
    if not mechanism:
        return []
    module = _LOGIN_MODULES.get(mechanism.upper())
    if module is None:
        raise ConfigError(
            f"KAFKA_SASL_MECHANISM {mechanism!r} is not supported ({', '.join(_LOGIN_MODULES)})"
        )
    username = setting("KAFKA_SASL_USERNAME", environ)
    password = setting("KAFKA_SASL_PASSWORD", environ)
    if not username or not password:
        raise ConfigError("KAFKA_SASL_MECHANISM is set: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required")
    protocol = setting("KAFKA_SECURITY_PROTOCOL", environ).strip() or "SASL_PLAINTEXT"
    jaas = (
        f"{SHADED_PREFIX}{module} required username={_jaas_quote(username)}"
        f" password={_jaas_quote(password)};"
    )
    return [
        ("properties.security.protocol", protocol),
        ("properties.sasl.mechanism", mechanism.upper()),
        ("properties.sasl.jaas.config", jaas),
    ]


def tls_options(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The trust store of a TLS connection to the brokers (KAFKA_SSL_CA_FILE, PEM), or none.
    The protocol itself is KAFKA_SECURITY_PROTOCOL's (SASL_SSL with SASL)."""
    ca_file = setting("KAFKA_SSL_CA_FILE", environ).strip()
    if not ca_file:
        return []
    return [
        ("properties.ssl.truststore.type", "PEM"),
        ("properties.ssl.truststore.location", ca_file),
    ]


def registry_options(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The avro-confluent format's registry address and, when SCHEMA_REGISTRY_USERNAME and
    SCHEMA_REGISTRY_PASSWORD are set, its basic-auth credentials (a registry with
    authentication answers 401 to every lookup without them)."""
    options = [("value.avro-confluent.url", setting("SCHEMA_REGISTRY_URL", environ))]
    username = setting("SCHEMA_REGISTRY_USERNAME", environ)
    password = setting("SCHEMA_REGISTRY_PASSWORD", environ)
    if bool(username) != bool(password):
        raise ConfigError("SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD are set together or not at all")
    if username:
        options += [
            ("value.avro-confluent.basic-auth.credentials-source", "USER_INFO"),
            ("value.avro-confluent.basic-auth.user-info", f"{username}:{password}"),
        ]
    return options


def suffixed(name: str, environ: Mapping[str, str] | None = None) -> str:
    """A topic, group or transactional id with KAFKA_TOPIC_SUFFIX appended."""
    return name + setting("KAFKA_TOPIC_SUFFIX", environ).strip()


def kafka_source_options(
    topic: str, group: str, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """Options of a Kafka source table (Flink 2.x Kafka connector, avro-confluent values):
    committed group offsets, earliest only for a group without any; only committed records
    of transactional producers (exactly-once sinks), never aborted ones."""
    return [
        ("connector", "kafka"),
        ("topic", suffixed(topic, environ)),
        ("properties.bootstrap.servers", setting("REDPANDA_BROKERS", environ)),
        ("properties.group.id", suffixed(group, environ)),
        *startup_options(environ),
        ("properties.isolation.level", "read_committed"),
        ("value.format", "avro-confluent"),
        *registry_options(environ),
        *sasl_options(environ),
        *tls_options(environ),
    ]


def startup_options(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The sources' start position from KAFKA_SOURCE_STARTUP (see DEFAULTS). It applies only
    to a job started without state: one resumed from a savepoint or checkpoint continues at
    the offsets in its state."""
    value = setting("KAFKA_SOURCE_STARTUP", environ).strip()
    if value == "group-offsets":
        return [("scan.startup.mode", "group-offsets"), ("properties.auto.offset.reset", "earliest")]
    if value == "latest":
        return [("scan.startup.mode", "group-offsets"), ("properties.auto.offset.reset", "latest")]
    kind, _, millis = value.partition(":")
    if kind == "timestamp" and millis.isdigit():
        return [("scan.startup.mode", "timestamp"), ("scan.startup.timestamp-millis", millis)]
    raise ConfigError(
        "KAFKA_SOURCE_STARTUP must be group-offsets, latest or timestamp:<epoch milliseconds>,"
        f" got {value!r}"
    )


def kafka_sink_options(
    topic: str, transactional_id: str, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """Options of a Kafka sink table. At-least-once (default) sends every record at once and
    flushes on each checkpoint. With exactly-once records are written in a Kafka transaction
    committed when the checkpoint completes; `transactional_id` must be unique per sink table
    across all jobs on the cluster."""
    guarantee = setting("KAFKA_SINK_DELIVERY_GUARANTEE", environ).strip()
    if guarantee not in ("exactly-once", "at-least-once", "none"):
        raise ConfigError(
            f"KAFKA_SINK_DELIVERY_GUARANTEE must be exactly-once, at-least-once or none, got {guarantee!r}"
        )
    topic = suffixed(topic, environ)
    options = [
        ("connector", "kafka"),
        ("topic", topic),
        ("properties.bootstrap.servers", setting("REDPANDA_BROKERS", environ)),
        ("value.format", "avro-confluent"),
        *registry_options(environ),
        ("value.avro-confluent.subject", f"{topic}-value"),
        ("sink.delivery-guarantee", guarantee),
    ]
    if guarantee == "exactly-once":
        prefix = setting("KAFKA_TRANSACTIONAL_ID_PREFIX", environ).strip()
        options += [
            ("sink.transactional-id-prefix", suffixed(f"{prefix}-{transactional_id}", environ)),
            (
                "properties.transaction.timeout.ms",
                str(int_setting("KAFKA_TRANSACTION_TIMEOUT_MS", environ)),
            ),
        ]
    return options + sasl_options(environ) + tls_options(environ)


def table_ddl(
    name: str,
    cols: Sequence[Column],
    options: Iterable[tuple[str, str]],
    extra: Sequence[str] = (),
) -> str:
    body = ",\n".join([f"  `{c.name}` {c.type}" for c in cols] + [f"  {e}" for e in extra])
    return f"CREATE TABLE `{name}` (\n{body}\n) {with_clause(options)}"


def source_ddl(source: SourceTable, environ: Mapping[str, str] | None = None) -> str:
    return table_ddl(
        source.name,
        source.columns,
        kafka_source_options(source.topic, source.group, environ),
        extra=["`proctime` AS PROCTIME()"],
    )


def unified_sink_ddl(environ: Mapping[str, str] | None = None) -> str:
    return table_ddl(
        UNIFIED_SINK, UNIFIED_COLUMNS, kafka_sink_options(UNIFIED_TOPIC, UNIFIED_SINK, environ)
    )


def builtin_ddl(environ: Mapping[str, str] | None = None) -> list[str]:
    """The unified-events sink and the twelve sources, in registration order."""
    return [unified_sink_ddl(environ)] + [source_ddl(s, environ) for s in SOURCES]


# --------------------------------------------------------------------------------------------
# Execution


def flink_configuration(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Execution settings: exactly-once checkpoints every FLINK_CHECKPOINT_INTERVAL_MS,
    retained on cancellation so a redeployment can resume from them, and the connector jars
    found in FLINK_CONNECTOR_JARS_DIR."""
    config = {
        "execution.checkpointing.interval": f"{int_setting('FLINK_CHECKPOINT_INTERVAL_MS', environ)} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    }
    checkpoint_dir = setting("FLINK_CHECKPOINT_DIR", environ).strip()
    if checkpoint_dir:
        config["execution.checkpointing.dir"] = checkpoint_dir
    jars_dir = setting("FLINK_CONNECTOR_JARS_DIR", environ).strip()
    jars = sorted(glob.glob(os.path.join(jars_dir, "*.jar"))) if jars_dir else []
    if jars:
        config["pipeline.jars"] = ";".join("file://" + os.path.abspath(j) for j in jars)
    return config


def create_table_environment(config: Mapping[str, str]):
    """A streaming StreamTableEnvironment with `config` applied."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    configuration = Configuration()
    for key, value in config.items():
        configuration.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(configuration)
    settings = EnvironmentSettings.new_instance().in_streaming_mode().build()
    return StreamTableEnvironment.create(env, environment_settings=settings)


def submit(t_env, plan: Plan):
    """Executes the DDL, then all INSERTs as one statement set; returns the TableResult."""
    for statement in plan.ddl:
        t_env.execute_sql(statement)
    if not plan.inserts:
        raise ConfigError("the SQL files contain no INSERT statement")
    statement_set = t_env.create_statement_set()
    for statement in plan.inserts:
        statement_set.add_insert_sql(statement)
    return statement_set.execute()


def wait_unless_detached(t_env, result) -> None:
    """Waits for the streaming job like a local run or an attached `flink run` does; returns
    once it is submitted when the client is detached (`flink run -d`, execution.attached
    false, as scripts/stack/flink.sh submits), so no client process stays behind per job."""
    if str(t_env.get_config().get("execution.attached", "true")).lower() == "false":
        return
    result.wait()


def main(argv: Sequence[str], extra_config: Mapping[str, str] | None = None) -> int:
    """Submits the statements of the SQL files in `argv` as one job; `extra_config` adds Flink
    settings (scripts/stack/flink_launch.py passes a savepoint to resume from)."""
    if not argv:
        print("usage: sql_runner.py <file.sql> [more.sql ...]", file=sys.stderr)
        return 1
    try:
        plan = plan_files(argv)
        builtin = builtin_ddl()
        config = flink_configuration()
        # the job's name on the cluster (scripts/stack/flink.sh finds it by this name)
        config["pipeline.name"] = os.environ.get("FLINK_JOB_NAME") or "sql-processors"
        config.update(extra_config or {})
    except (ConfigError, OSError) as error:
        print(f"sql_runner: {error}", file=sys.stderr)
        return 1
    t_env = create_table_environment(config)
    for statement in builtin:
        t_env.execute_sql(statement)
    result = submit(t_env, plan)
    print(f"sql_runner: submitted {len(plan.inserts)} INSERT statement(s) from {len(argv)} file(s)")
    wait_unless_detached(t_env, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
