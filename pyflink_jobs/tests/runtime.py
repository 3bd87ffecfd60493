"""Helpers for the tests that run jobs on the real Flink runtime (PyPI apache-flink, a local
mini-cluster in the JVM that PyFlink starts once per Python process, so all test modules of a
pytest run share it).

Kafka and JDBC connector jars are not available here, so the tests register tables with the
names and column lists of the production ones: sources as views over SQL VALUES (optionally
kept alive by a datagen "clock" so processing-time timers can fire), sinks as filesystem
tables in JSON format whose files the test reads back after the job finished.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from flink_jobs.sql_runner import Column, sql_literal
from pyflink_jobs import common

#: Environment for the jobs under test: no connector jars, checkpoints every second (so the
#: exactly-once configuration and the Python operators' state snapshots are exercised).
TEST_ENVIRON = {
    "FLINK_CONNECTOR_JARS_DIR": "",
    "FLINK_CHECKPOINT_INTERVAL_MS": "1000",
}

#: Python workers: this interpreter, and every record and timer output flushed at once.
TEST_CONFIG = {
    "parallelism.default": "1",
    "python.executable": sys.executable,
    "python.client.executable": sys.executable,
    "python.fn-execution.bundle.size": "1",
    "python.fn-execution.bundle.time": "5",
}


def table_environment(job_name: str = "processor-test"):
    """(env, t_env) configured like the production jobs (common.create_environments)."""
    return common.create_environments(job_name, environ=TEST_ENVIRON, extra_config=TEST_CONFIG)


def literal(value: Any, sql_type: str) -> str:
    if value is None:
        return f"CAST(NULL AS {sql_type})"
    if sql_type == "STRING":
        return f"CAST({sql_literal(str(value))} AS STRING)"
    if sql_type in ("INT", "BIGINT"):
        return f"CAST({int(value)} AS {sql_type})"
    if sql_type == "BOOLEAN":
        return f"CAST({'TRUE' if value else 'FALSE'} AS BOOLEAN)"
    raise ValueError(sql_type)


_clock_count = 0


def values_view(
    t_env,
    name: str,
    cols: Sequence[Column],
    rows: Sequence[Mapping[str, Any]],
    *,
    proctime: bool = False,
    alive_seconds: float = 0,
) -> None:
    """A temporary view `name` with the columns `cols` holding `rows` (dicts by column name;
    missing keys are NULL). proctime adds the computed PROCTIME() column of the SQL sources.
    alive_seconds > 0 keeps the view's source running that long (a datagen clock whose rows
    are filtered out), so downstream processing-time timers get the chance to fire."""
    global _clock_count
    names = ", ".join(f"`{c.name}`" for c in cols)
    branches = []
    if rows:
        tuples = ",\n  ".join(
            "(" + ", ".join(literal(row.get(c.name), c.type) for c in cols) + ")" for row in rows
        )
        branches.append(f"SELECT * FROM (VALUES\n  {tuples}\n) AS v({names})")
    else:
        nulls = ", ".join(literal(None, c.type) for c in cols)
        branches.append(f"SELECT * FROM (VALUES ({nulls})) AS v({names}) WHERE 1 = 0")
    if alive_seconds > 0:
        _clock_count += 1
        clock = f"test_clock_{_clock_count}"
        ticks = max(1, int(alive_seconds * 10))
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE {clock} (tick BIGINT) WITH ("
            "'connector' = 'datagen', 'rows-per-second' = '10',"
            f" 'fields.tick.kind' = 'sequence', 'fields.tick.start' = '1',"
            f" 'fields.tick.end' = '{ticks}')"
        )
        nulls = ", ".join(literal(None, c.type) for c in cols)
        branches.append(f"SELECT {nulls} FROM {clock} WHERE tick < 0")
    select = "\nUNION ALL\n".join(branches)
    if proctime:
        select = f"SELECT *, PROCTIME() AS proctime FROM (\n{select}\n)"
    t_env.execute_sql(f"CREATE TEMPORARY VIEW `{name}` AS\n{select}")


def filesystem_options(path: Path) -> str:
    return (
        f"WITH ('connector' = 'filesystem', 'path' = '{path.as_uri()}', 'format' = 'json',"
        " 'sink.rolling-policy.rollover-interval' = '500 ms',"
        " 'sink.rolling-policy.inactivity-interval' = '500 ms',"
        " 'sink.rolling-policy.check-interval' = '200 ms')"
    )


def filesystem_sink(t_env, name: str, cols: Sequence[Column], path: Path) -> None:
    body = ", ".join(f"`{c.name}` {c.type}" for c in cols)
    t_env.execute_sql(f"CREATE TEMPORARY TABLE `{name}` ({body}) {filesystem_options(path)}")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every JSON row the filesystem sink at `path` committed (in-progress files, which
    start with a dot, are ignored)."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for file in sorted(path.rglob("*")):
        if file.is_file() and not file.name.startswith("."):
            rows += [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    return rows


def run(statement_set, timeout_seconds: float = 120) -> None:
    """Executes the statement set and waits for the (bounded) job to finish."""
    result = statement_set.execute()
    result.wait(int(timeout_seconds * 1000))


def run_until(
    statement_set,
    sink_paths: Mapping[str, Path],
    done: Callable[[dict[str, list[dict[str, Any]]]], bool],
    settle_seconds: float,
    timeout_seconds: float = 150,
) -> dict[str, list[dict[str, Any]]]:
    """For jobs kept running by a clock (values_view alive_seconds): executes the statement
    set, waits until done(rows by sink) holds for the committed sink rows (the filesystem sink
    commits on every checkpoint), waits settle_seconds more so that rows which must not appear
    would have appeared, then cancels the job and returns the committed rows. Independent of
    how long the Python workers take to start on a busy machine."""
    result = statement_set.execute()
    client = result.get_job_client()
    deadline = time.monotonic() + timeout_seconds

    def rows() -> dict[str, list[dict[str, Any]]]:
        return {name: read_rows(path) for name, path in sink_paths.items()}

    def running() -> bool:
        try:
            return str(client.get_job_status().result()) not in ("FAILED", "CANCELED", "FINISHED")
        except Exception:  # the local cluster shuts down with its only job
            return False

    try:
        while not done(rows()):
            if not running():
                result.wait()  # raises the job's failure, if any
                raise AssertionError(f"the job ended before the expected rows: {rows()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timeout after {timeout_seconds}s waiting for rows: {rows()}")
            time.sleep(0.25)
        time.sleep(settle_seconds)
        return rows()
    finally:
        if running():
            client.cancel().result()


def received(key, retry_count=0):
    """An internal.media.upload.received record (the move saga's input) for upload `key`."""
    return {"user_id": "u1", "email": "u1@example.com", "file_path": f"uploads/u1/{key}/f.png",
            "file_name": "f.png", "file_size": 10, "media_type": "image/png",
            "upload_time": f"upload-time-{key}", "permanent_path": f"files/u1/{key}/f.png",
            "retry_count": retry_count}
