"""The services' least-privilege roles (migration 20261201000300_service_roles.sql):
api_gateway, message_consumer and media_service are ordinary roles, hold exactly the
privileges and RLS policies their statements need, run every statement their service runs
(copied verbatim from crates/*/src; a test fails when the Rust text changes or a statement is
added), and are refused everything else.

Each case runs in a transaction that is rolled back: fixture rows are written as postgres,
then `set local role <service>` and the statement, as the flink_writer tests do."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.numeric import Float8, Int2, Int8
from psycopg.types.string import StrDumper
from supabase_testlib import REPO_ROOT

ROLES = ("api_gateway", "message_consumer", "media_service")
CRATES = REPO_ROOT / "crates"
SERVICE_CRATES = ("api-gateway", "message-consumer", "media-service", "substrate")

USER = "0e0e0e0e-0000-4000-8000-000000000011"
OTHER = "0f0f0f0f-0000-4000-8000-000000000012"
T = "2026-12-01T00:00:00Z"
GO_TIME = "2026-11-30T10:00:00Z"
GO_PAYLOAD = '{"content":"from the Go fleet","timestamp":"2026-11-30T10:00:00Z"}'
ACTIVE_PATH = f"files/{USER}/1111/a.png"
DELETED_PATH = f"files/{USER}/2222/b.png"
ROUTE = "/api/v1/events/message"
# first_used of the seeded idempotency keys, in microseconds (what FIRST_USED_US computes)
SEEDED_FIRST_USED = "2020-01-01T00:00:00Z"
SEEDED_FIRST_USED_US = 1577836800000000

# ------------------------------------------------------------------------------------------
# the services' statements, verbatim ($n placeholders; {FIRST_USED_US} where format! puts it)

FIRST_USED_US = "(extract(epoch from first_used) * 1000000)::bigint"

CREDIT_LOCK = "select pg_advisory_xact_lock(hashtextextended($1 || $2, 0))"
CREDIT_BALANCE = "select coalesce(sum(amount), 0)::bigint from public.credit_ledger where user_id = $1"
CREDIT_DEDUCT = """insert into public.credit_ledger
                 (user_id, amount, event_type, description, event_time, idempotency_key)
             values ($1, -1, 'credit.upload_deducted', 'Upload: ' || $2, $3, $4)
             on conflict (idempotency_key) do nothing"""
CREDIT_NOTIFY = """insert into public.user_notifications
                     (user_id, event_type, payload, event_time, idempotency_key)
                 values ($1, 'credit.balance_changed', $2, $3, $4)
                 on conflict (idempotency_key) do nothing"""
KEY_CLAIM = """insert into gateway.idempotency_keys as k
                 (user_id, route, key, fingerprint, first_used, lease_until)
             values ($1, $2, $3, $4, clock_timestamp(), clock_timestamp() + make_interval(secs => $5))
             on conflict (user_id, route, key) do update set
                 fingerprint = excluded.fingerprint,
                 first_used = case when k.first_used < clock_timestamp() - make_interval(secs => $6)
                                   then excluded.first_used else k.first_used end,
                 lease_until = excluded.lease_until,
                 status = null,
                 body = null
             where k.first_used < clock_timestamp() - make_interval(secs => $6)
                or (k.status is null and k.lease_until < clock_timestamp()
                    and k.fingerprint = excluded.fingerprint)
             returning {FIRST_USED_US}"""
KEY_EXISTING = """select fingerprint, status, body::text from gateway.idempotency_keys
                 where user_id = $1 and route = $2 and key = $3"""
KEY_RECORD = """update gateway.idempotency_keys set status = $5, body = $6::jsonb
             where user_id = $1 and route = $2 and key = $3 and {FIRST_USED_US} = $4"""
KEY_RELEASE = """delete from gateway.idempotency_keys
             where user_id = $1 and route = $2 and key = $3 and status is null
               and {FIRST_USED_US} = $4"""
KEY_SWEEP = """delete from gateway.idempotency_keys
             where first_used < clock_timestamp() - make_interval(secs => $1)"""
NOTIFICATION_BATCH = """insert into public.user_notifications
             (user_id, event_type, payload, event_time, visibility, recipient_id, idempotency_key)
         select user_id, $1, payload, event_time, visibility, recipient_id, idempotency_key
         from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
              as batch(user_id, payload, event_time, visibility, recipient_id, idempotency_key)
         where not exists (
             select 1 from public.user_notifications as pre
              where pre.idempotency_key is null
                and pre.user_id = batch.user_id
                and pre.event_time = batch.event_time
                and pre.event_type = $1
                and pre.payload = batch.payload
                and pre.visibility = batch.visibility
                and pre.recipient_id is not distinct from batch.recipient_id)
         on conflict (idempotency_key) do nothing"""
READINESS = "select 1"
MEDIA_LOOKUP = """select file_name, media_type, file_size, status, deleted_by_request_id
             from public.media_files where user_id = $1 and file_path = $2"""
MEDIA_SOFT_DELETE = """update public.media_files
                set status = 'deleted', deleted_by_request_id = $3
              where user_id = $1 and file_path = $2 and status = 'active'"""

# where each text is copied from (relative to crates/)
SOURCES = {
    CREDIT_LOCK: "api-gateway/src/credits.rs",
    CREDIT_BALANCE: "api-gateway/src/credits.rs",
    CREDIT_DEDUCT: "api-gateway/src/credits.rs",
    CREDIT_NOTIFY: "api-gateway/src/credits.rs",
    KEY_CLAIM: "api-gateway/src/idempotency.rs",
    KEY_EXISTING: "api-gateway/src/idempotency.rs",
    KEY_RECORD: "api-gateway/src/idempotency.rs",
    KEY_RELEASE: "api-gateway/src/idempotency.rs",
    KEY_SWEEP: "api-gateway/src/idempotency.rs",
    NOTIFICATION_BATCH: "message-consumer/src/store.rs",
    READINESS: "substrate/src/health.rs",
    MEDIA_LOOKUP: "substrate/src/media/mod.rs",
    MEDIA_SOFT_DELETE: "substrate/src/media/mod.rs",
}


@dataclass(frozen=True)
class Run:
    """One execution of a service statement: the values sqlx binds, in order, and what the
    service must get back (rows for a query, the affected row count otherwise)."""

    name: str
    statement: str
    params: tuple[Any, ...]
    expect: Callable[[Any], bool]


def rows(expected: list[tuple]) -> Callable[[Any], bool]:
    return lambda got: got == expected


def count(expected: int) -> Callable[[Any], bool]:
    return lambda got: got == expected


def lookup_runs() -> list[Run]:
    return [
        Run("lookup an active file", MEDIA_LOOKUP, (USER, ACTIVE_PATH),
            rows([("a.png", "image/png", 10, "active", None)])),
        Run("lookup a deleted file", MEDIA_LOOKUP, (USER, DELETED_PATH),
            rows([("b.png", "image/png", 20, "deleted", "delete-0")])),
        Run("soft delete", MEDIA_SOFT_DELETE, (USER, ACTIVE_PATH, "delete-1"), count(1)),
        Run("soft delete again", MEDIA_SOFT_DELETE, (USER, DELETED_PATH, "delete-1"), count(0)),
    ]


RUNS = {
    "api_gateway": [
        Run("credit lock", CREDIT_LOCK, ("credit_ledger:", USER), lambda got: len(got) == 1),
        Run("balance", CREDIT_BALANCE, (USER,), rows([(2,)])),
        Run("deduct", CREDIT_DEDUCT, (USER, "a.png", T, "legacy_upload_deducted:req-1"), count(1)),
        Run("deduct redelivered", CREDIT_DEDUCT, (USER, "a.png", T, "legacy_upload_deducted:req-0"), count(0)),
        Run("deduction notification", CREDIT_NOTIFY,
            (USER, json.dumps({"amount": -1, "reason": "upload_deducted"}), T,
             "credit.balance_changed:legacy_upload_deducted:req-1"), count(1)),
        Run("deduction notification redelivered", CREDIT_NOTIFY,
            (USER, "{}", T, "credit.balance_changed:legacy_upload_deducted:req-0"), count(0)),
        *lookup_runs(),
        Run("claim a new key", KEY_CLAIM, (USER, ROUTE, "new", "fp", Float8(30.0), Float8(86400.0)),
            lambda got: len(got) == 1 and isinstance(got[0][0], int)),
        Run("claim an expired key", KEY_CLAIM, (USER, ROUTE, "done", "fp2", Float8(30.0), Float8(86400.0)),
            lambda got: len(got) == 1 and got[0][0] > SEEDED_FIRST_USED_US),
        Run("read a used key", KEY_EXISTING, (USER, ROUTE, "done"), rows([("fp", 202, '{"request_id": "r"}')])),
        Run("record an answer", KEY_RECORD,
            (USER, ROUTE, "running", Int8(SEEDED_FIRST_USED_US), Int2(202), '{"request_id": "r2"}'), count(1)),
        Run("release a key", KEY_RELEASE, (USER, ROUTE, "running", Int8(SEEDED_FIRST_USED_US)), count(1)),
        Run("sweep", KEY_SWEEP, (Float8(86400.0),), count(2)),
    ],
    "message_consumer": [
        Run("readiness", READINESS, (), rows([(1,)])),
        # a new direct message, the Go fleet's copy of a record (skipped by content), and a
        # redelivered record (skipped by key)
        Run("insert a batch", NOTIFICATION_BATCH, (
            "user.message",
            [USER, USER, USER],
            ['{"content":"hi"}', GO_PAYLOAD, '{"content":"keyed"}'],
            [T, GO_TIME, T],
            ["direct", "broadcast", "broadcast"],
            [OTHER, None, None],
            ["public.user.message.events:0:7", "public.user.message.events:0:2",
             "public.user.message.events:0:1"],
        ), count(1)),
    ],
    "media_service": [
        Run("readiness", READINESS, (), rows([(1,)])),
        *lookup_runs(),
    ],
}

# ------------------------------------------------------------------------------------------
# fixture rows, written as postgres

SEED = [
    (
        "insert into public.credit_ledger"
        " (user_id, amount, event_type, description, event_time, idempotency_key) values"
        " (%(user)s, 2, 'credit.signup_bonus', 'Signup bonus', %(t)s, 'credit.signup_bonus:' || %(user)s),"
        " (%(other)s, 5, 'credit.signup_bonus', 'Signup bonus', %(t)s, 'credit.signup_bonus:' || %(other)s),"
        " (%(other)s, -1, 'credit.upload_deducted', 'Upload: z.png', %(t)s, 'legacy_upload_deducted:req-0')"
    ),
    (
        "insert into public.user_notifications"
        " (user_id, event_type, payload, event_time, visibility, recipient_id, idempotency_key) values"
        " (%(user)s, 'user.message', %(go_payload)s, %(go_time)s, 'broadcast', null, null),"
        " (%(user)s, 'user.message', '{\"content\":\"keyed\"}', %(t)s, 'broadcast', null,"
        "  'public.user.message.events:0:1'),"
        " (%(user)s, 'identity.signup', '{}', %(t)s, 'broadcast', null, 'identity.signup:' || %(user)s),"
        " (%(other)s, 'credit.balance_changed', '{}', %(t)s, 'broadcast', null,"
        "  'credit.balance_changed:legacy_upload_deducted:req-0')"
    ),
    (
        "insert into public.media_files (user_id, file_name, file_path, file_size, media_type, status,"
        " upload_time, deleted_by_request_id) values"
        " (%(user)s, 'a.png', %(active)s, 10, 'image/png', 'active', %(t)s, null),"
        " (%(user)s, 'b.png', %(deleted)s, 20, 'image/png', 'deleted', %(t)s, 'delete-0')"
    ),
    (
        "insert into gateway.idempotency_keys"
        " (user_id, route, key, fingerprint, first_used, lease_until, status, body) values"
        " (%(user)s, %(route)s, 'running', 'fp', %(first_used)s::timestamptz, %(first_used)s::timestamptz + interval '30 s', null, null),"
        " (%(user)s, %(route)s, 'done', 'fp', %(first_used)s::timestamptz, %(first_used)s::timestamptz + interval '30 s', 202,"
        "  '{\"request_id\": \"r\"}')"
    ),
]
SEED_VALUES = {
    "user": USER, "other": OTHER, "t": T, "go_payload": GO_PAYLOAD, "go_time": GO_TIME,
    "active": ACTIVE_PATH, "deleted": DELETED_PATH, "route": ROUTE, "first_used": SEEDED_FIRST_USED,
}


@pytest.fixture(scope="module")
def conn(module_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(module_db, autocommit=True) as connection:
        # bind Python strings as text, as sqlx binds &str / String (psycopg's default is unknown)
        connection.adapters.register_dumper(str, StrDumper)
        yield connection


@pytest.fixture
def as_role(conn: psycopg.Connection) -> Iterator[Callable[[str], psycopg.Connection]]:
    """Seeds the fixture rows and switches to a role, in a transaction rolled back afterwards."""
    with conn.transaction(force_rollback=True):
        for statement in SEED:
            conn.execute(statement, SEED_VALUES)

        def switch(role: str) -> psycopg.Connection:
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
            return conn

        yield switch


def executable(statement: str) -> str:
    """The Rust text as psycopg runs it: format!'s constant filled in, $n -> %(pn)s."""
    text = statement.replace("{FIRST_USED_US}", FIRST_USED_US)
    assert "%" not in text
    return re.sub(r"\$(\d+)", r"%(p\1)s", text)


