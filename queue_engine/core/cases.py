"""办件: the citizen's matter beyond the visit (限时办结, 帮办代办, 办不成事, 一次性告知).

A visit that ends as 受理 on a 承诺件, as 帮办代办, or as 办不成 at the 办不成事 window opens a
case, due a number of working days later by the site's own calendar (调休 included). A case
lives through its own events (a progress note, passed on, completed with a result, returned to
the citizen, withdrawn), each recorded with who and when, until it is closed. A case still open
on its due day raises ``case_overdue`` (warning), which turns critical once the due day has
passed and resolves when the case is closed: one alert per case.

A visit that ends as 一次性告知 records a notice: which of the guide's materials were missing.
Visits are linked into matters, so that a second 告知 for the same matter is a breach of the
一次性告知制. The same matter, in this order:

1. the number the citizen brings (``refer``: a notice's or a case's number): that one's matter;
2. else the same service and the same citizen (the key of the ID or mobile number the panel
   sends, or of the phone a number was taken with) as a 告知 given within the site's
   ``cases.same_matter_days``: that 告知's matter.

A matter is named by the number of its first notice or case. The case book is pure like the
rest of the core: it reads no clock, and raises ``Refused`` having changed nothing.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from . import events as ev
from .alerts import Alert, AlertKind, AlertState
from .calendar import WorkingCalendar
from .commands import AlertChanged, Command
from .errors import ErrorCode, Refused
from .model import Ticket
from .records import evolve, record

if TYPE_CHECKING:
    from ..config import Service, Site

K = AlertKind


class CaseKind(StrEnum):
    PROMISED = "promised"  # 承诺件, accepted (受理): done within its promise
    PROXY = "proxy"  # 帮办代办: handled for the citizen, often passed on to a department
    UNRESOLVED = "unresolved"  # 办不成事 兜底: the 办不成事 window owes the citizen a reply


class CaseStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"  # 办结, with its result
    RETURNED = "returned"  # 退回: returned to the citizen (not approvable as it stands)
    WITHDRAWN = "withdrawn"  # 撤回: the citizen withdrew it


class CaseAction(StrEnum):
    """What happened to a case: one row of its log each."""

    OPENED = "opened"
    NOTE = "note"  # a progress note
    PASSED_ON = "passed_on"  # to a department or a higher level; the agent stays responsible
    COMPLETED = "completed"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"
    FIELDWORK = "fieldwork"  # its agent went out for it (a home visit): a pause for the case


@record
class Case:
    site: str
    no: str  # e.g. "J20261125001": the number the citizen is given
    kind: CaseKind
    service: str
    opened_at: float
    day: str  # local ISO date it was opened
    due_day: str  # local ISO date it is due (its last day)
    due_at: float  # the end of the due day: overdue from then on
    status: CaseStatus = CaseStatus.OPEN
    ticket: str | None = None  # the visit that opened it
    ticket_day: str | None = None
    window: str | None = None  # where it was opened
    staff: str | None = None  # who opened it
    agent: str | None = None  # the responsible staff member (帮办代办员, 主办人)
    passed_to: str | None = None  # the department or higher level it was passed on to
    first_window: str | None = None  # 首问: the visit's first window and staff member
    first_staff: str | None = None
    citizen: str | None = None  # the citizen's key (``privacy.citizen_key``), when known
    matter: str | None = None  # the number of the matter's first notice or case
    result: str | None = None  # the result (completed), or why (returned, withdrawn)
    closed_at: float | None = None
    closed_by: str | None = None
    updated_at: float | None = None

    @property
    def open(self) -> bool:
        return self.status is CaseStatus.OPEN

    def evolve(self, **changes: Any) -> Case:
        return evolve(self, **changes)


@record
class InformedNotice:
    """一次性告知: what a citizen was told was missing, once."""

    site: str
    no: str  # e.g. "G20261125001", on the 一次性告知书
    service: str
    at: float
    day: str
    missing: tuple[str, ...]  # the guide's materials, by name
    ticket: str | None = None
    window: str | None = None
    staff: str | None = None
    first_window: str | None = None
    first_staff: str | None = None
    citizen: str | None = None
    matter: str | None = None
    # A second 告知 for the same matter: the rule is broken; ``previous`` names the one before.
    breach: bool = False
    previous: str | None = None


@record
class CaseChanged(Command):
    """A case was opened or changed: store it (the case and a row of its log)."""

    case: Case
    action: CaseAction
    at: float
    by: str
    note: str = ""


@record
class NoticeIssued(Command):
    notice: InformedNotice


# The case events, and what each does to an open case (the transition table: any other status
# refuses every event with ``case_closed``).
CASE_EVENTS: dict[type[ev.Event], tuple[CaseAction, CaseStatus]] = {
    ev.CaseNote: (CaseAction.NOTE, CaseStatus.OPEN),
    ev.CasePassOn: (CaseAction.PASSED_ON, CaseStatus.OPEN),
    ev.CaseComplete: (CaseAction.COMPLETED, CaseStatus.COMPLETED),
    ev.CaseReturn: (CaseAction.RETURNED, CaseStatus.RETURNED),
    ev.CaseWithdraw: (CaseAction.WITHDRAWN, CaseStatus.WITHDRAWN),
}
# What the citizen sees of a case's log (its page, /case/{site}/{token}): its status changes;
# progress notes and fieldwork are internal.
PUBLIC_ACTIONS = (
    CaseAction.OPENED,
    CaseAction.PASSED_ON,
    CaseAction.COMPLETED,
    CaseAction.RETURNED,
    CaseAction.WITHDRAWN,
)
# Numbers: a letter, the local date and the day's sequence (J20261125001): 办件 J, 告知书 G.
CASE_PREFIX = "J"
NOTICE_PREFIX = "G"
# The note a case opened on a home visit is logged with (its log keeps how it was taken on).
HOME_VISIT = "上门办理"


class Opening:
    """What a finished visit leads to, decided before anything changes (``CaseBook.plan``)."""

    __slots__ = ("kind", "days", "notice_missing", "matter", "previous", "citizen", "agent", "passed_to", "flag")

    def __init__(self) -> None:
        self.kind: CaseKind | None = None
        self.days = 0
        self.notice_missing: tuple[str, ...] | None = None
        self.matter: str | None = None  # linked to an earlier matter
        self.previous: str | None = None  # the earlier notice of that matter (a breach)
        self.citizen: str | None = None
        self.agent: str | None = None
        self.passed_to: str | None = None
        self.flag = False  # a 即办件 accepted instead of done on the spot


AlertRaiser = Callable[..., AlertChanged]


class CaseBook:
    """One site's cases and notices, with the due timers of the open cases."""

    def __init__(
        self,
        site: Site,
        calendar: WorkingCalendar,
        *,
        raise_alert: AlertRaiser,
        change_alert: Callable[[Alert], AlertChanged],
        current_alert: Callable[[str], Alert | None],
    ):
        self.id = site.id
        self.rules = site.cases
        self.calendar = calendar
        self._tz = site.tz
        self._staff = {s.id for s in site.staff}
        self._raise = raise_alert
        self._change = change_alert
        self._current_alert = current_alert
        self.cases: dict[str, Case] = {}  # every open case, and closed ones within same_matter_days
        self.notices: dict[str, InformedNotice] = {}  # within same_matter_days
        self._alerts: dict[str, str] = {}  # case number -> its case_overdue alert's id
        self._seq: dict[tuple[str, str], int] = {}  # (prefix, day) -> last number
        self._timers: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}

    # -- reading -------------------------------------------------------------------------
    def open_cases(self) -> list[Case]:
        """Open cases, the soonest due first (for the consoles)."""
        return sorted((c for c in self.cases.values() if c.open), key=lambda c: (c.due_at, c.no))

    def find(self, number: str) -> Case | InformedNotice | None:
        return self.cases.get(number) or self.notices.get(number)

    # -- time ------------------------------------------------------------------------------
    def _midnight(self, day: date) -> float:
        return datetime.combine(day, datetime.min.time(), self._tz).timestamp()

    def due(self, now: float, days: int) -> tuple[str, float]:
        """The due day of a promise of ``days`` working days made at ``now`` (counted from the
        next working day), and the moment it ends."""
        due_day = self.calendar.add_working_days(datetime.fromtimestamp(now, self._tz).date(), days)
        return due_day.isoformat(), self._midnight(due_day + timedelta(days=1))

    def warn_at(self, case: Case) -> float:
        """``case_overdue`` fires (warning) when the due day begins with the case still open."""
        return self._midnight(date.fromisoformat(case.due_day))

    def _number(self, prefix: str, now: float) -> tuple[str, str]:
        day = datetime.fromtimestamp(now, self._tz).date()
        key = (prefix, day.isoformat())
        self._seq[key] = self._seq.get(key, 0) + 1
        return f"{prefix}{day:%Y%m%d}{self._seq[key]:03d}", day.isoformat()

    def next_deadline(self) -> float:
        while self._timers:
            when, number = self._timers[0]
            if self._scheduled.get(number) == when:
                return when
            heapq.heappop(self._timers)
        return math.inf

    def _schedule(self, when: float, number: str) -> None:
        self._scheduled[number] = when
        heapq.heappush(self._timers, (when, number))

    def _reschedule(self, case: Case) -> None:
        """The next moment the case's alert changes: its due day begins, or ends."""
        self._scheduled.pop(case.no, None)
        if not case.open:
            return
        alert = self._alert_of(case.no)
        if alert is None:
            self._schedule(self.warn_at(case), case.no)
        elif not alert.overdue:
            self._schedule(case.due_at, case.no)

    def tick(self, now: float) -> list[Command]:
        commands: list[Command] = []
        while self._timers and self._timers[0][0] <= now:
            when, number = heapq.heappop(self._timers)
            if self._scheduled.get(number) != when:
                continue
            del self._scheduled[number]
            case = self.cases.get(number)
            if case is not None and case.open:
                commands += self._evaluate(case, now)
        return commands

    def _alert_of(self, number: str) -> Alert | None:
        alert_id = self._alerts.get(number)
        return self._current_alert(alert_id) if alert_id else None

    def _evaluate(self, case: Case, now: float) -> list[Command]:
        commands: list[Command] = []
        alert = self._alert_of(case.no)
        if alert is None and now >= self.warn_at(case):
            fired = self._raise(
                K.CASE_OVERDUE,
                case.no,
                self.warn_at(case),
                window=case.window,
                staff=case.agent,
                due=case.due_at,
                detail=self._detail(case),
            )
            self._alerts[case.no] = fired.alert.id
            alert = fired.alert
            commands.append(fired)
        if alert is not None and not alert.overdue and now >= case.due_at:
            commands.append(self._change(alert.evolve(overdue=True, severity="critical", detail=self._detail(case))))
        self._reschedule(case)
        return commands

    @staticmethod
    def _detail(case: Case) -> dict[str, Any]:
        return {
            "case": case.no,
            "case_kind": case.kind.value,
            "service": case.service,
            "holder": case.agent,
            "passed_to": case.passed_to,
            "ticket": case.ticket,
            "opened_at": case.opened_at,
            "due_day": case.due_day,
        }

    # -- a visit ends ------------------------------------------------------------------------
    def plan(
        self,
        event: ev.ServiceFinish,
        ticket: Ticket,
        service: Service,
        *,
        staff: str | None,
        fallback: bool,
        now: float,
    ) -> Opening:
        """What finishing ``ticket`` with ``event`` opens, checked: raises ``Refused`` (and
        changes nothing) for fields that do not fit the outcome or the guide. ``fallback``: the
        visit ends at the 办不成事 window (or the site has none), so 办不成 opens a 兜底 case."""
        Out = ev.Outcome
        outcome = event.outcome
        if event.missing and outcome is not Out.INFORMED:
            raise Refused(ErrorCode.BAD_REQUEST, "missing 只用于一次性告知（informed）")
        if (event.passed_to or event.agent) and outcome is not Out.PROXY:
            raise Refused(ErrorCode.BAD_REQUEST, "passed_to 和 agent 只用于帮办代办（proxy）")
        if event.agent is not None and event.agent not in self._staff:
            raise Refused(ErrorCode.UNKNOWN_STAFF, event.agent)
        opening = Opening()
        # (a number taken with a phone keeps the citizen key of that phone: privacy.citizen_key)
        opening.citizen = event.citizen or ticket.phone
        guide = service.guide
        if outcome is Out.ACCEPTED:
            if guide.promise_working_days is not None:
                opening.kind, opening.days = CaseKind.PROMISED, guide.promise_working_days
            opening.flag = guide.item_type == "即办件"
        elif outcome is Out.PROXY:
            opening.kind = CaseKind.PROXY
            opening.days = self._proxy_days(service)
            opening.agent = event.agent or staff
            opening.passed_to = event.passed_to
        elif outcome is Out.FAILED and fallback:
            opening.kind = CaseKind.UNRESOLVED
            opening.days = guide.unresolved_reply_working_days or self.rules.unresolved_reply_working_days
        elif outcome is Out.INFORMED:
            opening.notice_missing = self._materials(event.missing, guide.materials)
        opening.matter, opening.previous = self._link(event.refer, service.code, opening.citizen, now)
        return opening

    def _proxy_days(self, service: Service) -> int:
        guide = service.guide
        return guide.proxy_working_days or guide.promise_working_days or self.rules.proxy_working_days

    @staticmethod
    def _materials(picked: Sequence[str | int], materials: Sequence[str]) -> tuple[str, ...]:
        """The guide's materials the panel picked, by number (1 = the first listed) or by name."""
        names: list[str] = []
        for item in picked:
            if isinstance(item, int):
                if not 1 <= item <= len(materials):
                    raise Refused(ErrorCode.BAD_REQUEST, f"申请材料第 {item} 项不存在（共 {len(materials)} 项）")
                name = materials[item - 1]
            elif item in materials:
                name = item
            else:
                raise Refused(ErrorCode.BAD_REQUEST, f"“{item}”不在办事指南的申请材料中")
            if name not in names:
                names.append(name)
        return tuple(names)

    def _link(self, refer: str | None, service: str, citizen: str | None, now: float) -> tuple[str | None, str | None]:
        """The matter a visit continues (see the module's doc), and that matter's latest notice."""
        matter: str | None = None
        if refer is not None:
            earlier = self.find(refer)
            if earlier is None:
                raise Refused(ErrorCode.UNKNOWN_CASE, refer)
            matter = earlier.matter or earlier.no
        elif citizen is not None:
            horizon = now - self.rules.same_matter_days * 86400.0
            told = [
                n for n in self.notices.values() if n.citizen == citizen and n.service == service and n.at >= horizon
            ]
            if told:
                latest = max(told, key=lambda n: n.at)
                matter = latest.matter or latest.no
        if matter is None:
            return None, None
        notices = [n for n in self.notices.values() if (n.matter or n.no) == matter]
        return matter, max(notices, key=lambda n: n.at).no if notices else None

    def open(
        self, opening: Opening, ticket: Ticket, *, window: str, staff: str | None, by: str, now: float
    ) -> tuple[Ticket, list[Command]]:
        """Carry out the plan: the case or notice it opens and the alerts it raises; returns the
        ticket with its links (case or notice number, matter) and the commands."""
        commands: list[Command] = []
        ticket = ticket.evolve(matter=opening.matter)
        common = dict(
            site=self.id,
            service=ticket.service,
            ticket=ticket.no,
            window=window,
            staff=staff,
            first_window=ticket.first_window,
            first_staff=ticket.first_staff,
            citizen=opening.citizen,
        )
        if opening.kind is not None:
            case = self._new_case(
                opening.kind,
                opening.days,
                now,
                matter=opening.matter,
                ticket_day=ticket.day,
                agent=opening.agent or staff,
                passed_to=opening.passed_to,
                **common,
            )
            ticket = ticket.evolve(case_no=case.no)
            commands.append(CaseChanged(site=self.id, case=case, action=CaseAction.OPENED, at=now, by=by))
        if opening.notice_missing is not None:
            number, day = self._number(NOTICE_PREFIX, now)
            notice = InformedNotice(
                no=number,
                at=now,
                day=day,
                missing=opening.notice_missing,
                matter=opening.matter or number,
                breach=opening.previous is not None,
                previous=opening.previous,
                **common,  # type: ignore[arg-type]
            )
            self.notices[number] = notice
            ticket = ticket.evolve(notice_no=number)
            commands.append(NoticeIssued(site=self.id, notice=notice))
            if notice.breach:
                commands.append(
                    self._raise(
                        K.NOTICE_REPEATED,
                        number,
                        now,
                        window=window,
                        staff=staff,
                        detail={
                            "notice": number,
                            "previous": notice.previous,
                            "matter": notice.matter,
                            "service": ticket.service,
                            "ticket": ticket.no,
                            "missing": list(notice.missing),
                        },
                    )
                )
        if opening.flag:
            commands.append(
                self._raise(
                    K.ON_THE_SPOT_DEFERRED,
                    f"{ticket.day}:{ticket.no}",
                    now,
                    window=window,
                    staff=staff,
                    detail={"ticket": ticket.no, "service": ticket.service, "case": ticket.case_no},
                )
            )
        return ticket, commands

    def _new_case(self, kind: CaseKind, days: int, now: float, *, matter: str | None, **fields: Any) -> Case:
        """A case numbered and due ``days`` working days from ``now``, kept with its due timer."""
        number, day = self._number(CASE_PREFIX, now)
        due_day, due_at = self.due(now, days)
        case = Case(
            no=number,
            kind=kind,
            opened_at=now,
            day=day,
            due_day=due_day,
            due_at=due_at,
            matter=matter or number,
            updated_at=now,
            **fields,
        )
        self.cases[number] = case
        self._reschedule(case)
        return case

    def open_without_ticket(
        self, event: ev.CaseOpen, service: Service, *, window: str, staff: str, now: float
    ) -> tuple[Case, list[Command]]:
        """帮办代办 taken on outside the queue (a 代办员's home visit, 上门办理): the staff member
        is its agent and its first contact (首问); due as any proxy case of the service."""
        matter, _ = self._link(None, service.code, event.citizen, now)
        case = self._new_case(
            CaseKind.PROXY,
            self._proxy_days(service),
            now,
            matter=matter,
            site=self.id,
            service=service.code,
            window=window,
            staff=staff,
            agent=staff,
            passed_to=(event.passed_to or "").strip() or None,
            first_window=window,
            first_staff=staff,
            citizen=event.citizen,
        )
        note = "；".join(part for part in (HOME_VISIT if event.home else "", event.note.strip()) if part)
        return case, [CaseChanged(site=self.id, case=case, action=CaseAction.OPENED, at=now, by=staff, note=note)]

    def fieldwork(self, number: str, *, staff: str, now: float) -> list[Command]:
        """The agent goes out for an open case (a pause for fieldwork): logged with who and when."""
        case = self.cases.get(number)
        if case is None:
            raise Refused(ErrorCode.UNKNOWN_CASE, number)
        if not case.open:
            raise Refused(ErrorCode.CASE_CLOSED, f"{case.no}（{case.status.value}）")
        case = case.evolve(updated_at=now)
        self.cases[number] = case
        return [CaseChanged(site=self.id, case=case, action=CaseAction.FIELDWORK, at=now, by=staff)]

    # -- the case's own events ----------------------------------------------------------------
    def update(self, event: ev.CaseEvent, by: str, now: float) -> list[Command]:
        case = self.cases.get(event.case)
        if case is None:
            raise Refused(ErrorCode.UNKNOWN_CASE, event.case)
        if not case.open:
            raise Refused(ErrorCode.CASE_CLOSED, f"{case.no}（{case.status.value}）")
        action, status = CASE_EVENTS[type(event)]
        note = event.note.strip()
        changes: dict[str, Any] = {"updated_at": now, "status": status}
        if isinstance(event, ev.CasePassOn):
            if not event.to.strip():
                raise Refused(ErrorCode.BAD_REQUEST, "须写明转往的部门或上级")
            changes["passed_to"] = event.to.strip()
        elif isinstance(event, ev.CaseComplete):
            if not event.result.strip():
                raise Refused(ErrorCode.BAD_REQUEST, "须写明办理结果")
            changes["result"] = event.result.strip()
        elif isinstance(event, ev.CaseNote | ev.CaseReturn) and not note:
            raise Refused(ErrorCode.BAD_REQUEST, "须写明进展或退回原因")
        if status is not CaseStatus.OPEN:
            changes.update(closed_at=now, closed_by=by)
            if not isinstance(event, ev.CaseComplete):
                changes["result"] = note or None
        case = case.evolve(**changes)
        self.cases[case.no] = case
        commands: list[Command] = [CaseChanged(site=self.id, case=case, action=action, at=now, by=by, note=note)]
        alert = self._alert_of(case.no)
        if not case.open:
            self._scheduled.pop(case.no, None)
            if alert is not None:
                commands.append(self._change(alert.evolve(state=AlertState.RESOLVED, until=now)))
                del self._alerts[case.no]
        return commands

    # -- restore -------------------------------------------------------------------------------
    def restore(
        self, *, cases: Sequence[Case], notices: Sequence[InformedNotice], alerts: Sequence[Alert], now: float
    ) -> None:
        """Open cases keep their alert and their next due timer (a timer already past runs at
        the next tick); recent ones and recent notices are kept for linking matters."""
        horizon = now - self.rules.same_matter_days * 86400.0
        for case in cases:
            if case.site == self.id and (case.open or case.opened_at >= horizon):
                self.cases[case.no] = case
        for notice in notices:
            if notice.site == self.id and notice.at >= horizon:
                self.notices[notice.no] = notice
        for alert in alerts:
            if alert.kind is K.CASE_OVERDUE and alert.open and alert.subject in self.cases:
                self._alerts[alert.subject] = alert.id
        for number in [*self.cases, *self.notices]:
            prefix, day = number[:1], number[1:9]
            key = (prefix, f"{day[:4]}-{day[4:6]}-{day[6:]}")
            self._seq[key] = max(self._seq.get(key, 0), int(number[9:]))
        for case in self.cases.values():
            self._reschedule(case)

    def forget_before(self, now: float) -> None:
        """Closed cases and notices older than ``same_matter_days`` (at the day roll)."""
        horizon = now - self.rules.same_matter_days * 86400.0
        self.cases = {n: c for n, c in self.cases.items() if c.open or c.opened_at >= horizon}
        self.notices = {n: x for n, x in self.notices.items() if x.at >= horizon}
