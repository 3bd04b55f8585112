"""The citizen's side on the phone, under ``/api/v1``: a slip followed by its token (the QR code
on every slip opens ``/t/{site}/{token}``: position, call, 好差评) and a window's poster
(``/w/{site}/{window}``: rate the visit just finished there). No login: the token names one
ticket and only the engine can make it (``tickettoken``).

A rating goes through the core as a ``Rating`` event (``EngineApp.submit_event``), the very
event a window's pad sends: one rating per visit whichever comes first, the same record, the
same bad_rating follow-up.
"""

from __future__ import annotations

import hmac
import uuid

from aiohttp import web

from ..core import events as ev
from ..core.hall import BAD_SCORES, Hall
from ..core.model import Ticket, TicketStatus
from ..tickettoken import entrance_key, verify_ticket_token
from . import live, views
from .api import API, json_body, mask_phone, refused, submit
from .context import WEB, Web
from .errors import ApiError, json_response
from .inputs import SLIP_TOKEN, TICKET, WINDOW, CheckIn, PhoneCodeRequest, SlipRating, WindowRating

PHONE = "phone"  # the ``device`` of the ratings given on a phone (the ratings table's channel)


def slip_ticket(shell: Web, request: web.Request, hall: Hall) -> Ticket:
    """The ticket the route's slip token names: 400 for a malformed token, 404 for one this
    engine did not make for this site or a ticket of another day (a slip is good for its day)."""
    token = request.match_info["token"]
    if not SLIP_TOKEN.accepts(token):
        raise ApiError(400, "bad_parameter", "凭条令牌格式不正确", field="token")
    secret = shell.engine_app.ingest.links.secret
    ref = verify_ticket_token(secret, hall.id, token) if secret is not None else None
    ticket = hall.tickets.get(ref.no) if ref is not None and ref.day == hall.day else None
    if ticket is None:
        raise ApiError(404, "unknown_ticket", "没有找到这张凭条：凭条只在取号当天有效")
    return ticket


def _window(hall: Hall, request: web.Request) -> str:
    window = request.match_info["window"]
    if not WINDOW.accepts(window) or window not in hall.windows:
        raise ApiError(404, "unknown_window", f"没有这个窗口：{window}", window=window)
    return window


def _check_reasons(asked: SlipRating | WindowRating) -> None:
    if asked.reasons and int(asked.score) not in BAD_SCORES:
        raise ApiError(422, "reasons_not_allowed", "只有“不满意”“非常不满意”可以选择原因", field="reasons")


async def _rate(shell: Web, hall: Hall, window: str, number: str | None, asked: SlipRating | WindowRating) -> dict:
    """Hand the rating to the core and answer with what it recorded (201), or its refusal."""
    done = await submit(
        shell,
        ev.Rating(  # type: ignore[call-arg]  # (events._event: mypy does not see the fields)
            site=hall.id,
            device=PHONE,
            id=f"{PHONE}-{uuid.uuid4().hex}",
            window=window,
            score=int(asked.score),
            ticket=number,
            reasons=tuple(dict.fromkeys(asked.reasons)),
            comment=asked.comment.strip(),
        ),
    )
    reply = done.result
    if reply is None or not reply.ok:
        raise refused(reply)
    ticket = hall.tickets[reply.ticket]
    return {
        "rating": {
            "site": hall.id,
            "ticket": ticket.no,
            "window": window,
            "window_name": hall.window_name(window),
            "staff_name": hall.staff_name(ticket.staff),
            "score": int(asked.score),
            "reasons": [r.value for r in dict.fromkeys(asked.reasons)],
        }
    }


