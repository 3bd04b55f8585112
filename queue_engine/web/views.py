"""What the web pages and the JSON API show, read from the core's current state.

Plain functions from the engine's halls to JSON-ready dicts; they read, never change, and
reuse the wire payload builders so that the web and MQTT say the same thing. They run on the
event loop's thread, between two events, like the metrics collector.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import wire
from ..core import vocabulary
from ..core.figures import SATISFIED_SCORES, satisfaction_pct, vacancy_seconds
from ..core.model import VACANCY, Staffing, TicketStatus
from ..shells.schema import ALERT_COLUMNS, alert_from_row
from ..shells.storefile import open_read_only

if TYPE_CHECKING:
    from ..config import Service
    from ..core.alerts import Alert
    from ..core.hall import Hall
    from ..core.model import Ticket

TICKET_STATUS_TEXT = {status.value: label for status, label in vocabulary.TICKET_STATUS.items()}
CHART_SLOT_S = 15 * 60  # the manager's chart: one point per quarter of an hour


def iso(ts: float | None, hall: Hall) -> str | None:
    return wire.iso(ts, hall.site.tz)


def site_info(hall: Hall, now: float) -> dict:
    site = hall.site
    return {
        "id": site.id,
        "name": site.name,
        "kind": site.kind,
        "timezone": site.timezone,
        "hours": list(site.hours.periods),
        "open": hall.supervisor.working(now),
        "now": iso(now, hall),
        "windows": [{"id": w.id, "name": w.name, "unit": w.unit, "role": w.role.value} for w in site.windows],
    }


def service_entry(hall: Hall, service: Service) -> dict:
    windows = [w.name for w in hall.site.windows if service.code in hall.site.window_services(w)]
    guide = service.guide
    return {
        "code": service.code,
        "name": service.name,
        "prefix": service.prefix,
        "category": service.category,
        "theme": service.theme,
        "includes": list(service.includes),
        "expected_service_min": service.expected_service_min,
        "target_wait_min": service.target_wait_min,
        "windows": windows,
        "guide": {
            "basis": guide.basis,
            "conditions": guide.conditions,
            "materials": list(guide.materials),
            "time_limit": guide.time_limit,
            "fee": guide.fee,
            "item_type": guide.item_type,
        },
    }


def catalogue(hall: Hall) -> list[dict]:
    return [service_entry(hall, s) for s in hall.site.services]


def queue_state(hall: Hall, now: float) -> dict:
    return wire.queue_payload(hall.queue_view(now), now, hall.site.tz)


def window_state(hall: Hall, window_id: str, now: float) -> dict:
    window = hall.windows[window_id]
    return wire.window_payload(
        window,
        hall.site.tz,
        name=hall.window_name(window_id),
        staff_name=hall.staff_name(window.staff),
        staffing=hall.staffing(window_id, now).value,
    )


def recent_calls(hall: Hall, limit: int = 8) -> list[dict]:
    """The last tickets called to a window today, newest first (a recall is not a new call)."""
    called = sorted(
        (
            (t.called_at, t.window, t.no)
            for t in hall.tickets.values()
            if t.called_at is not None and t.window is not None
        ),
        key=lambda c: c[0],
        reverse=True,
    )[:limit]
    return [
        {"ticket": no, "window": window, "window_name": hall.window_name(window), "at": iso(at, hall), "recall": False}
        for at, window, no in called
    ]


def board(hall: Hall, now: float) -> dict:
    return {
        "site": {"id": hall.id, "name": hall.site.name, "timezone": hall.site.timezone},
        "now": iso(now, hall),
        "now_ms": round(now * 1000),
        "calls": recent_calls(hall),
        "queue": queue_state(hall, now),
    }


def position(hall: Hall, number: str) -> dict | None:
    found = hall.position(number)
    if found is None:
        return None
    t = found.ticket
    return {
        "no": t.no,
        "site": hall.id,
        "service": t.service,
        "service_name": hall.service_config(t.service).name,
        "status": t.status.value,
        "status_text": TICKET_STATUS_TEXT[t.status.value],
        "priority": t.is_priority,
        "issued_at": iso(t.issued_at, hall),
        "ahead": found.ahead,
        "eta_min": found.eta_min,
        "window": t.window if t.status is not TicketStatus.WAITING else None,
        "window_name": hall.window_name(t.window) if t.window and t.status is not TicketStatus.WAITING else None,
        "called_at": iso(t.called_at, hall),
    }


def slip(hall: Hall, number: str) -> dict | None:
    """What the phone page of a slip shows (``/t/{site}/{token}``): the ticket's position, the
    window and staff member who served it, whether it may still be rated, and the complaint
    telephones. Never the phone number."""
    found = position(hall, number)
    if found is None:
        return None
    t = hall.tickets[number]
    served = t.status is TicketStatus.DONE
    return {
        **found,
        "site_name": hall.site.name,
        "staff_name": hall.staff_name(t.staff) if t.window and t.status is not TicketStatus.WAITING else None,
        "finished_at": iso(t.finished_at, hall) if served else None,
        "rating": t.rating,
        "ratable": served and t.rating is None and t.window is not None,
        "complaints": hall.site.complaints.labelled(),
        # reserved: the code to type at a kiosk, and until when (unchecked then: a no-show)
        "check_in_code": t.check_in_code if t.status is TicketStatus.RESERVED else None,
        "reserved_until": iso(t.reservation_expires_at, hall) if t.status is TicketStatus.RESERVED else None,
        "priority_claim": t.priority_claim.value if t.priority_claim else None,
        "priority_check": t.priority_check,
    }


# A window's poster rates the visit just finished there: one that ended longer ago than this
# (engine time) is no longer "just finished", and the page asks for the slip's number instead.
JUST_FINISHED_S = 30 * 60


def just_finished(hall: Hall, window_id: str, now: float) -> Ticket | None:
    """The visit a window's poster rates without a number: the window's last, finished within
    JUST_FINISHED_S and not rated yet."""
    number = hall.windows[window_id].last_served_ticket
    ticket = hall.tickets.get(number) if number else None
    if ticket is None or ticket.rating is not None or ticket.finished_at is None:
        return None
    return ticket if now - ticket.finished_at <= JUST_FINISHED_S else None


def window_visit(hall: Hall, window_id: str, now: float) -> dict:
    """What a window's poster page shows: the window, who is on duty at it, and the visit it
    would rate without a number (null: the page asks for the slip's number)."""
    config, state = hall.window_config(window_id), hall.windows[window_id]
    visit = just_finished(hall, window_id, now)
    return {
        "site": hall.id,
        "site_name": hall.site.name,
        "window": window_id,
        "window_name": config.name,
        "unit": config.unit,
        "staff_name": hall.staff_name(state.staff),
        "visit": None
        if visit is None
        else {
            "ticket": visit.no,
            "service_name": hall.service_config(visit.service).name,
            "staff_name": hall.staff_name(visit.staff),
            "finished_at": iso(visit.finished_at, hall),
        },
        "complaints": hall.site.complaints.labelled(),
    }


def alert(hall: Hall, a: Alert) -> dict:
    body = wire.alert_payload(a, hall.site.tz, staff_name=hall.staff_name(a.staff))
    body["site_name"] = hall.site.name
    body["window_name"] = hall.window_name(a.window) if a.window in hall.windows else None
    body["subject_name"] = subject_name(hall, a)
    # A follow-up's last day (``due`` is its end, the midnight after it), as the report has it.
    body["due_day"] = None if a.due is None else datetime.fromtimestamp(a.due - 1, hall.site.tz).date().isoformat()
    return body


def subject_name(hall: Hall, a: Alert) -> str:
    """What the alert is about, in words: a window's, a service's or a device's name."""
    if a.window in hall.windows:
        name = hall.window_name(a.window)
        return f"{name}（{a.device}）" if a.device else name
    code = a.detail.get("service") if isinstance(a.detail, dict) else None
    service = hall.site.service(code) if code else None
    if service is not None:
        return service.name
    return a.device or a.subject


def open_alerts(hall: Hall) -> list[dict]:
    return [alert(hall, a) for a in sorted(hall.supervisor.alerts.values(), key=lambda a: a.since, reverse=True)]


def resolved_alerts(db_path: str | Path, halls: Iterable[Hall], since: float, limit: int = 200) -> list[dict]:
    """Alerts resolved since ``since``, from the store (read-only; call it in a thread)."""
    by_id = {h.id: h for h in halls}
    path = Path(db_path)
    if not path.exists() or not by_id:
        return []
    marks = ",".join("?" * len(by_id))
    conn = open_read_only(path, ["alerts"])  # StoreRefused: not a store (the web answers 503)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE state = 'resolved' AND until >= ? "
            f"AND site IN ({marks}) ORDER BY until DESC LIMIT ?",
            (since, *by_id, limit),
        ).fetchall()
    finally:
        conn.close()
    return [alert(by_id[row["site"]], alert_from_row(dict(row))) for row in rows]


