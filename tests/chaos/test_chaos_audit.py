"""The chaos run's audit rules (scripts/chaos/audit.py) and its document tables (report.py) on
hand-made requests and snapshots: no fleet, no database."""

from __future__ import annotations

import itertools

import pytest

from scripts.chaos import audit, report
from scripts.chaos.model import (
    DELETE,
    DOWNLOAD,
    MESSAGE,
    PUT_ABANDONED,
    PUT_OK,
    UPLOAD,
    DeadLetter,
    Fault,
    LedgerRow,
    MediaRow,
    Notification,
    Request,
    Snapshot,
)

USER = "u1"
SEEDS = {USER: 10}
ids = itertools.count(1)


def note(event_type: str, user: str = USER, at: float = 100.0, **payload) -> Notification:
    return Notification(next(ids), user, event_type, payload, None, at)


def ledger(amount: int, event_type: str, description: str, key: str | None = None, user: str = USER) -> LedgerRow:
    return LedgerRow(next(ids), user, amount, event_type, description, key, 100.0)


def seed_row(user: str = USER, amount: int = 10) -> LedgerRow:
    # id 0: the grant is the first row of the ledger, as in a run
    return LedgerRow(0, user, amount, "credit.chaos_grant", "Chaos run grant", f"chaos.seed:{user}", 0.0)


def snapshot(notifications=(), rows=(), media=(), objects=None, letters=(), balances=None) -> Snapshot:
    rows = [seed_row(), *rows]
    if balances is None:
        balances = {}
        for row in rows:
            balances[row.user_id] = balances.get(row.user_id, 0) + row.amount
    return Snapshot(list(notifications), rows, balances, list(media), dict(objects or {}), list(letters))


def upload_request(name="a.png", rid="r1", put=PUT_OK, put_at=50.0, status=202) -> Request:
    return Request(UPLOAD, name, USER, 10.0, status=status, request_id=rid if status == 202 else None,
                   content_sha="sha-a", staging_path=f"uploads/{USER}/k/{name}", put=put, put_at=put_at)


def approved(name="a.png", rid="r1") -> tuple[list[Notification], list[LedgerRow]]:
    """The rows of an approved, signed upload."""
    return ([note("media.upload_ready", file_path=f"uploads/{USER}/k/{name}", request_id=rid, upload_url="u"),
             note("credit.balance_changed", amount=-1, reason="upload_deducted", file_name=name, request_id=rid)],
            [ledger(-1, "credit.upload_deducted", f"Upload: {name}", f"credit.upload_deducted:{rid}")])


def completed(name="a.png", rid="r1", status="active", stored=True):
    notes, rows = approved(name, rid)
    notes.append(note("media.upload_completed", file_path=f"files/{USER}/k/{name}", file_name=name))
    media = [MediaRow(next(ids), USER, f"files/{USER}/k/{name}", status)]
    objects = {f"files/{USER}/k/{name}": "sha-a"} if stored else {}
    return notes, rows, media, objects


def expired(name="a.png", rid="r1"):
    notes, rows = approved(name, rid)
    notes += [note("media.upload_expired", file_path=f"uploads/{USER}/k/{name}", file_name=name, request_id=rid),
              note("credit.balance_changed", amount=1, reason="upload_expired", file_name=name)]
    rows.append(ledger(1, "credit.upload_refunded", f"Refund: upload expired for {name}",
                       f"credit.upload_refunded:{rid}"))
    return notes, rows


def only(result: audit.AuditResult) -> audit.Verdict:
    [verdict] = result.verdicts
    return verdict


# ------------------------------------------------------------------------------ messages


@pytest.mark.parametrize(("rows", "status", "expected"), [
    (1, 204, audit.OK), (0, 204, audit.LOST), (2, 204, audit.DUPLICATED),
    (0, 503, audit.OK), (1, 503, audit.OK), (2, None, audit.DUPLICATED),
])
def test_a_message_has_one_row_when_acknowledged_and_never_two(rows, status, expected) -> None:
    request = Request(MESSAGE, "hello 1", USER, 1.0, status=status)
    found = snapshot([note("user.message", message="hello 1", email="e") for _ in range(rows)])
    assert only(audit.audit([request], found, SEEDS, [])).verdict == expected


# ------------------------------------------------------------------------------ uploads


def test_a_completed_upload_has_its_deduction_row_object_and_notifications() -> None:
    notes, rows, media, objects = completed()
    result = audit.audit([upload_request()], snapshot(notes, rows, media, objects), SEEDS, [])
    assert (only(result).verdict, only(result).outcome) == (audit.OK, "completed")
    assert result.ok() and result.effects == 1


