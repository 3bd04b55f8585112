"""From the store's tables to the report's rows.

Counts, sums and means are computed by SQLite (GROUP BY over the tickets of the period, with
the local hour from the site's UTC offset); the waits come in one sorted scan, from which the
percentiles are look-ups. A month of a busy hall costs a few scans, well under a second. The
store is opened read-only: a report never writes, and it can run beside the engine (WAL).

Definitions:
- a ticket's *wait* runs from ``issued_at`` to ``first_called_at`` (tickets never called have
  none: they are counted as ``expired`` if still waiting at the end of their day);
- its *service time* from ``started_at`` to ``finished_at`` of a finished ticket (after a
  transfer, the service at the window that finished it);
- the 90th percentile is the nearest-rank one: the smallest wait that at least 90 % of the
  waits do not exceed;
- *within target*: waits not longer than the ``target_wait_min`` of the service the ticket
  was issued for;
- minutes staffed, unstaffed, paused, online and offline come from the ``accounting`` table,
  which the engine keeps within working time only, except for a device expected online day and
  night (a 24-hour self-service terminal: ``config.Device.expected_hours``), whose whole day
  counts, so that its night outage shows; for the current day they lag the engine by up
  to one change of state (the engine writes them at each change and at each opening and
  closing time);
- a *case* (办件) counts in the period it was opened in; it was *done on time* when completed
  by the end of its due day (``closed_at <= due_at``), *overdue* when closed after that, or
  still open after it as of the report's moment; its days to completion are calendar days
  (24 hours) from opening to completion. The 即办件 share done on the spot: the visits for a
  即办件 service finished as 办结, out of those finished as 办结 or 受理.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.calendar import OfficialCalendar, WorkingCalendar
from ..core.figures import satisfaction_pct
from ..core.model import Staffing
from ..core.vocabulary import (
    ALERT_KIND,
    ALERT_STATE,
    CASE_DIMENSION,
    DEVICE_KIND,
    FOLLOW_UP,
    ONLINE_HOURS,
    OUTCOME,
    PAUSE_REASON,
)
from .model import AlertRow, BadRatingRow, CaseRow, DeviceRow, FlowRow, HourRow, Report, SiteReport, WorkRow

if TYPE_CHECKING:
    from ..config import Site

REQUIRED_TABLES = ("tickets", "ratings", "alerts", "accounting")
DIGITS = "0123456789"


class ReportError(Exception):
    """The report cannot be made: unknown site, bad period, unreadable store."""


def open_store(db: str | Path) -> sqlite3.Connection:
    """A read-only connection to an engine's store (checked as the engine checks it)."""
    from ..shells.storefile import StoreRefused, open_read_only

    path = Path(db)
    if not path.is_file():
        raise ReportError(f"{path}: no such store (an engine's SQLite file)")
    try:
        return open_read_only(path, REQUIRED_TABLES)
    except StoreRefused as exc:
        raise ReportError(str(exc)) from None


def build_report(
    sites: Iterable[Site],
    db: str | Path | sqlite3.Connection,
    site_ids: Iterable[str] | None,
    start: date,
    end: date,
    *,
    now: float | None = None,
    official: OfficialCalendar | None = None,
) -> Report:
    """The report of the sites ``site_ids`` (None: every site given) from ``start`` to ``end``
    (local dates, both included), as of ``now`` (default: the current time), read from the
    store ``db`` (a path, or an open connection). Blocking: call it from a thread in an
    event loop."""
    by_id = {site.id: site for site in sites}
    ids = list(by_id) if site_ids is None else list(dict.fromkeys(site_ids))
    unknown = [s for s in ids if s not in by_id]
    if unknown:
        raise ReportError(f"unknown site {', '.join(unknown)} (configured: {', '.join(by_id) or 'none'})")
    if not ids:
        raise ReportError("no site to report on")
    if end < start:
        raise ReportError(f"the period ends ({end}) before it starts ({start})")
    if official is None:
        from ..calendar import official_calendar

        official = official_calendar()
    as_of = time.time() if now is None else now
    chosen = [by_id[s] for s in ids]
    own = not isinstance(db, sqlite3.Connection)
    conn = db if isinstance(db, sqlite3.Connection) else open_store(db)
    try:
        snapshot = not conn.in_transaction
        if snapshot:
            conn.execute("BEGIN")  # one snapshot for every query below
        try:
            reports = _compute(conn, chosen, start, end, as_of, official)
        finally:
            if snapshot:
                conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise ReportError(f"cannot read the store: {exc}") from None
    finally:
        if own:
            conn.close()
    first_tz = chosen[0].tz
    return Report(start=start, end=end, generated_at=datetime.fromtimestamp(as_of, first_tz), sites=reports)


