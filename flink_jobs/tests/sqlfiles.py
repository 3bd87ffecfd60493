"""Reading the processor SQL files in tests: the six files, and the sink tables they define
(name, columns, primary key, WITH options), parsed from the DDL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flink_jobs import sql_runner

FLINK_JOBS = Path(sql_runner.__file__).resolve().parent

#: In the order the deployment runs them (spec 3.1).
SQL_FILES = [
    FLINK_JOBS / name
    for name in (
        "login_events_processor.sql",
        "signup_events_processor.sql",
        "signout_events_processor.sql",
        "unified_events_processor.sql",
        "credit_balance_processor.sql",
        "media_notification_processor.sql",
    )
]

TEST_ENV = {
    "SUPABASE_DB_JDBC_URL": "jdbc:postgresql://db.test:5432/postgres",
    "SUPABASE_DB_USER": "writer",
    "SUPABASE_DB_PASSWORD": "pw'with;odd\"chars",
}


@dataclass(frozen=True)
class SinkTable:
    name: str
    columns: list[tuple[str, str]]
    primary_key: list[str]
    options: dict[str, str]
    ddl: str


_CREATE = re.compile(r"^CREATE\s+TABLE\s+`?(\w+)`?\s*\((.*)\)\s*WITH\s*\((.*)\)\s*$", re.S | re.I)
_OPTION = re.compile(r"'((?:[^']|'')*)'\s*=\s*'((?:[^']|'')*)'")


def parse_create_table(statement: str) -> SinkTable:
    body = sql_runner.strip_comments(statement)
    match = _CREATE.match(body)
    assert match, f"not a CREATE TABLE ... WITH (...) statement: {body[:60]}"
    name, columns_text, options_text = match.groups()
    columns, primary_key = [], []
    for item in re.split(r",(?![^()]*\))", columns_text):
        item = item.strip()
        pk = re.match(r"PRIMARY\s+KEY\s*\(([^)]*)\)\s*NOT\s+ENFORCED", item, re.I)
        if pk:
            primary_key = [c.strip(" `") for c in pk.group(1).split(",")]
        elif item:
            col_name, col_type = item.split(None, 1)
            columns.append((col_name.strip("`"), col_type.strip()))
    options = {k.replace("''", "'"): v.replace("''", "'") for k, v in _OPTION.findall(options_text)}
    return SinkTable(name, columns, primary_key, options, statement)


def sinks_of(path: Path, environ=None) -> list[SinkTable]:
    plan = sql_runner.plan_files([str(path)], TEST_ENV if environ is None else environ)
    return [parse_create_table(s) for s in plan.ddl if re.match(r"\s*CREATE\s+TABLE", sql_runner.strip_comments(s), re.I)]


def all_jdbc_sinks() -> list[SinkTable]:
    return [s for path in SQL_FILES for s in sinks_of(path) if s.options.get("connector") == "jdbc"]


def postgres_upsert(sink: SinkTable) -> str:
    """The statement the Flink JDBC connector's Postgres dialect generates for an upsert
    sink: INSERT INTO <table>(<cols>) VALUES (...) ON CONFLICT (<pk>) DO UPDATE SET
    <col>=EXCLUDED.<col> for every column (identifiers unquoted). Parameters as %s."""
    cols = [c for c, _ in sink.columns]
    return (
        f"INSERT INTO {sink.options['table-name']}({', '.join(cols)})"
        f" VALUES ({', '.join(['%s'] * len(cols))})"
        f" ON CONFLICT ({', '.join(sink.primary_key)})"
        f" DO UPDATE SET {', '.join(f'{c}=EXCLUDED.{c}' for c in cols)}"
    )
