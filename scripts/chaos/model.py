"""What the chaos run records and observes: plain data, no I/O (the audit and its tests use
these without a fleet)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

MESSAGE, UPLOAD, DOWNLOAD, DELETE = "message", "upload", "download", "delete"
KINDS = (MESSAGE, UPLOAD, DOWNLOAD, DELETE)
#: The gateway's acknowledgement per route: 204 once the broker has the event, 202 for intents.
ACK_STATUS = {MESSAGE: 204, UPLOAD: 202, DOWNLOAD: 202, DELETE: 202}

#: PUT outcomes of an upload saga, from the client's side.
PUT_OK, PUT_FAILED, PUT_ABANDONED, PUT_NO_URL = "ok", "failed", "abandoned", "no-url"


@dataclass
class Request:
    """One HTTP request of the load and what the client saw of its saga."""

    kind: str
    #: unique in the run: the message text, the upload's file name, the download/delete's tag
    key: str
    user: str
    sent: float
    status: int | None = None  # None: no answer (connection refused, timeout)
    answered: float | None = None
    request_id: str | None = None
    error: str | None = None
    # uploads
    content_sha: str | None = None
    abandon: bool = False  # the client never PUTs (the TTL must expire it and refund)
    staging_path: str | None = None
    put: str | None = None  # PUT_*
    put_at: float | None = None
    # downloads and deletes: the permanent path they name, and the bytes it must serve
    target: str | None = None
    expected_sha: str | None = None
    fetched: str | None = None  # ok | mismatch | failed: the GET of the signed download URL

    @property
    def acked(self) -> bool:
        return self.status == ACK_STATUS[self.kind]


@dataclass
class Notification:
    id: int
    user_id: str
    event_type: str
    payload: dict[str, Any]
    idempotency_key: str | None
    created_at: float  # epoch seconds

    @property
    def file_name(self) -> str | None:
        """The upload's file name, from the payload or the last segment of its path."""
        if self.payload.get("file_name"):
            return self.payload["file_name"]
        path = self.payload.get("file_path")
        return posixpath.basename(path) if path else None


@dataclass
class LedgerRow:
    id: int
    user_id: str
    amount: int
    event_type: str
    description: str
    idempotency_key: str | None
    created_at: float


@dataclass
class MediaRow:
    id: int
    user_id: str
    file_path: str
    status: str


@dataclass
class DeadLetter:
    topic: str  # base name (without the run's suffix)
    offset: int
    headers: dict[str, str]
    #: the decoded record (Avro by its writer's schema), or None when it could not be decoded
    value: dict[str, Any] | None


@dataclass
class Fault:
    target: str
    killed: float
    restarted: float | None = None
    #: seconds from the restart until every kind of flow had an effect again (None: not within
    #: the measuring window)
    recovery: float | None = None
    #: per kind: seconds from the restart to the first effect of a request sent after it
    per_kind: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Snapshot:
    """The effects as the run found them at the end."""

    notifications: list[Notification]
    ledger: list[LedgerRow]
    balances: dict[str, int]
    media: list[MediaRow]
    objects: dict[str, str]  # key -> sha256 of the bytes
    dead_letters: list[DeadLetter]
