"""What the metrics count, message by message: the real ingest and core driven in-process
with time as a plain number, each result handed to the metrics as one committed batch."""

from __future__ import annotations

import itertools
import json

import pytest
from conftest import DEMO_SITE, WORKDAY_9AM

from queue_engine.app import EngineApp
from queue_engine.cli.common import parse_time
from queue_engine.config import load_site
from queue_engine.core.model import Staffing
from queue_engine.shells.clock import Clock
from queue_engine.shells.metrics import EngineMetrics
from queue_engine.shells.mqtt import BrokerSettings

T0 = parse_time(WORKDAY_9AM)


class Hall:
    """The demo hall's ingest and its metrics; ``send`` commits each message as a batch."""

    _ids = itertools.count(1)

    def __init__(self, tmp_path):
        self.app = EngineApp(
            [load_site(DEMO_SITE)], broker=BrokerSettings(), db_path=tmp_path / "unused.db", clock=Clock(start_at=T0)
        )
        self.metrics = EngineMetrics(self.app)
        self.now = T0

    def send(
        self,
        device: str,
        type_: str,
        channel: str = "event",
        payload: bytes | None = None,
        event_id: str | None = None,
        **fields,
    ) -> dict | None:
        self.now += 1.0  # well within every device's heartbeat timeout
        if payload is None:
            body = {"v": 1, "type": type_, **fields}
            if channel == "event":
                body["id"] = event_id or f"e{next(self._ids)}"
            payload = json.dumps(body).encode()
        item = self.app.ingest.process(f"hallwatch/demo/dev/{device}/{channel}", payload, self.now)
        self.metrics.committed([item])
        return json.loads(item.reply.payload) if item.reply else None

    def value(self, name: str, **labels) -> float | None:
        return self.metrics.registry.get_sample_value(
            name, {"site": "demo", **labels} if "site" not in labels else labels
        )


@pytest.fixture
def hall(tmp_path):
    return Hall(tmp_path)


def test_a_visit_counts_once_each_step_and_its_times(hall):
    assert hall.send("kiosk-1", "ticket.request", service="shebao")["ticket"]["no"] == "A001"
    assert hall.value("hallwatch_tickets_issued_total", service="shebao") == 1
    hall.send("panel-w02", "staff.login", staff="s001")
    hall.send("panel-w02", "call.next")  # 2 s after issue
    hall.send("panel-w02", "call.recall")  # not a call
    hall.send("panel-w02", "call.recall")
    hall.send("panel-w02", "service.start")
    hall.send("panel-w02", "service.finish", outcome="informed")  # 1 s of service
    assert hall.send("pad-w02", "rating", window="w02", score=4)["ok"]
    called = {"service": "shebao", "window": "w02"}
    assert hall.value("hallwatch_tickets_called_total", **called) == 1
    assert hall.value("hallwatch_tickets_served_total", outcome="informed", **called) == 1
    assert hall.value("hallwatch_tickets_served_total", outcome="done", **called) == 0  # exists, at 0
    assert hall.value("hallwatch_ratings_total", window="w02", score="4") == 1
    assert hall.value("hallwatch_wait_seconds_count", service="shebao") == 1
    assert hall.value("hallwatch_wait_seconds_sum", service="shebao") == 2.0
    assert hall.value("hallwatch_wait_seconds_bucket", service="shebao", le="60.0") == 1
    assert hall.value("hallwatch_service_seconds_sum", service="shebao") == 1.0
    assert hall.value("hallwatch_service_seconds_count", service="shebao") == 1


def test_no_show_called_again_transfer_and_expiry(hall):
    for _ in range(3):
        hall.send("kiosk-1", "ticket.request", service="shebao")
    hall.send("panel-w02", "staff.login", staff="s001")
    assert hall.send("panel-w02", "call.next")["ticket"] == "A001"
    hall.send("panel-w02", "call.skip")
    # The citizen turns up late and is called by number: a second call, not a second wait.
    assert hall.send("panel-w02", "call.pick", ticket="A001")["ok"]
    hall.send("panel-w02", "service.start")
    assert hall.send("panel-w02", "ticket.transfer", to_service="budongchan")["ok"]
    w02 = {"service": "shebao", "window": "w02"}
    assert hall.value("hallwatch_tickets_no_show_total", **w02) == 1
    assert hall.value("hallwatch_tickets_called_total", **w02) == 2
    assert hall.value("hallwatch_wait_seconds_count", service="shebao") == 1
    assert hall.value("hallwatch_tickets_transferred_total", service="budongchan", window="w02") == 1
    assert hall.value("hallwatch_tickets_served_total", outcome="done", **w02) == 0
    # The next day's first message rolls the day: what still waits expires.
    hall.now += 86400.0
    hall.send("kiosk-1", "ticket.request", service="huji")
    assert hall.value("hallwatch_tickets_expired_total", service="shebao") == 2
    assert hall.value("hallwatch_tickets_expired_total", service="budongchan") == 1
    assert hall.value("hallwatch_tickets_issued_total", service="shebao") == 3  # not re-counted


