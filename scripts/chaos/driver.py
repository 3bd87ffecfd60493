"""`./taskw chaos`: the platform under a steady load while its parts are SIGKILLed and restarted,
then an audit of every effect (docs/reliability.md, "Chaos").

    python -m scripts.chaos [--duration SECONDS] [--profile production|development] [--no-record]
                            [--label LABEL] [--keep]

1. Starts a private copy of everything on free loopback ports (the shared stack is never
   touched): a Kafka node, a PostgreSQL cluster with the Supabase schema, a schema registry,
   local-objectstore, the three Rust services (the debug binaries of $CARGO_TARGET_DIR/debug,
   default target/debug) and the processors in two processes of their own (the SQL job alone
   in one, so it can be killed; scripts/chaos/flink_job.py). In the profile of --profile
   (scripts/stack/profile.sh; default production, as deployed: SASL_SSL with every part as its
   own Kafka user under exactly the grants of scripts/infra/kafka-acls.txt, registry auth,
   Postgres over TLS as the services' roles, exactly-once Flink sinks except the saga steps').
   The run has the broker to itself, so its topics, groups and transactional ids carry the
   deployed names (a Kafka namespace without suffix), which is what lets every part use its
   own user and grants.
2. Starts the load (scripts/chaos/load.py) and waits until messages and uploads have effects.
3. For `--duration` seconds, and at least until every target was killed once: SIGKILLs the next
   target of TARGETS, restarts it `--down` seconds later and measures how long after the
   restart effects flow again (every kind of request sent after the restart has an effect);
   `--gap` seconds after that, the next target.
4. Stops the load, waits until every acknowledged request has its complete effect (bounded:
   the uploads' TTL and the move saga's retries), then audits (scripts/chaos/audit.py).
5. Prints the tables, records them in docs/reliability.md (unless --no-record) and exits 1 when
   anything was lost, duplicated, stuck or unexplained, a recovery took longer than 60 s, or a
   process exited without being killed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from scripts.chaos import audit as audit_rules
from scripts.chaos import report
from scripts.chaos.load import Load, Watcher, parse_payload, seed_users
from scripts.chaos.model import (
    DELETE,
    DOWNLOAD,
    MESSAGE,
    UPLOAD,
    DeadLetter,
    Fault,
    LedgerRow,
    MediaRow,
    Notification,
    Snapshot,
)
from scripts.chaos.procs import install_cleanup, stop_all
from scripts.chaos.stack import PROFILES, PrivateStack

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug"
BINARIES = ("api-gateway", "media-service", "message-consumer", "local-objectstore")
#: The rotation of faults: each restart is measured before the next kill.
TARGETS = ("api-gateway", "message-consumer", "broker", "objectstore", "media-service", "postgres", "flink-sql")

#: Saga settings of the run, chosen so that every upload reaches its outcome within the drain:
#: URLs valid 45 s, the TTL expires an unused one 15 s later, the move saga retries every 10 s.
UPLOAD_URL_SECONDS, TTL_GRACE_SECONDS, MOVE_TIMEOUT_SECONDS = 45, 15, 10
CHECKPOINT_INTERVAL_MS = 3000
WARMUP_TIMEOUT = 300.0
DRAIN_TIMEOUT = 240.0
#: After the last effect, the run waits this long for late duplicates before the final audit.
SETTLE_SECONDS = 10.0
RICH_USERS, RICH_CREDITS, LEAN_CREDITS = 6, 100_000, 3
#: Disk a run needs at most (the database cluster is ~40 MiB, the rest a few MiB each).
MIN_FREE_MIB = 150


def say(started: float, message: str) -> None:
    print(f"[chaos {time.monotonic() - started:7.1f} s] {message}", flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./taskw chaos --", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0,
                        help="seconds of load with faults (default 120); the run goes on until every target was killed once")
    parser.add_argument("--profile", choices=PROFILES, default="production",
                        help="the platform's settings (scripts/stack/profile.sh): production (default; TLS, SASL, "
                             "ACLs, registry auth, the services' Postgres roles, exactly-once sinks) or development")
    parser.add_argument("--down", type=float, default=3.0, help="seconds a killed part stays down (default 3)")
    parser.add_argument("--gap", type=float, default=5.0, help="seconds between a recovery and the next kill (default 5)")
    parser.add_argument("--label", help="row label in docs/reliability.md (default: '<N>-minute run')")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "reliability.md",
                        help="the document whose chaos tables the run updates (default docs/reliability.md)")
    parser.add_argument("--no-record", dest="record", action="store_false", help="do not update the document")
    parser.add_argument("--workdir", type=Path, help="run directory (default: a new /tmp/chaos-*)")
    parser.add_argument("--keep", action="store_true", help="keep the data directories (logs are always kept)")
    parser.add_argument("--seed", type=int, default=1, help="the load's random seed")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated rotation of targets, for diagnosis (default: all, {','.join(TARGETS)})")
    args = parser.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown or not args.targets:
        parser.error(f"unknown targets {sorted(unknown)} (known: {', '.join(TARGETS)})")
    return args


# ------------------------------------------------------------------------------------ snapshot


def snapshot(db: str, fleet, dead_letter_topics: list[str] | None) -> Snapshot:
    with psycopg.connect(db, autocommit=True, connect_timeout=5) as conn:
        notifications = [Notification(r[0], r[1], r[2], parse_payload(r[3]), r[4], float(r[5])) for r in conn.execute(
            "select id, user_id, event_type, payload, idempotency_key, extract(epoch from created_at)"
            " from public.user_notifications order by id")]
        ledger = [LedgerRow(r[0], r[1], r[2], r[3], r[4], r[5], float(r[6])) for r in conn.execute(
            "select id, user_id, amount, event_type, description, idempotency_key, extract(epoch from created_at)"
            " from public.credit_ledger order by id")]
        balances = {u: int(b) for u, b in conn.execute("select user_id, balance from public.user_credit_balances")}
        media = [MediaRow(*r) for r in conn.execute(
            "select id, user_id, file_path, status from public.media_files order by id")]
    bucket = fleet.store_root / "media-uploads"
    objects = {key: hashlib.sha256((bucket / key).read_bytes()).hexdigest() for key in fleet.objects()}
    letters = dead_letters(fleet, dead_letter_topics) if dead_letter_topics else []
    return Snapshot(notifications, ledger, balances, media, objects, letters)


def dead_letters(fleet, bases: list[str]) -> list[DeadLetter]:
    """Every record of the dead-letter topics, decoded by its writer's schema when it is
    Confluent-framed Avro (the consume loops copy the original record, so its schema is the
    source topic's)."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from pyflink_jobs.tests import kafka_stack as ks

    decode = AvroDeserializer(fleet.ns.registry)
    found = []
    for base in bases:
        topic = fleet.ns.topic(base)
        consumer = Consumer(ks.kafka_config({"group.id": f"chaos-audit-{uuid.uuid4().hex[:8]}",
                                             "enable.auto.commit": False, "isolation.level": "read_committed"}))
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, 0, low)])
            while True:
                message = consumer.poll(5)
                if message is None or message.error():
                    break
                headers = {k: (v or b"").decode("utf-8", "replace") for k, v in (message.headers() or [])}
                value = None
                raw = message.value() or b""
                if raw[:1] == b"\0":
                    source = headers.get("dlq.source_topic", topic)
                    try:
                        value = decode(raw, SerializationContext(source, MessageField.VALUE))
                    except Exception as error:  # noqa: BLE001  (reported as undecodable)
                        headers["chaos.decode_error"] = str(error)
                found.append(DeadLetter(base, message.offset(), headers, value))
                if message.offset() >= high - 1:
                    break
        finally:
            consumer.close()
    return found


