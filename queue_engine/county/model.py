"""The county's view of every hall, from what the engines publish: pure (no IO, no clock
reads; time is passed in), fed by the MQTT shell (``service.py``), saved by ``store.py``.

Each hall's alert transitions are numbered by its engine (``seq``, one more each time). The
county keeps, per hall, the number up to which it has every transition (``covered``) and the
numbers it has above it: a transition seen before is a duplicate (a resend, or the same
message through a restored session), and a number missing below one received is a gap, which
the engine is asked to replay (``needs_replay``). A replay's answer covers every number up to
its ``to``: the alerts whose latest transition falls there come with it.

The numbers are those of one engine store: each alert transition, replay answer and day's
figures names the store it comes from (``store_id``, made once with the store). A hall whose
engine starts on a new store (a disk replaced, a store moved aside) numbers from 1 again, and
its alert ids start again too: the county then tracks the new store's numbers from nothing
(``source``), retires the alerts it had of the previous store (kept in the store's
``retired_alerts``, no longer live: their source is gone) and refuses what still comes from
a retired store. An engine of an earlier release names no store: its numbers are taken as
they come, and a hall whose engine names its store for the first time keeps its numbers (a
migrated store keeps them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ..core.alerts import AlertKind
from ..core.calendar import OfficialCalendar, WorkingCalendar, periods_of
from ..core.model import VACANCY, Staffing

if TYPE_CHECKING:
    from ..config import Site

# Alerts whose duration is 空岗 in the county's ranking, by category (core.model.VACANCY).
VACANCY_ALERTS = {AlertKind.WINDOW_NOT_OPENED.value: "not_opened", AlertKind.WINDOW_UNSTAFFED.value: "unstaffed"}
REPLAY_RETRY_S = 30.0  # a replay unanswered for this long is asked again
KEEP_RESOLVED_S = 2 * 86400.0  # resolved alerts kept in memory (the store keeps them all)


@dataclass(slots=True)
class SeqTrack:
    """Which of a hall's alert transition numbers the county has."""

    covered: int | None = None  # every number up to this one is had; None: nothing known yet
    above: set[int] = field(default_factory=set)

    def seen(self, seq: int) -> bool:
        return (self.covered is not None and seq <= self.covered) or seq in self.above

    def add(self, seq: int) -> bool:
        """Record ``seq``; False if it was had already (a duplicate)."""
        if self.seen(seq):
            return False
        self.above.add(seq)
        self._fold()
        return True

    def cover(self, after: int, to: int) -> None:
        """A replay answered every number in (after, to]."""
        if (self.covered or 0) >= after:
            self.covered = max(self.covered or 0, to)
            self.above = {n for n in self.above if n > self.covered}
            self._fold()

    def _fold(self) -> None:
        if self.covered is None:
            return
        while self.covered + 1 in self.above:
            self.covered += 1
            self.above.discard(self.covered)

    @property
    def gap(self) -> bool:
        """Numbers are missing: never covered, or one below a number received."""
        return self.covered is None or bool(self.above)


@dataclass(slots=True)
class Hall:
    """One hall as the county sees it."""

    site: str
    name: str
    kind: str
    prefix: str = ""  # where its engine's topics are on the county broker: "" or "townships/T/"
    heard: bool = False
    windows: dict[str, dict] = field(default_factory=dict)
    queue: dict | None = None
    devices: dict[str, dict] = field(default_factory=dict)
    alerts: dict[str, dict] = field(default_factory=dict)
    seq: SeqTrack = field(default_factory=SeqTrack)
    replay_asked_at: float = -math.inf  # (real time of the last replay request)
    figures: dict[str, dict] = field(default_factory=dict)  # day (YYYY-MM-DD) -> its figures
    figures_asked_at: float = -math.inf  # (real time of the last figures request)
    config: Site | None = None
    store_id: str | None = None  # the engine store whose numbers ``seq`` tracks (None: not named yet)
    retired: list[str] = field(default_factory=list)  # the hall's earlier stores, oldest first
    store_changed_at: float | None = None  # when the county last saw it start on a new store

    def figures_gap(self, day: str) -> str | None:
        """The latest day had before ``day`` when days between them are missing (ask for
        those after it), else None."""
        before = [d for d in self.figures if d < day]
        if not before:
            return None
        latest = max(before)
        return latest if date.fromisoformat(day).toordinal() - date.fromisoformat(latest).toordinal() > 1 else None


