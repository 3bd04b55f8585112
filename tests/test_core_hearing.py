"""What the engine could not hear is no evidence against anybody: broker restarts and outages,
the engine's own stalls, Last Wills around its reconnection, and the infrastructure alerts
that replace the accountability alerts such faults used to raise. The pure core, driven
directly with scripted events and time as a plain number (tests/core_helpers.py).

The site: windows w01 (camera cam-w01, panel, pad), w02, w03, w09 (panels), kiosk-1; devices
heartbeat every 10 s and are silent after 3 misses (30 s); ``device_offline_grace_s`` 60,
``settle_s`` 30, ``broker_alert_after_s`` 20, ``stall_alert_after_s`` 5 (the defaults).
"""

from __future__ import annotations

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
    local_ts,
    make_supervised_engine,
    of_type,
    panel_event,
    presence,
    run_until,
)

from queue_engine.core import events as ev
from queue_engine.core.alerts import ALERT_KINDS, AlertKind, AlertState, Audience
from queue_engine.core.commands import AlertChanged

K = AlertKind
S = AlertState
DEFAULTS = {"device_offline_grace_s": 60}  # the product's default (core_helpers sets 0 for other tests)


def wed(hour: int, minute: int = 0, second: float = 0) -> float:
    return local_ts(2026, 11, 25, hour, minute, second)


def start(moment: float, *, windows: dict | None = None, **supervision) -> Driver:
    """Only w01 must be staffed unless ``windows`` says otherwise."""
    windows = windows if windows is not None else {w: {"must_staff": w == "w01"} for w in ("w01", "w02", "w03", "w09")}
    d = Driver(
        make_supervised_engine(supervision={**DEFAULTS, **supervision}, windows=windows, quiet=False), now=moment
    )
    d.tick(moment)
    return d


@pytest.fixture
def drivers():
    made: list[Driver] = []
    yield made
    for d in made:
        assert alert_invariant_problems(d.log) == []


def link(up: bool, *, session_lost: bool = False) -> ev.EngineLink:
    return ev.EngineLink(site=SITE_ID, device="engine", id="", up=up, session_lost=session_lost)


def stalled(since: float) -> ev.EngineStalled:
    return ev.EngineStalled(site=SITE_ID, device="engine", id="", since=since)


NOBODY_REQUIRED = {w: {"must_staff": False} for w in ("w01", "w02", "w03", "w09")}
DEVICES = ["kiosk-1", "panel-w01", "panel-w02", "panel-w03", "panel-w09", "pad-w01", "cam-w01"]


def alive(d: Driver, moment: float) -> None:
    """Every device online and heartbeating; w01 staffed and watched."""
    for device in DEVICES:
        d.send(device_status(device, True), at=moment)
    d.send(panel_event("w01", ev.StaffLogin, staff="s001"), at=moment)
    d.send(presence("w01", True), at=moment)


def beat(d: Driver, start: float, end: float, devices=DEVICES, every: float = 10.0) -> None:
    """Heartbeats of ``devices`` every ``every`` s in [start, end), timers run between them."""
    moment = start
    seq = 0
    while moment < end:
        seq += 1
        for device in devices:
            run_until(d, moment)
            d.send(heartbeat(device, seq), at=moment)
        moment += every


def steady_morning(drivers: list[Driver]) -> Driver:
    """An engine at 10:00 after an hour in which every device heartbeated."""
    d = start(wed(9))
    drivers.append(d)
    alive(d, wed(9))
    beat(d, wed(9), wed(10))
    return d


def statuses(d: Driver, online: bool, first: float, step: float, reason: str | None = None) -> None:
    """Every device's status, one after another from ``first``, ``step`` seconds apart."""
    for n, device in enumerate(DEVICES):
        send(d, device_status(device, online, reason), first + step * n)


def send(d: Driver, event: ev.Event, moment: float):
    run_until(d, moment)
    return d.send(event, at=moment)


def alerts(d: Driver, kind: AlertKind | None = None) -> list:
    return [a for a in latest_alerts(d.log).values() if kind is None or a.kind is kind]


def device_alerts(d: Driver) -> list:
    return [a for a in alerts(d) if a.kind in (K.DEVICE_OFFLINE, K.DEVICE_SHUTDOWN)]


# =========================================================================================
# broker restarts and outages
# =========================================================================================
def test_a_graceful_broker_restart_raises_nothing_against_devices(drivers):
    """Mosquitto publishes every device's Last Will as it stops; the engine is cut off a moment
    later, reconnects 4 s after, and the devices return within 8 s."""
    d = steady_morning(drivers)
    t = wed(10)
    statuses(d, False, t, 0.001, "lost")
    send(d, link(False), t + 0.01)
    send(d, link(True), t + 4)
    statuses(d, True, t + 5, 1)
    beat(d, t + 12, t + 600)
    assert device_alerts(d) == []
    assert alerts(d, K.BROKER_UNAVAILABLE) == []  # 4 s is below broker_alert_after_s


