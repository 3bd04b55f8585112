"""Shared helpers for the tests of the pure core (queue_engine.core).

Time is a plain number (float seconds since the epoch) computed here with datetime; the
core never reads a clock and nothing is patched. Sites are built with the real config
model (``queue_engine.config.parse_site``), so the tests exercise the same validation a
site file goes through.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

from queue_engine.config import Site, parse_site
from queue_engine.core import (
    AnnounceCall,
    Command,
    Engine,
    Hall,
    QueueChanged,
    RatingRecorded,
    Reply,
    TicketChanged,
    TicketSlip,
    WindowChanged,
)
from queue_engine.core import events as ev

SITE_ID = "hall-1"
TZ = ZoneInfo("Asia/Shanghai")


def local_ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: float = 0) -> float:
    """Seconds since the epoch of a wall-clock moment in Asia/Shanghai."""
    whole = int(second)
    micro = round((second - whole) * 1_000_000)
    return datetime(year, month, day, hour, minute, whole, micro, tzinfo=TZ).timestamp()


# Wednesday 2026-11-25, 09:00 in Asia/Shanghai: a working-hours moment.
BASE = local_ts(2026, 11, 25, 9, 0)
DAY = 24 * 3600.0

WINDOWS = ("w01", "w02", "w03", "w09")
STAFF = ("s001", "s002", "s003", "s004")


def site_dict(*, queue: dict | None = None, hours: dict | None = None, site_id: str = SITE_ID) -> dict:
    """A small hall: shebao (A), budongchan (B) and the fallback service fankui (F);
    w01 comprehensive, w02 shebao only, w03 budongchan only, w09 the fallback window."""
    data: dict = {
        "id": site_id,
        "name": "测试镇便民服务中心",
        "kind": "township",
        "timezone": "Asia/Shanghai",
        "hours": {"periods": ["08:30-12:00", "14:30-17:30"], "issue_before_open_min": 30},
        "queue": {"priority_cap": 2},
        "services": [
            {"code": "shebao", "name": "社保业务", "prefix": "A", "category": "人社"},
            {"code": "budongchan", "name": "不动产登记", "prefix": "B", "category": "自然资源"},
            {"code": "fankui", "name": "办不成事反映", "prefix": "F", "category": "综合"},
        ],
        "windows": [
            {"id": "w01", "name": "1号窗口", "role": "comprehensive"},
            {"id": "w02", "name": "2号窗口", "services": ["shebao"]},
            {"id": "w03", "name": "3号窗口", "services": ["budongchan"]},
            {"id": "w09", "name": "9号窗口", "role": "fallback", "services": ["fankui"]},
        ],
        "devices": [
            {"id": "kiosk-1", "kind": "kiosk"},
            *({"id": f"panel-{w}", "kind": "panel", "window": w} for w in WINDOWS),
            {"id": "pad-w01", "kind": "pad", "window": "w01"},
            {"id": "cam-w01", "kind": "camera", "window": "w01"},
        ],
        "staff": [{"id": s, "name": f"工作人员{s[-1]}"} for s in STAFF],
    }
    if queue:
        data["queue"] = {**data["queue"], **queue}
    if hours:
        data["hours"] = {**data["hours"], **hours}
    return data


def make_site(**kwargs) -> Site:
    return parse_site(site_dict(**kwargs))


def make_engine(**kwargs) -> Engine:
    return Engine([make_site(**kwargs)])


# -- event builders ---------------------------------------------------------------------------
_ids = itertools.count(1)


def next_id() -> str:
    return f"e{next(_ids)}"


def ticket_request(service: str, *, device: str = "kiosk-1", **fields) -> ev.TicketRequest:
    return ev.TicketRequest(site=SITE_ID, device=device, id=next_id(), service=service, **fields)


def panel_event(window: str, cls: type[ev.Event], **fields) -> ev.Event:
    return cls(site=SITE_ID, device=f"panel-{window}", id=next_id(), **fields)


def rating(window: str, score: int, *, device: str = "pad-w01", **fields) -> ev.Rating:
    return ev.Rating(site=SITE_ID, device=device, id=next_id(), window=window, score=score, **fields)


# -- reading command lists ---------------------------------------------------------------------
def replies(commands: list[Command]) -> list[Reply]:
    return [c for c in commands if isinstance(c, Reply)]


def calls(commands: list[Command]) -> list[AnnounceCall]:
    return [c for c in commands if isinstance(c, AnnounceCall)]


def ticket_changes(commands: list[Command]) -> list[TicketChanged]:
    return [c for c in commands if isinstance(c, TicketChanged)]


def window_changes(commands: list[Command]) -> list[WindowChanged]:
    return [c for c in commands if isinstance(c, WindowChanged)]


def queue_changes(commands: list[Command]) -> list[QueueChanged]:
    return [c for c in commands if isinstance(c, QueueChanged)]


def ratings(commands: list[Command]) -> list[RatingRecorded]:
    return [c for c in commands if isinstance(c, RatingRecorded)]


def the_reply(commands: list[Command]) -> Reply:
    found = replies(commands)
    assert len(found) == 1, f"expected exactly one reply, got {commands!r}"
    return found[0]


def latest_state(commands: list[Command]):
    """The latest Ticket per number and WindowState per window, as a store would keep them."""
    tickets, windows = {}, {}
    for command in commands:
        if isinstance(command, TicketChanged):
            tickets[(command.ticket.site, command.ticket.day, command.ticket.no)] = command.ticket
        elif isinstance(command, WindowChanged):
            windows[(command.window.site, command.window.window)] = command.window
    return list(tickets.values()), list(windows.values())


def snapshot(hall: Hall, now: float):
    """Everything observable about a hall's queue and windows (values are frozen)."""
    return (
        hall.day,
        hall.next_deadline(),
        dict(hall.tickets),
        dict(hall.windows),
        hall.queue_view(now),
        hall.waiting_directed(),
        {no: hall.position(no) for no in hall.tickets},
    )


