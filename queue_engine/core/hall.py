"""The hall state machine: one site's queue and windows.

``handle(event, now)`` either returns the commands that carry out the event or raises
``Refused`` having changed nothing: every check happens before the first mutation.
``now`` is seconds since the epoch, always passed in; the hall never reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from . import events as ev
from .alerts import Alert
from .calendar import OfficialCalendar, WorkingCalendar
from .capacity import RecentArrivals
from .cases import Case, CaseBook, InformedNotice
from .commands import (
    AnnounceCall,
    Command,
    QueueChanged,
    RatingRecorded,
    Reply,
    TicketChanged,
    TicketSlip,
    TicketTransition,
    WindowChanged,
)
from .errors import ErrorCode, Refused
from .lanes import Entry, Lane, earliest
from .model import FINAL_STATUSES, OPEN_PHASES, Staffing, Ticket, TicketStatus, WindowPhase, WindowState
from .supervision import Supervisor

if TYPE_CHECKING:  # the core reads the site model; it never loads files itself
    from ..config import Service, Site, Window

P = WindowPhase
T = TicketTransition
# 不满意 and 非常不满意: the scores a citizen may give reasons for (vocabulary.RATING_REASON).
BAD_SCORES = frozenset({1, 2})
# A window no longer paused: no reason, no start, no case it was out for.
NO_PAUSE: dict[str, Any] = {"pause_reason": None, "paused_at": None, "pause_case": None}

# The window transition table, in one place: for each panel event, the phases in which it
# is legal. Outside them the refusal is the phase's default, unless the event names a more
# precise one for that phase.
PHASE_REFUSAL: dict[WindowPhase, ErrorCode] = {
    P.CLOSED: ErrorCode.NOT_LOGGED_IN,
    P.IDLE: ErrorCode.NO_CURRENT_TICKET,
    P.CALLED: ErrorCode.BUSY,
    P.SERVING: ErrorCode.BUSY,
    P.PAUSED: ErrorCode.WINDOW_PAUSED,
}
WINDOW_TRANSITIONS: dict[type[ev.Event], tuple[frozenset[WindowPhase], dict[WindowPhase, ErrorCode]]] = {
    ev.StaffLogin: (frozenset({P.CLOSED, P.IDLE, P.PAUSED}), {}),
    ev.StaffLogout: (frozenset({P.IDLE, P.PAUSED}), {}),
    ev.WindowPause: (frozenset({P.IDLE}), {}),
    ev.WindowResume: (
        frozenset({P.PAUSED}),
        {P.IDLE: ErrorCode.NOT_PAUSED, P.CALLED: ErrorCode.NOT_PAUSED, P.SERVING: ErrorCode.NOT_PAUSED},
    ),
    ev.CallNext: (frozenset({P.IDLE}), {}),
    ev.CallPick: (frozenset({P.IDLE}), {}),
    ev.CallRecall: (frozenset({P.CALLED, P.SERVING}), {}),
    ev.CallSkip: (frozenset({P.CALLED}), {P.SERVING: ErrorCode.ALREADY_STARTED}),
    ev.ServiceStart: (frozenset({P.CALLED}), {P.SERVING: ErrorCode.ALREADY_STARTED}),
    ev.ServiceFinish: (frozenset({P.SERVING}), {P.CALLED: ErrorCode.NOT_STARTED}),
    ev.TicketTransfer: (frozenset({P.CALLED, P.SERVING}), {}),
    ev.CaseOpen: (frozenset({P.IDLE, P.PAUSED}), {}),
}


def check_transition(event: ev.Event, phase: WindowPhase) -> None:
    allowed, overrides = WINDOW_TRANSITIONS[type(event)]
    if phase not in allowed:
        raise Refused(overrides.get(phase, PHASE_REFUSAL[phase]))


@dataclass(frozen=True, slots=True)
class ServiceQueue:
    code: str
    name: str
    prefix: str
    waiting: int
    priority_waiting: int
    oldest_wait_s: float
    eta_min: int
    open_windows: int


@dataclass(frozen=True, slots=True)
class Position:
    ticket: Ticket
    ahead: int
    eta_min: int


class Hall:
    def __init__(self, site: Site, official: OfficialCalendar | None = None):
        self.site = site
        self.id = site.id
        self._tz = site.tz
        self._services = {s.code: s for s in site.services}
        self._windows_cfg = {w.id: w for w in site.windows}
        self._window_services = {w.id: site.window_services(w) for w in site.windows}
        self._windows_of_service = {
            code: frozenset(w for w, codes in self._window_services.items() if code in codes) for code in self._services
        }
        self._staff = {s.id: s for s in site.staff}
        self._device_window = {d.id: d.window for d in site.devices}
        self._spans = site.hours.spans()
        self._rules = site.queue
        self.tickets: dict[str, Ticket] = {}  # today's tickets by number
        self.windows: dict[str, WindowState] = {w: WindowState(site=self.id, window=w) for w in self._windows_cfg}
        self._normal = {code: Lane() for code in self._services}
        self._priority = {code: Lane() for code in self._services}
        self._directed_normal = {w: Lane() for w in self._windows_cfg}
        self._directed_priority = {w: Lane() for w in self._windows_cfg}
        self._reserved: dict[str, str] = {}  # check-in code -> reserved ticket's number
        self._next_expiry = math.inf  # when the earliest reservation expires
        self._sequence: dict[str, int] = {}  # prefix -> last number issued today
        self._issued = 0  # tickets issued today at this site: the next ticket's place
        self._service_time = {code: s.expected_service_min * 60.0 for code, s in self._services.items()}
        # Tickets issued per service in the last minutes: the arrival rate behind queue_surge.
        surge_span = site.supervision.surge_window_min * 60.0
        self._arrivals = {code: RecentArrivals(surge_span) for code in self._services}
        self.day = ""
        self._day_end = -math.inf
        self._issuing_hours = (math.inf, -math.inf)
        self._open_counts: dict[str, int] | None = None  # open windows per service, cached
        calendar = WorkingCalendar.of_site(official or OfficialCalendar(), site.calendar)
        self.supervisor = Supervisor(site, self, calendar)
        self.cases = CaseBook(
            site,
            calendar,
            raise_alert=self.supervisor.raise_alert,
            change_alert=self.supervisor.change_alert,
            current_alert=self.supervisor.alerts.get,
        )
        # 办不成事反映 windows: a visit that fails elsewhere is routed to one of them, unless it is
        # for the 办不成事 service itself (one they list): that is the 兜底 already, wherever served.
        self._fallback_windows = [w.id for w in site.windows if w.role == "fallback"]
        self._fallback_services = frozenset(c for w in site.windows if w.role == "fallback" for c in w.services)

    # -- restore (from the store's current-state tables) ---------------------------------
    def restore(
        self,
        *,
        now: float,
        tickets: list[Ticket],
        windows: list[WindowState],
        alerts: Sequence[Alert] = (),
        alert_seq: int = 0,
        transition_seq: int = 0,
        devices: Sequence[tuple[str, bool, str | None, float]] = (),
        totals: Sequence[tuple[str, str, str, str, float]] = (),
        cases: Sequence[Case] = (),
        notices: Sequence[InformedNotice] = (),
    ) -> list[Command]:
        """Load the current state after a restart, then bring it to ``now`` exactly as the
        day roll would have: returns the commands of that roll (expired tickets, windows
        released), which the caller stores like any others. Sequences, lanes and the
        service-time estimates follow from the tickets, so they cannot disagree with them."""
        for window in windows:
            if window.window in self.windows and window.site == self.id:
                self.windows[window.window] = window
        today = self.local(now).date().isoformat()
        mine = [t for t in tickets if t.site == self.id]
        commands: list[Command] = [
            TicketChanged(site=self.id, ticket=t.evolve(status=TicketStatus.EXPIRED), transition=T.EXPIRED)
            for t in mine
            if t.day != today and t.status not in FINAL_STATUSES
        ]
        self.tickets = {t.no: t for t in mine if t.day == today}
        self.supervisor.restore(
            alerts=[a for a in alerts if a.site == self.id],
            alert_seq=alert_seq,
            transition_seq=transition_seq,
            devices=devices,
            totals=totals,
            now=now,
        )
        self.cases.restore(cases=cases, notices=notices, alerts=list(self.supervisor.alerts.values()), now=now)
        self._day_end = -math.inf
        commands += self._roll_day(now)
        done = sorted(
            (t for t in self.tickets.values() if t.status is TicketStatus.DONE and t.started_at),
            key=lambda t: t.finished_at or 0.0,
        )
        for ticket in done:
            self._learn_service_time(ticket)
        return commands

    # -- time ------------------------------------------------------------------------------
    def local(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, self._tz)

    def _midnight_after(self, day: date) -> float:
        return datetime.combine(day + timedelta(days=1), datetime.min.time(), self._tz).timestamp()

    @property
    def day_ends_at(self) -> float:
        """Local midnight: when numbering restarts."""
        return self._day_end

    def next_deadline(self) -> float:
        """When ``tick`` has something to do; a new hall is due at once."""
        return min(self._day_end, self._next_expiry, self.supervisor.next_deadline(), self.cases.next_deadline())

    def tick(self, now: float) -> list[Command]:
        return self._roll_day(now) + self._expire_reservations(now) + self.supervisor.tick(now) + self.cases.tick(now)

    def _expire_reservations(self, now: float) -> list[Command]:
        """Reservations not checked in by their time: a no-show of the phone that took them."""
        if now < self._next_expiry:
            return []
        commands: list[Command] = []
        for code, number in list(self._reserved.items()):
            ticket = self.tickets[number]
            if ticket.reservation_expires_at is not None and ticket.reservation_expires_at <= now:
                del self._reserved[code]
                ticket = ticket.evolve(status=TicketStatus.NO_SHOW, finished_at=now)
                self.tickets[number] = ticket
                commands.append(TicketChanged(site=self.id, ticket=ticket, transition=T.NO_SHOW))
        self._reschedule_expiry()
        return commands

    def _reschedule_expiry(self) -> None:
        self._next_expiry = min(
            (self.tickets[n].reservation_expires_at or math.inf for n in self._reserved.values()), default=math.inf
        )

    def _roll_day(self, now: float) -> list[Command]:
        """At local midnight numbering restarts; what still waits or is still being called
        expires, and every window is released from its ticket (the login carries over)."""
        if now < self._day_end:
            return []
        today = self.local(now).date()
        self.day = today.isoformat()
        self._day_end = self._midnight_after(today)
        self._issuing_hours = self._hours_of(today)
        commands: list[Command] = []
        for ticket in self.tickets.values():
            if ticket.day != self.day and ticket.status not in FINAL_STATUSES:
                commands.append(
                    TicketChanged(site=self.id, ticket=ticket.evolve(status=TicketStatus.EXPIRED), transition=T.EXPIRED)
                )
        self.tickets = {t.no: t for t in self.tickets.values() if t.day == self.day}
        for window_id, window in self.windows.items():
            if window.day != self.day:
                phase = window.phase if window.phase not in (P.CALLED, P.SERVING) else P.IDLE
                window = window.evolve(
                    day=self.day,
                    served_today=0,
                    priority_streak=0,
                    ticket=None,
                    phase=phase,
                    last_served_ticket=None,
                    last_served_staff=None,
                )
                self.windows[window_id] = window
                commands.append(WindowChanged(site=self.id, window=window))
        self._rebuild_indexes()
        self.cases.forget_before(now)
        if commands:
            commands.append(QueueChanged(site=self.id))
        return commands + self.supervisor.start_day(today, now)

    def _rebuild_indexes(self) -> None:
        """Lanes, sequences and the issue counter, from the tickets of the day."""
        self._open_counts = None
        for lane in (
            *self._normal.values(),
            *self._priority.values(),
            *self._directed_normal.values(),
            *self._directed_priority.values(),
        ):
            lane.clear()
        self._sequence.clear()
        self._reserved.clear()
        self._issued = 0
        for arrivals in self._arrivals.values():
            arrivals.clear()
        for ticket in sorted(self.tickets.values(), key=lambda t: t.issued_at):
            if ticket.service in self._arrivals:
                self._arrivals[ticket.service].add(ticket.issued_at)
        for ticket in self.tickets.values():
            prefix = ticket.no.rstrip("0123456789")  # the prefix at issue, kept across transfers
            self._sequence[prefix] = max(self._sequence.get(prefix, 0), ticket.seq)
            self._issued = max(self._issued, ticket.place)
            if ticket.status is TicketStatus.WAITING:
                self._enqueue(ticket)
            elif ticket.status is TicketStatus.RESERVED and ticket.check_in_code is not None:
                self._reserved[ticket.check_in_code] = ticket.no
        self._reschedule_expiry()

    def issuing_open(self, now: float) -> bool:
        if self._rules.issue_outside_hours:
            return True
        opens, closes = self._issuing_hours
        return opens <= now < closes

    def _hours_of(self, day: date) -> tuple[float, float]:
        """When tickets may be taken on a day: from before the first period to the last close."""
        first_open = datetime.combine(day, self._spans[0][0], self._tz)
        opens = first_open - timedelta(minutes=self.site.hours.issue_before_open_min)
        closes = datetime.combine(day, self._spans[-1][1], self._tz)
        return opens.timestamp(), closes.timestamp()

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, event: ev.Event, now: float) -> list[Command]:
        """Apply an event. First does what ``tick(now)`` would (the day roll, if due); if
        the event is then refused, ``Refused.pending`` carries that roll's commands, and
        nothing else has changed."""
        commands = self._roll_day(now)
        try:
            return commands + self._apply(event, now)
        except Refused as refusal:
            refusal.pending = commands
            raise

    def _apply(self, event: ev.Event, now: float) -> list[Command]:
        commands = self._dispatch(event, now)
        # Supervision follows every change of a window or of a waiting line.
        windows, services = set(), set()
        for command in commands:
            if isinstance(command, WindowChanged):
                windows.add(command.window.window)
            elif isinstance(command, TicketChanged):
                services.add(command.ticket.service)
        for window_id in windows:
            commands += self.supervisor.evaluate_window(window_id, now, republished=True)
            commands += self.supervisor.window_capacity(window_id, now)
        for service in services:
            commands += self.supervisor.evaluate_service(service, now)
        return commands

    def _dispatch(self, event: ev.Event, now: float) -> list[Command]:
        handler = self._HANDLERS.get(type(event))
        if handler is None:
            raise Refused(ErrorCode.BAD_REQUEST, f"unsupported event {type(event).__name__}")
        if type(event) in WINDOW_TRANSITIONS:
            window_id = self._device_window.get(event.device)
            if window_id is None:
                raise Refused(ErrorCode.NOT_ALLOWED, "该设备不属于任何窗口")
            check_transition(event, self.windows[window_id].phase)
            return handler(self, event, now, window_id)
        return handler(self, event, now)

    # -- kiosk -----------------------------------------------------------------------------
    def _ticket_request(self, event: ev.TicketRequest, now: float) -> list[Command]:
        service = self._services.get(event.service)
        if service is None:
            raise Refused(ErrorCode.UNKNOWN_SERVICE, event.service)
        if not self.issuing_open(now):
            raise Refused(ErrorCode.SERVICE_CLOSED)
        seq = self._sequence.get(service.prefix, 0) + 1
        no = f"{service.prefix}{seq:03d}"
        # With a phone: reserved until checked in at the hall, and the green channel only asked for.
        remote = event.phone is not None
        reserve_s = self.site.web.reservation_min * 60.0 if remote else 0.0
        code = self._check_in_code(no, now) if reserve_s else None
        claim = event.priority if remote else None
        ticket = Ticket(
            site=self.id,
            day=self.day,
            no=no,
            service=service.code,
            seq=seq,
            issued_at=now,
            place=self._issued + 1,
            priority=None if remote else event.priority,
            appointment=event.appointment,
            issued_by=event.device,
            phone=event.phone,
            phone_tail=event.phone_tail,
            status=TicketStatus.RESERVED if code else TicketStatus.WAITING,
            reservation_expires_at=now + reserve_s if code else None,
            check_in_code=code,
            priority_claim=claim,
            priority_check="pending" if claim else None,
        )
        self._sequence[service.prefix] = seq
        self._issued += 1
        self.tickets[no] = ticket
        self._arrivals[service.code].add(now)
        if code is None:
            self._enqueue(ticket)
        else:
            self._reserved[code] = no
            self._reschedule_expiry()
        return self._slip(event, ticket, T.ISSUED) + ([] if remote else self.supervisor.issued(event.device, now))

    def _slip(self, event: ev.Event, ticket: Ticket, transition: TicketTransition) -> list[Command]:
        """A ticket issued or checked in: the change, and the reply that carries its slip (the
        people ahead of it and the wait, as if it were queued)."""
        ahead = self._ahead_in_service(ticket)
        slip = TicketSlip(
            no=ticket.no,
            day=ticket.day,
            service=ticket.service,
            issued_at=ticket.issued_at,
            ahead=ahead,
            eta_min=self._eta_min(ticket.service, ahead),
        )
        return [
            TicketChanged(site=self.id, ticket=ticket, transition=transition),
            QueueChanged(site=self.id),
            Reply(site=self.id, device=event.device, re=event.id, ok=True, ticket=slip),
        ]

    def _check_in_code(self, no: str, now: float) -> str:
        """Six digits to type at a kiosk, unique among the open reservations. Derived from the
        ticket and its moment (the core draws nothing at random): nobody can tell another's
        code from its number, and a code checks in nothing once its ticket is checked in or gone."""
        for attempt in range(1000):
            digest = blake2b(f"{self.id}|{self.day}|{no}|{now!r}|{attempt}".encode(), digest_size=8).digest()
            code = f"{int.from_bytes(digest, 'big') % 1_000_000:06d}"
            if code not in self._reserved:
                return code
        raise Refused(ErrorCode.BAD_REQUEST, "签到码已用尽")  # (a million reservations in one day)

    def _check_in(self, event: ev.TicketCheckIn, now: float) -> list[Command]:
        number = self._reserved.get(event.code)
        if number is None:
            raise Refused(ErrorCode.UNKNOWN_RESERVATION, event.code)
        del self._reserved[event.code]
        self._reschedule_expiry()
        ticket = self.tickets[number].evolve(status=TicketStatus.WAITING, checked_in_at=now)
        self.tickets[number] = ticket
        self._enqueue(ticket)
        return self._slip(event, ticket, T.CHECKED_IN)

    def _priority_verify(self, event: ev.PriorityVerify, now: float) -> list[Command]:
        """A window's staff member has seen the citizen: the green channel asked for with a
        phone is granted (the ticket moves to the priority lane, at its place) or refused."""
        window_id = self._device_window.get(event.device)
        staff = self.windows[window_id].staff if window_id is not None else None
        if staff is None:
            raise Refused(ErrorCode.NOT_LOGGED_IN)
        ticket = self.tickets.get(event.ticket.upper())
        if ticket is None or ticket.priority_check != "pending" or ticket.status in FINAL_STATUSES:
            raise Refused(ErrorCode.NO_PRIORITY_CLAIM, event.ticket)
        queued = ticket.status is TicketStatus.WAITING
        if queued:
            self._dequeue(ticket)
        ticket = ticket.evolve(
            priority=ticket.priority_claim if event.confirm else None,
            priority_check="confirmed" if event.confirm else "refused",
            priority_checked_by=staff,
            priority_checked_at=now,
        )
        self.tickets[ticket.no] = ticket
        if queued:
            self._enqueue(ticket)
        return [
            TicketChanged(site=self.id, ticket=ticket, transition=T.PRIORITY_CHECKED),
            QueueChanged(site=self.id),
            Reply(site=self.id, device=event.device, re=event.id, ok=True, ticket=ticket.no),
        ]

    # -- panel -----------------------------------------------------------------------------
    def _login(self, event: ev.StaffLogin, now: float, window_id: str) -> list[Command]:
        if event.staff not in self._staff:
            raise Refused(ErrorCode.UNKNOWN_STAFF, event.staff)
        elsewhere = [w for w in self.windows.values() if w.staff == event.staff and w.window != window_id]
        for other in elsewhere:
            if other.phase in (P.CALLED, P.SERVING):
                raise Refused(ErrorCode.BUSY, f"该工作人员在{self._windows_cfg[other.window].name}仍有在办的号")
        commands: list[Command] = []
        for other in elsewhere:
            commands.append(self._set_window(other.evolve(phase=P.CLOSED, staff=None, logged_in_at=None, **NO_PAUSE)))
        window = self.windows[window_id]
        commands.append(self._set_window(window.evolve(phase=P.IDLE, staff=event.staff, logged_in_at=now, **NO_PAUSE)))
        return commands + [self._ok(event)]

    def _logout(self, event: ev.StaffLogout, now: float, window_id: str) -> list[Command]:
        window = self.windows[window_id]
        return [
            self._set_window(
                window.evolve(
                    phase=P.CLOSED,
                    staff=None,
                    logged_in_at=None,
                    **NO_PAUSE,
                    priority_streak=0,
                )
            ),
            self._ok(event),
        ]

    def _pause(self, event: ev.WindowPause, now: float, window_id: str) -> list[Command]:
        window = self.windows[window_id]
        commands: list[Command] = []
        if event.case is not None:  # out for a case: logged in it, and no pause overrun
            if event.reason is not ev.PauseReason.FIELDWORK:
                raise Refused(ErrorCode.BAD_REQUEST, "只有外勤（fieldwork）暂停可以关联办件")
            assert window.staff is not None  # (a pause needs the window open)
            commands += self.cases.fieldwork(event.case, staff=window.staff, now=now)
        return [
            *commands,
            self._set_window(
                window.evolve(phase=P.PAUSED, pause_reason=event.reason, paused_at=now, pause_case=event.case)
            ),
            self._ok(event),
        ]

    def _resume(self, event: ev.WindowResume, now: float, window_id: str) -> list[Command]:
        window = self.windows[window_id]
        return [
            self._set_window(window.evolve(phase=P.IDLE, **NO_PAUSE)),
            self._ok(event),
        ]

    def _call_next(self, event: ev.CallNext, now: float, window_id: str) -> list[Command]:
        entry = self._choose_next(window_id)
        if entry is None:
            raise Refused(ErrorCode.QUEUE_EMPTY)
        return self._call(event, now, window_id, self.tickets[entry[1]])

    def _call_pick(self, event: ev.CallPick, now: float, window_id: str) -> list[Command]:
        ticket = self.tickets.get(event.ticket)
        # A waiting ticket, or a no-show of today whose citizen turned up late (过号重呼); not a
        # reservation that expired unchecked (nobody was ever at the hall for it).
        if (
            ticket is None
            or ticket.status not in (TicketStatus.WAITING, TicketStatus.NO_SHOW)
            or (ticket.check_in_code is not None and ticket.checked_in_at is None)
        ):
            raise Refused(ErrorCode.UNKNOWN_TICKET, event.ticket)
        if not self._may_serve(window_id, ticket):
            raise Refused(ErrorCode.NOT_ALLOWED, f"{ticket.no}（{self._services[ticket.service].name}）")
        return self._call(event, now, window_id, ticket)

    def _call(self, event: ev.Event, now: float, window_id: str, ticket: Ticket) -> list[Command]:
        window = self.windows[window_id]
        if ticket.status is TicketStatus.WAITING:
            self._dequeue(ticket)
        streak = window.priority_streak + 1 if ticket.is_priority else 0
        ticket = ticket.evolve(
            status=TicketStatus.CALLED,
            window=window_id,
            staff=window.staff,
            called_at=now,
            calls=ticket.calls + 1,
            finished_at=None,
            first_called_at=ticket.first_called_at or now,
            # 首问: the first window keeps the visit, whoever calls it later
            first_window=ticket.first_window or window_id,
            first_staff=ticket.first_staff if ticket.first_window else window.staff,
        )
        self.tickets[ticket.no] = ticket
        window = window.evolve(phase=P.CALLED, ticket=ticket.no, priority_streak=streak)
        return [
            TicketChanged(site=self.id, ticket=ticket, transition=T.CALLED),
            self._set_window(window),
            QueueChanged(site=self.id),
            self._announce(ticket, window_id, now, recall=False),
            Reply(site=self.id, device=event.device, re=event.id, ok=True, ticket=ticket.no),
        ]

    def _recall(self, event: ev.CallRecall, now: float, window_id: str) -> list[Command]:
        ticket = self._current(window_id).evolve(calls=self._current(window_id).calls + 1)
        self.tickets[ticket.no] = ticket
        return [
            TicketChanged(site=self.id, ticket=ticket, transition=T.RECALLED),
            self._announce(ticket, window_id, now, recall=True),
            Reply(site=self.id, device=event.device, re=event.id, ok=True, ticket=ticket.no),
        ]

    def _skip(self, event: ev.CallSkip, now: float, window_id: str) -> list[Command]:
        ticket = self._current(window_id).evolve(status=TicketStatus.NO_SHOW, finished_at=now)
        return self._release(event, window_id, ticket, T.NO_SHOW)

    def _start(self, event: ev.ServiceStart, now: float, window_id: str) -> list[Command]:
        ticket = self._current(window_id).evolve(
            status=TicketStatus.SERVING, started_at=now, staff=self.windows[window_id].staff
        )
        self.tickets[ticket.no] = ticket
        window = self.windows[window_id].evolve(phase=P.SERVING)
        return [
            TicketChanged(site=self.id, ticket=ticket, transition=T.STARTED),
            self._set_window(window),
            Reply(site=self.id, device=event.device, re=event.id, ok=True, ticket=ticket.no),
        ]

    def _finish(self, event: ev.ServiceFinish, now: float, window_id: str) -> list[Command]:
        current = self._current(window_id)
        window = self.windows[window_id]
        fallback = self._fallback_for(window_id) if current.service not in self._fallback_services else None
        routed = event.outcome is ev.Outcome.FAILED and fallback is not None
        # (checked before anything changes: fields that do not fit the outcome are refused)
        opening = self.cases.plan(
            event, current, self._services[current.service], staff=window.staff, fallback=not routed, now=now
        )
        if fallback is not None and routed:
            # 办不成: the citizen goes on to the 办不成事 window, keeping the place in the queue.
            ticket = current.evolve(
                status=TicketStatus.WAITING,
                directed_window=fallback,
                transfers=current.transfers + 1,
                started_at=None,
                called_at=None,
                matter=opening.matter,
            )
            commands = self._release(event, window_id, ticket, T.TRANSFERRED, routed_to=fallback)
            self._enqueue(ticket)
            return commands
        ticket = current.evolve(status=TicketStatus.DONE, finished_at=now, outcome=event.outcome)
        ticket, opened = self.cases.open(
            opening, ticket, window=window_id, staff=window.staff, by=window.staff or event.device, now=now
        )
        self._learn_service_time(ticket)
        self.windows[window_id] = window.evolve(
            served_today=window.served_today + 1, last_served_ticket=ticket.no, last_served_staff=window.staff
        )
        return opened + self._release(event, window_id, ticket, T.FINISHED)

    def _fallback_for(self, window_id: str) -> str | None:
        """Where a visit that fails at this window goes on to: a 办不成事 window (an open one if
        any is), unless this is one, or the site has none (the visit then ends here)."""
        if window_id in self._fallback_windows or not self._fallback_windows:
            return None
        open_now = [w for w in self._fallback_windows if self.windows[w].phase in OPEN_PHASES]
        return (open_now or self._fallback_windows)[0]

    def _transfer(self, event: ev.TicketTransfer, now: float, window_id: str) -> list[Command]:
        current = self._current(window_id)
        if event.to_service is None and event.to_window is None:
            raise Refused(ErrorCode.BAD_REQUEST, "需要 to_service 或 to_window")
        service = event.to_service or current.service
        if service not in self._services:
            raise Refused(ErrorCode.UNKNOWN_SERVICE, service)
        if event.to_window is not None:
            target = self._windows_cfg.get(event.to_window)
            if target is None:
                raise Refused(ErrorCode.UNKNOWN_WINDOW, event.to_window)
            if target.role != "fallback" and service not in self._window_services[target.id]:
                raise Refused(ErrorCode.NOT_ALLOWED, f"{target.name}不办理{self._services[service].name}")
            if target.id == window_id:
                raise Refused(ErrorCode.BAD_REQUEST, "不能转给本窗口")
        elif service == current.service:
            raise Refused(ErrorCode.BAD_REQUEST, "转移目标与当前业务相同")
        ticket = current.evolve(
            status=TicketStatus.WAITING,
            service=service,
            directed_window=event.to_window,
            transfers=current.transfers + 1,
            started_at=None,
            called_at=None,
        )
        commands = self._release(event, window_id, ticket, T.TRANSFERRED)
        self._enqueue(ticket)
        return commands

    def _learn_service_time(self, ticket: Ticket) -> None:
        """Moving average of service times per service, behind the wait estimates."""
        if ticket.started_at is None or ticket.finished_at is None or ticket.service not in self._service_time:
            return
        alpha = self._rules.service_time_smoothing
        previous = self._service_time[ticket.service]
        self._service_time[ticket.service] = (1 - alpha) * previous + alpha * (ticket.finished_at - ticket.started_at)

    def _release(
        self,
        event: ev.Event,
        window_id: str,
        ticket: Ticket,
        transition: TicketTransition,
        *,
        routed_to: str | None = None,
    ) -> list[Command]:
        """The window is done with its current ticket (finished, no-show or transferred)."""
        self.tickets[ticket.no] = ticket
        window = self.windows[window_id].evolve(phase=P.IDLE, ticket=None)
        finished = transition is T.FINISHED
        # (what the visit opened, for the panel's case slip or 一次性告知书)
        opened = self.cases.cases.get(ticket.case_no) if finished and ticket.case_no else None
        notice = self.cases.notices.get(ticket.notice_no) if finished and ticket.notice_no else None
        return [
            TicketChanged(site=self.id, ticket=ticket, transition=transition),
            self._set_window(window),
            QueueChanged(site=self.id),
            Reply(
                site=self.id,
                device=event.device,
                re=event.id,
                ok=True,
                ticket=ticket.no,
                case=opened.no if opened is not None else None,
                due_day=opened.due_day if opened is not None else None,
                service=opened.service if opened is not None else notice.service if notice is not None else None,
                notice=notice.no if notice is not None else None,
                missing=notice.missing if notice is not None else None,
                routed_to=routed_to,
            ),
        ]

    # -- cases (办件) ---------------------------------------------------------------------------
    def _case_event(self, event: ev.CaseEvent, now: float) -> list[Command]:
        """From a panel (its window's staff member acts, so one must be logged in) or from an
        operator through the web (``device`` names the operator)."""
        window_id = self._device_window.get(event.device)
        by = self.windows[window_id].staff if window_id is not None else event.device
        if by is None:
            raise Refused(ErrorCode.NOT_LOGGED_IN)
        return self.cases.update(event, by, now) + [
            Reply(site=self.id, device=event.device, re=event.id, ok=True, case=event.case)
        ]

    def _case_open(self, event: ev.CaseOpen, now: float, window_id: str) -> list[Command]:
        service = self._services.get(event.service)
        if service is None:
            raise Refused(ErrorCode.UNKNOWN_SERVICE, event.service)
        staff = self.windows[window_id].staff
        assert staff is not None  # (the transition table: the window is open)
        case, commands = self.cases.open_without_ticket(event, service, window=window_id, staff=staff, now=now)
        return [
            *commands,
            Reply(
                site=self.id,
                device=event.device,
                re=event.id,
                ok=True,
                case=case.no,
                due_day=case.due_day,
                service=case.service,
            ),
        ]

    # -- camera, pad, liveness ---------------------------------------------------------------
    def _presence(self, event: ev.Presence, now: float) -> list[Command]:
        window = self.windows.get(event.window)
        if window is None:
            raise Refused(ErrorCode.UNKNOWN_WINDOW, event.window)
        if window.present is event.present:
            return []
        return [self._set_window(window.evolve(present=event.present))]

    def _tamper(self, event: ev.Tamper, now: float) -> list[Command]:
        return self.supervisor.tamper(event.device, event.kind, now)

    def _rating(self, event: ev.Rating, now: float) -> list[Command]:
        window = self.windows.get(event.window)
        if window is None:
            raise Refused(ErrorCode.UNKNOWN_WINDOW, event.window)
        number = event.ticket or window.last_served_ticket
        if number is None:
            raise Refused(ErrorCode.NOTHING_TO_RATE)
        ticket = self.tickets.get(number)
        if ticket is None or ticket.status is not TicketStatus.DONE or ticket.window != event.window:
            raise Refused(ErrorCode.UNKNOWN_TICKET, number)
        if ticket.rating is not None:
            raise Refused(ErrorCode.ALREADY_RATED, number)
        if event.reasons and event.score not in BAD_SCORES:
            raise Refused(ErrorCode.BAD_REQUEST, "只有“不满意”“非常不满意”可以选择原因")
        ticket = ticket.evolve(rating=event.score)
        self.tickets[number] = ticket
        return [
            TicketChanged(site=self.id, ticket=ticket, transition=T.RATED),
            RatingRecorded(
                site=self.id,
                window=event.window,
                device=event.device,
                score=event.score,
                at=now,
                ticket=number,
                staff=ticket.staff,
                reasons=tuple(r.value for r in event.reasons),
                comment=event.comment,
            ),
            *self.supervisor.rating(
                ticket=number,
                window=event.window,
                staff=ticket.staff,
                score=event.score,
                device=event.device,
                now=now,
                reasons=tuple(r.value for r in event.reasons),
                comment=event.comment,
            ),
            Reply(site=self.id, device=event.device, re=event.id, ok=True, ticket=number),
        ]

    def _status(self, event: ev.DeviceStatus, now: float) -> list[Command]:
        return self.supervisor.device_status(event.device, event.online, event.reason, now)

    def _heartbeat(self, event: ev.Heartbeat, now: float) -> list[Command]:
        return self.supervisor.heartbeat(event.device, event.video_ok, now)

    def _refusal(self, event: ev.Refusal, now: float) -> list[Command]:
        return self.supervisor.refused(event.device, event.code, now)

    def _engine_link(self, event: ev.EngineLink, now: float) -> list[Command]:
        return self.supervisor.engine_link(event.up, event.session_lost, now)

    def _engine_stalled(self, event: ev.EngineStalled, now: float) -> list[Command]:
        return self.supervisor.engine_stalled(event.since, now)

    def _acknowledge(self, event: ev.Acknowledge, now: float) -> list[Command]:
        return self.supervisor.acknowledge(event.alert, event.device, event.note, now) + [self._ok(event)]

    _HANDLERS: dict[type[ev.Event], Callable[..., list[Command]]] = {
        ev.TicketRequest: _ticket_request,
        ev.TicketCheckIn: _check_in,
        ev.PriorityVerify: _priority_verify,
        ev.StaffLogin: _login,
        ev.StaffLogout: _logout,
        ev.WindowPause: _pause,
        ev.WindowResume: _resume,
        ev.CallNext: _call_next,
        ev.CallPick: _call_pick,
        ev.CallRecall: _recall,
        ev.CallSkip: _skip,
        ev.ServiceStart: _start,
        ev.ServiceFinish: _finish,
        ev.TicketTransfer: _transfer,
        **dict.fromkeys(ev.CASE_EVENTS, _case_event),
        ev.CaseOpen: _case_open,
        ev.Presence: _presence,
        ev.Tamper: _tamper,
        ev.Rating: _rating,
        ev.DeviceStatus: _status,
        ev.Heartbeat: _heartbeat,
        ev.Refusal: _refusal,
        ev.Acknowledge: _acknowledge,
        ev.EngineLink: _engine_link,
        ev.EngineStalled: _engine_stalled,
    }

    # -- routing -----------------------------------------------------------------------------
    def _choose_next(self, window_id: str) -> Entry | None:
        """Green channel first, but at most ``priority_cap`` in a row while a normal ticket
        waits; within a class, the ticket with the earliest place among the services this
        window serves (and the tickets transferred to this window)."""
        codes = self._window_services[window_id]
        priority = earliest([self._priority[c] for c in codes] + [self._directed_priority[window_id]])
        normal = earliest([self._normal[c] for c in codes] + [self._directed_normal[window_id]])
        if priority is not None and (
            normal is None or self.windows[window_id].priority_streak < self._rules.priority_cap
        ):
            return priority
        return normal

    def _may_serve(self, window_id: str, ticket: Ticket) -> bool:
        if ticket.directed_window is not None:
            return ticket.directed_window == window_id
        return ticket.service in self._window_services[window_id]

    def _lane(self, ticket: Ticket) -> Lane:
        if ticket.directed_window is not None:
            lanes = self._directed_priority if ticket.is_priority else self._directed_normal
            return lanes[ticket.directed_window]
        return (self._priority if ticket.is_priority else self._normal)[ticket.service]

    def _enqueue(self, ticket: Ticket) -> None:
        self._lane(ticket).add(ticket)

    def _dequeue(self, ticket: Ticket) -> None:
        self._lane(ticket).remove(ticket)

    # -- estimates -----------------------------------------------------------------------------
    def _ahead_in_service(self, ticket: Ticket) -> int:
        """Tickets of the same service that will be called before this one."""
        priority = self._priority[ticket.service]
        if ticket.is_priority:
            return priority.ahead_of(ticket)
        return len(priority) + self._normal[ticket.service].ahead_of(ticket)

    def _open_windows(self, service: str) -> int:
        if self._open_counts is None:
            open_now = {w for w, state in self.windows.items() if state.phase in OPEN_PHASES}
            self._open_counts = {code: len(windows & open_now) for code, windows in self._windows_of_service.items()}
        return self._open_counts[service]

    def open_windows(self, service: str) -> int:
        """Windows open now (staff logged in, not paused) that serve this service."""
        return self._open_windows(service)

    def waiting(self, service: str) -> int:
        """Tickets of this service waiting to be called (not those transferred to a window)."""
        return len(self._normal[service]) + len(self._priority[service])

    def services_of_window(self, window_id: str) -> frozenset[str]:
        return self._window_services[window_id]

    def mean_service_s(self, service: str) -> float:
        """The moving average of the service's service times, in seconds."""
        return self._service_time[service]

    def recent_arrivals(self, service: str) -> RecentArrivals:
        """The tickets of this service issued in the last ``surge_window_min`` minutes."""
        return self._arrivals[service]

    def _eta_min(self, service: str, ahead: int) -> int:
        servers = max(1, self._open_windows(service))
        return math.ceil(ahead * self._service_time[service] / servers / 60.0)

    def position(self, number: str) -> Position | None:
        ticket = self.tickets.get(number)
        if ticket is None:
            return None
        if ticket.status not in (TicketStatus.WAITING, TicketStatus.RESERVED):
            return Position(ticket=ticket, ahead=0, eta_min=0)
        if ticket.directed_window is not None:
            ahead = self._lane(ticket).ahead_of(ticket)
        else:
            ahead = self._ahead_in_service(ticket)
        return Position(ticket=ticket, ahead=ahead, eta_min=self._eta_min(ticket.service, ahead))

    def queue_view(self, now: float) -> list[ServiceQueue]:
        view = []
        for code, service in self._services.items():
            normal, priority = self._normal[code], self._priority[code]
            heads = [h for h in (normal.head(), priority.head()) if h is not None]
            oldest = self.tickets[min(heads)[1]].issued_at if heads else None
            waiting = len(normal) + len(priority)
            view.append(
                ServiceQueue(
                    code=code,
                    name=service.name,
                    prefix=service.prefix,
                    waiting=waiting,
                    priority_waiting=len(priority),
                    oldest_wait_s=max(0.0, now - oldest) if oldest is not None else 0.0,
                    eta_min=self._eta_min(code, waiting),
                    open_windows=self._open_windows(code),
                )
            )
        return view

    def waiting_directed(self) -> int:
        return sum(len(lane) for lane in (*self._directed_normal.values(), *self._directed_priority.values()))

    # -- helpers -------------------------------------------------------------------------------
    def _current(self, window_id: str) -> Ticket:
        number = self.windows[window_id].ticket
        assert number is not None  # (checked by the transition table: the window has a ticket)
        return self.tickets[number]

    def _set_window(self, window: WindowState) -> WindowChanged:
        if window.phase is not self.windows[window.window].phase:
            self._open_counts = None
        self.windows[window.window] = window
        return WindowChanged(site=self.id, window=window)

    def _announce(self, ticket: Ticket, window_id: str, now: float, *, recall: bool) -> AnnounceCall:
        return AnnounceCall(
            site=self.id,
            ticket=ticket.no,
            window=window_id,
            window_name=self._windows_cfg[window_id].name,
            at=now,
            recall=recall,
            n=ticket.calls,
        )

    def _ok(self, event: ev.Event) -> Reply:
        return Reply(site=self.id, device=event.device, re=event.id, ok=True)

    def window_config(self, window_id: str) -> Window:
        return self._windows_cfg[window_id]

    def service_config(self, code: str) -> Service:
        return self._services[code]

    def service_codes(self) -> list[str]:
        return list(self._services)

    def oldest_waiting(self, service: str) -> Ticket | None:
        heads = [h for h in (self._normal[service].head(), self._priority[service].head()) if h is not None]
        return self.tickets[min(heads)[1]] if heads else None

    def window_changed(self, window_id: str) -> WindowChanged:
        """Republish a window whose staffing view changed without its own state changing."""
        return WindowChanged(site=self.id, window=self.windows[window_id])

    def staffing(self, window_id: str, now: float) -> Staffing:
        return self.supervisor.staffing(window_id, now)

    def window_name(self, window_id: str) -> str:
        return self._windows_cfg[window_id].name

    def staff_name(self, staff_id: str | None) -> str | None:
        staff = self._staff.get(staff_id) if staff_id else None
        return staff.name if staff else None
