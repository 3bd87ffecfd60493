"""The chaos run's audit: pure functions from what the load did (model.Request) and what the
platform holds at the end (model.Snapshot) to verdicts. No I/O, so tests/chaos exercises the
rules on hand-made data.

Per request the gateway acknowledged, exactly one effect:
- message: one `user.message` row with the message's text;
- upload: one outcome, with the rows that outcome implies and no others:
  rejected (notification, no deduction), completed (deduction, media_files row, object with
  the uploaded bytes, completion notification, no refund), expired (deduction, refund, expiry
  notification, no media row) or failed (deduction, failure notification); an intent that was
  approved but has no outcome is stuck;
- download: one download_ready notification, and its signed URL served the uploaded bytes;
- delete: one file_deleted notification, the row soft-deleted and the object removed.
A request that was not acknowledged (503, no answer) may have had its effect or not, but never
two. Every row, object and dead letter must belong to a request of the load; the ledger never
goes below zero for anyone and the balance view equals the ledger's sum.

Uploads are matched by file name (unique per upload in a run): every row an upload leaves
carries it (payload, ledger description or path), even when the gateway's answer, and so the
request id, never reached the client.
"""

from __future__ import annotations

import posixpath
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from scripts.chaos.model import (
    DELETE,
    DOWNLOAD,
    MESSAGE,
    PUT_OK,
    UPLOAD,
    DeadLetter,
    Fault,
    LedgerRow,
    Notification,
    Request,
    Snapshot,
)

OK, LOST, DUPLICATED, STUCK = "ok", "lost", "duplicated", "stuck"

#: The run requires effects to flow again this soon after any restart.
RECOVERY_LIMIT = 60.0
#: A restart's effects are watched this long, so a slow recovery shows by how much it missed.
MEASURE_WINDOW = 90.0
#: An object-store kill this soon after a PUT can lose the PUT's webhook (below).
WEBHOOK_AT_RISK_SECONDS = 30.0
OBJECT_STORE = "objectstore"

SEED_KEY_PREFIX = "chaos.seed:"
DEDUCTED, REFUNDED = "credit.upload_deducted", "credit.upload_refunded"
UPLOAD_TYPES = ("media.upload_ready", "media.upload_rejected", "media.upload_completed",
                "media.upload_expired", "media.upload_failed")
UPLOAD_OUTCOMES = ("rejected", "completed", "expired", "failed")


@dataclass
class Verdict:
    request: Request
    verdict: str
    outcome: str
    detail: str = ""
    #: why an anomaly does not count against the platform (empty when there was none)
    explained: str = ""


@dataclass
class AuditResult:
    verdicts: list[Verdict]
    unexplained_rows: list[str] = field(default_factory=list)
    dead_letters: list[tuple[DeadLetter, str | None]] = field(default_factory=list)
    balance_problems: list[str] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for v in self.verdicts if v.verdict == verdict)

    @property
    def acknowledged(self) -> int:
        return sum(1 for v in self.verdicts if v.request.acked)

    @property
    def effects(self) -> int:
        """Acknowledged requests with exactly their one effect."""
        return sum(1 for v in self.verdicts if v.request.acked and v.verdict == OK)

    @property
    def unexplained_dead_letters(self) -> list[DeadLetter]:
        return [d for d, why in self.dead_letters if why is None]

    @property
    def unexplained(self) -> int:
        return (len(self.unexplained_rows) + len(self.unexplained_dead_letters)
                + len(self.balance_problems))

    def outcomes(self, kind: str) -> Counter:
        return Counter(v.outcome for v in self.verdicts if v.request.kind == kind and v.request.acked)

    def ok(self) -> bool:
        return not (self.count(LOST) or self.count(DUPLICATED) or self.count(STUCK) or self.unexplained)


# ------------------------------------------------------------------------------------------ index


def _name(path: str | None) -> str | None:
    return posixpath.basename(path) if path else None


