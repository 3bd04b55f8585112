"""The HTTP API against its own OpenAPI document, checked by an independent tool: schemathesis
runs every phase (examples, coverage, fuzzing, stateful) with every check against the engine
with the demo site, over real HTTP, and must find nothing. The live streams' events are checked
against the document here too, every kind of them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from pathlib import Path

import aiohttp
import jsonschema
import msgspec
import pytest
from test_web_api import TICKET_SECRET, api_factory, demo, village  # noqa: F401 (the fixture)
from web_helpers import SUPERVISOR_TOKEN

from queue_engine.core import events as ev
from queue_engine.tickettoken import entrance_key
from queue_engine.web import openapi_document
from queue_engine.web.inputs import BODIES, MAX_BODY

pytestmark = pytest.mark.integration

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# Bounded so that the run takes about a minute on two shared cores.
MAX_EXAMPLES = 200
CONFIG = """\
# A stream is read up to its first event (hello: nothing else happens while it is read);
# test_every_live_event_follows_the_document reads every kind.
max-stream-events = 1

# The demo site where the document can only say "a site's identifier".
[parameters]
"path.site" = "demo"
"path.window" = "w02"

# A schema-valid acknowledgement may still be answered 422 note_required: a bad rating's alert
# needs a note, which depends on the alert's kind, not on the request; the document declares it.
# So may a rating with reasons (reasons_not_allowed: only a bad score has reasons).
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", 401, 403, 404, 409, 422, 429, "5xx"]
"""


def schemathesis_command(url: str, report_dir: Path) -> list[str]:
    return [
        str(SCHEMATHESIS) if SCHEMATHESIS.exists() else shutil.which("schemathesis") or "schemathesis",
        "--config-file",
        str(report_dir / "schemathesis.toml"),
        "run",
        url,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {SUPERVISOR_TOKEN}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--request-timeout",
        "5",
        "--workers",
        "1",
        "--no-color",
        "--generation-database",
        "none",
        "--report",
        "har",
        "--report-har-path",
        str(report_dir / "requests.har"),
    ]


def answered(text: str, report_dir: Path) -> set[tuple[str, str, int]]:
    """A run that found nothing and generated requests: the (method, URL, status) it had answered."""
    (report_dir / "schemathesis.txt").write_text(text)
    generated = re.search(r"(\d+) generated", text)
    assert generated and int(generated[1]) > 0, text[-3000:]
    entries = json.loads((report_dir / "requests.har").read_text())["log"]["entries"]
    return {(e["request"]["method"], e["request"]["url"].split("?")[0], e["response"]["status"]) for e in entries}


async def take_and_check_in(api, service: str = "shebao", phone: str = "13800000000") -> dict:
    """A number taken with a phone, reserved, checked in with the entrance poster's key: the
    answer to the taking."""
    status, taken, _ = await api.take(service, phone)
    assert status == 201 and taken["ticket"]["status"] == "reserved", taken
    check_in = f"/api/v1/sites/demo/slips/{taken['ticket']['token']}/check-in"
    status, body, _ = await api.call("POST", check_in, json_body={"key": entrance_key(TICKET_SECRET, "demo")})
    assert (status, body["status"]) == (200, "waiting"), body
    return taken


async def make_alerts(api) -> None:
    """Open alerts to acknowledge: window 1 left empty, a bad rating at window 2."""
    await api.event(ev.DeviceStatus, device="cam-w01", online=True, kind="camera")
    await api.event(ev.StaffLogin, device="panel-w01", staff="s001")
    await api.event(ev.Presence, device="cam-w01", window="w01", present=False, count=0)
    api.clock.advance(5 * 60 + 1)  # the demo's unstaffed grace
    await api.event(ev.DeviceStatus, device="cam-w01", online=True, kind="camera")  # the hall ticks
    await take_and_check_in(api)
    for cls, fields in (
        (ev.StaffLogin, {"device": "panel-w02", "staff": "s002"}),
        (ev.CallNext, {"device": "panel-w02"}),
        (ev.ServiceStart, {"device": "panel-w02"}),
        (ev.ServiceFinish, {"device": "panel-w02", "outcome": ev.Outcome.DONE}),
        (ev.Rating, {"device": "pad-w02", "window": "w02", "score": 1}),
    ):
        await api.event(cls, **fields)
    kinds = {a.kind.value for a in api.app.engine.hall("demo").supervisor.alerts.values()}
    assert {"window_unstaffed", "bad_rating"} <= kinds
    # A case (办件) to act on: budongchan (a 承诺件) accepted at window 1 (无差别综合受理).
    taken = await take_and_check_in(api, "budongchan", "13800000001")
    for cls, fields in (
        (ev.CallPick, {"ticket": taken["ticket"]["no"]}),
        (ev.ServiceStart, {}),
        (ev.ServiceFinish, {"outcome": ev.Outcome.ACCEPTED}),
    ):
        await api.event(cls, device="panel-w01", **fields)
    assert api.app.engine.hall("demo").cases.open_cases()


async def test_schemathesis_finds_nothing(api_factory, tmp_path):  # noqa: F811 (the fixture)
    api = await api_factory(sites=[demo(reservation_min=60), village(phone_tickets_per_day=0)])
    await make_alerts(api)
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    command = schemathesis_command(f"{api.base}/api/v1/openapi.json", tmp_path)
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path, env=env
    )
    output, _ = await asyncio.wait_for(process.communicate(), 600)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-20000:]
    requests = answered(text, tmp_path)

    # The links took the stateful phase where generated data cannot go: an alert acknowledged,
    # a number taken and then looked up.
    assert any(m == "POST" and u.endswith("/acknowledge") and s == 200 for m, u, s in requests), requests
    assert any(m == "POST" and u.endswith("/tickets") and s == 201 for m, u, s in requests)
    assert any(m == "GET" and re.search(r"/tickets/[A-Z]+\d+$", u) and s == 200 for m, u, s in requests)
    # ... and a case event reached a case that exists (answered, or refused as closed already).
    assert any(m == "POST" and re.search(r"/cases/J\d+/events$", u) and s in (200, 409, 422) for m, u, s in requests)


def test_no_body_the_document_admits_is_too_large():
    """The largest body each request schema admits (every text at its maximum length, each
    character escaped as a surrogate pair) is under the size the handlers read."""
    for body in BODIES:
        info = msgspec.inspect.type_info(body)
        size = 2
        for field in info.fields:
            kinds = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
            longest = 0
            for kind in kinds:
                if isinstance(kind, msgspec.inspect.Metadata):
                    kind = kind.type
                if isinstance(kind, msgspec.inspect.StrType):
                    assert kind.max_length is not None, (body, field.name)  # every text is bounded
                    longest = max(longest, 12 * kind.max_length)
                elif isinstance(kind, msgspec.inspect.EnumType):
                    longest = max(longest, max(len(str(m.value)) for m in kind.cls))
            size += len(field.encode_name) + 4 + longest + 1
        assert size < MAX_BODY, body


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    kind = None
    while len(events) < count:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind:
            events.append((kind, line[6:]))
    return events


def event_validator(document: dict, path: str):
    """The names of the events of the stream at ``path``, and a check of one event against the
    document: its name among the stream's, its data JSON that follows that event's schema."""
    schema = document["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    by_name = {branch["properties"]["event"]["const"]: branch for branch in schema["oneOf"]}

    def check(name: str, data: str) -> None:
        assert name in by_name, (path, name)
        branch = by_name[name]
        jsonschema.validate({"event": name, "data": data}, {**branch, "components": document["components"]})
        content = {**branch["properties"]["data"]["contentSchema"], "components": document["components"]}
        jsonschema.Draft202012Validator(content, format_checker=jsonschema.FormatChecker()).validate(json.loads(data))

    return set(by_name), check


async def test_every_live_event_follows_the_document(api_factory):  # noqa: F811 (the fixture)
    api = await api_factory(sites=[demo(reservation_min=60), village(phone_tickets_per_day=0)])
    document = openapi_document()
    headers = {"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}
    streams = {
        "/api/v1/sites/{site}/stream": "/api/v1/sites/demo/stream",
        "/api/v1/sites/{site}/manage/stream": "/api/v1/sites/demo/manage/stream",
        "/api/v1/supervise/stream": "/api/v1/supervise/stream",
    }
    opened = {}
    for template, path in streams.items():
        opened[template] = await api.session.get(api.base + path, headers=headers)
        assert opened[template].status == 200
        assert (await read_events(opened[template], 1))[0][0] == "hello"
    # A number, its call, a window, an alert (window 1 left empty), a device that goes silent.
    await take_and_check_in(api)
    await make_alerts(api)
    await api.event(ev.CallNext, device="panel-w01")
    await api.event(ev.DeviceStatus, device="cam-w03", online=False, kind="camera", reason="shutdown")
    try:
        for template, response in opened.items():
            names, check = event_validator(document, template)
            seen: set[str] = set()
            while seen != names - {"hello"}:
                for name, data in await read_events(response, 1):
                    check(name, data)
                    seen.add(name)
    finally:
        for response in opened.values():
            response.close()
