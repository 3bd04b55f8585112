"""A site's figures of one local day (``wire.WireDayFigures``), read from the engine's store
by the site report's own queries (reports.compute), so that the county's report does not need
the townships' databases: published retained on ``{root}/{site}/figures/day`` when the day is
over at the site, and answered to the county service's ``control/figures`` requests
(control.py). Blocking: call from a thread."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from . import wire
from .reports.compute import build_report, open_store
from .reports.model import CaseRow, FlowRow, WorkRow
from .shells.schema import read_store_id

if TYPE_CHECKING:
    from .config import Site
    from .core.calendar import OfficialCalendar


def _subject(row: WorkRow) -> wire.WireSubjectDay:
    return wire.WireSubjectDay(
        id=row.id,
        name=row.name,
        served=row.served,
        staffed_min=round(row.staffed_min, 1),
        not_opened_min=round(row.not_opened_min, 1),
        unstaffed_min=round(row.unstaffed_min, 1),
        unverified_min=round(row.unverified_min, 1),
        ratings=row.ratings,
        satisfied_pct=row.satisfied_pct,
    )


def _cases(row: CaseRow) -> wire.WireCasesDay:
    return wire.WireCasesDay(**{name: getattr(row, name) for name in wire.WireCasesDay.__struct_fields__})


def day_figures(
    db_path: str | Path, site: Site, day: date, now: float, *, final: bool, official: OfficialCalendar | None = None
) -> dict:
    conn = open_store(db_path)
    try:
        report = build_report([site], conn, [site.id], day, day, now=now, official=official).sites[0]
        store_id = read_store_id(conn)
    finally:
        conn.close()
    total = report.total or FlowRow(site.id, day.isoformat())
    vacancy = {
        "not_opened": round(sum(w.not_opened_min for w in report.windows), 1),
        "unstaffed": round(sum(w.unstaffed_min for w in report.windows), 1),
        "unverified": round(sum(w.unverified_min for w in report.windows), 1),
    }
    offline = [d for d in report.devices if d.offline_min > 0]
    figures = wire.WireDayFigures(
        v=wire.PROTOCOL_VERSION,
        site=site.id,
        day=day.isoformat(),
        final=final,
        as_of=wire.stamp(now, site.tz),
        issued=total.issued,
        served=total.served,
        no_shows=total.no_shows,
        expired=total.expired,
        transferred=total.transferred,
        wait_mean_min=total.wait_mean_min,
        wait_p90_min=total.wait_p90_min,
        wait_max_min=total.wait_max_min,
        within_target_pct=total.within_target_pct,
        vacancy_min=vacancy,
        windows=[_subject(w) for w in report.windows],
        staff=[_subject(s) for s in report.staff],
        device_offline_min=round(sum(d.offline_min for d in offline), 1),
        devices=[
            wire.WireDeviceDay(device=d.device, kind=d.kind, window=d.window, offline_min=round(d.offline_min, 1))
            for d in offline
        ],
        ratings={str(score): report.ratings.get(score, 0) for score in range(1, 6)},
        satisfied_pct=report.satisfied_pct,
        bad_ratings=len(report.bad_ratings),
        follow_ups_overdue=sum(1 for b in report.bad_ratings if b.status == "overdue"),
        alerts=dict(Counter(a.kind for a in report.alerts)),
        cases=_cases(next(row for row in report.cases if row.dimension == "site")),
        store_id=store_id,
    )
    return msgspec.to_builtins(figures)
