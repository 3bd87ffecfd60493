"""clickhouse/init.sql executed in chdb (in-process ClickHouse): the MergeTree target, the
materialized views and the errors table, with the Kafka engine table replaced by a Null-engine
table of the same columns (plus the virtual columns the views read)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import opslib
import pytest

INIT_SQL = opslib.REPO / "clickhouse" / "init.sql"
KAFKA_TABLE = "default.kafka_unified_events"
# Virtual columns of a Kafka engine table that the views use (_error/_raw_message exist with
# kafka_handle_error_mode = 'stream').
VIRTUAL_COLUMNS = "_topic String, _partition UInt64, _offset UInt64, _error String, _raw_message String"


def statements(sql: str) -> list[str]:
    """Split on `;` outside quotes, dropping `--` comments."""
    out, current, quote, i = [], [], None, 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            current.append(ch)
            if ch == "\\" and i + 1 < len(sql):
                current.append(sql[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif sql.startswith("--", i):
            while i < len(sql) and sql[i] != "\n":
                i += 1
            continue
        elif ch == ";":
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    out.append("".join(current).strip())
    return [s for s in out if s]


def kafka_settings(statement: str) -> dict[str, str]:
    settings = statement.split("SETTINGS", 1)[1]
    return {k: v for k, v in re.findall(r"(\w+)\s*=\s*'?([^',\n]+)'?", settings)}


def with_null_engine(statement: str) -> str:
    """The Kafka table statement with ENGINE = Null and the virtual columns as real ones."""
    head = statement.split("ENGINE", 1)[0].rstrip()
    assert head.endswith(")")
    return head[:-1].rstrip() + ",\n    " + VIRTUAL_COLUMNS + "\n)\nENGINE = Null"


def ddl() -> list[str]:
    result = []
    for statement in statements(INIT_SQL.read_text()):
        if re.search(r"ENGINE\s*=\s*Kafka", statement):
            statement = with_null_engine(statement)
        result.append(statement)
    return result


@pytest.fixture
def clickhouse(tmp_path) -> Iterator[Any]:
    from chdb import session

    db = session.Session(str(tmp_path / "chdb"))
    for statement in ddl():
        db.query(statement)
    yield db
    db.close()


def rows(db: Any, sql: str) -> list[dict[str, Any]]:
    text = str(db.query(sql, "JSONEachRow")).strip()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


COLUMNS = ("event_id, event_time, event_type, user_id, email, device_id, user_agent, ip_address, "
           "_topic, _partition, _offset, _error, _raw_message")


def insert(db: Any, values: str) -> None:
    db.query(f"INSERT INTO {KAFKA_TABLE} ({COLUMNS}) VALUES {values}")


def test_kafka_table_consumes_the_unified_topic() -> None:
    (statement,) = [s for s in statements(INIT_SQL.read_text()) if re.search(r"ENGINE\s*=\s*Kafka", s)]
    settings = kafka_settings(statement)
    assert settings["kafka_topic_list"] == "internal.platform.unified.events"
    assert settings["kafka_group_name"] == "clickhouse-consumer"
    assert settings["kafka_format"] == "AvroConfluent"
    assert settings["format_avro_schema_registry_url"] == "http://schema-registry:8081"
    assert settings["kafka_broker_list"] == "redpanda:29092"
    assert settings["kafka_handle_error_mode"] == "stream"
    assert "sasl" not in statement.lower(), "SASL settings belong in clickhouse/kafka_sasl.xml"


def test_sasl_config_reads_the_password_from_the_environment() -> None:
    import xml.etree.ElementTree as ET

    kafka = ET.parse(opslib.REPO / "clickhouse" / "kafka_sasl.xml").getroot().find("kafka")
    assert kafka.findtext("security_protocol") == "SASL_PLAINTEXT"
    assert kafka.findtext("sasl_mechanism") == "SCRAM-SHA-256"
    assert kafka.findtext("sasl_username") == "clickhouse-consumer"
    password = kafka.find("sasl_password")
    assert password.get("from_env") == "CLICKHOUSE_KAFKA_PASSWORD" and not (password.text or "").strip()


def test_init_sql_is_idempotent(clickhouse: Any) -> None:
    for statement in ddl():
        clickhouse.query(statement)
    tables = {r["name"] for r in rows(clickhouse, "SELECT name FROM system.tables WHERE database = 'default'")}
    assert {"unified_events", "kafka_unified_events", "unified_events_mv", "unified_events_errors",
            "unified_events_errors_mv"} <= tables
    engine = rows(clickhouse, "SELECT engine, sorting_key FROM system.tables WHERE name = 'unified_events'")[0]
    assert engine == {"engine": "ReplacingMergeTree", "sorting_key": "user_id, event_type, event_time, event_id"}


def test_rows_flow_through_the_view_and_replays_are_deduplicated(clickhouse: Any) -> None:
    first = (
        "('e1', '2024-05-01T10:00:00.123Z', 'user.login', 'u1', 'a@example.com', 'd1', 'ua', '10.0.0.1', 't', 0, 1, '', ''),"
        "('e2', '2024-05-01T10:05:00Z', 'user.signout', 'u2', NULL, NULL, NULL, NULL, 't', 0, 2, '', ''),"
        "('e3', '2024-05-01T12:00:00.5+02:00', 'user.signup', 'u3', 'c@example.com', NULL, NULL, NULL, 't', 0, 3, '', '')"
    )
    insert(clickhouse, first)
    # a Flink restart replays e1 and e2 (separate insert blocks, separate parts)
    insert(clickhouse, first.rsplit(",(", 1)[0])
    assert rows(clickhouse, "SELECT toInt32(count()) AS n FROM default.unified_events")[0]["n"] == 5

    result = rows(clickhouse, "SELECT event_id, toString(event_time) AS t, event_type, user_id, email "
                              "FROM default.unified_events FINAL ORDER BY event_id")
    assert result == [
        {"event_id": "e1", "t": "2024-05-01 10:00:00.123", "event_type": "user.login", "user_id": "u1",
         "email": "a@example.com"},
        {"event_id": "e2", "t": "2024-05-01 10:05:00.000", "event_type": "user.signout", "user_id": "u2",
         "email": None},
        {"event_id": "e3", "t": "2024-05-01 10:00:00.500", "event_type": "user.signup", "user_id": "u3",
         "email": "c@example.com"},
    ]
    clickhouse.query("OPTIMIZE TABLE default.unified_events FINAL")
    assert rows(clickhouse, "SELECT toInt32(count()) AS n FROM default.unified_events")[0]["n"] == 3


def test_broken_messages_go_to_the_errors_table(clickhouse: Any) -> None:
    insert(clickhouse,
           "('e4', 'not a time', 'user.login', 'u4', 'd@example.com', NULL, NULL, NULL, 't', 0, 7, '', ''),"
           "('', '', '', '', NULL, NULL, NULL, NULL, 't', 0, 8, 'Cannot read schema id', 'raw-bytes')")
    assert rows(clickhouse, "SELECT toInt32(count()) AS n FROM default.unified_events")[0]["n"] == 0
    errors = rows(clickhouse, "SELECT toInt32(offset) AS offset, error, raw_message FROM default.unified_events_errors ORDER BY offset")
    assert errors == [
        {"offset": 7, "error": "unparsable event_time: not a time", "raw_message": "event_id=e4"},
        {"offset": 8, "error": "Cannot read schema id", "raw_message": "raw-bytes"},
    ]