def day_start(hall: Hall, now: float) -> float:
    local = datetime.fromtimestamp(now, hall.site.tz)
    return datetime.combine(local.date(), datetime.min.time(), hall.site.tz).timestamp()


# -- today's figures ---------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def figures(hall: Hall, now: float) -> dict:
    tickets = list(hall.tickets.values())
    by_status = {s.value: 0 for s in TicketStatus}
    outcomes: dict[str, int] = {}
    waits: list[float] = []
    scores = {str(s): 0 for s in range(1, 6)}
    for t in tickets:
        by_status[t.status.value] += 1
        if t.first_called_at is not None:
            waits.append(max(0.0, t.first_called_at - t.issued_at))
        if t.outcome is not None:
            outcomes[t.outcome.value] = outcomes.get(t.outcome.value, 0) + 1
        if t.rating is not None:
            scores[str(t.rating)] += 1
    rated = sum(scores.values())
    average = sum(int(s) * n for s, n in scores.items()) / rated if rated else None
    satisfied = satisfaction_pct({int(score): n for score, n in scores.items()})
    p90 = _percentile(waits, 0.9)
    return {
        "day": hall.day,
        "issued": len(tickets),
        "served": by_status["done"],
        "no_shows": by_status["no_show"],
        "waiting": by_status["waiting"],
        "in_service": by_status["called"] + by_status["serving"],
        "phone_tickets": sum(1 for t in tickets if t.phone),
        "outcomes": outcomes,
        "wait_avg_min": round(sum(waits) / len(waits) / 60, 1) if waits else None,
        "wait_p90_min": round(p90 / 60, 1) if p90 is not None else None,
        "ratings": {
            "count": rated,
            "average": round(average, 2) if average is not None else None,
            "scores": scores,
            "bad": sum(n for score, n in scores.items() if int(score) not in SATISFIED_SCORES),
            "satisfied_pct": round(satisfied, 1) if satisfied is not None else None,
        },
    }


