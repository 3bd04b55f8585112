"""Site configuration: one validated model per section, unknown keys refused.

A site file is TOML. Every problem is reported as ``FILE: field.path: problem`` so a hall's
IT officer can find it without reading Python, in English (as the engine logs it) and in
Chinese (as ``check-config`` prints it), both worded where the problem is found: a
``Problem``. Nothing here reads the environment or the clock; secrets and paths are resolved
by the CLI.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from datetime import date
from datetime import time as clock_time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .core.kinds import DEVICE_KINDS, DeviceKind, OnlineHours
from .core.vocabulary import COMPLAINT_LINE

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Ident = Annotated[str, Field(pattern=ID_PATTERN)]


class Problem(str):
    """One problem of a configuration, ``field.path: problem``: the string itself is English,
    ``zh`` the same in Chinese (``配置项 field.path：problem``)."""

    zh: str

    def __new__(cls, en: str, zh: str | None = None) -> Problem:
        problem = super().__new__(cls, en)
        problem.zh = en if zh is None else zh
        return problem

    @classmethod
    def at(cls, field: str, en: str, zh: str) -> Problem:
        """A problem of ``field`` (a path such as ``windows[0].services``)."""
        return cls(f"{field}: {en}", f"配置项 {field}：{zh}")


class Invalid(ValueError):
    """What a validator raises: the problem in English (its message, as pydantic reports it)
    and in Chinese."""

    def __init__(self, en: str, zh: str):
        super().__init__(en)
        self.zh = zh


class ConfigError(Exception):
    """A configuration file is unreadable or invalid; ``str()`` names file, field and problem.
    ``problems``: each a ``Problem`` (a plain string is taken as its English and Chinese alike)."""

    def __init__(self, path: str | Path, problems: Sequence[str]):
        self.path = str(path)
        self.problems = [p if isinstance(p, Problem) else Problem(p) for p in problems]
        super().__init__("\n".join(f"{self.path}: {p}" for p in problems))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowRole(StrEnum):
    STANDARD = "standard"  # serves the services listed
    COMPREHENSIVE = "comprehensive"  # 无差别综合受理: serves every service
    FALLBACK = "fallback"  # 办不成事反映窗口: the listed services, plus any ticket transferred to it


class ItemType(StrEnum):
    """办件类型: 限时办结 distinguishes a matter done on the spot from one promised in N days."""

    ON_THE_SPOT = "即办件"  # 即来即办、当场办结
    PROMISED = "承诺件"  # 需要审核审批的，在承诺时间内办结


WorkingDays = Annotated[int, Field(ge=1, le=365)]
_ON_THE_SPOT_WORDING = re.compile(r"即办|当场办结|即来即办")
_WORKING_DAYS_WORDING = re.compile(r"(\d+)\s*个?\s*工作日")


class ServiceGuide(Section):
    """办事指南: the fields the county standard requires for every service, and the promise
    the service makes in numbers (the free text ``time_limit`` is what the citizen reads;
    ``promise_working_days`` is what due dates are computed from)."""

    basis: str = ""  # 办事依据
    conditions: str = ""  # 办理条件
    materials: list[str] = []  # 申请材料
    time_limit: str = ""  # 办理时限 as published, e.g. "即办" or "5个工作日"
    fee: str = ""  # 收费情况
    item_type: ItemType | Literal[""] = ""  # 办件类型
    promise_working_days: WorkingDays | None = None  # 承诺件: done within N working days
    proxy_working_days: WorkingDays | None = None  # 帮办代办, where it differs from the promise
    unresolved_reply_working_days: WorkingDays | None = None  # 办不成事: reply within N working days

    @model_validator(mode="after")
    def _promise_as_the_item_type_wants(self) -> ServiceGuide:
        if self.item_type is ItemType.PROMISED and self.promise_working_days is None:
            raise Invalid(
                "a 承诺件 must state its promise in numbers: promise_working_days = N (working days)",
                "承诺件须写明承诺办结的工作日数：promise_working_days = N",
            )
        if self.item_type is ItemType.ON_THE_SPOT and self.promise_working_days is not None:
            raise Invalid(
                'a 即办件 is done on the spot: remove promise_working_days, or make it item_type = "承诺件"',
                '即办件当场办结：请删去 promise_working_days，或改为 item_type = "承诺件"',
            )
        return self

    def missing_fields(self) -> list[str]:
        return [
            name
            for name in ("basis", "conditions", "materials", "time_limit", "fee", "item_type")
            if not getattr(self, name)
        ]

    def wording_disagreements(self) -> list[tuple[str, str]]:
        """Where the published 办理时限 says otherwise than the item type and the promise (the
        citizen reads one, the due dates follow the other), (English, Chinese). Wording it
        cannot read is left alone."""
        said_days = _WORKING_DAYS_WORDING.search(self.time_limit)
        said_on_the_spot = _ON_THE_SPOT_WORDING.search(self.time_limit) is not None
        limit = repr(self.time_limit)
        if self.item_type is ItemType.PROMISED and said_on_the_spot and not said_days:
            return [
                (
                    f"time_limit {limit} reads as 即办 but item_type is 承诺件",
                    f"time_limit {limit} 是即办，但 item_type 是承诺件",
                )
            ]
        if self.item_type is ItemType.ON_THE_SPOT and said_days:
            return [
                (
                    f"time_limit {limit} promises working days but item_type is 即办件",
                    f"time_limit {limit} 写了工作日，但 item_type 是即办件",
                )
            ]
        if said_days and self.promise_working_days is not None:
            days = int(said_days.group(1))
            if days != self.promise_working_days:
                promise = self.promise_working_days
                return [
                    (
                        f"time_limit {limit} says {days} working days but promise_working_days = {promise}",
                        f"time_limit {limit} 写的是 {days} 个工作日，但 promise_working_days = {promise}",
                    )
                ]
        return []


class Service(Section):
    code: Ident
    name: str = Field(min_length=1)
    prefix: str = Field(pattern=r"^[A-Z]{1,2}$")
    category: str = Field(min_length=1)
    # 一件事一次办 theme: a bundle of other services handled in one visit.
    theme: bool = False
    includes: list[str] = []
    expected_service_min: float = Field(default=8.0, gt=0, le=240)
    target_wait_min: float = Field(default=20.0, gt=0, le=480)
    guide: ServiceGuide = ServiceGuide()


class Window(Section):
    id: Ident
    name: str = Field(min_length=1)
    unit: str = ""
    role: WindowRole = WindowRole.STANDARD
    services: list[str] = []
    # 确保工作日窗口不空岗: a window that must be staffed in working hours; optionally only on
    # some weekdays (1 = Monday ... 7 = Sunday; empty: every working day). A 调休 working
    # Saturday or Sunday counts as the weekday it makes up for (core.calendar.schedule_weekday).
    must_staff: bool = True
    staff_weekdays: list[Annotated[int, Field(ge=1, le=7)]] = []

    @model_validator(mode="after")
    def _services_present(self) -> Window:
        if self.role is not WindowRole.COMPREHENSIVE and not self.services:
            raise Invalid(
                "a window that is not comprehensive must list the services it serves",
                "非综合受理窗口须写明可办业务 services",
            )
        return self


class Device(Section):
    id: Ident
    kind: DeviceKind
    window: str | None = None
    heartbeat_s: float = Field(default=10.0, gt=0, le=3600)
    # When it is expected online ("office": working time; "always": day and night), which its
    # offline alerts and its accounted online and offline time follow. Default: its kind's (a
    # 24-hour self-service terminal "always", the rest "office"); a camera watching a 24-hour
    # self-service area may say "always".
    online_hours: OnlineHours | None = None

    @property
    def expected_hours(self) -> OnlineHours:
        return self.online_hours or DEVICE_KINDS[self.kind].online_hours

    @model_validator(mode="after")
    def _window_as_its_kind_wants(self) -> Device:
        window = DEVICE_KINDS[self.kind].window
        if window == "required" and self.window is None:
            raise Invalid(
                f"a {self.kind.value} device must name its window", f"{self.kind.value} 设备须写明所属窗口 window"
            )
        if window == "none" and self.window is not None:
            raise Invalid(
                f"a {self.kind.value} device belongs to no window (remove window = {self.window!r})",
                f"{self.kind.value} 设备不属于窗口（请删去 window = {self.window!r}）",
            )
        return self


class Staff(Section):
    id: Ident
    name: str = Field(min_length=1)
    unit: str = ""
    title: str = ""


def _parse_hhmm(text: str) -> clock_time:
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", text)
    if not match:
        raise Invalid(f"{text!r} is not a time of day HH:MM", f"{text!r} 不是时刻 HH:MM")
    return clock_time(int(match[1]), int(match[2]))


class Hours(Section):
    """Opening periods of a working day, e.g. ``["08:30-12:00", "14:30-17:30"]``."""

    periods: list[str] = ["08:30-12:00", "14:30-17:30"]
    # Tickets may be taken this long before the first period opens.
    issue_before_open_min: int = Field(default=30, ge=0, le=240)

    @field_validator("periods")
    @classmethod
    def _periods_valid(cls, periods: list[str]) -> list[str]:
        if not periods:
            raise Invalid("at least one opening period is required", "至少要有一个工作时段")
        previous_end = None
        for period in periods:
            start_text, sep, end_text = period.partition("-")
            if not sep:
                raise Invalid(f"{period!r} is not a period HH:MM-HH:MM", f"{period!r} 不是时段 HH:MM-HH:MM")
            start, end = _parse_hhmm(start_text), _parse_hhmm(end_text)
            if end <= start:
                raise Invalid(f"{period!r} ends before it starts", f"{period!r} 结束早于开始")
            if previous_end is not None and start < previous_end:
                raise Invalid(
                    f"{period!r} overlaps or precedes the period before it", f"{period!r} 与前一时段重叠或在它之前"
                )
            previous_end = end
        return periods

    def spans(self) -> list[tuple[clock_time, clock_time]]:
        spans = []
        for period in self.periods:
            start_text, _, end_text = period.partition("-")
            spans.append((_parse_hhmm(start_text), _parse_hhmm(end_text)))
        return spans


class QueueRules(Section):
    # Green channel: at most this many priority tickets in a row per window before a
    # waiting normal ticket is called, so normal tickets never starve.
    priority_cap: int = Field(default=2, ge=1, le=100)
    # Whether tickets may be issued outside the opening hours (24-hour self-service halls).
    issue_outside_hours: bool = False
    # Weight of the newest service time in the moving average behind wait estimates.
    service_time_smoothing: float = Field(default=0.2, gt=0, le=1)


class PauseAllowance(Section):
    """How long a declared pause may last, in minutes of working time, per reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    break_: int = Field(default=15, ge=1, le=480, alias="break")
    meal: int = Field(default=60, ge=1, le=480)
    meeting: int = Field(default=60, ge=1, le=480)
    fieldwork: int = Field(default=240, ge=1, le=480)
    other: int = Field(default=30, ge=1, le=480)

    def minutes(self, reason: str) -> int:
        return self.break_ if reason == "break" else getattr(self, reason)


