"""Processes the chaos run starts, and nothing else.

Every process is started in a session of its own (so it leads its own process group): a kill
reaches the whole group (the Postgres postmaster with its backends, a PyFlink client with the
JVM it launched) and never anything the run did not start. Every process is registered; an
atexit hook and the SIGINT/SIGTERM handlers of `install_cleanup` stop whatever is still
running, so an interrupted or failed run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

_REGISTRY: list["Managed"] = []


class Managed:
    """One restartable process: the same argv and environment at every start, its output
    appended to one log (a restart adds to it rather than replacing the evidence)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike],
        log: Path,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        cwd: str | os.PathLike | None = None,
        before_start: Callable[[], None] | None = None,
    ) -> None:
        self.name, self.argv, self.log = name, [str(a) for a in argv], log
        self.env = dict(env) if env is not None else None
        self.user, self.cwd = user, cwd
        #: called before every start (e.g. to clear what a killed predecessor left behind)
        self.before_start = before_start
        self.popen: subprocess.Popen | None = None
        self.starts = 0
        _REGISTRY.append(self)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        assert not self.alive(), f"{self.name} is already running"
        if self.before_start is not None:
            self.before_start()
        self.starts += 1
        with open(self.log, "a") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} start #{self.starts} of {self.name}\n")
            log.flush()
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, user=self.user,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _signal_group(self, sig: int) -> None:
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL to the whole process group, then reap the leader."""
        self._signal_group(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()
        # members that outlive their leader (none should) get the same signal once more
        self._signal_group(signal.SIGKILL)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the group, SIGKILL after `timeout` s."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


def stop_all() -> None:
    """Stops every registered process, newest first (clients before the servers they use)."""
    for process in reversed(_REGISTRY):
        try:
            process.stop(timeout=10)
        except Exception as error:  # noqa: BLE001  (stop the others regardless)
            print(f"chaos: stopping {process.name}: {error}", file=sys.stderr)


def install_cleanup() -> None:
    atexit.register(stop_all)

    def interrupted(signum, _frame):
        print(f"chaos: signal {signum}, stopping everything the run started", file=sys.stderr)
        stop_all()
        # 128 + signal number, as a shell reports a process ended by that signal
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
