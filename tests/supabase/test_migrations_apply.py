"""scripts/supabase_apply.py and the schema it produces: applies from empty,
re-applies as a no-op, and the result matches the spec (2.4-2.7) plus the
fixes (keys, security_invoker view, indexes, explicit grants, realtime)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from supabase_testlib import (
    SCRIPTS,
    conninfo_for,
    drop_database,
    new_database_name,
    supabase_apply,
)

TABLES = ("user_notifications", "credit_ledger", "media_files")
API_ROLES = ("anon", "authenticated", "service_role")
PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")

# (column, type, nullable, default, identity) per spec, plus idempotency_key
COLUMNS = {
    "user_notifications": [
        ("id", "bigint", "NO", None, "ALWAYS"),
        ("user_id", "text", "NO", None, None),
        ("event_type", "text", "NO", None, None),
        ("payload", "text", "NO", "'{}'::text", None),
        ("event_time", "text", "NO", None, None),
        ("visibility", "text", "NO", "'broadcast'::text", None),
        ("recipient_id", "text", "YES", None, None),
        ("created_at", "timestamp with time zone", "NO", "now()", None),
        ("idempotency_key", "text", "YES", None, None),
    ],
    "credit_ledger": [
        ("id", "bigint", "NO", None, "ALWAYS"),
        ("user_id", "text", "NO", None, None),
        ("amount", "integer", "NO", None, None),
        ("event_type", "text", "NO", None, None),
        ("description", "text", "NO", "''::text", None),
        ("event_time", "text", "NO", None, None),
        ("created_at", "timestamp with time zone", "NO", "now()", None),
        ("idempotency_key", "text", "YES", None, None),
    ],
    "media_files": [
        ("id", "bigint", "NO", None, "ALWAYS"),
        ("user_id", "text", "NO", None, None),
        ("file_name", "text", "NO", None, None),
        ("file_path", "text", "NO", None, None),
        ("file_size", "bigint", "NO", None, None),
        ("media_type", "text", "NO", None, None),
        ("status", "text", "NO", "'active'::text", None),
        ("upload_time", "text", "NO", None, None),
        ("created_at", "timestamp with time zone", "NO", "now()", None),
        ("deleted_by_request_id", "text", "YES", None, None),
    ],
    "user_credit_balances": [
        ("user_id", "text", "YES", None, None),
        ("balance", "bigint", "YES", None, None),
    ],
}

# (table, policy name, command, roles)
POLICIES = {
    ("credit_ledger", "Users see own credits", "SELECT", "{authenticated}"),
    ("media_files", "Users see own active files", "SELECT", "{authenticated}"),
    ("user_notifications", "Only backend can insert notifications", "INSERT", "{public}"),
    ("user_notifications", "Users see own events or visible messages", "SELECT", "{authenticated}"),
    # the Flink jobs' role writes for every user (migration 20261201000100_flink_writer_role)
    ("credit_ledger", "Flink jobs write every row", "ALL", "{flink_writer}"),
    ("media_files", "Flink jobs write every row", "ALL", "{flink_writer}"),
    ("user_notifications", "Flink jobs write every row", "ALL", "{flink_writer}"),
    # the services' roles (migration 20261201000300_service_roles; test_service_roles)
    ("credit_ledger", "API gateway reads balances", "SELECT", "{api_gateway}"),
    ("credit_ledger", "API gateway deducts upload credits", "INSERT", "{api_gateway}"),
    ("user_notifications", "API gateway announces deductions", "INSERT", "{api_gateway}"),
    ("user_notifications", "API gateway sees its announcements", "SELECT", "{api_gateway}"),
    ("media_files", "API gateway reads files", "SELECT", "{api_gateway}"),
    ("media_files", "API gateway soft-deletes files", "UPDATE", "{api_gateway}"),
    ("user_notifications", "Message consumer writes messages", "INSERT", "{message_consumer}"),
    ("user_notifications", "Message consumer reads messages", "SELECT", "{message_consumer}"),
    ("media_files", "Media service reads files", "SELECT", "{media_service}"),
    ("media_files", "Media service soft-deletes files", "UPDATE", "{media_service}"),
}

GRANTED = {
    ("authenticated", "select"),
    ("service_role", "select"),
    ("service_role", "insert"),
    ("service_role", "update"),
    ("service_role", "delete"),
}


@pytest.fixture(scope="module")
def conn(module_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(module_db, autocommit=True) as connection:
        yield connection


def migration_versions() -> list[str]:
    return [version for version, _, _ in supabase_apply.migration_files()]


def run_apply_script(target: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "supabase_apply.py"), target],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_apply_script_builds_from_empty_and_reapplies_as_a_no_op() -> None:
    dbname = new_database_name()
    try:
        first = run_apply_script(conninfo_for(dbname))
        second = run_apply_script(conninfo_for(dbname))

        assert first.returncode == 0, first.stderr
        assert first.stderr.count("applied migration") == len(migration_versions())
        assert second.returncode == 0, second.stderr
        assert "applied migration" not in second.stderr
        assert "no new migrations" in second.stderr
        with psycopg.connect(conninfo_for(dbname)) as conn:
            history = conn.execute(
                "select version from supabase_migrations.schema_migrations order by version"
            ).fetchall()
            secrets = conn.execute(
                "select count(*) from vault.secrets where name = 'webhook_secret'"
            ).fetchone()
        assert [v for (v,) in history] == migration_versions()
        assert secrets == (1,)
    finally:
        drop_database(dbname)


def test_original_migrations_keep_their_versions_and_fixes_come_after() -> None:
    versions = migration_versions()

    assert versions[:6] == [
        "20260221000000",
        "20260221000002",
        "20260222000005",
        "20260222000010",
        "20260223000001",
        "20260223000002",
    ]
    assert len(versions) > 6 and versions == sorted(versions)


def test_parallel_applies_to_one_database_and_to_separate_ones_all_succeed() -> None:
    shared = new_database_name()
    separate = [new_database_name() for _ in range(2)]
    targets = [shared, shared, *separate]
    errors: list[BaseException] = []

    def run(dbname: str) -> None:
        try:
            supabase_apply.apply(conninfo_for(dbname))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in targets]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        with psycopg.connect(conninfo_for(shared)) as conn:
            count = conn.execute("select count(*) from supabase_migrations.schema_migrations").fetchone()
        assert count == (len(migration_versions()),)
    finally:
        for name in {*targets}:
            drop_database(name)


def test_bootstrap_refuses_a_database_whose_auth_schema_it_did_not_create() -> None:
    dbname = new_database_name()
    try:
        with psycopg.connect(conninfo_for("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
        with psycopg.connect(conninfo_for(dbname), autocommit=True) as conn:
            conn.execute("create schema auth")

        with pytest.raises(psycopg.errors.RaiseException, match="real Supabase database"):
            supabase_apply.apply(conninfo_for(dbname))
    finally:
        drop_database(dbname)


@pytest.mark.parametrize("table", list(COLUMNS))
def test_columns_match_the_spec(conn: psycopg.Connection, table: str) -> None:
    columns = conn.execute(
        """
        select column_name, data_type, is_nullable, column_default, identity_generation
          from information_schema.columns
         where table_schema = 'public' and table_name = %s
         order by ordinal_position
        """,
        [table],
    ).fetchall()

    assert columns == COLUMNS[table]


def test_policies_match_the_spec(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select tablename, policyname, cmd, roles::text from pg_policies where schemaname = 'public'"
    ).fetchall()
    rls = conn.execute(
        "select relname from pg_class where relnamespace = 'public'::regnamespace"
        " and relkind = 'r' and relrowsecurity order by relname"
    ).fetchall()

    assert set(rows) == POLICIES
    assert [name for (name,) in rls] == sorted(TABLES)


def test_realtime_publishes_the_three_tables_with_full_replica_identity(
    conn: psycopg.Connection,
) -> None:
    published = conn.execute(
        "select schemaname, tablename from pg_publication_tables"
        " where pubname = 'supabase_realtime' order by tablename"
    ).fetchall()
    identity = conn.execute(
        "select relname, relreplident from pg_class"
        " where relnamespace = 'public'::regnamespace and relname = any(%s) order by relname",
        [list(TABLES)],
    ).fetchall()

    assert published == [("public", table) for table in sorted(TABLES)]
    assert identity == [(table, "f") for table in sorted(TABLES)]


@pytest.mark.parametrize("relation", [*TABLES, "user_credit_balances"])
def test_grants_are_explicit(conn: psycopg.Connection, relation: str) -> None:
    granted = {
        (role, privilege)
        for role in API_ROLES
        for privilege in PRIVILEGES
        if conn.execute(
            "select has_table_privilege(%s, %s, %s)", [role, f"public.{relation}", privilege]
        ).fetchone()[0]
    }
    owner = conn.execute(
        "select pg_get_userbyid(relowner) from pg_class where oid = %s::regclass",
        [f"public.{relation}"],
    ).fetchone()

    expected = GRANTED if relation != "user_credit_balances" else {
        ("authenticated", "select"),
        ("service_role", "select"),
    }
    assert granted == expected
    assert owner == ("postgres",)


def test_identity_sequences_are_not_granted_to_api_roles(conn: psycopg.Connection) -> None:
    granted = conn.execute(
        """
        select c.relname, r.rolname
          from pg_class c
          cross join (select unnest(%s::text[]) as rolname) r
         where c.relkind = 'S' and c.relnamespace = 'public'::regnamespace
           and has_sequence_privilege(r.rolname, c.oid, 'usage,select,update')
        """,
        [list(API_ROLES)],
    ).fetchall()

    assert granted == []


def test_balance_view_runs_with_the_callers_rights(conn: psycopg.Connection) -> None:
    options = conn.execute(
        "select reloptions from pg_class where oid = 'public.user_credit_balances'::regclass"
    ).fetchone()

    assert options == (["security_invoker=true"],)


def test_read_path_indexes_exist(conn: psycopg.Connection) -> None:
    indexes = {
        name: definition
        for name, definition in conn.execute(
            "select indexname, indexdef from pg_indexes where schemaname = 'public'"
        ).fetchall()
    }

    assert "(user_id, created_at DESC)" in indexes["user_notifications_user_id_created_at_idx"]
    assert "UNIQUE" in indexes["media_files_user_id_file_path_key"]
    assert "(user_id, file_path)" in indexes["media_files_user_id_file_path_key"]
    assert "UNIQUE" in indexes["user_notifications_idempotency_key_key"]
    assert "UNIQUE" in indexes["credit_ledger_idempotency_key_key"]


def test_webhook_functions_are_security_definer_with_pinned_search_path(
    conn: psycopg.Connection,
) -> None:
    functions = conn.execute(
        """
        select proname, prosecdef, proconfig, pg_get_userbyid(proowner),
               has_function_privilege('anon', oid, 'execute'),
               has_function_privilege('authenticated', oid, 'execute'),
               has_function_privilege('service_role', oid, 'execute')
          from pg_proc
         where pronamespace = 'public'::regnamespace and proname like 'handle_user_%'
         order by proname
        """
    ).fetchall()

    assert functions == [
        (name, True, ['search_path=""'], "postgres", False, False, False)
        for name in ("handle_user_login", "handle_user_signout", "handle_user_signup")
    ]


def test_auth_helpers_read_the_request_claims_like_supabase(conn: psycopg.Connection) -> None:
    sub = "0e0e0e0e-0000-4000-8000-000000000005"
    with conn.transaction(force_rollback=True):
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            [f'{{"sub": "{sub}", "role": "authenticated", "email": "me@example.test"}}'],
        )
        from_claims = conn.execute(
            "select auth.uid()::text, auth.role(), auth.email(), auth.jwt() ->> 'sub'"
        ).fetchone()
    with conn.transaction(force_rollback=True):
        # the pre-PostgREST-9 per-claim settings still work
        conn.execute("select set_config('request.jwt.claim.sub', %s, true)", [sub])
        conn.execute("select set_config('request.jwt.claim.role', 'anon', true)")
        from_legacy = conn.execute("select auth.uid()::text, auth.role()").fetchone()
    anonymous = conn.execute("select auth.uid(), auth.role(), auth.jwt()").fetchone()

    assert from_claims == (sub, "authenticated", "me@example.test", sub)
    assert from_legacy == (sub, "anon")
    assert anonymous == (None, None, None)


def test_service_role_bypasses_rls_and_api_roles_do_not_log_in(conn: psycopg.Connection) -> None:
    roles = conn.execute(
        "select rolname, rolbypassrls, rolcanlogin from pg_roles where rolname = any(%s) order by rolname",
        [list(API_ROLES)],
    ).fetchall()

    assert roles == [
        ("anon", False, False),
        ("authenticated", False, False),
        ("service_role", True, False),
    ]


def test_the_flink_role_may_write_the_three_tables_and_nothing_else(conn: psycopg.Connection) -> None:
    def can(privilege: str, relation: str) -> bool:
        return conn.execute(
            "select has_table_privilege('flink_writer', %s, %s)", [relation, privilege]
        ).fetchone()[0]

    for table in TABLES:
        assert [p for p in PRIVILEGES if can(p, f"public.{table}")] == [
            p for p in PRIVILEGES if p in ("select", "insert", "update")
        ], table
    assert not can("select", "auth.users")
    assert conn.execute(
        "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles"
        " where rolname = 'flink_writer'"
    ).fetchone() == (False, False, False, False)
    # what the jobs run, as the role: an upsert, the credit check's claim; a delete is refused
    with conn.transaction(force_rollback=True):
        conn.execute("set local role flink_writer")
        conn.execute(
            "insert into public.credit_ledger (user_id, amount, event_type, description, event_time,"
            " idempotency_key) values ('u', 2, 'credit.signup_bonus', 'b', 't', 'k')"
            " on conflict (idempotency_key) do update set amount = excluded.amount"
        )
        assert conn.execute(
            "select cutover.claim_pre_cutover_deduction('u', 'a.png', '2026-01-01T00:00:00Z', 'k2')"
        ).fetchone() == (False,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with conn.transaction():
                conn.execute("delete from public.credit_ledger")