def day_series(hall: Hall, now: float, slot_s: float = CHART_SLOT_S) -> list[dict]:
    """Across the day so far, per slot: tickets waiting at its end, and the average wait of
    the tickets first called within it. Computed from today's tickets, so it survives a
    restart and needs no sampling."""
    periods = hall.supervisor.periods
    tickets = list(hall.tickets.values())
    if periods:
        start = periods[0][0] - hall.site.hours.issue_before_open_min * 60
    elif tickets:
        start = min(t.issued_at for t in tickets)
    else:
        return []
    if tickets:
        start = min(start, min(t.issued_at for t in tickets))
    start = math.floor(start / slot_s) * slot_s
    end = min(now, day_start(hall, now) + 86400)
    points: list[dict] = []
    edge = start
    while edge < end and len(points) < 24 * 3600 // slot_s + 1:
        slot_end = min(edge + slot_s, end)
        waiting = sum(
            1
            for t in tickets
            if t.issued_at <= slot_end
            and (t.first_called_at is None or t.first_called_at > slot_end)
            and t.status is not TicketStatus.EXPIRED
        )
        waits = [
            t.first_called_at - t.issued_at
            for t in tickets
            if t.first_called_at is not None and edge <= t.first_called_at < slot_end
        ]
        points.append(
            {
                "at": iso(slot_end, hall),
                "waiting": waiting,
                "wait_avg_min": round(sum(waits) / len(waits) / 60, 1) if waits else None,
                "called": len(waits),
            }
        )
        edge += slot_s
    return points


# -- supervision ---------------------------------------------------------------------------------
def vacancy(hall: Hall, now: float) -> dict[tuple[str, str], dict[str, float]]:
    """Today's 空岗 seconds per category (``core.figures``) of each ("window"|"staff", id)
    that had any, up to now."""
    rows = {}
    for (kind, subject), categories in hall.supervisor.day_totals(now).items():
        if kind in ("window", "staff"):
            seconds = vacancy_seconds(categories)
            if sum(seconds.values()) > 0:
                rows[(kind, subject)] = seconds
    return rows


