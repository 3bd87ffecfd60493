"""Upload TTL: an upload URL that was signed but never used expires, which refunds the credit
(credit_balance_processor.sql) and lets media-service delete the staging object.

Pipeline (spec 4.3, with the fixes of spec 13.3-13.5):

1. UploadDetailsJoin, keyed by request_id: joins public.media.upload.approved (file_size,
   media_type and request_time of the intent) with public.media.upload.signed (the staging
   file_path and the URL's expires_in) into one "pending upload". A signed event whose approval
   has not arrived within DETAILS_WAIT_SECONDS goes on without the details (size 0, type "",
   request_time = signed_time) so its TTL still runs.
2. TTLExpiry, keyed by the staging path uploads/<user>/<uuid>/<name>: a pending upload arms a
   timer at now + expires_in + UPLOAD_TTL_GRACE_SECONDS. Completion is either
   internal.media.upload.received (the object landed in staging) or
   public.media.upload.confirmed (moved to files/..., mapped back to the staging path),
   whichever comes first. A timer that fires without completion emits FileUploadExpired to
   public.media.expired.events.

Both steps keep one armed timer per key (common.Deadline) and ignore a timer that is not the
current one, so a timer firing after its state was cleared emits nothing.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Mapping

from pyflink_jobs import common
from pyflink_jobs.common import Deadline, TimerServiceLike, ValueStateLike

#: Fallback TTL when a signed event carries no positive expires_in (spec: 900 s, the presigned
#: URL's validity).
UPLOAD_TTL_SECONDS = 900
#: Time after the URL's expiry before an upload counts as expired: a PUT that started just
#: before the URL expired may still finish (spec 13.5: a TTL equal to the URL validity races
#: with such uploads).
UPLOAD_TTL_GRACE_SECONDS = 300
#: How long a signed event waits for its approval (cross-topic lag) before it goes on without
#: file_size/media_type.
DETAILS_WAIT_SECONDS = 30
#: How long an approval waits for its signed event, and a completion for its pending upload
#: (events that arrive in the other order), before the state is dropped.
ORPHAN_RETENTION_SECONDS = UPLOAD_TTL_SECONDS + UPLOAD_TTL_GRACE_SECONDS

PENDING_UPLOAD = common.columns(
    "user_id, file_path, file_name, upload_url, expires_in INT, request_id, signed_time,"
    " file_size BIGINT, media_type, request_time"
)
COMPLETION = common.columns("staging_path, source")


def staging_path_of(permanent_path: str) -> str:
    """files/<user>/<uuid>/<name> -> uploads/<user>/<uuid>/<name> (the move saga's mapping
    in reverse)."""
    if permanent_path.startswith("files/"):
        return "uploads/" + permanent_path[len("files/"):]
    return permanent_path


def _load(state: ValueStateLike) -> dict[str, Any] | None:
    raw = state.value()
    return json.loads(raw) if raw else None


class UploadDetailsJoin:
    """Step 1, keyed by request_id. Input 1: approved, input 2: signed (dicts by column
    name). Returns the pending uploads to emit."""

    def __init__(
        self,
        approved: ValueStateLike,
        signed: ValueStateLike,
        deadline: ValueStateLike,
        details_wait_seconds: int = DETAILS_WAIT_SECONDS,
        orphan_retention_seconds: int = ORPHAN_RETENTION_SECONDS,
    ) -> None:
        self.approved = approved
        self.signed = signed
        self.deadline = Deadline(deadline)
        self.details_wait_ms = details_wait_seconds * 1000
        self.orphan_retention_ms = orphan_retention_seconds * 1000

    def on_approved(self, event: Mapping[str, Any], timers: TimerServiceLike) -> list[dict]:
        signed = _load(self.signed)
        if signed is not None:
            self._clear(timers)
            return [pending_upload(signed, event)]
        self.approved.update(json.dumps(dict(event)))
        self.deadline.arm(timers, self.orphan_retention_ms)
        return []

    def on_signed(self, event: Mapping[str, Any], timers: TimerServiceLike) -> list[dict]:
        approved = _load(self.approved)
        if approved is not None:
            self._clear(timers)
            return [pending_upload(event, approved)]
        self.signed.update(json.dumps(dict(event)))
        self.deadline.arm(timers, self.details_wait_ms)
        return []

    def on_timer(self, timestamp: int, timers: TimerServiceLike) -> list[dict]:
        if not self.deadline.is_current(timestamp):
            return []
        signed = _load(self.signed)
        self._clear(timers)
        return [pending_upload(signed, None)] if signed is not None else []

    def _clear(self, timers: TimerServiceLike) -> None:
        self.deadline.disarm(timers)
        self.approved.clear()
        self.signed.clear()


def pending_upload(signed: Mapping[str, Any], approved: Mapping[str, Any] | None) -> dict:
    """The signed event plus the intent's details (fallbacks when the approval is missing)."""
    out = {c.name: signed.get(c.name) for c in common.UPLOAD_SIGNED}
    if approved is not None:
        out["file_size"] = approved.get("file_size") or 0
        out["media_type"] = approved.get("media_type") or ""
        out["request_time"] = approved.get("request_time") or signed.get("signed_time") or ""
    else:
        out["file_size"] = 0
        out["media_type"] = ""
        out["request_time"] = signed.get("signed_time") or ""
    return out


