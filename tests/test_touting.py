"""Numbers that cannot be touted, over real HTTP on an engine with its real store and broker: a
phone's number is reserved until checked in at the hall and never called before, expires as
the phone's no-show; the limits per phone, address, network and site hold against a script on
many addresses (loopback source addresses, or a trusted proxy's X-Forwarded-For); the green
channel asked for with a phone waits for a window's word; a kiosk issuing too fast raises an
alert; the optional SMS verification hook."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import sqlite3

import aiohttp
import pytest
from test_web_api import TICKET_SECRET, api_factory, demo, village  # noqa: F401 (the fixture)
from web_helpers import MANAGER_TOKEN

from queue_engine.core import events as ev
from queue_engine.tickettoken import entrance_key
from queue_engine.web import HttpSettings

pytestmark = pytest.mark.integration
TAKE = "/api/v1/sites/demo/tickets"


def reserving(**web):
    return [demo(reservation_min=60, **web), village(phone_tickets_per_day=0)]


async def submit(api, event):
    return (await api.app.submit_event(event)).result


async def wait_for(probe, what: str, timeout: float = 5.0):
    for _ in range(int(timeout / 0.02)):
        if found := probe():
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")


async def test_a_phone_number_is_reserved_until_checked_in_and_never_called_before(api_factory):  # noqa: F811
    api = await api_factory(sites=reserving())
    await api.event(ev.StaffLogin, device="panel-w02", staff="s002")
    status, body, _ = await api.take("shebao", "13800000001")
    assert status == 201, body
    first = body["ticket"]
    assert (first["status"], len(first["check_in_code"])) == ("reserved", 6)
    slip = f"/api/v1/sites/demo/slips/{first['token']}"
    status, body, _ = await api.call("GET", slip)
    assert (body["status"], body["status_text"], body["check_in_code"]) == (
        "reserved",
        "待签到",
        first["check_in_code"],
    )
    assert body["reserved_until"] == "2026-11-25T10:00:00.000+08:00"

    # Reserved: not called.
    refused = await submit(api, ev.CallNext(site="demo", device="panel-w02", id="n1"))
    assert refused.error == "queue_empty"
    refused = await submit(api, ev.CallPick(site="demo", device="panel-w02", id="p1", ticket=first["no"]))
    assert refused.error == "unknown_ticket"

    # Checked in at the kiosk with its code: the reply is the slip to print; now it is called.
    wrong = await submit(api, ev.TicketCheckIn(site="demo", device="kiosk-1", id="k0", code="000000"))
    if first["check_in_code"] != "000000":
        assert wrong.error == "unknown_reservation"
    reply = await submit(api, ev.TicketCheckIn(site="demo", device="kiosk-1", id="k1", code=first["check_in_code"]))
    assert reply.ok and reply.ticket.no == first["no"] and reply.ticket.ahead == 0
    again = await submit(api, ev.TicketCheckIn(site="demo", device="kiosk-1", id="k2", code=first["check_in_code"]))
    assert again.error == "unknown_reservation"
    called = await submit(api, ev.CallNext(site="demo", device="panel-w02", id="n2"))
    assert called.ok and called.ticket == first["no"]

    # Checked in from the phone, with the hall entrance poster's key.
    status, body, _ = await api.take("shebao", "13800000002")
    check_in = f"/api/v1/sites/demo/slips/{body['ticket']['token']}/check-in"
    status, body, _ = await api.call("POST", check_in, json_body={"key": "a" * 16})
    assert (status, body["error"]) == (403, "bad_check_in_key")
    status, body, _ = await api.call("POST", check_in, json_body={"key": entrance_key(TICKET_SECRET, "demo")})
    assert (status, body["status"], body["check_in_code"]) == (200, "waiting", None), body
    status, body, _ = await api.call("POST", check_in, json_body={"key": entrance_key(TICKET_SECRET, "demo")})
    assert (status, body["error"]) == (409, "not_reserved")
    # Another hall's key checks nothing in.
    status, body, _ = await api.take("shebao", "13800000003")
    check_in = f"/api/v1/sites/demo/slips/{body['ticket']['token']}/check-in"
    other = await api.call("POST", check_in, json_body={"key": entrance_key(TICKET_SECRET, "shuangquan")})
    assert other[0] == 403


async def test_an_unchecked_reservation_expires_as_the_phone_s_no_show(api_factory):  # noqa: F811
    api = await api_factory(sites=reserving())
    await api.event(ev.StaffLogin, device="panel-w02", staff="s002")
    status, body, _ = await api.take("shebao", "13800000001")
    mine = body["ticket"]
    api.clock.advance(60 * 60 + 1)
    hall = api.app.engine.hall("demo")
    await wait_for(lambda: hall.tickets[mine["no"]].status == "no_show", "the reservation expires")
    status, body, _ = await api.call("GET", f"/api/v1/sites/demo/slips/{mine['token']}")
    assert (body["status"], body["check_in_code"]) == ("no_show", None)
    # Never called, not even picked as a late no-show; its code checks nothing in.
    refused = await submit(api, ev.CallPick(site="demo", device="panel-w02", id="p1", ticket=mine["no"]))
    assert refused.error == "unknown_ticket"
    refused = await submit(api, ev.TicketCheckIn(site="demo", device="kiosk-1", id="k1", code=mine["check_in_code"]))
    assert refused.error == "unknown_reservation"
    # The phone's no-show: no more numbers with it today ([web] phone_no_shows_per_day = 1).
    status, body, _ = await api.take("yibao", "13800000001")
    assert (status, body["error"]) == (429, "phone_no_shows")
    assert (await api.take("yibao", "13800000009"))[0] == 201
    with sqlite3.connect(api.app.db_path) as db:
        row = db.execute("select status, checked_in_at from tickets where no = ?", (mine["no"],)).fetchone()
    assert row == ("no_show", None)


async def touting_script(base: str, sources: list[aiohttp.ClientSession], headers: list[dict]) -> list[int]:
    """50 source addresses x 11 requests, 500 random phone numbers, all at once."""
    rng = random.Random(13)
    phones = [f"1{rng.randint(3, 9)}{rng.randrange(10**9):09d}" for _ in range(500)]

    async def one(session, header, phone) -> int:
        body = json.dumps({"service": "shebao", "phone": phone})
        async with session.post(
            base + TAKE, data=body, headers={"Content-Type": "application/json", **header}
        ) as response:
            await response.read()
            return response.status

    jobs = [one(sources[i % len(sources)], headers[i % len(headers)], phones[i % len(phones)]) for i in range(50 * 11)]
    return list(await asyncio.gather(*jobs))


def issued_to_phones(api) -> int:
    return sum(1 for t in api.app.engine.hall("demo").tickets.values() if t.phone is not None)


LIMITS = {"address_tickets_per_hour": 10, "network_tickets_per_hour": 30, "site_phone_tickets_per_hour": 100}


async def test_a_touting_script_on_50_loopback_addresses_gets_at_most_the_network_limit(api_factory):  # noqa: F811
    """Without a trusted proxy every connection's own address counts: 127.0.0.10-59 are one /24."""
    api = await api_factory(sites=reserving(**LIMITS))
    sources = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(f"127.0.0.{10 + i}", 0), limit=1))
        for i in range(50)
    ]
    try:
        # X-Forwarded-For from a client that is not a trusted proxy is not believed.
        statuses = await touting_script(api.base, sources, [{"X-Forwarded-For": f"10.{i}.0.1"} for i in range(50)])
    finally:
        for session in sources:
            await session.close()
    assert statuses.count(201) == 30 == issued_to_phones(api)
    assert statuses.count(429) == 550 - 30
    status, body, _ = await api.take("shebao", "13999999999")
    assert (status, body["error"], body["limit"]) == (429, "network_limit", 30)


