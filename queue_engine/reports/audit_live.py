"""The audit's live figures: what an engine's store shows of one month, beside the declared facts.

``hallwatch audit --db STORE [--month YYYY-MM]`` adds, for each site, the month's figures as the
site report computes them (``compute.build_report``: no query of its own), each judged against
the standard (内放办〔2022〕9号) where the standard sets a figure, in the static audit's lines
(``AuditLine``: pass, fail, unknown, n/a, with the standard's own words):

- each window's 空岗 minutes (not opened, nobody at the seat, unverified; working time on
  working days only): any minute fails (二（一）3, 确保工作日窗口不空岗); a window the store
  accounts no minute of in the month is unknown;
- each supervision device's minutes offline in its expected hours: any minute fails, a camera's
  by the static ``cameras`` line's words (二（四）2), a 24-hour terminal's (offline at night too)
  by the ``selfservice_24h`` line's (二（三）2), each of the kinds of site that line asks it of;
  minutes the engine did not hear of the device (before its first report) leave it unknown;
- bad ratings: a follow-up overdue as of now fails (二（四）1, 确保问题不出中心);
- 办件: a case closed after its due day, or still open after it, fails (二（三）1, 限时办结); a
  second 一次性告知 in the same matter fails (二（一）4, 一次性告知制);
- ratings and the 满意率: the standard sets no figure, so the line is shown, not judged (n/a).

The default month is the last complete one at the site (its timezone's date today).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.figures import satisfaction_pct
from ..core.kinds import DeviceKind
from ..core.vocabulary import DEVICE_KIND, SITE_KIND, VACANCY
from .audit import (
    BOTH,
    FAIL,
    FOLLOW_UP_BASIS,
    NA,
    PASS,
    RULES,
    UNKNOWN,
    VACANCY_BASIS,
    AuditLine,
    Citation,
)
from .compute import build_report
from .model import CaseRow, DeviceRow, SiteReport, WorkRow, format_value

if TYPE_CHECKING:
    from ..config import Site
    from ..core.calendar import OfficialCalendar

RATING_BASIS = Citation("二（四）1", "落实政务服务“好差评”制度和基层站所评议工作")
ON_TIME_BASIS = Citation("二（三）1", "对不能当场办结、需要审核审批的，在承诺时间内办结")
NOTICE_BASIS = Citation("二（一）4", "严格落实首问负责制、一次性告知制和限时办结制等服务机制")
# The supervision devices (core.kinds) whose downtime a static line's standard words speak of.
DEVICE_CHECKS = {
    kind.value: next(r for r in RULES if r.check == check)
    for kind, check in ((DeviceKind.CAMERA, "cameras"), (DeviceKind.SELFSERVICE, "selfservice_24h"))
}


def last_month(today: date) -> str:
    """The last complete month before ``today``'s, as ``YYYY-MM``."""
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def _default_month(site: Site, now: float | None) -> str:
    today = datetime.now(site.tz).date() if now is None else datetime.fromtimestamp(now, site.tz).date()
    return last_month(today)


def _min(value: float) -> str:
    return format_value(value, "min")


def _judged(site: Site, asked_of: frozenset[str], status: str, detail: str) -> tuple[str, str]:
    """A verdict, or n/a (with the figure still shown) for a kind of site not asked."""
    if site.kind in asked_of:
        return status, detail
    return NA, f"{detail}（标准未对{SITE_KIND[site.kind]}作此要求）"


def _window(site: Site, row: WorkRow) -> AuditLine:
    accounted = row.staffed_min + row.vacant_min + row.closed_min + row.paused_min
    parts = "、".join(
        f"{VACANCY[category]} {_min(getattr(row, f'{category.value}_min'))}"
        for category in VACANCY
        if getattr(row, f"{category.value}_min")
    )
    if not accounted:
        status, detail = UNKNOWN, "本月没有这个窗口的在岗记录，无法核定"
    elif row.vacant_min:
        status, detail = FAIL, f"空岗 {_min(row.vacant_min)} 分钟（{parts}），在岗 {_min(row.staffed_min)} 分钟"
    else:
        status, detail = PASS, f"空岗 0.0 分钟，在岗 {_min(row.staffed_min)} 分钟"
    status, detail = _judged(site, BOTH, status, detail)
    item = f"工作日窗口不空岗·{row.name or row.id}"
    return AuditLine(site.id, f"vacancy:{row.id}", status, item, detail, VACANCY_BASIS)


