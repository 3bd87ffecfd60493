"""The chaos run's load: a steady mix of what the browser does, through the api-gateway, with
every request recorded (model.Request) for the audit.

- messages: POST /api/v1/events/message (a unique text each);
- uploads: upload intent -> wait for media.upload_ready -> a real PUT of unique bytes to the
  presigned URL (retried while the URL is valid) -> wait for media.upload_completed; one in
  ABANDON_EVERY is never PUT, so the TTL must expire it and refund the credit;
- downloads: download intent for a completed file -> wait for media.download_ready -> a real
  GET of the signed URL, whose bytes must be the uploaded ones;
- deletes: delete intent for another completed file (downloads and deletes never pick the same
  file, so each has one right outcome).

A request is sent once and never retried: a 503 (broker down) or no answer (gateway down) is
recorded as not acknowledged, and the next request is a new one.

The client side reads its notifications as the browser does through Realtime: a Watcher tails
user_notifications (one query at a time for the whole load) and wakes the sagas waiting on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import psycopg
import requests

from scripts.chaos.model import (
    DELETE,
    DOWNLOAD,
    KINDS,
    MESSAGE,
    PUT_ABANDONED,
    PUT_FAILED,
    PUT_NO_URL,
    PUT_OK,
    UPLOAD,
    Notification,
    Request,
)

PNG = "image/png"
#: Seconds between two requests of each kind (a few requests per second in all).
INTERVALS = {MESSAGE: 0.5, UPLOAD: 2.0, DOWNLOAD: 4.0, DELETE: 5.0}
ABANDON_EVERY = 8
#: Sagas (uploads and downloads) in flight at most; a tick that finds them all busy is skipped
#: (counted), so an outage does not pile up threads.
MAX_SAGAS = 16
HTTP_TIMEOUT = 15.0
#: How long a saga waits for its next notification (outages included).
NOTIFICATION_WAIT = 150.0
POLL_SECONDS = 0.3
#: Rows are read again from this many ids back: identity values are taken at insert, so a
#: transaction that commits late can add an id below ones already seen.
LOOKBACK_IDS = 300


@dataclass(frozen=True)
class User:
    id: str
    email: str


def seed_users(db: str, rich: int, rich_credits: int, lean_credits: int) -> tuple[list[User], User, dict[str, int]]:
    """Users as Supabase Auth creates them (auth.users), with credits granted in the ledger
    (the signup path is not part of the load): `rich` users with plenty, one with few, so
    the credit check also rejects and the balance floor is exercised."""
    users = [User(str(uuid.uuid4()), f"chaos-{i}-{uuid.uuid4().hex[:6]}@chaos.local") for i in range(rich + 1)]
    seeds = {u.id: rich_credits for u in users[:-1]} | {users[-1].id: lean_credits}
    with psycopg.connect(db, autocommit=True) as conn:
        for user in users:
            conn.execute("insert into auth.users (id, email, email_confirmed_at) values (%s, %s, now())",
                         [user.id, user.email])
            conn.execute(
                "insert into public.credit_ledger (user_id, amount, event_type, description, event_time,"
                " idempotency_key) values (%s, %s, 'credit.chaos_grant', 'Chaos run grant', %s, %s)",
                [user.id, seeds[user.id], dt.datetime.now(dt.timezone.utc).isoformat(), f"chaos.seed:{user.id}"])
    return users[:-1], users[-1], seeds


class Watcher(threading.Thread):
    """Tails public.user_notifications, reconnecting after a database restart."""

    def __init__(self, db: str) -> None:
        super().__init__(name="watcher", daemon=True)
        self.db = db
        self.cond = threading.Condition()
        self.rows: dict[int, Notification] = {}
        self.by_request: dict[str, list[Notification]] = {}
        self.by_name: dict[tuple[str, str], list[Notification]] = {}
        self.messages: dict[str, Notification] = {}
        self.deleted: dict[tuple[str, str], Notification] = {}
        self.stopping = threading.Event()
        self.errors = 0

    def run(self) -> None:
        conn = None
        last = 0
        while not self.stopping.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.db, autocommit=True, connect_timeout=3)
                rows = conn.execute(
                    "select id, user_id, event_type, payload, idempotency_key, extract(epoch from created_at)"
                    " from public.user_notifications where id > %s order by id", [max(0, last - LOOKBACK_IDS)],
                ).fetchall()
                with self.cond:
                    for row in rows:
                        if row[0] not in self.rows:
                            self._add(Notification(row[0], row[1], row[2], parse_payload(row[3]), row[4], float(row[5])))
                        last = max(last, row[0])
                    self.cond.notify_all()
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(1)
            self.stopping.wait(POLL_SECONDS)
        if conn is not None:
            conn.close()

    def _add(self, n: Notification) -> None:
        self.rows[n.id] = n
        if n.payload.get("request_id"):
            self.by_request.setdefault(n.payload["request_id"], []).append(n)
        if n.event_type == "user.message":
            self.messages.setdefault(n.payload.get("message", ""), n)
        elif n.event_type == "media.file_deleted":
            self.deleted.setdefault((n.user_id, n.payload.get("file_path", "")), n)
        if n.file_name:
            self.by_name.setdefault((n.event_type, n.file_name), []).append(n)

    def wait(self, find, timeout: float, stop: threading.Event | None = None):
        """The first non-empty find() (called under the lock), or None after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = find()
                left = deadline - time.monotonic()
                if found or left <= 0 or (stop is not None and stop.is_set()):
                    return found
                self.cond.wait(min(left, 1.0))

    def answer(self, request_id: str, *event_types: str) -> Notification | None:
        for n in self.by_request.get(request_id, []):
            if n.event_type in event_types:
                return n
        return None

    def named(self, event_type: str, name: str) -> Notification | None:
        found = self.by_name.get((event_type, name))
        return found[0] if found else None