def vacancy_minutes(seconds: dict[str, float] | None) -> dict[str, float]:
    """Minutes per 空岗 category and their ``total``."""
    seconds = seconds or {category.value: 0.0 for category in VACANCY}
    return {**{k: round(v / 60, 1) for k, v in seconds.items()}, "total": round(sum(seconds.values()) / 60, 1)}


def windows(hall: Hall, now: float) -> list[dict]:
    """``camera``: whether a camera watches the window (without one its staffing is never
    verified, and it never raises window_unstaffed)."""
    vacant = vacancy(hall, now)
    unwatched = {w.id for w in hall.site.unwatched_windows()}
    rows = []
    for cfg in hall.site.windows:
        body = window_state(hall, cfg.id, now)
        body["unit"] = cfg.unit
        body["camera"] = cfg.id not in unwatched
        body["vacant_min"] = vacancy_minutes(vacant.get(("window", cfg.id)))
        rows.append(body)
    return rows


def devices(hall: Hall) -> list[dict]:
    return [
        {
            "site": hall.id,
            "site_name": hall.site.name,
            "device": d.id,
            "kind": d.kind,
            "window": d.window,
            "window_name": hall.window_name(d.window) if d.window in hall.windows else None,
            "online": d.online,
            "reason": d.reason,
            "since": iso(d.offline_since, hall),
            "tamper": d.tamper,
            "video_ok": d.video_ok,
        }
        for d in hall.supervisor.devices.values()
    ]


def offline_devices(hall: Hall) -> list[dict]:
    return [d for d in devices(hall) if d["online"] is False or d["tamper"] or not d["video_ok"]]


def window_counts(hall: Hall, now: float) -> dict[str, int]:
    """How many windows are in each staffing state (``core.model.Staffing``)."""
    counts = {state.value: 0 for state in Staffing}
    for window_id in hall.windows:
        counts[hall.staffing(window_id, now).value] += 1
    return counts


def ranking(halls: Iterable[Hall], now: float, limit: int = 20) -> dict[str, list[dict]]:
    """Windows and staff by 空岗 minutes today (all three categories), longest first; those
    with none left out."""
    window_rows, staff_rows = [], []
    for hall in halls:
        for (kind, subject), seconds in vacancy(hall, now).items():
            total = sum(seconds.values())
            row = {
                "site": hall.id,
                "site_name": hall.site.name,
                "minutes": round(total / 60, 1),
                "seconds": round(total, 1),
                "vacant_min": vacancy_minutes(seconds),
            }
            if kind == "window":
                window = hall.windows.get(subject)
                row.update(
                    window=subject,
                    window_name=hall.window_name(subject) if window else subject,
                    staff=window.staff if window else None,
                    staff_name=hall.staff_name(window.staff) if window else None,
                )
                window_rows.append(row)
            else:
                row.update(staff=subject, staff_name=hall.staff_name(subject) or subject)
                staff_rows.append(row)
    key = lambda r: -r["seconds"]  # noqa: E731
    return {"windows": sorted(window_rows, key=key)[:limit], "staff": sorted(staff_rows, key=key)[:limit]}


def site_overview(hall: Hall, now: float) -> dict:
    queue = queue_state(hall, now)
    alerts = list(hall.supervisor.alerts.values())
    return {
        "id": hall.id,
        "name": hall.site.name,
        "kind": hall.site.kind,
        "open": hall.supervisor.working(now),
        "now": iso(now, hall),
        "waiting": queue["waiting"],
        "windows": window_counts(hall, now),
        "alerts": {
            "firing": sum(1 for a in alerts if a.state.value == "firing"),
            "acknowledged": sum(1 for a in alerts if a.state.value == "acknowledged"),
            "critical": sum(1 for a in alerts if a.severity == "critical"),
        },
        "devices_offline": sum(1 for d in hall.supervisor.devices.values() if d.online is False),
        "windows_without_camera": [w.name for w in hall.site.unwatched_windows()],
    }


def manager_summary(hall: Hall, now: float) -> dict:
    return {
        "site": site_info(hall, now),
        "now_ms": round(now * 1000),
        "queue": queue_state(hall, now),
        "windows": windows(hall, now),
        "alerts": open_alerts(hall),
        "figures": figures(hall, now),
        "series": day_series(hall, now),
        "calls": recent_calls(hall, 5),
        "devices_offline": offline_devices(hall),
    }


def since_midnight(halls: Iterable[Hall], now: float) -> float:
    return min((day_start(h, now) for h in halls), default=now - 86400)
