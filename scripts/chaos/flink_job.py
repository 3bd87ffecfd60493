"""One group of processors in a Python process of its own, with its own Flink mini-cluster, for
the chaos run (scripts/chaos/driver.py starts it as a managed process):

    python -m scripts.chaos.flink_job sql|pyflink CHECKPOINT_DIR

- `sql`: the six SQL files as one job, planned as sql_runner.main() plans them in production
  (and kept as a compiled plan, see submit_sql). This is the job the run SIGKILLs: the process
  and its JVM die together, like a JobManager pod.
- `pyflink`: the credit check, TTL expiry and move saga jobs (the echo job writes nothing the
  run audits, so it is left out to spare the CPU).

Every job checkpoints into CHECKPOINT_DIR/<job>/ and keeps its last two completed checkpoints.
At start each job resumes from the newest completed checkpoint found there, if any (what the
Flink operator's last-state upgrade mode does after a JobManager loss): its keyed state,
timers and source offsets come back, and the records since that checkpoint are processed again,
which the idempotent sinks absorb (flink_jobs/README.md, "Delivery guarantees").

Settings come from the environment (ns.environ() and the database's of the chaos fleet, as
flink_jobs/tests/fleet.py gives them to its in-process jobs). The process runs until it is
killed; it exits with status 1 when one of its jobs ends on its own.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from flink_jobs import sql_runner  # noqa: E402
from flink_jobs.tests.fleet import ALL_SQL_FILES, CREDIT_CHECK, MOVE_SAGA, SQL_DIR, TTL_EXPIRY  # noqa: E402
from pyflink_jobs import common  # noqa: E402
from pyflink_jobs.tests import kafka_stack as ks  # noqa: E402

PY_JOBS = (CREDIT_CHECK, TTL_EXPIRY, MOVE_SAGA)
ENDED = ("FAILED", "CANCELED", "FINISHED")


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest completed checkpoint under `directory` (<job id>/chk-<n>/_metadata; a
    checkpoint without _metadata was still being written when the process died)."""
    completed = [m.parent for m in directory.glob("*/chk-*/_metadata")]
    if not completed:
        return None
    return max(completed, key=lambda chk: (chk.stat().st_mtime, int(chk.name.split("-")[1])))


def checkpoint_config(directory: Path) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "execution.checkpointing.dir": directory.resolve().as_uri(),
        # two, so that one complete checkpoint is left while the next replaces the older
        "execution.checkpointing.num-retained": "2",
        "parallelism.default": "1",
    }
    restore = latest_checkpoint(directory)
    if restore is not None:
        config["execution.state-recovery.path"] = restore.as_uri()
        print(f"flink_job: {directory.name} resumes from {restore}", flush=True)
    else:
        print(f"flink_job: {directory.name} starts without state", flush=True)
    return config


def submit_sql(environ: dict[str, str], checkpoints: Path):
    """The six files as one job. The first start plans them as sql_runner.main() does (the
    runner's sources and sink, each file's DDL, every INSERT in one statement set) and keeps the
    compiled plan (Flink's COMPILE PLAN) beside the checkpoints; every start executes that plan.
    A restart so recovers the same job graph without planning the SQL again, as a JobManager
    failover recovers it from HA storage, and the operators keep the ids its checkpoints name."""
    from pyflink.java_gateway import get_gateway
    from pyflink.table import TableResult

    started = time.monotonic()
    config = {**sql_runner.flink_configuration(environ), "pipeline.name": "sql-processors",
              **checkpoint_config(checkpoints / "sql-processors")}
    t_env = sql_runner.create_table_environment(config)
    print(f"flink_job: table environment after {time.monotonic() - started:.1f} s", flush=True)
    compiled = checkpoints / "sql-processors.plan.json"
    if not compiled.exists():
        for statement in sql_runner.builtin_ddl(environ):
            t_env.execute_sql(statement)
        plan = sql_runner.plan_files([str(SQL_DIR / f) for f in ALL_SQL_FILES], environ)
        for statement in plan.ddl:
            t_env.execute_sql(statement)
        statement_set = t_env.create_statement_set()
        for statement in plan.inserts:
            statement_set.add_insert_sql(statement)
        # written aside and renamed: a kill while writing must not leave half a plan behind
        partial = compiled.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        statement_set._j_statement_set.compilePlan().writeToFile(str(partial))
        # the plan holds the connectors' options, credentials included in production
        os.chmod(partial, 0o600)
        os.replace(partial, compiled)
        print(f"flink_job: SQL planned and compiled after {time.monotonic() - started:.1f} s", flush=True)
    reference = get_gateway().jvm.org.apache.flink.table.api.PlanReference.fromFile(str(compiled))
    return [TableResult(t_env._j_tenv.loadPlan(reference).execute())]


def submit_pyflink(environ: dict[str, str], checkpoints: Path):
    results = []
    for job in PY_JOBS:
        # the Python workers run this interpreter; bundles as in production (common.PYTHON_CONFIG),
        # not the tests' one-record bundles, which keep a worker busy polling
        extra = {"python.executable": sys.executable, "python.client.executable": sys.executable,
                 **checkpoint_config(checkpoints / job.name)}
        # the job's own overrides (production: the saga steps' at-least-once sinks)
        job_env = ks.job_environ(job.job_name, environ)
        _, t_env = common.create_environments(job.name, environ=job_env, extra_config=extra)
        common.execute_ddl(t_env, job.module.table_ddl(job_env))
        results.append(job.build(t_env, job_env).execute())
    return results


def status(result) -> str:
    try:
        return str(result.get_job_client().get_job_status().result())
    except Exception as error:  # noqa: BLE001  (the mini-cluster went away with its job)
        return f"GONE ({error})"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("sql", "pyflink"):
        print("usage: python -m scripts.chaos.flink_job sql|pyflink CHECKPOINT_DIR", file=sys.stderr)
        return 2
    group, checkpoints = argv[0], Path(argv[1])
    environ = dict(os.environ)
    started = time.monotonic()
    results = (submit_sql if group == "sql" else submit_pyflink)(environ, checkpoints)
    print(f"flink_job: {group} submitted {len(results)} job(s) in {time.monotonic() - started:.1f} s",
          flush=True)
    while True:
        time.sleep(2)
        for result in results:
            state = status(result)
            if state in ENDED or state.startswith("GONE"):
                print(f"flink_job: a {group} job ended: {state}", flush=True)
                return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