def _device(site: Site, row: DeviceRow) -> AuditLine:
    heard = f"在线 {_min(row.online_min)} 分钟"
    if row.offline_min:
        status, detail = FAIL, f"离线 {_min(row.offline_min)} 分钟，{heard}（{row.online_hours}）"
    elif row.unknown_min:
        status, detail = UNKNOWN, f"{heard}，未上报 {_min(row.unknown_min)} 分钟，无法核定是否一直在线"
    elif not row.online_min:
        status, detail = UNKNOWN, "本月没有这台设备的在线记录，无法核定是否一直在线"
    else:
        status, detail = PASS, f"离线 0.0 分钟，{heard}（{row.online_hours}）"
    return _device_line(site, row.kind, row.device, row.window, status, detail)


def _device_line(site: Site, kind: str, device: str, window: str | None, status: str, detail: str) -> AuditLine:
    rule = DEVICE_CHECKS[kind]
    status, detail = _judged(site, rule.asked_of, status, detail)
    where = f"（{window}）" if window else ""
    item = f"{DEVICE_KIND.get(kind, kind)}正常运行·{device}{where}"
    return AuditLine(site.id, f"device:{device}", status, item, detail, rule.basis)


def _follow_ups(site: Site, report: SiteReport) -> AuditLine:
    counts = {s: sum(1 for b in report.bad_ratings if b.status == s) for s in ("done", "overdue", "open")}
    detail = (
        f"差评 {len(report.bad_ratings)} 条：已整改 {counts['done']} 条，"
        f"逾期未整改 {counts['overdue']} 条，待整改 {counts['open']} 条"
    )
    return _follow_up_line(site, FAIL if counts["overdue"] else PASS, detail)


def _follow_up_line(site: Site, status: str, detail: str) -> AuditLine:
    status, detail = _judged(site, BOTH, status, detail)
    return AuditLine(site.id, "follow_ups", status, "差评按期整改", detail, FOLLOW_UP_BASIS)


def _ratings(site: Site, ratings: dict[int, int], bad: int) -> AuditLine:
    count = sum(ratings.values())
    if count:
        detail = f"评价 {count} 条，满意率 {format_value(satisfaction_pct(ratings), 'pct')}%，差评 {bad} 条"
    else:
        detail = "本月没有评价"
    detail += "；标准未定满意率指标，只列不判"
    return AuditLine(site.id, "ratings", NA, "好差评与满意率", detail, RATING_BASIS)


def _cases(site: Site, row: CaseRow) -> list[AuditLine]:
    cases = (
        f"办件 {row.opened} 件：按时办结 {row.on_time} 件，超期 {row.overdue} 件，在办 {row.still_open} 件；"
        f"其中办不成事 {row.unresolved} 件（已办结 {row.unresolved_completed} 件）"
    )
    notices = f"一次性告知 {row.notices} 次，同一事项重复告知 {row.breaches} 次"
    lines = []
    for check, item, failing, detail, basis in (
        ("cases_on_time", "限时办结", row.overdue, cases, ON_TIME_BASIS),
        ("notices", "一次性告知", row.breaches, notices, NOTICE_BASIS),
    ):
        status, detail = _judged(site, BOTH, FAIL if failing else PASS, detail)
        lines.append(AuditLine(site.id, check, status, item, detail, basis))
    return lines


def live_lines(site: Site, report: SiteReport) -> list[AuditLine]:
    """The live lines of one site from its report of the month."""
    supervision = [d for d in report.devices if d.kind in DEVICE_CHECKS]
    site_cases = next(row for row in report.cases if row.dimension == "site")
    return [
        *(_window(site, row) for row in report.windows),
        *(_device(site, row) for row in supervision),
        _follow_ups(site, report),
        *_cases(site, site_cases),
        _ratings(site, report.ratings, len(report.bad_ratings)),
    ]


