"""The JSON API under ``/api/v1`` (``docs/api.md``, ``openapi.py``): the public catalogue,
queue, board and tickets (a number taken from a phone), the manager's and the supervision
office's reads and actions, and their live streams.

Reads come from the core's current state (``views``); actions go through
``EngineApp.submit_event`` (the same core, store and outputs as a device's event) and are
answered after the commit.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import TYPE_CHECKING, Literal, overload

from aiohttp import web

from ..core import events as ev
from ..core import vocabulary
from ..core.commands import AlertChanged
from . import live, views
from .context import WEB, Web
from .errors import ApiError, json_response
from .openapi import openapi_document

if TYPE_CHECKING:
    from ..core.hall import Hall

API = "/api/v1"
SUBMIT_TIMEOUT_S = 10.0
MAX_BODY = 4096
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")  # a mainland mobile number
TICKET_RE = re.compile(r"^[A-Z]{1,2}\d{1,6}$")
# Core refusal codes -> HTTP status.
REFUSAL_STATUS = {
    "unknown_service": 404,
    "unknown_alert": 404,
    "unknown_ticket": 404,
    "service_closed": 409,
    "already_acknowledged": 409,
    "note_required": 422,
}


# -- request helpers ----------------------------------------------------------------------------------
async def json_body(request: web.Request) -> dict:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "请求体须为 JSON（Content-Type: application/json）")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "body_too_large", f"请求体不能超过 {MAX_BODY} 字节")
    raw = b""
    while len(raw) <= MAX_BODY:  # read() returns what has arrived so far, not the whole body
        chunk = await request.content.read(MAX_BODY + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"请求体不能超过 {MAX_BODY} 字节")
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "bad_json", f"请求体不是有效的 JSON：{exc}", malformed=True) from None
    except RecursionError:  # "[[[[…": nested deeper than the parser goes
        raise ApiError(400, "bad_json", "请求体不是有效的 JSON：嵌套层数过多", malformed=True) from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "请求体须为 JSON 对象")
    return body


@overload
def text_field(body: dict, name: str, *, required: Literal[True], max_length: int = 64) -> str: ...
@overload
def text_field(body: dict, name: str, *, required: bool, max_length: int = 64) -> str | None: ...
def text_field(body: dict, name: str, *, required: bool, max_length: int = 64) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"缺少字段 {name}", field=name)
        return None
    if not isinstance(value, str) or len(value) > max_length or (required and not value.strip()):
        raise ApiError(400, "bad_field", f"字段 {name} 须为不超过 {max_length} 个字符的文本", field=name)
    return value


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


async def submit(shell: Web, event: ev.Event):
    """Hand ``event`` to the engine and wait for its commit (503 when that takes too long)."""
    if shell.engine_app._loop is None:
        raise ApiError(503, "engine_unavailable", "引擎尚未启动")
    try:
        return await asyncio.wait_for(shell.engine_app.submit_event(event), SUBMIT_TIMEOUT_S)
    except TimeoutError:
        raise ApiError(503, "engine_unavailable", "引擎繁忙或存储不可写，结果未知，请稍后查询") from None


def refused(reply) -> ApiError:
    if reply is None:  # every event the web submits is answered; this would be a bug
        return ApiError(500, "internal_error", "引擎没有答复")
    return ApiError(REFUSAL_STATUS.get(reply.error, 400), reply.error, reply.message or reply.error)


# -- public -------------------------------------------------------------------------------------------
async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())


async def vocabulary_tables(request: web.Request) -> web.Response:
    """The product's one vocabulary (core.vocabulary), for the pages' scripts."""
    return json_response(vocabulary.as_json())


async def sites(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    now = shell.now
    return json_response(
        {
            "sites": [
                {k: v for k, v in views.site_info(h, now).items() if k != "windows"}
                for h in shell.engine_app.engine.halls.values()
            ]
        }
    )


async def site(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    return json_response(views.site_info(shell.hall(request), shell.now))


async def services(request: web.Request) -> web.Response:
    hall = request.app[WEB].hall(request)
    return json_response({"site": hall.id, "services": views.catalogue(hall)})


async def service(request: web.Request) -> web.Response:
    hall = request.app[WEB].hall(request)
    code = request.match_info["service"]
    found = hall.site.service(code)
    if found is None:
        raise ApiError(404, "unknown_service", f"没有这项业务：{code}", service=code)
    return json_response(views.service_entry(hall, found))


async def queue(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    return json_response({"site": hall.id, **views.queue_state(hall, shell.now)})


async def board(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    return json_response(views.board(shell.hall(request), shell.now))


async def ticket(request: web.Request) -> web.Response:
    hall = request.app[WEB].hall(request)
    number = request.match_info["ticket"].upper()
    if not TICKET_RE.match(number):
        raise ApiError(400, "bad_ticket_number", "号码格式不正确，例如 A012", ticket=number)
    found = views.position(hall, number)
    if found is None:
        raise ApiError(404, "unknown_ticket", f"今天没有这个号：{number}", ticket=number)
    return json_response(found)


async def take_ticket(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    body = await json_body(request)
    code = text_field(body, "service", required=True)
    phone = text_field(body, "phone", required=True, max_length=20)
    priority = text_field(body, "priority", required=False, max_length=16)
    if not PHONE_RE.match(phone):
        raise ApiError(400, "bad_field", "手机号须为 11 位数字，以 1 开头", field="phone")
    if priority is not None and priority not in {p.value for p in ev.Priority}:
        raise ApiError(
            400, "bad_field", f"priority 须为 {', '.join(p.value for p in ev.Priority)} 之一", field="priority"
        )
    if hall.site.service(code) is None:
        raise ApiError(404, "unknown_service", f"没有这项业务：{code}", service=code)
    address = request.remote or "unknown"
    now = shell.now
    shell.limits.check(hall, phone, address, now, shell.engine_app.clock.speed)
    shell.limits.reserve(hall.id, phone, address)
    issued_at = None
    try:
        done = await submit(
            shell,
            # mypy does not see the fields through the core's dataclass alias (events._event)
            ev.TicketRequest(  # type: ignore[call-arg]
                site=hall.id,
                device="web",
                id=f"web-{uuid.uuid4().hex}",
                service=code,
                phone=phone,
                priority=ev.Priority(priority) if priority else None,
            ),
        )
        reply = done.result
        if reply is None or not reply.ok:
            raise refused(reply)
        slip = reply.ticket
        issued_at = slip.issued_at
    finally:
        shell.limits.release(hall.id, phone, address, issued_at)
    location = f"{API}/sites/{hall.id}/tickets/{slip.no}"
    return json_response(
        {
            "ticket": {
                "no": slip.no,
                "site": hall.id,
                "service": slip.service,
                "service_name": hall.service_config(slip.service).name,
                "issued_at": views.iso(slip.issued_at, hall),
                "ahead": slip.ahead,
                "eta_min": slip.eta_min,
                "phone": mask_phone(phone),
                "status_url": location,
            }
        },
        status=201,
        headers={"Location": location},
    )


# -- manager ------------------------------------------------------------------------------------------
async def summary(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    role = shell.authorize(request, hall.id)
    return json_response({**views.manager_summary(hall, shell.now), "role": role})


async def windows(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    shell.authorize(request, hall.id)
    return json_response({"site": hall.id, "windows": views.windows(hall, shell.now)})


async def site_alerts(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    shell.authorize(request, hall.id)
    return json_response({"site": hall.id, "alerts": await _alerts(shell, [hall], request)})


async def _alerts(shell: Web, halls: list[Hall], request: web.Request) -> list[dict]:
    state = request.query.get("state", "open")
    if state not in ("open", "all"):
        raise ApiError(400, "bad_parameter", "state 须为 open 或 all", field="state")
    alerts = [a for hall in halls for a in views.open_alerts(hall)]
    if state == "all":
        since = views.since_midnight(halls, shell.now)
        alerts += await asyncio.to_thread(views.resolved_alerts, shell.engine_app.db_path, halls, since)
    return _latest_first(alerts)


def _latest_first(alerts: list[dict]) -> list[dict]:
    return sorted(
        alerts, key=lambda a: max(x for x in (a["since"], a["acknowledged_at"], a["until"]) if x), reverse=True
    )


async def acknowledge(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    role = shell.authorize(request, hall.id)
    body = await json_body(request)
    note = text_field(body, "note", required=False, max_length=500) or ""
    by = (text_field(body, "by", required=False, max_length=32) or "").strip()
    alert_id = request.match_info["alert"]
    operator = f"{role}:{by}" if by else role
    done = await submit(
        shell,
        ev.Acknowledge(  # type: ignore[call-arg]  # (events._event, as above)
            site=hall.id, device=operator, id=f"web-ack-{uuid.uuid4().hex}", alert=alert_id, note=note.strip()
        ),
    )
    reply = done.result
    if reply is None or not reply.ok:
        raise refused(reply)
    changed = [c.alert for c in done.commands if isinstance(c, AlertChanged) and c.alert.id == alert_id]
    return json_response({"alert": views.alert(hall, changed[-1]) if changed else None})


# -- supervision --------------------------------------------------------------------------------------
async def all_alerts(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    shell.authorize(request, None)
    return json_response({"alerts": await _alerts(shell, list(shell.engine_app.engine.halls.values()), request)})


async def supervise(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    shell.authorize(request, None)
    now = shell.now
    halls = list(shell.engine_app.engine.halls.values())
    since = views.since_midnight(halls, now)
    resolved = await asyncio.to_thread(views.resolved_alerts, shell.engine_app.db_path, halls, since)
    alerts = [a for hall in halls for a in views.open_alerts(hall)] + resolved
    return json_response(
        {
            "now_ms": round(now * 1000),
            "sites": [views.site_overview(h, now) for h in halls],
            "alerts": _latest_first(alerts),
            "ranking": views.ranking(halls, now),
            "devices_offline": [d for h in halls for d in views.offline_devices(h)],
        }
    )


# -- live ---------------------------------------------------------------------------------------------
async def stream(request: web.Request) -> web.StreamResponse:
    shell = request.app[WEB]
    hall = shell.hall(request)
    return await live.serve(request, shell.broadcaster, shell.engine_app.clock, hall.id, frozenset({"call", "queue"}))


async def manage_stream(request: web.Request) -> web.StreamResponse:
    shell = request.app[WEB]
    hall = shell.hall(request)
    shell.authorize(request, hall.id)
    kinds = frozenset({"call", "queue", "window", "alert", "device"})
    return await live.serve(request, shell.broadcaster, shell.engine_app.clock, hall.id, kinds)


async def supervise_stream(request: web.Request) -> web.StreamResponse:
    shell = request.app[WEB]
    shell.authorize(request, None)
    kinds = frozenset({"queue", "window", "alert", "device"})
    return await live.serve(request, shell.broadcaster, shell.engine_app.clock, None, kinds)


ROUTES = [
    web.get(f"{API}/openapi.json", openapi),
    web.get(f"{API}/vocabulary", vocabulary_tables),
    web.get(f"{API}/sites", sites),
    web.get(f"{API}/sites/{{site}}", site),
    web.get(f"{API}/sites/{{site}}/services", services),
    web.get(f"{API}/sites/{{site}}/services/{{service}}", service),
    web.get(f"{API}/sites/{{site}}/queue", queue),
    web.get(f"{API}/sites/{{site}}/board", board),
    web.post(f"{API}/sites/{{site}}/tickets", take_ticket),
    web.get(f"{API}/sites/{{site}}/tickets/{{ticket}}", ticket),
    web.get(f"{API}/sites/{{site}}/stream", stream),
    web.get(f"{API}/sites/{{site}}/summary", summary),
    web.get(f"{API}/sites/{{site}}/windows", windows),
    web.get(f"{API}/sites/{{site}}/alerts", site_alerts),
    web.post(f"{API}/sites/{{site}}/alerts/{{alert}}/acknowledge", acknowledge),
    web.get(f"{API}/sites/{{site}}/manage/stream", manage_stream),
    web.get(f"{API}/alerts", all_alerts),
    web.get(f"{API}/supervise", supervise),
    web.get(f"{API}/supervise/stream", supervise_stream),
]