class Driver:
    """Drives one engine through a scripted day. Each event advances the clock by ``step``
    seconds first, so every event has its own time and places in the queue are distinct."""

    def __init__(self, engine: Engine | None = None, *, now: float = BASE, step: float = 1.0, **site_kwargs):
        self.now = now
        self.step = step
        self.log: list[Command] = []
        if engine is None:
            # A fresh engine starts its day (the windows' day is set) before the first event,
            # so that a test's first event returns only its own commands.
            engine = make_engine(**site_kwargs)
            self.log += engine.tick(now)
        self.engine = engine

    @property
    def hall(self) -> Hall:
        return self.engine.hall(SITE_ID)

    def settle(self, at: float) -> None:
        """Run the timers due by ``at`` (supervision, the day roll), as the engine's timer
        does between events, so that ``send`` returns only the event's own commands."""
        if self.engine.next_deadline() <= at:
            self.log += self.engine.tick(at)

    def send(self, event: ev.Event, *, at: float | None = None) -> list[Command]:
        self.now = at if at is not None else self.now + self.step
        self.settle(self.now)
        commands = self.engine.handle(event, self.now)
        self.log += commands
        return commands

    def tick(self, at: float) -> list[Command]:
        self.now = at
        commands = self.engine.tick(at)
        self.log += commands
        return commands

    # -- kiosk
    def issue(self, service: str, *, at: float | None = None, **fields) -> TicketSlip:
        reply = the_reply(self.send(ticket_request(service, **fields), at=at))
        assert reply.ok, reply
        assert isinstance(reply.ticket, TicketSlip)
        return reply.ticket

    # -- panel
    def panel(self, window: str, cls: type[ev.Event], *, at: float | None = None, **fields) -> list[Command]:
        return self.send(panel_event(window, cls, **fields), at=at)

    def ok(self, window: str, cls: type[ev.Event], **fields) -> Reply:
        reply = the_reply(self.panel(window, cls, **fields))
        assert reply.ok, reply
        return reply

    def login(self, window: str, staff: str) -> None:
        self.ok(window, ev.StaffLogin, staff=staff)

    def call_next(self, window: str) -> str:
        reply = self.ok(window, ev.CallNext)
        assert isinstance(reply.ticket, str)
        return reply.ticket

    def serve(self, window: str, outcome: ev.Outcome = ev.Outcome.DONE) -> str:
        """Call the next ticket, start and finish it; returns its number."""
        no = self.call_next(window)
        self.ok(window, ev.ServiceStart)
        self.ok(window, ev.ServiceFinish, outcome=outcome)
        return no


# -- supervision (电子监察): sites, events and readers for tests/test_core_supervision.py --------
def supervision_site_dict(
    *,
    supervision: dict | None = None,
    calendar: dict | None = None,
    windows: dict[str, dict] | None = None,
    extra_devices: list[dict] = (),
    quiet: bool = True,
    **kwargs,
) -> dict:
    """``site_dict`` plus supervision settings. ``windows`` maps a window id to fields that
    replace its own (``must_staff``, ``staff_weekdays``); ``extra_devices`` are appended.
    ``quiet`` gives every device an hour between heartbeats and a 100-miss timeout, so that
    devices a test does not script are never declared silent; pass ``quiet=False`` for the
    defaults (10 s, 3 misses). A device's absence alerts at once (``device_offline_grace_s``
    0) unless a test sets a grace: the tests of the grace itself do (the default is 60 s)."""
    data = site_dict(**kwargs)
    data["supervision"] = dict(supervision or {})
    data["supervision"].setdefault("device_offline_grace_s", 0)
    if quiet:
        data["supervision"].setdefault("heartbeat_misses", 100)
    if calendar is not None:
        data["calendar"] = calendar
    for window in data["windows"]:
        window.update((windows or {}).get(window["id"], {}))
    data["devices"] = [*data["devices"], *extra_devices]
    if quiet:
        for device in data["devices"]:
            device.setdefault("heartbeat_s", 3600)
    return data


