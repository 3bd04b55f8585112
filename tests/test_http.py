"""The engine's aiohttp application, in-process on a real socket: health, JSON errors, and
room for further routes on the same application."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from conftest import DEMO_SITE, WORKDAY_9AM, free_port

from queue_engine.app import EngineApp
from queue_engine.cli.common import parse_time
from queue_engine.config import load_site
from queue_engine.shells.clock import Clock
from queue_engine.shells.mqtt import BrokerSettings
from queue_engine.web import ENGINE, ListenAddressError, build_app, parse_listen, start_http


@pytest.fixture
def engine_app(tmp_path):
    """An engine that has not started: its store's writer is not running, it has no broker."""
    return EngineApp(
        [load_site(DEMO_SITE)],
        broker=BrokerSettings(),
        db_path=tmp_path / "x.db",
        clock=Clock(start_at=parse_time(WORKDAY_9AM)),
    )


async def fetch(session: aiohttp.ClientSession, url: str, method: str = "GET") -> tuple[int, str, str]:
    async with session.request(method, url) as response:
        return response.status, response.content_type, await response.text()


async def test_health_errors_and_an_added_route(engine_app):
    app = build_app(engine_app)

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"sites": sorted(request.app[ENGINE].engine.halls)})

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app.router.add_get("/api/sites", hello)  # what the web pages and the JSON API will do
    app.router.add_get("/api/broken", broken)
    port = free_port()
    runner = await start_http(engine_app, "127.0.0.1", port, app=app)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            status, kind, body = await fetch(session, f"{base}/healthz")
            assert (status, kind, json.loads(body)) == (
                503,
                "application/json",
                {"status": "unhealthy", "reason": "store not writable"},
            )
            assert engine_app.metrics is not None  # the commits now feed the metrics
            status, kind, body = await fetch(session, f"{base}/metrics")
            assert status == 200 and "hallwatch_mqtt_connected 0.0" in body
            assert json.loads((await fetch(session, f"{base}/api/sites"))[2]) == {"sites": ["demo"]}
            status, kind, body = await fetch(session, f"{base}/nowhere")
            error = json.loads(body)
            assert (status, kind) == (404, "application/json")
            assert (error["error"], error["status"], error["path"]) == ("not_found", 404, "/nowhere")
            status, kind, body = await fetch(session, f"{base}/healthz", method="POST")
            assert (status, json.loads(body)["error"]) == (405, "method_not_allowed")
            status, kind, body = await fetch(session, f"{base}/api/broken")
            assert (status, kind, json.loads(body)["error"]) == (500, "application/json", "internal_error")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "text, address",
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        (":9108", ("0.0.0.0", 9108)),
        ("[::1]:9108", ("::1", 9108)),
        ("engine:80", ("engine", 80)),
    ],
)
def test_listen_addresses(text, address):
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["9108", "host:", "host:port", "host:0", "host:70000"])
def test_bad_listen_addresses(text):
    with pytest.raises(ListenAddressError):
        parse_listen(text)
