"""Migration 20261130000000_pre_cutover_rows: rows the original fleet wrote without keys get the
keys the new writers derive from the same events, so a record both fleets see at a cut-over
has one effect. Rows are inserted as the original jobs wrote them (platform spec 3.2), then
the new writers' own statements run for the same events."""

from __future__ import annotations

import json

import psycopg
import pytest
from supabase_testlib import conninfo_for, drop_database, new_database_name, supabase_apply

BEFORE = "20260302000000"  # the last migration before this one
U1, U2 = "0d0d0d0d-0000-4000-8000-000000000101", "0d0d0d0d-0000-4000-8000-000000000102"

# what the new writers execute (flink_jobs/*.sql through the JDBC sink's upsert, reduced to
# the insert that matters here, and the credit check's ledger insert)
NOTIFICATION = """
insert into public.user_notifications (user_id, event_type, payload, event_time, idempotency_key)
values (%s, %s, %s, %s, %s) on conflict (idempotency_key) do nothing
"""
LEDGER = """
insert into public.credit_ledger (user_id, amount, event_type, description, event_time, idempotency_key)
values (%s, %s, %s, %s, %s, %s) on conflict (idempotency_key) do nothing
"""


def original_notification(conn, user, event_type, payload, event_time):
    conn.execute(
        "insert into public.user_notifications (user_id, event_type, payload, event_time)"
        " values (%s, %s, %s, %s)",
        [user, event_type, payload if isinstance(payload, str) else json.dumps(payload), event_time],
    )


def original_ledger(conn, user, amount, event_type, description, event_time):
    conn.execute(
        "insert into public.credit_ledger (user_id, amount, event_type, description, event_time)"
        " values (%s, %s, %s, %s, %s)",
        [user, amount, event_type, description, event_time],
    )


@pytest.fixture
def before_cutover():
    dbname = new_database_name()
    try:
        supabase_apply.apply(conninfo_for(dbname), up_to=BEFORE)
        with psycopg.connect(conninfo_for(dbname), autocommit=True) as conn:
            yield dbname, conn
    finally:
        drop_database(dbname)


def keys(conn, table):
    return [row[0] for row in conn.execute(f"select idempotency_key from public.{table} order by id")]


