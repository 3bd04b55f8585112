"""办件 over MQTT: the panel agent's keys for cases, the wire's additive fields, the store's
tables, and a real engine process restarted with open cases and their due timers.

The demo site (examples/demo-site.toml): budongchan (B) a 承诺件 of 5 working days at w05,
shuidianqi (F) a 承诺件 of 3 at w08, shebao (A) a 即办件 at w02; w10 the 办不成事 window. The
engine's clock starts on Wednesday 2026-11-25 at 09:00 unless a test says otherwise.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from zoneinfo import ZoneInfo

import msgspec
import pytest
from mqtt_helpers import Device, Listener
from test_agents import run_agent

from queue_engine import wire
from queue_engine.core.alerts import Alert, AlertKind, AlertState
from queue_engine.privacy import CITIZEN_KEY_ENV, citizen_key

pytestmark = pytest.mark.integration

CITIZEN_SECRET = bytes(range(32))


def rows(engine, sql: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(engine.db)) as db:
        return db.execute(sql, params).fetchall()


def take(broker, service: str, count: int = 1) -> list[str]:
    kiosk = Device(broker.port, "kiosk-1")
    try:
        return [kiosk.request("ticket.request", service=service)["ticket"]["no"] for _ in range(count)]
    finally:
        kiosk.close()


def test_the_panel_agents_case_keys_open_and_follow_cases_over_mqtt(broker, engine):
    assert take(broker, "budongchan", 3) == ["B001", "B002", "B003"]
    first = run_agent(
        "panel",
        broker,
        "--device",
        "panel-w05",
        stdin="l s005\nn\nb\nf 受理\nn\nb\nf 告知 缺=2,6 证件=41132519800101001X\nn\nb\nf proxy 转=县自然资源局\nq\n",
        env={**os.environ, CITIZEN_KEY_ENV: CITIZEN_SECRET.hex()},
    )
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "已结束办理（受理）：B001，办件号 J20261125001" in out
    assert "已结束办理（一次性告知）：B002，一次性告知书 G20261125001" in out
    assert "已结束办理（帮办代办）：B003，办件号 J20261125002" in out

    follow = run_agent(
        "panel",
        broker,
        "--device",
        "panel-w05",
        stdin="k J20261125002 进展 已报县自然资源局审核\nk j20261125002 转 市自然资源局\n"
        "k J20261125001 办结 已登记发证\nk J20261125001 进展 补记\nq\n",
    )
    assert follow.returncode == 1  # the last one is refused, and a script sees it
    assert "办件 J20261125002 已转交：市自然资源局" in follow.stdout
    assert "办件 J20261125001 已办结" in follow.stdout
    assert "操作失败：该办件已办结、退回或撤回" in follow.stdout

    assert rows(
        engine, "select no, kind, status, due_day, agent, passed_to, result, ticket from cases order by no"
    ) == [
        ("J20261125001", "promised", "completed", "2026-12-02", "s005", None, "已登记发证", "B001"),
        ("J20261125002", "proxy", "open", "2026-12-02", "s005", "市自然资源局", None, "B003"),
    ]
    assert rows(engine, "select case_no, action, actor, note, passed_to, result from case_log order by id") == [
        ("J20261125001", "opened", "s005", "", None, None),
        ("J20261125002", "opened", "s005", "", "县自然资源局", None),
        ("J20261125002", "note", "s005", "已报县自然资源局审核", "县自然资源局", None),
        ("J20261125002", "passed_on", "s005", "", "市自然资源局", None),
        ("J20261125001", "completed", "s005", "", None, "已登记发证"),
    ]
    ((number, missing, citizen, breach),) = rows(engine, "select no, missing, citizen, breach from notices")
    assert (number, json.loads(missing), breach) == (
        "G20261125001",
        ["申请人身份证明", "完税凭证（依法需要缴税的）"],
        0,
    )
    # the number itself never left the panel: its key under the panel's citizen key
    assert citizen == citizen_key(CITIZEN_SECRET, "41132519800101001x")
    assert "41132519800101001" not in "".join(r[0] for r in rows(engine, "select payload from events"))
    assert rows(engine, "select no, first_window, first_staff, case_no, notice_no from tickets order by no") == [
        ("B001", "w05", "s005", "J20261125001", None),
        ("B002", "w05", "s005", None, "G20261125001"),
        ("B003", "w05", "s005", "J20261125002", None),
    ]


def test_an_old_panels_finish_still_works_and_bad_new_fields_are_refused_with_a_reason(broker, engine):
    take(broker, "shebao", 2)
    panel, watch = Device(broker.port, "panel-w02"), Listener(broker.port, "hallwatch/demo/rejected")
    try:
        assert panel.request("staff.login", staff="s002")["ok"]
        assert panel.request("call.next")["ticket"] == "A001"
        assert panel.request("service.start")["ok"]
        # Exactly what a panel of the first protocol revision sends: the reply is as it was.
        old = panel.wait_reply(panel.send("service.finish", outcome="done"))
        assert old == {"v": 1, "re": old["re"], "ok": True, "ticket": "A001"}

        assert panel.request("call.next")["ticket"] == "A002"
        assert panel.request("service.start")["ok"]
        refused = panel.request("service.finish", outcome="informed", missing=[9])
        assert (refused["ok"], refused["error"]) == (False, "bad_request") and "第 9 项不存在" in refused["message"]
        panel.send("service.finish", outcome="informed", missing="身份证")  # not a list: the wire refuses it
        (rejected,) = watch.wait_topic("hallwatch/demo/rejected")
        assert rejected["error"] == "bad_field" and "$.missing" in rejected["reason"]
        told = panel.request("service.finish", outcome="informed", missing=[1])
        assert told["ok"] and told["notice"] == "G20261125001"
        unknown = panel.request("case.note", case="J20990101001", note="x")
        assert (unknown["ok"], unknown["error"]) == (False, "unknown_case")
    finally:
        panel.close()
        watch.close()


def test_a_restarted_engine_keeps_its_open_cases_and_raises_case_overdue_on_their_days(broker, engine_factory):
    engine = engine_factory().start()
    alerts = Listener(broker.port, "hallwatch/demo/alerts")
    panel = Device(broker.port, "panel-w08")
    try:
        take(broker, "shuidianqi")
        assert panel.request("staff.login", staff="s001")["ok"]
        assert panel.request("call.next")["ticket"] == "F001"
        assert panel.request("service.start")["ok"]
        accepted = panel.request("service.finish", outcome="accepted")
        assert accepted["case"] == "J20261125001"
        engine.kill()  # (the case was committed before the reply)

        def case_alerts(count: int) -> list[dict]:
            return alerts.wait_for(
                lambda msgs: (lambda hits: hits if len(hits) >= count else None)(
                    [
                        b
                        for t, p, _, _ in msgs
                        if (b := json.loads(p))
                        and b["kind"] == "case_overdue"
                        and b["detail"]["case"] == "J20261125001"
                    ]
                ),
                timeout=20,
            )

        engine.start_at = "2026-11-27T09:00:00+08:00"  # Friday: not due yet (Monday 11-30)
        engine.start()
        assert "1 open cases" in engine.log_text()
        assert engine.stop() == 0
        assert [b for b in alerts.on("hallwatch/demo/alerts") if b["kind"] == "case_overdue"] == []

        engine.start_at = "2026-11-30T09:00:00+08:00"  # the due day
        engine.start()
        (warning,) = case_alerts(1)
        assert (warning["state"], warning["severity"], warning["overdue"]) == ("firing", "warning", False)
        assert (warning["staff"], warning["detail"]["holder"], warning["audiences"]) == (
            "s001",
            "s001",
            ["manager", "supervision"],
        )
        assert warning["since"].startswith("2026-11-30T00:00:00") and warning["due"].startswith("2026-12-01T00:00")
        assert engine.stop() == 0

        engine.start_at = "2026-12-01T09:00:00+08:00"  # after it: the same alert, critical
        engine.start()
        critical = case_alerts(2)[1]
        assert (critical["id"], critical["severity"], critical["overdue"]) == (warning["id"], "critical", True)

        done = panel.request("case.complete", case="J20261125001", result="已通水")
        assert done["ok"] and done["case"] == "J20261125001"
        resolved = case_alerts(3)[2]
        assert (resolved["id"], resolved["state"]) == (warning["id"], "resolved")
    finally:
        panel.close()
        alerts.close()
    assert rows(engine, "select status, result from cases") == [("completed", "已通水")]


def test_an_alert_from_an_engine_before_cases_is_still_read():
    """The county service decodes the halls' alerts with the wire's struct: a township engine
    of an earlier release sends no ``audiences``."""
    alert = Alert(
        id="demo-000001",
        site="demo",
        kind=AlertKind.WAIT_TOO_LONG,
        severity="warning",
        state=AlertState.FIRING,
        subject="shebao",
        since=1795568400.0,
    )
    body = wire.alert_payload(alert, ZoneInfo("Asia/Shanghai"))
    assert body["audiences"] == ["manager"]
    del body["audiences"]
    decoded = msgspec.json.decode(wire.encode(body), type=wire.WireAlert)
    assert (decoded.kind, decoded.audiences) == (AlertKind.WAIT_TOO_LONG, [])
