"""Events from other shells (web, operators) go through the same core, store and outputs."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from conftest import DEMO_SITE, WORKDAY_9AM
from mqtt_helpers import Listener

from queue_engine.app import EngineApp
from queue_engine.cli.common import parse_time
from queue_engine.config import load_site
from queue_engine.core import events as ev
from queue_engine.shells.clock import Clock
from queue_engine.shells.mqtt import parse_broker_url

pytestmark = pytest.mark.integration


async def test_a_phone_ticket_and_an_acknowledgement_are_committed_before_they_are_answered(broker, tmp_path):
    site = load_site(DEMO_SITE)
    app = EngineApp(
        [site],
        broker=parse_broker_url(broker.url),
        db_path=tmp_path / "ops.db",
        clock=Clock(start_at=parse_time(WORKDAY_9AM)),
        client_id="ops-test",
    )
    runner = asyncio.create_task(app.run())
    alerts = Listener(broker.port, "hallwatch/demo/alerts")
    try:
        await asyncio.wait_for(app.ready.wait(), 10)
        done = await app.submit_event(
            ev.TicketRequest(site="demo", device="web", id="phone-1", service="shebao", phone="13800000000")
        )
        assert done.result.ok and done.result.ticket.no == "A001"
        with sqlite3.connect(tmp_path / "ops.db") as db:  # committed before the answer
            assert db.execute("select phone from tickets where no = 'A001'").fetchone() == ("13800000000",)
        again = await app.submit_event(
            ev.TicketRequest(site="demo", device="web", id="phone-1", service="shebao", phone="13800000000")
        )
        assert again.duplicate and app.engine.hall("demo").tickets.keys() == {"A001"}
        # The same id for another request is refused, never answered with A001.
        reused = await app.submit_event(ev.TicketRequest(site="demo", device="web", id="phone-1", service="yibao"))
        assert not reused.duplicate and reused.result.error == "id_reused"
        assert app.engine.hall("demo").tickets.keys() == {"A001"}

        # A bad rating raises an alert; a supervisor acknowledges it with the follow-up note.
        hall = app.engine.hall("demo")
        for event in (
            ev.StaffLogin(site="demo", device="panel-w02", id="l", staff="s002"),
            ev.CallNext(site="demo", device="panel-w02", id="c"),
            ev.ServiceStart(site="demo", device="panel-w02", id="s"),
            ev.ServiceFinish(site="demo", device="panel-w02", id="f", outcome="done"),
            ev.Rating(site="demo", device="pad-w02", id="r", window="w02", score=1),
        ):
            assert (await app.submit_event(event)).result.ok
        (alert,) = [a for a in hall.supervisor.alerts.values() if a.kind == "bad_rating"]
        refused = await app.submit_event(ev.Acknowledge(site="demo", device="supervisor:li", id="a0", alert=alert.id))
        assert refused.result.error == "note_required"
        acked = await app.submit_event(
            ev.Acknowledge(
                site="demo", device="supervisor:li", id="a1", alert=alert.id, note="已电话回访，群众表示理解"
            )
        )
        assert acked.result.ok
        published = await asyncio.to_thread(
            alerts.wait_for,
            lambda msgs: [
                m for m in alerts.on("hallwatch/demo/alerts") if m["id"] == alert.id and m["state"] == "resolved"
            ],
        )
        assert published[-1]["acknowledged_by"] == "supervisor:li"
        assert published[-1]["note"] == "已电话回访，群众表示理解"
        with sqlite3.connect(tmp_path / "ops.db") as db:
            assert db.execute(
                "select state, acknowledged_by, note from alerts where id = ?", (alert.id,)
            ).fetchone() == ("resolved", "supervisor:li", "已电话回访，群众表示理解")
            assert [
                r[0] for r in db.execute("select state from alert_log where alert_id = ? order by id", (alert.id,))
            ] == ["firing", "acknowledged", "resolved"]
    finally:
        alerts.close()
        app.stop()
        await asyncio.wait_for(runner, 15)