@dataclass(slots=True)
class Acknowledgement:
    """A county operator's acknowledgement of an alert, sent to the engine that owns it
    (``control/acknowledge``) under its own id, and that engine's answer."""

    id: str
    site: str
    alert: str
    by: str
    note: str
    asked_at: float
    state: str = "sent"  # sent (no answer yet), applied, refused
    error: str | None = None
    message: str | None = None
    answered_at: float | None = None

    def answered(self, ok: bool, error: str | None, message: str, now: float) -> None:
        self.state, self.answered_at = ("applied", now) if ok else ("refused", now)
        self.error, self.message = (None, None) if ok else (error, message)


SAME, FIRST, NEW, RETIRED = "same", "first", "new", "retired"


@dataclass(frozen=True, slots=True)
class Source:
    """What a message's ``store_id`` says of the hall's engine store (``County.source``)."""

    kind: str  # SAME (or none named), FIRST (named for the first time), NEW (a new store), RETIRED
    previous: str | None = None  # (NEW) the store the county moves on from
    retired_alerts: int = 0  # (NEW) the previous store's alerts it had live


@dataclass(frozen=True, slots=True)
class AlertApplied:
    alert: dict
    new: bool  # not had before (else a duplicate: nothing changes)
    latest: bool  # it is now the hall's current version of that alert