def run(conn: psycopg.Connection, statement: str, params: tuple[Any, ...]) -> Any:
    cursor = conn.execute(executable(statement), {f"p{i}": v for i, v in enumerate(params, 1)})
    return cursor.fetchall() if cursor.description is not None else cursor.rowcount


# ------------------------------------------------------------------------------------------
# the statements are the services' own


def normalized(text: str) -> str:
    return " ".join(text.split())


def sql_literals() -> dict[str, set[str]]:
    """Every string literal in the services' sources that is a SQL statement, per file."""
    literal = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)
    statement = re.compile(
        r"^\s*(select|insert\s+into|update\s+\S+\s+set|delete\s+from|with\s|copy\s|lock\s|set\s|"
        r"listen\s|notify\s|truncate\s|call\s)",
        re.I,
    )
    found: dict[str, set[str]] = {}
    for crate in SERVICE_CRATES:
        for path in sorted((CRATES / crate / "src").rglob("*.rs")):
            for match in literal.finditer(path.read_text()):
                if statement.match(match.group(1)):
                    found.setdefault(str(path.relative_to(CRATES)), set()).add(normalized(match.group(1)))
    return found


def test_every_statement_of_the_services_is_tested_verbatim() -> None:
    found = sql_literals()
    tested = {(source, normalized(statement)) for statement, source in SOURCES.items()}
    in_sources = {(source, text) for source, texts in found.items() for text in texts}
    # a changed or new statement needs its grants checked (and this file updated)
    assert in_sources == tested
    idempotency = (CRATES / "api-gateway/src/idempotency.rs").read_text()
    assert f'const FIRST_USED_US: &str = "{FIRST_USED_US}";' in idempotency
    # every statement is run by some role below
    assert {r.statement for runs in RUNS.values() for r in runs} == set(SOURCES)


