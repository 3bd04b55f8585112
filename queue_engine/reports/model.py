"""The report as plain data: one row class per table, and the tables' columns.

Rows hold typed values (counts, minutes, percentages, local datetimes in the site's
timezone); ``Column.text`` turns a value into the text that both the HTML and the CSV
renderers write, so the two formats always show the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from ..core.figures import SATISFIED_SCORES, satisfaction_pct
from ..core.model import VACANCY
from ..core.vocabulary import OUTCOME, PAUSE_REASON, RATING
from ..core.vocabulary import VACANCY as VACANCY_LABELS


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # attribute of the row
    label: str  # Chinese header
    # text, int, min (minutes, 1 decimal), days (1 decimal), pct (0-100, 1 decimal), hour, time, date, bool
    kind: str = "text"

    def text(self, row) -> str:
        return format_value(getattr(row, self.key), self.kind)


def format_value(value, kind: str) -> str:
    if value is None:
        return ""
    if kind in ("min", "pct", "days"):
        return f"{value:.1f}"
    if kind == "int":
        return str(int(value))
    if kind == "hour":
        return f"{value:02d}:00-{value + 1:02d}:00"
    if kind == "time":
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if kind == "date":
        return value.isoformat()
    if kind == "bool":
        return "是" if value else "否"
    return str(value)


# The reports' note on the 满意率 (core.figures: 基本满意 and better count as satisfied).
SATISFIED_NOTE = (
    f"满意率为 {'、'.join(map(str, sorted(SATISFIED_SCORES)))} 分评价占全部评价的比例（"
    + "、".join(f"{score} 分为{RATING[score]}" for score in sorted(SATISFIED_SCORES))
    + "）。"
)


# -- rows -------------------------------------------------------------------------------------
@dataclass(slots=True)
class FlowRow:
    """Tickets of one site and day, for one service (``service`` empty: all services).

    ``issued``, ``transferred`` and the waits count a ticket under the service it was issued
    for (its number's prefix); ``served``, the outcomes, ``no_shows``, ``expired`` and the
    service times under the service it ended in (after any transfer)."""

    site: str
    day: str
    service: str = ""
    service_name: str = "全部事项"
    issued: int = 0
    served: int = 0  # finished (办结, 受理, 一次性告知, 帮办代办 or 办不成)
    no_shows: int = 0
    transferred: int = 0
    expired: int = 0  # still waiting when the day ended
    done: int = 0
    accepted: int = 0
    informed: int = 0
    proxy: int = 0
    failed: int = 0
    called: int = 0  # tickets called at least once: the waits below are theirs
    wait_mean_min: float | None = None
    wait_p90_min: float | None = None
    wait_max_min: float | None = None
    within_target_pct: float | None = None
    target_min: float | None = None
    service_mean_min: float | None = None
    peak_hour: int | None = None  # local hour with the most tickets issued
    peak_issued: int = 0


@dataclass(slots=True)
class HourRow:
    """Tickets issued in one local hour of the day, over the whole period, and their waits."""

    site: str
    hour: int
    issued: int = 0
    called: int = 0
    wait_mean_min: float | None = None
    wait_p90_min: float | None = None
    wait_max_min: float | None = None


@dataclass(slots=True)
class WorkRow:
    """A window or a staff member over the period: work, time in working hours, ratings."""

    site: str
    id: str
    name: str = ""
    unit: str = ""
    served: int = 0
    service_mean_min: float | None = None
    staffed_min: float = 0.0
    # 空岗, in its three categories (core.figures): never opened although it must be staffed,
    # open with nobody at the seat, open with no working camera to tell.
    not_opened_min: float = 0.0
    unstaffed_min: float = 0.0
    unverified_min: float = 0.0
    closed_min: float = 0.0  # nobody logged in while the window need not be staffed
    paused_min: float = 0.0
    paused_break_min: float = 0.0
    paused_meal_min: float = 0.0
    paused_meeting_min: float = 0.0
    paused_fieldwork_min: float = 0.0
    paused_other_min: float = 0.0
    rating_1: int = 0
    rating_2: int = 0
    rating_3: int = 0
    rating_4: int = 0
    rating_5: int = 0
    ratings: int = 0
    satisfied_pct: float | None = None  # 满意率 (core.figures)

    @property
    def vacant_min(self) -> float:
        """空岗, all three categories."""
        return self.not_opened_min + self.unstaffed_min + self.unverified_min


@dataclass(slots=True)
class DeviceRow:
    site: str
    device: str
    kind: str
    kind_label: str = ""
    window: str = ""
    online_hours: str = ""  # when it is expected online, in words: its online and offline time count then
    online_min: float = 0.0
    offline_min: float = 0.0
    unknown_min: float = 0.0  # not heard of since the engine started (until its first timeout)


@dataclass(slots=True)
class AlertRow:
    """One alert: the accountability log."""

    site: str
    id: str
    kind: str
    kind_label: str
    severity: str
    subject: str
    window: str
    window_name: str
    device: str
    staff: str  # logged in at the window when the alert fired
    staff_name: str
    start: datetime
    end: datetime | None
    duration_min: float | None
    state: str
    state_label: str
    acknowledged_at: datetime | None
    acknowledged_by: str
    note: str
    overdue: bool


@dataclass(slots=True)
class BadRatingRow:
    """A bad 好差评 rating and its follow-up (due after N working days, by the site's calendar)."""

    site: str
    rated_at: datetime
    ticket: str
    window: str
    window_name: str
    staff: str
    staff_name: str
    score: int
    due: date
    status: str  # done, overdue or open
    status_label: str
    done_at: datetime | None
    done_late: bool
    note: str
    alert: str


class Rated:
    """The ratings' count and 满意率 of a row with ``ratings`` (score -> count)."""

    __slots__ = ()
    ratings: dict[int, int]

    @property
    def rating_count(self) -> int:
        return sum(self.ratings.values())

    @property
    def satisfied_pct(self) -> float | None:
        return satisfaction_pct(self.ratings)


@dataclass(slots=True)
class CaseRow:
    """办件 of the period, for the site or one service, window or staff member.

    Cases count when they were opened in the period (``opened``), each under the service it
    was opened for, the window it was opened at and its responsible staff member (the agent);
    notices and the 即办件 visits when they were given or finished in the period."""

    site: str
    dimension: str  # site, service, window or staff
    dimension_label: str
    id: str = ""
    name: str = ""
    opened: int = 0
    completed: int = 0  # 办结 (a returned or withdrawn case is closed, not completed)
    on_time: int = 0  # completed by the end of its due day
    overdue: int = 0  # closed after its due day, or still open after it (as of the report)
    still_open: int = 0
    mean_days: float | None = None  # opened to completed, in days (24 hours), completed cases
    on_the_spot_visits: int = 0  # visits for a 即办件 finished as 办结 or 受理
    on_the_spot: int = 0  # of them, 办结 there and then
    on_the_spot_pct: float | None = None
    notices: int = 0  # 一次性告知 given
    breaches: int = 0  # of them, a second 告知 in the same matter
    unresolved: int = 0  # 办不成事 兜底 cases opened
    unresolved_completed: int = 0
    unresolved_mean_days: float | None = None  # opened to completed


@dataclass(slots=True)
class SiteReport(Rated):
    site: str
    name: str
    kind: str
    timezone: str
    hours_shown: tuple[int, int]  # first and last local hour of the charts' x axis
    service_days: list[FlowRow] = field(default_factory=list)
    days: list[FlowRow] = field(default_factory=list)
    hours: list[HourRow] = field(default_factory=list)
    windows: list[WorkRow] = field(default_factory=list)
    staff: list[WorkRow] = field(default_factory=list)
    devices: list[DeviceRow] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    bad_ratings: list[BadRatingRow] = field(default_factory=list)
    cases: list[CaseRow] = field(default_factory=list)
    total: FlowRow | None = None  # the whole period, all services
    ratings: dict[int, int] = field(default_factory=dict)  # score -> count


@dataclass(slots=True)
class Report:
    start: date
    end: date  # inclusive
    generated_at: datetime  # "as of": follow-ups past due by then are overdue
    sites: list[SiteReport]

    def rows(self, table: str) -> list:
        return [row for site in self.sites for row in getattr(site, table)]


# -- tables -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str  # the CSV file's name, and the HTML table's data-table
    title: str
    columns: tuple[Column, ...]


_OUTCOME_COLUMNS = tuple(Column(code.value, label, "int") for code, label in OUTCOME.items())
_WAIT_COLUMNS = (
    Column("called", "已叫号", "int"),
    Column("wait_mean_min", "平均等候(分钟)", "min"),
    Column("wait_p90_min", "90%等候(分钟)", "min"),
    Column("wait_max_min", "最长等候(分钟)", "min"),
)
_FLOW_COUNTS = (
    Column("issued", "取号数", "int"),
    Column("served", "办理数", "int"),
    Column("no_shows", "过号", "int"),
    Column("transferred", "转办", "int"),
    Column("expired", "未叫号作废", "int"),
    *_OUTCOME_COLUMNS,
)
_PAUSE_COLUMNS = tuple(
    Column(f"paused_{reason.value}_min", f"暂停·{label}(分钟)", "min") for reason, label in PAUSE_REASON.items()
)
_VACANCY_COLUMNS = (
    *(Column(f"{category.value}_min", f"空岗·{VACANCY_LABELS[category]}(分钟)", "min") for category in VACANCY),
    Column("vacant_min", "空岗合计(分钟)", "min"),
)
_RATING_COLUMNS = (
    *(Column(f"rating_{score}", f"{score}分", "int") for score in (5, 4, 3, 2, 1)),
    Column("ratings", "评价数", "int"),
    Column("satisfied_pct", "满意率(%)", "pct"),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "days",
            "每日汇总",
            (
                Column("site", "站点"),
                Column("day", "日期"),
                *_FLOW_COUNTS,
                *_WAIT_COLUMNS,
                Column("within_target_pct", "目标时限内叫号(%)", "pct"),
                Column("service_mean_min", "平均办理(分钟)", "min"),
                Column("peak_hour", "取号高峰", "hour"),
                Column("peak_issued", "高峰取号数", "int"),
            ),
        ),
        TableSpec(
            "service_days",
            "按日按事项",
            (
                Column("site", "站点"),
                Column("day", "日期"),
                Column("service", "事项代码"),
                Column("service_name", "事项"),
                *_FLOW_COUNTS,
                *_WAIT_COLUMNS,
                Column("target_min", "目标等候(分钟)", "min"),
                Column("within_target_pct", "目标时限内叫号(%)", "pct"),
                Column("service_mean_min", "平均办理(分钟)", "min"),
                Column("peak_hour", "取号高峰", "hour"),
                Column("peak_issued", "高峰取号数", "int"),
            ),
        ),
        TableSpec(
            "hours",
            "按时段（取号时刻）",
            (
                Column("site", "站点"),
                Column("hour", "时段", "hour"),
                Column("issued", "取号数", "int"),
                *_WAIT_COLUMNS,
            ),
        ),
        TableSpec(
            "windows",
            "窗口",
            (
                Column("site", "站点"),
                Column("id", "窗口"),
                Column("name", "窗口名称"),
                Column("served", "办理数", "int"),
                Column("service_mean_min", "平均办理(分钟)", "min"),
                Column("staffed_min", "在岗(分钟)", "min"),
                *_VACANCY_COLUMNS,
                Column("closed_min", "无须开窗(分钟)", "min"),
                Column("paused_min", "暂停合计(分钟)", "min"),
                *_PAUSE_COLUMNS,
                *_RATING_COLUMNS,
            ),
        ),
        TableSpec(
            "staff",
            "工作人员",
            (
                Column("site", "站点"),
                Column("id", "工号"),
                Column("name", "姓名"),
                Column("unit", "单位"),
                Column("served", "办理数", "int"),
                Column("service_mean_min", "平均办理(分钟)", "min"),
                Column("staffed_min", "在岗(分钟)", "min"),
                *_VACANCY_COLUMNS[1:],  # (a staff member is never "not opened": nobody is logged in)
                Column("paused_min", "暂停合计(分钟)", "min"),
                *_PAUSE_COLUMNS,
                *_RATING_COLUMNS,
            ),
        ),
        TableSpec(
            "devices",
            "设备在线（各按应在线时段）",
            (
                Column("site", "站点"),
                Column("device", "设备"),
                Column("kind_label", "类型"),
                Column("window", "窗口"),
                Column("online_hours", "应在线时段"),
                Column("online_min", "在线(分钟)", "min"),
                Column("offline_min", "离线(分钟)", "min"),
                Column("unknown_min", "未上报(分钟)", "min"),
            ),
        ),
        TableSpec(
            "alerts",
            "告警记录（问责）",
            (
                Column("site", "站点"),
                Column("id", "编号"),
                Column("kind_label", "类型"),
                Column("window_name", "窗口"),
                Column("device", "设备"),
                Column("staff", "当班工号"),
                Column("staff_name", "当班人员"),
                Column("start", "开始", "time"),
                Column("end", "结束", "time"),
                Column("duration_min", "持续(分钟)", "min"),
                Column("state_label", "状态"),
                Column("acknowledged_at", "确认时间", "time"),
                Column("acknowledged_by", "确认人"),
                Column("note", "处理说明"),
            ),
        ),
        TableSpec(
            "bad_ratings",
            "差评整改跟踪",
            (
                Column("site", "站点"),
                Column("rated_at", "评价时间", "time"),
                Column("ticket", "号码"),
                Column("window_name", "窗口"),
                Column("staff", "工号"),
                Column("staff_name", "工作人员"),
                Column("score", "评分", "int"),
                Column("due", "整改期限", "date"),
                Column("status_label", "整改状态"),
                Column("done_at", "整改时间", "time"),
                Column("done_late", "超期整改", "bool"),
                Column("note", "整改说明"),
            ),
        ),
        TableSpec(
            "cases",
            "办件（限时办结、帮办代办、办不成事、一次性告知）",
            (
                Column("site", "站点"),
                Column("dimension_label", "统计维度"),
                Column("id", "代码"),
                Column("name", "名称"),
                Column("opened", "办件数", "int"),
                Column("completed", "已办结", "int"),
                Column("on_time", "按时办结", "int"),
                Column("overdue", "超期", "int"),
                Column("still_open", "在办", "int"),
                Column("mean_days", "平均办结(天)", "days"),
                Column("on_the_spot_visits", "即办件办理", "int"),
                Column("on_the_spot", "即办件当场办结", "int"),
                Column("on_the_spot_pct", "当场办结率(%)", "pct"),
                Column("notices", "一次性告知", "int"),
                Column("breaches", "重复告知(违规)", "int"),
                Column("unresolved", "办不成事件", "int"),
                Column("unresolved_completed", "办不成事已办结", "int"),
                Column("unresolved_mean_days", "办不成事平均办结(天)", "days"),
            ),
        ),
    )
}