# ------------------------------------------------------------------------------------ faults


class Injector:
    def __init__(self, stack: PrivateStack, fleet, sql_job: str) -> None:
        self.stack, self.fleet, self.sql_job = stack, fleet, sql_job

    def process(self, target: str):
        if target == "broker":
            return self.stack.kafka
        if target == "postgres":
            return self.stack.postgres
        if target == "flink-sql":
            return self.fleet.managed[self.sql_job]
        return self.fleet.managed[target]

    def kill(self, target: str) -> None:
        self.process(target).kill()

    def restart(self, target: str) -> None:
        process = self.process(target)
        process.start()
        if target not in ("broker", "postgres", "flink-sql"):
            self.fleet.processes[target] = process.popen


def measure(load, since: float, window: float) -> tuple[float | None, dict[str, float | None]]:
    """Seconds from `since` until every kind of request sent after it has an effect (the
    largest of the kinds' first effects), or None when that does not happen within `window`.
    Messages and uploads are sent all the time, so they must always be among the kinds."""
    deadline = since + window
    while True:
        sent, effects = load.first_effects(since)
        if {MESSAGE, UPLOAD} <= sent and sent <= set(effects):
            return max(effects.values()), {k: effects.get(k) for k in (MESSAGE, UPLOAD, DOWNLOAD, DELETE) if k in sent}
        if time.time() > deadline:
            return None, {k: effects.get(k) for k in (MESSAGE, UPLOAD, DOWNLOAD, DELETE) if k in sent}
        time.sleep(1)


