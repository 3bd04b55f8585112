"""The JSON API under /api/v1, over real HTTP, on an engine running in this process with its
real store and a real broker; the engine's clock is moved by the test."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from conftest import DEMO_SITE, WORKDAY_9AM, free_port
from web_helpers import (
    MANAGER_TOKEN,
    SUPERVISOR_TOKEN,
    VILLAGE_TOKEN,
    ManualClock,
    token_environment,
    village_site_toml,
)

from queue_engine.app import EngineApp
from queue_engine.cli.common import parse_time
from queue_engine.config import Web, load_site, parse_site
from queue_engine.core import events as ev
from queue_engine.privacy import citizen_key, citizen_secret
from queue_engine.shells.mqtt import parse_broker_url
from queue_engine.web import WEB, HttpSettings, openapi_document, start_http
from queue_engine.web.inputs import MAX_BODY

pytestmark = pytest.mark.integration
TICKET_SECRET = b"ticket-secret-for-the-web-tests-0123"
ROOT = Path(__file__).resolve().parent.parent


class Api:
    def __init__(
        self, base: str, session: aiohttp.ClientSession, app: EngineApp, clock: ManualClock, http: web.Application
    ):
        self.base, self.session, self.app, self.clock, self.http = base, session, app, clock, http
        self.ids = 0

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body=None,
        token: str | None = None,
        data=None,
        headers: dict | None = None,
        cookies: dict | None = None,
        redirects: bool = True,
    ):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.base + path, data=data, headers=headers, cookies=cookies, allow_redirects=redirects
        ) as response:
            text = await response.text()
            body = json.loads(text) if response.content_type == "application/json" else text
            return response.status, body, response.headers

    async def event(self, cls, site: str = "demo", **fields):
        self.ids += 1
        done = await self.app.submit_event(cls(site=site, id=f"t{self.ids}", **fields))
        assert done.result is None or done.result.ok, done.result
        return done

    async def take(self, service: str, phone: str, site: str = "demo"):
        return await self.call("POST", f"/api/v1/sites/{site}/tickets", json_body={"service": service, "phone": phone})


def demo(**web_settings):
    """The demo site, its devices heartbeating hourly: the tests move the clock by minutes
    without sending heartbeats. Its phone tickets wait in the queue at once unless the test
    asks for reservations (``reservation_min``)."""
    site = load_site(DEMO_SITE)
    web = site.web.model_copy(update={"reservation_min": 0, **web_settings})
    devices = [d.model_copy(update={"heartbeat_s": 3600}) for d in site.devices]
    return site.model_copy(update={"devices": devices, "web": web})


def village(**web_settings):
    site = parse_site(tomllib.loads(village_site_toml(heartbeat_s=3600)))
    return site.model_copy(
        update={"web": Web(**{"manager_token_env": "HALLWATCH_MANAGER_TOKEN_VILLAGE", **web_settings})}
    )


@pytest.fixture
async def api_factory(broker, tmp_path, monkeypatch):
    """Engines (demo and the village site; the village takes no phone tickets) with the HTTP
    application ``hallwatch engine --http`` serves, each on a free port."""
    for name, value in token_environment().items():
        monkeypatch.setenv(name, value)
    started = []

    async def make(start: str = WORKDAY_9AM, sites=None, *, settings: HttpSettings | None = None) -> Api:
        clock = ManualClock(parse_time(start))
        app = EngineApp(
            sites or [demo(), village(phone_tickets_per_day=0)],
            broker=parse_broker_url(broker.url),
            db_path=tmp_path / f"web{len(started)}.db",
            clock=clock,
            client_id=f"web-api-{len(started)}",
            synchronous="NORMAL",
            ticket_secret=TICKET_SECRET,
        )
        task = asyncio.create_task(app.run())
        await asyncio.wait_for(app.ready.wait(), 10)
        port = free_port()
        # The tests present dozens of wrong tokens from one address on purpose.
        settings = settings or HttpSettings(wrong_tokens_per_minute=1000)
        runner = await start_http(app, "127.0.0.1", port, settings=settings)
        session = aiohttp.ClientSession()
        started.append((app, task, runner, session))
        return Api(f"http://127.0.0.1:{port}", session, app, clock, runner.app)

    yield make
    for app, task, runner, session in started:
        await session.close()
        await runner.cleanup()
        app.stop()
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def api(api_factory):
    return await api_factory()


async def test_sites_and_the_catalogue_are_public(api):
    status, body, _ = await api.call("GET", "/api/v1/sites")
    assert status == 200 and [s["id"] for s in body["sites"]] == ["demo", "shuangquan"]
    assert body["sites"][0]["name"] == "内乡县赤眉镇行政审批服务中心" and body["sites"][0]["open"] is True
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/services")
    assert status == 200 and len(body["services"]) == 12
    for service in body["services"]:  # every service with its complete 办事指南
        guide = service["guide"]
        assert all(guide[k] for k in ("basis", "conditions", "materials", "time_limit", "fee", "item_type")), service
        assert service["windows"], service
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/services/budongchan")
    assert status == 200 and body["guide"]["time_limit"] == "5个工作日" and "5号窗口" in body["windows"]
    status, body, _ = await api.call("GET", "/api/v1/sites/demo")
    assert status == 200 and len(body["windows"]) == 10 and body["hours"] == ["08:30-12:00", "14:30-17:30"]
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/queue")
    assert status == 200 and body["waiting"] == 0 and len(body["services"]) == 12


async def test_a_number_from_a_phone_its_position_and_the_per_phone_limit(api):
    status, body, headers = await api.take("shebao", "13800000001")
    assert status == 201, body
    ticket = body["ticket"]
    assert (ticket["no"], ticket["ahead"], ticket["phone"]) == ("A001", 0, "138****0001")
    assert headers["Location"] == "/api/v1/sites/demo/tickets/A001" == ticket["status_url"]
    # Committed with the phone's citizen key and last four digits, never the number.
    key = citizen_key(citizen_secret(TICKET_SECRET), "13800000001")
    assert (
        api.app.engine.hall("demo").tickets["A001"].phone,
        api.app.engine.hall("demo").tickets["A001"].phone_tail,
    ) == (
        key,
        "0001",
    )

    status, body, _ = await api.take("shebao", "13900000002")
    assert (status, body["ticket"]["no"], body["ticket"]["ahead"]) == (201, "A002", 1)
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/tickets/A002")
    assert status == 200
    assert (body["status"], body["status_text"], body["ahead"], body["service_name"]) == (
        "waiting",
        "等候中",
        1,
        "城乡居民基本养老保险参保登记及待遇领取",
    )
    assert body["eta_min"] == 6  # one citizen ahead, 6 minutes each, one window (none open yet: counted as one)
    assert "phone" not in body  # a lookup never shows whose ticket it is

    # Window 2 calls A001: A002 moves up, A001 is called to its window.
    await api.event(ev.StaffLogin, device="panel-w02", staff="s002")
    await api.event(ev.CallNext, device="panel-w02")
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/tickets/a001")
    assert (body["status"], body["window"], body["window_name"]) == ("called", "w02", "2号窗口")
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/tickets/A002")
    assert (body["ahead"], body["status"]) == (0, "waiting")

    # Three numbers per phone per day (demo's [web] default), whatever the service.
    assert (await api.take("yibao", "13800000001"))[0] == 201
    assert (await api.take("huji", "13800000001"))[0] == 201
    status, body, _ = await api.take("jiuye", "13800000001")
    assert (status, body["error"], body["status"], body["limit"]) == (429, "phone_limit", 429, 3)
    assert "3 次上限" in body["message"]
    assert sum(1 for t in api.app.engine.hall("demo").tickets.values() if t.phone == key) == 3
    # The next day counts again.
    api.clock.advance(86400)
    assert (await api.take("jiuye", "13800000001"))[0] == 201


async def test_a_client_address_is_limited_per_hour(api):
    for i in range(10):  # address_tickets_per_hour = 10 (default)
        status, body, _ = await api.take("yibao", f"1370000{i:04d}")
        assert status == 201, body
    status, body, headers = await api.take("yibao", "13600000000")
    assert (status, body["error"], body["limit"]) == (429, "address_limit", 10)
    assert 3500 <= int(headers["Retry-After"]) <= 3600
    api.clock.advance(3601)
    assert (await api.take("yibao", "13600000000"))[0] == 201


async def test_every_error_is_json_naming_the_problem(api):
    tickets = "/api/v1/sites/demo/tickets"
    cases = [
        ("POST", tickets, {"data": b'{"service":"shebao","phone":"13800000000"}'}, 415, "unsupported_media_type", None),
        (
            "POST",
            tickets,
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "bad_json",
            None,
        ),
        ("POST", tickets, {"json_body": ["shebao"]}, 400, "bad_json", None),
        ("POST", tickets, {"data": b"", "headers": {"Content-Type": "application/json"}}, 400, "bad_json", None),
        ("POST", tickets, {"json_body": {"phone": "13800000000"}}, 400, "missing_field", "service"),
        ("POST", tickets, {"json_body": {"service": "shebao"}}, 400, "missing_field", "phone"),
        ("POST", tickets, {"json_body": {"service": "shebao", "phone": "12345"}}, 400, "bad_field", "phone"),
        ("POST", tickets, {"json_body": {"service": 7, "phone": "13800000000"}}, 400, "bad_field", "service"),
        ("POST", tickets, {"json_body": {"service": "", "phone": "13800000000"}}, 400, "bad_field", "service"),
        ("POST", tickets, {"json_body": {"service": "shebao\n", "phone": "13800000000"}}, 400, "bad_field", "service"),
        ("POST", tickets, {"json_body": {"service": "shebao", "phone": "13800000000", "x": 1}}, 400, "bad_field", "x"),
        (
            "POST",
            tickets,
            {"json_body": {"service": "shebao", "phone": "13800000000", "priority": "vip"}},
            400,
            "bad_field",
            "priority",
        ),
        ("POST", tickets, {"json_body": {"service": "nothing", "phone": "13800000000"}}, 404, "unknown_service", None),
        (
            "POST",
            tickets,
            {"json_body": {"service": "shebao", "phone": "13800000000", "x": "y" * MAX_BODY}},
            413,
            "body_too_large",
            None,
        ),
        (
            "POST",
            "/api/v1/sites/nowhere/tickets",
            {"json_body": {"service": "a", "phone": "13800000000"}},
            404,
            "unknown_site",
            None,
        ),
        (
            "POST",
            "/api/v1/sites/shuangquan/tickets",
            {"json_body": {"service": "daiban", "phone": "13800000000"}},
            403,
            "phone_tickets_disabled",
            None,
        ),
        ("GET", "/api/v1/sites/nowhere/queue", {}, 404, "unknown_site", None),
        ("GET", "/api/v1/sites/demo/services/nothing", {}, 404, "unknown_service", None),
        ("GET", "/api/v1/sites/demo/tickets/Z999", {}, 404, "unknown_ticket", None),
        ("GET", "/api/v1/sites/demo/tickets/%3Cb%3E", {}, 400, "bad_ticket_number", None),
        ("GET", "/api/v1/no/such/route", {}, 404, "not_found", None),
        ("DELETE", "/api/v1/sites", {}, 405, "method_not_allowed", None),
        ("PUT", tickets, {}, 405, "method_not_allowed", None),
        ("GET", "/api/v1/sites/demo/alerts?state=bogus", {"token": MANAGER_TOKEN}, 400, "bad_parameter", "state"),
        (
            "POST",
            "/api/v1/sites/demo/alerts/demo-999999/acknowledge",
            {"token": MANAGER_TOKEN, "json_body": {}},
            404,
            "unknown_alert",
            None,
        ),
        (
            "POST",
            "/api/v1/sites/demo/alerts/x/acknowledge",
            {"token": MANAGER_TOKEN, "json_body": {"note": 5}},
            400,
            "bad_field",
            "note",
        ),
    ]
    for method, path, kwargs, status, error, field in cases:
        got, body, headers = await api.call(method, path, **kwargs)
        assert (got, headers["Content-Type"].split(";")[0]) == (status, "application/json"), (method, path, body)
        assert body["error"] == error and body["status"] == status and body["message"], (method, path, body)
        assert body.get("field") == field, (method, path, body)
        if status == 405:
            assert headers["Allow"]
    assert api.app.engine.hall("demo").tickets == {}  # nothing refused was issued


async def test_a_number_outside_issuing_hours_is_refused(api_factory):
    api = await api_factory(start="2026-11-25T20:00:00+08:00")
    status, body, _ = await api.take("shebao", "13800000000")
    assert (status, body["error"]) == (409, "service_closed") and "取号时间" in body["message"]


PROTECTED = [
    # (method, path, site whose manager may use it; None: the supervisor only)
    ("GET", "/api/v1/sites/demo/summary", "demo"),
    ("GET", "/api/v1/sites/demo/windows", "demo"),
    ("GET", "/api/v1/sites/demo/alerts", "demo"),
    ("POST", "/api/v1/sites/demo/alerts/{alert}/acknowledge", "demo"),
    ("GET", "/api/v1/sites/demo/manage/stream", "demo"),
    ("GET", "/api/v1/alerts", None),
    ("GET", "/api/v1/supervise", None),
    ("GET", "/api/v1/supervise/stream", None),
]


async def test_tokens_guard_every_protected_route_and_a_refusal_changes_nothing(api):
    # An alert to acknowledge: a bad rating at window 2.
    await api.event(ev.StaffLogin, device="panel-w02", staff="s002")
    await api.take("shebao", "13800000000")
    for cls, fields in (
        (ev.CallNext, {"device": "panel-w02"}),
        (ev.ServiceStart, {"device": "panel-w02"}),
        (ev.ServiceFinish, {"device": "panel-w02", "outcome": ev.Outcome.DONE}),
        (ev.Rating, {"device": "pad-w02", "window": "w02", "score": 1}),
    ):
        await api.event(cls, **fields)
    (alert,) = api.app.engine.hall("demo").supervisor.alerts.values()
    body = {"note": "已回访"}
    for method, template, site in PROTECTED:
        path = template.format(alert=alert.id)
        kwargs = {"json_body": body} if method == "POST" else {}
        status, answer, headers = await api.call(method, path, **kwargs)
        assert (status, answer["error"]) == (401, "missing_token"), path
        assert headers["WWW-Authenticate"].startswith("Bearer")
        for wrong in ("nope", VILLAGE_TOKEN, MANAGER_TOKEN if site is None else "x" * 40):
            status, answer, _ = await api.call(method, path, token=wrong, **kwargs)
            assert (status, answer["error"]) == (403, "bad_token"), (path, wrong)
        status, answer, _ = await api.call(method, path, cookies={"hw_manage_demo": "wrong"}, **kwargs)
        assert status in (401, 403), path
        status, answer, _ = await api.call(method, path, headers={"Authorization": "Basic abc"}, **kwargs)
        assert (status, answer["error"]) == (403, "bad_token"), path
    assert api.app.engine.hall("demo").supervisor.alerts[alert.id].state.value == "firing"  # nothing changed

    for method, template, site in PROTECTED:
        if template.endswith("stream") or method == "POST":
            continue
        for token in ([MANAGER_TOKEN] if site else []) + [SUPERVISOR_TOKEN]:
            status, answer, _ = await api.call(method, template, token=token)
            assert status == 200, (template, answer)
    status, answer, _ = await api.call(
        "POST", f"/api/v1/sites/demo/alerts/{alert.id}/acknowledge", token=MANAGER_TOKEN, json_body=body
    )
    assert status == 200 and answer["alert"]["state"] == "resolved"

    # The manager of one site is nobody at another.
    status, answer, _ = await api.call("GET", "/api/v1/sites/shuangquan/summary", token=MANAGER_TOKEN)
    assert (status, answer["error"]) == (403, "bad_token")
    assert (await api.call("GET", "/api/v1/sites/shuangquan/summary", token=VILLAGE_TOKEN))[0] == 200


async def test_pages_ask_for_the_token_then_keep_it_in_a_cookie(api):
    for path, token in (("/manage/demo", MANAGER_TOKEN), ("/supervise", SUPERVISOR_TOKEN)):
        status, page, _ = await api.call("GET", path)
        assert status == 401 and "访问令牌" in page and 'action="/login"' in page
        status, page, _ = await api.call("GET", f"{path}?token=wrong")
        assert status == 403 and "访问令牌不正确" in page
        status, _, headers = await api.call("GET", f"{path}?token={token}", redirects=False)
        assert status == 303 and headers["Location"] == path
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        name, value = cookie.split(";")[0].split("=", 1)
        status, page, headers = await api.call("GET", path, cookies={name: value})
        assert status == 200 and "default-src 'self'" in headers["Content-Security-Policy"]
        # The login form does the same.
        scope = "manage" if path.startswith("/manage") else "supervise"
        status, _, headers = await api.call(
            "POST", "/login", data={"scope": scope, "site": "demo", "token": token}, redirects=False
        )
        assert status == 303 and headers["Location"] == path
        status, page, _ = await api.call("POST", "/login", data={"scope": scope, "site": "demo", "token": "x"})
        assert status == 403
    cookie = {"hw_manage_demo": MANAGER_TOKEN}
    assert (await api.call("GET", "/api/v1/sites/demo/summary", cookies=cookie))[0] == 200
    assert (await api.call("GET", "/api/v1/supervise", cookies=cookie))[0] == 401  # no supervisor token presented
    # Public pages.
    for path in ("/", "/board/demo", "/take/demo", "/static/board.js"):
        assert (await api.call("GET", path))[0] == 200, path
    assert (await api.call("GET", "/board/nowhere"))[0] == 404


async def test_acknowledging_alerts_and_the_day_s_alert_feed(api):
    await api.event(ev.DeviceStatus, device="cam-w01", online=True, kind="camera")
    await api.event(ev.StaffLogin, device="panel-w01", staff="s001")
    await api.event(ev.Presence, device="cam-w01", window="w01", present=True, count=1)
    await api.event(ev.Presence, device="cam-w01", window="w01", present=False, count=0)
    api.clock.advance(5 * 60 + 1)  # the demo's unstaffed grace
    await api.event(ev.DeviceStatus, device="cam-w01", online=True, kind="camera")  # anything: the hall ticks
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/alerts", token=MANAGER_TOKEN)
    (alert,) = [a for a in body["alerts"] if a["kind"] == "window_unstaffed"]
    assert (alert["state"], alert["window_name"], alert["staff_name"]) == ("firing", "1号窗口", "王丽娟")

    path = f"/api/v1/sites/demo/alerts/{alert['id']}/acknowledge"
    status, body, _ = await api.call(
        "POST", path, token=SUPERVISOR_TOKEN, json_body={"note": "已电话联系，马上回岗", "by": "张科长"}
    )
    assert status == 200
    assert (body["alert"]["state"], body["alert"]["acknowledged_by"], body["alert"]["note"]) == (
        "acknowledged",
        "supervisor:张科长",
        "已电话联系，马上回岗",
    )
    status, body, _ = await api.call("POST", path, token=MANAGER_TOKEN, json_body={})
    assert (status, body["error"]) == (409, "already_acknowledged")

    # Back at the seat: resolved after clear_after_s; the feed keeps the day's resolved alerts.
    await api.event(ev.Presence, device="cam-w01", window="w01", present=True, count=1)
    api.clock.advance(61)
    await api.event(ev.DeviceStatus, device="cam-w01", online=True, kind="camera")
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/alerts", token=MANAGER_TOKEN)
    assert alert["id"] not in [a["id"] for a in body["alerts"]]
    status, body, _ = await api.call("GET", "/api/v1/alerts?state=all", token=SUPERVISOR_TOKEN)
    (resolved,) = [a for a in body["alerts"] if a["id"] == alert["id"]]
    assert (resolved["state"], resolved["note"], resolved["site_name"]) == (
        "resolved",
        "已电话联系，马上回岗",
        "内乡县赤眉镇行政审批服务中心",
    )

    # A bad rating needs the follow-up note.
    await api.take("shebao", "13800000000")
    for cls, fields in (
        (ev.StaffLogin, {"device": "panel-w02", "staff": "s002"}),
        (ev.CallNext, {"device": "panel-w02"}),
        (ev.ServiceStart, {"device": "panel-w02"}),
        (ev.ServiceFinish, {"device": "panel-w02", "outcome": ev.Outcome.DONE}),
        (ev.Rating, {"device": "pad-w02", "window": "w02", "score": 2}),
    ):
        await api.event(cls, **fields)
    (bad,) = [a for a in api.app.engine.hall("demo").supervisor.alerts.values() if a.kind.value == "bad_rating"]
    path = f"/api/v1/sites/demo/alerts/{bad.id}/acknowledge"
    status, body, _ = await api.call("POST", path, token=MANAGER_TOKEN, json_body={"note": "  "})
    assert (status, body["error"]) == (422, "note_required")
    status, body, _ = await api.call("POST", path, token=MANAGER_TOKEN, json_body={"note": "已回访"})
    assert (status, body["alert"]["state"], body["alert"]["acknowledged_by"]) == (200, "resolved", "manager")


async def test_figures_chart_and_unstaffed_minutes(api):
    hall = api.app.engine.hall("demo")
    await api.event(ev.DeviceStatus, device="cam-w02", online=True, kind="camera")
    await api.event(ev.StaffLogin, device="panel-w02", staff="s002")
    await api.event(ev.Presence, device="cam-w02", window="w02", present=True, count=1)
    for phone in ("13800000001", "13800000002", "13800000003"):
        await api.take("shebao", phone)
    waits = []
    for outcome in (ev.Outcome.DONE, None):  # A001 served after 4 min, A002 a no-show after 8 min
        api.clock.advance(240)
        await api.event(ev.CallNext, device="panel-w02")
        waits.append(hall.tickets[hall.windows["w02"].ticket])
        if outcome:
            await api.event(ev.ServiceStart, device="panel-w02")
            await api.event(ev.ServiceFinish, device="panel-w02", outcome=outcome)
            await api.event(ev.Rating, device="pad-w02", window="w02", score=4)
        else:
            await api.event(ev.CallSkip, device="panel-w02")
    # Window 2 unstaffed for 7 minutes so far (an open segment: nothing written yet).
    await api.event(ev.Presence, device="cam-w02", window="w02", present=False, count=0)
    api.clock.advance(7 * 60)
    status, body, _ = await api.call("GET", "/api/v1/sites/demo/summary", token=MANAGER_TOKEN)
    assert status == 200 and body["role"] == "manager"
    f = body["figures"]
    assert (f["issued"], f["served"], f["no_shows"], f["waiting"], f["phone_tickets"]) == (3, 1, 1, 1, 3)
    assert (f["wait_avg_min"], f["wait_p90_min"]) == (6.0, 8.0)  # waits of 4 and 8 minutes
    assert f["ratings"] == {
        "count": 1,
        "average": 4.0,
        "scores": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0},
        "bad": 0,
        "satisfied_pct": 100.0,
    }
    (w02,) = [w for w in body["windows"] if w["window"] == "w02"]
    assert (w02["staffing"], w02["staff_name"], w02["served_today"]) == ("unstaffed", "李建军", 1)
    assert w02["vacant_min"] == {"not_opened": 0.0, "unstaffed": 7.0, "unverified": 0.0, "total": 7.0}
    # Windows nobody opened since the hall opened at 09:00 are 空岗 too, in their own category.
    (w03,) = [w for w in body["windows"] if w["window"] == "w03"]
    assert w03["staffing"] == "not_opened" and w03["vacant_min"]["not_opened"] == w03["vacant_min"]["total"] > 7.0
    assert body["series"] and body["series"][-1]["waiting"] == 1
    assert any(p["wait_avg_min"] for p in body["series"])
    status, body, _ = await api.call("GET", "/api/v1/supervise", token=SUPERVISOR_TOKEN)
    ranked = {r["window"]: r for r in body["ranking"]["windows"] if r["site"] == "demo"}
    assert (ranked["w02"]["minutes"], ranked["w02"]["staff_name"]) == (7.0, "李建军")
    assert ranked["w02"]["vacant_min"]["unstaffed"] == 7.0
    assert body["ranking"]["windows"][0]["minutes"] >= ranked["w03"]["minutes"] > 7.0  # never opened ranks first
    (staff,) = [r for r in body["ranking"]["staff"] if r["staff"] == "s002"]
    assert staff["minutes"] == 7.0 and staff["vacant_min"]["unstaffed"] == 7.0
    (demo,) = [s for s in body["sites"] if s["id"] == "demo"]
    assert demo["windows"]["unstaffed"] == 1 and demo["windows"]["not_opened"] > 0 and demo["waiting"] == 1
    # Back at the seat: the segment closes into the day's totals; the ranking keeps 7 minutes.
    await api.event(ev.Presence, device="cam-w02", window="w02", present=True, count=1)
    api.clock.advance(600)
    status, body, _ = await api.call("GET", "/api/v1/supervise", token=SUPERVISOR_TOKEN)
    assert next(r for r in body["ranking"]["windows"] if r["window"] == "w02")["minutes"] == 7.0


async def read_events(response: aiohttp.ClientResponse, wanted: int, timeout: float = 5.0) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    kind = None

    async def read():
        nonlocal kind
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
                if len(events) >= wanted:
                    return

    await asyncio.wait_for(read(), timeout)
    return events


async def test_live_updates_carry_what_each_commit_published(api):
    web_ = api.http[WEB]
    assert web_.broadcaster.clients == set()
    async with (
        api.session.get(api.base + "/api/v1/sites/demo/stream") as public,
        api.session.get(
            api.base + "/api/v1/supervise/stream", headers={"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}
        ) as office,
    ):
        assert public.headers["Content-Type"].startswith("text/event-stream")
        (hello,) = await read_events(public, 1)
        assert hello[0] == "hello" and hello[1]["now_ms"] == round(api.clock.t * 1000)
        await read_events(office, 1)
        assert len(web_.broadcaster.clients) == 2
        await api.event(ev.StaffLogin, device="panel-w02", staff="s002")
        await api.take("shebao", "13800000000")
        await api.event(ev.CallNext, device="panel-w02")
        seen = await read_events(public, 3)
        assert [k for k, _ in seen] == ["queue", "call", "queue"]  # the board gets no window states
        assert seen[1][1] == {
            "site": "demo",
            "v": 1,
            "ticket": "A001",
            "window": "w02",
            "window_name": "2号窗口",
            "at": seen[1][1]["at"],
            "recall": False,
            "n": 1,
        }
        office_seen = await read_events(office, 4)
        assert {k for k, _ in office_seen} == {"window", "queue"} and all(d["site"] == "demo" for _, d in office_seen)
    for _ in range(50):
        if not web_.broadcaster.clients:
            break
        await asyncio.sleep(0.05)
    assert web_.broadcaster.clients == set()


async def test_the_openapi_document_describes_every_route(api):
    status, served, _ = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200 and served == json.loads(json.dumps(openapi_document()))
    routes = set()
    for route in api.http.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/v1/") and route.method != "HEAD":
            routes.add((path, route.method.lower()))
    documented = {(path, method) for path, ops in served["paths"].items() for method in ops}
    assert routes == documented
    # Every reference resolves.
    text = json.dumps(served)
    for ref in set(part.split('"')[0] for part in text.split('"$ref": "')[1:]):
        node = served
        for key in ref.lstrip("#/").split("/"):
            node = node[key]
    for path, ops in served["paths"].items():
        for op in ops.values():
            assert op["summary"] and "responses" in op and "security" in op, path


def test_the_web_settings_and_the_api_are_documented():
    doc = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for name in Web.model_fields:
        assert name in doc, f"[web] {name} is not in docs/api.md"
    for path in openapi_document()["paths"]:
        assert path in doc, f"{path} is not in docs/api.md"
    for code in (
        "missing_token",
        "bad_token",
        "too_many_wrong_tokens",
        "phone_limit",
        "address_limit",
        "HALLWATCH_SUPERVISOR_TOKEN",
    ):
        assert code in doc


def test_a_console_whose_token_is_not_set_stays_closed():
    from aiohttp.test_utils import make_mocked_request

    from queue_engine.web import Access, ApiError

    access = Access.from_environment([demo()], environ={})
    request = make_mocked_request("GET", "/api/v1/sites/demo/summary", headers={"Authorization": "Bearer anything"})
    for site in ("demo", None):
        with pytest.raises(ApiError) as refused:
            access.check(request, site)
        assert (refused.value.status, refused.value.code) == (403, "access_not_configured")
    # An empty variable is no token either.
    assert Access.from_environment([demo()], environ={"HALLWATCH_MANAGER_TOKEN_DEMO": ""}).managers == {"demo": None}