class County:
    def __init__(self, sites: Iterable[Site] = (), official: OfficialCalendar | None = None):
        self.halls: dict[str, Hall] = {}
        self.links: dict[str, bool] = {}  # township -> its bridge link up
        self._official = official or OfficialCalendar()
        self._calendars: dict[str, WorkingCalendar] = {}
        for site in sites:
            self.halls[site.id] = Hall(site.id, site.name, site.kind, config=site)
            self._calendars[site.id] = WorkingCalendar.of_site(self._official, site.calendar)

    def hall(self, site: str, prefix: str) -> Hall:
        """The hall of ``site``, heard of under ``prefix`` (a hall not configured is shown by its id)."""
        hall = self.halls.get(site)
        if hall is None:
            hall = self.halls[site] = Hall(site, site, "")
        hall.prefix = prefix
        hall.heard = True
        return hall

    # -- what arrives -----------------------------------------------------------------------
    def window(self, hall: Hall, state: dict) -> None:
        hall.windows[state["window"]] = state

    def queue(self, hall: Hall, state: dict) -> None:
        hall.queue = state

    def device(self, hall: Hall, state: dict) -> None:
        hall.devices[state["device"]] = state

    def source(self, hall: Hall, store_id: str | None, now: float) -> Source:
        """Note the store a message comes from. A new one: its numbering starts again, the
        previous store's alerts are retired (no longer live), and it is asked for everything
        (``needs_replay``). From a retired store: the caller drops the message."""
        if store_id is None or store_id == hall.store_id:
            return Source(SAME)
        if store_id in hall.retired:
            return Source(RETIRED)
        previous = hall.store_id
        hall.store_id = store_id
        if previous is None:
            return Source(FIRST)
        hall.retired.append(previous)
        retired = len(hall.alerts)
        hall.alerts = {}
        hall.seq = SeqTrack()
        hall.replay_asked_at = -math.inf
        hall.store_changed_at = now
        return Source(NEW, previous, retired)

    def alert(self, hall: Hall, alert: dict) -> AlertApplied:
        new = hall.seq.add(alert["seq"])
        return AlertApplied(alert, new, new and self._keep(hall, alert))

    def replay(self, hall: Hall, after: int, to: int, alerts: Iterable[dict]) -> list[dict]:
        """A replay's answer (all its parts): the alerts that changed what the county had."""
        changed = [a for a in alerts if self._keep(hall, a)]
        hall.seq.cover(after, to)
        return changed

    def _keep(self, hall: Hall, alert: dict) -> bool:
        current = hall.alerts.get(alert["id"])
        if current is not None and current["seq"] >= alert["seq"]:
            return False  # a late older transition changes nothing
        hall.alerts[alert["id"]] = alert
        return True

    def figures(self, hall: Hall, figures: dict) -> bool:
        """A day's figures; False if exactly these were had (the same day again replaces: a
        day is never counted twice), or if those had came from a store the hall's engine has
        since replaced: the new store has nothing of that day (an engine publishes the day
        before its start), and its figures of it would replace the real ones by empty ones."""
        had = hall.figures.get(figures["day"])
        if had == figures or (had is not None and had.get("store_id") in hall.retired):
            return False
        hall.figures[figures["day"]] = figures
        return True

    def figures_ranking(self, limit: int = 20) -> dict[str, Any]:
        """Windows and staff by 空岗 minutes (all three categories) of the latest day whose
        figures any hall sent; None of a day when there are none."""
        days = [d for hall in self.halls.values() for d in hall.figures]
        if not days:
            return {"day": None, "windows": [], "staff": []}
        day = max(days)
        windows: list[dict] = []
        staff: list[dict] = []
        for hall in self.halls.values():
            figures = hall.figures.get(day)
            if figures is None:
                continue
            for into, rows, key in ((windows, figures["windows"], "window"), (staff, figures["staff"], "staff")):
                for row in rows:
                    seconds = {c.value: row[f"{c.value}_min"] * 60 for c in VACANCY}
                    if not any(seconds.values()):
                        continue
                    entry = {"site": hall.site, "site_name": hall.name, key: row["id"], f"{key}_name": row["name"]}
                    into.append({**entry, "seconds": seconds})
        return {"day": day, "windows": _ranked(windows, limit), "staff": _ranked(staff, limit)}

    def needs_replay(self, hall: Hall, now: float) -> bool:
        return hall.heard and hall.seq.gap and now - hall.replay_asked_at >= REPLAY_RETRY_S

    def forget_old(self, now: float) -> None:
        for hall in self.halls.values():
            for alert_id, alert in list(hall.alerts.items()):
                if alert["state"] == "resolved" and _ts(alert["until"]) < now - KEEP_RESOLVED_S:
                    del hall.alerts[alert_id]

    # -- what the console shows --------------------------------------------------------------
    def working(self, hall: Hall, now: float) -> bool | None:
        """Working time at the hall now, from its configuration (None: not configured)."""
        site = hall.config
        if site is None:
            return None
        day = datetime.fromtimestamp(now, site.tz).date()
        return _within(self._periods(site, day), now)

    def _periods(self, site: Site, day: date) -> list[tuple[float, float]]:
        if not self._calendars[site.id].is_working_day(day):
            return []
        return periods_of(day, site.hours.spans(), site.tz)

    def overview(self, hall: Hall, now: float) -> dict:
        counts = {state.value: 0 for state in Staffing}
        for window in hall.windows.values():
            counts[window["staffing"]] = counts.get(window["staffing"], 0) + 1
        alerts = [a for a in hall.alerts.values() if a["state"] != "resolved"]
        return {
            "id": hall.site,
            "name": hall.name,
            "kind": hall.kind,
            "township": hall.prefix.split("/")[1] if hall.prefix else None,
            "heard": hall.heard,
            "open": self.working(hall, now),
            "waiting": hall.queue["waiting"] if hall.queue else None,
            "windows": counts,
            "alerts": {
                "firing": sum(1 for a in alerts if a["state"] == "firing"),
                "acknowledged": sum(1 for a in alerts if a["state"] == "acknowledged"),
            },
            "devices_offline": sum(1 for d in hall.devices.values() if d["online"] is False),
            "missing_alerts": hall.seq.gap and hall.heard,
            "store_changed_at": hall.store_changed_at,
        }

    def alerts(
        self, now: float, *, site: str | None = None, kind: str | None = None, state: str | None = None
    ) -> list[dict]:
        """Open alerts and those changed since the start of the hall's day, latest first,
        each with its hall's and window's names."""
        rows = []
        for hall in self.halls.values():
            if site is not None and hall.site != site:
                continue
            start = _day_start(hall, now)
            for alert in hall.alerts.values():
                if kind is not None and alert["kind"] != kind or state is not None and alert["state"] != state:
                    continue
                if alert["state"] == "resolved" and _ts(alert["until"]) < start:
                    continue
                rows.append(self.named(hall, alert))
        return sorted(rows, key=_changed_at, reverse=True)

    def named(self, hall: Hall, alert: dict) -> dict:
        window = hall.windows.get(alert["window"] or "")
        return {**alert, "site_name": hall.name, "window_name": window["window_name"] if window else None}

    def offline_devices(self) -> list[dict]:
        rows = []
        for hall in self.halls.values():
            for device in hall.devices.values():
                if device["online"] is False or device["tamper"] or not device["video_ok"]:
                    window = hall.windows.get(device["window"] or "")
                    rows.append(
                        {
                            **device,
                            "site": hall.site,
                            "site_name": hall.name,
                            "window_name": window["window_name"] if window else None,
                        }
                    )
        return rows

    def ranking(self, now: float, limit: int = 20) -> dict[str, list[dict]]:
        """Windows and staff by today's 空岗 minutes as alerted (window_not_opened and
        window_unstaffed alerts, from when they fired, running ones up to now), longest first."""
        windows: dict[tuple[str, str], dict[str, Any]] = {}
        staff: dict[tuple[str, str], dict[str, Any]] = {}
        for hall in self.halls.values():
            start = _day_start(hall, now)
            for alert in hall.alerts.values():
                category = VACANCY_ALERTS.get(alert["kind"])
                if category is None or alert["window"] is None:
                    continue
                since = max(_ts(alert["since"]), start)
                until = _ts(alert["until"]) if alert["until"] else now
                seconds = max(0.0, until - since)  # (an engine's clock a little ahead: a running one counts 0)
                if seconds == 0 and alert["until"]:
                    continue
                window = hall.windows.get(alert["window"], {})
                w = windows.setdefault(
                    (hall.site, alert["window"]),
                    {
                        "site": hall.site,
                        "site_name": hall.name,
                        "window": alert["window"],
                        "window_name": window.get("window_name", alert["window"]),
                        "staff_name": window.get("staff_name"),
                        "seconds": {c.value: 0.0 for c in VACANCY},
                    },
                )
                w["seconds"][category] += seconds
                if alert["staff"]:
                    s = staff.setdefault(
                        (hall.site, alert["staff"]),
                        {
                            "site": hall.site,
                            "site_name": hall.name,
                            "staff": alert["staff"],
                            "staff_name": alert["staff_name"] or alert["staff"],
                            "seconds": {c.value: 0.0 for c in VACANCY},
                        },
                    )
                    s["seconds"][category] += seconds
        return {"windows": _ranked(windows.values(), limit), "staff": _ranked(staff.values(), limit)}


