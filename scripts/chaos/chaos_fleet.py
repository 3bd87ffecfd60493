"""The fleet of a chaos run: flink_jobs/tests/fleet.py's Fleet (the Rust services' binaries,
their object store, the run's topics and settings), with restartable processes, and the
processors in two Python processes of their own (scripts/chaos/flink_job.py) instead of the
driver's, so that one of them can be SIGKILLed and started again.

Import this module only after the environment names the private broker, registry and profile
(PrivateStack.addresses(): LOCAL_KAFKA_BROKERS, LOCAL_SCHEMA_REGISTRY_URL, STACK_PROFILE):
pyflink_jobs/tests/kafka_stack.py reads them at import time, and Fleet takes its addresses and
security settings from there.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from flink_jobs.tests.fleet import ALL_SQL_FILES, CREDIT_CHECK, MOVE_SAGA, TTL_EXPIRY, Fleet
from pyflink_jobs.tests import kafka_stack as ks
from scripts.chaos.procs import Managed

REPO = Path(__file__).resolve().parents[2]
SQL_JOB, PYFLINK_JOBS = "flink-sql", "flink-pyflink"
#: JVM options of each processor process's PyFlink gateway (the mini-cluster lives in it):
#: a bounded heap, and C1 only, which halves the JIT's start-up CPU (as the stack's JVMs).
FLINK_JVM_ARGS = "-Xms128m -Xmx640m -XX:TieredStopAtLevel=1"


class ChaosFleet(Fleet):
    """Every process of the fleet is a procs.Managed, so it can be killed and started again
    with the same command, environment and ports."""

    def __init__(self, ns, db: str, tmp: Path, *, media: dict, jwt_secret: str) -> None:
        # all processors' topics must exist, though none runs in this process
        super().__init__(ns, db, tmp, sql_files=ALL_SQL_FILES, py_jobs=(CREDIT_CHECK, TTL_EXPIRY, MOVE_SAGA),
                         media=media, jwt_secret=jwt_secret)
        self.managed: dict[str, Managed] = {}

    def _spawn(self, name: str, argv: list, env: dict[str, str]) -> None:
        process = Managed(name, argv, self.log(name), env={**os.environ, **env, "NO_COLOR": "1"})
        process.start()
        self.managed[name] = process
        self.processes[name] = process.popen

    def kill(self, name: str) -> None:
        self.managed[name].kill()

    def restart(self, name: str) -> None:
        process = self.managed[name]
        process.start()
        self.processes[name] = process.popen

    def start_flink(self, environ: dict[str, str]) -> None:
        """The SQL job and the PyFlink jobs, each group in a process of its own, checkpointing
        under the run's directory."""
        for name, group in ((PYFLINK_JOBS, "pyflink"), (SQL_JOB, "sql")):
            # Temporary files in a directory of the process's own, emptied before every start:
            # the JVM unpacks the table planner (40 MiB) into java.io.tmpdir and removes it only
            # on a clean exit, so every SIGKILL would leave one behind in /tmp.
            tmp = self.tmp / f"{name}-tmp"
            env = {**os.environ, **environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp),
                   "JVM_ARGS": f"{FLINK_JVM_ARGS} -Djava.io.tmpdir={tmp}",
                   # PyFlink starts its Python workers with the interpreter found on PATH
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
            process = Managed(name, [sys.executable, "-m", "scripts.chaos.flink_job", group,
                                     self.tmp / "checkpoints"], self.log(name), env=env, cwd=REPO,
                              before_start=lambda tmp=tmp: _empty(tmp))
            process.start()
            self.managed[name] = process
            self.processes[name] = process.popen

    def flink_submitted(self, name: str, since: float = 0.0) -> bool:
        """Whether the process's jobs were submitted (its log says so) after the log's byte
        offset `since`."""
        with open(self.log(name), "rb") as log:
            log.seek(int(since))
            return b"submitted" in log.read()

    def log_size(self, name: str) -> int:
        return self.log(name).stat().st_size

    def wait(self, observe, done, what: str, timeout: float = ks.RESULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            value = observe()
            if done(value):
                return value
            for name, process in self.managed.items():
                if not process.alive():
                    raise RuntimeError(f"{name} exited while waiting for {what}; log: {process.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timeout after {timeout:.0f} s waiting for {what}; logs in {self.tmp}")
            time.sleep(0.3)

    def check_alive(self) -> None:
        for name, process in self.managed.items():
            if not process.alive():
                raise RuntimeError(f"{name} exited; log: {process.log}")

    def stop(self) -> None:
        for process in reversed(list(self.managed.values())):
            process.stop(timeout=15)
        for name in (SQL_JOB, PYFLINK_JOBS):
            shutil.rmtree(self.tmp / f"{name}-tmp", ignore_errors=True)


def _empty(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
