"""办件 in the pure core (queue_engine.core.cases), driven directly: scripted events, time as a
plain number, the real Chinese calendar (``official_calendar()``, from chinese-calendar) where
working days matter.

The site (tests/core_helpers.py): shebao (A) a 即办件, budongchan (B) a 承诺件 of 5 working
days (帮办代办 10), fankui (F) the 办不成事 service; a 办不成 shebao matter is answered within 2
working days, others within the site's default (5); windows w01
(comprehensive), w02 (shebao), w03 (budongchan), w09 (办不成事, fallback). No window must be
staffed here: these tests are about cases, not 空岗.
"""

from __future__ import annotations

from datetime import date

import pytest
from core_helpers import (
    SITE_ID,
    WINDOWS,
    Driver,
    acknowledge,
    alert_changes,
    alert_invariant_problems,
    latest_alerts,
    latest_state,
    local_ts,
    next_id,
    of_type,
    run_until,
    supervision_site_dict,
    the_reply,
)

from queue_engine.calendar import official_calendar
from queue_engine.config import parse_site
from queue_engine.core import Engine, ErrorCode, TicketStatus
from queue_engine.core import events as ev
from queue_engine.core.alerts import ALERT_KINDS, AlertKind, AlertState, Audience
from queue_engine.core.cases import Case, CaseAction, CaseChanged, CaseKind, CaseStatus, NoticeIssued
from queue_engine.privacy import citizen_key

K = AlertKind
O = ev.Outcome  # noqa: E741
OFFICIAL = official_calendar()
MATERIALS = ["不动产登记申请书", "居民身份证", "不动产权属证书", "完税凭证"]
GUIDES = {
    "shebao": {"item_type": "即办件", "materials": ["居民身份证", "户口簿"], "unresolved_reply_working_days": 2},
    "budongchan": {
        "item_type": "承诺件",
        "promise_working_days": 5,
        "proxy_working_days": 10,
        "materials": MATERIALS,
    },
    "fankui": {"item_type": "承诺件", "promise_working_days": 3},
}
WED = date(2026, 11, 25)

CITIZEN_SECRET = bytes(range(32))


def at(day: date, hour: int, minute: int = 0) -> float:
    return local_ts(day.year, day.month, day.day, hour, minute)


def cases_driver(
    start: float,
    *,
    official: bool = True,
    fallback: bool = True,
    guides: dict | None = None,
    cases: dict | None = None,
) -> Driver:
    data = supervision_site_dict(windows={w: {"must_staff": False} for w in WINDOWS})
    data["cases"] = cases or {}
    for service in data["services"]:
        service["guide"] = {**GUIDES[service["code"]], **(guides or {}).get(service["code"], {})}
    if not fallback:  # a village without a 办不成事 window
        data["windows"] = [w for w in data["windows"] if w.get("role") != "fallback"]
        data["devices"] = [d for d in data["devices"] if d.get("window") != "w09"]
    engine = Engine([parse_site(data)], OFFICIAL if official else None)
    driver = Driver(engine, now=start)
    driver.log += engine.tick(start)
    return driver


def finish(d: Driver, window: str, outcome: ev.Outcome, **fields):
    """Call the next ticket at ``window``, start and finish it: the finish's commands."""
    d.call_next(window)
    d.ok(window, ev.ServiceStart)
    return d.panel(window, ev.ServiceFinish, outcome=outcome, **fields)


def visit(d: Driver, service: str, window: str, staff: str, outcome: ev.Outcome, **fields):
    d.issue(service)
    if d.hall.windows[window].staff != staff:
        d.login(window, staff)
    return finish(d, window, outcome, **fields)


def opened(commands) -> Case:
    (change,) = [c for c in of_type(commands, CaseChanged) if c.action is CaseAction.OPENED]
    return change.case


def case_event(d: Driver, device: str, cls: type[ev.CaseEvent], **fields):
    return d.send(cls(site=SITE_ID, device=device, id=next_id(), **fields))


def of_kind(commands, kind: AlertKind):
    return [a for a in alert_changes(commands) if a.kind is kind]


@pytest.fixture(autouse=True)
def _check_alert_invariants(request):
    yield
    driver = getattr(request.node, "driver", None)
    if driver is not None:
        assert alert_invariant_problems(driver.log) == []


