"""The county 考核 report: every hall of the county ranked over a month, from the day figures the
county service keeps (``county.store``: each hall's ``WireDayFigures`` per (site, day)), with the
standard's requirements as thresholds and a 整改 list.

The standard (内放办〔2022〕9号, docs/standard/) sets three things the day figures can show:
windows are never empty on working days (二（一）3), the supervision cameras are kept running
(二（四）2, the audit's own citation) and complaints do not stay unanswered (二（四）1: a bad
rating's follow-up overdue). It sets no figure for waits or the 满意率: those are ranked, not
judged. Each check is asked of the kinds of site the audit asks it of (a county centre: none).

A failing check is one 整改 line (三（三）: 予以限期整改). Its deadline: the ``RECTIFY_WORKING_DAYS``-th
working day after the month, by the hall's working calendar. Its state: ``done`` (已整改) when
the hall's figures of its last ``PROOF_DAYS`` working days in (month end, deadline] are all in
and the check passes on each; else ``open`` (待整改) until the deadline, ``overdue`` (逾期未整改)
after it.

Ranking: fewer failing lines first, then fewer 空岗 minutes per window-day, a higher 满意率
(none: last), fewer device offline minutes, the site id. A hall the county has no figures of
for the month is ranked after every hall it has.
"""

from __future__ import annotations

import calendar as month_calendar
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.calendar import OfficialCalendar, WorkingCalendar
from ..core.kinds import DeviceKind
from ..core.vocabulary import FOLLOW_UP, SITE_KIND
from ..files import PRIVATE
from .audit import BOTH, CAMERAS_BASIS, FOLLOW_UP_BASIS, RULES, VACANCY_BASIS, Citation
from .charts import BLUE, GREEN, GREY, ORANGE, RED, Series, bar_chart, hbar_chart
from .csv_out import write_tables
from .html import CSS, NUMERIC
from .model import SATISFIED_NOTE, Column, Rated, TableSpec, format_value

if TYPE_CHECKING:
    from ..config import Site

RECTIFY_WORKING_DAYS = 10
PROOF_DAYS = 5
DONE, OPEN, OVERDUE = "done", "open", "overdue"


# -- a hall's figures over some days ------------------------------------------------------------
@dataclass(slots=True)
class HallRow(Rated):
    """One hall over the month: the ranking table's row."""

    site: str
    name: str
    kind: str  # the label
    rank: int = 0
    days: int = 0  # days with figures
    window_days: int = 0  # windows' days with time they had to be staffed
    not_opened_min: float = 0.0
    unstaffed_min: float = 0.0
    unverified_min: float = 0.0
    device_offline_min: float = 0.0
    camera_offline_min: float = 0.0
    issued: int = 0
    served: int = 0
    no_shows: int = 0
    wait_mean_min: float | None = None  # the days' means weighted by their tickets issued
    wait_p90_max_min: float | None = None  # the worst day's 90th percentile
    wait_max_min: float | None = None
    ratings: dict[int, int] = field(default_factory=dict)
    bad_ratings: int = 0
    follow_ups_overdue: int = 0
    # 办件 opened in the month and, as of each day's figures, overdue; None: no day's figures
    # carry them (an engine that predates them)
    cases_opened: int | None = None
    cases_overdue: int | None = None
    unresolved_cases: int | None = None  # 办不成事 兜底 cases opened
    notice_breaches: int | None = None  # a second 一次性告知 in the same matter
    failing: int = 0  # 整改 lines

    @property
    def vacant_min(self) -> float:
        """空岗, all three categories (as the site report counts it)."""
        return self.not_opened_min + self.unstaffed_min + self.unverified_min

    @property
    def vacant_per_window_day(self) -> float | None:
        return self.vacant_min / self.window_days if self.window_days else None