class Supervision(Section):
    """Thresholds of the 电子监察 alerts."""

    not_opened_grace_min: float = Field(default=10, ge=0, le=240)
    unstaffed_grace_min: float = Field(default=5, ge=0, le=240)
    pause_allowance_min: PauseAllowance = PauseAllowance()
    # A device is lost when this many heartbeats are missed.
    heartbeat_misses: int = Field(default=3, ge=1, le=100)
    # device_offline fires only for a device that has not come back within this grace, counted
    # from the later of its going offline and the engine's own return: a broker restart makes
    # the broker publish every device's Last Will, and devices need a while to reconnect (the
    # agents back off up to 30 s, jittered). An orderly shutdown still alerts at once.
    device_offline_grace_s: float = Field(default=60, ge=0, le=3600)
    # After the engine reconnects to the broker or resumes from a stall, for this long no
    # alert that rests on what devices report fires, and every device gets a fresh heartbeat
    # allowance: what the engine could not hear is no evidence against anybody.
    settle_s: float = Field(default=30, ge=0, le=3600)
    # broker_unavailable (for the IT staff): the engine's link to the broker down this long.
    broker_alert_after_s: float = Field(default=20, ge=0, le=3600)
    # engine_stalled (for the IT staff): the engine's event loop stopped at least this long.
    stall_alert_after_s: float = Field(default=5, ge=0, le=3600)
    # A condition must be gone this long before its alert resolves (or before a condition
    # not yet alerted starts again from zero): a flapping sensor keeps one alert open.
    clear_after_s: float = Field(default=60, ge=0, le=3600)
    # unauthorized: this many refused messages from one device within the window.
    unauthorized_refusals: int = Field(default=5, ge=1, le=10000)
    unauthorized_window_min: float = Field(default=10, gt=0, le=1440)
    # 好差评: a score at or below this is a bad rating, to be followed up within N working days.
    bad_rating_max_score: int = Field(default=2, ge=1, le=4)
    bad_rating_follow_up_days: int = Field(default=5, ge=1, le=30)
    # queue_surge (增设服务窗口): a service's Erlang C wait forecast, from the tickets issued in
    # the last surge_window_min minutes, its average service time and its open windows, has
    # exceeded its target_wait_min for surge_fire_after_min.
    surge_window_min: float = Field(default=30, gt=0, le=240)
    surge_fire_after_min: float = Field(default=5, ge=0, le=240)
    # issuing_rate: a kiosk (or self-service terminal) that issues more numbers than this within a
    # minute (no hall's citizens take them that fast: a script, or a stuck button). 0: not watched.
    kiosk_tickets_per_minute: int = Field(default=20, ge=0, le=10000)