# -- 限时办结: a 承诺件 accepted is due N working days later, by the site's calendar -----------------
@pytest.mark.parametrize(
    ("accepted", "days", "official", "due"),
    [
        # Friday 2026-09-18: Sunday 09-20 is a 调休 working day, 中秋 25-27 are off.
        (date(2026, 9, 18), 5, True, "2026-09-24"),
        (date(2026, 9, 18), 5, False, "2026-09-25"),  # (Monday to Friday only: the control)
        # Friday 2026-10-09: Saturday 10-10 is a 调休 working day after 国庆.
        (date(2026, 10, 9), 1, True, "2026-10-10"),
        (date(2026, 10, 9), 1, False, "2026-10-12"),
        # Over 国庆 (10-01..07 off): 10-08, 10-09 and the 调休 Saturday.
        (date(2026, 9, 30), 3, True, "2026-10-10"),
    ],
)
def test_a_promised_case_is_due_by_the_official_calendar_with_its_tiaoxiu_days(accepted, days, official, due):
    d = cases_driver(at(accepted, 9), official=official, guides={"budongchan": {"promise_working_days": days}})
    commands = visit(d, "budongchan", "w03", "s003", O.ACCEPTED)
    case = opened(commands)
    assert (case.kind, case.status, case.service, case.due_day) == (
        CaseKind.PROMISED,
        CaseStatus.OPEN,
        "budongchan",
        due,
    )
    due_day = date.fromisoformat(due)
    assert case.due_at == at(date.fromordinal(due_day.toordinal() + 1), 0)  # the end of the due day
    assert (case.ticket, case.window, case.staff, case.agent) == ("B001", "w03", "s003", "s003")
    reply = the_reply(commands)
    assert reply.ok and reply.case == case.no == f"J{accepted:%Y%m%d}001"
    (ticket,) = [t for t in latest_state(commands)[0] if t.no == "B001"]
    assert (ticket.status, ticket.outcome, ticket.case_no) == (TicketStatus.DONE, O.ACCEPTED, case.no)
    assert d.hall.cases.open_cases() == [case]


def test_case_overdue_warns_on_the_due_day_turns_critical_after_it_and_completing_resolves_it(request):
    d = request.node.driver = cases_driver(at(WED, 9))
    case = opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED))
    assert case.due_day == "2026-12-02"  # Wednesday a week later: 5 working days

    assert of_kind(run_until(d, at(date(2026, 12, 1), 23, 59)), K.CASE_OVERDUE) == []
    (warning,) = of_kind(run_until(d, at(date(2026, 12, 2), 17)), K.CASE_OVERDUE)
    assert (warning.state, warning.severity, warning.overdue) == (AlertState.FIRING, "warning", False)
    assert (warning.subject, warning.since, warning.due) == (case.no, at(date(2026, 12, 2), 0), case.due_at)
    assert (warning.window, warning.staff, warning.detail["holder"]) == ("w03", "s003", "s003")
    rule = ALERT_KINDS[K.CASE_OVERDUE]
    assert (rule.audience, rule.also) == (Audience.MANAGER, (Audience.SUPERVISION,))

    (critical,) = of_kind(run_until(d, at(date(2026, 12, 3), 9)), K.CASE_OVERDUE)
    assert (critical.id, critical.severity, critical.overdue) == (warning.id, "critical", True)
    assert of_kind(run_until(d, at(date(2026, 12, 10), 9)), K.CASE_OVERDUE) == []  # once each

    d.login("w03", "s003")
    commands = case_event(d, "panel-w03", ev.CaseComplete, case=case.no, result="已登记发证")
    (resolved,) = of_kind(commands, K.CASE_OVERDUE)
    assert (resolved.id, resolved.state, resolved.until) == (warning.id, AlertState.RESOLVED, d.now)
    (change,) = of_type(commands, CaseChanged)
    assert (change.action, change.by, change.at) == (CaseAction.COMPLETED, "s003", d.now)
    assert (change.case.status, change.case.result, change.case.closed_by) == (
        CaseStatus.COMPLETED,
        "已登记发证",
        "s003",
    )
    assert the_reply(commands).case == case.no
    assert d.hall.cases.open_cases() == []
    assert of_kind(run_until(d, at(date(2026, 12, 20), 9)), K.CASE_OVERDUE) == []