# ------------------------------------------------------------------------------------------
# the roles are ordinary and hold exactly what the statements need

ALL_COLUMNS = "*"
EXPECTED_GRANTS: dict[str, dict[tuple[str, str], Any]] = {
    "api_gateway": {
        ("public.credit_ledger", "select"): {"user_id", "amount", "idempotency_key"},
        ("public.credit_ledger", "insert"): {
            "user_id", "amount", "event_type", "description", "event_time", "idempotency_key"},
        ("public.user_notifications", "select"): {"idempotency_key"},
        ("public.user_notifications", "insert"): {
            "user_id", "event_type", "payload", "event_time", "idempotency_key"},
        ("public.media_files", "select"): {
            "user_id", "file_path", "file_name", "media_type", "file_size", "status", "deleted_by_request_id"},
        ("public.media_files", "update"): {"status", "deleted_by_request_id"},
        ("gateway.idempotency_keys", "select"): ALL_COLUMNS,
        ("gateway.idempotency_keys", "insert"): {
            "user_id", "route", "key", "fingerprint", "first_used", "lease_until"},
        ("gateway.idempotency_keys", "update"): {"fingerprint", "first_used", "lease_until", "status", "body"},
        ("gateway.idempotency_keys", "delete"): True,
    },
    "message_consumer": {
        ("public.user_notifications", "select"): {
            "user_id", "event_type", "payload", "event_time", "visibility", "recipient_id", "idempotency_key"},
        ("public.user_notifications", "insert"): {
            "user_id", "event_type", "payload", "event_time", "visibility", "recipient_id", "idempotency_key"},
    },
    "media_service": {
        ("public.media_files", "select"): {
            "user_id", "file_path", "file_name", "media_type", "file_size", "status", "deleted_by_request_id"},
        ("public.media_files", "update"): {"status", "deleted_by_request_id"},
    },
}
EXPECTED_SCHEMAS = {
    "api_gateway": {"public", "gateway"},
    "message_consumer": {"public"},
    "media_service": {"public"},
}
EXPECTED_POLICIES = {
    "api_gateway": {
        ("public.credit_ledger", "API gateway reads balances", "SELECT"),
        ("public.credit_ledger", "API gateway deducts upload credits", "INSERT"),
        ("public.user_notifications", "API gateway announces deductions", "INSERT"),
        ("public.user_notifications", "API gateway sees its announcements", "SELECT"),
        ("public.media_files", "API gateway reads files", "SELECT"),
        ("public.media_files", "API gateway soft-deletes files", "UPDATE"),
        ("gateway.idempotency_keys", "API gateway keeps idempotency keys", "ALL"),
    },
    "message_consumer": {
        ("public.user_notifications", "Message consumer writes messages", "INSERT"),
        ("public.user_notifications", "Message consumer reads messages", "SELECT"),
    },
    "media_service": {
        ("public.media_files", "Media service reads files", "SELECT"),
        ("public.media_files", "Media service soft-deletes files", "UPDATE"),
    },
}
NOT_SYSTEM = "n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')"