class TTLExpiry:
    """Step 2, keyed by the staging path. Input 1: pending uploads, input 2: completions.
    Returns the FileUploadExpired records to emit."""

    def __init__(
        self,
        signed_event: ValueStateLike,
        upload_completed: ValueStateLike,
        deadline: ValueStateLike,
        now_iso: Callable[[], str] = common.utc_now_iso,
        default_ttl_seconds: int = UPLOAD_TTL_SECONDS,
        grace_seconds: int = UPLOAD_TTL_GRACE_SECONDS,
        orphan_retention_seconds: int = ORPHAN_RETENTION_SECONDS,
    ) -> None:
        self.signed_event = signed_event
        self.upload_completed = upload_completed
        self.deadline = Deadline(deadline)
        self.now_iso = now_iso
        self.default_ttl_seconds = default_ttl_seconds
        self.grace_seconds = grace_seconds
        self.orphan_retention_ms = orphan_retention_seconds * 1000

    def ttl_ms(self, pending: Mapping[str, Any]) -> int:
        expires_in = pending.get("expires_in") or 0
        base = expires_in if expires_in > 0 else self.default_ttl_seconds
        return (base + self.grace_seconds) * 1000

    def on_pending_upload(self, pending: Mapping[str, Any], timers: TimerServiceLike) -> list[dict]:
        if self.upload_completed.value():
            # the upload finished before its signing reached us: nothing to expire
            self._clear(timers)
            return []
        # a re-signed upload (same path) replaces the earlier one and its timer
        self.signed_event.update(json.dumps(dict(pending)))
        self.upload_completed.update(False)
        self.deadline.arm(timers, self.ttl_ms(pending))
        return []

    def on_completion(self, completion: Mapping[str, Any], timers: TimerServiceLike) -> list[dict]:
        if self.signed_event.value():
            self._clear(timers)
            return []
        # completion first (lag between the topics, or an upload without signing): remember it
        # for a while so a late signed event does not start a TTL, then forget it
        self.upload_completed.update(True)
        if not self.deadline.armed():
            self.deadline.arm(timers, self.orphan_retention_ms)
        return []

    def on_timer(self, timestamp: int, timers: TimerServiceLike) -> list[dict]:
        if not self.deadline.is_current(timestamp):
            return []  # stale timer: its state was cleared or replaced
        pending = _load(self.signed_event)
        completed = bool(self.upload_completed.value())
        self._clear(timers)
        if pending is None or completed:
            return []
        return [
            {
                "user_id": pending.get("user_id") or "",
                "file_path": pending.get("file_path") or "",
                "file_name": pending.get("file_name") or "",
                "file_size": pending.get("file_size") or 0,
                "media_type": pending.get("media_type") or "",
                "request_id": pending.get("request_id") or "",
                "request_time": pending.get("request_time") or "",
                "expired_time": self.now_iso(),
            }
        ]

    def _clear(self, timers: TimerServiceLike) -> None:
        self.deadline.disarm(timers)
        self.signed_event.clear()
        self.upload_completed.clear()


