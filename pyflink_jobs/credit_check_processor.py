"""Credit check: approves an upload intent by deducting one credit, or rejects it (spec 4.2).

internal.media.upload.intent -> keyed by user_id -> CreditCheck -> public.media.upload.approved
(the intent's six fields, request_time kept) or public.media.upload.rejected (reason
insufficient_credits or internal_error, rejected_time = now).

The deduction is one ledger row (-1, credit.upload_deducted, "Upload: <file_name>") with the
idempotency key credit.upload_deducted:<request_id>, written by PostgresLedger in one
transaction that

1. takes a transaction-scoped advisory lock for the user, so two deductions of one user never
   run side by side (the balance check and the insert are otherwise a race under READ
   COMMITTED, whatever the parallelism);
2. inserts the row only if the balance is at least 1, on conflict on the key doing nothing;
3. writes the credit.balance_changed notification of the deduction (spec 13.9) with the key
   credit.balance_changed:upload_deducted:<request_id>, in the same transaction.

If no row was inserted, the key tells a short balance from an intent that was already
deducted: a redelivered intent finds its own row and is approved again with the same fields,
never deducted twice.

Before inserting, the transaction claims the original credit check's keyless row of the intent,
if there is one (cutover.claim_pre_cutover_deduction, migration
20261130000100_pre_cutover_deductions.sql): an intent the original job handled before a
cut-over and this job reads again then finds its key on that row and is not charged twice.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from pyflink_jobs import common

log = logging.getLogger("credit_check_processor")

INSUFFICIENT_CREDITS = "insufficient_credits"
INTERNAL_ERROR = "internal_error"
#: Database attempts per intent before it is rejected with internal_error (CREDIT_CHECK_DB_ATTEMPTS).
DEFAULT_ATTEMPTS = 6
RETRY_DELAY_CAP_SECONDS = 5.0

#: One output row for both outcomes (routed by `outcome`); unused fields are "".
OUTPUT = common.columns(
    "outcome, user_id, file_name, media_type, file_size BIGINT, request_id, request_time,"
    " reason, rejected_time"
)

DB_DEFAULTS = {
    "SUPABASE_DB_HOST": "host.docker.internal",
    "SUPABASE_DB_PORT": "54322",
    "SUPABASE_DB_NAME": "postgres",
    "SUPABASE_DB_USER": "postgres",
    "SUPABASE_DB_PASSWORD": "postgres",
}


def deduction_key(request_id: str) -> str:
    return f"credit.upload_deducted:{request_id}"


def notification_key(request_id: str) -> str:
    return f"credit.balance_changed:upload_deducted:{request_id}"


@dataclass(frozen=True)
class Deduction:
    """approved: the intent holds a deduction (new, or from an earlier delivery);
    duplicate: it was deducted by an earlier delivery."""

    approved: bool
    duplicate: bool = False


class Ledger(Protocol):
    def deduct(
        self, user_id: str, file_name: str, request_id: str, event_time: str, request_time: str = ""
    ) -> Deduction: ...
    def reset(self) -> None: ...


class CreditCheck:
    """Decides one intent (a dict with the UploadIntent fields)."""

    def __init__(
        self,
        ledger: Ledger,
        now_iso: Callable[[], str] = common.utc_now_iso,
        attempts: int = DEFAULT_ATTEMPTS,
        retry_delay_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ledger = ledger
        self.now_iso = now_iso
        self.attempts = max(1, attempts)
        self.retry_delay_seconds = retry_delay_seconds
        self.sleep = sleep

    def delay(self, attempt: int) -> float:
        """Pause after failed attempt `attempt` (1-based): doubling from the first delay, at most
        RETRY_DELAY_CAP_SECONDS. With the defaults the attempts span about 12 s, which rides out
        a database restart (a chaos run's take 2-3 s) instead of telling the user their upload
        failed; a longer outage still answers internal_error rather than holding the job."""
        return min(self.retry_delay_seconds * 2 ** (attempt - 1), RETRY_DELAY_CAP_SECONDS)

    def process(self, intent: Mapping[str, Any]) -> dict:
        user_id = intent.get("user_id") or ""
        request_id = intent.get("request_id") or ""
        if not user_id or not request_id:
            log.error("intent without user_id or request_id: %r", dict(intent))
            return self._rejected(intent, INTERNAL_ERROR)
        for attempt in range(1, self.attempts + 1):
            try:
                result = self.ledger.deduct(
                    user_id, intent.get("file_name") or "", request_id, self.now_iso(),
                    intent.get("request_time") or "",
                )
                break
            except Exception:  # database errors of any kind: reconnect and try again
                log.exception("credit check of %s failed (attempt %d/%d)", request_id, attempt, self.attempts)
                self.ledger.reset()
                if attempt == self.attempts:
                    return self._rejected(intent, INTERNAL_ERROR)
                self.sleep(self.delay(attempt))
        if result.approved:
            return {
                "outcome": "approved",
                **{c.name: intent.get(c.name) for c in common.UPLOAD_INTENT},
                "reason": "",
                "rejected_time": "",
            }
        return self._rejected(intent, INSUFFICIENT_CREDITS)

    def _rejected(self, intent: Mapping[str, Any], reason: str) -> dict:
        return {
            "outcome": "rejected",
            **{c.name: intent.get(c.name) for c in common.UPLOAD_INTENT},
            "request_time": "",
            "reason": reason,
            "rejected_time": self.now_iso(),
        }


# The one per-user credit lock: the api-gateway's legacy upload-url takes the same one
# (CREDIT_LOCK_PREFIX in crates/api-gateway/src/credits.rs), so a user's last credit is spent once
# whichever path asks; tests/e2e/test_credit_lock.py holds both to it. Change them together.
LOCK_SQL = "select pg_advisory_xact_lock(hashtextextended('credit_ledger:' || %(user_id)s, 0))"

DEDUCT_SQL = """
with deduction as (
  insert into public.credit_ledger
    (user_id, amount, event_type, description, event_time, idempotency_key)
  select %(user_id)s, -1, 'credit.upload_deducted', 'Upload: ' || %(file_name)s,
         %(event_time)s, %(key)s
   where (select coalesce(sum(amount), 0) from public.credit_ledger
           where user_id = %(user_id)s) >= 1
  on conflict (idempotency_key) do nothing
  returning id
), notification as (
  insert into public.user_notifications
    (user_id, event_type, payload, event_time, idempotency_key)
  select %(user_id)s, 'credit.balance_changed', %(payload)s, %(event_time)s, %(notification_key)s
    from deduction
  on conflict (idempotency_key) do nothing
)
select (select id from deduction),
       (select id from public.credit_ledger where idempotency_key = %(key)s)
"""


CLAIM_SQL = (
    "select cutover.claim_pre_cutover_deduction(%(user_id)s, %(file_name)s, %(request_time)s, %(key)s)"
)


def db_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    return {name: environ.get(name, default) for name, default in DB_DEFAULTS.items()}


class PostgresLedger:
    """The credit ledger in Postgres (psycopg 3), one connection, opened lazily."""

    def __init__(self, settings: Mapping[str, str] | None = None, conninfo: str | None = None) -> None:
        self.settings = dict(settings or db_settings())
        self.conninfo = conninfo
        self.conn = None
        # False once the database turned out not to have the claim function (the cut-over
        # migration is not applied) or not to let this role run it.
        self.claims = True

    def connect(self):
        import psycopg

        if self.conn is None or self.conn.closed:
            if self.conninfo is not None:
                self.conn = psycopg.connect(self.conninfo, connect_timeout=10)
            else:
                s = self.settings
                self.conn = psycopg.connect(
                    host=s["SUPABASE_DB_HOST"], port=s["SUPABASE_DB_PORT"],
                    dbname=s["SUPABASE_DB_NAME"], user=s["SUPABASE_DB_USER"],
                    password=s["SUPABASE_DB_PASSWORD"], connect_timeout=10,
                    keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=5,
                    application_name="credit-check-processor",
                )
        return self.conn

    def deduct(
        self, user_id: str, file_name: str, request_id: str, event_time: str, request_time: str = ""
    ) -> Deduction:
        conn = self.connect()
        params = {
            "user_id": user_id,
            "file_name": file_name,
            "event_time": event_time,
            "request_time": request_time,
            "key": deduction_key(request_id),
            "notification_key": notification_key(request_id),
            "payload": json.dumps(
                {"amount": -1, "reason": "upload_deducted", "file_name": file_name,
                 "request_id": request_id},
                separators=(",", ":"),
            ),
        }
        with conn.transaction():
            conn.execute(LOCK_SQL, params)
            if request_time:
                self._claim(conn, params)
            inserted, existing = conn.execute(DEDUCT_SQL, params).fetchone()
        if inserted is not None:
            return Deduction(approved=True)
        return Deduction(approved=existing is not None, duplicate=existing is not None)

    def _claim(self, conn, params: Mapping[str, str]) -> None:
        """Claims the original deduction of the intent (see the module docs). Without the
        function the job still works, only without that protection: it says so once."""
        import psycopg

        if not self.claims:
            return
        try:
            with conn.transaction():  # a savepoint: a failure here leaves the deduction intact
                conn.execute(CLAIM_SQL, params)
        except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName,
                psycopg.errors.InsufficientPrivilege) as error:
            self.claims = False
            log.error("cannot claim original deductions (%s): intents the original credit check"
                      " handled before a cut-over may be charged again", error)

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # already broken
                pass
            self.conn = None


# --------------------------------------------------------------------------------------------
# PyFlink adapter

try:
    from pyflink.datastream.functions import MapFunction
except ImportError:  # the processing classes above work without PyFlink
    MapFunction = object  # type: ignore[misc,assignment]


class CreditCheckAdapter(MapFunction):
    def __init__(self, settings: Mapping[str, str], conninfo: str | None = None, attempts: int = DEFAULT_ATTEMPTS) -> None:
        self.settings = dict(settings)
        self.conninfo = conninfo
        self.attempts = attempts
        self.ledger: PostgresLedger | None = None
        self.logic: CreditCheck | None = None

    def open(self, runtime_context) -> None:
        self.ledger = PostgresLedger(self.settings, self.conninfo)
        self.logic = CreditCheck(self.ledger, attempts=self.attempts)

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()

    def map(self, value):
        intent = common.row_to_dict(value, common.UPLOAD_INTENT)
        return common.to_row(self.logic.process(intent), OUTPUT)


# --------------------------------------------------------------------------------------------
# Job

SOURCES = {
    "upload_intent_source": (
        "internal.media.upload.intent", "flink-credit-check-consumer", common.UPLOAD_INTENT,
    ),
}
SINKS = {
    "upload_approved_sink": ("public.media.upload.approved", common.UPLOAD_APPROVED, "approved"),
    "upload_rejected_sink": ("public.media.upload.rejected", common.UPLOAD_REJECTED, "rejected"),
}


def table_ddl(environ: Mapping[str, str] | None = None) -> list[str]:
    return [
        common.kafka_source_ddl(name, topic, group, cols, environ)
        for name, (topic, group, cols) in SOURCES.items()
    ] + [
        common.kafka_sink_ddl(name, topic, cols, environ)
        for name, (topic, cols, _) in SINKS.items()
    ]


def build(t_env, settings: Mapping[str, str], conninfo: str | None = None, attempts: int = DEFAULT_ATTEMPTS):
    from pyflink.common import Types

    intents = t_env.to_data_stream(t_env.from_path("upload_intent_source"))
    results = (
        intents.key_by(lambda r: r[0], key_type=Types.STRING())  # user_id: per-user order
        .map(CreditCheckAdapter(settings, conninfo, attempts), output_type=common.row_type(OUTPUT))
        .name("credit-check")
    )
    t_env.create_temporary_view("credit_check_results", t_env.from_data_stream(results))
    statement_set = t_env.create_statement_set()
    for sink, (_, cols, outcome) in SINKS.items():
        names = ", ".join(f"`{c.name}`" for c in cols)
        statement_set.add_insert_sql(
            f"INSERT INTO {sink} SELECT {names} FROM credit_check_results"
            f" WHERE outcome = '{outcome}'"
        )
    return statement_set


def main(extra_config: Mapping[str, str] | None = None) -> int:
    """Submits the job; `extra_config` adds Flink settings (scripts/stack/flink_launch.py
    passes a savepoint to resume from)."""
    logging.basicConfig(level=logging.INFO)
    try:
        ddl = table_ddl()
        attempts = common.int_env("CREDIT_CHECK_DB_ATTEMPTS", DEFAULT_ATTEMPTS)
    except common.ConfigError as error:
        print(f"credit_check_processor: {error}", file=sys.stderr)
        return 1
    _, t_env = common.create_environments("credit-check-processor", extra_config=extra_config)
    common.execute_ddl(t_env, ddl)
    common.wait_unless_detached(t_env, build(t_env, db_settings(), attempts=max(1, attempts)).execute())
    return 0


if __name__ == "__main__":
    sys.exit(main())