class Cases(Section):
    """办件 (docs/supervision.md, "Cases"): the site's defaults where a service's guide states no
    time of its own, and how far back a visit is linked to an earlier 告知 of the same matter."""

    # 帮办代办: done within this many working days unless the guide says proxy_working_days
    # (or promise_working_days).
    proxy_working_days: WorkingDays = 10
    # 办不成事: the citizen gets a reply within this many working days unless the guide says
    # unresolved_reply_working_days.
    unresolved_reply_working_days: WorkingDays = 5
    # A 告知 given to the same citizen for the same service within this many days is the same
    # matter: a second one breaks the 一次性告知制.
    same_matter_days: int = Field(default=90, ge=1, le=3650)


class Calendar(Section):
    """Working days beyond China's official calendar (which the engine knows for the years
    the chinese-calendar package covers)."""

    holidays: list[date] = []  # days off that are not in the official calendar
    workdays: list[date] = []  # extra working days (e.g. a 调休 the package does not know yet)
    # Years whose holidays and workdays above are complete: the official calendar of a year
    # the package does not cover, entered here from the State Council's notice.
    covered_years: list[Annotated[int, Field(ge=2000, le=2100)]] = []
    # A 调休 working weekend day -> the weekday (1 = Monday ... 7 = Sunday) whose schedule it
    # follows (the windows' staff_weekdays), e.g. ``follows = { 2027-02-06 = 5 }``: for working
    # days the official calendar does not pair (a year entered by hand), or to override it.
    follows: dict[date, Annotated[int, Field(ge=1, le=7)]] = {}

    @model_validator(mode="after")
    def _no_contradiction(self) -> Calendar:
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            days = ", ".join(d.isoformat() for d in both)
            raise Invalid(f"listed both as holiday and workday: {days}", f"既是放假日又是补班日：{days}")
        off = sorted(set(self.follows) & set(self.holidays))
        if off:
            days = ", ".join(d.isoformat() for d in off)
            raise Invalid(f"follows names days off (holidays): {days}", f"follows 写了放假的日子（holidays）：{days}")
        return self