def live_audit(
    site: Site,
    db: str | Path | sqlite3.Connection,
    month: str | None = None,
    *,
    now: float | None = None,
    official: OfficialCalendar | None = None,
) -> tuple[str, list[AuditLine]]:
    """The month (given, or the last complete one at the site) and its live lines, read from the
    engine's store ``db`` as of ``now`` (default: the current time). Raises ``ReportError``."""
    from .county import month_span

    month = month or _default_month(site, now)
    start, end = month_span(month)
    report = build_report([site], db, [site.id], start, end, now=now, official=official)
    return month, live_lines(site, report.sites[0])


# -- from the county's day figures (hallwatch audit --county-db) --------------------------------
REPORTED = "（据各日上报县中心的数据）"
AT_THE_SOURCE = "；各日数据日终上报，此后是否逾期以站点数据库为准（hallwatch audit --db）"


def county_lines(site: Site, days: list[dict]) -> list[AuditLine]:
    """The live lines of one site from the day figures the county service keeps of the month
    (``WireDayFigures``, as ``county.store.read_figures`` gives them). What a day's figures
    say as of its end (a follow-up or a case not overdue yet) cannot pass a line: it is unknown
    unless the day figures already show it overdue."""
    windows = {w.id: WorkRow(site=site.id, id=w.id, name=w.name) for w in site.windows}
    offline: dict[str, float] = {}
    ratings: dict[int, int] = {}
    cases: CaseRow | None = None
    bad = overdue = 0
    for day in days:
        for w in day["windows"]:
            row = windows.setdefault(w["id"], WorkRow(site=site.id, id=w["id"], name=w["name"]))
            for name in ("staffed_min", "not_opened_min", "unstaffed_min", "unverified_min"):
                setattr(row, name, getattr(row, name) + w[name])
        for d in day["devices"]:
            offline[d["device"]] = offline.get(d["device"], 0.0) + d["offline_min"]
        for score, count in day["ratings"].items():
            ratings[int(score)] = ratings.get(int(score), 0) + count
        bad, overdue = bad + day["bad_ratings"], overdue + day["follow_ups_overdue"]
        if day.get("cases"):
            cases = cases or CaseRow(site=site.id, dimension="site", dimension_label="")
            for name, count in day["cases"].items():
                setattr(cases, name, getattr(cases, name) + count)
    lines = [_window(site, row) for row in windows.values()]
    for device in site.devices:
        if device.kind.value not in DEVICE_CHECKS:
            continue
        minutes = offline.get(device.id, 0.0)
        if not days:
            status, detail = UNKNOWN, "县中心没有这个站点本月的日数据，无法核定"
        else:
            status, detail = (FAIL if minutes else PASS), f"离线 {_min(minutes)} 分钟，{len(days)} 天{REPORTED}"
        lines.append(_device_line(site, device.kind.value, device.id, device.window, status, detail))
    status = FAIL if overdue else PASS if not bad else UNKNOWN
    detail = f"差评 {bad} 条，逾期未整改 {overdue} 条{REPORTED}" + (AT_THE_SOURCE if status == UNKNOWN else "")
    lines.append(_follow_up_line(site, status, detail))
    if cases is None:
        for check, item, basis in (
            ("cases_on_time", "限时办结", ON_TIME_BASIS),
            ("notices", "一次性告知", NOTICE_BASIS),
        ):
            lines.append(AuditLine(site.id, check, UNKNOWN, item, "站点引擎没有上报办件数据，无法核定", basis))
    else:
        on_time, notices = _cases(site, cases)
        if on_time.status == PASS and cases.still_open:
            on_time = replace(on_time, status=UNKNOWN, detail=on_time.detail + REPORTED + AT_THE_SOURCE)
        lines += [on_time, notices]
    lines.append(_ratings(site, ratings, bad))
    return lines


def county_live_audit(
    site: Site, figures: list[dict], month: str | None = None, *, now: float | None = None
) -> tuple[str, list[AuditLine]]:
    """``live_audit``, from the county's day figures of every hall (``read_figures``)."""
    from .county import month_span

    month = month or _default_month(site, now)
    start, end = (d.isoformat() for d in month_span(month))
    return month, county_lines(site, [d for d in figures if d["site"] == site.id and start <= d["day"] <= end])