# -- the queries ---------------------------------------------------------------------------------
# ``d`` (site, day, local UTC offset at noon) and ``tg`` (site, prefix, target seconds) come in
# as JSON parameters, so the store can stay read-only (no temporary tables).
_PARAMS = """
d(site, day, off) AS (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(:days)),
tg(site, prefix, target) AS (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(:targets))
"""
_HOUR = "((CAST(t.issued_at + d.off AS INTEGER) % 86400) / 3600)"

ISSUED_SQL = f"""
WITH {_PARAMS}
SELECT t.site, t.day, rtrim(t.no, '{DIGITS}') AS prefix, {_HOUR} AS hour,
       count(*) AS issued, sum(t.transfers > 0) AS transferred
FROM d JOIN tickets t ON t.site = d.site AND t.day = d.day
GROUP BY 1, 2, 3, 4
"""

FINAL_SQL = f"""
WITH {_PARAMS}
SELECT t.site, t.day, t.service, t.status, t.outcome, count(*) AS n,
       sum(CASE WHEN t.status = 'done' AND t.started_at IS NOT NULL THEN t.finished_at - t.started_at END),
       count(CASE WHEN t.status = 'done' AND t.started_at IS NOT NULL THEN 1 END)
FROM d JOIN tickets t ON t.site = d.site AND t.day = d.day
GROUP BY 1, 2, 3, 4, 5
"""

# Every wait once, in increasing order: the per-group lists built from it are sorted, so each
# percentile is a look-up (SQLite's window functions cost more here: one sort per grouping).
WAITS_SQL = f"""
WITH {_PARAMS}
SELECT t.site, t.day, rtrim(t.no, '{DIGITS}') AS prefix, {_HOUR} AS hour,
       t.first_called_at - t.issued_at AS wait, (t.first_called_at - t.issued_at) <= tg.target AS ok
FROM d JOIN tickets t ON t.site = d.site AND t.day = d.day
LEFT JOIN tg ON tg.site = t.site AND tg.prefix = rtrim(t.no, '{DIGITS}')
WHERE t.first_called_at IS NOT NULL
ORDER BY wait
"""


def _wait_stats(conn: sqlite3.Connection, params: dict) -> list[tuple]:
    """(level, site, day, prefix, hour, called, mean, longest, within, judged, p90) for the levels
    sdp (site, day, prefix), sd (site, day), sh (site, hour) and s (site); waits in seconds, the
    90th percentile the nearest-rank one."""
    groups: dict[tuple, list] = defaultdict(lambda: [[], 0, 0])  # waits (sorted), within, judged
    for site, day, prefix, hour, wait, ok in conn.execute(WAITS_SQL, params):
        for key in (
            ("sdp", site, day, prefix, None),
            ("sd", site, day, None, None),
            ("sh", site, None, None, hour),
            ("s", site, None, None, None),
        ):
            group = groups[key]
            group[0].append(wait)
            if ok is not None:
                group[1] += ok
                group[2] += 1
    rows = []
    for key, (waits, within, judged) in groups.items():
        n = len(waits)
        rows.append((*key, n, sum(waits) / n, waits[-1], within, judged, waits[math.ceil(0.9 * n) - 1]))
    return rows


