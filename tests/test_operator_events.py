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


def demo_engine(broker, db_path, client_id: str) -> EngineApp:
    """The demo site's engine in this process, its clock from the test's working day."""
    return EngineApp(
        [load_site(DEMO_SITE)],
        broker=parse_broker_url(broker.url),
        db_path=db_path,
        clock=Clock(start_at=parse_time(WORKDAY_9AM)),
        client_id=client_id,
    )


async def test_a_phone_ticket_and_an_acknowledgement_are_committed_before_they_are_answered(broker, tmp_path):
    app = demo_engine(broker, tmp_path / "ops.db", "ops-test")
    runner = asyncio.create_task(app.run())
    alerts = Listener(broker.port, "hallwatch/demo/alerts")
    try:
        await asyncio.wait_for(app.ready.wait(), 10)
        phone_key = "k" * 43  # what the web sends: the phone's keyed hash (privacy.citizen_key)
        done = await app.submit_event(
            ev.TicketRequest(site="demo", device="web", id="phone-1", service="shebao", phone=phone_key)
        )
        assert done.result.ok and done.result.ticket.no == "A001"
        with sqlite3.connect(tmp_path / "ops.db") as db:  # committed before the answer
            assert db.execute("select phone, status from tickets where no = 'A001'").fetchone() == (
                phone_key,
                "reserved",
            )
        again = await app.submit_event(
            ev.TicketRequest(site="demo", device="web", id="phone-1", service="shebao", phone=phone_key)
        )
        assert again.duplicate and app.engine.hall("demo").tickets.keys() == {"A001"}
        # The same id for another request is refused, never answered with A001.
        reused = await app.submit_event(ev.TicketRequest(site="demo", device="web", id="phone-1", service="yibao"))
        assert not reused.duplicate and reused.result.error == "id_reused"
        assert app.engine.hall("demo").tickets.keys() == {"A001"}

        # A bad rating raises an alert; a supervisor acknowledges it with the follow-up note.
        hall = app.engine.hall("demo")
        code = hall.tickets["A001"].check_in_code  # reserved until checked in at the hall
        for event in (
            ev.TicketCheckIn(site="demo", device="kiosk-1", id="k", code=code),
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


async def test_the_manager_console_follows_a_case_through_the_engine(broker, tmp_path):
    """Case events from the manager console (the web's operator) take the same path as a
    panel's: the core, the store (with the operator as the one who acted), then the answer."""
    app = demo_engine(broker, tmp_path / "cases.db", "cases-test")
    runner = asyncio.create_task(app.run())
    try:
        await asyncio.wait_for(app.ready.wait(), 10)
        for event in (
            ev.TicketRequest(site="demo", device="web", id="t", service="budongchan"),
            ev.StaffLogin(site="demo", device="panel-w05", id="l", staff="s005"),
            ev.CallNext(site="demo", device="panel-w05", id="c"),
            ev.ServiceStart(site="demo", device="panel-w05", id="s"),
        ):
            assert (await app.submit_event(event)).result.ok
        accepted = await app.submit_event(
            ev.ServiceFinish(site="demo", device="panel-w05", id="f", outcome=ev.Outcome.ACCEPTED)
        )
        number = accepted.result.case
        assert number == "J20261125001"
        passed = await app.submit_event(
            ev.CasePassOn(site="demo", device="manager:zhao", id="p", case=number, to="县自然资源局", note="催办")
        )
        assert passed.result.ok and passed.result.case == number
        closed = await app.submit_event(ev.CaseWithdraw(site="demo", device="manager:zhao", id="w", case=number))
        assert closed.result.ok
        again = await app.submit_event(ev.CaseNote(site="demo", device="manager:zhao", id="n", case=number, note="x"))
        assert again.result.error == "case_closed"
        with sqlite3.connect(tmp_path / "cases.db") as db:  # committed before the answers
            assert db.execute("select action, actor, note from case_log order by id").fetchall() == [
                ("opened", "s005", ""),
                ("passed_on", "manager:zhao", "催办"),
                ("withdrawn", "manager:zhao", ""),
            ]
            assert db.execute("select status, closed_by, passed_to from cases").fetchall() == [
                ("withdrawn", "manager:zhao", "县自然资源局")
            ]
        assert app.engine.hall("demo").cases.open_cases() == []
    finally:
        app.stop()
        await asyncio.wait_for(runner, 15)