# --------------------------------------------------------------------------------------------
# PyFlink adapters

try:
    from pyflink.datastream.functions import KeyedCoProcessFunction
except ImportError:  # the processing classes above work without PyFlink
    KeyedCoProcessFunction = object  # type: ignore[misc,assignment]


def _value_state(ctx, name: str, sql_type: str):
    from pyflink.datastream.state import ValueStateDescriptor

    return ctx.get_state(ValueStateDescriptor(name, common.flink_type(sql_type)))


class UploadDetailsJoinAdapter(KeyedCoProcessFunction):
    def __init__(self, details_wait_seconds: int, orphan_retention_seconds: int) -> None:
        self.details_wait_seconds = details_wait_seconds
        self.orphan_retention_seconds = orphan_retention_seconds
        self.logic: UploadDetailsJoin | None = None

    def open(self, runtime_context) -> None:
        self.logic = UploadDetailsJoin(
            _value_state(runtime_context, "approved_event", "STRING"),
            _value_state(runtime_context, "signed_event", "STRING"),
            _value_state(runtime_context, "timer_at", "BIGINT"),
            self.details_wait_seconds,
            self.orphan_retention_seconds,
        )

    def process_element1(self, value, ctx):
        event = common.row_to_dict(value, common.UPLOAD_APPROVED)
        for out in self.logic.on_approved(event, ctx.timer_service()):
            yield common.to_row(out, PENDING_UPLOAD)

    def process_element2(self, value, ctx):
        event = common.row_to_dict(value, common.UPLOAD_SIGNED)
        for out in self.logic.on_signed(event, ctx.timer_service()):
            yield common.to_row(out, PENDING_UPLOAD)

    def on_timer(self, timestamp, ctx):
        for out in self.logic.on_timer(timestamp, ctx.timer_service()):
            yield common.to_row(out, PENDING_UPLOAD)


class TTLExpiryAdapter(KeyedCoProcessFunction):
    def __init__(self, default_ttl_seconds: int, grace_seconds: int, orphan_retention_seconds: int) -> None:
        self.default_ttl_seconds = default_ttl_seconds
        self.grace_seconds = grace_seconds
        self.orphan_retention_seconds = orphan_retention_seconds
        self.logic: TTLExpiry | None = None

    def open(self, runtime_context) -> None:
        self.logic = TTLExpiry(
            _value_state(runtime_context, "signed_event", "STRING"),
            _value_state(runtime_context, "upload_completed", "BOOLEAN"),
            _value_state(runtime_context, "timer_at", "BIGINT"),
            default_ttl_seconds=self.default_ttl_seconds,
            grace_seconds=self.grace_seconds,
            orphan_retention_seconds=self.orphan_retention_seconds,
        )

    def process_element1(self, value, ctx):
        pending = common.row_to_dict(value, PENDING_UPLOAD)
        for out in self.logic.on_pending_upload(pending, ctx.timer_service()):
            yield common.to_row(out, common.UPLOAD_EXPIRED)

    def process_element2(self, value, ctx):
        completion = common.row_to_dict(value, COMPLETION)
        for out in self.logic.on_completion(completion, ctx.timer_service()):
            yield common.to_row(out, common.UPLOAD_EXPIRED)

    def on_timer(self, timestamp, ctx):
        for out in self.logic.on_timer(timestamp, ctx.timer_service()):
            yield common.to_row(out, common.UPLOAD_EXPIRED)


# --------------------------------------------------------------------------------------------
# Job