def unplanned_exits(stack: PrivateStack, fleet, exits: list[str], started: float) -> None:
    """A process that died without being killed is a finding; it is restarted (as a
    supervisor would) so that the run can go on, and the run fails at the end."""
    for process in [*stack.processes(), *fleet.managed.values()]:
        if process.popen is not None and not process.alive():
            exits.append(f"{process.name} exited on its own with {process.popen.returncode} (log {process.log})")
            say(started, f"UNPLANNED EXIT: {exits[-1]}; restarting it")
            process.start()
            if process.name in fleet.processes:
                fleet.processes[process.name] = process.popen


# ------------------------------------------------------------------------------------ run


class Run:
    """One chaos run, phase by phase (see the module's docs)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.monotonic()
        self.faults: list[Fault] = []
        self.exits: list[str] = []

    def say(self, message: str) -> None:
        say(self.started, message)

    def start_platform(self, workdir: Path) -> None:
        self.workdir = workdir
        self.say(f"run directory {workdir} (logs: {workdir}/logs, {workdir}/fleet)")
        self.stack = PrivateStack(workdir, self.args.profile)
        # pyflink_jobs/tests/kafka_stack.py (and so the Fleet and the stack's own clients) take
        # the broker, registry and profile from here when they are imported, which is why
        # they are imported only now; the processes the run starts inherit them
        os.environ.update(self.stack.addresses())
        self.stack.start()
        self.say(f"private stack up ({self.args.profile} profile): Kafka {self.stack.brokers}, "
                 f"registry {self.stack.registry_url}, {self.stack.database_url}")
        sys.path.insert(0, str(REPO / "tests" / "e2e"))
        import e2elib  # the e2e suites' HS256 tokens and JWT secret

        from pyflink_jobs.tests import kafka_stack as ks
        from scripts.chaos.chaos_fleet import SQL_JOB, ChaosFleet

        self.e2elib, self.sql_job = e2elib, SQL_JOB
        # the broker is the run's own: the deployed names, so each part connects as its own
        # user under the deployed grants (KafkaNamespace.kafka_user)
        ns = ks.KafkaNamespace(suffix="")
        self.fleet = ChaosFleet(ns, self.stack.database_url, workdir / "fleet", jwt_secret=e2elib.SECRET,
                                media={"upload_url_expiry_secs": UPLOAD_URL_SECONDS})
        self.fleet.tmp.mkdir()
        topics = self.fleet.topics()
        ns.create(*topics)
        self.dead_letter_topics = [t for t in topics if "dead-letter" in t]
        self.fleet.start_store()
        self.fleet.start_services()
        self.fleet.start_gateway()
        self.say("services up; starting the processors")
        self.fleet.start_flink(ns.environ(
            **ks.db_environ(self.stack.database_url), FLINK_CHECKPOINT_INTERVAL_MS=str(CHECKPOINT_INTERVAL_MS),
            MOVE_TIMEOUT_SECONDS=str(MOVE_TIMEOUT_SECONDS), UPLOAD_TTL_GRACE_SECONDS=str(TTL_GRACE_SECONDS)))
        for name in self.fleet.managed:
            if name.startswith("flink-"):
                self.fleet.wait(lambda n=name: self.fleet.flink_submitted(n), bool, f"{name} submitted",
                                timeout=WARMUP_TIMEOUT)
        self.say("processors submitted")

    def start_load(self) -> None:
        db = self.stack.database_url
        users, lean, self.seeds = seed_users(db, RICH_USERS, RICH_CREDITS, LEAN_CREDITS)
        emails = {u.id: u.email for u in [*users, lean]}
        self.watcher = Watcher(db)
        self.watcher.start()

        def token(user_id: str) -> str:
            now = int(time.time())
            return self.e2elib.hs256({"sub": user_id, "email": emails[user_id], "role": "authenticated",
                                      "aud": "authenticated", "iat": now, "exp": now + 7200})

        self.load = Load(self.fleet.url("api-gateway", ""), token, users, lean, self.watcher,
                         uuid.uuid4().hex[:6], seed=self.args.seed)
        self.load_started = time.time()
        self.load.start()
        warm, _ = measure(self.load, self.load_started, WARMUP_TIMEOUT)
        if warm is None:
            raise RuntimeError(f"no message and upload effects within {WARMUP_TIMEOUT:.0f} s of load; "
                               f"logs in {self.workdir}")
        self.say(f"warm: first effects after {warm:.1f} s of load; faults begin")

    def inject(self) -> None:
        injector = Injector(self.stack, self.fleet, self.sql_job)
        targets = self.args.targets
        self.chaos_started = time.time()
        index = 0
        while time.time() - self.chaos_started < self.args.duration or index < len(targets):
            target = targets[index % len(targets)]
            index += 1
            unplanned_exits(self.stack, self.fleet, self.exits, self.started)
            fault = Fault(target, time.time())
            self.say(f"SIGKILL {target} (pid {injector.process(target).pid})")
            injector.kill(target)
            time.sleep(self.args.down)
            injector.restart(target)
            fault.restarted = time.time()
            self.faults.append(fault)
            fault.recovery, fault.per_kind = measure(self.load, fault.restarted, audit_rules.MEASURE_WINDOW)
            kinds = ", ".join(f"{k} {report.seconds(v)}" for k, v in fault.per_kind.items())
            self.say(f"{target} restarted; effects again after {report.recovery_text(fault)} ({kinds})")
            unplanned_exits(self.stack, self.fleet, self.exits, self.started)
            time.sleep(self.args.gap)
        self.load_seconds = time.time() - self.load_started
        self.say(f"faults done ({len(self.faults)} injected); stopping the load")

    def drain_and_audit(self) -> audit_rules.AuditResult:
        load, db = self.load, self.stack.database_url
        load.stop(timeout=UPLOAD_URL_SECONDS + 15)
        # every acknowledged request gets its complete effect, or the deadline passes
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            try:
                left = audit_rules.pending(load.requests, snapshot(db, self.fleet, None), self.seeds, self.faults)
            except psycopg.Error as error:
                left = -1
                self.say(f"drain: database not answering ({error})")
            if left == 0 or time.monotonic() > deadline:
                break
            time.sleep(3)
        self.say(f"drained ({left} acknowledged requests without their complete effect); "
                 f"settling {SETTLE_SECONDS:.0f} s")
        # downloads whose URL came after the client stopped waiting: it must still serve the file
        for request in load.requests:
            if request.kind == DOWNLOAD and request.acked and request.fetched is None:
                ready = self.watcher.answer(request.request_id or "", "media.download_ready")
                if ready is not None:
                    load.fetch(request, ready.payload["download_url"], seconds=15)
        time.sleep(SETTLE_SECONDS)
        unplanned_exits(self.stack, self.fleet, self.exits, self.started)
        final = snapshot(db, self.fleet, self.dead_letter_topics)
        return audit_rules.audit(load.requests, final, self.seeds, self.faults)

    def report(self, result: audit_rules.AuditResult) -> bool:
        """Prints the tables and every anomaly, records the run; True when it passed."""
        args, load = self.args, self.load
        slow = audit_rules.slow_recoveries(self.faults)
        passed = result.ok() and not slow and not self.exits
        label = args.label or (f"{args.duration / 60:g}-minute run" if args.duration >= 60
                               else f"{args.duration:g}-second run")
        if not args.label and args.profile != "production":
            label += f", {args.profile} profile"
        counts = load.counts()
        summary = report.summary_row(label, dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
                                     self.load_seconds, counts, self.faults, result, passed)
        print()
        print(report.table(report.SUMMARY_HEADER, [summary]))
        print()
        print(report.faults_table(self.faults, self.chaos_started))
        print()
        for kind in (UPLOAD, DOWNLOAD, DELETE, MESSAGE):
            print(f"{kind} outcomes (acknowledged): {dict(result.outcomes(kind))}")
        print(f"requests sent: {counts}; ticks skipped with every saga slot busy: {load.skipped}; "
              f"not acknowledged: {sum(1 for r in load.requests if not r.acked)}")
        anomalies = [v for v in result.verdicts if v.verdict != audit_rules.OK or v.explained]
        shown = 50
        for verdict in anomalies[:shown]:
            r = verdict.request
            print(f"  {verdict.verdict.upper()} {r.kind} {r.key} (acked={r.acked}, put={r.put}): "
                  f"{verdict.outcome} {verdict.detail}"
                  f"{' [explained: ' + verdict.explained + ']' if verdict.explained else ''}")
        if len(anomalies) > shown:
            print(f"  ... and {len(anomalies) - shown} more")
        for row in result.unexplained_rows[:shown]:
            print(f"  UNEXPLAINED {row}")
        for problem in result.balance_problems:
            print(f"  BALANCE {problem}")
        for letter, why in result.dead_letters:
            print(f"  DEAD LETTER {letter.topic}@{letter.offset}: {why or 'UNEXPLAINED'}"
                  f"{'' if why else f' {letter.headers} {letter.value}'}")
        for exit_ in self.exits:
            print(f"  UNPLANNED EXIT {exit_}")
        for fault in slow:
            print(f"  SLOW RECOVERY {fault.target}: {report.recovery_text(fault)} "
                  f"(limit {audit_rules.RECOVERY_LIMIT:.0f} s)")
        if args.record:
            report.record(args.doc, label, summary, report.recovery_rows(label, self.faults))
            print(f"recorded as '{label}' in {args.doc}")
        print(f"chaos: {'passed' if passed else 'FAILED'} in {time.monotonic() - self.started:.0f} s; "
              f"logs in {self.workdir}")
        return passed

    def stop(self, passed: bool) -> None:
        self.watcher.stopping.set()
        self.fleet.stop()
        self.stack.stop()
        if passed and not self.args.keep:
            # the logs stay; the data of a passed run is not needed
            for data in (self.stack.root / "kafka", self.stack.root / "postgres", self.fleet.store_root,
                         self.fleet.tmp / "checkpoints"):
                shutil.rmtree(data, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    missing = [str(TARGET / b) for b in BINARIES if not (TARGET / b).exists()]
    if missing:
        print(f"chaos: missing {', '.join(missing)}: build the services (./taskw rust:build) or set "
              "CARGO_TARGET_DIR", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"chaos-{time.strftime('%Y%m%d-%H%M%S')}-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    # a full disk fails the broker, the database or a checkpoint in ways that look like findings
    free = shutil.disk_usage(workdir).free // 2**20
    if free < MIN_FREE_MIB:
        print(f"chaos: only {free} MiB free under {workdir}; a run needs about {MIN_FREE_MIB} MiB "
              "(database, broker log, checkpoints)", file=sys.stderr)
        return 2
    install_cleanup()
    run = Run(args)
    try:
        run.start_platform(workdir)
        run.start_load()
        run.inject()
        passed = run.report(run.drain_and_audit())
        run.stop(passed)
        return 0 if passed else 1
    finally:
        stop_all()
        # the Flink processes' temporary files (chaos_fleet.start_flink) are no evidence
        for tmp in (workdir / "fleet").glob("*-tmp"):
            shutil.rmtree(tmp, ignore_errors=True)