@pytest.mark.parametrize("role", ROLES)
def test_role_is_ordinary_and_owns_nothing(conn: psycopg.Connection, role: str) -> None:
    attributes = conn.execute(
        "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolinherit, rolcanlogin"
        " from pg_roles where rolname = %s",
        [role],
    ).fetchone()
    owned = conn.execute(
        """
        select (select count(*) from pg_class where relowner = r.oid)
             + (select count(*) from pg_namespace where nspowner = r.oid)
             + (select count(*) from pg_proc where proowner = r.oid)
             + (select count(*) from pg_type where typowner = r.oid)
             + (select count(*) from pg_database where datdba = r.oid)
          from pg_roles r where r.rolname = %s
        """,
        [role],
    ).fetchone()
    memberships = conn.execute(
        "select roleid::regrole::text from pg_auth_members where member = %s::regrole", [role]
    ).fetchall()

    # not superuser, no BYPASSRLS, cannot create roles or databases; it logs in (the deployment
    # sets its password)
    assert attributes == (False, False, False, False, False, True, True)
    assert owned == (0,)
    assert memberships == []


@pytest.mark.parametrize("role", ROLES)
def test_role_holds_exactly_its_grants(conn: psycopg.Connection, role: str) -> None:
    columns = conn.execute(
        f"""
        select n.nspname || '.' || c.relname, a.attname, p.privilege
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
          join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
          cross join unnest(array['select', 'insert', 'update', 'references']) as p(privilege)
         where {NOT_SYSTEM} and c.relkind in ('r', 'v', 'm', 'p', 'f')
           and has_column_privilege(%(role)s, c.oid, a.attnum, p.privilege)
        """,
        {"role": role},
    ).fetchall()
    tables = conn.execute(
        f"""
        select n.nspname || '.' || c.relname, p.privilege
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
          cross join unnest(array['delete', 'truncate', 'trigger']) as p(privilege)
         where {NOT_SYSTEM} and c.relkind in ('r', 'v', 'm', 'p', 'f')
           and has_table_privilege(%(role)s, c.oid, p.privilege)
        """,
        {"role": role},
    ).fetchall()
    sequences = conn.execute(
        f"""
        select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where {NOT_SYSTEM}
           and case when c.relkind = 'S' then has_sequence_privilege(%(role)s, c.oid, 'usage,select,update') end
        """,
        {"role": role},
    ).fetchall()
    schemas = conn.execute(
        f"""
        select n.nspname from pg_namespace n
         where {NOT_SYSTEM} and n.nspname not like 'pg_temp%%' and n.nspname not like 'pg_toast%%'
           and has_schema_privilege(%(role)s, n.oid, 'usage')
        """,
        {"role": role},
    ).fetchall()
    creatable = conn.execute(
        "select n.nspname from pg_namespace n where has_schema_privilege(%s, n.oid, 'create')", [role]
    ).fetchall()
    functions = conn.execute(
        f"""
        select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where {NOT_SYSTEM} and has_schema_privilege(%(role)s, n.oid, 'usage')
           and has_function_privilege(%(role)s, p.oid, 'execute')
        """,
        {"role": role},
    ).fetchall()
    all_columns = {
        relation: {name for (name,) in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0"
            " and not attisdropped", [relation]).fetchall()}
        for relation, _ in EXPECTED_GRANTS[role]
    }

    expected_columns = {
        (relation, column, privilege)
        for (relation, privilege), granted in EXPECTED_GRANTS[role].items()
        if privilege in ("select", "insert", "update")
        for column in (all_columns[relation] if granted == ALL_COLUMNS else granted)
    }
    expected_tables = {
        (relation, privilege)
        for (relation, privilege), granted in EXPECTED_GRANTS[role].items()
        if privilege in ("delete", "truncate", "trigger") and granted
    }
    assert set(columns) == expected_columns
    assert set(tables) == expected_tables
    assert sequences == []
    assert {name for (name,) in schemas} == EXPECTED_SCHEMAS[role]
    assert creatable == []
    # nothing outside pg_catalog: no cutover claim, no auth helpers, no webhook sender, no vault
    assert functions == []