def test_a_40_s_outage_is_one_infrastructure_alert_for_it_not_one_per_device(drivers):
    d = steady_morning(drivers)
    t = wed(10)
    send(d, link(False), t)
    run_until(d, t + 19.9)
    assert alerts(d, K.BROKER_UNAVAILABLE) == []
    (fired,) = alert_changes(run_until(d, t + 20))
    assert (fired.kind, fired.state, fired.since, fired.severity) == (K.BROKER_UNAVAILABLE, S.FIRING, t, "warning")
    assert ALERT_KINDS[fired.kind].audience is Audience.IT
    back = t + 40
    resolved = [a for a in alert_changes(send(d, link(True), back)) if a.kind is K.BROKER_UNAVAILABLE]
    assert [(a.state, a.until) for a in resolved] == [(S.RESOLVED, back)]
    # The broker kept every device's Last Will (retained): the engine reads them on resubscribing.
    statuses(d, False, back + 0.1, 0.001, "lost")
    statuses(d, True, back + 10, 7.5)  # the devices come back with their backoff, the last 55 s after
    beat(d, back + 60, back + 900)
    assert device_alerts(d) == []
    assert [a.kind for a in alerts(d)] == [K.BROKER_UNAVAILABLE]


def test_a_device_lost_for_good_in_an_outage_is_alerted_its_grace_after_the_engine_returns(drivers):
    d = steady_morning(drivers)
    t = wed(10)
    send(d, link(False), t)
    back = t + 40
    send(d, link(True), back)
    send(d, device_status("cam-w01", False, "lost"), back + 0.2)  # its retained Last Will
    others = [x for x in DEVICES if x != "cam-w01"]
    for device in others:
        send(d, device_status(device, True), back + 5)
    beat(d, back + 10, back + 60.1, devices=others)
    assert alerts(d, K.DEVICE_OFFLINE) == []
    commands = run_until(d, back + 0.2 + 60)
    (alert,) = [a for a in alert_changes(commands) if a.kind is K.DEVICE_OFFLINE]
    assert (alert.device, alert.severity, alert.since, alert.staff) == ("cam-w01", "critical", back + 0.2, "s001")


def test_a_silent_device_after_an_outage_is_offline_a_timeout_after_the_engine_returns_and_alerted_a_grace_later(
    drivers,
):
    """A broker killed -9 publishes no Last Will: a device that did not survive the outage
    is simply silent. Its allowance restarts when the engine hears again."""
    d = steady_morning(drivers)
    t = wed(10)
    send(d, link(False), t)
    run_until(d, t + 600)  # ten minutes without hearing anybody: nobody is declared silent
    assert device_alerts(d) == [] and all(dev.online for dev in d.hall.supervisor.devices.values())
    back = t + 600
    send(d, link(True), back)
    others = [x for x in DEVICES if x != "kiosk-1"]
    beat(d, back + 1, back + 89.9, devices=others)
    offline = [c for c in d.log if getattr(c, "device", None) == "kiosk-1" and getattr(c, "online", True) is False]
    assert [(c.reason, c.at) for c in offline] == [("silent", back + 30)]
    assert alerts(d, K.DEVICE_OFFLINE) == []
    fired = [a for a in alert_changes(run_until(d, back + 90)) if a.kind is K.DEVICE_OFFLINE]
    assert [(a.device, a.since, a.severity) for a in fired] == [("kiosk-1", back + 30, "warning")]


def test_an_orderly_shutdown_during_the_settling_period_still_alerts_at_once(drivers):
    d = start(wed(9))
    drivers.append(d)
    alive(d, wed(9))
    send(d, link(False), wed(10))
    send(d, link(True), wed(10, 1))
    (alert,) = alert_changes(send(d, device_status("cam-w01", False, "shutdown"), wed(10, 1, 5)))
    assert (alert.kind, alert.state, alert.since) == (K.DEVICE_SHUTDOWN, S.FIRING, wed(10, 1, 5))


