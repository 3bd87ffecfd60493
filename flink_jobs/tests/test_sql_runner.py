"""Pure tests of sql_runner.py: statement splitting, placeholder substitution, statement
classification, Kafka/SASL options, checkpoint settings and the source catalogue."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flink_jobs import sql_runner as r
from flink_jobs.tests.sqlfiles import (
    NOTIFICATIONS_SINK,
    SHARED_SINK_FILES,
    SQL_FILES,
    TEST_ENV,
    parse_create_table,
    sinks_of,
    sinks_of_plan,
)

REPO = Path(r.__file__).resolve().parents[1]

# ---- splitting ----------------------------------------------------------------------------


def test_split_on_semicolons_and_drop_empty_chunks():
    assert r.split_statements("CREATE TABLE a (x INT);\n\n;  INSERT INTO a SELECT 1 ;") == [
        "CREATE TABLE a (x INT)",
        "INSERT INTO a SELECT 1",
    ]


def test_semicolons_inside_literals_identifiers_and_comments_do_not_split():
    text = """
    -- a comment; with a semicolon
    CREATE TABLE `we;ird` (x STRING) WITH ('password' = 'p;w''d;');  /* block; comment */
    INSERT INTO `we;ird` SELECT 'a;b' /* ; */ FROM t -- trailing; comment
    ;
    """
    statements = r.split_statements(text)
    assert len(statements) == 2
    assert statements[0].endswith("WITH ('password' = 'p;w''d;')")
    assert statements[0].startswith("-- a comment; with a semicolon")
    assert statements[1].startswith("/* block; comment */")
    assert "SELECT 'a;b' /* ; */ FROM t -- trailing; comment" in statements[1]


def test_comment_only_chunks_are_dropped():
    assert r.split_statements("-- nothing here;\n/* nor; here */ ;") == []


def test_no_trailing_semicolon_needed():
    assert r.split_statements("INSERT INTO a SELECT 1") == ["INSERT INTO a SELECT 1"]


@pytest.mark.parametrize("text", ["SELECT 'open", "SELECT `open", "SELECT 1 /* open"])
def test_unterminated_quotes_and_comments_are_errors(text):
    with pytest.raises(r.ConfigError, match="unterminated"):
        r.split_statements(text)


def test_strip_comments():
    assert r.strip_comments("-- c\n/* d */ INSERT INTO x -- e\n SELECT '--not a comment'") == (
        "INSERT INTO x  \n SELECT '--not a comment'"
    )


# ---- substitution -------------------------------------------------------------------------


def resolver(values):
    return lambda name: values.get(name)


def test_substitution_from_environment_and_defaults(monkeypatch):
    monkeypatch.setenv("SUPABASE_DB_USER", "flink")
    monkeypatch.delenv("SUPABASE_DB_PASSWORD", raising=False)
    out = r.substitute("'${SUPABASE_DB_USER}' '${SUPABASE_DB_PASSWORD}'", r.lookup)
    assert out == "'flink' 'postgres'"


def test_values_are_escaped_inside_literals_and_raw_outside():
    out = r.substitute("SELECT '${A}', ${B}", resolver({"A": "it's; fine", "B": "col_b"}))
    assert out == "SELECT 'it''s; fine', col_b"
    # the escaped statement still splits as one statement
    assert r.split_statements(out + ";") == [out]


def test_unresolved_placeholders_fail_loudly_with_every_name():
    with pytest.raises(r.ConfigError, match=r"\$\{MISSING_ONE, MISSING_TWO\}"):
        r.substitute("'${MISSING_TWO}' ${MISSING_ONE} '${A}'", resolver({"A": "x"}))


def test_placeholders_in_comments_are_left_alone():
    text = "-- uses ${NOT_SET}\nSELECT 1 /* ${ALSO_NOT_SET} */"
    assert r.substitute(text, resolver({})) == text


def test_empty_environment_value_counts_as_set(monkeypatch):
    monkeypatch.setenv("SUPABASE_DB_PASSWORD", "")
    assert r.substitute("'${SUPABASE_DB_PASSWORD}'", r.lookup) == "''"


# ---- classification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement, kind",
    [
        ("INSERT INTO a SELECT 1", "insert"),
        ("-- first a comment\n  insert   into a SELECT 1", "insert"),
        ("/* c */ INSERT OVERWRITE a SELECT 1", "insert"),
        ("CREATE TABLE a (x INT) WITH ('connector' = 'blackhole')", "ddl"),
        ("CREATE TEMPORARY VIEW v AS SELECT 1", "ddl"),
        ("SET 'pipeline.name' = 'x'", "ddl"),
    ],
)
def test_classify(statement, kind):
    assert r.classify(statement) == kind


@pytest.mark.parametrize(
    "statement", ["SELECT 1", "EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 1", "WITH x AS (SELECT 1) SELECT * FROM x"]
)
def test_queries_and_statement_set_blocks_are_rejected(statement):
    with pytest.raises(r.ConfigError):
        r.classify(statement)


def test_plan_of_the_six_files():
    plan = r.plan_files([str(p) for p in SQL_FILES], {})
    # sinks: the shared user_notifications sink, then credit_ledger and media_files
    assert len(plan.ddl) == 3 and all(s.lstrip().startswith(("CREATE TABLE", "--")) for s in plan.ddl)
    # inserts: 1 + 1 + 1 + 1 (unified) + 5 (credit) + 9 (media)
    assert len(plan.inserts) == 18
    assert not any("${" in s for s in plan.ddl + plan.inserts)


# ---- shared sinks (sinks/) ------------------------------------------------------------------


def test_shared_sink_files_exist_next_to_the_runner():
    assert SHARED_SINK_FILES and all(p.is_file() for p in SHARED_SINK_FILES)
    assert all(p.parent == REPO / "flink_jobs" / "sinks" for p in SHARED_SINK_FILES)


def test_shared_sinks_come_first_and_are_substituted():
    plan = r.plan_files([str(SQL_FILES[0])], TEST_ENV)
    first = parse_create_table(plan.ddl[0])
    assert first.name == NOTIFICATIONS_SINK
    assert first.options["url"] == TEST_ENV["SUPABASE_DB_JDBC_URL"]
    assert first.options["username"] == TEST_ENV["SUPABASE_DB_USER"]
    assert first.options["password"] == TEST_ENV["SUPABASE_DB_PASSWORD"]
    # the login file declares no table of its own
    assert len(plan.ddl) == 1 and len(plan.inserts) == 1


def test_a_file_given_twice_is_read_once():
    once = r.plan_files([str(p) for p in SQL_FILES], {})
    twice = r.plan_files([str(SHARED_SINK_FILES[0]), *(str(p) for p in SQL_FILES), str(SQL_FILES[0])], {})
    assert twice == once


def test_plan_without_shared_sinks(tmp_path):
    own = tmp_path / "own.sql"
    own.write_text("CREATE TABLE t (x INT) WITH ('connector' = 'blackhole');\nINSERT INTO t SELECT 1;")
    plan = r.plan_files([str(own)], {}, shared=())
    assert [parse_create_table(s).name for s in plan.ddl] == ["t"]


def test_user_notifications_sink_is_declared_once():
    """Every notification of the SQL processors goes through the one shared sink: no processor
    file declares a table of its own on public.user_notifications."""
    shared = sinks_of_plan(r.plan_files([], TEST_ENV))
    assert [(s.name, s.options["table-name"]) for s in shared] == [
        (NOTIFICATIONS_SINK, "public.user_notifications")
    ]
    (sink,) = shared
    assert sink.columns == [
        ("user_id", "STRING"), ("event_type", "STRING"), ("payload", "STRING"),
        ("event_time", "STRING"), ("idempotency_key", "STRING"),
    ]
    assert sink.primary_key == ["idempotency_key"]
    assert sink.options["connector"] == "jdbc"
    assert sink.options["sink.buffer-flush.max-rows"] == "1"
    assert sink.options["sink.buffer-flush.interval"] == "1s"
    for path in SQL_FILES:
        assert all(s.options.get("table-name") != "public.user_notifications" for s in sinks_of(path)), path
    writers = {
        p.name for p in SQL_FILES
        if any(re.match(rf"INSERT\s+INTO\s+{NOTIFICATIONS_SINK}\b", r.strip_comments(s))
               for s in r.plan_files([str(p)], {}, shared=()).inserts)
    }
    assert writers == {
        "login_events_processor.sql", "signup_events_processor.sql", "signout_events_processor.sql",
        "credit_balance_processor.sql", "media_notification_processor.sql",
    }


def test_plan_reports_the_file_of_a_bad_placeholder(tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE TABLE t (x INT) WITH ('url' = '${NO_SUCH_VARIABLE_HERE}');")
    with pytest.raises(r.ConfigError, match=r"bad\.sql: unresolved placeholder\(s\) \$\{NO_SUCH_VARIABLE_HERE\}"):
        r.plan_files([str(bad)], {})


def test_main_without_files_prints_usage(capsys):
    assert r.main([]) == 1
    assert "usage: sql_runner.py" in capsys.readouterr().err


def test_main_with_a_bad_file_exits_1_before_starting_flink(tmp_path, capsys):
    bad = tmp_path / "bad.sql"
    bad.write_text("INSERT INTO x SELECT '${NO_SUCH_VARIABLE_HERE}';")
    assert r.main([str(bad)]) == 1
    assert "NO_SUCH_VARIABLE_HERE" in capsys.readouterr().err


# ---- Kafka options ------------------------------------------------------------------------


def options(pairs):
    out = dict(pairs)
    assert len(out) == len(pairs), "duplicate option"
    return out


def test_source_options_resume_from_committed_offsets():
    opts = options(r.kafka_source_options("topic.a", "group-a", {}))
    assert opts == {
        "connector": "kafka",
        "topic": "topic.a",
        "properties.bootstrap.servers": "host.docker.internal:9092",
        "properties.group.id": "group-a",
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "properties.isolation.level": "read_committed",
        "value.format": "avro-confluent",
        "value.avro-confluent.url": "http://host.docker.internal:8081",
    }


def test_sources_start_at_latest_for_a_group_without_offsets_when_told():
    opts = options(r.kafka_source_options("t", "g", {"KAFKA_SOURCE_STARTUP": "latest"}))
    assert opts["scan.startup.mode"] == "group-offsets"
    assert opts["properties.auto.offset.reset"] == "latest"


def test_sources_start_at_a_cut_over_timestamp():
    opts = options(
        r.kafka_source_options("t", "g", {"KAFKA_SOURCE_STARTUP": "timestamp:1796000000000"})
    )
    assert opts["scan.startup.mode"] == "timestamp"
    assert opts["scan.startup.timestamp-millis"] == "1796000000000"
    assert "properties.auto.offset.reset" not in opts


@pytest.mark.parametrize("value", ["earliest", "timestamp:", "timestamp:-5", "timestamp:soon", ""])
def test_an_unknown_start_position_is_a_config_error(value):
    with pytest.raises(r.ConfigError, match="KAFKA_SOURCE_STARTUP"):
        r.kafka_source_options("t", "g", {"KAFKA_SOURCE_STARTUP": value})


def test_sink_options_at_least_once_by_default():
    # at-least-once: records are visible downstream at once, not one checkpoint later
    opts = options(r.kafka_sink_options("topic.b", "sink_b", {"REDPANDA_BROKERS": "k:1"}))
    assert opts == {
        "connector": "kafka",
        "topic": "topic.b",
        "properties.bootstrap.servers": "k:1",
        "value.format": "avro-confluent",
        "value.avro-confluent.url": "http://host.docker.internal:8081",
        "value.avro-confluent.subject": "topic.b-value",
        "sink.delivery-guarantee": "at-least-once",
    }


def test_sink_options_exactly_once_and_invalid_guarantee():
    opts = options(r.kafka_sink_options("t", "s", {"KAFKA_SINK_DELIVERY_GUARANTEE": "exactly-once"}))
    assert opts["sink.delivery-guarantee"] == "exactly-once"
    assert opts["sink.transactional-id-prefix"] == "event-substrate-s"
    assert opts["properties.transaction.timeout.ms"] == "900000"
    with pytest.raises(r.ConfigError):
        r.kafka_sink_options("t", "s", {"KAFKA_SINK_DELIVERY_GUARANTEE": "twice"})


def test_topic_suffix_isolates_topics_groups_subjects_and_transactions():
    env = {"KAFKA_TOPIC_SUFFIX": ".t1", "KAFKA_SINK_DELIVERY_GUARANTEE": "exactly-once"}
    source = options(r.kafka_source_options("topic.a", "group-a", env))
    assert (source["topic"], source["properties.group.id"]) == ("topic.a.t1", "group-a.t1")
    sink = options(r.kafka_sink_options("topic.b", "sink_b", env))
    assert sink["topic"] == "topic.b.t1"
    assert sink["value.avro-confluent.subject"] == "topic.b.t1-value"
    assert sink["sink.transactional-id-prefix"] == "event-substrate-sink_b.t1"


def test_no_sasl_unless_configured():
    assert r.sasl_options({}) == []
    assert r.sasl_options({"KAFKA_SASL_MECHANISM": ""}) == []
    assert not any(k.startswith("properties.s") for k, _ in r.kafka_source_options("t", "g", {}))


def test_scram_sasl_uses_the_shaded_login_module():
    env = {
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "flink-processor",
        "KAFKA_SASL_PASSWORD": "flink-processor-local-pw",
    }
    assert options(r.sasl_options(env)) == {
        "properties.security.protocol": "SASL_PLAINTEXT",
        "properties.sasl.mechanism": "SCRAM-SHA-256",
        "properties.sasl.jaas.config": (
            "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule"
            ' required username="flink-processor" password="flink-processor-local-pw";'
        ),
    }
    opts = options(r.kafka_source_options("t", "g", {**env, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}))
    assert opts["properties.security.protocol"] == "SASL_SSL"


def test_plain_sasl_and_jaas_quoting():
    env = {"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": 'u"1', "KAFKA_SASL_PASSWORD": "p\\w;"}
    jaas = options(r.sasl_options(env))["properties.sasl.jaas.config"]
    assert jaas == (
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.plain.PlainLoginModule"
        ' required username="u\\"1" password="p\\\\w;";'
    )


def test_sasl_errors():
    with pytest.raises(r.ConfigError, match="required"):
        r.sasl_options({"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"})
    with pytest.raises(r.ConfigError, match="not supported"):
        r.sasl_options({"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"})


def test_registry_credentials_reach_every_source_and_sink():
    # a registry with basic auth answers 401 to the format's lookups and registrations without them
    env = {"SCHEMA_REGISTRY_USERNAME": "flink-processor", "SCHEMA_REGISTRY_PASSWORD": "s3cret:x"}
    for opts in (options(r.kafka_source_options("t", "g", env)), options(r.kafka_sink_options("t", "s", env))):
        assert opts["value.avro-confluent.basic-auth.credentials-source"] == "USER_INFO"
        assert opts["value.avro-confluent.basic-auth.user-info"] == "flink-processor:s3cret:x"
    assert all("basic-auth" not in k for k in options(r.kafka_source_options("t", "g", {})))
    with pytest.raises(r.ConfigError, match="together"):
        r.registry_options({"SCHEMA_REGISTRY_USERNAME": "flink-processor"})


def test_tls_trust_store_from_a_pem_ca_file():
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CA_FILE": "/etc/ca.pem", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
           "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}
    for opts in (options(r.kafka_source_options("t", "g", env)), options(r.kafka_sink_options("t", "s", env))):
        assert opts["properties.security.protocol"] == "SASL_SSL"
        assert opts["properties.ssl.truststore.type"] == "PEM"
        assert opts["properties.ssl.truststore.location"] == "/etc/ca.pem"
    assert r.tls_options({}) == []


def test_ddl_carries_sasl_but_the_sql_files_never_do():
    env = {"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}
    ddl = r.builtin_ddl(env)
    assert len(ddl) == 13 and all("ScramLoginModule" in s for s in ddl)
    for path in SQL_FILES:
        text = path.read_text()
        assert "LoginModule" not in text and "sasl" not in text.lower()


# ---- checkpointing and jars ---------------------------------------------------------------


def test_checkpointing_is_exactly_once_with_configurable_interval(tmp_path):
    assert r.flink_configuration({"FLINK_CONNECTOR_JARS_DIR": str(tmp_path)}) == {
        "execution.checkpointing.interval": "10000 ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    }
    config = r.flink_configuration(
        {"FLINK_CHECKPOINT_INTERVAL_MS": "2500", "FLINK_CHECKPOINT_DIR": "s3://ckpt/x",
         "FLINK_CONNECTOR_JARS_DIR": str(tmp_path)}
    )
    assert config["execution.checkpointing.interval"] == "2500 ms"
    assert config["execution.checkpointing.dir"] == "s3://ckpt/x"
    for bad in ("0", "soon"):
        with pytest.raises(r.ConfigError):
            r.flink_configuration({"FLINK_CHECKPOINT_INTERVAL_MS": bad})


def test_connector_jars_are_added_from_the_jar_directory(tmp_path):
    for name in ("b.jar", "a.jar", "notes.txt"):
        (tmp_path / name).write_text("")
    config = r.flink_configuration({"FLINK_CONNECTOR_JARS_DIR": str(tmp_path)})
    assert config["pipeline.jars"] == f"file://{tmp_path}/a.jar;file://{tmp_path}/b.jar"


# ---- source catalogue vs the Avro contracts -------------------------------------------------

AVRO_TYPES = {"string": "STRING", "long": "BIGINT", "int": "INT"}


def avro_columns(topic: str) -> list[tuple[str, str]]:
    path = REPO / "avro" / (topic.replace(".", "/", topic.count(".") - 1) + ".avsc")
    schema = json.loads(path.read_text())
    out = []
    for field in schema["fields"]:
        kind = field["type"]
        if isinstance(kind, list):  # ["null", "string"]
            kind = next(k for k in kind if k != "null")
        out.append((field["name"], AVRO_TYPES[kind]))
    return out


def test_twelve_sources_as_in_the_spec():
    assert [(s.name, s.topic, s.group) for s in r.SOURCES] == [
        ("login_events", "public.identity.login.events", "flink-login-consumer"),
        ("signup_events", "public.identity.signup.events", "flink-signup-consumer"),
        ("signout_events", "public.identity.signout.events", "flink-signout-consumer"),
        ("media_upload_events", "public.media.upload.confirmed", "flink-media-confirmed-consumer"),
        ("media_expired_events", "public.media.expired.events", "flink-expired-consumer"),
        ("upload_signed_events", "public.media.upload.signed", "flink-upload-signed-consumer"),
        ("upload_rejected_events", "public.media.upload.rejected", "flink-upload-rejected-consumer"),
        ("download_signed_events", "public.media.download.signed", "flink-download-signed-consumer"),
        ("download_rejected_events", "public.media.download.rejected", "flink-download-rejected-consumer"),
        ("media_delete_events", "public.media.delete.events", "flink-delete-consumer"),
        ("delete_rejected_events", "public.media.delete.rejected", "flink-delete-rejected-consumer"),
        ("upload_dead_letter_events", "internal.media.upload.dead-letter", "flink-dead-letter-consumer"),
    ]


@pytest.mark.parametrize("source", r.SOURCES, ids=lambda s: s.name)
def test_source_columns_match_the_avro_contract(source):
    assert [(c.name, c.type) for c in source.columns] == avro_columns(source.topic)


def test_unified_sink_matches_the_avro_contract():
    assert [(c.name, c.type) for c in r.UNIFIED_COLUMNS] == avro_columns(r.UNIFIED_TOPIC)


def test_source_ddl_has_the_proctime_column():
    ddl = r.source_ddl(r.SOURCES[0], {})
    assert "`proctime` AS PROCTIME()" in ddl
    assert "'properties.group.id' = 'flink-login-consumer'" in ddl