def make_supervised_engine(official=None, **kwargs) -> Engine:
    """An engine over one ``supervision_site_dict`` site; ``official`` is an OfficialCalendar
    (``queue_engine.calendar.official_calendar()``) or None for Monday-Friday."""
    return Engine([parse_site(supervision_site_dict(**kwargs))], official)


def run_until(driver: Driver, at: float) -> list[Command]:
    """Run every timer at its own deadline (not all at ``at``), as the timer shell does,
    then move the driver's clock to ``at``. Returns the commands of those ticks."""
    commands: list[Command] = []
    while driver.engine.next_deadline() <= at:
        commands += driver.tick(driver.engine.next_deadline())
    driver.now = at
    return commands


def device_status(device: str, online: bool, reason: str | None = None, **fields) -> ev.DeviceStatus:
    return ev.DeviceStatus(site=SITE_ID, device=device, id=next_id(), online=online, reason=reason, **fields)


def heartbeat(device: str, seq: int = 1, video_ok: bool | None = None) -> ev.Heartbeat:
    return ev.Heartbeat(site=SITE_ID, device=device, id=next_id(), seq=seq, video_ok=video_ok)


def presence(window: str, present: bool, *, device: str | None = None) -> ev.Presence:
    return ev.Presence(
        site=SITE_ID,
        device=device or f"cam-{window}",
        id=next_id(),
        window=window,
        present=present,
        count=1 if present else 0,
    )


def tamper(device: str, kind: str) -> ev.Tamper:
    return ev.Tamper(site=SITE_ID, device=device, id=next_id(), kind=kind)


def refusal(device: str, code: str) -> ev.Refusal:
    return ev.Refusal(site=SITE_ID, device=device, id=next_id(), code=code)


def acknowledge(alert: str, *, by: str = "officer-1", note: str = "") -> ev.Acknowledge:
    return ev.Acknowledge(site=SITE_ID, device=by, id=next_id(), alert=alert, note=note)


def alert_changes(commands: list[Command]):
    """The alerts of the AlertChanged commands, in order."""
    from queue_engine.core.commands import AlertChanged

    return [c.alert for c in commands if isinstance(c, AlertChanged)]


def of_type(commands: list[Command], cls: type) -> list:
    return [c for c in commands if isinstance(c, cls)]


def latest_alerts(commands: list[Command]) -> dict:
    """The latest version of every alert by id, as the store's alerts table keeps them."""
    return {alert.id: alert for alert in alert_changes(commands)}


def alert_invariant_problems(commands: list[Command]) -> list[str]:
    """Checks over a whole log of commands: the site's alert transitions are numbered one
    after another; an alert keeps its id, kind, subject, site and start through all its
    changes; it never goes back from resolved; a resolved alert ends
    no earlier than it began; two alerts of one kind and subject are never open at once."""
    from queue_engine.core.commands import AlertChanged

    problems: list[str] = []
    first: dict = {}
    current: dict = {}
    open_by_subject: dict = {}
    seqs: dict = {}
    for change in of_type(commands, AlertChanged):  # each transition numbered, one more each time
        previous = seqs.get(change.site)
        if previous is not None and change.seq != previous + 1:
            problems.append(f"transition {change.seq} of {change.site} follows {previous}: {change.alert}")
        seqs[change.site] = change.seq
    for alert in alert_changes(commands):
        was = current.get(alert.id)
        if alert.id not in first:
            first[alert.id] = alert
        origin = first[alert.id]
        if (alert.kind, alert.subject, alert.site, alert.since) != (
            origin.kind,
            origin.subject,
            origin.site,
            origin.since,
        ):
            problems.append(f"{alert.id} changed identity: {origin} -> {alert}")
        if was is not None and not was.open:
            problems.append(f"{alert.id} changed after it was resolved: {alert}")
        if not alert.open and (alert.until is None or alert.until < alert.since):
            problems.append(f"{alert.id} resolved with until {alert.until} before since {alert.since}")
        key = (alert.site, alert.kind, alert.subject)
        holder = open_by_subject.get(key)
        if alert.open:
            if holder is not None and holder != alert.id:
                problems.append(f"two open {alert.kind} alerts for {alert.subject}: {holder} and {alert.id}")
            open_by_subject[key] = alert.id
        elif holder == alert.id:
            del open_by_subject[key]
        current[alert.id] = alert
    return problems
