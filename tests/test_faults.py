"""Faults of the infrastructure, in real time: each test runs its own Mosquitto, the real
engine process at clock speed 1, 245 real device sessions with Last Wills (two sites of 40
windows with a panel, a camera and a rating pad, two kiosks each, and a probe kiosk; spread
over worker processes by window_agents/farm.py) and a persistent subscriber (clean session
off, fixed id) on ``hallwatch/+/alerts`` and ``hallwatch/+/board/call``. Kiosks take a number
about every second and resend an unanswered request with the same id until it is answered;
three panels a site call, serve and finish tickets.

Through every fault:
- no device_offline or device_shutdown against a device alive throughout, and no window alert;
- every alert transition the engine decided (its alert_log, by seq) reached the subscriber:
  duplicates allowed, gaps not; every board call too, as (ticket, n);
- every request a device sent was answered and stored once, with the answer the device got;
  ticket numbers have no gaps;
- a camera killed for good as the fault begins raises its device_offline within its grace +
  its heartbeat timeout + SLACK_S after the engine answers again;
- the 40 s outage and the stalls, longer than the engine's thresholds, raise an alert for IT
  (audience "it").

No assertion on wall-clock duration but that bound, which is what the grace means.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from fault_helpers import (
    DrillPlan,
    FaultDrill,
    alert_delivery,
    call_delivery,
    false_device_alerts,
    it_alerts,
    received_kinds,
    request_problems,
    window_alerts,
)

from window_agents.farm import FarmOptions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEARTBEAT_S = 2.0  # x heartbeat_misses (3): a device is silent after 6 s
BACKOFF_MAX_S = 2.0  # a device retries the broker at least every 2.5 s (+25 % jitter)
# A Last Will or a silence raises device_offline only if the device has not returned within
# the grace. The grace must cover the farm's worst reconnection after the broker returns:
# 2.5 s of backoff plus a few hundred sessions connecting at once, about 4 s here. With less,
# a device still waiting out its backoff would be alerted although alive, and the test would
# blame the engine for its own configuration.
GRACE_S = 10.0
# After the engine's reconnection or stall: a fresh heartbeat allowance, no window alert.
# Not longer than the grace, so that the dead camera's deadline below holds however the
# engine combines the two.
SETTLE_S = 5.0
# The dead camera's device_offline is due within grace + heartbeat timeout of the engine's
# return; SLACK_S more for the engine's timers on a loaded 2-core machine.
SLACK_S = 15.0
BROKER_ALERT_AFTER_S = 20.0  # < the 40 s outage
STALL_ALERT_AFTER_S = 5.0  # < both stalls

PLAN = DrillPlan(
    sites=2,
    windows=40,
    kiosks=2,
    heartbeat_s=HEARTBEAT_S,
    supervision={
        "device_offline_grace_s": GRACE_S,
        "settle_s": SETTLE_S,
        "broker_alert_after_s": BROKER_ALERT_AFTER_S,
        "stall_alert_after_s": STALL_ALERT_AFTER_S,
    },
    farm=FarmOptions(
        backoff_max_s=BACKOFF_MAX_S,
        reply_timeout=3.0,
        kiosk_interval_s=1.0,
        callers_per_site=3,
        call_interval_s=2.0,
        devices_per_process=150,
    ),
)


@pytest.fixture
def drill(tmp_path):
    drill = FaultDrill(tmp_path, PLAN)
    try:
        yield drill.start()
    finally:
        drill.close()


def run_fault(drill: FaultDrill, fault, *, it_alert: bool, devices_reconnect: bool = True) -> None:
    time.sleep(2 * HEARTBEAT_S)  # every device heartbeating, kiosks and panels busy
    drill.kill_dead_device()
    time.sleep(0.5)  # the broker publishes its Last Will at once: the engine has it before the fault
    began = time.time()
    fault()
    ended = time.time()
    back = drill.farm.probe(timeout=90)
    assert back is not None, (
        f"the engine did not answer within 90 s of the fault's end:\n{drill.engine.log_text()[-3000:]}"
    )
    grace, silence = drill.liveness_allowance(drill.dead)
    due = back + grace + silence + SLACK_S
    dead_at = drill.wait_alert(
        lambda b: b.get("device") == drill.dead and b.get("kind") == "device_offline" and b.get("state") == "firing",
        until=due,
    )
    # A false alert would be due by the end of the settling, a heartbeat timeout and the grace
    # after the engine's return: watch until then, and at least until the dead camera's alert.
    watch_until = min(due, max(dead_at or due, back + SETTLE_S + silence + grace + 2.0))
    time.sleep(max(0.0, watch_until - time.time()))
    stats = drill.finish()

    problems = (
        false_device_alerts(drill)
        + window_alerts(drill)
        + alert_delivery(drill)
        + call_delivery(drill)
        + request_problems(drill, stats)
    )
    if dead_at is None:
        problems.append(
            f"{drill.dead}, killed for good, raised no device_offline within grace {grace:g} s + "
            f"heartbeat timeout {silence:g} s + {SLACK_S:g} s of the engine's return"
        )
    if it_alert and not it_alerts(drill, began):
        problems.append(
            f'no alert for IT (audience "it") since the fault began; received since then: '
            f"{received_kinds(drill, began)}"
        )
    summary = {
        "fault_s": round(ended - began, 1),
        "engine_back_s": round(back - ended, 2),
        "dead_alert_after_back_s": None if dead_at is None else round(dead_at - back, 1),
        **(stats.summary(ended, began) if devices_reconnect else stats.summary()),
        "alerts_received": received_kinds(drill),
    }
    print(json.dumps(summary))
    assert not problems, "\n".join(problems) + f"\n{json.dumps(summary)}"


def test_graceful_broker_restart(drill):
    # Mosquitto publishes every connected device's Last Will as it stops.
    run_fault(drill, drill.broker.restart, it_alert=False)


def test_broker_killed_and_back_after_2_s(drill):
    def kill_9():
        drill.wait_broker_saved()
        drill.broker.proc.kill()  # no Last Will, no save: the last autosave (5 s) is what returns
        drill.broker.proc.wait()
        time.sleep(2)
        drill.broker.start()

    run_fault(drill, kill_9, it_alert=False)


def test_broker_outage_of_40_s(drill):
    def outage():
        drill.broker.stop()
        time.sleep(40)
        drill.broker.start()

    run_fault(drill, outage, it_alert=True)


@pytest.mark.parametrize("seconds", [30, 50])
def test_engine_stalled(drill, seconds):
    # 50 s: longer than 1.5 x the engine's keepalive (30 s), so the broker drops its connection.
    def stall():
        drill.engine.proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        drill.engine.proc.send_signal(signal.SIGCONT)

    run_fault(drill, stall, it_alert=True, devices_reconnect=False)
