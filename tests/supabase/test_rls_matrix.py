"""Who may do what through the Supabase API: every table and view x every
kind of caller x select/insert/update/delete, against the real policies and
grants (spec 2.4-2.6 plus the fixes: balances are owner-only, anon gets
nothing, only service_role writes).

Each case runs as one simulated PostgREST request (role + JWT claims, see
supabase_request) and is rolled back. The outcome is either DENIED (the
database refused: missing privilege or failed policy check) or the set of
fixture rows the statement saw or touched, by label. Writes to the balance
view are NOT_WRITABLE for everybody: Postgres rejects writes to an aggregate
view before it even checks privileges (which are select-only anyway, see
test_migrations_apply).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from supabase_testlib import supabase_request

OWNER = "0a0a0a0a-0000-4000-8000-000000000001"
RECIPIENT = "0b0b0b0b-0000-4000-8000-000000000002"
OTHER = "0c0c0c0c-0000-4000-8000-000000000003"

DENIED = "denied"
NOT_WRITABLE = "view not writable"

# caller name -> (database role, JWT sub)
ACTORS = {
    "owner": ("authenticated", OWNER),
    "other_user": ("authenticated", OTHER),
    "dm_recipient": ("authenticated", RECIPIENT),
    "anon": ("anon", None),
    "service_role": ("service_role", None),
}


@dataclass(frozen=True)
class Target:
    """How to exercise one table or view. `label` is a SQL expression naming a
    fixture row; statements use %(user_id)s for the row owner a writer would
    set (the caller's own id, or OWNER for callers without one)."""

    label: str
    insert: str
    update: str
    delete: str


TARGETS = {
    "user_notifications": Target(
        label="payload::jsonb ->> 'label'",
        insert=(
            "insert into public.user_notifications (user_id, event_type, payload, event_time)"
            " values (%(user_id)s, 'identity.login', '{\"label\": \"new\"}', '2026-03-01T00:00:00Z')"
        ),
        update="update public.user_notifications set payload = payload where user_id = %(owner)s",
        delete="delete from public.user_notifications where user_id = %(owner)s",
    ),
    "credit_ledger": Target(
        label="description",
        insert=(
            "insert into public.credit_ledger (user_id, amount, event_type, description, event_time)"
            " values (%(user_id)s, 100, 'credit.signup_bonus', 'new', '2026-03-01T00:00:00Z')"
        ),
        update="update public.credit_ledger set amount = amount + 100 where user_id = %(owner)s",
        delete="delete from public.credit_ledger where user_id = %(owner)s",
    ),
    "user_credit_balances": Target(
        label="user_id || ' has ' || balance",
        insert="insert into public.user_credit_balances (user_id, balance) values (%(user_id)s, 100)",
        update="update public.user_credit_balances set balance = 100 where user_id = %(owner)s",
        delete="delete from public.user_credit_balances where user_id = %(owner)s",
    ),
    "media_files": Target(
        label="file_name",
        insert=(
            "insert into public.media_files"
            " (user_id, file_name, file_path, file_size, media_type, upload_time)"
            " values (%(user_id)s, 'new', 'files/new.png', 1, 'image/png', '2026-03-01T00:00:00Z')"
        ),
        update="update public.media_files set status = 'deleted' where user_id = %(owner)s",
        delete="delete from public.media_files where user_id = %(owner)s",
    ),
}

# Fixture rows, all owned by OWNER (labels in the payload/description/name).
FIXTURE_SQL = f"""
insert into public.user_notifications (user_id, event_type, payload, event_time, visibility, recipient_id)
values
  -- not a message: owner-only although visibility defaults to broadcast
  ('{OWNER}', 'identity.login', '{{"label": "own_event"}}', '2026-03-01T00:00:00Z', default, null),
  ('{OWNER}', 'user.message', '{{"label": "direct_message"}}', '2026-03-01T00:00:01Z', 'direct', '{RECIPIENT}'),
  ('{OWNER}', 'user.message', '{{"label": "broadcast_message"}}', '2026-03-01T00:00:02Z', 'broadcast', null);

insert into public.credit_ledger (user_id, amount, event_type, description, event_time)
values
  ('{OWNER}', 2, 'credit.signup_bonus', 'signup_bonus', '2026-03-01T00:00:00Z'),
  ('{OWNER}', -1, 'credit.upload_deducted', 'upload_deducted', '2026-03-01T00:00:01Z');

insert into public.media_files (user_id, file_name, file_path, file_size, media_type, status, upload_time)
values
  ('{OWNER}', 'active_file', 'files/a.png', 10, 'image/png', 'active', '2026-03-01T00:00:00Z'),
  ('{OWNER}', 'deleted_file', 'files/d.png', 10, 'image/png', 'deleted', '2026-03-01T00:00:00Z');
"""

ALL_NOTIFICATIONS = {"own_event", "direct_message", "broadcast_message"}
ALL_LEDGER = {"signup_bonus", "upload_deducted"}
OWNER_BALANCE = {f"{OWNER} has 1"}
ALL_FILES = {"active_file", "deleted_file"}
NOTHING: set[str] = set()
VIEW_WRITES = {"insert": NOT_WRITABLE, "update": NOT_WRITABLE, "delete": NOT_WRITABLE}

# Expected outcome per table, caller and operation. Written out in full so
# the table reads as the access specification.
EXPECTED = {
    "user_notifications": {
        "owner": {"select": ALL_NOTIFICATIONS, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "other_user": {"select": {"broadcast_message"}, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "dm_recipient": {
            "select": {"direct_message", "broadcast_message"},
            "insert": DENIED, "update": DENIED, "delete": DENIED,
        },
        "anon": {"select": DENIED, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "service_role": {
            "select": ALL_NOTIFICATIONS, "insert": {"new"},
            "update": ALL_NOTIFICATIONS, "delete": ALL_NOTIFICATIONS,
        },
    },
    "credit_ledger": {
        "owner": {"select": ALL_LEDGER, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "other_user": {"select": NOTHING, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "dm_recipient": {"select": NOTHING, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "anon": {"select": DENIED, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "service_role": {"select": ALL_LEDGER, "insert": {"new"}, "update": ALL_LEDGER, "delete": ALL_LEDGER},
    },
    "user_credit_balances": {
        "owner": {"select": OWNER_BALANCE, **VIEW_WRITES},
        # the original owner-executed view showed the owner's row here (spec 13.14)
        "other_user": {"select": NOTHING, **VIEW_WRITES},
        "dm_recipient": {"select": NOTHING, **VIEW_WRITES},
        "anon": {"select": DENIED, **VIEW_WRITES},
        "service_role": {"select": OWNER_BALANCE, **VIEW_WRITES},
    },
    "media_files": {
        "owner": {"select": {"active_file"}, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "other_user": {"select": NOTHING, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "dm_recipient": {"select": NOTHING, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "anon": {"select": DENIED, "insert": DENIED, "update": DENIED, "delete": DENIED},
        "service_role": {"select": ALL_FILES, "insert": {"new"}, "update": ALL_FILES, "delete": ALL_FILES},
    },
}

OPERATIONS = ("select", "insert", "update", "delete")

CASES = [
    pytest.param(table, actor, op, EXPECTED[table][actor][op], id=f"{table}-{actor}-{op}")
    for table in TARGETS
    for actor in ACTORS
    for op in OPERATIONS
]


@pytest.fixture(scope="module")
def conn(module_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(module_db, autocommit=True) as connection:
        connection.execute(FIXTURE_SQL)
        yield connection


def attempt(conn: psycopg.Connection, table: str, actor: str, op: str) -> str | set[str]:
    role, sub = ACTORS[actor]
    target = TARGETS[table]
    params = {"user_id": sub or OWNER, "owner": OWNER}
    statement = (
        f"select {target.label} from public.{table}"
        if op == "select"
        else f"{getattr(target, op)} returning {target.label}"
    )
    with supabase_request(conn, role, sub):
        try:
            rows = conn.execute(statement, params).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            # missing grant, or "new row violates row-level security policy"
            return DENIED
        except psycopg.errors.ObjectNotInPrerequisiteState:
            # "cannot insert into view ...: views containing GROUP BY are not
            # automatically updatable"
            return NOT_WRITABLE
    return {row[0] for row in rows}


def test_matrix_covers_every_table_actor_and_operation() -> None:
    assert len(CASES) == len(TARGETS) * len(ACTORS) * len(OPERATIONS) == 80


@pytest.mark.parametrize(("table", "actor", "op", "expected"), CASES)
def test_api_access(
    conn: psycopg.Connection, table: str, actor: str, op: str, expected: str | set[str]
) -> None:
    outcome = attempt(conn, table, actor, op)

    assert outcome == expected, f"{actor} {op} on {table}: expected {expected}, got {outcome}"


def test_requests_are_rolled_back_so_cases_do_not_interfere(conn: psycopg.Connection) -> None:
    counts = conn.execute(
        """
        select (select count(*) from public.user_notifications),
               (select count(*) from public.credit_ledger),
               (select count(*) from public.media_files)
        """
    ).fetchone()

    assert counts == (3, 2, 2)