def test_replayed_events_after_the_migration_have_no_second_effect(before_cutover):
    dbname, conn = before_cutover
    # what the original fleet left: a signup (bonus, notifications), a login, an expired
    # upload with its refund, a completed upload, a signout, and a replay's duplicate bonus
    original_notification(conn, U1, "identity.signup", {"email": "a@x"}, "2026-01-01T00:00:00Z")
    original_ledger(conn, U1, 2, "credit.signup_bonus", "Welcome bonus: 2 credits", "2026-01-01T00:00:00Z")
    original_ledger(conn, U1, 2, "credit.signup_bonus", "Welcome bonus: 2 credits", "2026-01-01T00:00:00Z")
    original_notification(conn, U1, "credit.balance_changed", {"amount": 2, "reason": "signup_bonus"},
                          "2026-01-01T00:00:00Z")
    original_notification(conn, U1, "identity.login",
                          {"email": "a@x", "device_id": "d", "user_agent": "ua", "ip_address": "1.2.3.4"},
                          "2026-01-02T00:00:00Z")
    original_notification(conn, U1, "identity.signout",
                          {"email": "a@x", "device_id": None, "user_agent": "ua", "ip_address": "1.2.3.4"},
                          "2026-01-02T01:00:00Z")
    original_notification(conn, U2, "media.upload_expired",
                          {"file_path": "uploads/u2/r/cat.png", "file_name": "cat.png", "amount_refunded": 1,
                           "request_id": "req-1"}, "2026-01-03T00:00:00Z")
    original_ledger(conn, U2, 1, "credit.upload_refunded", "Refund: upload expired for cat.png",
                    "2026-01-03T00:00:00Z")
    original_notification(conn, U2, "credit.balance_changed",
                          {"amount": 1, "reason": "upload_expired", "file_name": "cat.png"},
                          "2026-01-03T00:00:00Z")
    original_notification(conn, U2, "media.upload_completed",
                          {"file_path": "files/u2/r/dog.png", "file_name": "dog.png", "file_size": 3,
                           "media_type": "image/png"}, "2026-01-04T00:00:00Z")
    original_notification(conn, U2, "media.upload_failed", {"file_name": "x.png"}, "2026-01-05T00:00:00Z")
    original_notification(conn, U2, "identity.login", "not json", "2026-01-06T00:00:00Z")

    assert supabase_apply.apply(conninfo_for(dbname))[:2] == ["20261130000000", "20261130000100"]

    assert keys(conn, "credit_ledger") == [
        f"credit.signup_bonus:{U1}", None,  # the replay's copy stays as it was
        "credit.upload_refunded:req-1",
    ]
    assert keys(conn, "user_notifications") == [
        f"identity.signup:{U1}",
        f"credit.balance_changed:signup_bonus:{U1}",
        f"identity.login:{U1}:2026-01-02T00:00:00Z",
        f"identity.signout:{U1}:2026-01-02T01:00:00Z::1.2.3.4:ua",
        "media.upload_expired:req-1",
        "credit.balance_changed:upload_expired:req-1",
        f"media.upload_completed:{U2}:files/u2/r/dog.png",
        None,  # media.upload_failed: the original payload has no file path
        f"identity.login:{U2}:2026-01-06T00:00:00Z",  # user and time suffice for a login
    ]

    # the new writers see the same events again: nothing is added
    notifications = conn.execute("select count(*) from public.user_notifications").fetchone()[0]
    ledger = conn.execute("select count(*) from public.credit_ledger").fetchone()[0]
    for key in [k for k in keys(conn, "user_notifications") if k]:
        conn.execute(NOTIFICATION, [U1, "replayed", "{}", "t", key])
    conn.execute(LEDGER, [U1, 2, "credit.signup_bonus", "Welcome bonus: 2 credits", "2026-01-01T00:00:00Z",
                          f"credit.signup_bonus:{U1}"])
    conn.execute(LEDGER, [U2, 1, "credit.upload_refunded", "Refund: upload expired for cat.png",
                          "2026-01-03T00:00:00Z", "credit.upload_refunded:req-1"])
    assert conn.execute("select count(*) from public.user_notifications").fetchone()[0] == notifications
    assert conn.execute("select count(*) from public.credit_ledger").fetchone()[0] == ledger
    balance = conn.execute(
        "select balance from public.user_credit_balances where user_id = %s", [U2]
    ).fetchone()[0]
    assert balance == 1, "the refund was not minted twice"


def test_a_key_the_new_fleet_already_wrote_is_not_given_twice(before_cutover):
    dbname, conn = before_cutover
    original_notification(conn, U1, "identity.signup", {"email": "a@x"}, "2026-01-01T00:00:00Z")
    # a new writer got there first (the migration ran late)
    conn.execute(NOTIFICATION, [U1, "identity.signup", "{}", "2026-01-01T00:00:00Z",
                                f"identity.signup:{U1}"])

    assert supabase_apply.apply(conninfo_for(dbname))[:2] == ["20261130000000", "20261130000100"]

    assert keys(conn, "user_notifications") == [None, f"identity.signup:{U1}"]


def test_running_it_again_after_a_rollback_keys_only_the_new_keyless_rows(before_cutover):
    dbname, conn = before_cutover
    original_notification(conn, U1, "identity.signup", {"email": "a@x"}, "2026-01-01T00:00:00Z")
    supabase_apply.apply(conninfo_for(dbname))
    # rolled back to the original fleet for a while: it writes keyless rows again
    original_notification(conn, U2, "identity.signup", {"email": "b@x"}, "2026-02-01T00:00:00Z")

    assert conn.execute("select * from cutover.key_pre_cutover_rows()").fetchone() == (1, 0)
    assert conn.execute("select * from cutover.key_pre_cutover_rows()").fetchone() == (0, 0)
    assert keys(conn, "user_notifications") == [f"identity.signup:{U1}", f"identity.signup:{U2}"]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_the_api_roles_cannot_run_it(before_cutover, role):
    dbname, conn = before_cutover
    supabase_apply.apply(conninfo_for(dbname))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with conn.transaction():
            conn.execute(f"set local role {role}")
            conn.execute("select * from cutover.key_pre_cutover_rows()")
