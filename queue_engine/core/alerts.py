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
from typing import Any


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
    # The engine's own infrastructure, for the IT staff: never evidence against a person.
    BROKER_UNAVAILABLE = "broker_unavailable"
    ENGINE_STALLED = "engine_stalled"
    SESSION_LOST = "session_lost"
    # 办件 (core.cases): raised and resolved by the case book, not by a watch.
    CASE_OVERDUE = "case_overdue"
    ON_THE_SPOT_DEFERRED = "on_the_spot_deferred"
    NOTICE_REPEATED = "notice_repeated"
    ISSUING_RATE = "issuing_rate"  # a kiosk issues numbers faster than citizens take them


class AlertState(StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Audience(StrEnum):
    """Who acts on an alert of a kind."""

    SUPERVISION = "supervision"  # 电子监察: accountability for windows and supervision devices
    MANAGER = "manager"  # the hall manager: queues and ratings
    IT = "it"  # the IT officer: the engine, the broker, the devices' network


@dataclass(frozen=True, slots=True)
class KindRule:
    """What the supervisor knows about one alert kind."""

    label: str  # Chinese, for every surface (core.vocabulary)
    severity: str
    audience: Audience
    # The timer that re-evaluates a watch of this kind at its deadline (Supervisor.tick).
    recheck: str
    # Raised from what devices report (or fail to report): held while the engine cannot hear
    # them (its broker link down, or settling after a reconnection or a stall), so that an
    # infrastructure fault is never taken for a person's.
    evidence: bool
    # An event rather than a condition: it stays open until acknowledged, which closes it.
    closed_by_acknowledgement: bool = False
    # Seconds the condition must be gone before the alert resolves; None: the site's
    # clear_after_s (a flapping sensor keeps one alert open).
    clear_after_s: float | None = None
    # Who else acts on it, besides ``audience`` (a case overdue: the manager and 电子监察).
    also: tuple[Audience, ...] = ()
    # Raised from a condition by a watch (Supervisor._watch); False: its owner raises and
    # resolves it itself (the case book), so a restart restores no watch behind it.
    watched: bool = True


K = AlertKind
A = Audience
ALERT_KINDS: dict[AlertKind, KindRule] = {
    K.WINDOW_UNSTAFFED: KindRule("窗口空岗", "warning", A.SUPERVISION, "window", evidence=True),
    K.WINDOW_NOT_OPENED: KindRule("窗口未按时开窗", "warning", A.SUPERVISION, "window", evidence=True),
    K.PAUSE_OVERRUN: KindRule("暂停超时", "warning", A.SUPERVISION, "window", evidence=True),
    # a supervision device's is critical (Supervisor.evaluate_device)
    K.DEVICE_OFFLINE: KindRule("设备离线", "warning", A.SUPERVISION, "device", evidence=True),
    # An orderly shutdown is the device's own word, not an absence of evidence: not held.
    K.DEVICE_SHUTDOWN: KindRule("监察设备被关闭", "critical", A.SUPERVISION, "device", evidence=False),
    K.CAMERA_TAMPER: KindRule("摄像头遮挡或移位", "critical", A.SUPERVISION, "device", evidence=False),
    K.WAIT_TOO_LONG: KindRule("等候超时", "warning", A.MANAGER, "service", evidence=True),
    K.QUEUE_SURGE: KindRule("排队激增", "warning", A.MANAGER, "service", evidence=True),
    K.BAD_RATING: KindRule("差评", "warning", A.MANAGER, "followup", evidence=False, closed_by_acknowledgement=True),
    K.UNAUTHORIZED: KindRule("非法或越权设备", "critical", A.IT, "unauthorized", evidence=False),
    K.BROKER_UNAVAILABLE: KindRule("消息服务器连接中断", "warning", A.IT, "link", evidence=False, clear_after_s=0),
    K.ENGINE_STALLED: KindRule("排队引擎停顿", "warning", A.IT, "link", evidence=False, closed_by_acknowledgement=True),
    K.SESSION_LOST: KindRule("消息会话丢失", "critical", A.IT, "link", evidence=False, closed_by_acknowledgement=True),
    # warning from the due day's start, critical (overdue) once it has passed; resolved when
    # the case is closed
    K.CASE_OVERDUE: KindRule(
        "办件逾期", "warning", A.MANAGER, "case", evidence=False, also=(A.SUPERVISION,), watched=False
    ),
    K.ON_THE_SPOT_DEFERRED: KindRule(
        "即办件未当场办结", "warning", A.MANAGER, "case", evidence=False, closed_by_acknowledgement=True, watched=False
    ),
    K.NOTICE_REPEATED: KindRule(
        "重复告知",
        "warning",
        A.SUPERVISION,
        "case",
        evidence=False,
        closed_by_acknowledgement=True,
        also=(A.MANAGER,),
        watched=False,
    ),
    # Raised by the supervisor from the tickets a kiosk issued in the last minute, once per
    # kiosk until acknowledged: the manager looks at the kiosk, IT at its network.
    K.ISSUING_RATE: KindRule(
        "取号机出号异常频繁",
        "warning",
        A.MANAGER,
        "none",  # (nothing to re-check: it closes when acknowledged)
        evidence=False,
        closed_by_acknowledgement=True,
        also=(A.IT,),
        watched=False,
    ),
}
SEVERITY = {kind: rule.severity for kind, rule in ALERT_KINDS.items()}


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
    due: float | None = None  # follow-up deadline (bad ratings), a case's due moment (case_overdue)
    overdue: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    # The number of this version's transition among the site's (1, 2, 3, ...): a subscriber
    # that receives a publication twice (they are repeated after a lost connection) or misses
    # one can tell.
    seq: int = 0

    @property
    def open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    @property
    def duration_s(self) -> float | None:
        return None if self.until is None else self.until - self.since

    def evolve(self, **changes: Any) -> Alert:
        return replace(self, **changes)


@dataclass(slots=True)
class Watch:
    """The debounce state of one (kind, subject)."""

    since: float | None = None  # the condition has held since (gaps < clear_after bridged)
    clear_since: float | None = None  # the condition has been gone since
    alert: Alert | None = None

    def update(self, raw: bool, now: float, fire_after: float, clear_after: float, *, held: bool = False) -> str | None:
        """Feed the condition as seen at ``now``; returns "fire", "resolve" or None. A
        ``held`` watch keeps counting but does not fire yet (the engine cannot trust what it
        has not heard)."""
        if raw:
            if self.since is None:
                self.since = now
            self.clear_since = None
            # (the same sum as deadline(), so a tick at the deadline always acts)
            if self.alert is None and now >= self.since + fire_after and not held:
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