@pytest.mark.parametrize("role", ROLES)
def test_role_has_its_own_policies_only(conn: psycopg.Connection, role: str) -> None:
    policies = conn.execute(
        "select schemaname || '.' || tablename, policyname, cmd from pg_policies where %s = any(roles)",
        [role],
    ).fetchall()
    rls = conn.execute(
        "select c.oid::regclass::text from pg_class c where c.relname = any(%s) and not c.relrowsecurity",
        [["user_notifications", "credit_ledger", "media_files", "idempotency_keys"]],
    ).fetchall()

    assert set(policies) == EXPECTED_POLICIES[role]
    assert rls == [], "RLS must stay enabled"


# ------------------------------------------------------------------------------------------
# what the services run succeeds as their role


@pytest.mark.parametrize(
    ("role", "case"),
    [pytest.param(role, case, id=f"{role}: {case.name}") for role, runs in RUNS.items() for case in runs],
)
def test_service_statement_runs_as_its_role(as_role, role: str, case: Run) -> None:
    conn = as_role(role)
    result = run(conn, case.statement, case.params)
    assert conn.execute("select current_user").fetchone() == (role,)
    assert case.expect(result), result


# ------------------------------------------------------------------------------------------
# and nothing else

REFUSED = {
    "api_gateway": [
        "select id from auth.users",
        "select decrypted_secret from vault.decrypted_secrets",
        "select payload from public.user_notifications",
        "update public.user_notifications set payload = '{}'",
        "delete from public.user_notifications",
        "select description from public.credit_ledger",
        "update public.credit_ledger set amount = 100",
        "delete from public.credit_ledger",
        "truncate public.credit_ledger",
        "insert into public.media_files (user_id, file_name, file_path, file_size, media_type, upload_time)"
        " values ('u', 'x', 'files/u/x', 1, 'text/plain', 't')",
        "update public.media_files set file_path = 'files/elsewhere'",
        "delete from public.media_files",
        "select upload_time from public.media_files",
        "truncate gateway.idempotency_keys",
        "select cutover.claim_pre_cutover_deduction('u', 'a.png', '2026-01-01T00:00:00Z', 'k')",
        "create table public.scratch (x int)",
        "alter role current_user with bypassrls",
        # RLS: only the legacy upload's deduction and its notification; soft delete only
        "insert into public.credit_ledger (user_id, amount, event_type, description, event_time, idempotency_key)"
        " values ('u', 100, 'credit.signup_bonus', '', 't', 'forged')",
        "insert into public.user_notifications (user_id, event_type, payload, event_time, idempotency_key)"
        " values ('u', 'user.message', '{}', 't', 'forged')",
        f"update public.media_files set status = 'active' where file_path = '{ACTIVE_PATH}'",
    ],
    "message_consumer": [
        "select amount from public.credit_ledger",
        "select user_id from public.user_credit_balances",
        "select id from auth.users",
        "select file_path from public.media_files",
        "select key from gateway.idempotency_keys",
        "select id from public.user_notifications",
        "update public.user_notifications set payload = '{}'",
        "delete from public.user_notifications",
        "truncate public.user_notifications",
        "insert into public.credit_ledger (user_id, amount, event_type, event_time) values ('u', 5, 'x', 't')",
        "select cutover.claim_pre_cutover_deduction('u', 'a.png', '2026-01-01T00:00:00Z', 'k')",
        "create table public.scratch (x int)",
        "alter role current_user with bypassrls",
        # RLS: user messages only
        "insert into public.user_notifications (user_id, event_type, payload, event_time, idempotency_key)"
        " values ('u', 'credit.balance_changed', '{}', 't', 'forged')",
    ],
    "media_service": [
        "select amount from public.credit_ledger",
        "select user_id from public.user_notifications",
        "select id from auth.users",
        "select key from gateway.idempotency_keys",
        "insert into public.media_files (user_id, file_name, file_path, file_size, media_type, upload_time)"
        " values ('u', 'x', 'files/u/x', 1, 'text/plain', 't')",
        "update public.media_files set user_id = 'someone else'",
        "delete from public.media_files",
        "truncate public.media_files",
        "select upload_time from public.media_files",
        "create table public.scratch (x int)",
        "alter role current_user with bypassrls",
        # RLS: soft delete only, never back to active
        f"update public.media_files set status = 'active' where file_path = '{ACTIVE_PATH}'",
    ],
}


