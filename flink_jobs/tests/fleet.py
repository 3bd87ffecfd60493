"""A whole platform of one test run on the local stack (flink_jobs/tests/test_cutover_fleet.py,
tests/e2e/scenarios): the Rust services as the built binaries, their own object store
(local-objectstore, sending MinIO-style webhooks to the media-service), a pg_net worker for the
auth webhook triggers, and the Flink SQL and PyFlink processors on the PyFlink mini-cluster.

Everything is the run's own: its topics, subjects and consumer groups carry the Kafka
namespace's suffix (pyflink_jobs/tests/kafka_stack.py), the services and the processors use the
run's database, the object store keeps its objects under the run's directory, and every process
listens on a free port. So runs go in parallel with each other and with `./taskw up`.

Binaries come from $CARGO_TARGET_DIR/debug (default target/debug), as the Rust test run leaves
them. Logs go to the run's directory, one file per process; a failing wait names it.

Under the stack's production profile (kafka_stack.PROFILE) every part connects as it is deployed:
Kafka over SASL_SSL (as the namespace's kafka_user: the superuser for namespaced names, else the
part's own user), the registry with the part's own credentials (the services are readers, Flink
is flink-processor, unless namespaced subjects are beyond its role: KafkaNamespace.registry_user),
Postgres over verified TLS as the part's own role (api_gateway,
media_service, message_consumer, flink_writer) with the stack's passwords; the Flink sinks are
exactly-once except the saga steps' (kafka_stack.processor_security_env).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

import psycopg
import requests

from flink_jobs import sql_runner
from flink_jobs.tests.sqlfiles import FLINK_JOBS as SQL_DIR
from flink_jobs.tests.test_sql_processors_kafka import source_topics
from pyflink_jobs import common
from pyflink_jobs import credit_check_processor as cc
from pyflink_jobs import echo_processor as echo
from pyflink_jobs import move_saga_processor as saga
from pyflink_jobs import ttl_expiry_processor as ttl
from pyflink_jobs.tests import kafka_stack as ks
from pyflink_jobs.tests import runtime

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug"
BINARIES = ("api-gateway", "media-service", "message-consumer", "local-objectstore")

BUCKET = "media-uploads"
ACCESS_KEY, SECRET_KEY = "admin", "password"

#: media-service settings field -> topic (crates/media-service/src/configuration.rs)
MEDIA_TOPICS = {
    "upload_approved": "public.media.upload.approved",
    "upload_signed": "public.media.upload.signed",
    "upload_rejected": "public.media.upload.rejected",
    "download_intent": "internal.media.download.intent",
    "download_signed": "public.media.download.signed",
    "download_rejected": "public.media.download.rejected",
    "delete_intent": "internal.media.delete.intent",
    "delete_events": "public.media.delete.events",
    "delete_rejected": "public.media.delete.rejected",
    "delete_retry": "internal.media.delete.retry",
    "delete_dead_letter": "internal.media.delete.dead-letter",
    "upload_retry": "internal.media.upload.retry",
    "upload_received": "internal.media.upload.received",
    "file_ready": "internal.media.file.ready",
    "expired": "public.media.expired.events",
}
#: the saga topics of the media-service's main group (its default consumer.topics)
MEDIA_SAGA_TOPICS = ("upload_approved", "download_intent", "delete_intent", "upload_retry", "expired")
MEDIA_DEAD_LETTER = "internal.media.consumer.dead-letter"
MESSAGES = "public.user.message.events"
MESSAGE_DEAD_LETTER = "internal.user.message.dead-letter"
#: api-gateway settings field (gateway.topics) -> topic (crates/api-gateway/src/configuration.rs)
GATEWAY_TOPICS = {
    "upload_intent": "internal.media.upload.intent",
    "download_intent": "internal.media.download.intent",
    "delete_intent": "internal.media.delete.intent",
    "download_events": "public.media.download.events",
    "delete_events": "public.media.delete.events",
    "delete_retry": "internal.media.delete.retry",
}
#: the gateway's allowlist (routes.yaml): key -> topic
WEBHOOK_ROUTES = {
    "login": "public.identity.login.events",
    "signup": "public.identity.signup.events",
    "signout": "public.identity.signout.events",
}
EXTERNAL_ROUTES = {"message": MESSAGES}

#: the production job's six files, in the deployment's order (spec 3.1)
ALL_SQL_FILES = (
    "login_events_processor.sql", "signup_events_processor.sql", "signout_events_processor.sql",
    "unified_events_processor.sql", "credit_balance_processor.sql",
    "media_notification_processor.sql",
)


@dataclass(frozen=True)
class PyJob:
    """A PyFlink job: its module (table_ddl) and how the module builds its statement set."""

    module: ModuleType
    build: Callable[[Any, dict[str, str]], Any]

    @property
    def name(self) -> str:
        return self.module.__name__.rsplit(".", 1)[-1]

    @property
    def job_name(self) -> str:
        """The job's name on the session cluster (scripts/stack/flink_launch.py), which its
        <JOB>__<SETTING> overrides are named after: credit-check-processor, ..."""
        return self.name.replace("_", "-")

    def topics(self) -> set[str]:
        if self.module is echo:
            return {echo.SOURCE[1], echo.SINK[1]}
        return ({topic for topic, *_ in self.module.SOURCES.values()}
                | {topic for topic, *_ in self.module.SINKS.values()})


CREDIT_CHECK = PyJob(cc, lambda t, env: cc.build(t, cc.db_settings(env)))
TTL_EXPIRY = PyJob(ttl, lambda t, env: ttl.build(t, ttl.settings(env)))
MOVE_SAGA = PyJob(saga, lambda t, env: saga.build(t, saga.move_timeout_seconds(env)))
ECHO = PyJob(echo, lambda t, env: echo.build(t))
ALL_PY_JOBS = (CREDIT_CHECK, TTL_EXPIRY, MOVE_SAGA, ECHO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(conninfo: str, role: str | None = None) -> str:
    """The URL form of a libpq connection string (what the Rust services take); in the
    production profile as `role` over verified TLS (kafka_stack.postgres_url)."""
    return ks.postgres_url(conninfo, role)


def require_binaries(*names: str) -> None:
    missing = [str(TARGET / n) for n in names if not (TARGET / n).exists()]
    assert not missing, (f"missing {', '.join(missing)}: run the Rust tests first (./taskw test "
                         "does), or point CARGO_TARGET_DIR at a target directory that has them")


class Fleet:
    """The processes and jobs of one run. Start the parts with the start_* methods (in any
    order: the services tolerate processors that come later and vice versa); stop() ends
    everything it started."""

    def __init__(
        self,
        ns: ks.KafkaNamespace,
        db: str,
        tmp: Path,
        *,
        sql_files: Iterable[str] = ALL_SQL_FILES,
        py_jobs: Iterable[PyJob] = ALL_PY_JOBS,
        media: dict[str, Any] | None = None,
        jwt_secret: str | None = None,
        webhook_secret: str = "fleet-webhook-secret",
        webhook_token: str = "fleet-media-webhook-token",
    ) -> None:
        self.ns, self.db, self.tmp = ns, db, tmp
        self.sql_files = tuple(sql_files)
        self.py_jobs = tuple(py_jobs)
        #: media-service `media` settings (URL lifetimes, delete-retry backoff, ...)
        self.media = dict(media or {})
        self.jwt_secret, self.webhook_secret, self.webhook_token = jwt_secret, webhook_secret, webhook_token
        self.processes: dict[str, subprocess.Popen] = {}
        self.jobs: list[ks.RunningJob] = []
        #: seconds each processor took to submit (the first one includes the JVM's start)
        self.submitted: dict[str, float] = {}
        self.store_root = tmp / "objects"
        self.store_port, self.media_port = free_port(), free_port()
        self.consumer_port, self.gateway_port = free_port(), free_port()
        self.media_group = ns.topic("media-service-consumer")
        self.retry_group = ns.topic("media-service-delete-retry")
        self.message_group = ns.topic("go-message-consumer")

    # ---------------------------------------------------------------- topics

    def topics(self) -> list[str]:
        """Every topic a part of the fleet reads or writes (base names): the broker creates
        none on demand, and a Flink source on a missing topic fails its job."""
        topics = {*MEDIA_TOPICS.values(), MEDIA_DEAD_LETTER, MESSAGES, MESSAGE_DEAD_LETTER,
                  *GATEWAY_TOPICS.values(), *WEBHOOK_ROUTES.values(), *EXTERNAL_ROUTES.values(),
                  *source_topics(self.sql_files)}
        if "unified_events_processor.sql" in self.sql_files:
            topics.add(sql_runner.UNIFIED_TOPIC)
        for job in self.py_jobs:
            topics |= job.topics()
        return sorted(topics)

    # ---------------------------------------------------------------- Rust services

    def _spawn(self, name: str, argv: list, env: dict[str, str]) -> None:
        # the child gets its own copy of the descriptor, so ours is closed right away
        log = open(self.log(name), "w")  # noqa: SIM115
        self.processes[name] = subprocess.Popen(
            argv, env={**os.environ, **env, "NO_COLOR": "1"},
            stdout=subprocess.DEVNULL, stderr=log,
        )
        log.close()

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def _service_env(self, service: str) -> dict[str, str]:
        return {
            "APP__HTTP__HOST": "127.0.0.1",
            "APP__KAFKA__BROKERS": ks.BROKERS,
            "APP__REGISTRY__URL": ks.REGISTRY_URL,
            "APP__TELEMETRY__LOG_FORMAT": "json",
            **ks.service_security_env(service, self.db, self.ns.kafka_user(service)),
        }

    def _s3_env(self) -> dict[str, str]:
        store = f"127.0.0.1:{self.store_port}"
        return {"APP__S3__ENDPOINT": store, "APP__S3__PUBLIC_ENDPOINT": store,
                "APP__S3__ACCESS_KEY": ACCESS_KEY, "APP__S3__SECRET_KEY": SECRET_KEY,
                "APP__S3__BUCKET": BUCKET}

    def _config_dir(self, name: str, settings: dict) -> Path:
        """A config directory whose base.yaml (JSON is YAML) holds `settings`."""
        directory = self.tmp / f"{name}-config"
        directory.mkdir(exist_ok=True)
        (directory / "base.yaml").write_text(json.dumps(settings))
        return directory

    def start_store(self) -> None:
        """local-objectstore with the bucket's webhooks as MinIO has them (spec 12.4):
        uploads/ -> /webhooks/media-upload, files/ -> /webhooks/file-ready."""
        hooks = f"http://127.0.0.1:{self.media_port}/webhooks"
        self._spawn("objectstore", [
            TARGET / "local-objectstore", "--root", str(self.store_root), "--port", str(self.store_port),
            "--bucket", BUCKET, "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
            "--webhook", f"uploads/={hooks}/media-upload", "--webhook", f"files/={hooks}/file-ready",
            "--webhook-token", self.webhook_token,
        ], {})

    def start_services(self) -> None:
        """media-service and message-consumer, then waits until both answer /healthz."""
        t = self.ns.topic
        media_dir = self._config_dir("media-service", {
            "topics": {field: t(base) for field, base in MEDIA_TOPICS.items()},
            "consumer": {
                "group_id": self.media_group,
                "topics": [t(MEDIA_TOPICS[f]) for f in MEDIA_SAGA_TOPICS],
                "dead_letter_topic": t(MEDIA_DEAD_LETTER),
            },
            "retry_consumer": {
                "group_id": self.retry_group,
                "topics": [t(MEDIA_TOPICS["delete_retry"])],
                "dead_letter_topic": t(MEDIA_DEAD_LETTER),
                "start_at": "latest",
                "max_batch": 1,
            },
            "media": self.media,
        })
        self._spawn("media-service", [TARGET / "media-service"], {
            **self._service_env("media-service"), **self._s3_env(), "APP_CONFIG_DIR": str(media_dir),
            "APP__HTTP__PORT": str(self.media_port), "APP__WEBHOOK__TOKEN": self.webhook_token,
        })
        consumer_dir = self._config_dir("message-consumer", {"consumer": {
            "group_id": self.message_group, "topics": [t(MESSAGES)],
            "dead_letter_topic": t(MESSAGE_DEAD_LETTER),
        }})
        self._spawn("message-consumer", [TARGET / "message-consumer"], {
            **self._service_env("message-consumer"), "APP_CONFIG_DIR": str(consumer_dir),
            "APP__HTTP__PORT": str(self.consumer_port),
        })
        self.wait_healthy("media-service", self.media_port)
        self.wait_healthy("message-consumer", self.consumer_port)

    def start_gateway(self) -> None:
        """The api-gateway with the run's JWT secret, webhook secret, allowlist (routes file)
        and intent topics; its legacy media routes use the run's database and object store."""
        assert self.jwt_secret, "the gateway needs a JWT secret (Fleet(jwt_secret=...))"
        t = self.ns.topic
        routes = self.tmp / "routes.yaml"
        routes.write_text(json.dumps({
            "webhookRoutes": {key: t(topic) for key, topic in WEBHOOK_ROUTES.items()},
            "externalRoutes": {key: t(topic) for key, topic in EXTERNAL_ROUTES.items()},
        }))
        gateway_dir = self._config_dir("api-gateway", {
            "gateway": {"routes_file": str(routes),
                        "topics": {field: t(base) for field, base in GATEWAY_TOPICS.items()}},
        })
        self._spawn("api-gateway", [TARGET / "api-gateway"], {
            **self._service_env("api-gateway"), **self._s3_env(), "APP_CONFIG_DIR": str(gateway_dir),
            "APP__HTTP__PORT": str(self.gateway_port),
            "APP__AUTH__JWT_SECRET": self.jwt_secret,
            "APP__AUTH__WEBHOOK_SECRET": self.webhook_secret,
        })
        self.wait_healthy("api-gateway", self.gateway_port)

    def start_auth_webhooks(self) -> None:
        """Points the database's auth triggers at this gateway (the vault secrets
        webhook_secret and gateway_url, migration 20261201000000) and runs a pg_net worker
        (scripts/pgnet_worker.py) that delivers what they queue."""
        with psycopg.connect(self.db, autocommit=True) as conn:
            for value, name in ((self.webhook_secret, "webhook_secret"),
                                (f"http://127.0.0.1:{self.gateway_port}", "gateway_url")):
                conn.execute("select vault.create_secret(%s, %s, 'fleet')", [value, name])
        self._spawn("pgnet-worker", [sys.executable, REPO / "scripts" / "pgnet_worker.py"], {
            "PGNET_DATABASE_URL": self.db, "PGNET_POLL_INTERVAL": "0.2", "PYTHONUNBUFFERED": "1",
        })

    def url(self, service: str, path: str) -> str:
        port = {"api-gateway": self.gateway_port, "media-service": self.media_port,
                "message-consumer": self.consumer_port, "objectstore": self.store_port}[service]
        return f"http://127.0.0.1:{port}{path}"

    def _healthy(self, port: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def wait_healthy(self, name: str, port: int) -> None:
        self.wait(lambda: self._healthy(port), bool, f"{name} healthy", timeout=60)

    # ---------------------------------------------------------------- processors

    def start_processors(self, environ: dict[str, str]) -> None:
        """The SQL files as one job (as sql_runner.main() submits them) and each PyFlink job,
        on the mini-cluster of this Python process, with `environ` (ns.environ(...))."""
        if self.sql_files:
            started = time.monotonic()
            # parallelism 1 as on the session cluster (the mini-cluster defaults to one per core)
            config = {**sql_runner.flink_configuration(environ), "parallelism.default": "1"}
            t_env = sql_runner.create_table_environment(config)
            for statement in sql_runner.builtin_ddl(environ):
                t_env.execute_sql(statement)
            plan = sql_runner.plan_files([str(SQL_DIR / f) for f in self.sql_files], environ)
            self.jobs.append(ks.RunningJob(sql_runner.submit(t_env, plan)))
            self.submitted["sql"] = time.monotonic() - started
        for job in self.py_jobs:
            started = time.monotonic()
            # the job's own overrides (in production: the saga steps' at-least-once sinks)
            job_env = ks.job_environ(job.job_name, environ)
            _, t_env = common.create_environments(
                f"fleet-{job.name}", environ=job_env, extra_config=runtime.TEST_CONFIG)
            common.execute_ddl(t_env, job.module.table_ddl(job_env))
            self.jobs.append(ks.running(job.build(t_env, job_env)))
            self.submitted[job.name] = time.monotonic() - started

    # ---------------------------------------------------------------- waiting

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited ({process.returncode}); log: {self.log(name)}"
        for job in self.jobs:
            job.check_alive()

    def wait(self, observe, done, what: str, timeout: float = ks.RESULT_TIMEOUT):
        """Polls observe() until done(value); fails when a part died (check_alive) or after
        `timeout` s (a deadline for a result, not a timing assertion), naming the logs."""
        try:
            return ks.wait_for(self, observe, done, what, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n(fleet logs in {self.tmp})") from None

    def query(self, sql: str, *params) -> list[tuple]:
        """Rows of a query on the run's database, as its owner (RLS does not apply)."""
        with psycopg.connect(self.db, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        for job in self.jobs:
            # a failed job is reported by the test itself; stopping goes on regardless
            with contextlib.suppress(Exception):
                job.cancel()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def objects(self) -> list[str]:
        """The keys the object store holds (s3s-fs keeps each object as a file under
        <root>/<bucket>/; its metadata files live beside the bucket, not in it)."""
        bucket = self.store_root / BUCKET
        return sorted(str(p.relative_to(bucket)) for p in bucket.rglob("*")
                      if p.is_file() and not p.name.startswith("."))