def test_a_completed_upload_whose_object_is_missing_or_different_is_lost() -> None:
    notes, rows, media, _ = completed()
    missing = audit.audit([upload_request()], snapshot(notes, rows, media, {}), SEEDS, [])
    assert only(missing).verdict == audit.LOST and "object" in only(missing).detail
    other = audit.audit([upload_request()], snapshot(notes, rows, media, {f"files/{USER}/k/a.png": "sha-b"}),
                        SEEDS, [])
    assert only(other).verdict == audit.LOST


def test_a_deleted_file_is_judged_by_its_delete_not_by_its_upload() -> None:
    notes, rows, media, _ = completed(status="deleted", stored=False)
    notes.append(note("media.file_deleted", file_path=f"files/{USER}/k/a.png", file_name="a.png"))
    delete = Request(DELETE, "delete-1", USER, 60.0, status=202, request_id="d1", target=f"files/{USER}/k/a.png")
    result = audit.audit([upload_request(), delete], snapshot(notes, rows, media), SEEDS, [])
    assert [v.verdict for v in result.verdicts] == [audit.OK, audit.OK]


def test_two_outcomes_for_one_upload_are_a_duplicate() -> None:
    notes, rows, media, objects = completed()
    more, refund = expired()
    result = audit.audit([upload_request()], snapshot(notes + more[2:], rows + refund[1:], media, objects), SEEDS, [])
    assert only(result).verdict == audit.DUPLICATED


def test_an_approved_upload_without_an_outcome_is_stuck_and_one_without_any_trace_lost() -> None:
    notes, rows = approved()
    assert only(audit.audit([upload_request()], snapshot(notes, rows), SEEDS, [])).verdict == audit.STUCK
    assert only(audit.audit([upload_request()], snapshot(), SEEDS, [])).verdict == audit.LOST
    # not acknowledged: no trace is fine
    unanswered = upload_request(status=503)
    assert only(audit.audit([unanswered], snapshot(), SEEDS, [])).verdict == audit.OK


def test_a_rejected_upload_is_never_charged() -> None:
    rejection = note("media.upload_rejected", file_name="a.png", request_id="r1", reason="insufficient_credits")
    assert only(audit.audit([upload_request(put=None)], snapshot([rejection]), SEEDS, [])).verdict == audit.OK
    _, rows = approved()
    charged = audit.audit([upload_request(put=None)], snapshot([rejection], rows), SEEDS, [])
    assert only(charged).verdict == audit.DUPLICATED


def test_an_abandoned_upload_expires_with_its_refund() -> None:
    notes, rows = expired()
    request = upload_request(put=PUT_ABANDONED, put_at=None)
    assert only(audit.audit([request], snapshot(notes, rows), SEEDS, [])).verdict == audit.OK
    without_refund = audit.audit([request], snapshot(notes, rows[:1]), SEEDS, [])
    assert only(without_refund).verdict == audit.LOST and "refund" in only(without_refund).detail


def test_an_upload_that_expired_after_its_put_is_lost_unless_the_object_store_was_killed_then() -> None:
    notes, rows = expired()
    request = upload_request(put=PUT_OK, put_at=50.0)
    assert only(audit.audit([request], snapshot(notes, rows), SEEDS, [])).verdict == audit.LOST
    kill = Fault("objectstore", killed=55.0, restarted=58.0, recovery=1.0)
    explained = only(audit.audit([request], snapshot(notes, rows), SEEDS, [kill]))
    assert explained.verdict == audit.OK and "webhook" in explained.explained
    late = Fault("objectstore", killed=50.0 + audit.WEBHOOK_AT_RISK_SECONDS + 5, restarted=99.0, recovery=1.0)
    assert only(audit.audit([request], snapshot(notes, rows), SEEDS, [late])).verdict == audit.LOST


# ------------------------------------------------------------------------------ downloads, deletes


def download_request(fetched="ok") -> Request:
    return Request(DOWNLOAD, "download-1", USER, 70.0, status=202, request_id="g1",
                   target=f"files/{USER}/k/a.png", expected_sha="sha-a", fetched=fetched)


def test_a_download_is_one_ready_answer_whose_url_served_the_file() -> None:
    ready = note("media.download_ready", file_path=f"files/{USER}/k/a.png", request_id="g1", download_url="x")
    assert only(audit.audit([download_request()], snapshot([ready]), SEEDS, [])).verdict == audit.OK
    assert only(audit.audit([download_request("mismatch")], snapshot([ready]), SEEDS, [])).verdict == audit.LOST
    rejected = note("media.download_rejected", file_path=f"files/{USER}/k/a.png", request_id="g1", reason="not_found")
    assert only(audit.audit([download_request()], snapshot([rejected]), SEEDS, [])).verdict == audit.LOST
    assert only(audit.audit([download_request()], snapshot([ready, rejected]), SEEDS, [])).verdict == audit.DUPLICATED