def test_a_window_left_closed_through_an_outage_is_alerted_when_the_engine_has_settled(drivers):
    """Evidence held, not discarded: nobody logged in at w02 from the opening; the engine was
    cut off from 08:35 to 08:45, so the 10-minute grace ran out unheard; once it has settled
    (30 s) and still no login has arrived, the alert fires, from the opening."""
    d = start(wed(8), windows={w: {"must_staff": w == "w02"} for w in ("w01", "w02", "w03", "w09")})
    drivers.append(d)
    for device in DEVICES:
        send(d, device_status(device, True), wed(8))
    send(d, link(False), wed(8, 35))
    send(d, link(True), wed(8, 45))
    beat(d, wed(8, 45, 1), wed(8, 45, 29))
    assert alerts(d, K.WINDOW_NOT_OPENED) == []
    commands = run_until(d, wed(8, 45, 30))
    (alert,) = [a for a in alert_changes(commands) if a.kind is K.WINDOW_NOT_OPENED]
    assert (alert.window, alert.since) == ("w02", wed(8, 30))


def test_a_login_that_waited_out_the_outage_prevents_window_not_opened(drivers):
    d = start(wed(8), windows={w: {"must_staff": w == "w02"} for w in ("w01", "w02", "w03", "w09")})
    drivers.append(d)
    send(d, link(False), wed(8, 35))
    send(d, link(True), wed(8, 45))
    # The login the panel sent at 08:36 was queued by the broker for the engine's session.
    send(d, panel_event("w02", ev.StaffLogin, staff="s002"), wed(8, 45, 0.5))
    run_until(d, wed(9, 30))
    assert alerts(d, K.WINDOW_NOT_OPENED) == []


# =========================================================================================
# the engine's own stalls
# =========================================================================================
def test_a_30_s_stall_raises_engine_stalled_for_it_and_nothing_against_devices(drivers):
    """The engine's loop stops for 30 s while every device heartbeats; when it resumes, the
    shell says so before the heartbeats waiting in the socket are read."""
    d = steady_morning(drivers)
    t = wed(10)
    resumed = t + 30
    commands = d.send(stalled(t), at=resumed)  # no timer run before it
    (alert,) = alert_changes(commands)
    assert (alert.kind, alert.state, alert.since, alert.detail["longest_s"]) == (K.ENGINE_STALLED, S.FIRING, t, 30)
    assert ALERT_KINDS[alert.kind].audience is Audience.IT
    for device in DEVICES:  # the heartbeats that waited in the socket, read now
        d.send(heartbeat(device, 99), at=resumed)
    beat(d, resumed + 5, resumed + 300)
    assert device_alerts(d) == []
    # It stays open until the IT officer takes note; acknowledging closes it.
    acked = alert_changes(send(d, acknowledge(alert.id, by="it-1"), resumed + 400))
    assert [(a.state, a.acknowledged_by) for a in acked] == [(S.ACKNOWLEDGED, "it-1"), (S.RESOLVED, "it-1")]


def test_without_the_stall_notice_the_same_heartbeats_would_be_taken_for_silence():
    """The fault the notice prevents: timers that fell due in the stall run before the
    socket is read, and every device looks silent."""
    d = start(wed(9))
    alive(d, wed(9))
    beat(d, wed(9), wed(10))
    resumed = wed(10) + 35
    run_until(d, resumed)
    assert len(alerts(d, K.DEVICE_OFFLINE)) == 0  # grace 60 s not yet run out...
    offline = [c for c in d.log if getattr(c, "online", True) is False]
    assert len(offline) == len(DEVICES)  # ...but every device was declared silent


def test_a_stall_does_not_turn_a_presence_waiting_in_the_socket_into_window_unstaffed(drivers):
    d = start(wed(9))
    drivers.append(d)
    alive(d, wed(9))
    send(d, presence("w01", False), wed(10))  # the staff member stands up
    # 10:04:30 the camera sees them back; the engine is stopped from 10:04 to 10:06.
    resumed = wed(10, 6)
    d.send(stalled(wed(10, 4)), at=resumed)
    d.send(heartbeat("cam-w01", 5), at=resumed)
    d.send(presence("w01", True), at=resumed)
    run_until(d, wed(10, 30))
    assert alerts(d, K.WINDOW_UNSTAFFED) == []


def test_a_short_stall_holds_evidence_but_raises_no_alert(drivers):
    d = start(wed(9))
    drivers.append(d)
    alive(d, wed(9))
    assert alert_changes(d.send(stalled(wed(10) - 3), at=wed(10))) == []  # 3 s < stall_alert_after_s


def test_repeated_stalls_update_one_open_engine_stalled_alert(drivers):
    d = start(wed(9))
    drivers.append(d)
    alive(d, wed(9))
    (first,) = alert_changes(d.send(stalled(wed(10)), at=wed(10, 0, 10)))
    (second,) = alert_changes(send(d, stalled(wed(10, 5)), wed(10, 5, 40)))
    assert second.id == first.id and second.detail["stalls"] == 2 and second.detail["longest_s"] == 40