@pytest.mark.parametrize(
    ("role", "statement"),
    [pytest.param(role, s, id=f"{role}: {s[:60]}") for role, statements in REFUSED.items() for s in statements],
)
def test_role_is_refused_what_its_service_does_not_do(as_role, role: str, statement: str) -> None:
    conn = as_role(role)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with conn.transaction():
            conn.execute(statement)


# ------------------------------------------------------------------------------------------
# RLS: the rows each policy lets a role see and change


def test_message_consumer_sees_user_messages_only(as_role) -> None:
    conn = as_role("message_consumer")
    seen = conn.execute(
        "select event_type, idempotency_key from public.user_notifications order by idempotency_key nulls first"
    ).fetchall()
    assert seen == [("user.message", None), ("user.message", "public.user.message.events:0:1")]


def test_api_gateway_sees_its_announcements_only(as_role) -> None:
    conn = as_role("api_gateway")
    seen = conn.execute("select idempotency_key from public.user_notifications").fetchall()
    assert seen == [("credit.balance_changed:legacy_upload_deducted:req-0",)]


@pytest.mark.parametrize("role", ["api_gateway", "media_service"])
def test_soft_delete_never_rewrites_a_deleted_file(as_role, role: str) -> None:
    conn = as_role(role)
    changed = conn.execute(
        "update public.media_files set status = 'deleted', deleted_by_request_id = 'other'"
        " where file_path = %s",
        [DELETED_PATH],
    ).rowcount
    assert changed == 0
    conn.execute("reset role")
    assert conn.execute(
        "select deleted_by_request_id from public.media_files where file_path = %s", [DELETED_PATH]
    ).fetchone() == ("delete-0",)