def test_a_case_completed_in_time_raises_nothing():
    d = cases_driver(at(WED, 9))
    case = opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED))
    case_event(d, "panel-w03", ev.CaseComplete, case=case.no, result="办结")
    assert of_kind(run_until(d, at(date(2026, 12, 10), 9)), K.CASE_OVERDUE) == []


# -- 帮办代办 ------------------------------------------------------------------------------------
def test_a_proxy_case_passed_on_keeps_its_agent(request):
    d = request.node.driver = cases_driver(at(WED, 9))
    commands = visit(d, "budongchan", "w01", "s001", O.PROXY, agent="s002", passed_to="县自然资源局")
    case = opened(commands)
    assert (case.kind, case.agent, case.staff, case.passed_to) == (CaseKind.PROXY, "s002", "s001", "县自然资源局")
    assert case.due_day == "2026-12-09"  # the guide's proxy_working_days, 10

    d.login("w02", "s004")  # another staff member passes it on again
    passed = of_type(case_event(d, "panel-w02", ev.CasePassOn, case=case.no, to="市自然资源局"), CaseChanged)
    assert [(c.action, c.by, c.case.agent, c.case.passed_to) for c in passed] == [
        (CaseAction.PASSED_ON, "s004", "s002", "市自然资源局")
    ]
    (alert,) = of_kind(run_until(d, at(date(2026, 12, 9), 9)), K.CASE_OVERDUE)
    assert (alert.staff, alert.detail["holder"], alert.detail["passed_to"]) == ("s002", "s002", "市自然资源局")


def test_a_proxy_case_takes_the_promise_then_the_site_default_when_the_guide_has_no_proxy_time():
    d = cases_driver(at(WED, 9), guides={"budongchan": {"proxy_working_days": None}}, cases={"proxy_working_days": 3})
    assert opened(visit(d, "budongchan", "w03", "s003", O.PROXY)).due_day == "2026-12-02"  # the promise: 5
    assert opened(visit(d, "shebao", "w02", "s002", O.PROXY)).due_day == "2026-11-30"  # the site's 3


# -- 办不成事 ------------------------------------------------------------------------------------
def test_failed_goes_on_to_the_fallback_window_at_its_place_and_failing_there_opens_an_unresolved_case(request):
    d = request.node.driver = cases_driver(at(WED, 9))
    d.issue("shebao")  # A001, place 1
    d.issue("fankui")  # F001, place 2: waiting for the 办不成事 window already
    d.login("w02", "s002")
    commands = finish(d, "w02", O.FAILED)
    (ticket,) = [t for t in latest_state(commands)[0] if t.no == "A001"]
    assert (ticket.status, ticket.directed_window, ticket.transfers, ticket.outcome) == (
        TicketStatus.WAITING,
        "w09",
        1,
        None,
    )
    assert of_type(commands, CaseChanged) == []
    assert (the_reply(commands).routed_to, the_reply(commands).case) == ("w09", None)

    d.login("w09", "s004")
    assert d.call_next("w09") == "A001"  # its place kept: before F001
    d.ok("w09", ev.ServiceStart)
    commands = d.panel("w09", ev.ServiceFinish, outcome=O.FAILED)
    case = opened(commands)
    assert (case.kind, case.window, case.agent, case.due_day) == (CaseKind.UNRESOLVED, "w09", "s004", "2026-11-27")
    assert (case.first_window, case.first_staff) == ("w02", "s002")  # 首问
    (ticket,) = [t for t in latest_state(commands)[0] if t.no == "A001"]
    assert (ticket.status, ticket.outcome, ticket.case_no) == (TicketStatus.DONE, O.FAILED, case.no)


def test_a_visit_for_the_fallback_service_itself_that_fails_opens_the_unresolved_case_where_it_is():
    """办不成事反映 served at a comprehensive window is the 兜底 already: no second round."""
    d = cases_driver(at(WED, 9))
    case = opened(visit(d, "fankui", "w01", "s001", O.FAILED))
    assert (case.kind, case.window, case.service, case.due_day) == (CaseKind.UNRESOLVED, "w01", "fankui", "2026-12-02")