# -- a slip -------------------------------------------------------------------------------------------
async def get_slip(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    ticket = slip_ticket(shell, request, hall)
    return json_response(views.slip(hall, ticket.no))


async def slip_stream(request: web.Request) -> web.StreamResponse:
    """The slip's ticket, live: its view first, then again whenever it changes."""
    shell = request.app[WEB]
    hall = shell.hall(request)
    ticket = slip_ticket(shell, request, hall)
    client = live.Subscriber(hall.id, live.SLIP_EVENTS, ticket=ticket.no)
    client.push_slip(hall)
    clock = shell.engine_app.clock
    return await live.serve(request, shell.broadcaster, clock, hall.id, live.SLIP_EVENTS, client=client)


async def rate_slip(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    ticket = slip_ticket(shell, request, hall)
    asked = await json_body(request, SlipRating)
    _check_reasons(asked)
    if ticket.status is not TicketStatus.DONE or ticket.window is None:
        raise ApiError(409, "not_finished", "这次办事还没有办结，办结后才能评价", ticket=ticket.no)
    return json_response(await _rate(shell, hall, ticket.window, ticket.no, asked), status=201)


async def check_in(request: web.Request) -> web.Response:
    """The phone scanned the hall entrance's code: its reserved ticket is checked in, through the
    core, with its own check-in code (as if typed at a kiosk)."""
    shell = request.app[WEB]
    hall = shell.hall(request)
    ticket = slip_ticket(shell, request, hall)
    asked = await json_body(request, CheckIn)
    secret = shell.engine_app.ingest.links.secret
    if secret is None or not hmac.compare_digest(asked.key, entrance_key(secret, hall.id)):
        raise ApiError(403, "bad_check_in_key", "签到二维码不正确：请扫描本大厅入口的签到二维码")
    if ticket.status is not TicketStatus.RESERVED or ticket.check_in_code is None:
        raise ApiError(409, "not_reserved", "这个号不需要签到，或已经签到", ticket=ticket.no)
    done = await submit(
        shell,
        ev.TicketCheckIn(  # type: ignore[call-arg]  # (events._event, as above)
            site=hall.id, device=PHONE, id=f"{PHONE}-{uuid.uuid4().hex}", code=ticket.check_in_code
        ),
    )
    reply = done.result
    if reply is None or not reply.ok:
        raise refused(reply)
    return json_response(views.slip(hall, ticket.no))


async def phone_code(request: web.Request) -> web.Response:
    """Send an SMS code (the optional ``PhoneVerifier``), under the same per-address limit as
    taking a number: a code sent is an SMS paid for, and a phone bothered."""
    shell = request.app[WEB]
    hall = shell.hall(request)
    asked = await json_body(request, PhoneCodeRequest)
    verifier = shell.phone_verifier
    if verifier is None:
        raise ApiError(403, "phone_verification_off", "本中心未启用短信验证，取号无需验证码")
    address = request.remote or "unknown"
    now = shell.now
    shell.limits.within_codes(hall, address, now, shell.engine_app.clock.speed)
    try:
        await verifier.send_code(hall.id, asked.phone)
    except Exception as err:  # the gateway's failure: the citizen can try again
        raise ApiError(503, "engine_unavailable", "短信发送失败，请稍后再试", detail=str(err)[:200]) from None
    shell.limits.code_sent(address, now)
    return json_response({"sent": True, "phone": mask_phone(asked.phone)}, status=202)


# -- a window's poster --------------------------------------------------------------------------------
async def window_visit(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    return json_response(views.window_visit(hall, _window(hall, request), shell.now))


async def rate_window(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    window = _window(hall, request)
    asked = await json_body(request, WindowRating)
    _check_reasons(asked)
    if asked.ticket is not None:
        number = asked.ticket.upper()
        if not TICKET.accepts(number):  # (the body's pattern says the same)
            raise ApiError(400, "bad_field", "号码格式不正确，例如 A012", field="ticket")
    else:
        visit = views.just_finished(hall, window, shell.now)
        if visit is None:
            raise ApiError(409, "nothing_to_rate", "该窗口没有刚办结的办事，请输入凭条上的号码", window=window)
        number = visit.no
    return json_response(await _rate(shell, hall, window, number, asked), status=201)


ROUTES = [
    web.post(f"{API}/sites/{{site}}/phone-codes", phone_code),
    web.get(f"{API}/sites/{{site}}/slips/{{token}}", get_slip),
    web.post(f"{API}/sites/{{site}}/slips/{{token}}/check-in", check_in),
    web.get(f"{API}/sites/{{site}}/slips/{{token}}/stream", slip_stream),
    web.post(f"{API}/sites/{{site}}/slips/{{token}}/rating", rate_slip),
    web.get(f"{API}/sites/{{site}}/windows/{{window}}/visit", window_visit),
    web.post(f"{API}/sites/{{site}}/windows/{{window}}/rating", rate_window),
]
