"""The queue of the pure core, driven directly: scripted events, time as a plain number.

No clock is read and nothing is patched: every event carries its time (``Driver`` advances
it by one second per event unless a test gives an explicit moment).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from core_helpers import (
    BASE,
    DAY,
    SITE_ID,
    Driver,
    calls,
    latest_state,
    local_ts,
    make_engine,
    panel_event,
    queue_changes,
    rating,
    ratings,
    snapshot,
    the_reply,
    ticket_changes,
    ticket_request,
    window_changes,
)

from queue_engine.core import (
    WINDOW_TRANSITIONS,
    AnnounceCall,
    Engine,
    ErrorCode,
    QueueChanged,
    Refused,
    Reply,
    TicketChanged,
    TicketSlip,
    TicketStatus,
    WindowChanged,
    WindowPhase,
)
from queue_engine.core import events as ev
from queue_engine.core.commands import AlertChanged, DeviceChanged, TimeAccounted

P = WindowPhase
SUPERVISION_COMMANDS = (TimeAccounted, AlertChanged, DeviceChanged)


def assert_refused(d: Driver, event: ev.Event, code: ErrorCode) -> Reply:
    """The event is refused with ``code`` and changes nothing: the only command is the
    failure reply, and everything observable about the hall is as before."""
    at = d.now + 1
    d.settle(at)
    before = snapshot(d.hall, at)
    commands = d.send(event, at=at)
    assert len(commands) == 1, commands
    reply = commands[0]
    assert isinstance(reply, Reply)
    assert (reply.ok, reply.error, reply.re, reply.device) == (False, code.value, event.id, event.device)
    assert reply.message  # the Chinese text for the operator
    assert snapshot(d.hall, at) == before
    return reply


def call_order(d: Driver, window: str, count: int) -> list[str]:
    order = []
    for _ in range(count):
        order.append(d.serve(window))
    return order


# =========================================================================================
# ticket.request
# =========================================================================================
def test_ticket_request_issues_a_slip_and_records_the_ticket():
    d = Driver()
    event = ticket_request("shebao")
    commands = d.send(event)
    now = d.now
    assert [type(c) for c in commands] == [TicketChanged, QueueChanged, Reply]
    ticket = commands[0].ticket
    assert (ticket.no, ticket.service, ticket.seq, ticket.status) == ("A001", "shebao", 1, TicketStatus.WAITING)
    assert (ticket.day, ticket.issued_at, ticket.issued_by, ticket.site) == ("2026-11-25", now, "kiosk-1", SITE_ID)
    assert ticket.priority is None and not ticket.is_priority
    reply = commands[2]
    assert (reply.ok, reply.re, reply.device) == (True, event.id, "kiosk-1")
    assert reply.ticket == TicketSlip(no="A001", day="2026-11-25", service="shebao", issued_at=now, ahead=0, eta_min=0)
    assert d.hall.tickets["A001"] == ticket


def test_ticket_numbering_is_per_prefix():
    d = Driver()
    numbers = [d.issue(s).no for s in ("shebao", "shebao", "budongchan", "shebao", "budongchan", "fankui")]
    assert numbers == ["A001", "A002", "B001", "A003", "B002", "F001"]


def test_priority_and_appointment_tickets_are_green_channel():
    d = Driver()
    elderly = d.issue("shebao", priority=ev.Priority.ELDERLY)
    booked = d.issue("shebao", appointment="YY20261125-01")
    assert d.hall.tickets[elderly.no].priority is ev.Priority.ELDERLY
    assert d.hall.tickets[elderly.no].is_priority
    assert d.hall.tickets[booked.no].is_priority
    assert d.hall.queue_view(d.now)[0].priority_waiting == 2


def test_unknown_service_is_refused_and_consumes_no_number():
    d = Driver()
    d.issue("shebao")
    assert_refused(d, ticket_request("hunyin"), ErrorCode.UNKNOWN_SERVICE)
    assert d.issue("shebao").no == "A002"


@pytest.mark.parametrize(
    ("hour", "minute", "accepted"),
    [(7, 59, False), (8, 0, True), (12, 30, True), (17, 29, True), (17, 30, False), (22, 0, False)],
)
def test_service_closed_outside_issuing_hours(hour, minute, accepted):
    """Periods 08:30-12:00 and 14:30-17:30, numbers from 30 minutes before the first."""
    at = local_ts(2026, 11, 25, hour, minute)
    d = Driver(now=at - 1)  # the day has begun, so a refusal has nothing else to change
    if accepted:
        assert d.issue("shebao", at=at).no == "A001"
    else:
        assert_refused(d, ticket_request("shebao"), ErrorCode.SERVICE_CLOSED)
        assert d.hall.tickets == {}


@pytest.mark.parametrize(("hour", "minute"), [(7, 59), (17, 30), (23, 0), (3, 0)])
def test_issue_outside_hours_when_configured(hour, minute):
    d = Driver(queue={"issue_outside_hours": True})
    slip = d.issue("budongchan", at=local_ts(2026, 11, 25, hour, minute))
    assert slip.no == "B001"


# =========================================================================================
# panel events, accepted
# =========================================================================================
def test_staff_login_opens_the_window():
    d = Driver()
    event = panel_event("w01", ev.StaffLogin, staff="s001")
    commands = [c for c in d.send(event) if not isinstance(c, SUPERVISION_COMMANDS)]
    assert [type(c) for c in commands] == [WindowChanged, Reply]
    window = commands[0].window
    assert (window.window, window.phase, window.staff, window.logged_in_at) == ("w01", P.IDLE, "s001", d.now)
    assert commands[1] == Reply(site=SITE_ID, device="panel-w01", re=event.id, ok=True)
    assert d.hall.windows["w01"] == window


def test_staff_login_unknown_staff_is_refused():
    d = Driver()
    assert_refused(d, panel_event("w01", ev.StaffLogin, staff="s999"), ErrorCode.UNKNOWN_STAFF)
    assert d.hall.windows["w01"].phase is P.CLOSED


def test_staff_login_elsewhere_closes_the_other_window():
    d = Driver()
    d.login("w02", "s001")
    commands = d.panel("w01", ev.StaffLogin, staff="s001")
    changed = {c.window.window: c.window for c in window_changes(commands)}
    assert changed["w02"].phase is P.CLOSED and changed["w02"].staff is None
    assert changed["w01"].phase is P.IDLE and changed["w01"].staff == "s001"
    assert the_reply(commands).ok


def test_staff_login_elsewhere_refused_while_that_window_has_a_ticket():
    d = Driver()
    d.issue("shebao")
    d.login("w02", "s001")
    d.call_next("w02")
    assert_refused(d, panel_event("w01", ev.StaffLogin, staff="s001"), ErrorCode.BUSY)


def test_staff_logout_closes_the_window():
    d = Driver()
    d.login("w01", "s001")
    commands = d.panel("w01", ev.StaffLogout)
    (window,) = [c.window for c in window_changes(commands)]
    assert (window.phase, window.staff, window.logged_in_at) == (P.CLOSED, None, None)
    assert the_reply(commands).ok


def test_window_pause_and_resume():
    d = Driver()
    d.login("w01", "s001")
    commands = d.panel("w01", ev.WindowPause, reason=ev.PauseReason.MEAL)
    paused_at = d.now
    (window,) = [c.window for c in window_changes(commands)]
    assert (window.phase, window.pause_reason, window.paused_at) == (P.PAUSED, ev.PauseReason.MEAL, paused_at)
    assert the_reply(commands).ok
    commands = d.panel("w01", ev.WindowResume)
    (window,) = [c.window for c in window_changes(commands)]
    assert (window.phase, window.pause_reason, window.paused_at, window.staff) == (P.IDLE, None, None, "s001")
    assert the_reply(commands).ok


def test_call_next_calls_announces_and_replies():
    d = Driver()
    d.issue("shebao")
    d.login("w01", "s001")
    event = panel_event("w01", ev.CallNext)
    commands = d.send(event)
    now = d.now
    assert [type(c) for c in commands] == [TicketChanged, WindowChanged, QueueChanged, AnnounceCall, Reply]
    ticket = commands[0].ticket
    assert (ticket.no, ticket.status, ticket.window, ticket.staff) == ("A001", TicketStatus.CALLED, "w01", "s001")
    assert (ticket.called_at, ticket.first_called_at, ticket.calls) == (now, now, 1)
    window = commands[1].window
    assert (window.phase, window.ticket) == (P.CALLED, "A001")
    assert commands[3] == AnnounceCall(
        site=SITE_ID, ticket="A001", window="w01", window_name="1号窗口", at=now, recall=False
    )
    assert commands[4] == Reply(site=SITE_ID, device="panel-w01", re=event.id, ok=True, ticket="A001")
    assert d.hall.position("A001").ahead == 0
    assert d.hall.queue_view(now)[0].waiting == 0


def test_call_next_with_nothing_waiting_is_queue_empty():
    d = Driver()
    d.login("w01", "s001")
    assert_refused(d, panel_event("w01", ev.CallNext), ErrorCode.QUEUE_EMPTY)


def test_call_pick_calls_a_specific_ticket_out_of_order():
    d = Driver()
    for service in ("shebao", "shebao", "budongchan"):
        d.issue(service)
    d.login("w01", "s001")
    commands = d.panel("w01", ev.CallPick, ticket="A002")
    assert the_reply(commands).ticket == "A002"
    assert [c.ticket for c in calls(commands)] == ["A002"]
    assert d.hall.tickets["A002"].status is TicketStatus.CALLED
    d.ok("w01", ev.ServiceStart)
    d.ok("w01", ev.ServiceFinish, outcome=ev.Outcome.DONE)
    assert d.call_next("w01") == "A001"


def test_call_recall_announces_again_in_called_and_serving():
    d = Driver()
    d.issue("shebao")
    d.login("w01", "s001")
    d.call_next("w01")
    first_called = d.hall.tickets["A001"].called_at
    commands = d.panel("w01", ev.CallRecall)
    assert [type(c) for c in commands] == [TicketChanged, AnnounceCall, Reply]
    assert calls(commands)[0].recall is True and calls(commands)[0].ticket == "A001"
    assert commands[0].ticket.calls == 2
    assert d.hall.tickets["A001"].called_at == first_called  # a recall is not a new call
    assert d.hall.windows["w01"].phase is P.CALLED
    d.ok("w01", ev.ServiceStart)
    commands = d.panel("w01", ev.CallRecall)
    assert calls(commands)[0].recall is True
    assert d.hall.windows["w01"].phase is P.SERVING


def test_call_skip_marks_a_no_show_that_call_next_never_calls_again():
    d = Driver()
    d.issue("shebao")
    d.login("w01", "s001")
    d.call_next("w01")
    commands = d.panel("w01", ev.CallSkip)
    ticket = ticket_changes(commands)[0].ticket
    assert (ticket.status, ticket.finished_at) == (TicketStatus.NO_SHOW, d.now)
    assert d.hall.windows["w01"].phase is P.IDLE and d.hall.windows["w01"].ticket is None
    assert the_reply(commands).ticket == "A001"
    assert queue_changes(commands)
    assert_refused(d, panel_event("w01", ev.CallNext), ErrorCode.QUEUE_EMPTY)


def test_service_start_begins_service():
    d = Driver()
    d.issue("shebao")
    d.login("w01", "s001")
    d.call_next("w01")
    commands = d.panel("w01", ev.ServiceStart)
    ticket = ticket_changes(commands)[0].ticket
    assert (ticket.status, ticket.started_at, ticket.staff) == (TicketStatus.SERVING, d.now, "s001")
    assert window_changes(commands)[0].window.phase is P.SERVING
    assert the_reply(commands).ticket == "A001"


# (办不成 at an ordinary window goes on to the 办不成事 window: tests/test_core_cases.py)
@pytest.mark.parametrize("outcome", [o for o in ev.Outcome if o is not ev.Outcome.FAILED])
def test_service_finish_with_each_outcome(outcome):
    d = Driver()
    d.issue("shebao")
    d.login("w01", "s001")
    d.call_next("w01")
    d.ok("w01", ev.ServiceStart)
    commands = d.panel("w01", ev.ServiceFinish, outcome=outcome)
    ticket = ticket_changes(commands)[0].ticket
    assert (ticket.status, ticket.outcome, ticket.finished_at) == (TicketStatus.DONE, outcome, d.now)
    window = window_changes(commands)[0].window
    assert (window.phase, window.ticket, window.served_today) == (P.IDLE, None, 1)
    assert (window.last_served_ticket, window.last_served_staff) == ("A001", "s001")
    assert the_reply(commands).ok
    assert d.hall.position("A001").ticket.status is TicketStatus.DONE


def test_ticket_transfer_to_a_service():
    d = Driver()
    d.issue("shebao")
    d.login("w02", "s002")
    d.login("w03", "s003")
    d.call_next("w02")
    d.ok("w02", ev.ServiceStart)
    commands = d.panel("w02", ev.TicketTransfer, to_service="budongchan")
    ticket = ticket_changes(commands)[0].ticket
    assert (ticket.no, ticket.status, ticket.service, ticket.transfers) == (
        "A001",
        TicketStatus.WAITING,
        "budongchan",
        1,
    )
    assert (ticket.directed_window, ticket.started_at, ticket.called_at) == (None, None, None)
    assert d.hall.windows["w02"].phase is P.IDLE
    assert the_reply(commands).ticket == "A001"
    assert_refused(d, panel_event("w02", ev.CallNext), ErrorCode.QUEUE_EMPTY)  # no longer shebao
    assert d.call_next("w03") == "A001"


def test_ticket_transfer_to_a_window():
    d = Driver()
    d.issue("shebao")
    d.login("w02", "s002")
    d.call_next("w02")
    commands = d.panel("w02", ev.TicketTransfer, to_window="w09")
    ticket = ticket_changes(commands)[0].ticket
    assert (ticket.status, ticket.service, ticket.directed_window) == (TicketStatus.WAITING, "shebao", "w09")
    assert d.hall.waiting_directed() == 1
    assert the_reply(commands).ok
    d.login("w09", "s004")
    assert d.call_next("w09") == "A001"
    assert d.hall.waiting_directed() == 0


# =========================================================================================
# the transition table, systematically
# =========================================================================================
def window_in(phase: WindowPhase) -> Driver:
    """w01 (comprehensive) in ``phase``, with A001, A002 and B001 issued before."""
    d = Driver()
    for service in ("shebao", "shebao", "budongchan"):
        d.issue(service)
    if phase is not P.CLOSED:
        d.login("w01", "s001")
    if phase in (P.CALLED, P.SERVING):
        assert d.call_next("w01") == "A001"
    if phase is P.SERVING:
        d.ok("w01", ev.ServiceStart)
    if phase is P.PAUSED:
        d.ok("w01", ev.WindowPause, reason=ev.PauseReason.BREAK)
    assert d.hall.windows["w01"].phase is phase
    return d


# An event of each type, legal as far as its fields go.
PANEL_EVENT_FIELDS: dict[type[ev.Event], dict] = {
    ev.StaffLogin: {"staff": "s001"},
    ev.StaffLogout: {},
    ev.WindowPause: {"reason": ev.PauseReason.MEETING},
    ev.WindowResume: {},
    ev.CallNext: {},
    ev.CallPick: {"ticket": "B001"},
    ev.CallRecall: {},
    ev.CallSkip: {},
    ev.ServiceStart: {},
    ev.ServiceFinish: {"outcome": ev.Outcome.DONE},
    ev.TicketTransfer: {"to_service": "budongchan"},
    ev.CaseOpen: {"service": "shebao"},
}

# Written out independently of hall.py: for each event, the phase it leads to where it is
# legal, and the refusal code where it is not.
NLI, NCT, BUSY, WP = (ErrorCode.NOT_LOGGED_IN, ErrorCode.NO_CURRENT_TICKET, ErrorCode.BUSY, ErrorCode.WINDOW_PAUSED)
EXPECTED: dict[type[ev.Event], dict[WindowPhase, WindowPhase | ErrorCode]] = {
    ev.StaffLogin: {P.CLOSED: P.IDLE, P.IDLE: P.IDLE, P.CALLED: BUSY, P.SERVING: BUSY, P.PAUSED: P.IDLE},
    ev.StaffLogout: {P.CLOSED: NLI, P.IDLE: P.CLOSED, P.CALLED: BUSY, P.SERVING: BUSY, P.PAUSED: P.CLOSED},
    ev.WindowPause: {P.CLOSED: NLI, P.IDLE: P.PAUSED, P.CALLED: BUSY, P.SERVING: BUSY, P.PAUSED: WP},
    ev.WindowResume: {
        P.CLOSED: NLI,
        P.IDLE: ErrorCode.NOT_PAUSED,
        P.CALLED: ErrorCode.NOT_PAUSED,
        P.SERVING: ErrorCode.NOT_PAUSED,
        P.PAUSED: P.IDLE,
    },
    ev.CallNext: {P.CLOSED: NLI, P.IDLE: P.CALLED, P.CALLED: BUSY, P.SERVING: BUSY, P.PAUSED: WP},
    ev.CallPick: {P.CLOSED: NLI, P.IDLE: P.CALLED, P.CALLED: BUSY, P.SERVING: BUSY, P.PAUSED: WP},
    ev.CallRecall: {P.CLOSED: NLI, P.IDLE: NCT, P.CALLED: P.CALLED, P.SERVING: P.SERVING, P.PAUSED: WP},
    ev.CallSkip: {P.CLOSED: NLI, P.IDLE: NCT, P.CALLED: P.IDLE, P.SERVING: ErrorCode.ALREADY_STARTED, P.PAUSED: WP},
    ev.ServiceStart: {
        P.CLOSED: NLI,
        P.IDLE: NCT,
        P.CALLED: P.SERVING,
        P.SERVING: ErrorCode.ALREADY_STARTED,
        P.PAUSED: WP,
    },
    ev.ServiceFinish: {P.CLOSED: NLI, P.IDLE: NCT, P.CALLED: ErrorCode.NOT_STARTED, P.SERVING: P.IDLE, P.PAUSED: WP},
    ev.TicketTransfer: {P.CLOSED: NLI, P.IDLE: NCT, P.CALLED: P.IDLE, P.SERVING: P.IDLE, P.PAUSED: WP},
    # A case taken on without a ticket (a home visit): while free, or out on fieldwork.
    ev.CaseOpen: {P.CLOSED: NLI, P.IDLE: P.IDLE, P.CALLED: BUSY, P.SERVING: BUSY, P.PAUSED: P.PAUSED},
}
CASES = [(cls, phase) for cls in EXPECTED for phase in P]


def test_expected_table_covers_the_core_table():
    assert set(EXPECTED) == set(WINDOW_TRANSITIONS) == set(PANEL_EVENT_FIELDS)
    for cls, (allowed, _overrides) in WINDOW_TRANSITIONS.items():
        legal = {phase for phase, result in EXPECTED[cls].items() if isinstance(result, WindowPhase)}
        assert legal == set(allowed), cls.__name__


@pytest.mark.parametrize(
    ("cls", "phase"),
    [c for c in CASES if isinstance(EXPECTED[c[0]][c[1]], ErrorCode)],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_illegal_event_is_refused_and_changes_nothing(cls, phase):
    d = window_in(phase)
    assert_refused(d, panel_event("w01", cls, **PANEL_EVENT_FIELDS[cls]), EXPECTED[cls][phase])
    # and through the Hall directly: the named error, raised
    with pytest.raises(Refused) as refusal:
        d.hall.handle(panel_event("w01", cls, **PANEL_EVENT_FIELDS[cls]), d.now + 1)
    assert refusal.value.code is EXPECTED[cls][phase]


@pytest.mark.parametrize(
    ("cls", "phase"),
    [c for c in CASES if isinstance(EXPECTED[c[0]][c[1]], WindowPhase)],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_legal_event_is_accepted(cls, phase):
    d = window_in(phase)
    commands = d.panel("w01", cls, **PANEL_EVENT_FIELDS[cls])
    assert the_reply(commands).ok, commands
    assert d.hall.windows["w01"].phase is EXPECTED[cls][phase]


def test_panel_event_from_a_device_without_a_window_is_not_allowed():
    d = Driver()
    d.issue("shebao")
    assert_refused(d, ev.CallNext(site=SITE_ID, device="kiosk-1", id="x1"), ErrorCode.NOT_ALLOWED)


# =========================================================================================
# refusals of the fields
# =========================================================================================
def test_call_pick_refusals():
    d = Driver()
    for service in ("shebao", "budongchan", "shebao"):
        d.issue(service)  # A001, B001, A002
    d.login("w01", "s001")
    d.login("w02", "s002")
    d.serve("w01")  # A001 done
    d.call_next("w01")  # B001 called at w01
    assert_refused(d, panel_event("w02", ev.CallPick, ticket="A999"), ErrorCode.UNKNOWN_TICKET)
    assert_refused(d, panel_event("w02", ev.CallPick, ticket="A001"), ErrorCode.UNKNOWN_TICKET)  # done
    assert_refused(d, panel_event("w02", ev.CallPick, ticket="B001"), ErrorCode.UNKNOWN_TICKET)  # called
    d.ok("w01", ev.CallSkip)  # B001 is a no-show now, which may be picked, but not by w02
    assert_refused(d, panel_event("w02", ev.CallPick, ticket="B001"), ErrorCode.NOT_ALLOWED)
    d.issue("budongchan")  # B002 waiting
    assert_refused(d, panel_event("w02", ev.CallPick, ticket="B002"), ErrorCode.NOT_ALLOWED)
    assert d.ok("w02", ev.CallPick, ticket="A002").ticket == "A002"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, ErrorCode.BAD_REQUEST),
        ({"to_service": "hunyin"}, ErrorCode.UNKNOWN_SERVICE),
        ({"to_service": "shebao"}, ErrorCode.BAD_REQUEST),  # the service it already has
        ({"to_window": "w77"}, ErrorCode.UNKNOWN_WINDOW),
        ({"to_window": "w03"}, ErrorCode.NOT_ALLOWED),  # w03 does not serve shebao
        ({"to_window": "w03", "to_service": "shebao"}, ErrorCode.NOT_ALLOWED),
        ({"to_window": "w02"}, ErrorCode.BAD_REQUEST),  # its own window
        ({"to_window": "w01", "to_service": "hunyin"}, ErrorCode.UNKNOWN_SERVICE),
    ],
)
def test_ticket_transfer_refusals(fields, code):
    d = Driver()
    d.issue("shebao")
    d.login("w02", "s002")
    d.call_next("w02")
    assert_refused(d, panel_event("w02", ev.TicketTransfer, **fields), code)
    assert d.hall.windows["w02"].ticket == "A001"


# =========================================================================================
# routing: who is called next
# =========================================================================================
def test_single_service_window_calls_only_its_service():
    d = Driver()
    d.issue("budongchan")  # B001 waits longest
    d.issue("shebao")
    d.login("w02", "s002")
    assert d.serve("w02") == "A001"
    assert_refused(d, panel_event("w02", ev.CallNext), ErrorCode.QUEUE_EMPTY)
    assert d.hall.tickets["B001"].status is TicketStatus.WAITING
    d.login("w03", "s003")
    assert d.call_next("w03") == "B001"


def test_comprehensive_window_calls_the_longest_waiting_across_services():
    d = Driver()
    issued = [d.issue(s).no for s in ("budongchan", "shebao", "fankui", "shebao", "budongchan")]
    assert issued == ["B001", "A001", "F001", "A002", "B002"]
    d.login("w01", "s001")
    assert call_order(d, "w01", 5) == issued


def test_tickets_issued_in_the_same_second_are_called_in_issue_order():
    d = Driver()
    at = BASE + 30
    issued = [d.issue(s, at=at).no for s in ("budongchan", "budongchan", "shebao", "budongchan", "shebao")]
    assert issued == ["B001", "B002", "A001", "B003", "A002"]
    d.login("w01", "s001")
    assert call_order(d, "w01", 5) == issued


def test_green_channel_with_cap_two():
    """5 priority and 3 normal waiting (normal issued first) give P,P,N,P,P,N,P,N:
    ``_choose_next`` takes priority while ``priority_streak < priority_cap`` (2) or no
    normal waits; a priority call adds one to the streak, a normal call resets it."""
    d = Driver()
    normal = [d.issue("shebao").no for _ in range(3)]
    priority = [d.issue("shebao", priority=ev.Priority.ELDERLY).no for _ in range(5)]
    d.login("w02", "s002")
    order = call_order(d, "w02", 8)
    kinds = "".join("P" if no in priority else "N" for no in order)
    assert kinds == "PPNPPNPN"
    assert order == [priority[0], priority[1], normal[0], priority[2], priority[3], normal[1], priority[4], normal[2]]


def test_green_channel_keeps_calling_priority_while_no_normal_waits():
    d = Driver()
    priority = [d.issue("shebao", priority=ev.Priority.DISABLED).no for _ in range(4)]
    d.login("w02", "s002")
    assert call_order(d, "w02", 4) == priority
    assert d.hall.windows["w02"].priority_streak == 4
    late_normal = d.issue("shebao").no
    late_priority = d.issue("shebao", priority=ev.Priority.PREGNANT).no
    # the streak is over the cap and a normal ticket waits: it goes first
    assert call_order(d, "w02", 2) == [late_normal, late_priority]


def test_transfer_keeps_the_original_place():
    d = Driver()
    d.issue("budongchan")  # B001, before
    d.issue("shebao")  # A001, to be transferred
    d.issue("budongchan")  # B002, after
    d.login("w02", "s002")
    assert d.call_next("w02") == "A001"
    d.ok("w02", ev.ServiceStart)
    d.ok("w02", ev.TicketTransfer, to_service="budongchan")
    d.issue("budongchan")  # B003, issued after the transfer
    assert d.hall.position("A001").ahead == 1
    d.login("w03", "s003")
    assert call_order(d, "w03", 4) == ["B001", "A001", "B002", "B003"]


def test_transfer_to_a_window_is_callable_only_by_that_window():
    d = Driver()
    d.issue("shebao")
    for window, staff in (("w01", "s001"), ("w02", "s002"), ("w09", "s004")):
        d.login(window, staff)
    d.call_next("w02")
    d.ok("w02", ev.TicketTransfer, to_window="w09")
    # a shebao ticket, but sent to w09: neither the comprehensive nor the shebao window takes it
    assert_refused(d, panel_event("w01", ev.CallNext), ErrorCode.QUEUE_EMPTY)
    assert_refused(d, panel_event("w02", ev.CallNext), ErrorCode.QUEUE_EMPTY)
    assert_refused(d, panel_event("w01", ev.CallPick, ticket="A001"), ErrorCode.NOT_ALLOWED)
    assert_refused(d, panel_event("w02", ev.CallPick, ticket="A001"), ErrorCode.NOT_ALLOWED)
    assert d.call_next("w09") == "A001"


def test_transfer_to_a_window_keeps_the_place_among_that_windows_tickets():
    d = Driver()
    d.issue("shebao")  # A001
    d.issue("fankui")  # F001
    d.issue("shebao")  # A002
    d.login("w02", "s002")
    d.login("w09", "s004")
    assert d.call_next("w02") == "A001"
    d.ok("w02", ev.TicketTransfer, to_window="w09")
    d.issue("fankui")  # F002
    assert call_order(d, "w09", 3) == ["A001", "F001", "F002"]


def test_a_no_show_can_be_called_again_with_call_pick():
    d = Driver()
    d.issue("shebao")
    d.issue("shebao")
    d.login("w02", "s002")
    d.call_next("w02")
    d.ok("w02", ev.CallSkip)
    assert d.hall.tickets["A001"].status is TicketStatus.NO_SHOW
    assert d.call_next("w02") == "A002"  # call.next does not bring the no-show back
    d.ok("w02", ev.CallSkip)
    commands = d.panel("w02", ev.CallPick, ticket="A001")
    assert the_reply(commands).ticket == "A001"
    assert calls(commands)[0].recall is False
    ticket = d.hall.tickets["A001"]
    assert (ticket.status, ticket.calls, ticket.window) == (TicketStatus.CALLED, 2, "w02")
    d.ok("w02", ev.ServiceStart)
    d.ok("w02", ev.ServiceFinish, outcome=ev.Outcome.DONE)
    assert d.hall.tickets["A001"].status is TicketStatus.DONE


def test_recalled_no_show_is_not_finished():
    d = Driver()
    d.issue("shebao")
    d.login("w02", "s002")
    d.call_next("w02")
    d.ok("w02", ev.CallSkip)
    d.ok("w02", ev.CallPick, ticket="A001")
    ticket = d.hall.tickets["A001"]
    assert ticket.status is TicketStatus.CALLED
    assert ticket.finished_at is None


# =========================================================================================
# the day: midnight in Asia/Shanghai
# =========================================================================================
def test_midnight_expires_what_waits_and_restarts_numbering():
    d = Driver()
    for service in ("shebao", "shebao", "budongchan", "budongchan"):
        d.issue(service)
    d.login("w01", "s001")
    d.login("w03", "s003")
    assert d.serve("w01") == "A001"  # done: stays done
    assert d.call_next("w03") == "B001"  # called at midnight: expires as well
    deadline = d.hall.day_ends_at
    assert deadline == local_ts(2026, 11, 26, 0, 0)
    assert datetime.fromtimestamp(deadline, UTC).hour == 16  # not UTC midnight
    assert ticket_changes(d.tick(deadline - 0.001)) == []
    assert d.hall.day == "2026-11-25"
    commands = d.tick(deadline)
    expired = {c.ticket.no: c.ticket for c in ticket_changes(commands)}
    assert set(expired) == {"A002", "B001", "B002"}
    assert all(t.status is TicketStatus.EXPIRED for t in expired.values())
    assert queue_changes(commands)
    w03 = {c.window.window: c.window for c in window_changes(commands)}["w03"]
    assert (w03.phase, w03.ticket, w03.staff, w03.served_today) == (P.IDLE, None, "s003", 0)
    assert d.hall.day == "2026-11-26"
    assert d.hall.tickets == {}
    assert d.hall.position("A002") is None
    assert d.hall.day_ends_at == local_ts(2026, 11, 27, 0, 0)
    assert ticket_changes(d.tick(d.hall.day_ends_at - 1)) == []
    morning = local_ts(2026, 11, 26, 9, 0)
    assert d.issue("shebao", at=morning).no == "A001"
    assert d.issue("budongchan").no == "B001"
    assert d.hall.tickets["A001"].day == "2026-11-26"


def test_numbering_restarts_at_shanghai_midnight_not_utc_midnight():
    d = Driver(queue={"issue_outside_hours": True})
    assert d.issue("shebao", at=local_ts(2026, 11, 25, 9, 0)).no == "A001"
    assert d.issue("shebao", at=local_ts(2026, 11, 25, 23, 50)).no == "A002"
    # 00:10 in Shanghai is still 2026-11-25 in UTC: a new local day all the same
    after_midnight = local_ts(2026, 11, 26, 0, 10)
    assert datetime.fromtimestamp(after_midnight, UTC).date().isoformat() == "2026-11-25"
    assert d.issue("shebao", at=after_midnight).no == "A001"
    assert d.hall.tickets["A001"].day == "2026-11-26"
    # UTC midnight (08:00 in Shanghai) does not restart anything
    assert d.issue("shebao", at=local_ts(2026, 11, 26, 7, 59)).no == "A002"
    assert d.issue("shebao", at=local_ts(2026, 11, 26, 8, 1)).no == "A003"


# =========================================================================================
# estimates: ahead, eta
# =========================================================================================
def test_eta_grows_with_people_ahead_and_shrinks_with_open_windows():
    d = Driver()  # expected_service_min defaults to 8 minutes
    slips = [d.issue("shebao") for _ in range(3)]
    assert [(s.ahead, s.eta_min) for s in slips] == [(0, 0), (1, 8), (2, 16)]
    assert d.hall.position("A003").eta_min == 16  # no window open: counted as one
    d.login("w02", "s002")
    assert d.hall.position("A003").eta_min == 16
    d.login("w01", "s001")  # the comprehensive window serves shebao too
    assert d.hall.position("A003").eta_min == 8
    d.login("w03", "s003")  # budongchan only: no help for shebao
    assert d.hall.position("A003").eta_min == 8
    d.ok("w02", ev.WindowPause, reason=ev.PauseReason.BREAK)
    assert d.hall.position("A003").eta_min == 16
    assert d.issue("shebao").eta_min == 24  # 3 ahead, one shebao window open


def test_position_counts_who_is_ahead():
    d = Driver()
    slips = [
        d.issue("shebao"),
        d.issue("shebao"),
        d.issue("shebao", priority=ev.Priority.VETERAN),
        d.issue("budongchan"),
    ]
    assert [s.ahead for s in slips] == [0, 1, 0, 0]
    hall = d.hall
    assert {no: hall.position(no).ahead for no in ("A001", "A002", "A003", "B001")} == {
        "A001": 1,
        "A002": 2,
        "A003": 0,
        "B001": 0,
    }
    d.login("w02", "s002")
    assert d.call_next("w02") == "A003"
    assert (hall.position("A001").ahead, hall.position("A002").ahead) == (0, 1)
    called = hall.position("A003")
    assert (called.ahead, called.eta_min, called.ticket.status) == (0, 0, TicketStatus.CALLED)
    assert hall.position("A404") is None


# =========================================================================================
# restore after a restart
# =========================================================================================
def busy_morning() -> Driver:
    d = Driver()
    for service, priority in (
        ("shebao", None),
        ("shebao", None),
        ("budongchan", None),
        ("shebao", ev.Priority.ELDERLY),
        ("shebao", ev.Priority.ELDERLY),
        ("shebao", None),
        ("budongchan", None),
        ("budongchan", ev.Priority.DISABLED),
        ("fankui", None),
        ("shebao", None),
    ):
        d.issue(service, priority=priority)
    for window, staff in (("w01", "s001"), ("w02", "s002"), ("w03", "s003"), ("w09", "s004")):
        d.login(window, staff)
    assert [d.serve("w02"), d.serve("w02")] == ["A003", "A004"]  # w02 now at the cap
    assert d.call_next("w01") == "B003"
    d.ok("w01", ev.ServiceStart)  # w01 serving
    assert d.call_next("w03") == "B001"
    d.ok("w03", ev.CallSkip)  # a no-show
    assert d.call_next("w03") == "B002"
    d.ok("w03", ev.TicketTransfer, to_window="w09")  # directed to w09
    assert d.call_next("w09") == "B002"  # ahead of F001: issued earlier
    d.ok("w09", ev.TicketTransfer, to_service="shebao")  # back to the shared shebao queue
    return d


def drain(d: Driver) -> list[tuple[str, str]]:
    """Serve everything: each window in turn finishes, starts or calls, until all idle."""
    order: list[tuple[str, str]] = []
    for _ in range(60):
        progressed = False
        for window in ("w01", "w02", "w03", "w09"):
            phase = d.hall.windows[window].phase
            if phase is P.CALLED:
                d.ok(window, ev.ServiceStart)
                progressed = True
            elif phase is P.SERVING:
                d.ok(window, ev.ServiceFinish, outcome=ev.Outcome.DONE)
                progressed = True
            elif phase is P.IDLE:
                reply = the_reply(d.panel(window, ev.CallNext))
                if reply.ok:
                    order.append((window, reply.ticket))
                    progressed = True
        if not progressed:
            return order
    raise AssertionError("did not drain")


def test_restore_gives_the_same_numbers_and_call_order():
    first = busy_morning()
    tickets, windows = latest_state(first.log)
    assert len(tickets) == 10 and len(windows) == 4
    second = Driver(make_engine(), now=first.now)
    second.engine.restore(now=first.now, tickets=tickets, windows=windows)
    assert second.hall.tickets == first.hall.tickets
    assert second.hall.windows == first.hall.windows
    assert second.hall.waiting_directed() == first.hall.waiting_directed()
    for d in (first, second):
        assert d.issue("shebao").no == "A007"
        assert d.issue("budongchan").no == "B004"
        assert d.issue("fankui").no == "F002"
    assert second.hall.tickets.keys() == first.hall.tickets.keys()
    first_order, second_order = drain(first), drain(second)
    assert first_order == second_order
    # the restored priority streak still holds: w02 (at the cap) calls a normal ticket first
    assert first_order[0] == ("w02", "A001")
    assert {no for _, no in first_order} == {"A001", "A002", "A005", "A006", "A007", "B002", "B004", "F001", "F002"}
    for d in (first, second):
        assert d.issue("shebao").no == "A008"
        assert d.ok("w03", ev.CallPick, ticket="B001").ticket == "B001"  # the no-show survived too


def restored_next_day() -> Engine:
    d = Driver()
    d.issue("shebao")
    d.issue("shebao")
    d.login("w01", "s001")
    d.login("w02", "s002")
    assert d.serve("w02") == "A001"  # w02: last served A001
    assert d.call_next("w01") == "A002"  # w01: CALLED when the engine stops
    tickets, windows = latest_state(d.log)
    engine = make_engine()
    engine.restore(now=BASE + DAY, tickets=tickets, windows=windows)  # restarted the next morning
    return engine


def test_restore_on_a_later_day_ignores_old_tickets_and_restarts_numbering():
    engine = restored_next_day()
    hall = engine.hall(SITE_ID)
    assert hall.day == "2026-11-26" and hall.tickets == {}
    assert all(w.served_today == 0 and w.priority_streak == 0 for w in hall.windows.values())
    commands = engine.handle(ticket_request("shebao"), BASE + DAY + 1)
    assert the_reply(commands).ticket.no == "A001"


def test_restore_on_a_later_day_releases_yesterdays_current_ticket():
    hall = restored_next_day().hall(SITE_ID)
    w01 = hall.windows["w01"]
    assert (w01.phase, w01.ticket, w01.staff) == (P.IDLE, None, "s001")


def test_restore_on_a_later_day_does_not_crash_the_engine():
    engine = restored_next_day()
    commands = engine.handle(panel_event("w01", ev.CallRecall), BASE + DAY + 1)
    assert the_reply(commands).error == ErrorCode.NO_CURRENT_TICKET.value


def test_restore_on_a_later_day_leaves_nothing_to_rate():
    engine = restored_next_day()
    commands = engine.handle(rating("w02", 5, device="pad-w01"), BASE + DAY + 1)
    assert the_reply(commands).error == ErrorCode.NOTHING_TO_RATE.value


# =========================================================================================
# rating (好差评)
# =========================================================================================
def test_rating_is_linked_to_the_last_served_ticket():
    d = Driver()
    d.issue("shebao")
    d.issue("shebao")
    d.login("w01", "s001")
    d.serve("w01")
    assert d.serve("w01") == "A002"
    event = rating("w01", 5)
    commands = d.send(event)
    (recorded,) = ratings(commands)
    assert (recorded.window, recorded.device, recorded.score, recorded.ticket, recorded.staff, recorded.at) == (
        "w01",
        "pad-w01",
        5,
        "A002",
        "s001",
        d.now,
    )
    assert ticket_changes(commands)[0].ticket.rating == 5
    assert the_reply(commands) == Reply(site=SITE_ID, device="pad-w01", re=event.id, ok=True, ticket="A002")
    assert d.hall.tickets["A001"].rating is None
    assert_refused(d, rating("w01", 1), ErrorCode.ALREADY_RATED)
    assert d.hall.tickets["A002"].rating == 5
    # an explicit ticket may still be rated once
    assert the_reply(d.send(rating("w01", 4, ticket="A001"))).ok
    assert d.hall.tickets["A001"].rating == 4


def test_rating_refusals():
    d = Driver()
    d.issue("shebao")
    d.issue("shebao")
    d.login("w01", "s001")
    assert_refused(d, rating("w01", 5), ErrorCode.NOTHING_TO_RATE)
    d.serve("w01")
    assert_refused(d, rating("w02", 5), ErrorCode.NOTHING_TO_RATE)  # w02 served nobody
    assert_refused(d, rating("w02", 5, ticket="A001"), ErrorCode.UNKNOWN_TICKET)  # served at w01
    assert_refused(d, rating("w01", 5, ticket="A002"), ErrorCode.UNKNOWN_TICKET)  # still waiting
    assert_refused(d, rating("w77", 5), ErrorCode.UNKNOWN_WINDOW)


# =========================================================================================
# the Hall's own contract
# =========================================================================================
def test_hall_refusal_after_midnight_changes_nothing_but_the_day_roll():
    """Hall.handle first does what tick(now) would; a refused event changes nothing more,
    and the roll's commands ride on the refusal so that the caller can still store them."""
    d = Driver()
    d.issue("shebao")
    hall = d.hall
    twin = make_engine().hall(SITE_ID)
    twin.restore(now=d.now, tickets=list(hall.tickets.values()), windows=list(hall.windows.values()))
    expected_roll = twin.tick(BASE + DAY)
    with pytest.raises(Refused) as refused:
        hall.handle(panel_event("w01", ev.CallNext), BASE + DAY)  # w01 is closed
    # The queue's part of the roll (supervision's part depends on each hall's own history).
    queue_part = lambda commands: [c for c in commands if not isinstance(c, SUPERVISION_COMMANDS)]  # noqa: E731
    assert queue_part(refused.value.pending) == queue_part(expected_roll)
    assert [c.ticket.status for c in ticket_changes(refused.value.pending)] == [TicketStatus.EXPIRED]
    assert (hall.day, hall.tickets, hall.windows) == (twin.day, twin.tickets, twin.windows)
