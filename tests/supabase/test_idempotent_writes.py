"""Every backend writer's "insert once per event" statement, executed twice
(a redelivered Kafka message), leaves exactly one row. The statements are
the ones supabase/README.md tells writers to use."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from supabase_testlib import conninfo_for, drop_database, new_database_name, supabase_apply

USER = "0d0d0d0d-0000-4000-8000-000000000004"

NOTIFICATION_INSERT = """
insert into public.user_notifications
  (user_id, event_type, payload, event_time, visibility, recipient_id, idempotency_key)
values (%(user_id)s, %(event_type)s, %(payload)s, %(event_time)s, %(visibility)s, %(recipient_id)s, %(key)s)
on conflict (idempotency_key) do nothing
"""

LEDGER_INSERT = """
insert into public.credit_ledger (user_id, amount, event_type, description, event_time, idempotency_key)
values (%(user_id)s, %(amount)s, %(event_type)s, %(description)s, %(event_time)s, %(key)s)
on conflict (idempotency_key) do nothing
"""

# The credit check's conditional deduction: only when the balance covers it.
LEDGER_DEDUCT = """
insert into public.credit_ledger (user_id, amount, event_type, description, event_time, idempotency_key)
select %(user_id)s, -1, 'credit.upload_deducted', 'Upload: ' || %(file_name)s, %(event_time)s, %(key)s
 where (select coalesce(sum(amount), 0) from public.credit_ledger where user_id = %(user_id)s) >= 1
on conflict (idempotency_key) do nothing
returning id
"""

MEDIA_FILE_INSERT = """
insert into public.media_files (user_id, file_name, file_path, file_size, media_type, status, upload_time)
values (%(user_id)s, %(file_name)s, %(file_path)s, %(file_size)s, %(media_type)s, 'active', %(upload_time)s)
on conflict (user_id, file_path) do nothing
"""

WRITERS = [
    pytest.param(
        NOTIFICATION_INSERT,
        {
            "user_id": USER, "event_type": "user.message", "payload": '{"email":"a@b.c","message":"hi"}',
            "event_time": "2026-03-01T00:00:00Z", "visibility": "direct", "recipient_id": USER,
            "key": "public.user.message.events:0:41",
        },
        "select count(*) from public.user_notifications where idempotency_key = 'public.user.message.events:0:41'",
        id="notification",
    ),
    pytest.param(
        LEDGER_INSERT,
        {
            "user_id": USER, "amount": 2, "event_type": "credit.signup_bonus",
            "description": "Welcome bonus: 2 credits", "event_time": "2026-03-01T00:00:00Z",
            "key": "public.identity.signup.events:0:7",
        },
        "select count(*) from public.credit_ledger where idempotency_key = 'public.identity.signup.events:0:7'",
        id="credit_ledger",
    ),
    pytest.param(
        MEDIA_FILE_INSERT,
        {
            "user_id": USER, "file_name": "cat.png", "file_path": f"files/{USER}/cat.png",
            "file_size": 1234, "media_type": "image/png", "upload_time": "2026-03-01T00:00:00Z",
        },
        f"select count(*) from public.media_files where file_path = 'files/{USER}/cat.png'",
        id="media_files",
    ),
]


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db, autocommit=True) as connection:
        yield connection


@pytest.mark.parametrize(("statement", "params", "count_sql"), WRITERS)
def test_redelivered_event_writes_one_row(
    conn: psycopg.Connection, statement: str, params: dict, count_sql: str
) -> None:
    first = conn.execute(statement, params).rowcount
    second = conn.execute(statement, params).rowcount

    assert (first, second) == (1, 0)
    assert conn.execute(count_sql).fetchone() == (1,)


def test_redelivered_deduction_deducts_once(conn: psycopg.Connection) -> None:
    conn.execute(
        LEDGER_INSERT,
        {
            "user_id": USER, "amount": 2, "event_type": "credit.signup_bonus",
            "description": "Welcome bonus: 2 credits", "event_time": "2026-03-01T00:00:00Z",
            "key": "bonus",
        },
    )
    params = {
        "user_id": USER, "file_name": "cat.png", "event_time": "2026-03-01T00:00:01Z", "key": "intent-1",
    }

    first = conn.execute(LEDGER_DEDUCT, params).fetchall()
    second = conn.execute(LEDGER_DEDUCT, params).fetchall()

    assert len(first) == 1
    # nothing returned: the writer looks the key up to tell "already
    # deducted" from "insufficient credits"
    assert second == []
    balance = conn.execute(
        "select balance from public.user_credit_balances where user_id = %s", [USER]
    ).fetchone()
    assert balance == (1,)


def test_writers_without_a_key_are_not_deduplicated(conn: psycopg.Connection) -> None:
    # the original 4-column Flink sink: still accepted, but nulls never conflict
    legacy = (
        "insert into public.user_notifications (user_id, event_type, payload, event_time)"
        " values (%s, 'identity.login', '{}', '2026-03-01T00:00:00Z')"
    )
    conn.execute(legacy, [USER])
    conn.execute(legacy, [USER])

    assert conn.execute("select count(*) from public.user_notifications").fetchone() == (2,)


def test_a_plain_insert_of_a_duplicate_media_file_fails_loudly(conn: psycopg.Connection) -> None:
    params = WRITERS[2].values[1]
    conn.execute(MEDIA_FILE_INSERT, params)

    with pytest.raises(psycopg.errors.UniqueViolation, match="media_files_user_id_file_path_key"):
        conn.execute(MEDIA_FILE_INSERT.replace("on conflict (user_id, file_path) do nothing", ""), params)


def test_key_migration_collapses_existing_media_file_duplicates() -> None:
    # A database from before the fix, where a replay re-created a soft-deleted
    # file and duplicated an active one.
    dbname = new_database_name()
    try:
        supabase_apply.apply(conninfo_for(dbname), up_to="20260223000002")
        with psycopg.connect(conninfo_for(dbname), autocommit=True) as conn:
            conn.execute(
                """
                insert into public.media_files (user_id, file_name, file_path, file_size, media_type, status, upload_time)
                values
                  ('u1', 'gone.png', 'files/gone.png', 1, 'image/png', 'deleted', 't1'),
                  ('u1', 'gone.png', 'files/gone.png', 1, 'image/png', 'active', 't1'),
                  ('u1', 'kept.png', 'files/kept.png', 1, 'image/png', 'active', 't2'),
                  ('u1', 'kept.png', 'files/kept.png', 1, 'image/png', 'active', 't2'),
                  ('u2', 'kept.png', 'files/kept.png', 1, 'image/png', 'active', 't3'),
                  ('u3', 'late.png', 'files/late.png', 1, 'image/png', 'active', 't4'),
                  ('u3', 'late.png', 'files/late.png', 1, 'image/png', 'deleted', 't4')
                """
            )

            applied = supabase_apply.apply(conninfo_for(dbname))

            assert applied[0] == "20260301000000"
            rows = conn.execute(
                "select id, user_id, file_path, status from public.media_files order by id"
            ).fetchall()
            assert rows == [
                (1, "u1", "files/gone.png", "deleted"),
                (3, "u1", "files/kept.png", "active"),
                (5, "u2", "files/kept.png", "active"),
                (6, "u3", "files/late.png", "deleted"),
            ]
    finally:
        drop_database(dbname)