SOURCES = {
    # table: (topic, consumer group, columns)
    "upload_approved_source": (
        "public.media.upload.approved", "flink-ttl-expiry-approved", common.UPLOAD_APPROVED,
    ),
    "upload_signed_source": (
        "public.media.upload.signed", "flink-ttl-expiry-signed", common.UPLOAD_SIGNED,
    ),
    "upload_events_source": (
        "internal.media.upload.received", "flink-ttl-expiry-received", common.UPLOAD_RECEIVED,
    ),
    "upload_confirmed_source": (
        "public.media.upload.confirmed", "flink-ttl-expiry-confirmed", common.UPLOAD_CONFIRMED,
    ),
}
SINKS = {"expired_events_sink": ("public.media.expired.events", common.UPLOAD_EXPIRED)}


def settings(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    return {
        "default_ttl_seconds": common.int_env("UPLOAD_TTL_SECONDS", UPLOAD_TTL_SECONDS, environ),
        "grace_seconds": common.int_env(
            "UPLOAD_TTL_GRACE_SECONDS", UPLOAD_TTL_GRACE_SECONDS, environ
        ),
        "details_wait_seconds": common.int_env(
            "UPLOAD_DETAILS_WAIT_SECONDS", DETAILS_WAIT_SECONDS, environ
        ),
    }


def table_ddl(environ: Mapping[str, str] | None = None) -> list[str]:
    return [
        common.kafka_source_ddl(name, topic, group, cols, environ)
        for name, (topic, group, cols) in SOURCES.items()
    ] + [common.kafka_sink_ddl(name, topic, cols, environ) for name, (topic, cols) in SINKS.items()]


def build(t_env, config: Mapping[str, int]):
    """Adds the pipeline from the registered source tables to the sink table; returns the
    statement set to execute."""
    from pyflink.common import Types

    def stream(table: str):
        return t_env.to_data_stream(t_env.from_path(table))

    orphan_retention = config["default_ttl_seconds"] + config["grace_seconds"]
    approved = stream("upload_approved_source")
    signed = stream("upload_signed_source")
    pending = (
        approved.connect(signed)
        .key_by(lambda r: r[4], lambda r: r[5], key_type=Types.STRING())  # request_id
        .process(
            UploadDetailsJoinAdapter(config["details_wait_seconds"], orphan_retention),
            output_type=common.row_type(PENDING_UPLOAD),
        )
        .name("upload-details-join")
    )
    completion_type = common.row_type(COMPLETION)
    received = stream("upload_events_source").map(
        lambda r: common.to_row({"staging_path": r[2], "source": "received"}, COMPLETION),
        output_type=completion_type,
    )
    confirmed = stream("upload_confirmed_source").map(
        lambda r: common.to_row(
            {"staging_path": staging_path_of(r[2] or ""), "source": "confirmed"}, COMPLETION
        ),
        output_type=completion_type,
    )
    expired = (
        pending.connect(received.union(confirmed))
        .key_by(lambda r: r[1], lambda r: r[0], key_type=Types.STRING())  # staging path
        .process(
            TTLExpiryAdapter(
                config["default_ttl_seconds"], config["grace_seconds"], orphan_retention
            ),
            output_type=common.row_type(common.UPLOAD_EXPIRED),
        )
        .name("ttl-expiry")
    )
    t_env.create_temporary_view("expired_results", t_env.from_data_stream(expired))
    statement_set = t_env.create_statement_set()
    statement_set.add_insert_sql("INSERT INTO expired_events_sink SELECT * FROM expired_results")
    return statement_set


def main(extra_config: Mapping[str, str] | None = None) -> int:
    """Submits the job; `extra_config` adds Flink settings (scripts/stack/flink_launch.py
    passes a savepoint to resume from)."""
    try:
        config = settings()
        ddl = table_ddl()
    except common.ConfigError as error:
        print(f"ttl_expiry_processor: {error}", file=sys.stderr)
        return 1
    _, t_env = common.create_environments("ttl-expiry-processor", extra_config=extra_config)
    common.execute_ddl(t_env, ddl)
    common.wait_unless_detached(t_env, build(t_env, config).execute())
    return 0


if __name__ == "__main__":
    sys.exit(main())
