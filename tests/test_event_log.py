"""The event log end to end (a real Mosquitto, the engine as a real process, a real SQLite
file): an event id is answered with its own request's reply or refused, never with another's;
oversize messages are refused; the log is pruned beyond its retention."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime

import pytest
from conftest import WORKDAY_9AM
from mqtt_helpers import Device, Listener

pytestmark = pytest.mark.integration

REJECTED = "hallwatch/demo/rejected"


def ticket_count(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from tickets").fetchone()[0]


def answer(kiosk: Device, event_id: str, n: int, timeout: float = 10.0) -> dict:
    """The n-th reply (from 1) the kiosk got to ``event_id``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with kiosk._cond:
            replies = [r for r in kiosk.reply_log if r["re"] == event_id]
            if len(replies) >= n:
                return replies[n - 1]
            kiosk._cond.wait(0.1)
    raise TimeoutError(f"no reply {n} to {event_id}")


def test_a_reused_event_id_is_refused_never_answered_with_another_request_s_ticket(broker, engine_factory):
    # 600x: ten minutes of engine time pass in one second.
    engine = engine_factory(speed=600.0).start()
    kiosk = Device(broker.port, "kiosk-1")
    rejected = Listener(broker.port, REJECTED)
    try:
        kiosk.send("ticket.request", event_id="k-1", service="shebao")
        first = answer(kiosk, "k-1", 1)
        assert first["ok"] and first["ticket"]["no"] == "A001"
        # A resend of the same request (the kiosk did not see the reply): the same answer.
        kiosk.send("ticket.request", event_id="k-1", service="shebao")
        assert answer(kiosk, "k-1", 2) == first
        assert ticket_count(engine.db) == 1
        # The same id for another request: refused with a reason, nothing applied.
        kiosk.send("ticket.request", event_id="k-1", service="yibao")
        other = answer(kiosk, "k-1", 3)
        assert (other["ok"], other["error"]) == (False, "id_reused")
        assert "编号" in other["message"]
        assert ticket_count(engine.db) == 1
        # A kiosk whose counter restarted after a reboot, long after: not the old ticket.
        time.sleep(1.2)
        kiosk.send("ticket.request", event_id="k-1", service="shebao")
        late = answer(kiosk, "k-1", 4)
        assert (late["ok"], late["error"]) == (False, "id_reused") and "ticket" not in late
        refusals = rejected.wait_for(
            lambda msgs: (lambda r: r if len(r) >= 2 else None)([json.loads(p) for t, p, _, _ in msgs if t == REJECTED])
        )
        assert [r["error"] for r in refusals] == ["id_reused", "id_reused"]
        assert "different request" in refusals[0]["reason"] and "longer ago" in refusals[1]["reason"]
        with sqlite3.connect(engine.db) as conn:
            assert conn.execute("select count(*) from rejections where error = 'id_reused'").fetchone() == (2,)
            (digest,) = conn.execute("select digest from events where event_id = 'k-1'").fetchone()
            assert len(digest) == 16
        # A new id is a new request.
        assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A002"
    finally:
        kiosk.close()
        rejected.close()


def test_an_oversize_event_is_rejected_with_a_reason_and_the_device_carries_on(broker, engine):
    kiosk = Device(broker.port, "kiosk-1")
    rejected = Listener(broker.port, REJECTED)
    try:
        kiosk.raw(
            json.dumps(
                {
                    "v": 1,
                    "id": "big",
                    "type": "ticket.request",
                    "service": "shebao",
                    "appointment": None,
                    "padding": "x" * 5000,
                }
            )
        )
        (refusal,) = rejected.wait_topic(REJECTED)
        assert refusal["error"] == "too_large" and "4096" in refusal["reason"]
        assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A001"
        with sqlite3.connect(engine.db) as conn:
            assert conn.execute("select count(*) from events where event_id = 'big'").fetchone() == (0,)
    finally:
        kiosk.close()
        rejected.close()


def test_the_event_log_is_pruned_beyond_its_retention_in_chunks(broker, engine_factory):
    engine = engine_factory().start()
    assert engine.stop() == 0
    clock = datetime.fromisoformat(WORKDAY_9AM).timestamp()  # the engine's clock starts there
    old, recent = clock - 40 * 86400, clock - 2 * 86400
    with sqlite3.connect(engine.db) as conn:
        conn.executemany(
            "insert into events (site, device, event_id, type, received_at, payload, digest) "
            "values ('demo', 'kiosk-1', ?, 'ticket.request', ?, '{}', '')",
            [(f"old-{n}", old) for n in range(12_000)] + [(f"new-{n}", recent) for n in range(10)],
        )
        conn.executemany(
            "insert into rejections (at, site, device, topic, error, reason, payload) "
            "values (?, 'demo', 'x', 't', 'bad_json', 'r', 'p')",
            [(old,)] * 7 + [(recent,)] * 3,
        )
    engine.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sqlite3.connect(engine.db) as conn:
            remaining = conn.execute("select count(*) from events where received_at < ?", (clock - 30 * 86400,))
            if remaining.fetchone()[0] == 0:
                break
        time.sleep(0.2)
    with sqlite3.connect(engine.db) as conn:
        assert conn.execute("select count(*) from events where event_id like 'old-%'").fetchone() == (0,)
        assert conn.execute("select count(*) from events where event_id like 'new-%'").fetchone() == (10,)
        assert conn.execute("select count(*) from rejections").fetchone() == (3,)