class Facts(Section):
    """What a site declares about itself for the county's assessment (督导考核, ``hallwatch
    audit``). Every fact is optional: a fact not declared is audited as unknown."""

    area_m2: float | None = Field(default=None, ge=0)  # 中心面积, square metres
    residents: int | None = Field(default=None, ge=0)  # 服务人口 (township: 1 staff per 10,000)
    agent_points: int | None = Field(default=None, ge=0)  # 便民服务代办点
    staff_count: int | None = Field(default=None, ge=0)  # 正式工作人员; absent: the [[staff]] entries
    # 各服务窗口张贴或摆放“好差评”二维码: what the standard asks at every window (a rating pad
    # also serves); needed by the audit only for windows without a pad.
    rating_qr_codes: bool | None = None


class Retention(Section):
    """How long the store keeps the raw event log and the rejected messages of the site.
    Tickets, ratings, alerts and their transitions, device changes and the time accounting
    are kept: the reports and the accountability log are built from them. The event log is
    needed only for answering resends (two days) and for looking into a dispute."""

    events_days: int = Field(default=30, ge=3, le=3650)
    rejections_days: int = Field(default=30, ge=1, le=3650)


def _empty_or_matching(value: str, pattern: re.Pattern[str], problem: str, zh: str) -> str:
    if value and not pattern.fullmatch(value):
        raise Invalid(f"{value!r} {problem}", f"{value!r} {zh}")
    return value