SERVED_SQL = f"""
WITH {_PARAMS}
SELECT t.site, t.window, t.staff, count(*), sum(t.finished_at - t.started_at), count(t.started_at)
FROM d JOIN tickets t ON t.site = d.site AND t.day = d.day
WHERE t.status = 'done'
GROUP BY 1, 2, 3
"""

ACCOUNTING_SQL = """
SELECT site, subject_kind, subject, category, sum(seconds)
FROM accounting
WHERE site IN (SELECT value FROM json_each(:sites)) AND day BETWEEN :first AND :last
GROUP BY 1, 2, 3, 4
"""

RATINGS_SQL = """
SELECT window, staff, score, count(*) FROM ratings
WHERE site = :site AND at >= :start AND at < :end
GROUP BY 1, 2, 3
"""

BAD_RATINGS_SQL = """
SELECT window, staff, ticket, score, at FROM ratings
WHERE site = :site AND at >= :start AND at < :end AND score <= :max_score
ORDER BY at, id
"""

ALERT_FIELDS = (
    "id",
    "kind",
    "severity",
    "state",
    "subject",
    "window",
    "device",
    "staff",
    "since",
    "until",
    "acknowledged_at",
    "acknowledged_by",
    "note",
    "overdue",
)
ALERTS_SQL = f"""
SELECT {", ".join(f'"{f}"' for f in ALERT_FIELDS)} FROM alerts
WHERE site = :site AND since < :end AND (until IS NULL OR until >= :start)
ORDER BY since, id
"""
FOLLOW_UP_SQL = """
SELECT subject, since, acknowledged_at, note, id FROM alerts
WHERE site = :site AND kind = 'bad_rating' AND since >= :start AND since < :end
"""


# 办件: the cases opened and the notices given in the period, and the 即办件 visits finished.
CASES_SQL = """
SELECT service, window, agent, kind, status, opened_at, due_at, closed_at FROM cases
WHERE site = :site AND opened_at >= :start AND opened_at < :end
"""
NOTICES_SQL = """
SELECT service, window, staff, breach FROM notices
WHERE site = :site AND at >= :start AND at < :end
"""
ON_THE_SPOT_SQL = f"""
WITH {_PARAMS}
SELECT t.site, t.service, t.window, t.staff, t.outcome = 'done', count(*)
FROM d JOIN tickets t ON t.site = d.site AND t.day = d.day
WHERE t.status = 'done' AND t.outcome IN ('done', 'accepted')
GROUP BY 1, 2, 3, 4, 5
"""


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _midnight(day: date, tz) -> float:
    return datetime.combine(day, datetime.min.time(), tz).timestamp()


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60.0


def _compute(
    conn: sqlite3.Connection, sites: list[Site], start: date, end: date, as_of: float, official: OfficialCalendar
) -> list[SiteReport]:
    days = _days(start, end)
    day_rows, target_rows = [], []
    for site in sites:
        tz = site.tz
        for day in days:
            noon = datetime.combine(day, datetime.min.time().replace(hour=12), tz)
            offset = noon.utcoffset()
            assert offset is not None  # noon is aware: it carries the site's ZoneInfo
            day_rows.append((site.id, day.isoformat(), int(offset.total_seconds())))
        for service in site.services:
            target_rows.append((site.id, service.prefix, service.target_wait_min * 60.0))
    params = {"days": json.dumps(day_rows), "targets": json.dumps(target_rows)}

    issued = conn.execute(ISSUED_SQL, params).fetchall()
    finals = conn.execute(FINAL_SQL, params).fetchall()
    waits = _wait_stats(conn, params)
    served = conn.execute(SERVED_SQL, params).fetchall()
    on_the_spot = conn.execute(ON_THE_SPOT_SQL, params).fetchall()
    accounting = conn.execute(
        ACCOUNTING_SQL,
        {"sites": json.dumps([s.id for s in sites]), "first": start.isoformat(), "last": end.isoformat()},
    ).fetchall()
    by_site: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for name, rows in (
        ("issued", issued),
        ("finals", finals),
        ("served", served),
        ("accounting", accounting),
        ("on_the_spot", on_the_spot),
    ):
        for row in rows:
            by_site[row[0]][name].append(row)
    for row in waits:
        by_site[row[1]]["waits"].append(row)

    reports = []
    for site in sites:
        tz = site.tz
        span = (_midnight(start, tz), _midnight(end + timedelta(days=1), tz))
        reports.append(_site_report(conn, site, by_site[site.id], span, as_of, official))
    return reports


