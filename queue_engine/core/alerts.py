"""Alerts and the debounced watch behind each one.

An alert has one lifecycle: firing -> (acknowledged) -> resolved, never duplicated while
its condition lasts. A ``Watch`` turns a raw condition (true/false at a moment) into that
lifecycle: it fires once the condition has held for ``fire_after`` seconds, and resolves
once it has been gone for ``clear_after`` seconds; a gap shorter than ``clear_after`` does
not restart the count, so a flapping sensor neither escapes detection nor floods the office.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class AlertKind(StrEnum):
    WINDOW_UNSTAFFED = "window_unstaffed"
    WINDOW_NOT_OPENED = "window_not_opened"
    PAUSE_OVERRUN = "pause_overrun"
    DEVICE_OFFLINE = "device_offline"
    DEVICE_SHUTDOWN = "device_shutdown"
    CAMERA_TAMPER = "camera_tamper"
    WAIT_TOO_LONG = "wait_too_long"
    QUEUE_SURGE = "queue_surge"
    BAD_RATING = "bad_rating"
    UNAUTHORIZED = "unauthorized"


class AlertState(StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


SEVERITY = {
    AlertKind.WINDOW_UNSTAFFED: "warning",
    AlertKind.WINDOW_NOT_OPENED: "warning",
    AlertKind.PAUSE_OVERRUN: "warning",
    AlertKind.DEVICE_OFFLINE: "warning",  # a camera's is critical (see Supervisor)
    AlertKind.DEVICE_SHUTDOWN: "critical",
    AlertKind.CAMERA_TAMPER: "critical",
    AlertKind.WAIT_TOO_LONG: "warning",
    AlertKind.QUEUE_SURGE: "warning",
    AlertKind.BAD_RATING: "warning",
    AlertKind.UNAUTHORIZED: "critical",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    id: str
    site: str
    kind: AlertKind
    severity: str
    state: AlertState
    subject: str  # the window, device or service the alert is about
    since: float
    window: str | None = None
    device: str | None = None
    staff: str | None = None  # who was logged in at the window when it fired
    until: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    note: str | None = None
    due: float | None = None  # follow-up deadline (bad ratings)
    overdue: bool = False
    detail: dict = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    @property
    def duration_s(self) -> float | None:
        return None if self.until is None else self.until - self.since

    def evolve(self, **changes) -> Alert:
        return replace(self, **changes)


@dataclass(slots=True)
class Watch:
    """The debounce state of one (kind, subject)."""

    since: float | None = None  # the condition has held since (gaps < clear_after bridged)
    clear_since: float | None = None  # the condition has been gone since
    alert: Alert | None = None

    def update(self, raw: bool, now: float, fire_after: float, clear_after: float) -> str | None:
        """Feed the condition as seen at ``now``; returns "fire", "resolve" or None."""
        if raw:
            if self.since is None:
                self.since = now
            self.clear_since = None
            # (the same sum as deadline(), so a tick at the deadline always acts)
            if self.alert is None and now >= self.since + fire_after:
                return "fire"
            return None
        if self.since is None:
            return None
        if self.clear_since is None:
            self.clear_since = now
        if now >= self.clear_since + clear_after:
            fired = self.alert is not None
            if not fired:
                self.since = self.clear_since = None
            return "resolve" if fired else None
        return None

    def deadline(self, fire_after: float, clear_after: float) -> float | None:
        if self.since is None:
            return None
        if self.clear_since is not None:
            return self.clear_since + clear_after
        if self.alert is None:
            return self.since + fire_after
        return None

    def reset(self) -> None:
        self.since = self.clear_since = None
        self.alert = None