_TELEPHONE_RE = re.compile(r"\d[\d-]{1,18}\d(转\d{1,6})?")


class Complaints(Section):
    """县乡投诉电话, published where citizens see them (在显要位置公布): the board's footer, the
    slips, the posters. Empty: not shown."""

    county: str = ""  # 县投诉电话, e.g. "0377-65123456" or "12345"
    township: str = ""  # 乡镇投诉电话

    @field_validator("county", "township")
    @classmethod
    def _telephone_number(cls, number: str) -> str:
        return _empty_or_matching(
            number,
            _TELEPHONE_RE,
            "is not a telephone number: digits and '-', optionally 转 and an extension, "
            'e.g. "0377-65123456" or "12345"',
            '不是电话号码：数字和 -，可加“转”和分机号，如 "0377-65123456" 或 "12345"',
        )

    def lines(self) -> list[tuple[str, str]]:
        """(which, number) of each number set, county first: ``which`` keys vocabulary.COMPLAINT_LINE."""
        return [(which, number) for which, number in (("county", self.county), ("township", self.township)) if number]

    def labelled(self) -> list[str]:
        """Each number with its label, e.g. ``县投诉电话：0377-65532345``."""
        return [f"{COMPLAINT_LINE[which]}：{number}" for which, number in self.lines()]


_PUBLIC_URL_RE = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-])?")


class Web(Section):
    """The site's web pages and JSON API (docs/api.md): the hall's public address, limits on
    taking a number from a phone (against ticket touting) and where the manager token comes
    from. The token itself is a secret: read from the environment variable named here when
    the engine starts."""

    # Where citizens' phones reach the hall's pages, e.g. "https://hall.example.cn": the base
    # of the slip's QR link ({public_url}/t/{site}/{token}) and of the posters' codes. Empty:
    # no link on the slips, no posters.
    public_url: str = ""

    phone_tickets_per_day: int = Field(default=3, ge=0, le=100)  # 0: no phone tickets
    address_tickets_per_hour: int = Field(default=10, ge=0, le=100000)  # per client address
    # per client network (an IPv4 /24, an IPv6 /64: one household, one office, one tout's lines)
    network_tickets_per_hour: int = Field(default=30, ge=0, le=100000)
    site_phone_tickets_per_hour: int = Field(default=300, ge=0, le=100000)  # all phones together
    # A number taken with a phone is reserved: called only once checked in at the hall (the
    # entrance's QR code, or its check-in code typed at a kiosk); unchecked this long after it
    # was taken, it expires and counts as the phone's no-show. 0: no check-in, queued at once.
    reservation_min: int = Field(default=60, ge=0, le=1440)
    # A phone whose reservations expired unchecked this many times today takes no more numbers today.
    phone_no_shows_per_day: int = Field(default=1, ge=1, le=100)
    # Default: HALLWATCH_MANAGER_TOKEN_<SITE ID in capitals, "-" as "_">.
    manager_token_env: str = Field(default="", pattern=r"^([A-Z_][A-Z0-9_]{0,127})?$")

    @field_validator("public_url")
    @classmethod
    def _public_url_valid(cls, url: str) -> str:
        return _empty_or_matching(
            url,
            _PUBLIC_URL_RE,
            "is not the hall's public address: http(s)://host[:port][/path], "
            'no trailing slash, no query, e.g. "https://hall.example.cn"',
            '不是大厅的公网地址：http(s)://主机[:端口][/路径]，末尾不加 /，不带查询参数，如 "https://hall.example.cn"',
        )

    def token_env(self, site_id: str) -> str:
        return self.manager_token_env or "HALLWATCH_MANAGER_TOKEN_" + site_id.upper().replace("-", "_")


