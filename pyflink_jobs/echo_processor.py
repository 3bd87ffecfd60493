"""Echo: copies every login event to internal.identity.login.echo (spec 4.1). No state, no
keying; a smoke test of the PyFlink deployment path.

The sink writes with the Kafka sinks' delivery guarantee (at-least-once by default, see
flink_jobs/README.md), and the source resumes from the group's committed offsets, so a
restart echoes at most the records since the last checkpoint again.
"""

from __future__ import annotations

import sys
from typing import Mapping

from pyflink_jobs import common

SOURCE = ("login_events_source", "public.identity.login.events", "pyflink-echo-consumer")
SINK = ("login_events_sink", "internal.identity.login.echo")

INSERT = "INSERT INTO login_events_sink SELECT {} FROM login_events_source".format(
    ", ".join(f"`{c.name}`" for c in common.LOGIN)
)


def table_ddl(environ: Mapping[str, str] | None = None) -> list[str]:
    name, topic, group = SOURCE
    sink_name, sink_topic = SINK
    return [
        common.kafka_source_ddl(name, topic, group, common.LOGIN, environ),
        common.kafka_sink_ddl(sink_name, sink_topic, common.LOGIN, environ),
    ]


def build(t_env):
    statement_set = t_env.create_statement_set()
    statement_set.add_insert_sql(INSERT)
    return statement_set


def main(extra_config: Mapping[str, str] | None = None) -> int:
    """Submits the job; `extra_config` adds Flink settings (scripts/stack/flink_launch.py
    passes a savepoint to resume from)."""
    try:
        ddl = table_ddl()
    except common.ConfigError as error:
        print(f"echo_processor: {error}", file=sys.stderr)
        return 1
    _, t_env = common.create_environments("pyflink-echo-job", extra_config=extra_config)
    common.execute_ddl(t_env, ddl)
    common.wait_unless_detached(t_env, build(t_env).execute())
    return 0


if __name__ == "__main__":
    sys.exit(main())