def test_without_a_fallback_window_failed_opens_the_unresolved_case_where_it_failed():
    d = cases_driver(
        at(WED, 9),
        fallback=False,
        guides={"shebao": {"unresolved_reply_working_days": None}},
        cases={"unresolved_reply_working_days": 4},
    )
    case = opened(visit(d, "shebao", "w02", "s002", O.FAILED))
    assert (case.kind, case.window, case.due_day) == (CaseKind.UNRESOLVED, "w02", "2026-12-01")


# -- 一次性告知 -----------------------------------------------------------------------------------
def test_a_second_informed_for_the_same_matter_is_a_breach(request):
    d = request.node.driver = cases_driver(at(WED, 9))
    citizen = citizen_key(CITIZEN_SECRET, "13800000000")
    first = visit(d, "budongchan", "w03", "s003", O.INFORMED, citizen=citizen, missing=(2, "完税凭证", 2))
    (issued,) = of_type(first, NoticeIssued)
    notice = issued.notice
    assert (notice.missing, notice.breach, notice.matter, notice.citizen) == (
        ("居民身份证", "完税凭证"),
        False,
        notice.no,
        citizen,
    )
    assert the_reply(first).notice == notice.no == "G20261125001"
    # (what the panel's 一次性告知书 shows: the reply carries the service and the missing materials)
    assert (the_reply(first).service, the_reply(first).missing) == ("budongchan", ("居民身份证", "完税凭证"))

    # The same citizen for another service: another matter.
    other = visit(d, "shebao", "w02", "s002", O.INFORMED, citizen=citizen, missing=("户口簿",))
    assert of_type(other, NoticeIssued)[0].notice.breach is False

    # Two days later, the same citizen and service: told again, a breach.
    d.now = at(date(2026, 11, 27), 9)
    second = visit(d, "budongchan", "w01", "s001", O.INFORMED, citizen=citizen, missing=(1,))
    (again,) = of_type(second, NoticeIssued)
    assert (again.notice.breach, again.notice.previous, again.notice.matter) == (True, notice.no, notice.no)
    (breach,) = of_kind(second, K.NOTICE_REPEATED)
    assert (breach.subject, breach.window, breach.staff, breach.detail["previous"]) == (
        again.notice.no,
        "w01",
        "s001",
        notice.no,
    )
    assert ALERT_KINDS[K.NOTICE_REPEATED].closed_by_acknowledgement


def test_the_number_the_citizen_brings_links_the_visit_to_its_matter_and_a_phone_ticket_knows_its_citizen():
    d = cases_driver(at(WED, 9))
    # A number taken with a phone: the citizen is known by the key the web kept of the phone.
    phone = citizen_key(CITIZEN_SECRET, "13900000000")
    slip = d.issue("budongchan", phone=phone, phone_tail="0000")
    code = d.hall.tickets[slip.no].check_in_code  # (reserved until its citizen checks in at the hall)
    assert d.send(ev.TicketCheckIn(site=d.hall.id, device="kiosk-1", id="check-in", code=code))[-1].ok
    d.login("w03", "s003")
    notice = of_type(finish(d, "w03", O.INFORMED, missing=(1,)), NoticeIssued)[0].notice
    assert notice.citizen == phone == citizen_key(CITIZEN_SECRET, "139 0000 0000")

    # Back with the 告知书's number, at another window: linked, and done this time.
    commands = visit(d, "budongchan", "w01", "s001", O.ACCEPTED, refer=notice.no)
    case = opened(commands)
    assert case.matter == notice.no
    (ticket,) = [t for t in latest_state(commands)[0] if t.no == "B002"]
    assert (ticket.matter, ticket.case_no) == (notice.no, case.no)

    # Telling again within the matter, by its case number, is a breach too.
    again = visit(d, "budongchan", "w03", "s003", O.INFORMED, refer=case.no, missing=(4,))
    assert of_type(again, NoticeIssued)[0].notice.previous == notice.no