SiteKind = Literal["county", "township", "village"]


class Site(Section):
    id: Ident
    name: str = Field(min_length=1)
    kind: SiteKind = "township"
    timezone: str = "Asia/Shanghai"
    hours: Hours = Hours()
    queue: QueueRules = QueueRules()
    supervision: Supervision = Supervision()
    calendar: Calendar = Calendar()
    cases: Cases = Cases()
    facts: Facts = Facts()
    web: Web = Web()
    complaints: Complaints = Complaints()
    retention: Retention = Retention()
    services: list[Service] = Field(min_length=1)
    windows: list[Window] = Field(min_length=1)
    devices: list[Device] = []
    staff: list[Staff] = []

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "Asia" is a folder, not a zone
            raise Invalid(f"unknown timezone {name!r}", f"不认识的时区：{name!r}") from None
        return name

    def warnings(self) -> list[Problem]:
        """What is valid but probably not meant, each as its own ``field.path: problem``:
        check-config prints them; the engine runs all the same."""
        unwatched = {w.id for w in self.unwatched_windows()}
        return [
            Problem(f"services[{i}].guide.{en}", f"配置项 services[{i}].guide：{zh}")
            for i, service in enumerate(self.services)
            for en, zh in service.guide.wording_disagreements()
        ] + [
            Problem.at(
                f"windows[{i}]",
                f"no camera watches {window.id} ({window.name}), so whether anybody is at the seat "
                f"can never be verified (its staffing is always unverified, 无法核实) and it can never raise "
                f'window_unstaffed; bind a camera to it ([[devices]] kind = "camera", window = "{window.id}")',
                f"没有摄像头看着 {window.id}（{window.name}），无法核实是否有人在岗（一直是“无法核实”），"
                f"也永远不会报“窗口空岗”；"
                f'请给它配一个摄像头（[[devices]] kind = "camera"，window = "{window.id}"）',
            )
            for i, window in enumerate(self.windows)
            if window.id in unwatched
        ]

    def reference_problems(self) -> list[Problem]:
        """Checks across sections, each reported as its own ``field.path: problem``."""
        problems: list[Problem] = []
        _unique(problems, "services", [s.code for s in self.services], "code")
        _unique(problems, "services", [s.prefix for s in self.services], "prefix")
        _unique(problems, "windows", [w.id for w in self.windows], "id")
        _unique(problems, "devices", [d.id for d in self.devices], "id")
        _unique(problems, "staff", [s.id for s in self.staff], "id")
        service_codes = {s.code for s in self.services}
        window_ids = {w.id for w in self.windows}
        for i, service in enumerate(self.services):
            for code in service.includes:
                if code not in service_codes:
                    problems.append(
                        Problem.at(f"services[{i}].includes", f"unknown service {code!r}", f"没有这项业务：{code!r}")
                    )
        for i, window in enumerate(self.windows):
            for code in window.services:
                if code not in service_codes:
                    problems.append(
                        Problem.at(f"windows[{i}].services", f"unknown service {code!r}", f"没有这项业务：{code!r}")
                    )
        for i, device in enumerate(self.devices):
            if device.window is not None and device.window not in window_ids:
                problems.append(
                    Problem.at(
                        f"devices[{i}].window", f"unknown window {device.window!r}", f"没有这个窗口：{device.window!r}"
                    )
                )
        served = {code for w in self.windows for code in self.window_services(w)}
        for i, service in enumerate(self.services):
            if service.code not in served:
                problems.append(
                    Problem.at(
                        f"services[{i}]",
                        f"no window serves {service.code!r}",
                        f"没有窗口办理这项业务：{service.code!r}",
                    )
                )
        return problems

    # Derived look-ups (pure, computed on each call: the site is small and they are not on the hot path).
    def window_services(self, window: Window) -> frozenset[str]:
        if window.role is WindowRole.COMPREHENSIVE:
            return frozenset(s.code for s in self.services)
        return frozenset(window.services)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def service(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)

    def unwatched_windows(self) -> list[Window]:
        """Windows no camera watches: whether anybody sits there can never be verified (open,
        they are always ``unverified``), so they can never raise ``window_unstaffed``."""
        watched = {d.window for d in self.devices if DEVICE_KINDS[d.kind].watches_seat}
        return [w for w in self.windows if w.id not in watched]

    def window(self, window_id: str) -> Window | None:
        return next((w for w in self.windows if w.id == window_id), None)

    def device(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)