def parse_payload(text: str) -> dict:
    """A notification's payload (JSON text); {} for anything else."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def url_deadline(url: str) -> float:
    """When a SigV4 presigned URL stops working (X-Amz-Date + X-Amz-Expires), epoch seconds."""
    query = parse_qs(urlparse(url).query)
    signed = dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    return signed.timestamp() + int(query["X-Amz-Expires"][0])


class Load:
    def __init__(self, gateway: str, token, users: list[User], lean: User, watcher: Watcher, tag: str,
                 seed: int = 1) -> None:
        self.gateway, self.token, self.users, self.lean = gateway, token, users, lean
        self.watcher, self.tag = watcher, tag
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.counter = 0
        self.keep: list[tuple[User, str, str]] = []  # (owner, permanent path, sha256) to download
        self.doomed: list[tuple[User, str, str]] = []  # completed files to delete
        self.stopping = threading.Event()
        self.sagas = threading.BoundedSemaphore(MAX_SAGAS)
        self.skipped = 0
        self.threads: list[threading.Thread] = []
        self.local = threading.local()

    # ---------------------------------------------------------------- running

    def start(self) -> None:
        for kind, action in ((MESSAGE, self.message), (UPLOAD, self.upload),
                             (DOWNLOAD, self.download), (DELETE, self.delete)):
            thread = threading.Thread(target=self._tick, args=(kind, action), name=f"load-{kind}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _tick(self, kind: str, action) -> None:
        # each kind on its own clock, so a request held by the gateway delays only its kind
        due = time.monotonic() + self.random.uniform(0, INTERVALS[kind])
        while not self.stopping.wait(max(0.0, due - time.monotonic())):
            due += INTERVALS[kind]
            if kind in (UPLOAD, DOWNLOAD):
                if not self.sagas.acquire(blocking=False):
                    self.skipped += 1
                    continue
                threading.Thread(target=self._saga, args=(action,), daemon=True).start()
            else:
                action()

    def _saga(self, action) -> None:
        try:
            action()
        finally:
            self.sagas.release()

    def stop(self, timeout: float) -> None:
        """Stops issuing; waits up to `timeout` s for the sagas in flight (PUTs, downloads)."""
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        deadline = time.monotonic() + timeout
        taken = 0
        while taken < MAX_SAGAS and time.monotonic() < deadline:
            if self.sagas.acquire(timeout=1):
                taken += 1

    # ---------------------------------------------------------------- HTTP

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def _next(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def _post(self, request: Request, path: str, body: dict) -> dict:
        with self.lock:
            self.requests.append(request)
        try:
            response = self._session().post(
                f"{self.gateway}{path}", json=body, timeout=HTTP_TIMEOUT,
                headers={"Authorization": f"Bearer {self.token(request.user)}"})
        except requests.RequestException as error:
            request.error = type(error).__name__
            return {}
        request.status, request.answered = response.status_code, time.time()
        if not request.acked:
            request.error = response.text[:200]
            return {}
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {}
        request.request_id = answer.get("request_id")
        return answer

    # ---------------------------------------------------------------- flows

    def message(self) -> None:
        user = self.random.choice(self.users)
        text = f"chaos {self.tag} message {self._next()}"
        request = Request(MESSAGE, text, user.id, time.time())
        self._post(request, "/api/v1/events/message", {
            "message": text, "timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "visibility": "broadcast"})

    def upload(self) -> None:
        number = self._next()
        user = self.lean if number % 6 == 0 else self.random.choice(self.users)
        body = b"\x89PNG\r\n\x1a\n" + os.urandom(self.random.randint(64, 4096))
        name = f"chaos-{self.tag}-{number}.png"
        request = Request(UPLOAD, name, user.id, time.time(), content_sha=hashlib.sha256(body).hexdigest(),
                          abandon=number % ABANDON_EVERY == 0)
        self._post(request, "/api/v1/media/upload-intent",
                   {"file_name": name, "media_type": PNG, "file_size": len(body)})
        if not request.acked or not request.request_id:
            return
        rid = request.request_id
        answer = self.watcher.wait(
            lambda: self.watcher.answer(rid, "media.upload_ready", "media.upload_rejected"), NOTIFICATION_WAIT,
            self.stopping)
        if answer is None or answer.event_type != "media.upload_ready":
            if answer is None:
                request.put = PUT_NO_URL
            return
        request.staging_path = answer.payload.get("file_path")
        if request.abandon:
            request.put = PUT_ABANDONED
            return
        url = answer.payload["upload_url"]
        # stop a little before the URL's end: a PUT accepted at the last second could still
        # race the TTL's grace
        deadline = url_deadline(url) - 3
        attempts = 0
        while time.time() < deadline:
            attempts += 1
            try:
                response = self._session().put(url, data=body, headers={"Content-Type": PNG}, timeout=HTTP_TIMEOUT)
                if response.status_code == 200:
                    request.put, request.put_at = PUT_OK, time.time()
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            request.put = PUT_FAILED if attempts else PUT_NO_URL
            return
        completed = self.watcher.wait(lambda: self.watcher.named("media.upload_completed", name),
                                      NOTIFICATION_WAIT, self.stopping)
        if completed is not None:
            path = completed.payload.get("file_path")
            with self.lock:
                (self.doomed if number % 3 == 0 else self.keep).append((user, path, request.content_sha))

    def download(self) -> None:
        with self.lock:
            if not self.keep:
                return
            user, path, sha = self.random.choice(self.keep)
        request = Request(DOWNLOAD, f"download-{self._next()}", user.id, time.time(), target=path,
                          expected_sha=sha)
        self._post(request, "/api/v1/media/download-intent", {"file_path": path})
        if not request.acked or not request.request_id:
            return
        rid = request.request_id
        answer = self.watcher.wait(
            lambda: self.watcher.answer(rid, "media.download_ready", "media.download_rejected"), NOTIFICATION_WAIT,
            self.stopping)
        if answer is not None and answer.event_type == "media.download_ready":
            self.fetch(request, answer.payload["download_url"])
        # otherwise the driver fetches after the drain, once the answer is there

    def fetch(self, request: Request, url: str, seconds: float = 45) -> None:
        """GETs the signed download URL (retried while the object store restarts) and compares
        the bytes with the upload's."""
        request.fetched = "failed"
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                response = self._session().get(url, timeout=HTTP_TIMEOUT)
                if response.status_code == 200:
                    same = hashlib.sha256(response.content).hexdigest() == request.expected_sha
                    request.fetched = "ok" if same else "mismatch"
                    return
            except requests.RequestException:
                pass
            time.sleep(1)

    def delete(self) -> None:
        with self.lock:
            if not self.doomed:
                return
            user, path, _ = self.doomed.pop(self.random.randrange(len(self.doomed)))
        request = Request(DELETE, f"delete-{self._next()}", user.id, time.time(), target=path)
        self._post(request, "/api/v1/media/delete-intent", {"file_path": path})

    # ---------------------------------------------------------------- measuring

    def effect_time(self, request: Request) -> float | None:
        """When the request's effect landed (the row's created_at), if it did. Only effects that
        took the whole path count: a completed upload (a refusal for lack of credits never
        reaches the media-service or the object store), a download_ready, a file_deleted."""
        w = self.watcher
        if request.kind == MESSAGE:
            row = w.messages.get(request.key)
        elif request.kind == UPLOAD:
            row = w.named("media.upload_completed", request.key)
        elif request.kind == DOWNLOAD:
            row = w.answer(request.request_id or "", "media.download_ready")
        else:
            row = w.deleted.get((request.user, request.target or ""))
        return row.created_at if row else None

    def first_effects(self, since: float) -> tuple[set[str], dict[str, float]]:
        """(kinds with a request sent at or after `since`, per kind the seconds from `since`
        to the earliest effect of such a request). Abandoned uploads have no outcome the user
        sees, so they do not count."""
        with self.lock:
            recent = [r for r in self.requests if r.sent >= since and not r.abandon]
        sent = {r.kind for r in recent}
        effects: dict[str, float] = {}
        with self.watcher.cond:
            for request in recent:
                if request.acked:
                    landed = self.effect_time(request)
                    if landed is not None:
                        effects[request.kind] = min(effects.get(request.kind, landed - since), landed - since)
        return sent, effects

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {k: sum(1 for r in self.requests if r.kind == k) for k in KINDS}