async def test_a_touting_script_through_a_trusted_proxy_gets_at_most_the_site_s_hourly_limit(api_factory):  # noqa: F811
    """Behind the trusted proxy each request's X-Forwarded-For is its client: 50 addresses in 50
    networks; the site's hourly limit holds."""
    settings = HttpSettings(trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    api = await api_factory(sites=reserving(**LIMITS), settings=settings)
    statuses = await touting_script(api.base, [api.session], [{"X-Forwarded-For": f"10.{i}.0.1"} for i in range(50)])
    assert statuses.count(201) == 100 == issued_to_phones(api)
    status, body, _ = await api.call(
        "POST", TAKE, json_body={"service": "shebao", "phone": "13999999999"}, headers={"X-Forwarded-For": "10.99.0.1"}
    )
    assert (status, body["error"], body["limit"]) == (429, "site_limit", 100)
    # No more than 10 from one of those addresses.
    per_address = [s for i, s in enumerate(statuses) if i % 50 == 7]
    assert per_address.count(201) <= 10


async def test_an_anonymous_elderly_request_is_not_green_channel_until_a_window_confirms_it(api_factory):  # noqa: F811
    api = await api_factory(sites=reserving())
    await api.event(ev.StaffLogin, device="panel-w02", staff="s002")
    for _ in range(3):
        await api.event(ev.TicketRequest, device="kiosk-1", service="shebao")
    status, body, _ = await api.call(
        "POST", TAKE, json_body={"service": "shebao", "phone": "13800000001", "priority": "elderly"}
    )
    assert status == 201, body
    mine = body["ticket"]
    await api.call(
        "POST",
        f"/api/v1/sites/demo/slips/{mine['token']}/check-in",
        json_body={"key": entrance_key(TICKET_SECRET, "demo")},
    )
    status, body, _ = await api.call("GET", f"/api/v1/sites/demo/slips/{mine['token']}")
    assert (body["priority"], body["priority_claim"], body["priority_check"], body["ahead"]) == (
        False,
        "elderly",
        "pending",
        3,
    )
    # Not green channel: the kiosk's first number is called first.
    called = await submit(api, ev.CallNext(site="demo", device="panel-w02", id="n1"))
    assert called.ticket == "A001"
    await api.event(ev.CallSkip, device="panel-w02")
    # The window has seen the citizen and confirms: the next call is this ticket, ahead of A002.
    confirmed = await submit(
        api, ev.PriorityVerify(site="demo", device="panel-w02", id="v1", ticket=mine["no"], confirm=True)
    )
    assert confirmed.ok
    called = await submit(api, ev.CallNext(site="demo", device="panel-w02", id="n2"))
    assert called.ticket == mine["no"]
    # Asked once: no second verdict.
    again = await submit(
        api, ev.PriorityVerify(site="demo", device="panel-w02", id="v2", ticket=mine["no"], confirm=False)
    )
    assert again.error == "no_priority_claim"

    # A refused claim stays a normal number; the verdict is stored with who gave it.
    status, body, _ = await api.call(
        "POST", TAKE, json_body={"service": "shebao", "phone": "13800000002", "priority": "disabled"}
    )
    other = body["ticket"]["no"]
    refused = await submit(
        api, ev.PriorityVerify(site="demo", device="panel-w02", id="v3", ticket=other, confirm=False)
    )
    assert refused.ok
    ticket = api.app.engine.hall("demo").tickets[other]
    assert (ticket.priority, ticket.priority_check, ticket.priority_checked_by) == (None, "refused", "s002")
    with sqlite3.connect(api.app.db_path) as db:
        rows = db.execute(
            "select no, priority, priority_claim, priority_check, priority_checked_by from tickets "
            "where priority_claim is not null order by no"
        ).fetchall()
    assert rows == [
        (mine["no"], "elderly", "elderly", "confirmed", "s002"),
        (other, None, "disabled", "refused", "s002"),
    ]


async def test_a_kiosk_issuing_faster_than_citizens_take_numbers_raises_one_alert(api_factory):  # noqa: F811
    api = await api_factory(sites=reserving())
    for _ in range(20):  # [supervision] kiosk_tickets_per_minute = 20
        await api.event(ev.TicketRequest, device="kiosk-1", service="shebao", priority=ev.Priority.ELDERLY)
    hall = api.app.engine.hall("demo")
    assert not [a for a in hall.supervisor.alerts.values() if a.kind == "issuing_rate"]
    for _ in range(100):
        await api.event(ev.TicketRequest, device="kiosk-1", service="shebao", priority=ev.Priority.ELDERLY)
    [alert] = [a for a in hall.supervisor.alerts.values() if a.kind == "issuing_rate"]
    assert (alert.device, alert.subject, alert.detail) == ("kiosk-1", "kiosk-1", {"tickets": 21, "limit": 20})
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/alerts", token=MANAGER_TOKEN)
    [shown] = [a for a in body["alerts"] if a["kind"] == "issuing_rate"]
    assert (shown["audience"], shown["audiences"]) == ("manager", ["manager", "it"])


class RecordingVerifier:
    """An SMS gateway stand-in: the hook's provider, which the deployment supplies."""

    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    async def send_code(self, site: str, phone: str) -> None:
        self.sent.append((site, phone))

    async def check_code(self, site: str, phone: str, code: str) -> bool:
        return (site, phone) in self.sent and code == phone[-6:]


async def test_sms_verification_is_a_hook(api_factory):  # noqa: F811
    verifier = RecordingVerifier()
    api = await api_factory(sites=reserving(), settings=HttpSettings(phone_verifier=verifier))
    status, body, _ = await api.take("shebao", "13800000001")
    assert (status, body["error"]) == (403, "phone_unverified")
    status, body, _ = await api.call("POST", "/api/v1/sites/demo/phone-codes", json_body={"phone": "13800000001"})
    assert (status, body) == (202, {"sent": True, "phone": "138****0001"})
    assert verifier.sent == [("demo", "13800000001")]
    wrong = {"service": "shebao", "phone": "13800000001", "code": "999999"}
    assert (await api.call("POST", TAKE, json_body=wrong))[0] == 403
    right = {"service": "shebao", "phone": "13800000001", "code": "000001"}
    assert (await api.call("POST", TAKE, json_body=right))[0] == 201
    # Without a verifier there are no codes to send.
    plain = await api_factory(sites=reserving())
    status, body, _ = await plain.call("POST", "/api/v1/sites/demo/phone-codes", json_body={"phone": "13800000001"})
    assert (status, body["error"]) == (403, "phone_verification_off")
