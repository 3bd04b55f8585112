"""电子监察 in the pure core, driven directly: scripted events, time as a plain number.

Every moment is built with datetime in Asia/Shanghai (``local_ts``); the core never reads a
clock and nothing is patched. Timers run at their own deadlines (``run_until`` ticks the
engine at each ``next_deadline()``), as the timer shell does. Where the real Chinese
calendar matters (holidays, 调休 working weekends, follow-up deadlines) the engine gets
``official_calendar()``, built from the chinese-calendar package.

The site (tests/core_helpers.py): hours 08:30-12:00 and 14:30-17:30; windows w01
(comprehensive, with camera cam-w01, panel and pad), w02, w03, w09 (panels only). All four
windows must be staffed unless a test says otherwise. Defaults: not_opened grace 10 min,
unstaffed grace 5 min, clear_after 60 s, break 15 min / meal 60 min / other 30 min,
unauthorized 5 refusals in 10 min, bad rating <= 2 followed up within 5 working days.

Every test's whole command log is checked (autouse fixture) for the alert invariants: an
alert keeps its id, kind, subject and start; never two open alerts of one kind and subject;
a resolved alert ends no earlier than it began.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta

import pytest
from core_helpers import (
    SITE_ID,
    Driver,
    acknowledge,
    alert_changes,
    alert_invariant_problems,
    device_status,
    heartbeat,
    latest_alerts,
    latest_state,
    local_ts,
    make_supervised_engine,
    of_type,
    panel_event,
    presence,
    rating,
    refusal,
    run_until,
    tamper,
    the_reply,
    ticket_request,
)

from queue_engine.calendar import official_calendar
from queue_engine.core import ErrorCode
from queue_engine.core import events as ev
from queue_engine.core.alerts import Alert, AlertKind, AlertState, Watch
from queue_engine.core.commands import (
    AlertChanged,
    Command,
    DeviceChanged,
    Notice,
    RatingRecorded,
    Reply,
    TimeAccounted,
    WindowChanged,
)

K = AlertKind
S = AlertState
MIN = 60.0
DAY_S = 24 * 3600.0
OFFICIAL = official_calendar()

# A plain working week in November 2026 (no holiday anywhere near).
WED = date(2026, 11, 25)
THU = date(2026, 11, 26)


def at(day: date, hour: int, minute: int = 0, second: float = 0) -> float:
    return local_ts(day.year, day.month, day.day, hour, minute, second)


def wed(hour: int, minute: int = 0, second: float = 0) -> float:
    return at(WED, hour, minute, second)


# -- drivers, checked for the alert invariants after every test ------------------------------
_drivers: list[Driver] = []


def start(moment: float, *, official: bool = True, **site) -> Driver:
    """A fresh engine whose day starts at ``moment`` (``official``: the real Chinese calendar;
    otherwise Monday-Friday). Site options as in ``supervision_site_dict``."""
    d = Driver(make_supervised_engine(OFFICIAL if official else None, **site), now=moment)
    d.tick(moment)
    _drivers.append(d)
    return d


@pytest.fixture(autouse=True)
def _alert_invariants():
    _drivers.clear()
    yield
    for d in _drivers:
        assert alert_invariant_problems(d.log) == []


def send(d: Driver, event: ev.Event, moment: float) -> list[Command]:
    """Run the timers due before ``moment`` at their own times, then handle the event."""
    run_until(d, moment)
    return d.send(event, at=moment)


def ok(d: Driver, event: ev.Event, moment: float) -> list[Command]:
    commands = send(d, event, moment)
    reply = the_reply(commands)
    assert reply.ok, reply
    return commands


def alerts_of(d: Driver, kind: AlertKind | None = None, subject: str | None = None) -> list[Alert]:
    """The latest version of every alert of the log, optionally of one kind and subject."""
    return [
        a
        for a in latest_alerts(d.log).values()
        if (kind is None or a.kind is kind) and (subject is None or a.subject == subject)
    ]


def the_alert(d: Driver, kind: AlertKind, subject: str) -> Alert:
    found = alerts_of(d, kind, subject)
    assert len(found) == 1, found
    return found[0]


def changes(commands: list[Command], kind: AlertKind) -> list[Alert]:
    return [a for a in alert_changes(commands) if a.kind is kind]


def staff_w01(d: Driver, moment: float, staff: str = "s001") -> None:
    """w01 open and watched: its camera online, ``staff`` logged in, somebody at the seat."""
    send(d, device_status("cam-w01", True, kind="camera"), moment)
    ok(d, panel_event("w01", ev.StaffLogin, staff=staff), moment)
    send(d, presence("w01", True), moment)


def pause(d: Driver, window: str, reason: ev.PauseReason, moment: float) -> None:
    ok(d, panel_event(window, ev.WindowPause, reason=reason), moment)


def resume(d: Driver, window: str, moment: float) -> None:
    ok(d, panel_event(window, ev.WindowResume), moment)


# =========================================================================================
# working time: holidays, 调休, the midday break
# =========================================================================================
@pytest.mark.parametrize(
    ("day", "official", "alerted"),
    [
        (date(2026, 10, 1), True, False),  # 国庆节, a Thursday
        (date(2026, 10, 1), False, True),  # the same Thursday for an engine without the official calendar
        (date(2026, 10, 8), True, True),  # the first working day after the holiday
    ],
    ids=["national-day", "national-day-without-calendar", "day-after"],
)
def test_a_holiday_raises_no_alert_although_nobody_works_and_cameras_are_off(day, official, alerted):
    d = start(
        at(day, 0),
        official=official,
        supervision={"heartbeat_misses": 3},
        extra_devices=[{"id": "cam-w02", "kind": "camera", "window": "w02", "heartbeat_s": 10}],
    )
    # cam-w02 never speaks: silent after 30 s. w01: a login, an empty seat, a camera shut down.
    send(d, device_status("cam-w01", True), at(day, 9))
    ok(d, panel_event("w01", ev.StaffLogin, staff="s001"), at(day, 9))
    send(d, presence("w01", False), at(day, 9, 1))
    send(d, device_status("cam-w01", False, "shutdown"), at(day, 10))
    send(d, device_status("panel-w03", False, "lost"), at(day, 11))
    run_until(d, at(day, 23, 59, 59))

    offline = {c.device: c.reason for c in of_type(d.log, DeviceChanged) if not c.online}
    assert offline["cam-w02"] == "silent" and offline["cam-w01"] == "shutdown" and offline["panel-w03"] == "lost"
    if alerted:
        kinds = {(a.kind, a.subject) for a in alert_changes(d.log)}
        assert {
            (K.WINDOW_NOT_OPENED, "w02"),
            (K.WINDOW_NOT_OPENED, "w09"),
            (K.WINDOW_UNSTAFFED, "w01"),
            (K.DEVICE_SHUTDOWN, "cam-w01"),
            (K.DEVICE_OFFLINE, "cam-w02"),
            (K.DEVICE_OFFLINE, "panel-w03"),
        } <= kinds
    else:
        assert alert_changes(d.log) == []
        assert d.hall.supervisor.periods == []
        assert not d.hall.supervisor.working(at(day, 10))


@pytest.mark.parametrize(
    ("day", "official", "working"),
    [
        (date(2026, 10, 10), True, True),  # 调休: the Saturday worked for the National Day holiday
        (date(2026, 9, 20), True, True),  # 调休 Sunday
        (date(2026, 10, 17), True, False),  # a normal Saturday
        (date(2026, 10, 10), False, False),  # without the official calendar, just a Saturday
    ],
    ids=["tiaoxiu-saturday", "tiaoxiu-sunday", "normal-saturday", "saturday-without-calendar"],
)
def test_window_not_opened_on_a_tiaoxiu_weekend_day(day, official, working):
    d = start(at(day, 0), official=official)
    run_until(d, at(day, 8, 40) - 0.5)
    assert alerts_of(d, K.WINDOW_NOT_OPENED) == []
    run_until(d, at(day, 8, 40))
    fired = alerts_of(d, K.WINDOW_NOT_OPENED)
    if working:
        assert sorted(a.subject for a in fired) == ["w01", "w02", "w03", "w09"]
        for alert in fired:
            assert (alert.state, alert.since, alert.severity, alert.window, alert.staff, alert.until) == (
                S.FIRING,
                at(day, 8, 30),
                "warning",
                alert.subject,
                None,
                None,
            )
            assert alert.detail["grace_min"] == 10
    else:
        run_until(d, at(day, 23, 59, 59))
        assert alert_changes(d.log) == []


def test_the_midday_break_raises_nothing_and_counts_no_time():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    send(d, presence("w01", False), wed(11, 58))  # 2 minutes before the break: grace is 5
    run_until(d, wed(12, 0))
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []
    # In the break the seat is taken and left again: nothing either.
    send(d, presence("w01", True), wed(12, 10))
    send(d, presence("w01", False), wed(12, 20))
    run_until(d, wed(14, 29, 59))
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []
    assert d.hall.staffing("w01", d.now) == "unstaffed"  # the state is known, it just is not working time
    d.log += d.hall.supervisor.flush_accounting(wed(14, 29, 59))
    totals = d.hall.supervisor.totals
    assert totals[("window", "w01", "staffed")] == (3 * 60 + 28) * MIN  # 08:30-11:58
    assert totals[("window", "w01", "unstaffed")] == 2 * MIN  # 11:58-12:00, not the break
    assert totals[("staff", "s001", "unstaffed")] == 2 * MIN
    assert totals[("window", "w02", "not_opened")] == 210 * MIN  # it must be staffed: 空岗, never opened


def test_a_window_still_unstaffed_when_the_afternoon_opens_alerts_after_its_grace():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    send(d, presence("w01", False), wed(11, 58))
    run_until(d, wed(14, 35))
    alert = the_alert(d, K.WINDOW_UNSTAFFED, "w01")
    assert (alert.state, alert.since, alert.staff) == (S.FIRING, wed(14, 30), "s001")


def test_window_alerts_of_the_morning_end_when_the_hall_closes_for_the_break():
    d = start(wed(8))
    run_until(d, wed(12, 1))
    alert = the_alert(d, K.WINDOW_NOT_OPENED, "w02")
    assert (alert.state, alert.since, alert.until) == (S.RESOLVED, wed(8, 30), wed(12, 0))


def test_a_window_left_closed_after_the_break_raises_window_not_opened():
    d = start(wed(8))
    for window, staff in (("w01", "s001"), ("w02", "s002"), ("w03", "s003"), ("w09", "s004")):
        ok(d, panel_event(window, ev.StaffLogin, staff=staff), wed(8, 20))
    ok(d, panel_event("w02", ev.StaffLogout), wed(12, 5))  # leaves for lunch and never comes back
    run_until(d, wed(16))
    alert = the_alert(d, K.WINDOW_NOT_OPENED, "w02")
    assert (alert.state, alert.since) == (S.FIRING, wed(14, 30))


def test_a_camera_switched_off_during_the_break_alerts_when_the_afternoon_opens():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    assert changes(send(d, device_status("cam-w01", False, "shutdown"), wed(12, 30)), K.DEVICE_SHUTDOWN) == []
    run_until(d, wed(14, 30))
    alert = the_alert(d, K.DEVICE_SHUTDOWN, "cam-w01")
    assert (alert.state, alert.since) == (S.FIRING, wed(14, 30))


# =========================================================================================
# pauses
# =========================================================================================
def test_a_pause_within_its_allowance_raises_nothing():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    pause(d, "w01", ev.PauseReason.BREAK, wed(9))
    send(d, presence("w01", False), wed(9, 0, 30))  # the seat is empty during a declared pause
    assert d.hall.staffing("w01", d.now) == "paused"
    send(d, presence("w01", True), wed(9, 14))
    resume(d, "w01", wed(9, 14, 59))
    run_until(d, wed(11, 30))
    assert alerts_of(d, K.PAUSE_OVERRUN) == []
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []


@pytest.mark.parametrize(
    ("reason", "allowed_min", "supervision"),
    [
        (ev.PauseReason.BREAK, 15, {}),
        (ev.PauseReason.OTHER, 30, {}),
        (ev.PauseReason.MEETING, 45, {"pause_allowance_min": {"meeting": 45}}),
        (ev.PauseReason.BREAK, 7, {"pause_allowance_min": {"break": 7}}),
    ],
)
def test_a_pause_beyond_its_allowance_raises_pause_overrun_until_resumed(reason, allowed_min, supervision):
    d = start(wed(8), supervision=supervision)
    staff_w01(d, wed(8, 20))
    paused_at = wed(9, 0, 10)
    pause(d, "w01", reason, paused_at)
    due = paused_at + allowed_min * MIN
    assert d.engine.next_deadline() <= due  # a timer, not a poll
    run_until(d, due - 0.5)
    assert alerts_of(d, K.PAUSE_OVERRUN) == []
    (alert,) = changes(run_until(d, due), K.PAUSE_OVERRUN)
    assert (alert.state, alert.since, alert.window, alert.staff, alert.severity, alert.subject) == (
        S.FIRING,
        due,
        "w01",
        "s001",
        "warning",
        "w01",
    )
    assert alert.detail == {"reason": reason.value, "paused_at": paused_at, "allowed_min": allowed_min}
    resumed = due + 5 * MIN
    resume(d, "w01", resumed)
    run_until(d, resumed + 59)
    assert the_alert(d, K.PAUSE_OVERRUN, "w01").state is S.FIRING
    run_until(d, resumed + 60)
    alert = the_alert(d, K.PAUSE_OVERRUN, "w01")
    assert (alert.state, alert.until, alert.duration_s) == (S.RESOLVED, resumed, 5 * MIN)


def test_a_pause_allowance_counts_working_time_only():
    """A meal pause (60 min) taken at 11:30 uses 30 minutes before the break and 30 after."""
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    pause(d, "w01", ev.PauseReason.MEAL, wed(11, 30))
    run_until(d, wed(14, 59, 59))
    assert alerts_of(d, K.PAUSE_OVERRUN) == []
    run_until(d, wed(15))
    alert = the_alert(d, K.PAUSE_OVERRUN, "w01")
    assert (alert.state, alert.since, alert.detail["allowed_min"]) == (S.FIRING, wed(15), 60)


# =========================================================================================
# devices: Last Will, heartbeat silence, orderly shutdown, 24-hour terminals, tamper
# =========================================================================================
def test_a_camera_lost_raises_device_offline_and_leaves_its_window_unverified():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    assert d.hall.staffing("w01", d.now) == "staffed"
    send(d, presence("w01", False), wed(10))
    commands = send(d, device_status("cam-w01", False, "lost"), wed(10, 2))
    (changed,) = of_type(commands, DeviceChanged)
    assert (changed.device, changed.online, changed.reason, changed.at) == ("cam-w01", False, "lost", wed(10, 2))
    (alert,) = alert_changes(commands)
    assert (
        alert.kind,
        alert.state,
        alert.severity,
        alert.subject,
        alert.device,
        alert.window,
        alert.staff,
        alert.since,
    ) == (K.DEVICE_OFFLINE, S.FIRING, "critical", "cam-w01", "cam-w01", "w01", "s001", wed(10, 2))
    assert (alert.detail["kind"], alert.detail["reason"]) == ("camera", "lost")
    assert d.hall.staffing("w01", d.now) == "unverified" == d.hall.supervisor.staffing("w01", d.now)
    # the window is republished, so the board can show "unverified"
    assert [c.window.window for c in of_type(commands, WindowChanged)] == ["w01"]
    # Nobody at the seat for half an hour, but no camera to tell: no window_unstaffed.
    run_until(d, wed(10, 32))
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []
    # The camera returns and still sees nobody: the grace counts from its return.
    send(d, device_status("cam-w01", True), wed(10, 32))
    run_until(d, wed(10, 37) - 0.5)
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []
    run_until(d, wed(10, 37))
    unstaffed = the_alert(d, K.WINDOW_UNSTAFFED, "w01")
    assert (unstaffed.state, unstaffed.since, unstaffed.staff) == (S.FIRING, wed(10, 32), "s001")
    offline = the_alert(d, K.DEVICE_OFFLINE, "cam-w01")
    assert (offline.state, offline.until) == (S.RESOLVED, wed(10, 32))


def test_a_panel_lost_is_device_offline_with_warning_severity():
    d = start(wed(9))
    (alert,) = alert_changes(send(d, device_status("panel-w02", False, "lost"), wed(9, 30)))
    assert (alert.kind, alert.severity, alert.window, alert.staff, alert.detail["kind"]) == (
        K.DEVICE_OFFLINE,
        "warning",
        "w02",
        None,
        "panel",
    )
    # an orderly shutdown of a panel is no supervision fault
    assert changes(send(d, device_status("panel-w03", False, "shutdown"), wed(9, 31)), K.DEVICE_SHUTDOWN) == []


@pytest.mark.parametrize(("heartbeat_s", "misses"), [(10, 3), (5, 4), (30, 2)])
def test_a_device_that_stops_heartbeating_is_offline_exactly_at_its_timeout(heartbeat_s, misses):
    d = start(
        wed(9),
        supervision={"heartbeat_misses": misses},
        extra_devices=[{"id": "cam-w02", "kind": "camera", "window": "w02", "heartbeat_s": heartbeat_s}],
    )
    first = wed(9, 0, 1)
    send(d, device_status("cam-w02", True), first)
    for seq in (1, 2, 3):
        send(d, heartbeat("cam-w02", seq), first + seq * heartbeat_s)
    last = first + 3 * heartbeat_s
    silent_at = last + heartbeat_s * misses
    assert d.hall.supervisor.devices["cam-w02"].online is True
    while True:  # the timer shell: wake at each deadline
        deadline = d.engine.next_deadline()
        assert deadline <= silent_at, "no deadline at the heartbeat timeout"
        commands = d.tick(deadline)
        offline = [c for c in of_type(commands, DeviceChanged) if c.device == "cam-w02"]
        if offline:
            break
    assert deadline == silent_at
    assert [(c.online, c.reason, c.at) for c in offline] == [(False, "silent", silent_at)]
    (alert,) = changes(commands, K.DEVICE_OFFLINE)
    assert (alert.subject, alert.since, alert.severity, alert.window) == ("cam-w02", silent_at, "critical", "w02")
    assert (alert.detail["reason"], alert.detail["last_seen_at"]) == ("silent", last)
    assert d.hall.staffing("w02", d.now) == "not_opened"  # nobody logged in; an open w02 would be unverified
    # One heartbeat brings it back; the alert resolves once it has stayed back for clear_after.
    back = silent_at + 100
    back_commands = send(d, heartbeat("cam-w02", 4), back)
    assert [(c.online, c.at) for c in of_type(back_commands, DeviceChanged)] == [(True, back)]
    for seq in range(5, 5 + int(60 // heartbeat_s) + 1):
        send(d, heartbeat("cam-w02", seq), back + (seq - 4) * heartbeat_s)
    run_until(d, back + 60)
    alert = the_alert(d, K.DEVICE_OFFLINE, "cam-w02")
    assert (alert.state, alert.until) == (S.RESOLVED, back)


def test_steady_heartbeats_keep_a_device_online():
    d = start(
        wed(9),
        supervision={"heartbeat_misses": 3},
        extra_devices=[{"id": "cam-w02", "kind": "camera", "window": "w02", "heartbeat_s": 10}],
    )
    send(d, device_status("cam-w02", True), wed(9, 0, 1))
    for seq in range(1, 31):  # every 25 s: late, but within 3 x 10 s
        send(d, heartbeat("cam-w02", seq), wed(9, 0, 1) + 25 * seq)
    assert [c for c in of_type(d.log, DeviceChanged) if c.device == "cam-w02" and not c.online] == []
    assert alerts_of(d, K.DEVICE_OFFLINE, "cam-w02") == []


def test_an_orderly_camera_shutdown_at_ten_on_a_working_day_raises_device_shutdown():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    commands = send(d, device_status("cam-w01", False, "shutdown"), wed(10))
    assert [(c.online, c.reason) for c in of_type(commands, DeviceChanged)] == [(False, "shutdown")]
    (alert,) = alert_changes(commands)
    assert (alert.kind, alert.state, alert.severity, alert.device, alert.window, alert.staff, alert.since) == (
        K.DEVICE_SHUTDOWN,
        S.FIRING,
        "critical",
        "cam-w01",
        "w01",
        "s001",
        wed(10),
    )
    assert alert.detail["kind"] == "camera"
    assert d.hall.staffing("w01", d.now) == "unverified"
    run_until(d, wed(10, 30))
    assert alerts_of(d, K.DEVICE_OFFLINE) == []  # orderly: shutdown, not offline
    send(d, device_status("cam-w01", True), wed(10, 30))
    run_until(d, wed(10, 31))
    alert = the_alert(d, K.DEVICE_SHUTDOWN, "cam-w01")
    assert (alert.state, alert.until, alert.duration_s) == (S.RESOLVED, wed(10, 30), 30 * MIN)


@pytest.mark.parametrize("back_before_opening", [False, True])
def test_an_orderly_camera_shutdown_at_twenty_raises_nothing_until_the_next_opening(back_before_opening):
    """20:00 is outside working hours: no alert. A camera still off when the hall opens the
    next working morning raises device_shutdown at opening time (the code's behaviour, and a
    sensible one: the policy wants the cameras on in working hours). Its ``since`` is the
    opening time, not the moment it was switched off."""
    d = start(wed(19))
    send(d, device_status("cam-w01", True), wed(19))
    commands = send(d, device_status("cam-w01", False, "shutdown"), wed(20))
    assert [(c.online, c.reason) for c in of_type(commands, DeviceChanged)] == [(False, "shutdown")]
    assert alert_changes(commands) == []
    if back_before_opening:
        send(d, device_status("cam-w01", True), at(THU, 8, 0))
    run_until(d, at(THU, 8, 29, 59))
    assert alerts_of(d, subject="cam-w01") == []
    run_until(d, at(THU, 8, 30))
    if back_before_opening:
        assert alerts_of(d, subject="cam-w01") == []
    else:
        alert = the_alert(d, K.DEVICE_SHUTDOWN, "cam-w01")
        assert (alert.state, alert.since, alert.severity) == (S.FIRING, at(THU, 8, 30), "critical")


@pytest.mark.parametrize("day", [WED, date(2026, 10, 1)], ids=["working-day", "holiday"])
def test_a_24_hour_selfservice_terminal_offline_at_22_is_an_alert_a_camera_is_not(day):
    d = start(at(day, 21), extra_devices=[{"id": "ss-1", "kind": "selfservice"}])
    send(d, device_status("ss-1", True, kind="selfservice"), at(day, 21))
    send(d, device_status("cam-w01", True, kind="camera"), at(day, 21))
    assert alert_changes(send(d, device_status("cam-w01", False, "lost"), at(day, 22))) == []
    (alert,) = alert_changes(send(d, device_status("ss-1", False, "lost"), at(day, 22, 0, 1)))
    assert (alert.kind, alert.severity, alert.device, alert.window, alert.staff, alert.since) == (
        K.DEVICE_OFFLINE,
        "critical",
        "ss-1",
        None,
        None,
        at(day, 22, 0, 1),
    )
    send(d, device_status("ss-1", True), at(day, 22, 30))
    run_until(d, at(day, 22, 31))
    assert the_alert(d, K.DEVICE_OFFLINE, "ss-1").until == at(day, 22, 30)
    (shutdown,) = alert_changes(send(d, device_status("ss-1", False, "shutdown"), at(day, 23)))
    assert (shutdown.kind, shutdown.severity) == (K.DEVICE_SHUTDOWN, "critical")
    assert alerts_of(d, subject="cam-w01") == []


def test_camera_tamper_during_working_hours():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    (alert,) = alert_changes(send(d, tamper("cam-w01", "occluded"), wed(10)))
    assert (alert.kind, alert.severity, alert.device, alert.window, alert.staff, alert.since, alert.detail) == (
        K.CAMERA_TAMPER,
        "critical",
        "cam-w01",
        "w01",
        "s001",
        wed(10),
        {"tamper": "occluded"},
    )
    assert d.hall.staffing("w01", d.now) == "unverified"
    send(d, presence("w01", False), wed(10, 5))
    run_until(d, wed(10, 29))
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []  # unverified, not unstaffed
    send(d, presence("w01", True), wed(10, 29))
    send(d, tamper("cam-w01", "restored"), wed(10, 30))
    run_until(d, wed(10, 31))
    assert (the_alert(d, K.CAMERA_TAMPER, "cam-w01").state, d.hall.staffing("w01", d.now)) == (S.RESOLVED, "staffed")
    # video lost, as a heartbeat says it
    (video,) = alert_changes(send(d, heartbeat("cam-w01", 1, video_ok=False), wed(11)))
    assert (video.kind, video.detail) == (K.CAMERA_TAMPER, {"tamper": "video_lost"})
    send(d, heartbeat("cam-w01", 2, video_ok=True), wed(11, 10))
    run_until(d, wed(11, 11))
    assert [a.state for a in alerts_of(d, K.CAMERA_TAMPER)] == [S.RESOLVED, S.RESOLVED]
    # after hours: nothing
    assert alert_changes(send(d, tamper("cam-w01", "moved"), wed(20))) == []


# =========================================================================================
# presence: grace, flapping
# =========================================================================================
@pytest.mark.parametrize(("grace_min", "supervision"), [(5, {}), (2, {"unstaffed_grace_min": 2})])
def test_window_unstaffed_fires_after_its_grace_of_absence(grace_min, supervision):
    d = start(wed(8), supervision=supervision)
    staff_w01(d, wed(8, 20))
    gone = wed(9, 0, 5)
    send(d, presence("w01", False), gone)
    assert d.hall.staffing("w01", d.now) == "unstaffed"
    run_until(d, gone + grace_min * MIN - 0.5)
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []
    (alert,) = changes(run_until(d, gone + grace_min * MIN), K.WINDOW_UNSTAFFED)
    assert (alert.state, alert.since, alert.window, alert.staff, alert.severity) == (
        S.FIRING,
        gone,
        "w01",
        "s001",
        "warning",
    )
    assert alert.detail["grace_min"] == grace_min and alert.detail["cameras"] == ["cam-w01"]


def test_window_unstaffed_needs_an_open_window_and_a_camera():
    d = start(wed(8))
    send(d, device_status("cam-w01", True), wed(8))
    send(d, presence("w01", False), wed(9))  # w01 closed: that is window_not_opened's business
    ok(d, panel_event("w02", ev.StaffLogin, staff="s002"), wed(9))  # w02 has no camera
    run_until(d, wed(10))
    assert d.hall.staffing("w01", d.now) == "not_opened" and d.hall.staffing("w02", d.now) == "unverified"
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []
    assert the_alert(d, K.WINDOW_NOT_OPENED, "w01").state is S.FIRING


def test_flapping_presence_keeps_counting_and_raises_one_alert():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    t0 = wed(9)
    # back for 50 s and for 30 s: both shorter than clear_after (60 s), so the count goes on
    for offset, present in ((0, False), (100, True), (150, False), (200, True), (230, False)):
        send(d, presence("w01", present), t0 + offset)
    run_until(d, t0 + 300 - 0.5)
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []
    run_until(d, t0 + 300)
    assert [(a.state, a.since) for a in alerts_of(d, K.WINDOW_UNSTAFFED)] == [(S.FIRING, t0)]
    # more flapping once it fires: the same alert, not new ones
    for k in range(5):
        send(d, presence("w01", True), t0 + 320 + 60 * k)
        send(d, presence("w01", False), t0 + 350 + 60 * k)
    run_until(d, t0 + 690)
    assert [a.state for a in alerts_of(d, K.WINDOW_UNSTAFFED)] == [S.FIRING]
    # a presence lasting longer than clear_after resolves it, ending when the seat was taken
    back = t0 + 700
    send(d, presence("w01", True), back)
    run_until(d, back + 59)
    assert the_alert(d, K.WINDOW_UNSTAFFED, "w01").state is S.FIRING
    run_until(d, back + 60)
    alert = the_alert(d, K.WINDOW_UNSTAFFED, "w01")
    assert (alert.state, alert.since, alert.until, alert.duration_s) == (S.RESOLVED, t0, back, 700)
    assert len({a.id for a in alert_changes(d.log) if a.kind is K.WINDOW_UNSTAFFED}) == 1


def test_a_presence_longer_than_clear_after_restarts_the_grace():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    t0 = wed(9)
    send(d, presence("w01", False), t0)
    send(d, presence("w01", True), t0 + 60)
    send(d, presence("w01", False), t0 + 150)  # back for 90 s: the earlier absence is forgotten
    run_until(d, t0 + 150 + 300 - 0.5)
    assert alerts_of(d, K.WINDOW_UNSTAFFED) == []
    run_until(d, t0 + 150 + 300)
    assert the_alert(d, K.WINDOW_UNSTAFFED, "w01").since == t0 + 150


# =========================================================================================
# window_not_opened: must_staff, staff_weekdays
# =========================================================================================
@pytest.mark.parametrize(
    ("day", "calendar", "required"),
    [
        (WED, {}, {"w01", "w03"}),  # Wednesday: w03 is listed for 1, 3, 5
        (THU, {}, {"w01", "w09"}),  # Thursday: w09 is listed for 2, 4
        # 调休 Saturdays of 2026, each following the weekday off it makes up for (the n-th
        # working weekend day of a holiday pairs with its n-th day off):
        (date(2026, 10, 10), {}, {"w01", "w03"}),  # National Day: for Wednesday 10-07
        (date(2026, 5, 9), {}, {"w01", "w09"}),  # Labour Day: for Tuesday 05-05
        (date(2026, 9, 20), {}, {"w01", "w09"}),  # a 调休 Sunday, National Day: for Tuesday 10-06
        # the site's calendar names the weekday itself
        (date(2026, 10, 10), {"follows": {"2026-10-10": 4}}, {"w01", "w09"}),
        (
            date(2027, 2, 6),
            {"covered_years": [2027], "workdays": ["2027-02-06"], "follows": {"2027-02-06": 1}},
            {"w01", "w03"},
        ),
        # a working Saturday nobody pairs keeps its own weekday: 6 is listed for neither
        (date(2027, 2, 6), {"covered_years": [2027], "workdays": ["2027-02-06"]}, {"w01"}),
    ],
    ids=[
        "wednesday",
        "thursday",
        "tiaoxiu-saturday-for-wednesday",
        "tiaoxiu-saturday-for-tuesday",
        "tiaoxiu-sunday-for-tuesday",
        "site-follows-overrides",
        "site-follows-a-year-entered-by-hand",
        "unpaired-saturday",
    ],
)
def test_window_not_opened_only_for_must_staff_windows_on_their_weekdays(day, calendar, required):
    d = start(
        at(day, 8),
        calendar=calendar,
        windows={"w02": {"must_staff": False}, "w03": {"staff_weekdays": [1, 3, 5]}, "w09": {"staff_weekdays": [2, 4]}},
    )
    run_until(d, at(day, 11))
    assert {a.subject for a in alerts_of(d, K.WINDOW_NOT_OPENED)} == required


def test_each_make_up_day_pairs_with_a_day_off_of_its_own_holiday_across_the_new_year():
    """New Year's Day 2007: Saturday and Sunday 2006-12-30/31 were worked for Tuesday and
    Wednesday 2007-01-02/03; a year later Saturday 2007-12-29 for Monday 2007-12-31."""
    assert [OFFICIAL.follows[d] for d in (date(2006, 12, 30), date(2006, 12, 31), date(2007, 12, 29))] == [2, 3, 1]


def test_a_login_within_the_grace_prevents_window_not_opened_and_a_later_one_resolves_it():
    d = start(wed(8))
    ok(d, panel_event("w01", ev.StaffLogin, staff="s001"), wed(8, 39, 59))
    run_until(d, wed(8, 50))
    assert alerts_of(d, K.WINDOW_NOT_OPENED, "w01") == []
    assert the_alert(d, K.WINDOW_NOT_OPENED, "w03").state is S.FIRING
    ok(d, panel_event("w03", ev.StaffLogin, staff="s003"), wed(8, 50))
    run_until(d, wed(8, 51))
    alert = the_alert(d, K.WINDOW_NOT_OPENED, "w03")
    assert (alert.state, alert.since, alert.until, alert.duration_s, alert.staff) == (
        S.RESOLVED,
        wed(8, 30),
        wed(8, 50),
        20 * MIN,
        None,
    )  # nobody was logged in when it fired


# =========================================================================================
# acknowledgement, resolution, ids
# =========================================================================================
def test_acknowledge_records_who_and_note_and_the_alert_resolves_when_the_condition_clears():
    d = start(wed(8))
    run_until(d, wed(8, 40))
    alert = the_alert(d, K.WINDOW_NOT_OPENED, "w02")
    event = acknowledge(alert.id, by="officer-7", note="已电话联系窗口负责人")
    commands = send(d, event, wed(8, 45))
    assert the_reply(commands) == Reply(site=SITE_ID, device="officer-7", re=event.id, ok=True)
    (acked,) = alert_changes(commands)
    assert (acked.id, acked.state, acked.acknowledged_by, acked.acknowledged_at, acked.note, acked.until) == (
        alert.id,
        S.ACKNOWLEDGED,
        "officer-7",
        wed(8, 45),
        "已电话联系窗口负责人",
        None,
    )
    # a second acknowledgement is refused and changes nothing
    again = send(d, acknowledge(alert.id, by="officer-8", note="again"), wed(8, 46))
    assert [(r.ok, r.error) for r in of_type(again, Reply)] == [(False, ErrorCode.ALREADY_ACKNOWLEDGED.value)]
    assert alert_changes(again) == []
    unknown = send(d, acknowledge("hall-1-999999", note="?"), wed(8, 47))
    assert [(r.ok, r.error) for r in of_type(unknown, Reply)] == [(False, ErrorCode.UNKNOWN_ALERT.value)]
    # the condition clears: resolved, still carrying the acknowledgement
    ok(d, panel_event("w02", ev.StaffLogin, staff="s002"), wed(9))
    run_until(d, wed(9, 1))
    resolved = the_alert(d, K.WINDOW_NOT_OPENED, "w02")
    assert (resolved.id, resolved.state, resolved.since, resolved.until, resolved.duration_s) == (
        alert.id,
        S.RESOLVED,
        wed(8, 30),
        wed(9),
        30 * MIN,
    )
    assert (resolved.acknowledged_by, resolved.note) == ("officer-7", "已电话联系窗口负责人")
    assert [a.state for a in alert_changes(d.log) if a.id == alert.id] == [S.FIRING, S.ACKNOWLEDGED, S.RESOLVED]
    # a resolved alert can no longer be acknowledged
    late = send(d, acknowledge(alert.id, note="late"), wed(9, 2))
    assert [(r.ok, r.error) for r in of_type(late, Reply)] == [(False, ErrorCode.UNKNOWN_ALERT.value)]


def test_alert_ids_are_site_and_sequence_and_every_change_keeps_its_id():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    send(d, presence("w01", False), wed(9))
    run_until(d, wed(9, 10))
    ids = list(latest_alerts(d.log))  # in order of first appearance
    assert ids and all(re.fullmatch(r"hall-1-\d{6}", i) for i in ids)
    assert [int(i.rsplit("-", 1)[1]) for i in ids] == list(range(1, len(ids) + 1))
    unstaffed = the_alert(d, K.WINDOW_UNSTAFFED, "w01")
    send(d, acknowledge(unstaffed.id, note="已提醒"), wed(9, 11))
    send(d, presence("w01", True), wed(9, 12))
    run_until(d, wed(9, 14))
    versions = [a for a in alert_changes(d.log) if a.kind is K.WINDOW_UNSTAFFED]
    assert [a.state for a in versions] == [S.FIRING, S.ACKNOWLEDGED, S.RESOLVED]
    assert {a.id for a in versions} == {unstaffed.id}
    assert {(a.site, a.subject, a.since, a.staff) for a in versions} == {(SITE_ID, "w01", wed(9), "s001")}


# =========================================================================================
# wait_too_long
# =========================================================================================
def test_wait_too_long_one_alert_per_service_while_it_lasts_resolved_when_called():
    d = start(wed(8))
    run_until(d, wed(8, 10))
    assert d.issue("shebao", at=wed(8, 10)).no == "A001"  # before opening: the wait counts from 08:30
    run_until(d, wed(8, 40))
    d.issue("shebao", at=wed(8, 40))
    run_until(d, wed(8, 45))
    d.issue("budongchan", at=wed(8, 45))
    run_until(d, wed(8, 50) - 0.5)
    assert alerts_of(d, K.WAIT_TOO_LONG) == []
    (alert,) = changes(run_until(d, wed(8, 50)), K.WAIT_TOO_LONG)
    assert (alert.subject, alert.state, alert.since, alert.severity, alert.window) == (
        "shebao",
        S.FIRING,
        wed(8, 50),
        "warning",
        None,
    )
    assert (alert.detail["ticket"], alert.detail["target_min"], alert.detail["issued_at"]) == ("A001", 20, wed(8, 10))
    run_until(d, wed(9, 5))
    assert the_alert(d, K.WAIT_TOO_LONG, "budongchan").since == wed(9, 5)
    # A001 called: A002 has waited since 08:40, so the same alert goes on
    ok(d, panel_event("w02", ev.StaffLogin, staff="s002"), wed(9, 10))
    ok(d, panel_event("w02", ev.CallNext), wed(9, 11))
    ok(d, panel_event("w02", ev.ServiceStart), wed(9, 12))
    ok(d, panel_event("w02", ev.ServiceFinish, outcome=ev.Outcome.DONE), wed(9, 13))
    run_until(d, wed(9, 13, 59))
    assert [a.state for a in alerts_of(d, K.WAIT_TOO_LONG, "shebao")] == [S.FIRING]
    # A002 called: nobody waits for shebao any more
    commands = ok(d, panel_event("w02", ev.CallNext), wed(9, 14))
    assert the_reply(commands).ticket == "A002"
    run_until(d, wed(9, 15))
    alert = the_alert(d, K.WAIT_TOO_LONG, "shebao")
    assert (alert.state, alert.until, alert.duration_s) == (S.RESOLVED, wed(9, 14), 24 * MIN)
    assert the_alert(d, K.WAIT_TOO_LONG, "budongchan").state is S.FIRING


# =========================================================================================
# unauthorized
# =========================================================================================
@pytest.mark.parametrize(
    ("device", "code", "configured", "window"),
    [
        ("ghost-7", "unknown_device", False, None),
        ("panel-w02", "not_allowed", True, "w02"),
        ("cam-w01", "wrong_window", True, "w01"),
    ],
)
def test_unauthorized_fires_at_the_configured_count_within_the_window(device, code, configured, window):
    d = start(wed(9))
    t0 = wed(9, 0, 1)
    times = [t0 + 30 * i for i in range(6)]
    for moment in times[:4]:
        assert alert_changes(send(d, refusal(device, code), moment)) == []
    (alert,) = alert_changes(send(d, refusal(device, code), times[4]))
    assert (alert.kind, alert.severity, alert.subject, alert.device, alert.window, alert.since) == (
        K.UNAUTHORIZED,
        "critical",
        device,
        device,
        window,
        times[4],
    )
    assert (alert.detail["refusals"], alert.detail["configured"]) == (5, configured)
    assert alert_changes(send(d, refusal(device, code), times[5])) == []  # still the one alert
    # Quiet: the count falls below 5 when the second refusal leaves the 10-minute window.
    below = times[1] + 10 * MIN
    run_until(d, below + 59)
    assert the_alert(d, K.UNAUTHORIZED, device).state is S.FIRING
    run_until(d, below + 60)
    alert = the_alert(d, K.UNAUTHORIZED, device)
    assert (alert.state, alert.until) == (S.RESOLVED, below)


def test_unauthorized_ignores_other_refusals_and_slow_ones_and_follows_its_settings():
    d = start(wed(9), supervision={"unauthorized_refusals": 3, "unauthorized_window_min": 5})
    for i in range(10):  # a buggy device, not an intruder
        send(d, refusal("panel-w03", "bad_request"), wed(9, 0, i))
        send(d, refusal("kiosk-1", "unknown_service"), wed(9, 0, 30 + i))
    for i in range(5):  # three within 5 minutes never happens
        send(d, refusal("ghost-1", "unknown_device"), wed(9, 1) + 151 * i)
    assert alerts_of(d, K.UNAUTHORIZED) == []
    for i in range(3):
        send(d, refusal("ghost-2", "not_allowed"), wed(10) + i)
    assert the_alert(d, K.UNAUTHORIZED, "ghost-2").detail["refusals"] == 3


# =========================================================================================
# 好差评: bad ratings
# =========================================================================================
def served_and_rated(d: Driver, day: date, score: int) -> list[Command]:
    """s001 serves A001 at w01 and the citizen rates it at 09:05."""
    ok(d, panel_event("w01", ev.StaffLogin, staff="s001"), at(day, 9))
    run_until(d, at(day, 9, 1))
    d.issue("shebao", at=at(day, 9, 1))
    ok(d, panel_event("w01", ev.CallNext), at(day, 9, 2))
    ok(d, panel_event("w01", ev.ServiceStart), at(day, 9, 3))
    ok(d, panel_event("w01", ev.ServiceFinish, outcome=ev.Outcome.DONE), at(day, 9, 4))
    return ok(d, rating("w01", score), at(day, 9, 5))


@pytest.mark.parametrize("score", [1, 2])
def test_a_bad_rating_raises_bad_rating_with_the_ticket_and_staff(score):
    d = start(wed(8))
    commands = served_and_rated(d, WED, score)
    (recorded,) = of_type(commands, RatingRecorded)
    (alert,) = alert_changes(commands)
    assert (alert.kind, alert.state, alert.severity, alert.window, alert.device, alert.staff, alert.since) == (
        K.BAD_RATING,
        S.FIRING,
        "warning",
        "w01",
        "pad-w01",
        "s001",
        wed(9, 5),
    )
    assert (alert.detail["ticket"], alert.detail["score"], alert.detail["follow_up_days"]) == ("A001", score, 5)
    assert recorded.ticket == "A001" and recorded.staff == "s001"
    # the ticket cannot be rated again, so no second alert
    again = send(d, rating("w01", 1), wed(9, 6))
    assert [(r.ok, r.error) for r in of_type(again, Reply)] == [(False, ErrorCode.ALREADY_RATED.value)]
    assert alert_changes(again) == []


@pytest.mark.parametrize("score", [3, 4, 5])
def test_a_rating_of_three_or_more_raises_nothing(score):
    d = start(wed(8))
    commands = served_and_rated(d, WED, score)
    assert [r.score for r in of_type(commands, RatingRecorded)] == [score]
    assert alert_changes(commands) == []
    assert alerts_of(d, K.BAD_RATING) == []


def test_the_bad_rating_threshold_is_configurable():
    d = start(wed(8), supervision={"bad_rating_max_score": 3})
    assert [a.kind for a in alert_changes(served_and_rated(d, WED, 3))] == [K.BAD_RATING]


@pytest.mark.parametrize(
    ("day", "official", "due_day"),
    [
        # Wed 30 Sep, before the National Day: 8, 9, 10 (调休 Saturday), 12, 13 October
        (date(2026, 9, 30), True, date(2026, 10, 13)),
        # the same without the official calendar: 1, 2, 5, 6, 7 October
        (date(2026, 9, 30), False, date(2026, 10, 7)),
        # Friday 27 Nov across a weekend: 30 Nov, 1, 2, 3, 4 Dec
        (date(2026, 11, 27), True, date(2026, 12, 4)),
    ],
    ids=["national-day", "without-calendar", "weekend"],
)
def test_a_bad_rating_is_due_after_five_working_days_and_overdue_then(day, official, due_day):
    d = start(at(day, 8), official=official)
    (alert,) = alert_changes(served_and_rated(d, day, 1))
    due = at(due_day + timedelta(days=1), 0)  # the end of the fifth working day
    assert alert.due == due == alert.detail["due_at"]
    run_until(d, due - 0.5)
    assert latest_alerts(d.log)[alert.id].overdue is False
    overdue = [a for a in alert_changes(run_until(d, due)) if a.id == alert.id]
    assert [(a.state, a.overdue, a.severity) for a in overdue] == [(S.FIRING, True, "critical")]
    # acknowledging needs a note of the follow-up; with one, the alert is done
    for note in ("", "   "):
        refused = send(d, acknowledge(alert.id, note=note), due + 60)
        assert [(r.ok, r.error) for r in of_type(refused, Reply)] == [(False, ErrorCode.NOTE_REQUIRED.value)]
        assert alert_changes(refused) == []
    done = alert_changes(send(d, acknowledge(alert.id, by="officer-3", note="已回访，群众表示理解"), due + 120))
    assert [(a.id, a.state) for a in done] == [(alert.id, S.ACKNOWLEDGED), (alert.id, S.RESOLVED)]
    assert (done[1].acknowledged_by, done[1].note, done[1].until) == ("officer-3", "已回访，群众表示理解", due + 120)
    assert alert.id not in d.hall.supervisor.alerts


def test_a_bad_rating_followed_up_in_time_never_becomes_overdue():
    d = start(wed(8))
    (alert,) = alert_changes(served_and_rated(d, WED, 2))
    send(d, acknowledge(alert.id, note="已回访"), wed(15))
    run_until(d, alert.due + DAY_S)
    assert [a.state for a in alert_changes(d.log) if a.id == alert.id] == [S.FIRING, S.ACKNOWLEDGED, S.RESOLVED]


# =========================================================================================
# accounting
# =========================================================================================
def test_the_accounting_totals_of_a_scripted_morning():
    d = start(wed(8))
    send(d, device_status("cam-w01", True), wed(8))
    ok(d, panel_event("w01", ev.StaffLogin, staff="s001"), wed(8, 35))  # closed 08:30-08:35
    send(d, presence("w01", True), wed(8, 35))
    send(d, presence("w01", False), wed(9))  # staffed 25
    ok(d, panel_event("w02", ev.StaffLogin, staff="s002"), wed(9))  # w02 has no camera
    send(d, presence("w01", True), wed(9, 10))  # unstaffed 10
    pause(d, "w01", ev.PauseReason.MEAL, wed(9, 30))  # staffed 20
    resume(d, "w01", wed(9, 50))  # paused:meal 20
    send(d, device_status("cam-w01", False, "lost"), wed(10))  # staffed 10
    send(d, device_status("cam-w01", True), wed(10, 15))  # unverified 15; camera offline 15
    pause(d, "w01", ev.PauseReason.BREAK, wed(11))  # staffed 45
    resume(d, "w01", wed(11, 5))  # paused:break 5
    ok(d, panel_event("w02", ev.StaffLogout), wed(11))
    ok(d, panel_event("w01", ev.StaffLogout), wed(11, 45))  # staffed 40; then closed 15
    run_until(d, wed(13))
    d.log += d.hall.supervisor.flush_accounting(wed(13))

    minutes = {
        "window": {
            "w01": {
                "not_opened": 20,
                "staffed": 140,
                "unstaffed": 10,
                "paused:meal": 20,
                "paused:break": 5,
                "unverified": 15,
            },
            "w02": {"not_opened": 90, "unverified": 120},
            "w03": {"not_opened": 210},
            "w09": {"not_opened": 210},
        },
        "staff": {
            "s001": {"staffed": 140, "unstaffed": 10, "paused:meal": 20, "paused:break": 5, "unverified": 15},
            "s002": {"unverified": 120},
        },
        "device": {"cam-w01": {"offline": 15, "online": 195}},
    }
    expected = {
        (kind, subject, category): m * MIN
        for kind, subjects in minutes.items()
        for subject, categories in subjects.items()
        for category, m in categories.items()
    }
    totals = d.hall.supervisor.totals
    mine = {key: value for key, value in totals.items() if key[0] != "device" or key[1] == "cam-w01"}
    assert mine == expected
    # What the store keeps: the latest running total of each (day, subject, category).
    stored = {}
    for command in of_type(d.log, TimeAccounted):
        assert command.day == "2026-11-25"
        previous = stored.get((command.subject_kind, command.subject, command.category), 0.0)
        assert command.seconds > previous  # running totals only grow
        stored[(command.subject_kind, command.subject, command.category)] = command.seconds
    assert {k: v for k, v in stored.items() if k in expected} == expected
    # every window's categories add up to the morning's 3.5 hours
    for window in ("w01", "w02", "w03", "w09"):
        assert sum(v for (kind, subject, _), v in totals.items() if (kind, subject) == ("window", window)) == 210 * MIN


def test_the_day_roll_closes_the_days_totals_and_starts_the_next_from_zero():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    send(d, device_status("cam-w01", False, "lost"), wed(11))  # offline 11:00-15:00 crosses the break
    send(d, device_status("cam-w01", True), wed(15))
    run_until(d, at(THU, 0))
    rolled = {
        (c.subject_kind, c.subject, c.category): c.seconds
        for c in of_type(d.log, TimeAccounted)
        if c.day == "2026-11-25"
    }
    assert rolled[("device", "cam-w01", "offline")] == 90 * MIN  # 60 before the break, 30 after
    assert rolled[("device", "cam-w01", "online")] == 300 * MIN
    assert rolled[("window", "w01", "staffed")] == 300 * MIN  # 390 minutes, less 90 unverified
    assert rolled[("window", "w01", "unverified")] == 90 * MIN
    assert rolled[("staff", "s001", "staffed")] == 300 * MIN
    assert rolled[("window", "w02", "not_opened")] == 390 * MIN
    assert d.hall.supervisor.totals == {}
    send(d, presence("w01", False), at(THU, 9))
    thursday = [
        (c.subject_kind, c.subject, c.category, c.seconds)
        for c in of_type(d.log, TimeAccounted)
        if c.day == "2026-11-26"
    ]
    assert ("window", "w01", "staffed", 30 * MIN) in thursday
    assert ("staff", "s001", "staffed", 30 * MIN) in thursday


# =========================================================================================
# restart
# =========================================================================================
def store_like_state(log: list[Command]) -> dict:
    """What the store would hand back after a crash: the latest version of every alert, the
    tickets and windows, each device's last change, the day's running totals, the highest
    alert number and alert transition number per site."""
    tickets, windows = latest_state(log)
    alerts = list(latest_alerts(log).values())
    devices = {c.device: (c.site, c.device, c.online, c.reason, c.at) for c in of_type(log, DeviceChanged)}
    totals = {(c.site, c.day, c.subject_kind, c.subject, c.category): c.seconds for c in of_type(log, TimeAccounted)}
    seqs: dict[str, int] = {}
    for alert in alerts:
        seqs[alert.site] = max(seqs.get(alert.site, 0), int(alert.id.rsplit("-", 1)[1]))
    transitions = {c.site: c.seq for c in of_type(log, AlertChanged)}  # (the last of each site)
    return dict(
        tickets=tickets,
        windows=windows,
        alerts=alerts,
        alert_seqs=seqs,
        transition_seqs=transitions,
        devices=list(devices.values()),
        totals=[(*key, seconds) for key, seconds in totals.items()],
    )


def restarted(d: Driver, now: float, **site) -> Driver:
    fresh = Driver(make_supervised_engine(OFFICIAL, **site), now=now)
    fresh.log += fresh.engine.restore(now=now, **store_like_state(d.log))
    _drivers.append(fresh)
    return fresh


def test_a_restart_keeps_open_alerts_open_does_not_fire_them_twice_and_continues_the_ids():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    run_until(d, wed(8, 40))  # window_not_opened: w02, w03, w09
    send(d, presence("w01", False), wed(9))
    run_until(d, wed(9, 5))  # window_unstaffed w01
    w02 = the_alert(d, K.WINDOW_NOT_OPENED, "w02")
    send(d, acknowledge(w02.id, by="officer-1", note="已通知"), wed(9, 6))
    send(d, device_status("panel-w03", False, "lost"), wed(9, 8))  # device_offline panel-w03
    before = {a.id: a for a in alerts_of(d) if a.open}
    assert {(a.kind, a.subject) for a in before.values()} == {
        (K.WINDOW_NOT_OPENED, "w02"),
        (K.WINDOW_NOT_OPENED, "w03"),
        (K.WINDOW_NOT_OPENED, "w09"),
        (K.WINDOW_UNSTAFFED, "w01"),
        (K.DEVICE_OFFLINE, "panel-w03"),
    }
    staffed_before = d.hall.supervisor.totals[("window", "w01", "staffed")]
    assert staffed_before == 30 * MIN

    # crash at 09:10, back at 09:12
    e = restarted(d, wed(9, 12))
    assert [a for a in alert_changes(e.log) if a.state is S.FIRING] == []
    assert set(e.hall.supervisor.alerts) == set(before)
    assert e.hall.supervisor.alerts[w02.id].acknowledged_by == "officer-1"
    assert e.hall.staffing("w01", e.now) == "unstaffed" and e.hall.windows["w01"].staff == "s001"
    assert e.hall.supervisor.totals[("window", "w01", "staffed")] == staffed_before
    run_until(e, wed(9, 30))
    assert [a for a in alert_changes(e.log) if a.state is S.FIRING] == []  # nothing fired twice
    again = send(e, acknowledge(w02.id, note="again"), wed(9, 30))
    assert [r.error for r in of_type(again, Reply)] == [ErrorCode.ALREADY_ACKNOWLEDGED.value]
    # the old alerts resolve as usual, keeping id, start and acknowledgement
    send(e, presence("w01", True), wed(9, 31))
    ok(e, panel_event("w02", ev.StaffLogin, staff="s002"), wed(9, 31))
    run_until(e, wed(9, 32))
    unstaffed = the_alert(e, K.WINDOW_UNSTAFFED, "w01")
    assert (unstaffed.id, unstaffed.state, unstaffed.since, unstaffed.until) == (
        before[unstaffed.id].id,
        S.RESOLVED,
        wed(9),
        wed(9, 31),
    )
    resolved_w02 = the_alert(e, K.WINDOW_NOT_OPENED, "w02")
    assert (resolved_w02.id, resolved_w02.state, resolved_w02.acknowledged_by) == (w02.id, S.RESOLVED, "officer-1")
    # new alerts continue the sequence
    (new,) = alert_changes(send(e, device_status("cam-w01", False, "lost"), wed(9, 40)))
    assert new.id == f"{SITE_ID}-{len(latest_alerts(d.log)) + 1:06d}"
    # the two engines' logs together, as the store sees them, keep every invariant
    assert alert_invariant_problems(d.log + e.log) == []


def test_a_restart_keeps_the_follow_up_deadline_of_a_bad_rating():
    d = start(wed(8))
    (alert,) = alert_changes(served_and_rated(d, WED, 1))
    e = restarted(d, wed(10))
    assert alert.id in e.hall.supervisor.alerts
    run_until(e, alert.due)
    assert latest_alerts(e.log)[alert.id].overdue is True


def test_a_restored_unauthorized_alert_resolves_once_the_device_is_quiet():
    d = start(wed(9))
    for i in range(5):
        send(d, refusal("ghost-7", "unknown_device"), wed(9, 0, i))
    alert = the_alert(d, K.UNAUTHORIZED, "ghost-7")
    e = restarted(d, wed(9, 5))
    assert alert.id in e.hall.supervisor.alerts
    run_until(e, wed(10))  # no refusal since 09:00:04
    assert the_alert(e, K.UNAUTHORIZED, "ghost-7").state is S.RESOLVED


def test_a_restored_camera_tamper_alert_stays_open_until_the_camera_is_restored():
    d = start(wed(8))
    staff_w01(d, wed(8, 20))
    send(d, tamper("cam-w01", "occluded"), wed(10))
    alert = the_alert(d, K.CAMERA_TAMPER, "cam-w01")
    e = restarted(d, wed(10, 5))
    run_until(e, wed(10, 30))
    assert latest_alerts(d.log + e.log)[alert.id].state is S.FIRING
    assert e.hall.staffing("w01", e.now) == "unverified"


# =========================================================================================
# a year the calendar does not cover
# =========================================================================================
def test_an_uncovered_year_warns_once_a_day_and_assumes_monday_to_friday():
    d = start(local_ts(2027, 3, 1, 0, 0))  # a Monday; chinese-calendar 1.11 stops at 2026
    (notice,) = of_type(d.log, Notice)
    assert (notice.site, notice.level) == (SITE_ID, "warning")
    assert "2027-03-01" in notice.text and "2027" in notice.text
    day = date(2027, 3, 1)
    send(d, device_status("cam-w01", True), at(day, 8))
    ok(d, panel_event("w01", ev.StaffLogin, staff="s001"), at(day, 8, 20))
    run_until(d, at(day, 23, 59, 59))
    assert len(of_type(d.log, Notice)) == 1
    assert {a.subject for a in alerts_of(d, K.WINDOW_NOT_OPENED)} == {"w02", "w03", "w09"}
    # the hall re-loaded the same day (as at a restart within one process): no second warning
    tickets, windows = latest_state(d.log)
    d.log += d.engine.restore(now=at(day, 23, 59, 59), tickets=tickets, windows=windows)
    assert len(of_type(d.log, Notice)) == 1
    run_until(d, local_ts(2027, 3, 2, 0, 0))
    assert [n.text[:10] for n in of_type(d.log, Notice)] == ["2027-03-01", "2027-03-02"]


def test_an_uncovered_saturday_is_a_day_off():
    d = start(local_ts(2027, 3, 6, 0, 0))
    run_until(d, local_ts(2027, 3, 6, 23, 59, 59))
    assert len(of_type(d.log, Notice)) == 1
    assert alert_changes(d.log) == []


def test_a_year_covered_by_the_site_calendar_does_not_warn_and_follows_it():
    d = start(
        local_ts(2027, 3, 1, 0, 0),
        calendar={"covered_years": [2027], "holidays": ["2027-03-01"], "workdays": ["2027-03-06"]},
    )
    run_until(d, local_ts(2027, 3, 1, 23, 59, 59))
    assert of_type(d.log, Notice) == [] and alert_changes(d.log) == []
    run_until(d, local_ts(2027, 3, 6, 8, 40))  # the site's extra working Saturday
    assert {a.subject for a in alerts_of(d, K.WINDOW_NOT_OPENED) if a.since == local_ts(2027, 3, 6, 8, 30)} == {
        "w01",
        "w02",
        "w03",
        "w09",
    }
    assert of_type(d.log, Notice) == []


# =========================================================================================
# invariants under a busy, random day
# =========================================================================================
@pytest.mark.parametrize("seed", range(6))
def test_alert_invariants_hold_through_a_random_day(seed):
    rng = random.Random(seed)
    d = start(
        wed(7, 30),
        supervision={"heartbeat_misses": 3},
        extra_devices=[{"id": "cam-w02", "kind": "camera", "window": "w02", "heartbeat_s": 60}],
    )
    moment = wed(7, 30)
    actions = [
        lambda: presence("w01", rng.random() < 0.5),
        lambda: presence("w02", rng.random() < 0.5, device="cam-w02"),
        lambda: device_status(rng.choice(["cam-w01", "cam-w02"]), rng.random() < 0.6, rng.choice(["lost", "shutdown"])),
        lambda: heartbeat(rng.choice(["cam-w01", "cam-w02"]), 1, video_ok=rng.random() < 0.8),
        lambda: tamper("cam-w01", rng.choice(["occluded", "moved", "restored", "restored"])),
        lambda: panel_event(rng.choice(["w01", "w02"]), ev.StaffLogin, staff=rng.choice(["s001", "s002"])),
        lambda: panel_event(rng.choice(["w01", "w02"]), ev.StaffLogout),
        lambda: panel_event(rng.choice(["w01", "w02"]), ev.WindowPause, reason=rng.choice(list(ev.PauseReason))),
        lambda: panel_event(rng.choice(["w01", "w02"]), ev.WindowResume),
        lambda: refusal(rng.choice(["ghost", "panel-w03"]), rng.choice(["unknown_device", "bad_request"])),
        lambda: ticket_request(rng.choice(["shebao", "budongchan"])),
        lambda: panel_event("w02", ev.CallNext),
    ]
    while moment < wed(18, 30):
        moment += rng.choice([1, 5, 20, 45, 61, 200, 400, 900])
        event = rng.choice(actions)()
        send(d, event, moment)
        if rng.random() < 0.05:
            opened = [a for a in d.hall.supervisor.alerts.values() if a.state is S.FIRING]
            if opened:
                send(d, acknowledge(rng.choice(opened).id, note="随机确认"), moment)
    run_until(d, wed(23, 59))
    assert alert_invariant_problems(d.log) == []
    # what the store would hold as open is exactly what the engine holds as open
    assert {i: a for i, a in latest_alerts(d.log).items() if a.open} == d.hall.supervisor.alerts
    assert len(alert_changes(d.log)) > 5  # the day did raise alerts


# =========================================================================================
# the debounce itself
# =========================================================================================
def test_a_watch_resolves_and_fires_at_its_own_deadline_for_any_threshold():
    since = 1795568800.891  # 2026-11-25 09:06:40.891 in Shanghai, as a real clock would give
    for threshold in (0.1, 0.3, 1.7):
        watch = Watch()
        assert watch.update(True, since, threshold, threshold) is None
        deadline = watch.deadline(threshold, threshold)
        assert watch.update(True, deadline, threshold, threshold) == "fire"
        watch.alert = Alert(
            id="x",
            site=SITE_ID,
            kind=K.WINDOW_UNSTAFFED,
            severity="warning",
            state=S.FIRING,
            subject="w01",
            since=since,
        )
        gone = deadline + 100
        assert watch.update(False, gone, threshold, threshold) is None
        assert watch.update(False, watch.deadline(threshold, threshold), threshold, threshold) == "resolve"