@pytest.mark.parametrize(
    ("fields", "code", "says"),
    [
        ({"outcome": O.INFORMED, "missing": (5,)}, ErrorCode.BAD_REQUEST, "第 5 项不存在"),
        ({"outcome": O.INFORMED, "missing": ("户口本",)}, ErrorCode.BAD_REQUEST, "不在办事指南的申请材料中"),
        ({"outcome": O.DONE, "missing": (1,)}, ErrorCode.BAD_REQUEST, "missing 只用于一次性告知"),
        ({"outcome": O.ACCEPTED, "passed_to": "县局"}, ErrorCode.BAD_REQUEST, "只用于帮办代办"),
        ({"outcome": O.PROXY, "agent": "s999"}, ErrorCode.UNKNOWN_STAFF, "s999"),
        ({"outcome": O.DONE, "refer": "G20200101001"}, ErrorCode.UNKNOWN_CASE, "G20200101001"),
    ],
)
def test_a_finish_whose_fields_do_not_fit_is_refused_and_changes_nothing(fields, code, says):
    d = cases_driver(at(WED, 9))
    d.issue("budongchan")
    d.login("w03", "s003")
    d.call_next("w03")
    d.ok("w03", ev.ServiceStart)
    before = (dict(d.hall.tickets), dict(d.hall.windows), dict(d.hall.cases.cases), dict(d.hall.cases.notices))
    reply = the_reply(d.panel("w03", ev.ServiceFinish, **fields))
    assert (reply.ok, reply.error) == (False, code.value) and says in (reply.message or "")
    assert (dict(d.hall.tickets), dict(d.hall.windows), dict(d.hall.cases.cases), dict(d.hall.cases.notices)) == before


# -- 即办件 accepted: flagged for the manager ---------------------------------------------------------
def test_an_on_the_spot_item_accepted_is_flagged_for_the_manager_and_opens_no_case(request):
    d = request.node.driver = cases_driver(at(WED, 9))
    commands = visit(d, "shebao", "w02", "s002", O.ACCEPTED)
    assert of_type(commands, CaseChanged) == []
    (flag,) = of_kind(commands, K.ON_THE_SPOT_DEFERRED)
    assert (flag.window, flag.staff, flag.detail["ticket"]) == ("w02", "s002", "A001")
    assert ALERT_KINDS[K.ON_THE_SPOT_DEFERRED].audience is Audience.MANAGER
    closed = alert_changes(d.send(acknowledge(flag.id, by="manager:赵")))
    assert [a.state for a in closed] == [AlertState.ACKNOWLEDGED, AlertState.RESOLVED]
    assert of_kind(visit(d, "shebao", "w02", "s002", O.DONE), K.ON_THE_SPOT_DEFERRED) == []


# -- 首问负责 -----------------------------------------------------------------------------------------
def test_the_first_window_and_staff_of_a_visit_survive_later_calls_and_transfers():
    d = cases_driver(at(WED, 9))
    d.issue("budongchan")
    d.login("w01", "s001")
    d.call_next("w01")
    d.ok("w01", ev.TicketTransfer, to_window="w03")
    d.login("w03", "s003")
    d.call_next("w03")
    d.ok("w03", ev.CallSkip)
    d.ok("w03", ev.CallPick, ticket="B001")  # came back late: called again
    d.ok("w03", ev.ServiceStart)
    commands = d.panel("w03", ev.ServiceFinish, outcome=O.ACCEPTED)
    (ticket,) = [t for t in latest_state(commands)[0] if t.no == "B001"]
    assert (ticket.first_window, ticket.first_staff, ticket.window, ticket.staff) == ("w01", "s001", "w03", "s003")
    assert (opened(commands).first_window, opened(commands).first_staff) == ("w01", "s001")


# -- the case's own events ------------------------------------------------------------------------------
def test_each_case_event_is_recorded_with_who_and_when_and_a_closed_case_takes_no_more():
    d = cases_driver(at(WED, 9))
    case = opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED))
    log = []
    for device, cls, fields in (
        ("panel-w03", ev.CaseNote, {"note": "已报县局审核"}),
        ("manager:赵主任", ev.CasePassOn, {"to": "县自然资源局"}),  # the manager console (web)
        ("panel-w03", ev.CaseReturn, {"note": "权属证书与登记簿不符"}),
    ):
        commands = case_event(d, device, cls, case=case.no, **fields)
        assert the_reply(commands).ok
        log += [(c.action, c.by, c.at, c.note, c.case.status) for c in of_type(commands, CaseChanged)]
    assert log == [
        (CaseAction.NOTE, "s003", log[0][2], "已报县局审核", CaseStatus.OPEN),
        (CaseAction.PASSED_ON, "manager:赵主任", log[1][2], "", CaseStatus.OPEN),
        (CaseAction.RETURNED, "s003", log[2][2], "权属证书与登记簿不符", CaseStatus.RETURNED),
    ]
    assert log[0][2] < log[1][2] < log[2][2]
    closed = d.hall.cases.cases[case.no]
    assert (closed.result, closed.closed_by, closed.passed_to) == ("权属证书与登记簿不符", "s003", "县自然资源局")
    for cls, fields, code in (
        (ev.CaseWithdraw, {}, ErrorCode.CASE_CLOSED),
        (ev.CaseNote, {"note": "x"}, ErrorCode.CASE_CLOSED),
    ):
        reply = the_reply(case_event(d, "panel-w03", cls, case=case.no, **fields))
        assert (reply.ok, reply.error) == (False, code.value)
    reply = the_reply(case_event(d, "panel-w03", ev.CaseNote, case="J20990101001", note="x"))
    assert reply.error == ErrorCode.UNKNOWN_CASE.value
    assert d.hall.windows["w02"].staff is None
    reply = the_reply(case_event(d, "panel-w02", ev.CaseNote, case=case.no, note="x"))
    assert reply.error == ErrorCode.NOT_LOGGED_IN.value  # a panel acts for its staff member