def _max(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


_CASE_FIGURES = (
    ("cases_opened", "opened"),
    ("cases_overdue", "overdue"),
    ("unresolved_cases", "unresolved"),
    ("notice_breaches", "breaches"),
)


def summarize(site: Site, days: list[dict]) -> HallRow:
    """A hall's row from its figures of ``days`` (``WireDayFigures`` as dicts)."""
    row = HallRow(site.id, site.name, SITE_KIND.get(site.kind, site.kind), days=len(days))
    weighted, weight = 0.0, 0
    for day in days:
        vacancy = day["vacancy_min"]
        row.not_opened_min += vacancy.get("not_opened", 0.0)
        row.unstaffed_min += vacancy.get("unstaffed", 0.0)
        row.unverified_min += vacancy.get("unverified", 0.0)
        row.window_days += sum(
            1
            for w in day["windows"]
            if w["staffed_min"] + w["not_opened_min"] + w["unstaffed_min"] + w["unverified_min"] > 0
        )
        row.device_offline_min += day["device_offline_min"]
        row.camera_offline_min += sum(d["offline_min"] for d in day["devices"] if d["kind"] == DeviceKind.CAMERA.value)
        row.issued += day["issued"]
        row.served += day["served"]
        row.no_shows += day["no_shows"]
        if day["wait_mean_min"] is not None and day["issued"]:
            weighted += day["wait_mean_min"] * day["issued"]
            weight += day["issued"]
        for score, count in day["ratings"].items():
            row.ratings[int(score)] = row.ratings.get(int(score), 0) + count
        row.bad_ratings += day["bad_ratings"]
        row.follow_ups_overdue += day["follow_ups_overdue"]
        cases = day.get("cases")
        if cases:
            for name, key in _CASE_FIGURES:
                setattr(row, name, (getattr(row, name) or 0) + cases[key])
    row.wait_mean_min = weighted / weight if weight else None
    row.wait_p90_max_min = _max([d["wait_p90_min"] for d in days])
    row.wait_max_min = _max([d["wait_max_min"] for d in days])
    return row


# -- the checks ---------------------------------------------------------------------------------
Verdict = tuple[bool, str]  # passes, what the figures show against what is required


def _vacancy(row: HallRow) -> Verdict:
    per_day = format_value(row.vacant_per_window_day, "min") or "0.0"
    return row.vacant_min == 0, (
        f"空岗 {row.vacant_min:.1f} 分钟（{row.window_days} 个窗口日，每窗口日 {per_day} 分钟），要求工作日窗口不空岗"
    )


def _cameras(row: HallRow) -> Verdict:
    return row.camera_offline_min == 0, f"摄像头离线 {row.camera_offline_min:.1f} 分钟，要求电子监察系统正常运行"


def _follow_ups(row: HallRow) -> Verdict:
    return row.follow_ups_overdue == 0, f"差评逾期未整改 {row.follow_ups_overdue} 条（差评 {row.bad_ratings} 条）"


@dataclass(frozen=True, slots=True)
class Check:
    check: str
    item: str
    asked_of: frozenset[str]
    basis: Citation
    judge: Callable[[HallRow], Verdict]


_AUDIT_CAMERAS = next(rule for rule in RULES if rule.check == "cameras")
CHECKS = (
    Check("vacancy", "工作日窗口不空岗", BOTH, VACANCY_BASIS, _vacancy),
    Check("cameras", "电子监察摄像头正常运行", _AUDIT_CAMERAS.asked_of, CAMERAS_BASIS, _cameras),
    Check("follow_ups", "差评按期整改", BOTH, FOLLOW_UP_BASIS, _follow_ups),
)
RECTIFY_BASIS = Citation("三（三）", "对未达到实时进度、工作标准不高的予以限期整改")


@dataclass(slots=True)
class RectifyRow:
    """One failing line of the 整改 list."""

    site: str
    name: str
    check: str
    item: str
    detail: str
    deadline: date
    state: str  # done, open, overdue
    basis: str

    @property
    def state_label(self) -> str:
        return FOLLOW_UP[self.state]

    @property
    def overdue(self) -> bool:
        return self.state == OVERDUE


@dataclass(slots=True)
class CountyReport:
    month: str  # YYYY-MM
    start: date
    end: date
    generated_at: datetime
    halls: list[HallRow]
    rectify: list[RectifyRow]

    def rows(self, table: str) -> list:
        return self.halls if table == "ranking" else self.rectify


def month_span(month: str) -> tuple[date, date]:
    """The first and last day of ``YYYY-MM`` (ValueError if it is not one)."""
    first = datetime.strptime(month, "%Y-%m").date()
    return first, first.replace(day=month_calendar.monthrange(first.year, first.month)[1])


def _state(site: Site, check: Check, after: list[dict], end: date, deadline: date, today: date, cal) -> str:
    window = [d for d in after if end < date.fromisoformat(d["day"]) <= deadline]
    proof = [d for d in window if cal.is_working_day(date.fromisoformat(d["day"]))][-PROOF_DAYS:]
    if len(proof) == PROOF_DAYS and all(check.judge(summarize(site, [d]))[0] for d in proof):
        return DONE
    return OVERDUE if today > deadline else OPEN


def build_county_report(
    sites: list[Site],
    figures: list[dict],
    month: str,
    *,
    now: float | None = None,
    official: OfficialCalendar | None = None,
) -> CountyReport:
    """The month's report from every day figures the county has (``CountyStore.figures``,
    or ``read_figures``): those of the month rank the halls, those after it tell whether
    each failing line has been put right."""
    start, end = month_span(month)
    if official is None:
        from ..calendar import official_calendar

        official = official_calendar()
    now = time.time() if now is None else now
    generated = datetime.fromtimestamp(now).astimezone()
    by_site: dict[str, list[dict]] = {}
    for day in sorted(figures, key=lambda d: d["day"]):
        by_site.setdefault(day["site"], []).append(day)
    halls, rectify = [], []
    for site in sites:
        had = by_site.get(site.id, [])
        row = summarize(site, [d for d in had if start.isoformat() <= d["day"] <= end.isoformat()])
        cal = WorkingCalendar.of_site(official, site.calendar)
        deadline = cal.add_working_days(end, RECTIFY_WORKING_DAYS)
        today = datetime.fromtimestamp(now, generated.tzinfo).date()
        for check in CHECKS:
            if site.kind not in check.asked_of or not row.days:
                continue
            passes, detail = check.judge(row)
            if passes:
                continue
            state = _state(site, check, had, end, deadline, today, cal)
            basis = str(check.basis)
            rectify.append(RectifyRow(site.id, site.name, check.check, check.item, detail, deadline, state, basis))
            row.failing += 1
        halls.append(row)
    halls.sort(key=_rank_key)
    for i, row in enumerate(halls, 1):
        row.rank = i
    order = {row.site: row.rank for row in halls}
    rectify.sort(key=lambda r: (order[r.site], [c.check for c in CHECKS].index(r.check)))
    return CountyReport(month, start, end, generated, halls, rectify)


def _rank_key(row: HallRow) -> tuple:
    satisfied = row.satisfied_pct
    return (
        row.days == 0,
        row.failing,
        row.vacant_per_window_day or 0.0,
        satisfied is None,
        -(satisfied or 0.0),
        row.device_offline_min,
        row.site,
    )


# -- tables ------------------------------------------------------------------------------------
TABLES = {
    "ranking": TableSpec(
        "ranking",
        "各站点考核排名",
        (
            Column("rank", "排名", "int"),
            Column("site", "站点代码"),
            Column("name", "站点"),
            Column("kind", "类别"),
            Column("days", "有数据天数", "int"),
            Column("window_days", "窗口日", "int"),
            Column("not_opened_min", "空岗·未开窗(分钟)", "min"),
            Column("unstaffed_min", "空岗·无人在座(分钟)", "min"),
            Column("unverified_min", "空岗·无法核实(分钟)", "min"),
            Column("vacant_min", "空岗合计(分钟)", "min"),
            Column("vacant_per_window_day", "每窗口日空岗(分钟)", "min"),
            Column("device_offline_min", "设备离线(分钟)", "min"),
            Column("camera_offline_min", "摄像头离线(分钟)", "min"),
            Column("issued", "取号数", "int"),
            Column("served", "办理数", "int"),
            Column("no_shows", "过号", "int"),
            Column("wait_mean_min", "平均等候(分钟)", "min"),
            Column("wait_p90_max_min", "日90%等候最高(分钟)", "min"),
            Column("wait_max_min", "最长等候(分钟)", "min"),
            Column("rating_count", "评价数", "int"),
            Column("satisfied_pct", "满意率(%)", "pct"),
            Column("bad_ratings", "差评", "int"),
            Column("follow_ups_overdue", "差评逾期未整改", "int"),
            Column("cases_opened", "办件数", "int"),
            Column("cases_overdue", "超期办件", "int"),
            Column("unresolved_cases", "办不成事件", "int"),
            Column("notice_breaches", "重复告知", "int"),
            Column("failing", "整改项", "int"),
        ),
    ),
    "rectify": TableSpec(
        "rectify",
        "整改清单",
        (
            Column("site", "站点代码"),
            Column("name", "站点"),
            Column("check", "检查项代码"),
            Column("item", "检查项"),
            Column("detail", "本月情况"),
            Column("deadline", "整改期限", "date"),
            Column("state_label", "状态"),
            Column("basis", "依据"),
        ),
    ),
}


def write_county_csv(report: CountyReport, out_dir: str | Path, *, stem: str = "", mode: int = PRIVATE) -> list[Path]:
    return write_tables(TABLES, report.rows, out_dir, stem=stem, mode=mode)


# -- HTML --------------------------------------------------------------------------------------
NOTES = [
    "数据来源：各站点引擎每日上报县中心的当日数据（日终与补报，按站点和日期各保留最新一份，不重复计算）。",
    "空岗合计含未开窗、无人在座和无法核实三类，只计工作日的办公时段；窗口日为窗口当日有应在岗时间的天数。",
    "平均等候按各日取号数加权；日90%等候最高为本月各日 90% 等候中最高的一日。" + SATISFIED_NOTE,
    "办件为当月受理的件数；超期办件按各日数据上报时的状态计（办结晚于期限，或过期限仍未办结）；"
    "引擎版本较早、不上报办件的站点，办件各列为空。",
    "考核依据内放办〔2022〕9号：工作日窗口不空岗、电子监察摄像头正常运行、差评按期整改；等候与满意率标准未定量，只排名不判定。",
    "排名：整改项少者在前，其次每窗口日空岗少、满意率高、设备离线少；本月无数据的站点排在最后。",
    f"整改期限为本月结束后第 {RECTIFY_WORKING_DAYS} 个工作日（按各站点工作日历）；"
    f"期限内最后 {PROOF_DAYS} 个工作日的数据均已上报且均达标为已整改，否则期限前为待整改、期限后为逾期未整改。",
]


def _table(name: str, report: CountyReport) -> str:
    spec = TABLES[name]
    rows = report.rows(name)
    head = "".join(f'<th data-key="{c.key}">{escape(c.label)}</th>' for c in spec.columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td data-key="{c.key}"{" class=num" if c.kind in NUMERIC else ""}>{escape(c.text(row))}</td>'
            for c in spec.columns
        )
        css = ' class="overdue"' if getattr(row, "overdue", False) else ""
        body.append(f'<tr data-site="{escape(row.site)}"{css}>{cells}</tr>')
    none = "" if rows else '<p class="none">无记录</p>'
    return (
        f'<h2>{escape(spec.title)}</h2>{none}<table data-table="{name}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _charts(report: CountyReport) -> str:
    halls = [h for h in report.halls if h.days]
    names = [h.name for h in halls]

    def per_window_day(minutes: Callable[[HallRow], float]) -> list[float | None]:
        return [minutes(h) / h.window_days if h.window_days else None for h in halls]

    vacancy = hbar_chart(
        "vacancy_by_hall",
        "各站点每窗口日空岗",
        names,
        [
            Series("无人在座", per_window_day(lambda h: h.unstaffed_min), RED),
            Series("未开窗", per_window_day(lambda h: h.not_opened_min), ORANGE),
            Series("无法核实", per_window_day(lambda h: h.unverified_min), GREY),
        ],
        unit="分钟",
    )
    satisfied = bar_chart(
        "satisfied_by_hall",
        "各站点满意率",
        [h.site for h in halls],
        [Series("满意率", [h.satisfied_pct for h in halls], GREEN)],
        unit="%",
    )
    offline = hbar_chart(
        "offline_by_hall",
        "各站点设备离线",
        names,
        [Series("设备离线", [h.device_offline_min for h in halls], BLUE)],
        unit="分钟",
    )
    figures = [
        ("各站点每窗口日空岗（分钟）", vacancy),
        ("各站点满意率（%）", satisfied),
        ("各站点设备离线（分钟，工作时间内）", offline),
    ]
    return (
        '<div class="charts">'
        + "".join(f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>" for caption, svg in figures)
        + "</div>"
    )


def render_county_html(report: CountyReport) -> str:
    title = f"全县政务服务大厅考核报告 {report.month}"
    notes = "".join(f"<li>{escape(n)}</li>" for n in NOTES)
    counts = {state: sum(1 for r in report.rectify if r.state == state) for state in (OPEN, OVERDUE, DONE)}
    summary = "，".join(f"{FOLLOW_UP[state]} {n} 项" for state, n in counts.items())
    return (
        f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1>"
        f'<p class="meta">考核期间：{report.start.isoformat()} 至 {report.end.isoformat()}（各站点当地日期）</p>'
        f'<p class="meta">站点 {len(report.halls)} 个；整改项 {len(report.rectify)} 项：{escape(summary)}</p>'
        f'<p class="meta">生成时间：{escape(format_value(report.generated_at, "time"))}（整改状态以此时为准）</p>'
        f'<p class="meta">依据：{escape(str(RECTIFY_BASIS))}</p>'
        f"</header>{_charts(report)}{_table('ranking', report)}{_table('rectify', report)}"
        f'<div class="notes"><b>口径说明</b><ul>{notes}</ul></div>'
        f"</body></html>\n"
    )


def stem_of(month: str) -> str:
    return f"county-report-{month}"