def _unique(problems: list[Problem], section: str, values: list[str], field: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            problems.append(Problem.at(f"{section}[{i}].{field}", f"duplicate {value!r}", f"与前面的重复：{value!r}"))
        seen.add(value)


def _format_location(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _or(choices: str) -> str:
    """pydantic's ``'a', 'b' or 'c'`` in Chinese."""
    return choices.replace(" or ", " 或 ").replace(", ", "、")


# pydantic's error types, in Chinese ({...}: the error's context). A type not listed here is
# worded in Chinese as pydantic words it in English.
PYDANTIC_ZH = {
    "missing": "缺少这一项（必填）",
    "greater_than_equal": "应不小于 {ge}",
    "less_than_equal": "应不大于 {le}",
    "greater_than": "应大于 {gt}",
    "less_than": "应小于 {lt}",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "string_type": "应为文字（用引号括起来）",
    "list_type": '应为列表，如 ["a", "b"]',
    "date_type": "应为日期，如 2027-02-06",
    "date_parsing": "应为日期，如 2027-02-06",
    "date_from_datetime_parsing": "应为日期，如 2027-02-06",
    "date_from_datetime_inexact": "应为日期，如 2027-02-06",
    "dict_type": "应为一节或 { 键 = 值 }",
    "model_type": "应为一节或 { 键 = 值 }",
    "model_attributes_type": "应为一节或 { 键 = 值 }",
    "literal_error": "应为 {expected} 之一",
    "enum": "应为 {expected} 之一",
    "string_pattern_mismatch": "格式不对（应符合 {pattern}）",
    "string_too_short": "至少 {min_length} 个字符",
    "too_short": "至少要有 {min_length} 项",
}


def _problems(exc: ValidationError, unknown_field: tuple[str, str]) -> list[Problem]:
    """Pydantic's errors as ``field.path: problem`` lines an installer can act on."""
    problems = []
    for error in exc.errors():
        kind, context = error["type"], error.get("ctx", {})
        en = error["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            en, zh = unknown_field
        elif kind == "missing":
            en, zh = "required field is missing", PYDANTIC_ZH[kind]
        elif isinstance(context.get("error"), Invalid):
            zh = context["error"].zh
        elif kind in PYDANTIC_ZH:
            zh = PYDANTIC_ZH[kind].format(**{k: _or(str(v)) for k, v in context.items()})
        else:
            zh = en
        problems.append(Problem.at(_format_location(error["loc"]), en, zh))
    return problems


UNKNOWN_FIELD = ("unknown field (not allowed here)", "没有这个配置项（此处不能写它，请检查拼写）")


def parse_site(data: dict, source: str | Path = "<memory>") -> Site:
    try:
        site = Site.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc, UNKNOWN_FIELD)) from None
    problems = site.reference_problems()
    if problems:
        raise ConfigError(source, problems)
    return site


def load_site(path: str | Path) -> Site:
    path = Path(path)
    return parse_site(_read_toml_file(path), path)


def load_sites(paths: Sequence[str | Path]) -> list[Site]:
    sites = [load_site(p) for p in paths]
    seen: dict[str, str] = {}
    for path, site in zip(paths, sites):
        if site.id in seen:
            raise ConfigError(
                path,
                [
                    Problem.at(
                        "id",
                        f"site {site.id!r} is already defined in {seen[site.id]}",
                        f"站点 {site.id!r} 已在 {seen[site.id]} 中定义",
                    )
                ],
            )
        seen[site.id] = str(path)
    return sites


# -- deployments: one file that includes the site files of a county --------------------------
# A county (or any group of sites served together) is a TOML file with an ``include`` list
# of site files, relative to the including file. An entry may be a glob (``villages/*.toml``,
# expanded in sorted order) and may name another deployment file. Every entry is checked and
# every problem names the file, the field and the problem, like a site file's.


class Deployment(Section):
    name: str = ""
    include: list[str] = Field(min_length=1)


def _read_toml_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConfigError(path, [Problem(f"cannot read file: {reason}", f"无法读取文件：{reason}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            path,
            [
                Problem(
                    f"file is not UTF-8 (byte {exc.start}); save it as UTF-8",
                    f"文件不是 UTF-8 编码（第 {exc.start} 字节）；请另存为 UTF-8",
                )
            ],
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [Problem(f"not valid TOML: {exc}", f"不是有效的 TOML：{exc}")]) from None


def is_deployment(data: dict) -> bool:
    """A deployment file has ``include``; a site file never has (its unknown keys are refused)."""
    return "include" in data


def parse_deployment(data: dict, source: str | Path = "<memory>") -> Deployment:
    try:
        return Deployment.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            source,
            _problems(
                exc,
                (
                    "unknown field (a deployment file has only name and include)",
                    "没有这个配置项（县文件只有 name 和 include）",
                ),
            ),
        ) from None


def deployment_site_files(path: str | Path, _including: tuple[Path, ...] = ()) -> list[Path]:
    """The site files a deployment file includes, in order (a site file stands for itself)."""
    path = Path(path)
    data = _read_toml_file(path)
    if not is_deployment(data):
        return [path]
    deployment = parse_deployment(data, path)
    chain = _including + (path.resolve(),)
    files: list[Path] = []
    for i, entry in enumerate(deployment.include):
        if Path(entry).is_absolute():
            targets = [Path(entry)]
        elif any(c in entry for c in "*?["):
            targets = sorted(path.parent.glob(entry))
            if not targets:
                raise ConfigError(
                    path,
                    [
                        Problem.at(
                            f"include[{i}]",
                            f"{entry!r} matches no file in {path.parent}",
                            f"{entry!r} 在 {path.parent} 中没有匹配的文件",
                        )
                    ],
                )
        else:
            targets = [path.parent / entry]
        for target in targets:
            if not target.is_file():
                raise ConfigError(
                    path,
                    [
                        Problem.at(
                            f"include[{i}]",
                            f"{entry!r}: no such file (paths are relative to {path.parent})",
                            f"{entry!r}：没有这个文件（路径相对于 {path.parent}）",
                        )
                    ],
                )
            if target.resolve() in chain:
                raise ConfigError(
                    path,
                    [
                        Problem.at(
                            f"include[{i}]",
                            f"{entry!r} includes {target} again (a loop)",
                            f"{entry!r} 再次包含 {target}（循环包含）",
                        )
                    ],
                )
            files += deployment_site_files(target, chain)
    seen: dict[Path, Path] = {}
    for file in files:
        if file.resolve() in seen:
            raise ConfigError(path, [Problem.at("include", f"{file} is included twice", f"{file} 被包含了两次")])
        seen[file.resolve()] = file
    return files


def expand_config_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Each path a site file or a deployment file -> the site files, in order."""
    return [file for p in paths for file in deployment_site_files(p)]


def load_deployment(path: str | Path) -> list[Site]:
    """The sites of a deployment file (a county file including township files)."""
    return load_sites(deployment_site_files(path))


def load_configs(paths: Sequence[str | Path]) -> list[Site]:
    """Sites from any mix of site files and deployment files; a site defined twice is refused."""
    return load_sites(expand_config_paths(paths))