def test_a_delete_is_done_when_notified_soft_deleted_and_removed() -> None:
    path = f"files/{USER}/k/a.png"
    request = Request(DELETE, "delete-1", USER, 60.0, status=202, request_id="d1", target=path)
    deleted = note("media.file_deleted", file_path=path, file_name="a.png")
    row = MediaRow(next(ids), USER, path, "deleted")
    assert only(audit.audit([request], snapshot([deleted], media=[row]), SEEDS, [])).verdict == audit.OK
    still_there = audit.audit([request], snapshot([deleted], media=[row], objects={path: "sha-a"}), SEEDS, [])
    assert only(still_there).verdict == audit.STUCK
    assert only(audit.audit([request], snapshot(media=[MediaRow(1, USER, path, "active")]), SEEDS, [])).verdict \
        == audit.LOST


# ------------------------------------------------------------------------------ the rest


def test_rows_no_request_accounts_for_are_unexplained() -> None:
    stray = note("media.upload_completed", file_path=f"files/{USER}/k/zzz.png", file_name="zzz.png")
    bonus = ledger(2, "credit.signup_bonus", "Welcome bonus: 2 credits")
    result = audit.audit([], snapshot([stray], [bonus], objects={"files/x/zzz.png": "s"}), SEEDS, [])
    assert len(result.unexplained_rows) == 3 and not result.ok()
    assert audit.audit([], snapshot(), SEEDS, []).ok()


def test_the_ledger_never_goes_below_zero_and_the_view_is_its_sum() -> None:
    dip = [ledger(-11, "credit.upload_deducted", "Upload: a.png"), ledger(1, "credit.upload_refunded",
                                                                          "Refund: upload expired for a.png")]
    assert any("went down to -1" in p for p in audit._balances(snapshot(rows=dip), SEEDS))
    assert any("ledger sums" in p for p in audit._balances(snapshot(balances={USER: 9}), SEEDS))
    assert audit._balances(snapshot(), SEEDS) == []


def test_a_dead_letter_is_explained_only_by_a_request_whose_effects_are_consistent() -> None:
    notes, rows = approved()
    failed = note("media.upload_failed", file_path=f"files/{USER}/k/a.png", file_name="a.png",
                  failure_reason="max retries exceeded")
    letter = DeadLetter("internal.media.upload.dead-letter", 0, {},
                        {"file_path": f"uploads/{USER}/k/a.png", "permanent_path": f"files/{USER}/k/a.png",
                         "failure_reason": "max retries exceeded"})
    request = upload_request(put=None)  # never PUT: failing is its right outcome here
    result = audit.audit([request], snapshot(notes + [failed], rows, letters=[letter]), SEEDS, [])
    assert result.dead_letters[0][1] and result.ok()
    unknown = DeadLetter("internal.user.message.dead-letter", 3, {"dlq.error": "boom"}, {"message": "?"})
    result = audit.audit([], snapshot(letters=[unknown]), SEEDS, [])
    assert result.unexplained_dead_letters == [unknown] and not result.ok()


def test_recoveries_over_the_limit_or_never_seen_are_slow() -> None:
    faults = [Fault("broker", 0, 3, 12.0), Fault("postgres", 0, 3, 61.0), Fault("flink-sql", 0, 3, None)]
    assert [f.target for f in audit.slow_recoveries(faults)] == ["postgres", "flink-sql"]


def test_the_document_keeps_one_row_per_label(tmp_path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text("# R\n<!-- chaos-summary:begin -->\n<!-- chaos-summary:end -->\n"
                   "<!-- chaos-recoveries:begin -->\n<!-- chaos-recoveries:end -->\n## Fuzzing\nkept\n")
    result = audit.audit([], snapshot(), SEEDS, [])
    faults = [Fault("broker", 0, 3, 12.0)]
    counts = {MESSAGE: 10, UPLOAD: 2, DOWNLOAD: 1, DELETE: 1}
    for label, date in (("2-minute run", "d1"), ("15-minute run", "d2"), ("2-minute run", "d3")):
        report.record(doc, label, report.summary_row(label, date, 120, counts, faults, result, True),
                      report.recovery_rows(label, faults))
    text = doc.read_text()
    assert text.count("| 2-minute run |") == 2 and "| d3 |" in text and "| d1 |" not in text
    assert "| 15-minute run | d2 |" in text and text.endswith("## Fuzzing\nkept\n")


def test_an_upload_that_failed_although_its_file_was_moved_is_lost() -> None:
    notes, rows = approved()
    failed = note("media.upload_failed", file_path=f"files/{USER}/k/a.png", file_name="a.png")
    result = audit.audit([upload_request()], snapshot(notes + [failed], rows, objects={f"files/{USER}/k/a.png": "sha-a"}),
                         SEEDS, [])
    assert only(result).verdict == audit.LOST and "orphaned" in only(result).detail
