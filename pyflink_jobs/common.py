"""Shared pieces of the PyFlink jobs: table schemas, Kafka table DDL, the execution
environment (checkpointing, connector jars, shipped Python code), row conversion, the keyed
state/timer helpers the pure-Python processing classes use, and clocks.

The Kafka options and settings are the SQL runner's (flink_jobs/sql_runner.py), so the SQL
processors and the PyFlink jobs read the same environment variables with the same defaults.
This module imports PyFlink only inside functions: the processing classes and their tests
do not need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Protocol, Sequence

from flink_jobs.sql_runner import (
    Column,
    ConfigError,
    columns,
    flink_configuration,
    kafka_sink_options,
    kafka_source_options,
    setting,
    table_ddl,
    wait_unless_detached,
)

#: The directory that holds the packages flink_jobs and pyflink_jobs: the import root of the
#: jobs (the repository root; /opt/event-substrate in the image, on its PYTHONPATH).
REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The Python packages a job ships to its Python workers (functions are pickled by reference
#: to these modules).
CODE_DIRS = (os.path.join(REPO_DIR, "pyflink_jobs"), os.path.join(REPO_DIR, "flink_jobs"))

# --------------------------------------------------------------------------------------------
# Schemas (Flink column lists of the Avro records in avro/)

LOGIN = columns("user_id, email, login_time, device_id, user_agent, ip_address")
UPLOAD_INTENT = columns("user_id, file_name, media_type, file_size BIGINT, request_id, request_time")
UPLOAD_APPROVED = UPLOAD_INTENT
UPLOAD_REJECTED = columns(
    "user_id, file_name, media_type, file_size BIGINT, request_id, reason, rejected_time"
)
UPLOAD_SIGNED = columns(
    "user_id, file_path, file_name, upload_url, expires_in INT, request_id, signed_time"
)
UPLOAD_RECEIVED = columns(
    "user_id, email, file_path, file_name, file_size BIGINT, media_type, upload_time,"
    " permanent_path, retry_count INT"
)
FILE_READY = columns("file_path, file_size BIGINT, upload_time")
UPLOAD_CONFIRMED = columns(
    "user_id, email, file_path, file_name, file_size BIGINT, media_type, upload_time"
)
UPLOAD_RETRY = columns(
    "user_id, email, file_path, permanent_path, file_name, file_size BIGINT, media_type,"
    " upload_time, retry_count INT, retry_time"
)
UPLOAD_DEAD_LETTER = columns(
    "user_id, email, file_path, permanent_path, file_name, file_size BIGINT, media_type,"
    " upload_time, retry_count INT, failure_reason, dead_letter_time"
)
UPLOAD_EXPIRED = columns(
    "user_id, file_path, file_name, file_size BIGINT, media_type, request_id, request_time,"
    " expired_time"
)


def kafka_source_ddl(
    name: str, topic: str, group: str, cols: Sequence[Column],
    environ: Mapping[str, str] | None = None,
) -> str:
    return table_ddl(name, cols, kafka_source_options(topic, group, environ))


def kafka_sink_ddl(
    name: str, topic: str, cols: Sequence[Column], environ: Mapping[str, str] | None = None
) -> str:
    return table_ddl(name, cols, kafka_sink_options(topic, name, environ))


# --------------------------------------------------------------------------------------------
# Rows


def flink_type(sql_type: str):
    from pyflink.common import Types

    return {"STRING": Types.STRING(), "BIGINT": Types.LONG(), "INT": Types.INT(),
            "BOOLEAN": Types.BOOLEAN()}[sql_type]


def row_type(cols: Sequence[Column]):
    """The named Row type of a column list (for DataStream output types)."""
    from pyflink.common import Types

    return Types.ROW_NAMED([c.name for c in cols], [flink_type(c.type) for c in cols])


def row_to_dict(row: Any, cols: Sequence[Column]) -> dict[str, Any]:
    """A positional row (Row or sequence) as a dict keyed by column name."""
    return {c.name: row[i] for i, c in enumerate(cols)}


_ZERO = {"STRING": "", "BIGINT": 0, "INT": 0, "BOOLEAN": False}


def dict_to_values(record: Mapping[str, Any], cols: Sequence[Column]) -> list[Any]:
    """The values of `record` in column order; missing or null values become "" or 0."""
    out = []
    for c in cols:
        value = record.get(c.name)
        if value is None:
            value = _ZERO[c.type]
        elif c.type in ("BIGINT", "INT"):
            value = int(value)
        elif c.type == "STRING":
            value = str(value)
        out.append(value)
    return out


def to_row(record: Mapping[str, Any], cols: Sequence[Column]):
    from pyflink.common import Row

    return Row(*dict_to_values(record, cols))


def utc_now_iso() -> str:
    """Now in UTC as ISO-8601 with offset, e.g. 2026-03-01T12:00:00.123456+00:00."""
    return datetime.now(timezone.utc).isoformat()


def int_env(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


# --------------------------------------------------------------------------------------------
# Keyed state and timers, as the processing classes see them. PyFlink's ValueState and
# TimerService have exactly these methods, so the adapters pass them through unchanged.


class ValueStateLike(Protocol):
    def value(self) -> Any: ...
    def update(self, value: Any) -> None: ...
    def clear(self) -> None: ...


class TimerServiceLike(Protocol):
    def current_processing_time(self) -> int: ...
    def register_processing_time_timer(self, timestamp: int) -> None: ...
    def delete_processing_time_timer(self, timestamp: int) -> None: ...


@dataclass
class Deadline:
    """One pending processing-time timer per key, remembered in a LONG state. Arming it
    again deletes the previous timer, and a timer that fires for a deadline that is no longer
    current (deleted too late, or from before a restore) is recognised as stale."""

    state: ValueStateLike

    def arm(self, timers: TimerServiceLike, delay_ms: int) -> int:
        self.disarm(timers)
        at = timers.current_processing_time() + delay_ms
        timers.register_processing_time_timer(at)
        self.state.update(at)
        return at

    def disarm(self, timers: TimerServiceLike) -> None:
        current = self.state.value()
        if current is not None:
            timers.delete_processing_time_timer(current)
        self.state.clear()

    def armed(self) -> bool:
        return self.state.value() is not None

    def is_current(self, timestamp: int) -> bool:
        return self.state.value() == timestamp


# --------------------------------------------------------------------------------------------
# Execution environment


#: Python workers: a bundle of records is buffered at most this long before the worker
#: processes it (Flink's default is 1000 ms, i.e. up to a second of latency per Python
#: operator on the upload saga's path); at the saga's rates the smaller bundles cost nothing.
PYTHON_CONFIG = {"python.fn-execution.bundle.time": "50"}


def create_environments(
    job_name: str,
    environ: Mapping[str, str] | None = None,
    extra_config: Mapping[str, str] | None = None,
):
    """(StreamExecutionEnvironment, StreamTableEnvironment) for a job: exactly-once
    checkpointing and connector jars as in the SQL runner, short Python bundles, the job name,
    and this repository's Python packages shipped to the Python workers."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    config = {
        **flink_configuration(environ), **PYTHON_CONFIG, "pipeline.name": job_name,
        **(extra_config or {}),
    }
    configuration = Configuration()
    for key, value in config.items():
        configuration.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(configuration)
    ship_code(env)
    t_env = StreamTableEnvironment.create(
        env, environment_settings=EnvironmentSettings.in_streaming_mode()
    )
    return env, t_env


def ship_code(env) -> None:
    for directory in CODE_DIRS:
        env.add_python_file(directory)


def execute_ddl(t_env, statements: Iterable[str]) -> None:
    for statement in statements:
        t_env.execute_sql(statement)
