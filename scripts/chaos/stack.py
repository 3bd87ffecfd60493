"""The chaos run's private infrastructure: a Kafka node, a PostgreSQL cluster and a schema
registry of its own, on free loopback ports, with their data under the run's directory.

The shared local stack (./taskw stack:up) serves other test runs at the same time, so the run
never touches it: it starts the same programs the stack starts (scripts/stack/kafka-node.sh,
the server binaries scripts/stack/postgres.sh finds, rivven-schema) as processes of its own,
which it may kill and restart at will.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from scripts.chaos.procs import Managed

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import supabase_apply  # noqa: E402

#: The Kafka node's heap: one broker with a few hundred records a minute needs little, and
#: the machine runs two more JVMs (the Flink mini-clusters).
KAFKA_HEAP = "-Xms64m -Xmx384m"
PG_MIN_VERSION = 15
DATABASE = "chaos"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check, what: str, timeout: float, process: Managed | None = None) -> float:
    """Polls check() until true; returns the seconds it took. Fails after `timeout` s, or at
    once when `process` died (naming its log)."""
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001  (not ready yet)
            pass
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited while waiting for {what}; log: {process.log}")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timeout after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def pg_bindir() -> Path:
    """The newest server installation of version >= 15, as scripts/stack/postgres.sh looks
    for it (Debian keeps each major version under /usr/lib/postgresql, elsewhere initdb is on
    PATH)."""
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    found = []
    for directory in set(candidates):
        version = subprocess.run([directory / "initdb", "--version"], capture_output=True,
                                 text=True).stdout.split()[-1]
        major = version.split(".")[0]
        if major.isdigit() and int(major) >= PG_MIN_VERSION:
            found.append((int(major), directory))
    if not found:
        raise RuntimeError("no PostgreSQL 15+ server binaries: run ./taskw setup")
    return max(found)[1]


class PrivateStack:
    """Kafka, PostgreSQL and the registry of one chaos run, under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.kafka_port, self.controller_port = free_port(), free_port()
        self.pg_port, self.registry_port = free_port(), free_port()
        self.brokers = f"127.0.0.1:{self.kafka_port}"
        self.registry_url = f"http://127.0.0.1:{self.registry_port}"
        self.database_url = f"postgresql://postgres@127.0.0.1:{self.pg_port}/{DATABASE}"
        self.kafka = Managed(
            "kafka", ["bash", REPO / "scripts" / "stack" / "kafka-node.sh", root / "kafka",
                      self.kafka_port, self.controller_port],
            self.logs / "kafka.log",
            env={**os.environ, "KAFKA_HEAP_OPTS": KAFKA_HEAP,
                 "KAFKA_JARS_DIR": str(REPO / ".local" / "jars" / "kafka")},
        )
        registry = shutil.which("rivven-schema") or str(
            Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin" / "rivven-schema")
        self.registry = Managed(
            "rivven-schema", [registry, "serve", "--host", "127.0.0.1", "--port", self.registry_port],
            self.logs / "rivven-schema.log", env={**os.environ, "NO_COLOR": "1"},
        )
        self.pg_data = root / "postgres"
        self.pg_bin = pg_bindir()
        # PostgreSQL refuses to run as root: then the cluster belongs to the postgres account
        # (scripts/stack/postgres.sh creates it when missing), which must reach the data.
        self.pg_user = "postgres" if os.geteuid() == 0 else None
        self.postgres = Managed(
            "postgres", [self.pg_bin / "postgres", "-D", self.pg_data], self.logs / "postgres.log",
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, user=self.pg_user, cwd="/",
        )

    # ---------------------------------------------------------------- start

    def start(self) -> None:
        # the broker's JVM warms up while the database is prepared
        self.kafka.start()
        self.registry.start()
        self._init_postgres()
        self.postgres.start()
        self.wait_postgres(60)
        supabase_apply.apply(self.database_url, seed=False)
        wait_until(lambda: requests.get(f"{self.registry_url}/subjects", timeout=2).ok,
                   "the schema registry", 30, self.registry)
        self.wait_kafka(120)

    def _init_postgres(self) -> None:
        if self.pg_user:
            if subprocess.run(["id", "-u", self.pg_user], capture_output=True).returncode != 0:
                raise RuntimeError("PostgreSQL cannot run as root and there is no postgres account: "
                                   "run ./taskw stack:up once (scripts/stack/postgres.sh creates it)")
            account = pwd.getpwnam(self.pg_user)
            # the account must traverse the run's directory to reach its data
            os.chmod(self.root, 0o755)
            self.pg_data.mkdir(mode=0o700)
            os.chown(self.pg_data, account.pw_uid, account.pw_gid)
        else:
            self.pg_data.mkdir(mode=0o700)
        subprocess.run(
            [self.pg_bin / "initdb", "--pgdata", self.pg_data, "--username=postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8",
             # 1 MiB WAL segments instead of 16: a run writes little, and the disk is shared
             "--wal-segsize=1"],
            user=self.pg_user, cwd="/", check=True, capture_output=True,
        )
        settings = f"""
# the chaos run's private cluster (scripts/chaos/stack.py): loopback TCP only
listen_addresses = '127.0.0.1'
port = {self.pg_port}
unix_socket_directories = ''
max_connections = 200
# as the stack's cluster: the Supabase bootstrap creates the Realtime publication
wal_level = logical
max_wal_size = 64MB
min_wal_size = 8MB
"""
        with open(self.pg_data / "postgresql.conf", "a") as conf:
            conf.write(settings)
        (self.pg_data / "pg_hba.conf").write_text(
            "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")

    # ---------------------------------------------------------------- readiness

    def postgres_ready(self) -> bool:
        return subprocess.run([self.pg_bin / "pg_isready", "-q", "-h", "127.0.0.1", "-p",
                               str(self.pg_port), "-U", "postgres"]).returncode == 0

    def wait_postgres(self, timeout: float) -> float:
        return wait_until(self.postgres_ready, "postgres", timeout, self.postgres)

    def kafka_ready(self) -> bool:
        from confluent_kafka.admin import AdminClient

        if not port_open(self.kafka_port):
            return False
        AdminClient({"bootstrap.servers": self.brokers}).list_topics(timeout=3)
        return True

    def wait_kafka(self, timeout: float) -> float:
        return wait_until(self.kafka_ready, "the Kafka node", timeout, self.kafka)

    def processes(self) -> list[Managed]:
        return [self.kafka, self.registry, self.postgres]

    def stop(self) -> None:
        for process in (self.registry, self.postgres, self.kafka):
            process.stop()