class Index:
    """The snapshot's rows, grouped the ways the rules look them up."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.by_name: dict[tuple[str, str], list[Notification]] = defaultdict(list)
        self.by_request: dict[str, list[Notification]] = defaultdict(list)
        self.messages: dict[str, list[Notification]] = defaultdict(list)
        self.deleted: dict[tuple[str, str], list[Notification]] = defaultdict(list)
        for n in snapshot.notifications:
            if n.event_type == "user.message":
                self.messages[n.payload.get("message", "")].append(n)
            elif n.event_type == "media.file_deleted":
                self.deleted[(n.user_id, n.payload.get("file_path", ""))].append(n)
            elif n.event_type == "credit.balance_changed":
                self.by_name[(f"credit.{n.payload.get('reason')}", n.file_name or "")].append(n)
            else:
                self.by_name[(n.event_type, n.file_name or "")].append(n)
            if n.payload.get("request_id"):
                self.by_request[n.payload["request_id"]].append(n)
        self.ledger: dict[tuple[str, str], list[LedgerRow]] = defaultdict(list)
        for row in snapshot.ledger:
            if row.event_type == DEDUCTED:
                self.ledger[(DEDUCTED, row.description.removeprefix("Upload: "))].append(row)
            elif row.event_type == REFUNDED:
                self.ledger[(REFUNDED, row.description.removeprefix("Refund: upload expired for "))].append(row)
        self.media: dict[str, list] = defaultdict(list)
        for row in snapshot.media:
            self.media[_name(row.file_path) or ""].append(row)
        self.objects: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for key, sha in snapshot.objects.items():
            self.objects[(key.split("/", 1)[0], _name(key) or "")].append((key, sha))

    def named(self, event_type: str, name: str) -> list[Notification]:
        return self.by_name.get((event_type, name), [])


# ------------------------------------------------------------------------------------------ rules


def lost_webhook(request: Request, faults: list[Fault]) -> str:
    """Why a PUT that succeeded may have left no saga: the object store was killed while its
    webhook for the PUT (or for the move it causes) could still be queued. local-objectstore
    keeps that queue in memory; MinIO persists it (compose: MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_*),
    so this explains a property of the test double, not of the platform."""
    if request.put != PUT_OK or request.put_at is None:
        return ""
    for fault in faults:
        if fault.target == OBJECT_STORE and \
                request.put_at - 2 <= fault.killed <= request.put_at + WEBHOOK_AT_RISK_SECONDS:
            return (f"object store SIGKILLed {fault.killed - request.put_at:+.1f} s after the PUT: "
                    "its in-memory webhook queue was lost")
    return ""


def _upload(request: Request, idx: Index, deleted_paths: set[str], faults: list[Fault]) -> Verdict:
    name = request.key
    ready = idx.named("media.upload_ready", name)
    found = {o: idx.named(f"media.upload_{o}", name) for o in UPLOAD_OUTCOMES}
    deducted, refunded = idx.ledger.get((DEDUCTED, name), []), idx.ledger.get((REFUNDED, name), [])
    changed_deducted = idx.named("credit.upload_deducted", name)
    changed_refunded = idx.named("credit.upload_expired", name)
    rows = idx.media.get(name, [])
    files = idx.objects.get(("files", name), [])
    staged = idx.objects.get(("uploads", name), [])

    def verdict(v: str, outcome: str, detail: str = "", explained: str = "") -> Verdict:
        return Verdict(request, v, outcome, detail, explained)

    several = {label: len(items) for label, items in (
        ("upload_ready", ready), *((f"upload_{o}", found[o]) for o in UPLOAD_OUTCOMES),
        ("deduction", deducted), ("refund", refunded), ("deduction notification", changed_deducted),
        ("refund notification", changed_refunded), ("media_files row", rows), ("object", files))
        if len(items) > 1}
    outcomes = [o for o in UPLOAD_OUTCOMES if found[o]]
    if several:
        return verdict(DUPLICATED, "/".join(outcomes) or "none", f"more than one: {several}")
    if len(outcomes) > 1:
        return verdict(DUPLICATED, "/".join(outcomes), "two outcomes")
    if request.acked and ready and ready[0].payload.get("request_id") != request.request_id:
        return verdict(DUPLICATED, "mismatch", "upload_ready of another request id")

    if not outcomes:
        if deducted or ready or rows or files:
            return verdict(STUCK, "none", "approved or charged but no outcome")
        if request.acked:
            return verdict(LOST, "none", "no effect at all")
        return verdict(OK, "none")

    outcome = outcomes[0]
    missing: list[str] = []
    if outcome == "rejected":
        # internal_error: the credit check could not reach the ledger (a database outage) and
        # refused rather than guess; the user may try again, nothing was charged
        outcome = f"rejected ({found['rejected'][0].payload.get('reason')})"
        if deducted or ready or changed_deducted:
            return verdict(DUPLICATED, outcome, "rejected, yet charged or signed")
        return verdict(OK, outcome)
    for label, items in (("deduction", deducted), ("deduction notification", changed_deducted),
                         ("upload_ready", ready)):
        if not items:
            missing.append(label)
    if outcome == "completed":
        if refunded or changed_refunded:
            return verdict(DUPLICATED, outcome, "completed and refunded")
        if not rows:
            missing.append("media_files row")
        permanent = "files/" + request.staging_path.removeprefix("uploads/") if request.staging_path else None
        if rows and rows[0].file_path not in deleted_paths:
            if rows[0].status != "active":
                missing.append(f"active row (is {rows[0].status})")
            if not files:
                missing.append("object under files/")
            elif request.content_sha and files[0][1] != request.content_sha:
                missing.append("the uploaded bytes (object differs)")
        if permanent and rows and rows[0].file_path != permanent:
            missing.append(f"row at {permanent}")
        # a staging copy left behind by a move whose removal failed is by design (the bucket's
        # lifecycle rule on uploads/ removes it, crates/substrate/src/s3.rs), so not checked
        return verdict(LOST if missing else OK, outcome, "missing: " + ", ".join(missing) if missing else "")
    # expired or failed: the upload never became a file
    if rows:
        return verdict(DUPLICATED, outcome, f"{outcome}, yet given a media_files row")
    if files:
        # the user paid and was told the upload failed, while the file sits in files/ without
        # a row: lost to them, and an orphaned object
        return verdict(LOST, outcome, f"{outcome} although the object was moved to files/ (orphaned, no row)")
    if outcome == "expired":
        if not refunded:
            missing.append("refund")
        if not changed_refunded:
            missing.append("refund notification")
        if staged:
            missing.append("staging object removed")
    if missing:
        return verdict(LOST, outcome, "missing: " + ", ".join(missing))
    if request.put == PUT_OK:
        # the client's PUT succeeded: the upload should have completed
        why = lost_webhook(request, faults)
        if why:
            return verdict(OK, outcome, f"{outcome} after a successful PUT", why)
        return verdict(LOST, outcome, f"{outcome} after a successful PUT")
    return verdict(OK, outcome)


def _message(request: Request, idx: Index) -> Verdict:
    rows = idx.messages.get(request.key, [])
    if len(rows) > 1:
        return Verdict(request, DUPLICATED, "row", f"{len(rows)} rows")
    if rows:
        return Verdict(request, OK, "row")
    return Verdict(request, LOST if request.acked else OK, "none")


def _download(request: Request, idx: Index) -> Verdict:
    if not request.acked:
        return Verdict(request, OK, "unknown")  # no request id to match by; see _unexplained
    answers = idx.by_request.get(request.request_id or "", [])
    ready = [n for n in answers if n.event_type == "media.download_ready"]
    rejected = [n for n in answers if n.event_type == "media.download_rejected"]
    if len(ready) + len(rejected) > 1:
        return Verdict(request, DUPLICATED, "ready", f"{len(ready)} ready, {len(rejected)} rejected")
    if rejected:
        return Verdict(request, LOST, "rejected", f"an existing file was refused: {rejected[0].payload.get('reason')}")
    if not ready:
        return Verdict(request, LOST, "none", "no download_ready")
    if request.fetched != "ok":
        return Verdict(request, LOST, "ready", f"the signed URL did not serve the file ({request.fetched})")
    return Verdict(request, OK, "ready")


def _delete(request: Request, idx: Index) -> Verdict:
    target = request.target or ""
    deleted = idx.deleted.get((request.user, target), [])
    rejected = [n for n in idx.by_request.get(request.request_id or "", [])
                if n.event_type == "media.delete_rejected"]
    rows = [r for r in idx.media.get(_name(target) or "", []) if r.file_path == target]
    present = [key for key, _ in idx.objects.get(("files", _name(target) or ""), []) if key == target]
    if len(deleted) > 1:
        return Verdict(request, DUPLICATED, "deleted", f"{len(deleted)} file_deleted rows")
    if rejected:
        return Verdict(request, LOST if request.acked else OK, "rejected",
                       f"an existing file was refused: {rejected[0].payload.get('reason')}")
    if not deleted:
        if rows and rows[0].status == "deleted":
            return Verdict(request, STUCK, "none", "row deleted but no file_deleted notification")
        return Verdict(request, LOST if request.acked else OK, "none")
    missing = []
    if not rows or rows[0].status != "deleted":
        missing.append("row soft-deleted")
    if present:
        missing.append("object removed")
    if missing:
        return Verdict(request, STUCK, "deleted", "not yet: " + ", ".join(missing))
    return Verdict(request, OK, "deleted")


# ------------------------------------------------------------------------------------------ rows


def _unexplained(requests: list[Request], snapshot: Snapshot, seeds: dict[str, int]) -> list[str]:
    """Rows and objects that no request of the load accounts for."""
    messages = {r.key for r in requests if r.kind == MESSAGE}
    uploads = {r.key for r in requests if r.kind == UPLOAD}
    request_ids = {r.request_id for r in requests if r.request_id}
    unanswered_paths = {(r.kind, r.target) for r in requests if r.kind in (DOWNLOAD, DELETE) and not r.acked}
    delete_targets = {(r.user, r.target) for r in requests if r.kind == DELETE}
    found = []
    for n in snapshot.notifications:
        if n.event_type == "user.message":
            known = n.payload.get("message") in messages
        elif n.event_type in UPLOAD_TYPES or (n.event_type == "credit.balance_changed"
                                              and n.payload.get("reason") in ("upload_deducted", "upload_expired")):
            known = n.file_name in uploads
        elif n.event_type in ("media.download_ready", "media.download_rejected"):
            known = n.payload.get("request_id") in request_ids or \
                (DOWNLOAD, n.payload.get("file_path")) in unanswered_paths
        elif n.event_type == "media.delete_rejected":
            known = n.payload.get("request_id") in request_ids or \
                (DELETE, n.payload.get("file_path")) in unanswered_paths
        elif n.event_type == "media.file_deleted":
            known = (n.user_id, n.payload.get("file_path")) in delete_targets
        else:
            known = False
        if not known:
            found.append(f"notification {n.id} {n.event_type} {n.payload}")
    for row in snapshot.ledger:
        if row.idempotency_key == f"{SEED_KEY_PREFIX}{row.user_id}" and row.user_id in seeds:
            continue
        name = row.description.removeprefix("Upload: ").removeprefix("Refund: upload expired for ")
        if row.event_type not in (DEDUCTED, REFUNDED) or name not in uploads:
            found.append(f"ledger row {row.id} {row.event_type} {row.description!r}")
    for media in snapshot.media:
        if _name(media.file_path) not in uploads:
            found.append(f"media_files row {media.id} {media.file_path}")
    for key in snapshot.objects:
        if _name(key) not in uploads:
            found.append(f"object {key}")
    return found


def _balances(snapshot: Snapshot, seeds: dict[str, int]) -> list[str]:
    problems = []
    sums: dict[str, int] = defaultdict(int)
    lowest: dict[str, int] = {}
    for row in sorted(snapshot.ledger, key=lambda r: r.id):
        sums[row.user_id] += row.amount
        lowest[row.user_id] = min(lowest.get(row.user_id, 0), sums[row.user_id])
    for user, low in lowest.items():
        if low < 0:
            problems.append(f"{user}: the ledger went down to {low}")
    for user in set(sums) | set(snapshot.balances):
        if snapshot.balances.get(user, 0) != sums.get(user, 0):
            problems.append(f"{user}: balance {snapshot.balances.get(user)} but the ledger sums to {sums.get(user, 0)}")
    for user, seed in seeds.items():
        if not any(r.user_id == user and r.idempotency_key == f"{SEED_KEY_PREFIX}{user}" and r.amount == seed
                   for r in snapshot.ledger):
            problems.append(f"{user}: the seed grant of {seed} is missing")
    return problems


def _dead_letter(letter: DeadLetter, requests: list[Request], verdicts: dict[int, Verdict]) -> str | None:
    """The explanation of a dead-lettered record: it belongs to a request of the load whose
    effects are complete and consistent, so giving up on it cost nothing (for the move saga's
    dead letter: the upload ended failed, which the audit accepted). None otherwise."""
    value = letter.value
    if value is None:
        return None
    names = {_name(value.get(k)) for k in ("file_path", "permanent_path")} | {value.get("file_name")}
    keys = {value.get("request_id"), value.get("message")}
    for request in requests:
        if request.key in names or request.key in keys or (request.request_id and request.request_id in keys) \
                or (request.target and request.target in (value.get("file_path"), value.get("permanent_path"))):
            verdict = verdicts[id(request)]
            if verdict.verdict != OK:
                return None
            error = letter.headers.get("dlq.error", value.get("failure_reason", ""))
            return f"{request.kind} {request.key}: ended {verdict.outcome} ({error})"
    return None


def audit(requests: list[Request], snapshot: Snapshot, seeds: dict[str, int],
          faults: list[Fault]) -> AuditResult:
    idx = Index(snapshot)
    deleted_paths = {r.target for r in requests if r.kind == DELETE and r.target}
    verdicts = []
    for request in requests:
        if request.kind == MESSAGE:
            verdicts.append(_message(request, idx))
        elif request.kind == UPLOAD:
            verdicts.append(_upload(request, idx, deleted_paths, faults))
        elif request.kind == DOWNLOAD:
            verdicts.append(_download(request, idx))
        else:
            verdicts.append(_delete(request, idx))
    by_request = {id(v.request): v for v in verdicts}
    return AuditResult(
        verdicts=verdicts,
        unexplained_rows=_unexplained(requests, snapshot, seeds),
        dead_letters=[(d, _dead_letter(d, requests, by_request)) for d in snapshot.dead_letters],
        balance_problems=_balances(snapshot, seeds),
    )


def slow_recoveries(faults: list[Fault]) -> list[Fault]:
    return [f for f in faults if f.recovery is None or f.recovery > RECOVERY_LIMIT]


def pending(requests: list[Request], snapshot: Snapshot, seeds: dict[str, int], faults: list[Fault]) -> int:
    """Acknowledged requests without their complete effect yet (the drain waits for 0)."""
    result = audit(requests, snapshot, seeds, faults)
    return sum(1 for v in result.verdicts if v.request.acked and v.verdict in (LOST, STUCK))
