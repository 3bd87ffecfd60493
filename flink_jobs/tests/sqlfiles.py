"""Reading the processor SQL files in tests: the six files, the shared sink files the runner
registers before them (sinks/), and the sink tables they define (name, columns, primary key,
WITH options), parsed from the DDL."""

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

#: The shared sink files (sql_runner.SHARED_SINK_FILES), registered before the six.
SHARED_SINK_FILES = [Path(p) for p in sql_runner.SHARED_SINK_FILES]

#: The one sink of public.user_notifications (sinks/user_notifications.sql).
NOTIFICATIONS_SINK = "user_notifications_sink"

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


def sinks_of_plan(plan: sql_runner.Plan) -> list[SinkTable]:
    return [parse_create_table(s) for s in plan.ddl if re.match(r"\s*CREATE\s+TABLE", sql_runner.strip_comments(s), re.I)]


def sinks_of(path: Path, environ=None, shared=()) -> list[SinkTable]:
    """The sink tables `path` itself declares (with `shared`, e.g. SHARED_SINK_FILES, also
    those of the shared files, which the runner registers with every file)."""
    plan = sql_runner.plan_files([str(path)], TEST_ENV if environ is None else environ, shared=shared)
    return sinks_of_plan(plan)


def all_jdbc_sinks() -> list[SinkTable]:
    """Every JDBC sink of the deployed job: the shared sinks and those of the six files."""
    plan = sql_runner.plan_files([str(p) for p in SQL_FILES], TEST_ENV)
    return [s for s in sinks_of_plan(plan) if s.options.get("connector") == "jdbc"]


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
