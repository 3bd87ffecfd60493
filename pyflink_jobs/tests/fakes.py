"""In-memory stand-ins for PyFlink's keyed ValueState and TimerService, for the pure-logic
tests. Timers are recorded, and fire() delivers the due ones in timestamp order the way the
runtime does."""

from __future__ import annotations

from typing import Any


class FakeValueState:
    def __init__(self) -> None:
        self._value: Any = None

    def value(self) -> Any:
        return self._value

    def update(self, value: Any) -> None:
        self._value = value

    def clear(self) -> None:
        self._value = None


class FakeTimerService:
    def __init__(self, now: int = 0) -> None:
        self.now = now
        self.registered: list[int] = []
        self.deleted: list[int] = []

    def current_processing_time(self) -> int:
        return self.now

    def register_processing_time_timer(self, timestamp: int) -> None:
        self.registered.append(timestamp)

    def delete_processing_time_timer(self, timestamp: int) -> None:
        self.deleted.append(timestamp)

    def pending(self) -> list[int]:
        """Registered and not deleted (one deletion cancels one registration)."""
        pending = list(self.registered)
        for ts in self.deleted:
            if ts in pending:
                pending.remove(ts)
        return sorted(pending)

    def advance(self, to: int, on_timer) -> list[dict]:
        """Moves the clock to `to`, firing every pending timer due by then through
        on_timer(timestamp, timers); returns the outputs. Timers that were deleted do not fire
        (as in Flink), so stale-timer handling is tested with fire_anyway."""
        outputs: list[dict] = []
        while True:
            due = [ts for ts in self.pending() if ts <= to]
            if not due:
                break
            ts = due[0]
            self.now = ts
            self.registered.remove(ts)
            outputs += on_timer(ts, self)
        self.now = to
        return outputs

    def fire_anyway(self, timestamp: int, on_timer) -> list[dict]:
        """Fires a timer even if it was deleted (a deletion that came too late, or a timer
        restored from a checkpoint)."""
        self.now = max(self.now, timestamp)
        return on_timer(timestamp, self)


def states(n: int) -> list[FakeValueState]:
    return [FakeValueState() for _ in range(n)]