# -- a restart ---------------------------------------------------------------------------------------------
def test_a_restart_keeps_every_open_case_and_its_due_timers(request):
    d = cases_driver(at(WED, 9))
    first = opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED))  # due 12-02
    d.now = at(date(2026, 11, 30), 9)
    second = opened(visit(d, "budongchan", "w03", "s003", O.PROXY))  # due 12-14
    closed = opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED))
    case_event(d, "panel-w03", ev.CaseWithdraw, case=closed.no)
    fired = of_kind(run_until(d, at(date(2026, 12, 2), 10)), K.CASE_OVERDUE)
    assert [a.subject for a in fired] == [first.no]
    today = opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED))  # due 12-09

    # Restart from what the store keeps: the latest states, the open alerts, the cases.
    now = d.now + 60
    tickets, windows = latest_state(d.log)
    cases = {c.case.no: c.case for c in of_type(d.log, CaseChanged)}
    notices = [c.notice for c in of_type(d.log, NoticeIssued)]
    alerts = [a for a in latest_alerts(d.log).values() if a.open]
    restarted = cases_driver(at(date(2026, 11, 20), 9))  # (a fresh engine of the same site)
    engine = Engine([restarted.hall.site], OFFICIAL)
    engine.restore(
        now=now, tickets=tickets, windows=windows, alerts=alerts, cases=list(cases.values()), notices=notices
    )
    after = Driver(engine, now=now)
    after.log += engine.tick(now)
    request.node.driver = after
    assert [c.no for c in engine.hall(SITE_ID).cases.open_cases()] == [first.no, today.no, second.no]
    assert of_kind(after.log, K.CASE_OVERDUE) == []  # not fired twice

    # Numbering goes on after the numbers of the day restored.
    after.login("w03", "s003")
    after.issue("budongchan")
    assert (today.no, opened(finish(after, "w03", O.ACCEPTED)).no) == ("J20261202001", "J20261202002")

    (critical,) = of_kind(run_until(after, at(date(2026, 12, 3), 0, 1)), K.CASE_OVERDUE)
    assert (critical.id, critical.overdue) == (fired[0].id, True)
    warnings = of_kind(run_until(after, at(date(2026, 12, 14), 9)), K.CASE_OVERDUE)
    assert [(a.subject, a.severity, a.staff) for a in warnings] == [
        (today.no, "warning", "s003"),
        ("J20261202002", "warning", "s003"),
        (today.no, "critical", "s003"),
        ("J20261202002", "critical", "s003"),
        (second.no, "warning", "s003"),
    ]


# -- 上门办理: a case without a ticket, and the fieldwork for it ----------------------------------------
def home_visit(d: Driver, window: str, service: str = "budongchan", **fields):
    return d.panel(window, ev.CaseOpen, service=service, **fields)