# =========================================================================================
# the persistent session, and numbering
# =========================================================================================
def test_reconnecting_without_the_persistent_session_raises_session_lost(drivers):
    d = start(wed(9))
    drivers.append(d)
    send(d, link(False), wed(10))
    (alert,) = [a for a in alert_changes(send(d, link(True, session_lost=True), wed(10, 0, 3)))]
    assert (alert.kind, alert.severity, alert.state) == (K.SESSION_LOST, "critical", S.FIRING)
    assert ALERT_KINDS[alert.kind].audience is Audience.IT
    assert alert.detail["reason"] == "session_missing"


def test_alert_transitions_are_numbered_across_kinds_and_a_restart_continues_the_numbers():
    d = start(wed(9), windows=NOBODY_REQUIRED)
    for device in DEVICES:
        send(d, device_status(device, True), wed(9))
    beat(d, wed(9), wed(10))
    send(d, link(False), wed(10))
    run_until(d, wed(10, 1))
    send(d, link(True), wed(10, 2))
    send(d, device_status("cam-w01", False, "shutdown"), wed(10, 3))
    changes = of_type(d.log, AlertChanged)
    assert [c.seq for c in changes] == [1, 2, 3]
    assert [(c.alert.kind, c.alert.state) for c in changes] == [
        (K.BROKER_UNAVAILABLE, S.FIRING),
        (K.BROKER_UNAVAILABLE, S.RESOLVED),
        (K.DEVICE_SHUTDOWN, S.FIRING),
    ]
    restarted = make_supervised_engine(supervision=DEFAULTS, windows=NOBODY_REQUIRED)  # (quiet devices)
    open_alerts = [a for a in latest_alerts(d.log).values() if a.open]
    restarted.restore(
        now=wed(10, 5),
        tickets=[],
        windows=[],
        alerts=open_alerts,
        alert_seqs={SITE_ID: 2},
        transition_seqs={SITE_ID: 3},
        devices=[(SITE_ID, "cam-w01", False, "shutdown", wed(10, 3))],
    )
    later = restarted.handle(device_status("cam-w01", True), wed(10, 6)) + restarted.tick(wed(10, 8))
    assert [(c.seq, c.alert.state) for c in of_type(later, AlertChanged)] == [(4, S.RESOLVED)]


@pytest.mark.parametrize("kind", list(AlertKind))
def test_every_alert_kind_has_its_rule(kind):
    rule = ALERT_KINDS[kind]
    assert rule.severity in ("warning", "critical") and isinstance(rule.audience, Audience)
    # (the kinds the case book raises are re-checked by its own due timers; issuing_rate by none)
    timers = ("window", "device", "service", "unauthorized", "followup", "link") if rule.watched else ("case", "none")
    assert rule.recheck in timers


def test_a_connection_closed_and_taken_back_at_once_three_times_in_ten_minutes_raises_displaced(drivers):
    """The broker was up all along (the engine was back within a second each time): another
    client using the engine's identity, or a broker that keeps closing it."""
    d = start(wed(9))
    drivers.append(d)
    for minute in (0, 3):
        send(d, link(False), wed(10, minute))
        assert alert_changes(send(d, link(True), wed(10, minute, 0.8))) == []
    send(d, link(False), wed(10, 4))  # a real outage in between does not count
    send(d, link(True), wed(10, 4, 30))
    send(d, link(False), wed(10, 6))
    (alert,) = [a for a in alert_changes(send(d, link(True), wed(10, 6, 0.5))) if a.kind is K.SESSION_LOST]
    assert (alert.subject, alert.severity, alert.detail["reason"]) == ("displaced", "critical", "displaced")


def test_quick_returns_spread_over_more_than_ten_minutes_raise_nothing(drivers):
    d = start(wed(9))
    drivers.append(d)
    for minute in (0, 6, 12, 18):
        send(d, link(False), wed(10, minute))
        send(d, link(True), wed(10, minute, 1))
    assert alerts(d, K.SESSION_LOST) == []


def test_a_lobby_camera_bound_to_no_window_is_supervised_like_any_camera(drivers):
    d = Driver(
        make_supervised_engine(
            supervision=DEFAULTS, extra_devices=[{"id": "cam-lobby", "kind": "camera"}], windows=NOBODY_REQUIRED
        ),
        now=wed(9),
    )
    d.tick(wed(9))
    drivers.append(d)
    send(d, device_status("cam-lobby", True), wed(9))
    (alert,) = alert_changes(send(d, device_status("cam-lobby", False, "shutdown"), wed(10)))
    assert (alert.kind, alert.device, alert.window, alert.severity) == (
        K.DEVICE_SHUTDOWN,
        "cam-lobby",
        None,
        "critical",
    )
