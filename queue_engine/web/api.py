"""The JSON API under ``/api/v1`` (``docs/api.md``, ``openapi.py``): the public catalogue,
queue, board and tickets (a number taken from a phone), the manager's and the supervision
office's reads and actions, and their live streams.

Reads come from the core's current state (``views``); actions go through
``EngineApp.submit_event`` (the same core, store and outputs as a device's event) and are
answered after the commit.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from aiohttp import web

from ..core import events as ev
from ..core import vocabulary
from ..core.commands import AlertChanged
from ..core.model import TicketStatus
from ..privacy import citizen_key, phone_tail
from . import live, views
from .context import WEB, Web
from .errors import ERROR_STATUS, ApiError, json_response
from .inputs import ALERT_STATE, MAX_BODY, TICKET, Acknowledgement, B, PhoneTicketRequest, decode_body
from .openapi import openapi_document

if TYPE_CHECKING:
    from ..core.hall import Hall

API = "/api/v1"
SUBMIT_TIMEOUT_S = 10.0


# -- request helpers ----------------------------------------------------------------------------------
async def json_body(request: web.Request, body: type[B]) -> B:
    """The request's JSON body as ``body`` (``inputs``), or the refusal naming what is wrong."""
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
    return decode_body(raw, body)


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
    return ApiError(ERROR_STATUS.get(reply.error, 400), reply.error, reply.message or reply.error)


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
    number = request.match_info["ticket"]
    if not TICKET.accepts(number):
        raise ApiError(400, "bad_ticket_number", "号码格式不正确，例如 A012", ticket=number)
    number = number.upper()
    found = views.position(hall, number)
    if found is None:
        raise ApiError(404, "unknown_ticket", f"今天没有这个号：{number}", ticket=number)
    return json_response(found)


async def take_ticket(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    asked = await json_body(request, PhoneTicketRequest)
    code, phone = asked.service, asked.phone
    if hall.site.service(code) is None:
        raise ApiError(404, "unknown_service", f"没有这项业务：{code}", service=code)
    if shell.citizen_secret is None:  # a phone number is kept only as a keyed hash: no key, no phone tickets
        raise ApiError(403, "phone_tickets_disabled", "本中心未配置凭条密钥，暂不能用手机取号，请到大厅取号机取号")
    verifier = shell.phone_verifier
    if verifier is not None and (asked.code is None or not await verifier.check_code(hall.id, phone, asked.code)):
        raise ApiError(403, "phone_unverified", "短信验证码不正确或已失效，请重新获取")
    key = citizen_key(shell.citizen_secret, phone)
    address = request.remote or "unknown"
    now = shell.now
    # (checked and reserved with no await between: concurrent requests cannot all pass the check)
    shell.limits.check(hall, key, address, now, shell.engine_app.clock.speed)
    shell.limits.reserve(hall.id, key, address)
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
                phone=key,
                phone_tail=phone_tail(phone),
                priority=asked.priority,
            ),
        )
        reply = done.result
        if reply is None or not reply.ok:
            raise refused(reply)
        slip = reply.ticket
        issued_at = slip.issued_at
    finally:
        shell.limits.release(hall.id, key, address, issued_at)
    location = f"{API}/sites/{hall.id}/tickets/{slip.no}"
    token, url = shell.engine_app.ingest.links.link(hall.id, slip.day, slip.no)
    # (as committed; checked in or gone meanwhile, it is no longer reserved)
    ticket = hall.tickets.get(slip.no)
    check_in = ticket.check_in_code if ticket is not None and ticket.status is TicketStatus.RESERVED else None
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
                "status": "reserved" if check_in else "waiting",
                "check_in_code": check_in,
                "token": token,
                "url": url,
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
    state = request.query.get(ALERT_STATE.name, ALERT_STATE.default or "")
    if not ALERT_STATE.accepts(state):
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
    asked = await json_body(request, Acknowledgement)
    note = asked.note or ""
    by = (asked.by or "").strip()
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
    return await live.serve(request, shell.broadcaster, shell.engine_app.clock, hall.id, live.BOARD_EVENTS)


async def manage_stream(request: web.Request) -> web.StreamResponse:
    shell = request.app[WEB]
    hall = shell.hall(request)
    shell.authorize(request, hall.id)
    return await live.serve(request, shell.broadcaster, shell.engine_app.clock, hall.id, live.MANAGE_EVENTS)


async def supervise_stream(request: web.Request) -> web.StreamResponse:
    shell = request.app[WEB]
    shell.authorize(request, None)
    return await live.serve(request, shell.broadcaster, shell.engine_app.clock, None, live.SUPERVISE_EVENTS)


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
