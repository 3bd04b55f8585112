"""电子监察: windows left empty, supervision devices switched off, and their accounting.

The supervisor watches one site. Every condition is evaluated from the hall's current state
at a given moment; timers (grace periods, heartbeat silences, opening and closing times)
are kept in one heap, so ``next_deadline()`` is cheap and nothing polls. All alerts record
who was logged in at the window concerned.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .alerts import ALERT_KINDS, Alert, AlertKind, AlertState, Watch
from .calendar import WorkingCalendar, after_working_seconds, overlap, periods_of, whole_day
from .capacity import RecentArrivals, mean_wait, windows_needed
from .commands import AlertChanged, Command, DeviceChanged, Notice, TimeAccounted, WindowChanged
from .errors import ErrorCode, Refused
from .kinds import DEVICE_KINDS, DeviceKind, DeviceRule, OnlineHours
from .model import OPEN_PHASES, Staffing, Ticket, WindowPhase, WindowState

if TYPE_CHECKING:  # the core reads the site model; it never loads files itself
    from ..config import Service, Site, Window

K = AlertKind
P = WindowPhase
S = Staffing
# Refusals that say a device tries to act beyond its rights (not a device's plain bug).
UNAUTHORIZED_CODES = frozenset({"unknown_device", "not_allowed", "wrong_window"})
MAX_TRACKED_STRANGERS = 10_000
# queue_surge: a service's wait is forecast at most once per SURGE_EVERY_S of engine time (a
# burst of tickets is forecast once, at its end) and, while a surge is watched, again as its
# arrivals age out, at most once per SURGE_RECHECK_S.
SURGE_EVERY_S = 1.0
SURGE_RECHECK_S = 60.0
# session_lost (displaced): the broker closed the engine's connection and took it back at once
# (the broker was up all along) this many times within DISPLACED_WINDOW_S: another client is
# using the engine's identity, or the broker keeps closing it.
QUICK_RETURN_S = 2.0
DISPLACED_RETURNS = 3
DISPLACED_WINDOW_S = 600.0


@dataclass(slots=True)
class DeviceLive:
    id: str
    kind: str
    window: str | None
    timeout: float
    always_on: bool = False  # expected online day and night, not only in working time
    online: bool | None = None  # None: not heard of since the engine started
    reason: str | None = None  # why offline: lost, shutdown, silent
    last_seen: float = 0.0
    video_ok: bool = True
    tamper: str | None = None  # occluded, moved, video_lost
    offline_since: float | None = None

    @property
    def rule(self) -> DeviceRule:
        return DEVICE_KINDS[DeviceKind(self.kind)]


@dataclass(slots=True)
class Segment:
    """What a window (or device) has been doing since ``since``, for accounting."""

    category: str
    since: float
    staff: str | None = None


class HallView(Protocol):
    """What the supervisor reads of its hall (``hall.Hall``): the windows' states, and the
    figures of a service's queue behind wait_too_long and queue_surge. Nothing else."""

    @property
    def windows(self) -> Mapping[str, WindowState]: ...

    def window_config(self, window_id: str) -> Window: ...
    def window_changed(self, window_id: str) -> WindowChanged: ...
    def services_of_window(self, window_id: str) -> frozenset[str]: ...
    def service_codes(self) -> list[str]: ...
    def service_config(self, code: str) -> Service: ...
    def oldest_waiting(self, service: str) -> Ticket | None: ...
    def waiting(self, service: str) -> int: ...
    def open_windows(self, service: str) -> int: ...
    def recent_arrivals(self, service: str) -> RecentArrivals: ...
    def mean_service_s(self, service: str) -> float: ...


def _reason(window: WindowState) -> str:
    """A paused window's reason (a pause always has one)."""
    return window.pause_reason.value if window.pause_reason else "other"


