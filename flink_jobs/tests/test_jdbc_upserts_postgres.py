"""The JDBC sinks' writes against the real PostgreSQL schema.

The Flink JDBC connector cannot run here (its jar is not on PyPI), so these tests execute the
statement its Postgres dialect generates for each upsert sink of the SQL files (see
sqlfiles.postgres_upsert): every primary key declared in the SQL must match a unique
constraint of supabase/ (Postgres rejects the ON CONFLICT otherwise), a replayed row must not
add a second row, and a replayed media file must not undo a soft delete."""

from __future__ import annotations

import psycopg
import pytest

from flink_jobs.tests.sqlfiles import FLINK_JOBS, all_jdbc_sinks, postgres_upsert, sinks_of

pytestmark = pytest.mark.postgres

SINKS = all_jdbc_sinks()


def sample_row(sink, n=1):
    values = []
    for name, sql_type in sink.columns:
        if sql_type in ("INT", "BIGINT"):
            values.append(n)
        elif name == "payload":
            values.append('{"n":%d}' % n)
        else:
            values.append(f"{name}-{n}")
    return values


def count(conn, table):
    return conn.execute(f"select count(*) from {table}").fetchone()[0]


def test_every_jdbc_sink_is_an_upsert_on_a_unique_key():
    # user_notifications (shared by five files, sinks/), credit_ledger, media_files
    assert len(SINKS) == 3
    assert {(s.options["table-name"], tuple(s.primary_key)) for s in SINKS} == {
        ("public.user_notifications", ("idempotency_key",)),
        ("public.credit_ledger", ("idempotency_key",)),
        ("public.media_files", ("user_id", "file_path")),
    }


@pytest.mark.parametrize("sink", SINKS, ids=lambda s: s.name)
def test_replayed_rows_are_written_once(fresh_db, sink):
    statement = postgres_upsert(sink)
    table = sink.options["table-name"]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for _ in range(3):  # first delivery and two replays
            conn.execute(statement, sample_row(sink, 1))
        conn.execute(statement, sample_row(sink, 2))
        assert count(conn, table) == 2


def test_replayed_signup_bonus_keeps_the_balance(fresh_db):
    (ledger,) = [s for s in sinks_of(FLINK_JOBS / "credit_balance_processor.sql") if s.name == "credit_ledger_sink"]
    row = ["u1", 2, "credit.signup_bonus", "Welcome bonus: 2 credits", "t", "credit.signup_bonus:u1"]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for _ in range(2):
            conn.execute(postgres_upsert(ledger), row)
        assert conn.execute(
            "select balance from public.user_credit_balances where user_id = 'u1'"
        ).fetchone() == (2,)


def test_replayed_media_file_stays_deleted(fresh_db):
    (media,) = [s for s in sinks_of(FLINK_JOBS / "credit_balance_processor.sql") if s.name == "media_files_sink"]
    row = ["u1", "cat.png", "files/u1/abc/cat.png", 2048, "image/png", "t-upload"]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(postgres_upsert(media), row)
        assert conn.execute("select status from public.media_files").fetchall() == [("active",)]
        # the media service soft-deletes the file, then the Flink job replays the confirmation
        conn.execute(
            "update public.media_files set status = 'deleted' where user_id = 'u1' and file_path = %s",
            [row[2]],
        )
        conn.execute(postgres_upsert(media), row)
        assert conn.execute(
            "select user_id, file_name, file_path, file_size, media_type, status, upload_time"
            " from public.media_files"
        ).fetchall() == [("u1", "cat.png", "files/u1/abc/cat.png", 2048, "image/png", "deleted", "t-upload")]