def _site_report(
    conn, site: Site, rows: dict[str, list], span: tuple[float, float], as_of: float, official: OfficialCalendar
) -> SiteReport:
    spans = site.hours.spans()
    first_minute = spans[0][0].hour * 60 + spans[0][0].minute - site.hours.issue_before_open_min
    last_minute = spans[-1][1].hour * 60 + spans[-1][1].minute
    hours_shown = (max(0, first_minute // 60), min(23, math.ceil(last_minute / 60) - 1))
    report = SiteReport(site=site.id, name=site.name, kind=site.kind, timezone=site.timezone, hours_shown=hours_shown)
    _flows(report, site, rows)
    _work(report, site, rows)
    _ratings(conn, report, site, span)
    _alerts(conn, report, site, span)
    _bad_ratings(conn, report, site, span, as_of, official)
    _cases(conn, report, site, rows, span, as_of)
    return report


# -- tickets -------------------------------------------------------------------------------------
def _flows(report: SiteReport, site: Site, rows: dict[str, list]) -> None:
    code_of = {s.prefix: s.code for s in site.services}
    services = {s.code: s for s in site.services}
    order = {s.code: i for i, s in enumerate(site.services)}
    flows: dict[tuple[str, str], FlowRow] = {}
    days: dict[str, FlowRow] = {}
    total = FlowRow(site=site.id, day="")
    hours: dict[int, HourRow] = {}
    per_hour: dict[tuple[str, str] | str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    service_time: dict[tuple[str, str] | str, list[float]] = defaultdict(lambda: [0.0, 0])

    def flow(day: str, code: str) -> FlowRow:
        row = flows.get((day, code))
        if row is None:
            service = services.get(code)
            row = flows[(day, code)] = FlowRow(
                site=site.id,
                day=day,
                service=code,
                service_name=service.name if service else code,
                target_min=service.target_wait_min if service else None,
            )
        return row

    def day_row(day: str) -> FlowRow:
        row = days.get(day)
        if row is None:
            row = days[day] = FlowRow(site=site.id, day=day)
        return row

    row: FlowRow | HourRow
    for _, day, prefix, hour, count, transferred in rows["issued"]:
        code = code_of.get(prefix, prefix)
        for row in (flow(day, code), day_row(day), total):
            row.issued += count
            row.transferred += transferred
        per_hour[(day, code)][hour] += count
        per_hour[day][hour] += count
        hours.setdefault(hour, HourRow(site=site.id, hour=hour)).issued += count

    for _, day, code, status, outcome, count, seconds, timed in rows["finals"]:
        targets = (flow(day, code), day_row(day), total)
        for row in targets:
            if status == "done":
                row.served += count
                if outcome in OUTCOME:
                    setattr(row, outcome, getattr(row, outcome) + count)
            elif status == "no_show":
                row.no_shows += count
            elif status == "expired":
                row.expired += count
        if timed:
            for key in ((day, code), day, "total"):
                service_time[key][0] += seconds
                service_time[key][1] += timed

    for level, _, day, prefix, hour, called, mean, longest, ok, judged, p90 in rows["waits"]:
        if level == "sdp":
            row = flow(day, code_of.get(prefix, prefix))
        elif level == "sd":
            row = day_row(day)
        elif level == "s":
            row = total
        else:
            row = hours.setdefault(hour, HourRow(site=site.id, hour=hour))
        row.called = called
        row.wait_mean_min, row.wait_p90_min, row.wait_max_min = _minutes(mean), _minutes(p90), _minutes(longest)
        if isinstance(row, FlowRow) and judged:  # (level != "sh": the hours have no target)
            row.within_target_pct = 100.0 * ok / judged

    for key, (seconds, count) in service_time.items():
        row = total if key == "total" else days[key] if isinstance(key, str) else flows[key]
        row.service_mean_min = seconds / count / 60.0 if count else None
    for key, counts in per_hour.items():
        row = days[key] if isinstance(key, str) else flows[key]
        row.peak_hour, row.peak_issued = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    report.service_days = sorted(flows.values(), key=lambda r: (r.day, order.get(r.service, len(order)), r.service))
    report.days = sorted(days.values(), key=lambda r: r.day)
    first, last = report.hours_shown
    for hour in range(first, last + 1):
        hours.setdefault(hour, HourRow(site=site.id, hour=hour))
    report.hours = sorted(hours.values(), key=lambda r: r.hour)
    report.total = total


# -- windows, staff, devices -----------------------------------------------------------------
_CATEGORY_FIELD = {state.value: f"{state.value}_min" for state in Staffing if state is not Staffing.PAUSED}


def _work(report: SiteReport, site: Site, rows: dict[str, list]) -> None:
    windows = {w.id: WorkRow(site=site.id, id=w.id, name=w.name, unit=w.unit) for w in site.windows}
    staff = {s.id: WorkRow(site=site.id, id=s.id, name=s.name, unit=s.unit) for s in site.staff}
    devices = {
        d.id: DeviceRow(
            site=site.id,
            device=d.id,
            kind=d.kind.value,
            kind_label=DEVICE_KIND.get(d.kind.value, d.kind.value),
            window=d.window or "",
            online_hours=ONLINE_HOURS[d.expected_hours],
        )
        for d in site.devices
    }
    timing: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    row: WorkRow | DeviceRow
    table: dict[str, WorkRow] | None
    for _, window, staff_id, count, seconds, timed in rows["served"]:
        for kind, table, subject in (("window", windows, window), ("staff", staff, staff_id)):
            if subject is None:
                continue
            row = table.get(subject) or table.setdefault(subject, WorkRow(site=site.id, id=subject))
            row.served += count
            timing[(kind, subject)][0] += seconds or 0.0
            timing[(kind, subject)][1] += timed
    for (kind, subject), (seconds, count) in timing.items():
        table = windows if kind == "window" else staff
        table[subject].service_mean_min = seconds / count / 60.0 if count else None

    for _, kind, subject, category, seconds in rows["accounting"]:
        minutes = seconds / 60.0
        if kind == "device":
            row = devices.get(subject) or devices.setdefault(subject, DeviceRow(site=site.id, device=subject, kind=""))
            if category == "offline":
                row.offline_min += minutes
            elif category == "online":
                row.online_min += minutes
            elif category == "unknown":
                row.unknown_min += minutes
            continue
        table = windows if kind == "window" else staff if kind == "staff" else None
        if table is None:
            continue
        row = table.get(subject) or table.setdefault(subject, WorkRow(site=site.id, id=subject))
        if category in _CATEGORY_FIELD:
            name = _CATEGORY_FIELD[category]
            setattr(row, name, getattr(row, name) + minutes)
        elif category.startswith("paused:"):
            reason = category.partition(":")[2]
            row.paused_min += minutes
            if reason in PAUSE_REASON:
                name = f"paused_{reason}_min"
                setattr(row, name, getattr(row, name) + minutes)
    report.windows = list(windows.values())
    report.staff = list(staff.values())
    report.devices = list(devices.values())


def _ratings(conn, report: SiteReport, site: Site, span: tuple[float, float]) -> None:
    windows = {r.id: r for r in report.windows}
    staff = {r.id: r for r in report.staff}
    totals: dict[int, int] = {score: 0 for score in range(1, 6)}
    for window, staff_id, score, count in conn.execute(
        RATINGS_SQL, {"site": site.id, "start": span[0], "end": span[1]}
    ):
        totals[score] = totals.get(score, 0) + count
        for table, rows, subject in ((windows, report.windows, window), (staff, report.staff, staff_id)):
            if subject is None:
                continue
            row = table.get(subject)
            if row is None:
                row = table[subject] = WorkRow(site=site.id, id=subject)
                rows.append(row)
            if 1 <= score <= 5:
                setattr(row, f"rating_{score}", getattr(row, f"rating_{score}") + count)
            row.ratings += count
    for row in (*report.windows, *report.staff):
        row.satisfied_pct = satisfaction_pct({score: getattr(row, f"rating_{score}") for score in range(1, 6)})
    report.ratings = totals


# -- the accountability log and the follow-ups ----------------------------------------------------
def _alerts(conn, report: SiteReport, site: Site, span: tuple[float, float]) -> None:
    tz = site.tz
    windows = {w.id: w.name for w in site.windows}
    staff = {s.id: s.name for s in site.staff}
    local = lambda ts: None if ts is None else datetime.fromtimestamp(ts, tz)  # noqa: E731
    for row in conn.execute(ALERTS_SQL, {"site": site.id, "start": span[0], "end": span[1]}):
        a = dict(zip(ALERT_FIELDS, row))
        report.alerts.append(
            AlertRow(
                site=site.id,
                id=a["id"],
                kind=a["kind"],
                kind_label=ALERT_KIND.get(a["kind"], a["kind"]),
                severity=a["severity"] or "",
                subject=a["subject"] or "",
                window=a["window"] or "",
                window_name=windows.get(a["window"], a["window"] or ""),
                device=a["device"] or "",
                staff=a["staff"] or "",
                staff_name=staff.get(a["staff"], "") if a["staff"] else "",
                start=datetime.fromtimestamp(a["since"], tz),  # (never NULL: the query compares it)
                end=local(a["until"]),
                duration_min=None if a["until"] is None else (a["until"] - a["since"]) / 60.0,
                state=a["state"],
                state_label=ALERT_STATE.get(a["state"], a["state"]),
                acknowledged_at=local(a["acknowledged_at"]),
                acknowledged_by=a["acknowledged_by"] or "",
                note=a["note"] or "",
                overdue=bool(a["overdue"]),
            )
        )


def _bad_ratings(
    conn, report: SiteReport, site: Site, span: tuple[float, float], as_of: float, official: OfficialCalendar
) -> None:
    tz = site.tz
    rules = site.supervision
    calendar = WorkingCalendar.of_site(official, site.calendar)
    windows = {w.id: w.name for w in site.windows}
    staff = {s.id: s.name for s in site.staff}
    params = {"site": site.id, "start": span[0], "end": span[1]}
    follow_ups = {
        (subject, since): (acked, note, alert_id)
        for subject, since, acked, note, alert_id in conn.execute(FOLLOW_UP_SQL, params)
    }
    for window, staff_id, ticket, score, at in conn.execute(
        BAD_RATINGS_SQL, {**params, "max_score": rules.bad_rating_max_score}
    ):
        rated = datetime.fromtimestamp(at, tz)
        due = calendar.add_working_days(rated.date(), rules.bad_rating_follow_up_days)
        due_end = _midnight(due + timedelta(days=1), tz)  # the whole due day counts
        acked, note, alert_id = follow_ups.get((f"{window}:{ticket}", at), (None, None, ""))
        done = acked is not None and bool((note or "").strip())
        status = "done" if done else "overdue" if as_of >= due_end else "open"
        report.bad_ratings.append(
            BadRatingRow(
                site=site.id,
                rated_at=rated,
                ticket=ticket or "",
                window=window or "",
                window_name=windows.get(window, window or ""),
                staff=staff_id or "",
                staff_name=staff.get(staff_id, "") if staff_id else "",
                score=score,
                due=due,
                status=status,
                status_label=FOLLOW_UP[status],
                done_at=datetime.fromtimestamp(acked, tz) if done else None,
                done_late=done and acked >= due_end,
                note=note or "",
                alert=alert_id,
            )
        )


# -- 办件 ----------------------------------------------------------------------------------------
def _has_cases(conn: sqlite3.Connection) -> bool:
    """A store older than schema 4 (not yet opened by a newer engine) has no case tables."""
    found = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('cases', 'notices')")
    return found.fetchone()[0] == 2


def _cases(
    conn: sqlite3.Connection, report: SiteReport, site: Site, rows: dict[str, list], span: tuple[float, float], as_of
) -> None:
    names = {
        "service": {s.code: s.name for s in site.services},
        "window": {w.id: w.name for w in site.windows},
        "staff": {s.id: s.name for s in site.staff},
    }
    table: dict[tuple[str, str], CaseRow] = {}
    # (row key, "all" or "unresolved") -> each completed case's days from opening to completion
    days: dict[tuple[tuple[str, str], str], list[float]] = defaultdict(list)

    def targets(service: str | None, window: str | None, staff: str | None) -> list[tuple[str, str]]:
        keys = [("site", site.id)]
        keys += [(dim, v) for dim, v in (("service", service), ("window", window), ("staff", staff)) if v]
        for key in keys:
            if key not in table:
                dim, value = key
                name = site.name if dim == "site" else names[dim].get(value, "")
                table[key] = CaseRow(
                    site=site.id, dimension=dim, dimension_label=CASE_DIMENSION[dim], id=value, name=name
                )
        return keys

    targets(None, None, None)  # the site's row, even in a period without cases
    params = {"site": site.id, "start": span[0], "end": span[1]}
    if _has_cases(conn):
        for service, window, agent, kind, status, opened_at, due_at, closed_at in conn.execute(CASES_SQL, params):
            completed = status == "completed"
            for key in targets(service, window, agent):
                row = table[key]
                row.opened += 1
                row.completed += completed
                row.on_time += completed and closed_at <= due_at
                row.overdue += (as_of if closed_at is None else closed_at) > due_at
                row.still_open += status == "open"
                row.unresolved += kind == "unresolved"
                if completed:
                    days[(key, "all")].append((closed_at - opened_at) / 86400.0)
                    if kind == "unresolved":
                        row.unresolved_completed += 1
                        days[(key, "unresolved")].append((closed_at - opened_at) / 86400.0)
        for service, window, staff_id, breach in conn.execute(NOTICES_SQL, params):
            for key in targets(service, window, staff_id):
                table[key].notices += 1
                table[key].breaches += breach
    on_the_spot_services = {s.code for s in site.services if s.guide.item_type == "即办件"}
    for _, service, window, staff_id, done, count in rows["on_the_spot"]:
        if service in on_the_spot_services:
            for key in targets(service, window, staff_id):
                table[key].on_the_spot_visits += count
                table[key].on_the_spot += count if done else 0
    for (key, which), spans in days.items():
        setattr(table[key], "mean_days" if which == "all" else "unresolved_mean_days", sum(spans) / len(spans))
    for row in table.values():
        if row.on_the_spot_visits:
            row.on_the_spot_pct = 100.0 * row.on_the_spot / row.on_the_spot_visits
    order = {
        dim: {v: i for i, v in enumerate(ids)}
        for dim, ids in (
            ("site", [site.id]),
            ("service", [s.code for s in site.services]),
            ("window", [w.id for w in site.windows]),
            ("staff", [s.id for s in site.staff]),
        )
    }
    dims = list(CASE_DIMENSION)
    report.cases = sorted(
        table.values(), key=lambda r: (dims.index(r.dimension), order[r.dimension].get(r.id, math.inf), r.id)
    )