def test_an_agent_opens_a_home_visit_case_without_a_ticket(request):
    d = request.node.driver = cases_driver(at(WED, 9))
    d.login("w01", "s001")
    citizen = citizen_key(CITIZEN_SECRET, "13700000000")
    commands = home_visit(d, "w01", citizen=citizen, note="独居老人，行动不便")
    (change,) = of_type(commands, CaseChanged)
    case = change.case
    assert (change.action, change.by, change.note) == (CaseAction.OPENED, "s001", "上门办理；独居老人，行动不便")
    assert (case.kind, case.service, case.ticket, case.window, case.agent, case.citizen) == (
        CaseKind.PROXY,
        "budongchan",
        None,
        "w01",
        "s001",
        citizen,
    )
    assert (case.first_window, case.first_staff, case.due_day) == ("w01", "s001", "2026-12-09")  # 帮办代办: 10 days
    assert the_reply(commands).case == case.no == "J20261125001"
    assert d.hall.tickets == {} and d.hall.cases.open_cases() == [case]  # no queue ticket

    # Refused, changing nothing: an unknown service, a window nobody is logged in at.
    for window, service, code in (("w01", "nosuch", ErrorCode.UNKNOWN_SERVICE), ("w02", "budongchan", "not_logged_in")):
        reply = the_reply(home_visit(d, window, service=service))
        assert (reply.ok, reply.error) == (False, code)
    assert len(d.hall.cases.open_cases()) == 1


def test_fieldwork_for_a_case_is_no_pause_overrun_and_is_logged_in_the_case(request):
    # Working time 08:30-12:00 and 14:30-17:30; fieldwork is allowed 240 minutes.
    d = request.node.driver = cases_driver(at(WED, 9))
    d.login("w01", "s001")
    d.login("w02", "s002")
    case = of_type(home_visit(d, "w01"), CaseChanged)[0].case
    refused = the_reply(d.panel("w01", ev.WindowPause, reason=ev.PauseReason.MEAL, case=case.no))
    assert (refused.ok, refused.error) == (False, "bad_request")
    refused = the_reply(d.panel("w01", ev.WindowPause, reason=ev.PauseReason.FIELDWORK, case="J20261125999"))
    assert (refused.ok, refused.error) == (False, "unknown_case")

    commands = d.panel("w01", ev.WindowPause, reason=ev.PauseReason.FIELDWORK, case=case.no)
    (out,) = of_type(commands, CaseChanged)
    assert (out.action, out.by, out.at, out.case.no) == (CaseAction.FIELDWORK, "s001", d.now, case.no)
    assert d.hall.windows["w01"].pause_case == case.no
    d.ok("w02", ev.WindowPause, reason=ev.PauseReason.FIELDWORK)  # the same time out, for no case

    fired = of_kind(run_until(d, at(WED, 17)), K.PAUSE_OVERRUN)
    assert [(a.window, a.state) for a in fired] == [("w02", AlertState.FIRING)]  # 15:30: only w02

    # Back, and out again for no case: the allowance counts again.
    d.ok("w01", ev.WindowResume)
    assert d.hall.windows["w01"].pause_case is None
    d.ok("w01", ev.WindowPause, reason=ev.PauseReason.FIELDWORK)
    later = of_kind(run_until(d, at(date(2026, 11, 26), 17)), K.PAUSE_OVERRUN)
    assert ("w01", AlertState.FIRING) in [(a.window, a.state) for a in later]


def test_a_closed_case_takes_no_fieldwork_and_a_restart_keeps_the_pause_s_case(request):
    d = cases_driver(at(WED, 9))
    d.login("w01", "s001")
    done = of_type(home_visit(d, "w01"), CaseChanged)[0].case
    case_event(d, "panel-w01", ev.CaseComplete, case=done.no, result="已代办完成")
    refused = the_reply(d.panel("w01", ev.WindowPause, reason=ev.PauseReason.FIELDWORK, case=done.no))
    assert (refused.ok, refused.error) == (False, "case_closed")
    case = of_type(home_visit(d, "w01"), CaseChanged)[0].case
    d.ok("w01", ev.WindowPause, reason=ev.PauseReason.FIELDWORK, case=case.no)

    tickets, windows = latest_state(d.log)
    cases = {c.case.no: c.case for c in of_type(d.log, CaseChanged)}
    engine = Engine([d.hall.site], OFFICIAL)
    engine.restore(now=d.now, tickets=tickets, windows=windows, alerts=[], cases=list(cases.values()), notices=[])
    after = request.node.driver = Driver(engine, now=d.now)
    after.log += engine.tick(d.now)
    assert engine.hall(SITE_ID).windows["w01"].pause_case == case.no
    assert of_kind(run_until(after, at(WED, 17, 30)), K.PAUSE_OVERRUN) == []