def _ranked(rows: Iterable[dict], limit: int) -> list[dict]:
    out = []
    for row in rows:
        seconds = row.pop("seconds")
        total = sum(seconds.values())
        minutes = {category: round(s / 60, 1) for category, s in seconds.items()}
        out.append({**row, "seconds": round(total, 1), "vacant_min": {**minutes, "total": round(total / 60, 1)}})
    return sorted(out, key=lambda r: -r["seconds"])[:limit]


def _within(periods: list[tuple[float, float]], now: float) -> bool:
    return any(a <= now < b for a, b in periods)


def timestamp(iso_text: str | None) -> float | None:
    return datetime.fromisoformat(iso_text).timestamp() if iso_text else None


def _ts(iso_text: str | None) -> float:
    return datetime.fromisoformat(iso_text).timestamp() if iso_text else -math.inf


def _changed_at(alert: dict) -> float:
    return max(_ts(alert["since"]), _ts(alert["acknowledged_at"]), _ts(alert["until"]))


def _day_start(hall: Hall, now: float) -> float:
    """Local midnight of the hall's day (its configured zone, else the zone of its latest alert)."""
    tz = hall.config.tz if hall.config else None
    moment = datetime.fromtimestamp(now, tz) if tz else None
    if moment is None:
        latest = next(iter(hall.alerts.values()), None)
        offset = datetime.fromisoformat(latest["since"]).tzinfo if latest else None
        moment = datetime.fromtimestamp(now, offset)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