def test_refused_duplicate_and_rejected_messages(hall):
    assert hall.send("panel-w03", "call.next")["error"] == "not_logged_in"
    hall.send("kiosk-1", "ticket.request", event_id="same", service="yibao")
    hall.send("kiosk-1", "ticket.request", event_id="same", service="yibao")
    hall.send("kiosk-1", "", payload=b"{oops")
    hall.send("kiosk-1", "call.next")  # a kiosk may not call
    hall.metrics.committed([hall.app.ingest.process("hallwatch/elsewhere/dev/x/event", b"{}", hall.now)])
    assert hall.value("hallwatch_events_refused_total", reason="not_logged_in") == 1
    assert hall.value("hallwatch_events_duplicate_total") == 1
    assert hall.value("hallwatch_tickets_issued_total", service="yibao") == 1
    assert hall.value("hallwatch_events_rejected_total", reason="bad_json") == 1
    assert hall.value("hallwatch_events_rejected_total", reason="not_allowed") == 1
    assert hall.value("hallwatch_events_rejected_total", site="", reason="unknown_site") == 1


def windows_by_state(hall) -> dict[str, float]:
    counts = {state.value: hall.value("hallwatch_windows", state=state.value) for state in Staffing}
    return {state: n for state, n in counts.items() if n}


def test_an_alert_is_raised_once_and_the_gauges_follow_the_hall(hall):
    hall.send("cam-w03", "", channel="status", payload=b'{"v":1,"state":"online","kind":"camera","window":"w03"}')
    hall.send("cam-w03", "tamper", kind="occluded")
    hall.send("cam-w03", "tamper", kind="moved")  # the same alert, still open
    assert hall.value("hallwatch_alerts_raised_total", kind="camera_tamper", severity="critical") == 1
    hall.send("panel-w01", "staff.login", staff="s002")
    hall.send("panel-w02", "staff.login", staff="s001")
    hall.send("panel-w02", "window.pause", reason="meal")
    hall.send("cam-w01", "presence", window="w01", present=False, count=0)
    assert hall.value("hallwatch_alerts_active", kind="camera_tamper", severity="critical", state="firing") == 1
    # The states are the core's (Staffing): w01's camera has not come online, so w01 cannot be
    # verified; w02 is paused; the other eight must be staffed at 09:00 and nobody logged in.
    assert windows_by_state(hall) == {"unverified": 1, "paused": 1, "not_opened": 8}
    hall.send("cam-w01", "", channel="status", payload=b'{"v":1,"state":"online","kind":"camera","window":"w01"}')
    assert windows_by_state(hall) == {"unstaffed": 1, "paused": 1, "not_opened": 8}
    assert hall.value("hallwatch_window_staffed", window="w01") == 0
    hall.send("cam-w01", "presence", window="w01", present=True, count=1)
    assert windows_by_state(hall) == {"staffed": 1, "paused": 1, "not_opened": 8}
    assert hall.value("hallwatch_window_staffed", window="w01") == 1
    assert hall.value("hallwatch_devices_online", kind="camera") == 2  # cam-w01 and cam-w03
    assert hall.value("hallwatch_device_up", device="cam-w03", kind="camera") == 1
    assert hall.value("hallwatch_device_up", device="kiosk-1", kind="kiosk") == 0


def test_commit_observations(hall):
    hall.metrics.observe_commit(120, 0.004)
    hall.metrics.observe_commit(1, 0.0004)
    value = hall.metrics.registry.get_sample_value
    assert value("hallwatch_store_commit_batch_size_count") == 2
    assert value("hallwatch_store_commit_batch_size_sum") == 121
    assert value("hallwatch_store_commit_seconds_bucket", {"le": "0.0005"}) == 1