class Supervisor:
    def __init__(self, site: Site, hall: HallView, calendar: WorkingCalendar):
        self.hall = hall
        self.site = site
        self.id = site.id
        self.calendar = calendar
        self.rules = site.supervision
        self._tz = site.tz
        self._spans = site.hours.spans()
        self.devices: dict[str, DeviceLive] = {
            d.id: DeviceLive(
                id=d.id,
                kind=d.kind.value,
                window=d.window,
                timeout=d.heartbeat_s * self.rules.heartbeat_misses,
                always_on=d.expected_hours is OnlineHours.ALWAYS,
            )
            for d in site.devices
        }
        self._cameras: dict[str, list[str]] = {}
        for d in site.devices:
            if DEVICE_KINDS[d.kind].watches_seat and d.window:
                self._cameras.setdefault(d.window, []).append(d.id)
        self.watches: dict[tuple[AlertKind, str], Watch] = {}
        self.alerts: dict[str, Alert] = {}  # open alerts by id
        # how many of them each (kind, subject) has: asked on every ticket a kiosk issues
        self._open_count: Counter[tuple[AlertKind, str]] = Counter()
        self._alert_seq = 0
        self._timers: list[tuple[float, str, str]] = []  # (when, subject kind, subject)
        self._scheduled: dict[tuple[str, str], float] = {}
        self._refusals: OrderedDict[str, deque[float]] = OrderedDict()
        self._issues: dict[str, deque[float]] = {}  # for issuing_rate: each kiosk's last minute of numbers
        self.periods: list[tuple[float, float]] = []  # today's working time
        self.whole_day: list[tuple[float, float]] = []  # today, midnight to midnight
        self.day: date | None = None
        self.segments: dict[tuple[str, str], Segment] = {}  # ("window"|"device", id) -> segment
        self.totals: dict[tuple[str, str, str], float] = {}  # (subject kind, subject, category) -> s
        self._last_warned_day: date | None = None
        self._window_open: dict[str, bool] = {}  # for queue_surge: windows seen open
        self._staffing: dict[str, Staffing] = {}  # each window's, as last evaluated
        self._surge_at: dict[str, float] = {}  # for queue_surge: when each service was forecast
        self._transition_seq = 0  # the site's alert transitions, numbered (AlertChanged.seq)
        # The engine's own hearing: whether its broker link is up, and until when alerts that
        # rest on what devices report are held (inf while the link is down; the end of the
        # settling period after it returns or after a stall). The core starts hearing: the
        # shell says otherwise.
        self.link_up = True
        self.hold_until = -math.inf
        self._link_down_at: float | None = None
        self._quick_returns: deque[float] = deque()

    # -- the day ---------------------------------------------------------------------------
    def start_day(self, day: date, now: float) -> list[Command]:
        """At local midnight (and at start-up): close yesterday's accounting, compute today's
        working time, and evaluate everything once."""
        commands: list[Command] = []
        if self.day is not None and day != self.day:
            commands += self._close_segments(now)
            self.totals = {}
        self.day = day
        working = self.calendar.is_working_day(day)
        self.periods = periods_of(day, self._spans, self._tz) if working else []
        self.whole_day = [whole_day(day, self._tz)]
        if not self.calendar.covered(day) and self._last_warned_day != day:
            self._last_warned_day = day
            commands.append(
                Notice(
                    site=self.id,
                    level="warning",
                    text=(
                        f"{day.isoformat()}: no official calendar for {day.year} (neither chinese-calendar nor "
                        f"[calendar].covered_years): assuming Monday-Friday working days"
                    ),
                )
            )
        for boundary in (b for period in self.periods for b in period):
            if boundary > now:
                self._schedule(boundary, "all", str(boundary))  # one timer per opening/closing
        for device in self.devices.values():
            if device.online is None:
                device.last_seen = now  # give every device one timeout to speak up
                self._schedule(now + device.timeout, "heartbeat", device.id)
        commands += self._evaluate_all(now)
        return commands

    def working(self, now: float) -> bool:
        return any(a <= now < b for a, b in self.periods)

    def _must_staff(self, window_id: str) -> bool:
        window = self.hall.window_config(window_id)
        if not window.must_staff:
            return False
        return not window.staff_weekdays or (
            self.day is not None and self.calendar.schedule_weekday(self.day) in window.staff_weekdays
        )

    # -- timers ----------------------------------------------------------------------------
    def _schedule(self, when: float, kind: str, subject: str) -> None:
        key = (kind, subject)
        current = self._scheduled.get(key)
        if current is None or when < current:
            self._scheduled[key] = when
            heapq.heappush(self._timers, (when, kind, subject))

    def next_deadline(self) -> float:
        while self._timers:
            when, kind, subject = self._timers[0]
            if self._scheduled.get((kind, subject)) == when:
                return when
            heapq.heappop(self._timers)  # superseded
        return math.inf

    def tick(self, now: float) -> list[Command]:
        commands: list[Command] = []
        while self._timers and self._timers[0][0] <= now:
            when, kind, subject = heapq.heappop(self._timers)
            if self._scheduled.get((kind, subject)) != when:
                continue
            del self._scheduled[(kind, subject)]
            if kind == "all":  # a period opens or closes: bring the day's totals up to date
                commands += self._close_segments(now)
                commands += self._evaluate_all(now)
            elif kind == "window":
                commands += self.evaluate_window(subject, now)
            elif kind == "device":
                commands += self.evaluate_device(subject, now)
            elif kind == "heartbeat":
                commands += self._heartbeat_due(subject, now)
            elif kind == "service":
                commands += self.evaluate_service(subject, now)
            elif kind == "unauthorized":
                commands += self._evaluate_unauthorized(subject, now)
            elif kind == "followup":
                commands += self._follow_up_due(subject, now)
            elif kind == "link":
                commands += self._evaluate_link(now)
            elif kind == "settled":  # the settling period is over: judge everything again
                commands += self._evaluate_all(now)
        return commands

    # -- evaluation ------------------------------------------------------------------------
    def _evaluate_all(self, now: float) -> list[Command]:
        commands: list[Command] = []
        for window_id in self.hall.windows:
            commands += self.evaluate_window(window_id, now)
        for device_id in self.devices:
            commands += self.evaluate_device(device_id, now)
        for service in self.hall.service_codes():
            commands += self.evaluate_service(service, now)
        return commands

    def camera_ok(self, window_id: str) -> bool:
        """Whether a camera is watching this window's seat right now."""
        for camera_id in self._cameras.get(window_id, ()):
            camera = self.devices[camera_id]
            if camera.online and camera.video_ok and camera.tamper is None:
                return True
        return False

    def staffing(self, window_id: str, now: float) -> Staffing:
        """The window's staffing at ``now`` (``model.Staffing``): the one definition."""
        window = self.hall.windows[window_id]
        if window.phase is P.CLOSED:
            return S.NOT_OPENED if self.working(now) and self._must_staff(window_id) else S.CLOSED
        if window.phase is P.PAUSED:
            return S.PAUSED
        if not self.camera_ok(window_id):
            return S.UNVERIFIED
        return S.UNSTAFFED if window.present is False else S.STAFFED

    def evaluate_window(self, window_id: str, now: float, *, republished: bool = False) -> list[Command]:
        """``republished``: the window itself changed (its state is published anyway)."""
        window = self.hall.windows[window_id]
        working = self.working(now)
        staffing = self.staffing(window_id, now)
        commands = self._account(
            "window",
            window_id,
            staffing.value if staffing is not S.PAUSED else f"paused:{_reason(window)}",
            window.staff,
            now,
        )
        if self._staffing.get(window_id) is not staffing:
            # (republished, so that boards and consoles show it: a camera off, an opening time)
            if window_id in self._staffing and not republished:
                commands.append(self.hall.window_changed(window_id))
            self._staffing[window_id] = staffing
        rules = self.rules
        commands += self._watch(
            K.WINDOW_NOT_OPENED,
            window_id,
            staffing is S.NOT_OPENED,
            now,
            fire_after=rules.not_opened_grace_min * 60,
            window=window_id,
            detail={"grace_min": rules.not_opened_grace_min},
        )
        commands += self._watch(
            K.WINDOW_UNSTAFFED,
            window_id,
            working and staffing is S.UNSTAFFED,
            now,
            fire_after=rules.unstaffed_grace_min * 60,
            window=window_id,
            detail={
                "grace_min": rules.unstaffed_grace_min,
                "cameras": self._cameras.get(window_id, []),
                "window_state": window.phase.value,
                "ticket": window.ticket,
            },
        )
        overrun = False
        # (a fieldwork pause for a case, a home visit, has no allowance to overrun)
        if window.phase is P.PAUSED and window.paused_at is not None and window.pause_case is None:
            allowed = rules.pause_allowance_min.minutes(_reason(window)) * 60
            overrun_at = after_working_seconds(self.periods, window.paused_at, allowed)
            if overrun_at is not None:
                if now >= overrun_at:
                    overrun = working
                else:
                    self._schedule(overrun_at, "window", window_id)
        reason = window.pause_reason.value if window.pause_reason else None
        commands += self._watch(
            K.PAUSE_OVERRUN,
            window_id,
            overrun,
            now,
            fire_after=0,
            window=window_id,
            detail={
                "reason": reason,
                "paused_at": window.paused_at,
                "allowed_min": rules.pause_allowance_min.minutes(reason) if reason else None,
            },
        )
        return commands

    def _expected_online(self, device: DeviceLive, now: float) -> bool:
        return device.always_on or self.working(now)

    def evaluate_device(self, device_id: str, now: float) -> list[Command]:
        device = self.devices[device_id]
        expected = self._expected_online(device, now)
        offline = device.online is False
        # "unknown": not heard of yet, or the engine itself cannot hear (its link is down)
        category = "unknown" if not self.link_up or device.online is None else "offline" if offline else "online"
        commands = self._account("device", device_id, category, None, now)
        supervised = device.rule.supervision
        commands += self._watch(
            K.DEVICE_OFFLINE,
            device_id,
            expected and offline and device.reason != "shutdown",
            now,
            fire_after=self.rules.device_offline_grace_s,
            device=device,
            severity="critical" if supervised else None,
            detail={
                "kind": device.kind,
                "reason": device.reason,
                "last_seen_at": device.last_seen,
                "offline_since_at": device.offline_since,
            },
        )
        commands += self._watch(
            K.DEVICE_SHUTDOWN,
            device_id,
            expected and supervised and offline and device.reason == "shutdown",
            now,
            fire_after=0,
            device=device,
            detail={"kind": device.kind, "offline_since_at": device.offline_since},
        )
        tampered = device.rule.watches_seat and device.online is True and (device.tamper or not device.video_ok)
        commands += self._watch(
            K.CAMERA_TAMPER,
            device_id,
            bool(tampered) and self.working(now),
            now,
            fire_after=0,
            device=device,
            detail={"tamper": device.tamper or "video_lost"},
        )
        return commands

    def evaluate_service(self, service: str, now: float) -> list[Command]:
        oldest = self.hall.oldest_waiting(service)
        late = False
        target = self.hall.service_config(service).target_wait_min * 60
        if oldest is not None and self.periods:
            late_at = after_working_seconds(self.periods, oldest.issued_at, target)
            if late_at is not None:
                if now >= late_at:
                    late = self.working(now)
                else:
                    self._schedule(late_at, "service", service)

        def detail() -> dict[str, Any]:  # (built only when the alert fires: this runs for every ticket)
            facts: dict[str, Any] = {"service": service, "target_min": target / 60}
            if oldest is not None:
                facts.update(ticket=oldest.no, issued_at=oldest.issued_at)
            return facts

        return self._watch(K.WAIT_TOO_LONG, service, late, now, fire_after=0, detail=detail) + self.evaluate_surge(
            service, now
        )

    # -- queue surge (增设服务窗口) ----------------------------------------------------------
    def evaluate_surge(self, service: str, now: float, *, force: bool = False) -> list[Command]:
        """``queue_surge``: in working time, with tickets waiting, the Erlang C forecast of the
        service's mean wait (M/M/c: the tickets issued in the last ``surge_window_min`` as the
        arrival rate, the moving-average service time, the open windows that serve it) exceeds
        its ``target_wait_min``. Cheap per ticket: a burst is forecast once (``SURGE_EVERY_S``),
        and the extra windows are computed only when the alert fires."""
        last = self._surge_at.get(service)
        if not force and last is not None and last <= now < last + SURGE_EVERY_S:
            # (the same sum as the timer's time, so the timer's tick never lands inside it)
            self._schedule(last + SURGE_EVERY_S, "service", service)
            return []
        self._surge_at[service] = now
        hall = self.hall
        arrivals = hall.recent_arrivals(service)
        count = arrivals.count(now)
        key = (K.QUEUE_SURGE, service)
        target = hall.service_config(service).target_wait_min * 60
        forecast, rate, service_s, windows = 0.0, 0.0, 1.0, 0
        if count and hall.waiting(service) and self.working(now):
            rate, service_s = count / arrivals.span, max(1.0, hall.mean_service_s(service))
            windows = hall.open_windows(service)
            forecast = mean_wait(rate, 1.0 / service_s, windows)
        if forecast <= target and key not in self.watches:
            return []

        def detail() -> dict[str, Any]:
            return {
                "service": service,
                "forecast_wait_min": round(forecast / 60, 1) if forecast != math.inf else None,
                "target_min": target / 60,
                "open_windows": windows,
                "extra_windows": windows_needed(rate, 1.0 / service_s, target) - windows,
                "arrivals_per_hour": round(rate * 3600, 1),
                "service_min": round(service_s / 60, 1),
                "waiting": hall.waiting(service),
            }

        commands = self._watch(
            K.QUEUE_SURGE,
            service,
            forecast > target,
            now,
            fire_after=self.rules.surge_fire_after_min * 60,
            detail=detail,
        )
        expiry = arrivals.next_expiry(now)
        if key in self.watches and expiry is not None:
            self._schedule(max(expiry, now + SURGE_RECHECK_S), "service", service)
        return commands

    def window_capacity(self, window_id: str, now: float) -> list[Command]:
        """A window opened or closed (login, logout, pause, resume): re-forecast its services."""
        is_open = self.hall.windows[window_id].phase in OPEN_PHASES
        if self._window_open.get(window_id, False) is is_open:
            return []
        self._window_open[window_id] = is_open
        commands: list[Command] = []
        for service in sorted(self.hall.services_of_window(window_id)):
            commands += self.evaluate_surge(service, now, force=True)
        return commands

    # -- device liveness -------------------------------------------------------------------
    def device_status(self, device_id: str, online: bool, reason: str | None, now: float) -> list[Command]:
        device = self.devices[device_id]
        if online:  # (an offline status is not a sign of life: last_seen stays the last one)
            device.last_seen = now
            self._schedule(now + device.timeout, "heartbeat", device_id)
        return (
            self._set_online(device, online, reason, now)
            + self.evaluate_device(device_id, now)
            + self._windows_of_camera(device, now)
        )

    def heartbeat(self, device_id: str, video_ok: bool | None, now: float) -> list[Command]:
        device = self.devices[device_id]
        device.last_seen = now
        changed = device.online is not True or (video_ok is not None and video_ok != device.video_ok)
        if video_ok is not None:
            device.video_ok = video_ok
        if (("heartbeat", device_id)) not in self._scheduled:
            self._schedule(now + device.timeout, "heartbeat", device_id)
        if not changed:
            return []
        commands = self._set_online(device, True, None, now) if device.online is not True else []
        return commands + self.evaluate_device(device_id, now) + self._windows_of_camera(device, now)

    def _heartbeat_due(self, device_id: str, now: float) -> list[Command]:
        device = self.devices[device_id]
        if device.online is False or not self.link_up:
            return []  # (the link's return gives every device a fresh allowance: _settle)
        silent_until = device.last_seen + device.timeout
        if silent_until > now:
            self._schedule(silent_until, "heartbeat", device_id)
            return []
        return (
            self._set_online(device, False, "silent", now)
            + self.evaluate_device(device_id, now)
            + self._windows_of_camera(device, now)
        )

    def tamper(self, device_id: str, kind: str, now: float) -> list[Command]:
        device = self.devices[device_id]
        device.tamper = None if kind == "restored" else kind
        if kind == "restored":
            device.video_ok = True
        return self.evaluate_device(device_id, now) + self._windows_of_camera(device, now)

    def _set_online(self, device: DeviceLive, online: bool, reason: str | None, now: float) -> list[Command]:
        if device.online is online and (online or device.reason == reason):
            return []
        device.online = online
        device.reason = None if online else reason
        device.offline_since = None if online else now
        return [DeviceChanged(site=self.id, device=device.id, online=online, at=now, reason=reason)]

    def _windows_of_camera(self, device: DeviceLive, now: float) -> list[Command]:
        """A camera's state decides whether its window's staffing can be verified."""
        if not device.rule.watches_seat or device.window is None:
            return []
        return self.evaluate_window(device.window, now)

    # -- ratings, refusals ---------------------------------------------------------------------
    def rating(
        self,
        *,
        ticket: str,
        window: str,
        staff: str | None,
        score: int,
        device: str,
        now: float,
        reasons: tuple[str, ...] = (),
        comment: str = "",
    ) -> list[Command]:
        if score > self.rules.bad_rating_max_score:
            return []
        local_day = datetime.fromtimestamp(now, self._tz).date()
        due_day = self.calendar.add_working_days(local_day, self.rules.bad_rating_follow_up_days)
        due = datetime.combine(due_day + timedelta(days=1), datetime.min.time(), self._tz).timestamp()
        alert = self._new_alert(
            K.BAD_RATING,
            f"{window}:{ticket}",
            now,
            window=window,
            device=device,
            staff=staff,
            due=due,
            detail={
                "ticket": ticket,
                "score": score,
                "due_at": due,
                "follow_up_days": self.rules.bad_rating_follow_up_days,
                **({"reasons": list(reasons)} if reasons else {}),
                **({"comment": comment} if comment else {}),
            },
        )
        self._schedule(due, "followup", alert.id)
        return [self._update(alert)]

    def issued(self, device: str, now: float) -> list[Command]:
        """A kiosk issued a number: past ``kiosk_tickets_per_minute`` within a minute,
        ``issuing_rate`` (once per kiosk until acknowledged)."""
        limit = self.rules.kiosk_tickets_per_minute
        if not limit:
            return []
        times = self._issues.setdefault(device, deque())
        times.append(now)
        while times[0] <= now - 60.0:
            times.popleft()
        if len(times) <= limit or self.has_open(K.ISSUING_RATE, device):
            return []
        return [
            self.raise_alert(K.ISSUING_RATE, device, now, device=device, detail={"tickets": len(times), "limit": limit})
        ]

    def _follow_up_due(self, alert_id: str, now: float) -> list[Command]:
        alert = self.alerts.get(alert_id)
        if alert is None or alert.overdue:
            return []
        return [self._update(alert.evolve(overdue=True, severity="critical"))]

    def refused(self, device_id: str, code: str, now: float) -> list[Command]:
        if code not in UNAUTHORIZED_CODES:
            return []
        times = self._refusals.get(device_id)
        if times is None:
            times = self._refusals[device_id] = deque()
            if len(self._refusals) > MAX_TRACKED_STRANGERS:
                self._refusals.popitem(last=False)
        times.append(now)
        return self._evaluate_unauthorized(device_id, now)

    def _evaluate_unauthorized(self, device_id: str, now: float) -> list[Command]:
        times = self._refusals.get(device_id, deque())
        window_s = self.rules.unauthorized_window_min * 60
        while times and times[0] <= now - window_s:
            times.popleft()
        if times:
            self._schedule(times[0] + window_s, "unauthorized", device_id)
        device = self.devices.get(device_id)
        return self._watch(
            K.UNAUTHORIZED,
            device_id,
            len(times) >= self.rules.unauthorized_refusals,
            now,
            fire_after=0,
            device=device,
            device_id=device_id,
            detail={
                "refusals": len(times),
                "window_min": self.rules.unauthorized_window_min,
                "configured": device is not None,
            },
        )

    # -- the engine's own hearing ---------------------------------------------------------------
    def engine_link(self, up: bool, session_lost: bool, now: float) -> list[Command]:
        """The engine's broker link went down or came back (``session_lost``: without the
        persistent session the engine expected, so what devices sent meanwhile is gone)."""
        commands: list[Command] = []
        if up:
            if not self.link_up:
                self.hold_until = -math.inf  # (was held without end while the link was down)
            self.link_up = True
            commands += self._settle(now)
            if session_lost:
                commands += self._session_lost(
                    "session_missing", now, "events devices sent while the engine was away may be lost"
                )
            if self._link_down_at is not None and now - self._link_down_at <= QUICK_RETURN_S:
                self._quick_returns.append(now)
            while self._quick_returns and self._quick_returns[0] <= now - DISPLACED_WINDOW_S:
                self._quick_returns.popleft()
            if len(self._quick_returns) >= DISPLACED_RETURNS:
                self._quick_returns.clear()
                commands += self._session_lost(
                    "displaced",
                    now,
                    "the broker keeps closing the engine's connection "
                    "while it is up: another client may be using the engine's identity",
                )
        elif self.link_up:
            self.link_up = False
            self._link_down_at = now
            self.hold_until = math.inf
            for device_id in self.devices:  # accounting: the engine cannot tell from here on
                commands += self.evaluate_device(device_id, now)
        return commands + self._evaluate_link(now)

    def _session_lost(self, reason: str, now: float, effect: str) -> list[Command]:
        if self.has_open(K.SESSION_LOST, reason):
            return []  # one open alert of each reason is enough
        return [self._update(self._new_alert(K.SESSION_LOST, reason, now, detail={"reason": reason, "effect": effect}))]

    def engine_stalled(self, since: float, now: float) -> list[Command]:
        """The engine's event loop did not run from ``since`` to ``now``. Called before the
        messages that waited in the socket are read and before the timers that fell due."""
        commands = self._settle(now)
        gap = now - since
        if gap < self.rules.stall_alert_after_s:
            return commands
        open_one = next(
            (a for a in self.alerts.values() if a.kind is K.ENGINE_STALLED and a.state is AlertState.FIRING), None
        )
        if open_one is None:
            alert = self._new_alert(
                K.ENGINE_STALLED,
                "engine",
                since,
                detail={"stalls": 1, "longest_s": round(gap, 1), "last_since_at": since},
            )
            return commands + [self._update(alert)]
        detail = open_one.detail
        return commands + [
            self._update(
                open_one.evolve(
                    detail={
                        "stalls": detail.get("stalls", 1) + 1,
                        "longest_s": max(detail.get("longest_s", 0), round(gap, 1)),
                        "last_since_at": since,
                    }
                )
            )
        ]

    def _settle(self, now: float) -> list[Command]:
        """The engine hears again (link back, or loop resumed): every device still online gets
        a fresh heartbeat allowance, a device_offline grace not yet run out starts again from
        now, and alerts resting on evidence are held until the settling period ends."""
        if self.link_up:  # (while the link is down the hold has no end yet)
            self.hold_until = max(self.hold_until, now + self.rules.settle_s)
            self._schedule(self.hold_until, "settled", "all")
        for device in self.devices.values():
            if device.online is not False:
                device.last_seen = max(device.last_seen, now)
                self._schedule(device.last_seen + device.timeout, "heartbeat", device.id)
        for (kind, _), watch in self.watches.items():
            if kind is K.DEVICE_OFFLINE and watch.alert is None and watch.since is not None:
                watch.since = max(watch.since, now)
        commands: list[Command] = []
        for device_id in self.devices:
            commands += self.evaluate_device(device_id, now)
        return commands

    def _evaluate_link(self, now: float) -> list[Command]:
        return self._watch(
            K.BROKER_UNAVAILABLE,
            "broker",
            not self.link_up,
            now,
            fire_after=self.rules.broker_alert_after_s,
            detail=lambda: {"effect": "devices cannot reach the engine; their silence is not counted against them"},
        )

    # -- operator actions ----------------------------------------------------------------------
    def acknowledge(self, alert_id: str, by: str, note: str, now: float) -> list[Command]:
        alert = self.alerts.get(alert_id)
        if alert is None:
            raise Refused(ErrorCode.UNKNOWN_ALERT, alert_id)
        if alert.state is AlertState.ACKNOWLEDGED:
            raise Refused(ErrorCode.ALREADY_ACKNOWLEDGED, alert_id)
        if alert.kind is K.BAD_RATING and not note.strip():
            raise Refused(ErrorCode.NOTE_REQUIRED, alert_id)
        acked = alert.evolve(state=AlertState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by, note=note)
        commands: list[Command] = [self._update(acked)]
        if ALERT_KINDS[alert.kind].closed_by_acknowledgement:  # followed up, or taken note of: done
            commands.append(self._update(acked.evolve(state=AlertState.RESOLVED, until=now)))
        return commands

    # -- the watches ---------------------------------------------------------------------------
    def _watch(
        self,
        kind: AlertKind,
        subject: str,
        raw: bool,
        now: float,
        *,
        fire_after: float,
        window: str | None = None,
        device: DeviceLive | None = None,
        device_id: str | None = None,
        severity: str | None = None,
        detail: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    ) -> list[Command]:
        key = (kind, subject)
        watch = self.watches.get(key)
        if watch is None:
            if not raw:
                return []
            watch = self.watches[key] = Watch()
        rule = ALERT_KINDS[kind]
        clear_after = self.rules.clear_after_s if rule.clear_after_s is None else rule.clear_after_s
        held = rule.evidence and now < self.hold_until
        action = watch.update(raw, now, fire_after, clear_after, held=held)
        commands: list[Command] = []
        if action == "fire":
            window = window or (device.window if device else None)
            staff = self.hall.windows[window].staff if window is not None and window in self.hall.windows else None
            assert watch.since is not None  # (a watch fires once its condition has held since then)
            watch.alert = self._new_alert(
                kind,
                subject,
                watch.since,
                window=window,
                device=device.id if device else device_id,
                staff=staff,
                severity=severity,
                detail=(detail() if callable(detail) else detail) or {},
            )
            commands.append(self._update(watch.alert))
        elif action == "resolve":
            assert watch.alert is not None  # (only a watch that fired resolves)
            alert = self.alerts.get(watch.alert.id, watch.alert)
            commands.append(self._update(alert.evolve(state=AlertState.RESOLVED, until=watch.clear_since)))
            watch.reset()
        deadline = watch.deadline(fire_after, clear_after)
        # A held watch due before the hold ends is judged by the "settled" timer at its end.
        if deadline is not None and not (held and watch.clear_since is None and deadline <= self.hold_until):
            self._schedule(deadline, rule.recheck, subject)
        if watch.since is None and watch.alert is None:
            del self.watches[key]
        return commands

    def _new_alert(
        self,
        kind: AlertKind,
        subject: str,
        since: float,
        *,
        window: str | None = None,
        device: str | None = None,
        staff: str | None = None,
        severity: str | None = None,
        due: float | None = None,
        detail: dict[str, Any],
    ) -> Alert:
        self._alert_seq += 1
        alert = Alert(
            id=f"{self.id}-{self._alert_seq:06d}",
            site=self.id,
            kind=kind,
            severity=severity or ALERT_KINDS[kind].severity,
            state=AlertState.FIRING,
            subject=subject,
            since=since,
            window=window,
            device=device,
            staff=staff,
            due=due,
            detail=detail,
        )
        return alert

    def raise_alert(self, kind: AlertKind, subject: str, since: float, **fields: Any) -> AlertChanged:
        """A new alert of a kind its owner raises itself (``KindRule.watched`` false: the case
        book's), numbered and kept like every other."""
        return self._update(self._new_alert(kind, subject, since, **fields))

    def change_alert(self, alert: Alert) -> AlertChanged:
        """A transition of such an alert (escalated, resolved), decided by its owner."""
        return self._update(alert)

    def has_open(self, kind: AlertKind, subject: str) -> bool:
        """Whether an alert of this kind about this subject is open (firing or acknowledged)."""
        return self._open_count[(kind, subject)] > 0

    def _keep(self, alert: Alert) -> None:
        if alert.id not in self.alerts:
            self._open_count[(alert.kind, alert.subject)] += 1
        self.alerts[alert.id] = alert

    def _update(self, alert: Alert) -> AlertChanged:
        """Every transition of every alert of the site passes here: it is numbered, kept
        (while open) and handed to the shells."""
        self._transition_seq += 1
        alert = alert.evolve(seq=self._transition_seq)
        if alert.open:
            self._keep(alert)
        elif self.alerts.pop(alert.id, None) is not None:
            self._open_count[(alert.kind, alert.subject)] -= 1
        for watch in self.watches.values():
            if watch.alert is not None and watch.alert.id == alert.id:
                watch.alert = alert
        return AlertChanged(site=self.id, alert=alert)

    # -- accounting ------------------------------------------------------------------------------
    def _account(self, subject_kind: str, subject: str, category: str, staff: str | None, now: float) -> list[Command]:
        key = (subject_kind, subject)
        segment = self.segments.get(key)
        if segment is not None and segment.category == category and segment.staff == staff:
            return []
        self.segments[key] = Segment(category=category, since=now, staff=staff)
        return self._close(subject_kind, subject, segment, now) if segment is not None else []

    def _close(self, subject_kind: str, subject: str, segment: Segment, now: float) -> list[Command]:
        seconds = overlap(self._counted(subject_kind, subject), segment.since, now)
        if seconds <= 0:
            return []
        commands: list[Command] = [self._add(subject_kind, subject, segment.category, seconds)]
        if segment.staff is not None:
            commands.append(self._add("staff", segment.staff, segment.category, seconds))
        return commands

    def _counted(self, subject_kind: str, subject: str) -> list[tuple[float, float]]:
        """The time a subject's accounting counts today: working time, or the whole day for a
        device expected online day and night (a 24-hour terminal's night outage counts)."""
        if subject_kind == "device" and self.devices[subject].always_on:
            return self.whole_day
        return self.periods

    def _add(self, subject_kind: str, subject: str, category: str, seconds: float) -> TimeAccounted:
        key = (subject_kind, subject, category)
        self.totals[key] = self.totals.get(key, 0.0) + seconds
        return TimeAccounted(
            site=self.id,
            day=self.day.isoformat() if self.day else "",
            subject_kind=subject_kind,
            subject=subject,
            category=category,
            seconds=self.totals[key],
        )

    def _close_segments(self, now: float) -> list[Command]:
        commands: list[Command] = []
        for (subject_kind, subject), segment in self.segments.items():
            commands += self._close(subject_kind, subject, segment, now)
            segment.since = now
        return commands

    def flush_accounting(self, now: float) -> list[Command]:
        """Bring the day's totals up to ``now`` (for reports and a clean shutdown)."""
        return self._close_segments(now)

    def day_totals(self, now: float) -> dict[tuple[str, str], dict[str, float]]:
        """Today's seconds per category of each window, staff member and device, up to
        ``now`` (the running segments included), in working time (a device expected online day
        and night: the whole day): what the consoles and the metrics show, and what the store's
        accounting holds once the segments close."""
        totals: dict[tuple[str, str], dict[str, float]] = {}
        for (subject_kind, subject, category), seconds in self.totals.items():
            bucket = totals.setdefault((subject_kind, subject), {})
            bucket[category] = bucket.get(category, 0.0) + seconds
        for (subject_kind, subject), segment in self.segments.items():
            running = overlap(self._counted(subject_kind, subject), segment.since, now)
            if running <= 0:
                continue
            for key in [(subject_kind, subject)] + ([("staff", segment.staff)] if segment.staff else []):
                bucket = totals.setdefault(key, {})
                bucket[segment.category] = bucket.get(segment.category, 0.0) + running
        return totals

    # -- restore -------------------------------------------------------------------------------
    def restore(
        self,
        *,
        alerts: Sequence[Alert],
        alert_seq: int,
        devices: Sequence[tuple[str, bool, str | None, float]],
        totals: Sequence[tuple[str, str, str, str, float]],
        now: float,
        transition_seq: int = 0,
    ) -> None:
        """Open alerts keep their watches (so they neither fire twice nor vanish); devices
        resume their last known state with a fresh heartbeat allowance; today's totals."""
        for device_id, online, reason, changed_at in devices:
            device = self.devices.get(device_id)
            if device is not None:
                device.online, device.reason = online, (None if online else reason)
                device.offline_since = None if online else changed_at
                device.last_seen = now
                if online:
                    self._schedule(now + device.timeout, "heartbeat", device_id)
        self._transition_seq = max(self._transition_seq, transition_seq)
        self._alert_seq = max(
            self._alert_seq,
            alert_seq,
            *(int(a.id.rsplit("-", 1)[-1]) for a in alerts if a.id.rsplit("-", 1)[-1].isdigit()),
        )
        for alert in alerts:
            if not alert.open:
                continue
            self._keep(alert)
            if alert.kind is K.CAMERA_TAMPER and alert.device in self.devices:
                # The camera will not say "occluded" again: its open alert is the record of it.
                self.devices[alert.device].tamper = alert.detail.get("tamper", "video_lost")
            if alert.kind is K.UNAUTHORIZED:
                # The refusals behind it are not restored: it resolves after a quiet clear_after.
                self._schedule(now, "unauthorized", alert.subject)
            if alert.kind is K.BAD_RATING and not alert.overdue and alert.due is not None:
                self._schedule(alert.due, "followup", alert.id)
            rule = ALERT_KINDS[alert.kind]
            if rule.closed_by_acknowledgement or not rule.watched:
                continue  # an event, not a condition, or its owner's (a case's): no watch behind it
            self.watches[(alert.kind, alert.subject)] = Watch(since=alert.since, alert=alert)
        today = datetime.fromtimestamp(now, self._tz).date().isoformat()
        for day, subject_kind, subject, category, seconds in totals:
            if day == today:
                self.totals[(subject_kind, subject, category)] = seconds
