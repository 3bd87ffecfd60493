#!/usr/bin/env python3
"""Submits several Flink jobs of the local stack from one client (scripts/stack/flink.sh up).

    flink run --detached --python scripts/stack/flink_launch.py NAME[=SAVEPOINT] ...

Each NAME is a job of JOBS; with =SAVEPOINT it resumes from that savepoint, dropping the
state of operators the current code no longer has. Every submission is one `flink run` in
Kubernetes; locally one client plans them all, because a Flink client is a JVM plus a Python
planner: five of them side by side on a two-core laptop took almost three minutes, one client
planning the jobs one after another (its JIT warm after the first) a fraction of that.

Prints "submitted NAME" per job; a job that cannot be planned or submitted is reported and
the others are still submitted; the exit status is 1 if any failed.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_DIR not in sys.path:
    sys.path.insert(0, REPO_DIR)

# spec 3.1: the six SQL files run together as one job, in this order
SQL_FILES = (
    "login_events", "signup_events", "signout_events", "unified_events", "credit_balance",
    "media_notification",
)


def _sql_processors(extra: Mapping[str, str]) -> int:
    from flink_jobs import sql_runner

    files = [os.path.join(REPO_DIR, "flink_jobs", f"{name}_processor.sql") for name in SQL_FILES]
    return sql_runner.main(files, {"pipeline.name": "sql-processors", **extra})


def _pyflink(module: str) -> Callable[[Mapping[str, str]], int]:
    def run(extra: Mapping[str, str]) -> int:
        job = __import__(f"pyflink_jobs.{module}", fromlist=["main"])
        return job.main(extra)

    return run


# job name on the cluster (pipeline.name, which flink.sh looks jobs up by) -> submission
JOBS: dict[str, Callable[[Mapping[str, str]], int]] = {
    "sql-processors": _sql_processors,
    "credit-check-processor": _pyflink("credit_check_processor"),
    "ttl-expiry-processor": _pyflink("ttl_expiry_processor"),
    "move-saga-processor": _pyflink("move_saga_processor"),
    "pyflink-echo-job": _pyflink("echo_processor"),
}


def parse(arguments: list[str]) -> list[tuple[str, str]]:
    """[(name, savepoint or "")] in the order given; unknown names are an error."""
    requests = []
    for argument in arguments:
        name, _, savepoint = argument.partition("=")
        if name not in JOBS:
            raise ValueError(f"unknown job {name!r} (known: {', '.join(JOBS)})")
        requests.append((name, savepoint))
    return requests


def restore_config(savepoint: str) -> dict[str, str]:
    if not savepoint:
        return {}
    return {
        "execution.savepoint.path": savepoint,
        "execution.savepoint.ignore-unclaimed-state": "true",
    }


def job_overrides(name: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The settings one job gets on top of the shared environment, as a FlinkDeployment of the
    chart gets its own env: variables named <JOB>__<SETTING>, JOB being the job's name in upper
    case with '-' as '_' (CREDIT_CHECK_PROCESSOR__KAFKA_SINK_DELIVERY_GUARANTEE=at-least-once)."""
    prefix = name.upper().replace("-", "_") + "__"
    return {k.removeprefix(prefix): v for k, v in environ.items() if k.startswith(prefix)}


@contextmanager
def overlaid(settings: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `settings` set while the block runs (the jobs read their settings from
    the environment as they are planned), restored afterwards."""
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main(arguments: list[str]) -> int:
    try:
        requests = parse(arguments)
    except ValueError as error:
        print(f"flink_launch: {error}", file=sys.stderr)
        return 2
    failed = []
    for name, savepoint in requests:
        print(f"planning {name}" + (f" from {savepoint}" if savepoint else ""), flush=True)
        started = time.monotonic()
        try:
            with overlaid(job_overrides(name, os.environ)):
                status = JOBS[name](restore_config(savepoint))
        except Exception:  # one job's failure must not keep the others off the cluster
            traceback.print_exc()
            status = 1
        if status == 0:
            print(f"submitted {name}", flush=True)
            print(f"({name} took {time.monotonic() - started:.1f} s)", flush=True)
        else:
            print(f"failed {name}", flush=True)
            failed.append(name)
    if failed:
        print(f"flink_launch: not submitted: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
