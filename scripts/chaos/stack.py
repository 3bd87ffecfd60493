"""The chaos run's private infrastructure: a Kafka node, a PostgreSQL cluster and a schema
registry of its own, on free loopback ports, with their data under the run's directory.

The shared local stack (./taskw stack:up) serves other test runs at the same time, so the run
never touches it: it starts the same programs the stack starts (scripts/stack/kafka-node.sh,
the server binaries scripts/stack/postgres.sh finds, rivven-schema or registry-auth) as
processes of its own, which it may kill and restart at will.

Profiles (scripts/stack/profile.sh), as the shared stack runs them:
- development: a plaintext broker without users, an open rivven-schema, Postgres trusting
  loopback;
- production: the broker with KAFKA_SECURITY=sasl_ssl (SCRAM-SHA-256 over TLS, the
  StandardAuthorizer) and then the users and exactly the grants of scripts/infra/kafka-acls.txt
  (scripts/stack/bootstrap.py's apply_security), registry-auth (basic auth, the users file of
  .local/secrets), Postgres with ssl=on, the production pg_hba.conf (TCP over TLS only; the
  services' roles with their passwords) and the role passwords set after the migrations. The
  certificates (.local/tls) and passwords (.local/secrets) are the clone's, made once by
  profile.sh's ensure_tls and ensure_secrets, so the harness's settings
  (pyflink_jobs/tests/kafka_stack.py) apply to the private stack as to the shared one.
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

PROFILES = ("production", "development")
#: The grants the production profile applies (the chart's bootstrap Job grants the same file).
KAFKA_ACLS_FILE = REPO / "scripts" / "infra" / "kafka-acls.txt"
#: The services' and Flink's Postgres roles (profile.sh PG_ROLES), made by the migrations.
PG_ROLES = ("api_gateway", "message_consumer", "media_service", "flink_writer")

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


def ensure_production_material() -> None:
    """The clone's certificates and passwords of the production profile (.local/tls,
    .local/secrets), made once by scripts/stack/profile.sh if missing; existing ones are kept."""
    subprocess.run(
        ["bash", "-c", 'source scripts/stack/lib.sh && ensure_tls && ensure_secrets'],
        cwd=REPO, env={**os.environ, "PROFILE": "production"}, check=True,
    )


def cargo_binary(name: str) -> str:
    """A binary `cargo install` put on PATH, into $CARGO_HOME/<name>/bin (scripts/stack/install.sh
    installs the stack's own tools, registry-auth, under a root of their own) or $CARGO_HOME/bin."""
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    for candidate in (shutil.which(name), cargo_home / name / "bin" / name, cargo_home / "bin" / name):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    return str(cargo_home / "bin" / name)


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
    """Kafka, PostgreSQL and the registry of one chaos run, under `root`, in `profile`.

    Construct it, export `addresses()` into the environment and only then import
    pyflink_jobs.tests.kafka_stack (it reads them at import); start() uses its settings."""

    def __init__(self, root: Path, profile: str = "production") -> None:
        assert profile in PROFILES, profile
        self.root, self.profile = root, profile
        self.production = profile == "production"
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
        if self.production:
            # its users file and the broker's security are added by start(), with kafka_stack's
            # paths of the certificates and secrets
            registry = cargo_binary("registry-auth")
            if not os.access(registry, os.X_OK):
                raise RuntimeError("registry-auth is not installed (the production profile's registry): "
                                   "PROFILE=production ./taskw setup installs it")
            self.registry = Managed(
                "registry-auth", [registry, "--host", "127.0.0.1", "--port", self.registry_port],
                self.logs / "registry-auth.log", env={**os.environ, "NO_COLOR": "1"},
            )
        else:
            self.registry = Managed(
                "rivven-schema", [cargo_binary("rivven-schema"), "serve", "--host", "127.0.0.1",
                                  "--port", self.registry_port],
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

    def addresses(self) -> dict[str, str]:
        """What pyflink_jobs/tests/kafka_stack.py reads at import: this stack's broker,
        registry and profile."""
        return {"LOCAL_KAFKA_BROKERS": self.brokers, "LOCAL_SCHEMA_REGISTRY_URL": self.registry_url,
                "STACK_PROFILE": self.profile}

    # ---------------------------------------------------------------- start

    def start(self) -> None:
        from pyflink_jobs.tests import kafka_stack as ks

        assert (ks.BROKERS, ks.PROFILE) == (self.brokers, self.profile), \
            "export addresses() before kafka_stack is imported"
        if self.production:
            ensure_production_material()
            self.tls_dir = ks.TLS_DIR
            self.kafka.env |= {"KAFKA_SECURITY": "sasl_ssl", "KAFKA_TLS_DIR": str(ks.TLS_DIR),
                               "KAFKA_SUPERUSER_PASSWORD": ks.kafka_password("superuser")}
            self.registry.argv += ["--users-file", str(ks.REGISTRY_USERS_FILE)]
        # the broker's JVM warms up while the database is prepared
        self.kafka.start()
        self.registry.start()
        self._init_postgres()
        self.postgres.start()
        self.wait_postgres(60)
        supabase_apply.apply(self.database_url, seed=False)
        if self.production:
            self._set_role_passwords(ks)
        wait_until(lambda: requests.get(f"{self.registry_url}/subjects", auth=ks.registry_auth(), timeout=2).ok,
                   "the schema registry", 30, self.registry)
        self.wait_kafka(120)
        if self.production:
            self._apply_kafka_security(ks)

    def _set_role_passwords(self, ks) -> None:
        """LOGIN with the clone's password for each service role the migrations made
        (scripts/stack/postgres.sh set-passwords)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for role in PG_ROLES:
                if conn.execute("select 1 from pg_roles where rolname = %s", [role]).fetchone():
                    conn.execute(sql.SQL("alter role {} login password {}").format(
                        sql.Identifier(role), sql.Literal(ks.pg_password(role))))

    def _apply_kafka_security(self, ks) -> None:
        """Every user's SCRAM credential and exactly the grants of kafka-acls.txt, as the
        stack's bootstrap (scripts/stack/bootstrap.py --sasl-ssl) makes them."""
        from confluent_kafka.admin import AdminClient

        users, created, deleted = ks.bootstrap.apply_security(
            AdminClient(ks.kafka_config({"socket.timeout.ms": 10000})), ks.KAFKA_USERS_DIR, KAFKA_ACLS_FILE)
        print(f"chaos: {users} SCRAM users, ACLs as {KAFKA_ACLS_FILE.name} ({created} created, {deleted} deleted)",
              flush=True)

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
        hba = "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
        if self.production:
            # as scripts/stack/postgres.sh write_settings/write_hba: TLS with the stack's
            # certificate (copied, the server reads its key as its owner), TCP over TLS only,
            # postgres trusted (the harness), every other role by its password
            settings += """ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
"""
            hba = ("hostssl all postgres 127.0.0.1/32 trust\n"
                   "hostssl replication postgres 127.0.0.1/32 trust\n"
                   "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                   "hostnossl all all 0.0.0.0/0 reject\n")
            for source, target, mode in ((self.tls_dir / "server.key", "server.key", 0o600),
                                         (self.tls_dir / "server.pem", "server.crt", 0o644)):
                shutil.copyfile(source, self.pg_data / target)
                os.chmod(self.pg_data / target, mode)
                if self.pg_user:
                    account = pwd.getpwnam(self.pg_user)
                    os.chown(self.pg_data / target, account.pw_uid, account.pw_gid)
        with open(self.pg_data / "postgresql.conf", "a") as conf:
            conf.write(settings)
        (self.pg_data / "pg_hba.conf").write_text(hba)

    # ---------------------------------------------------------------- readiness

    def postgres_ready(self) -> bool:
        return subprocess.run([self.pg_bin / "pg_isready", "-q", "-h", "127.0.0.1", "-p",
                               str(self.pg_port), "-U", "postgres"]).returncode == 0

    def wait_postgres(self, timeout: float) -> float:
        return wait_until(self.postgres_ready, "postgres", timeout, self.postgres)

    def kafka_ready(self) -> bool:
        from confluent_kafka.admin import AdminClient

        from pyflink_jobs.tests import kafka_stack as ks

        if not port_open(self.kafka_port):
            return False
        AdminClient(ks.kafka_config()).list_topics(timeout=3)
        return True

    def wait_kafka(self, timeout: float) -> float:
        return wait_until(self.kafka_ready, "the Kafka node", timeout, self.kafka)

    def processes(self) -> list[Managed]:
        return [self.kafka, self.registry, self.postgres]

    def stop(self) -> None:
        for process in (self.registry, self.postgres, self.kafka):
            process.stop()
