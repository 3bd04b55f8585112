"""The live web: the hall's TV board, the manager console, the supervision console, the
phone page and the JSON API under ``/api/v1`` (``docs/api.md``), added to the engine's HTTP
application by ``add_web(app, engine_app)``.

Thin like every shell: reads come from the core's current state (``webviews``); actions go
through ``EngineApp.submit_event`` (the same core, store and outputs as a device's event) and
are answered after the commit. Live updates are Server-Sent Events fed by ``Broadcaster``,
an observer of each committed batch that forwards the very payloads published over MQTT
(calls, window and queue states, alerts) and costs one check when nobody is connected.

Access: the board, the catalogue and ticket lookup are public; a site's manager token opens
its console and actions, the supervisor token every site's. A token is presented as
``Authorization: Bearer <token>``, or as the cookie a page sets after ``?token=`` or its login
form. Tokens come from the environment (names in ``[web]`` of the site configuration) and are
compared in constant time. Every error is JSON: ``{"error": code, "message": text, "status": n}``.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import math
import os
import re
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..core import events as ev
from ..core.commands import AlertChanged, DeviceChanged
from . import webviews as views
from .openapi import openapi_document
from .storefile import StoreRefused

if TYPE_CHECKING:
    from ..app import EngineApp
    from ..core.hall import Hall

log = logging.getLogger("hallwatch.web")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
SUPERVISOR_TOKEN_ENV = "HALLWATCH_SUPERVISOR_TOKEN"
SUBMIT_TIMEOUT_S = 10.0
MAX_BODY = 4096
SSE_PING_S = 15.0
SSE_MAX_BACKLOG = 2000  # frames queued for one slow client before it is dropped (it reconnects)
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")  # a mainland mobile number
TICKET_RE = re.compile(r"^[A-Z]{1,2}\d{1,6}$")
COOKIE_SUPERVISE = "hw_supervise"

WEB = web.AppKey("web", object)  # the Web instance


def manage_cookie(site: str) -> str:
    return f"hw_manage_{site}"


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def json_response(body, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=dumps)


class ApiError(Exception):
    """An answer other than success: becomes ``{"error", "message", "status", ...}``."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None, **extra):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra

    def response(self) -> web.Response:
        return json_response(
            {"error": self.code, "message": self.message, "status": self.status, **self.extra},
            status=self.status,
            headers=self.headers,
        )


@web.middleware
async def api_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as err:
        return err.response()
    except StoreRefused as err:  # the store file was replaced by one the engine would not open
        log.error("%s %s: %s", request.method, request.path, err)
        return ApiError(503, "store_refused", "存储文件不可用，请联系系统管理员", detail=str(err)).response()
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json" or not request.path.startswith("/api/v1/"):
            raise  # the HTTP shell's own middleware answers JSON for the rest
        # No such route (404) or method (405) in the API: JSON that names the problem, in Chinese too.
        code = exc.reason.lower().replace(" ", "_")
        message = {404: f"没有这个地址：{request.path}", 405: f"{request.path} 不支持 {request.method} 方法"}.get(
            exc.status, exc.reason
        )
        headers = {k: v for k, v in exc.headers.items() if k == "Allow"}
        return ApiError(exc.status, code, message, headers=headers, path=request.path).response()
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return ApiError(500, "internal_error", "服务器内部错误，请稍后再试").response()


# -- access ---------------------------------------------------------------------------------------
class Access:
    """The tokens: one per site for its manager, one for the supervision office."""

    def __init__(self, supervisor: str | None, managers: Mapping[str, str | None]):
        self.supervisor = supervisor or None
        self.managers = {site: token or None for site, token in managers.items()}

    @classmethod
    def from_environment(cls, sites, environ: Mapping[str, str] | None = None) -> Access:
        environ = os.environ if environ is None else environ
        return cls(environ.get(SUPERVISOR_TOKEN_ENV), {s.id: environ.get(s.web.token_env(s.id)) for s in sites})

    @staticmethod
    def _equal(presented: str, expected: str | None) -> bool:
        return expected is not None and hmac.compare_digest(presented.encode(), expected.encode())

    def role_for(self, token: str, site: str | None) -> str | None:
        """ "supervisor", "manager" (of ``site``) or None."""
        if self._equal(token, self.supervisor):
            return "supervisor"
        if site is not None and self._equal(token, self.managers.get(site)):
            return "manager"
        return None

    def check(self, request: web.Request, site: str | None) -> str:
        """The role the request's token gives for ``site`` (None: the supervision office);
        raises 401 without a token, 403 with a wrong one or when no token is configured."""
        configured = self.supervisor is not None or (site is not None and self.managers.get(site) is not None)
        if not configured:
            env = SUPERVISOR_TOKEN_ENV if site is None else f"{SUPERVISOR_TOKEN_ENV} 或站点的管理令牌"
            raise ApiError(403, "access_not_configured", f"未配置访问令牌（{env}），拒绝访问")
        presented = presented_tokens(request, site)
        if not presented:
            raise ApiError(
                401,
                "missing_token",
                "需要访问令牌（Authorization: Bearer …）",
                headers={"WWW-Authenticate": 'Bearer realm="hallwatch"'},
            )
        for token in presented:
            role = self.role_for(token, site)
            if role is not None:
                return role
        raise ApiError(403, "bad_token", "访问令牌不正确或无权访问" + ("本站点" if site else "监察台"))


def presented_tokens(request: web.Request, site: str | None) -> list[str]:
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        return [token.strip()] if scheme.lower() == "bearer" and token.strip() else ["\x00invalid"]
    names = [COOKIE_SUPERVISE] + ([manage_cookie(site)] if site is not None else [])
    return [request.cookies[n] for n in names if request.cookies.get(n)]


# -- live updates -----------------------------------------------------------------------------------
class Subscriber:
    __slots__ = ("site", "kinds", "frames", "wake", "closed", "overflow")

    def __init__(self, site: str | None, kinds: frozenset[str]):
        self.site = site
        self.kinds = kinds
        self.frames: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.closed = False
        self.overflow = False

    def push(self, frame: bytes) -> None:
        if len(self.frames) >= SSE_MAX_BACKLOG:
            self.overflow = True
        else:
            self.frames.append(frame)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()


def sse_frame(kind: str, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


# What the pages follow live, by the kind of the published message (ingest.Outbound.kind).
LIVE_KINDS = frozenset({"call", "window", "queue", "alert"})


class Broadcaster:
    """Observer of committed batches (``EngineApp.observers``): pushes what the batch
    published (calls, window states, queue states, alerts) and device changes to the
    connected pages. With nobody connected it returns at once."""

    def __init__(self, engine_app: EngineApp):
        self.engine_app = engine_app
        self.clients: set[Subscriber] = set()

    def add(self, client: Subscriber) -> None:
        self.clients.add(client)

    def discard(self, client: Subscriber) -> None:
        self.clients.discard(client)

    def close_all(self) -> None:
        for client in list(self.clients):
            client.close()

    def __call__(self, batch, messages) -> None:
        if not self.clients:
            return
        try:
            self._fan_out(batch, messages)
        except Exception:  # a page must never break the engine's commit path
            log.exception("web: live update failed")

    def _fan_out(self, batch, messages) -> None:
        events: list[tuple[str, str, bytes]] = []
        for message in messages:
            if message.kind not in LIVE_KINDS:
                continue
            site, kind = message.site, message.kind
            payload = message.payload
            if kind != "alert" and payload[:1] == b"{":  # name the site, as the alert does
                payload = b'{"site":' + json.dumps(site).encode() + b"," + payload[1:]
            events.append((site, kind, sse_frame(kind, payload)))
        if any("device" in c.kinds for c in self.clients):
            engine = self.engine_app.engine
            for item in batch:
                for command in item.commands:
                    if type(command) is DeviceChanged:
                        hall = engine.halls.get(command.site)
                        live = hall.supervisor.devices.get(command.device) if hall else None
                        body = {
                            "site": command.site,
                            "device": command.device,
                            "online": command.online,
                            "reason": command.reason,
                            "at": views.iso(command.at, hall) if hall else None,
                            "kind": live.kind if live else None,
                            "window": live.window if live else None,
                        }
                        events.append((command.site, "device", sse_frame("device", dumps(body))))
        if not events:
            return
        for client in list(self.clients):
            for site, kind, frame in events:
                if kind in client.kinds and (client.site is None or client.site == site):
                    client.push(frame)


# -- phone tickets ----------------------------------------------------------------------------------
class PhoneLimits:
    """Tickets per phone per day (counted from today's tickets, so a restart forgets nothing)
    and per client address per hour (in memory), counting requests still in flight."""

    def __init__(self):
        self.in_flight_phone: Counter[tuple[str, str]] = Counter()
        self.in_flight_address: Counter[str] = Counter()
        self.by_address: dict[str, deque[float]] = {}

    def check(self, hall: Hall, phone: str, address: str, now: float, speed: float) -> None:
        rules = hall.site.web
        if rules.phone_tickets_per_day == 0:
            raise ApiError(403, "phone_tickets_disabled", "本中心未开通手机取号")
        today = hall.local(now).date().isoformat()  # the day may roll with this very request
        used = sum(1 for t in hall.tickets.values() if t.phone == phone and t.day == today)
        used += self.in_flight_phone[(hall.id, phone)]
        if used >= rules.phone_tickets_per_day:
            raise ApiError(
                429,
                "phone_limit",
                f"该手机号今天已取号 {used} 次，已达每日 {rules.phone_tickets_per_day} 次上限",
                limit=rules.phone_tickets_per_day,
            )
        recent = self._recent(address, now)
        if len(recent) + self.in_flight_address[address] >= rules.address_tickets_per_hour:
            wait_s = (recent[0] + 3600 - now) / speed if recent else 60.0
            raise ApiError(
                429,
                "address_limit",
                f"同一网络地址每小时最多取号 {rules.address_tickets_per_hour} 次，请稍后再试",
                limit=rules.address_tickets_per_hour,
                headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
            )

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self.by_address.get(address)
        if times is None:
            if len(self.by_address) > 100_000:  # forget addresses idle for an hour
                for key in [k for k, v in self.by_address.items() if not v or v[-1] < now - 3600]:
                    del self.by_address[key]
            times = self.by_address[address] = deque()
        while times and times[0] <= now - 3600:
            times.popleft()
        return times

    def reserve(self, site: str, phone: str, address: str) -> None:
        self.in_flight_phone[(site, phone)] += 1
        self.in_flight_address[address] += 1

    def release(self, site: str, phone: str, address: str, issued_at: float | None) -> None:
        for counter, key in ((self.in_flight_phone, (site, phone)), (self.in_flight_address, address)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
        if issued_at is not None:
            self._recent(address, issued_at).append(issued_at)


# -- request helpers ----------------------------------------------------------------------------------
async def json_body(request: web.Request) -> dict:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "请求体须为 JSON（Content-Type: application/json）")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "body_too_large", f"请求体不能超过 {MAX_BODY} 字节")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"请求体不能超过 {MAX_BODY} 字节")
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "bad_json", f"请求体不是有效的 JSON：{exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "请求体须为 JSON 对象")
    return body


def text_field(body: dict, name: str, *, required: bool, max_length: int = 64) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"缺少字段 {name}", field=name)
        return None
    if not isinstance(value, str) or len(value) > max_length or (required and not value.strip()):
        raise ApiError(400, "bad_field", f"字段 {name} 须为不超过 {max_length} 个字符的文本", field=name)
    return value


def see_other(path: str) -> web.Response:
    return web.Response(status=303, headers={"Location": path, "Cache-Control": "no-store"})


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


# Core refusal codes -> HTTP status.
REFUSAL_STATUS = {
    "unknown_service": 404,
    "unknown_alert": 404,
    "unknown_ticket": 404,
    "service_closed": 409,
    "already_acknowledged": 409,
    "note_required": 422,
}


class Web:
    def __init__(self, engine_app: EngineApp, access: Access):
        self.engine_app = engine_app
        self.access = access
        self.broadcaster = Broadcaster(engine_app)
        self.limits = PhoneLimits()
        self._pages = {
            name: (WEB_DIR / f"{name}.html").read_text(encoding="utf-8")
            for name in ("index", "board", "manage", "supervise", "login", "take")
        }

    # -- common -----------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.engine_app.clock.now()

    def hall(self, request: web.Request) -> Hall:
        site = request.match_info["site"]
        hall = self.engine_app.engine.halls.get(site)
        if hall is None:
            raise ApiError(404, "unknown_site", f"没有这个站点：{site}", site=site)
        return hall

    async def submit(self, event: ev.Event):
        if self.engine_app._loop is None:
            raise ApiError(503, "engine_unavailable", "引擎尚未启动")
        try:
            return await asyncio.wait_for(self.engine_app.submit_event(event), SUBMIT_TIMEOUT_S)
        except TimeoutError:
            raise ApiError(503, "engine_unavailable", "引擎繁忙或存储不可写，结果未知，请稍后查询") from None

    @staticmethod
    def refused(reply) -> ApiError:
        if reply is None:  # every event the web submits is answered; this would be a bug
            return ApiError(500, "internal_error", "引擎没有答复")
        return ApiError(REFUSAL_STATUS.get(reply.error, 400), reply.error, reply.message or reply.error)

    # -- public API ----------------------------------------------------------------------------------
    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(openapi_document())

    async def sites(self, request: web.Request) -> web.Response:
        now = self.now
        return json_response(
            {
                "sites": [
                    {k: v for k, v in views.site_info(h, now).items() if k != "windows"}
                    for h in self.engine_app.engine.halls.values()
                ]
            }
        )

    async def site(self, request: web.Request) -> web.Response:
        return json_response(views.site_info(self.hall(request), self.now))

    async def services(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        return json_response({"site": hall.id, "services": views.catalogue(hall)})

    async def service(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        code = request.match_info["service"]
        if hall.site.service(code) is None:
            raise ApiError(404, "unknown_service", f"没有这项业务：{code}", service=code)
        return json_response(views.service_entry(hall, code))

    async def queue(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        return json_response({"site": hall.id, **views.queue_state(hall, self.now)})

    async def board(self, request: web.Request) -> web.Response:
        return json_response(views.board(self.hall(request), self.now))

    async def ticket(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        number = request.match_info["ticket"].upper()
        if not TICKET_RE.match(number):
            raise ApiError(400, "bad_ticket_number", "号码格式不正确，例如 A012", ticket=number)
        found = views.position(hall, number)
        if found is None:
            raise ApiError(404, "unknown_ticket", f"今天没有这个号：{number}", ticket=number)
        return json_response(found)

    async def take_ticket(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
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
        now = self.now
        self.limits.check(hall, phone, address, now, self.engine_app.clock.speed)
        self.limits.reserve(hall.id, phone, address)
        issued_at = None
        try:
            done = await self.submit(
                ev.TicketRequest(
                    site=hall.id,
                    device="web",
                    id=f"web-{uuid.uuid4().hex}",
                    service=code,
                    phone=phone,
                    priority=ev.Priority(priority) if priority else None,
                )
            )
            reply = done.result
            if reply is None or not reply.ok:
                raise self.refused(reply)
            slip = reply.ticket
            issued_at = slip.issued_at
        finally:
            self.limits.release(hall.id, phone, address, issued_at)
        location = f"/api/v1/sites/{hall.id}/tickets/{slip.no}"
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

    # -- manager ----------------------------------------------------------------------------------------
    async def summary(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        role = self.access.check(request, hall.id)
        return json_response({**views.manager_summary(hall, self.now), "role": role})

    async def windows(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        self.access.check(request, hall.id)
        return json_response({"site": hall.id, "windows": views.windows(hall, self.now)})

    async def site_alerts(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        self.access.check(request, hall.id)
        return json_response({"site": hall.id, "alerts": await self._alerts([hall], request)})

    async def _alerts(self, halls: list[Hall], request: web.Request) -> list[dict]:
        state = request.query.get("state", "open")
        if state not in ("open", "all"):
            raise ApiError(400, "bad_parameter", "state 须为 open 或 all", field="state")
        alerts = [a for hall in halls for a in views.open_alerts(hall)]
        if state == "all":
            since = views.since_midnight(halls, self.now)
            alerts += await asyncio.to_thread(views.resolved_alerts, self.engine_app.db_path, halls, since)
        return sorted(
            alerts, key=lambda a: max(x for x in (a["since"], a["acknowledged_at"], a["until"]) if x), reverse=True
        )

    async def acknowledge(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        role = self.access.check(request, hall.id)
        body = await json_body(request)
        note = text_field(body, "note", required=False, max_length=500) or ""
        by = (text_field(body, "by", required=False, max_length=32) or "").strip()
        alert_id = request.match_info["alert"]
        operator = f"{role}:{by}" if by else role
        done = await self.submit(
            ev.Acknowledge(
                site=hall.id, device=operator, id=f"web-ack-{uuid.uuid4().hex}", alert=alert_id, note=note.strip()
            )
        )
        reply = done.result
        if reply is None or not reply.ok:
            raise self.refused(reply)
        changed = [c.alert for c in done.commands if isinstance(c, AlertChanged) and c.alert.id == alert_id]
        return json_response({"alert": views.alert(hall, changed[-1]) if changed else None})

    # -- supervision -------------------------------------------------------------------------------------
    async def all_alerts(self, request: web.Request) -> web.Response:
        self.access.check(request, None)
        return json_response({"alerts": await self._alerts(list(self.engine_app.engine.halls.values()), request)})

    async def supervise(self, request: web.Request) -> web.Response:
        self.access.check(request, None)
        now = self.now
        halls = list(self.engine_app.engine.halls.values())
        since = views.since_midnight(halls, now)
        resolved = await asyncio.to_thread(views.resolved_alerts, self.engine_app.db_path, halls, since)
        alerts = [a for hall in halls for a in views.open_alerts(hall)] + resolved
        alerts.sort(key=lambda a: max(x for x in (a["since"], a["acknowledged_at"], a["until"]) if x), reverse=True)
        return json_response(
            {
                "now_ms": round(now * 1000),
                "sites": [views.site_overview(h, now) for h in halls],
                "alerts": alerts,
                "ranking": views.ranking(halls, now),
                "devices_offline": [d for h in halls for d in views.offline_devices(h)],
            }
        )

    # -- live ---------------------------------------------------------------------------------------------
    async def stream(self, request: web.Request) -> web.StreamResponse:
        hall = self.hall(request)
        return await self._stream(request, hall.id, frozenset({"call", "queue"}))

    async def manage_stream(self, request: web.Request) -> web.StreamResponse:
        hall = self.hall(request)
        self.access.check(request, hall.id)
        return await self._stream(request, hall.id, frozenset({"call", "queue", "window", "alert", "device"}))

    async def supervise_stream(self, request: web.Request) -> web.StreamResponse:
        self.access.check(request, None)
        return await self._stream(request, None, frozenset({"queue", "window", "alert", "device"}))

    async def _stream(self, request: web.Request, site: str | None, kinds: frozenset[str]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        client = Subscriber(site, kinds)
        self.broadcaster.add(client)
        clock = self.engine_app.clock
        try:
            hello = {"now_ms": round(clock.now() * 1000), "speed": clock.speed, "site": site}
            await response.write(b"retry: 2000\n\n" + sse_frame("hello", dumps(hello)))
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            while not client.closed:
                try:
                    await asyncio.wait_for(client.wake.wait(), 1.0)
                except TimeoutError:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break  # the page went away
                    if loop.time() - quiet_since >= SSE_PING_S:
                        await response.write(b": ping\n\n")
                        quiet_since = loop.time()
                    continue
                quiet_since = loop.time()
                client.wake.clear()
                if client.overflow:
                    break  # too slow: drop it; it reconnects and reloads
                if client.frames:
                    frames = b"".join(client.frames)
                    client.frames.clear()
                    await response.write(frames)
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.broadcaster.discard(client)
        return response

    async def on_shutdown(self, app: web.Application) -> None:
        self.broadcaster.close_all()

    # -- pages --------------------------------------------------------------------------------------------
    def page(self, name: str, *, status: int = 200, **values: str) -> web.Response:
        text = self._pages[name]
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", html.escape(value))
        return web.Response(
            text=text,
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                "frame-ancestors 'none'",
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def index_page(self, request: web.Request) -> web.Response:
        return self.page("index")

    async def board_page(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        return self.page("board", site=hall.id, site_name=hall.site.name)

    async def take_page(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        return self.page("take", site=hall.id, site_name=hall.site.name)

    async def manage_page(self, request: web.Request) -> web.Response:
        hall = self.hall(request)
        return self._guarded_page(request, "manage", hall.id, hall.site.name, f"/manage/{hall.id}")

    async def supervise_page(self, request: web.Request) -> web.Response:
        return self._guarded_page(request, "supervise", None, "电子监察", "/supervise")

    def _guarded_page(self, request: web.Request, name: str, site: str | None, title: str, path: str) -> web.Response:
        token = request.query.get("token")
        if token is not None:  # from a link: check it, keep it in a cookie, drop it from the address
            return self._login(request, token, site, path, title)
        try:
            self.access.check(request, site)
        except ApiError as err:
            return self._login_page(site, title, path, err.status, "" if err.code == "missing_token" else err.message)
        return self.page(name, site=site or "", site_name=title)

    def _login(self, request: web.Request, token: str, site: str | None, path: str, title: str) -> web.Response:
        role = self.access.role_for(token, site)
        if role is None:
            return self._login_page(site, title, path, 403, "访问令牌不正确")
        response = see_other(path)
        response.set_cookie(
            COOKIE_SUPERVISE if role == "supervisor" else manage_cookie(site),
            token,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            max_age=30 * 86400,
        )
        return response

    def _login_page(self, site: str | None, title: str, path: str, status: int, error: str) -> web.Response:
        scope = "manage" if site else "supervise"
        return self.page(
            "login",
            status=status,
            site=site or "",
            site_name=title,
            scope=scope,
            error=error,
            heading="管理控制台登录" if site else "电子监察登录",
            next=path,
        )

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        scope, site, token = form.get("scope"), form.get("site") or None, form.get("token") or ""
        if scope == "manage":
            if site not in self.engine_app.engine.halls:
                raise ApiError(404, "unknown_site", f"没有这个站点：{site}")
            hall = self.engine_app.engine.halls[site]
            return self._login(request, str(token), site, f"/manage/{site}", hall.site.name)
        if scope == "supervise":
            return self._login(request, str(token), None, "/supervise", "电子监察")
        raise ApiError(400, "bad_field", "scope 须为 manage 或 supervise", field="scope")

    async def logout(self, request: web.Request) -> web.Response:
        response = see_other("/")
        for name in [COOKIE_SUPERVISE] + [manage_cookie(s) for s in self.engine_app.engine.halls]:
            if name in request.cookies:
                response.del_cookie(name, path="/")
        return response

    # -- routes -------------------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        api = "/api/v1"
        return [
            web.get(f"{api}/openapi.json", self.openapi),
            web.get(f"{api}/sites", self.sites),
            web.get(f"{api}/sites/{{site}}", self.site),
            web.get(f"{api}/sites/{{site}}/services", self.services),
            web.get(f"{api}/sites/{{site}}/services/{{service}}", self.service),
            web.get(f"{api}/sites/{{site}}/queue", self.queue),
            web.get(f"{api}/sites/{{site}}/board", self.board),
            web.post(f"{api}/sites/{{site}}/tickets", self.take_ticket),
            web.get(f"{api}/sites/{{site}}/tickets/{{ticket}}", self.ticket),
            web.get(f"{api}/sites/{{site}}/stream", self.stream),
            web.get(f"{api}/sites/{{site}}/summary", self.summary),
            web.get(f"{api}/sites/{{site}}/windows", self.windows),
            web.get(f"{api}/sites/{{site}}/alerts", self.site_alerts),
            web.post(f"{api}/sites/{{site}}/alerts/{{alert}}/acknowledge", self.acknowledge),
            web.get(f"{api}/sites/{{site}}/manage/stream", self.manage_stream),
            web.get(f"{api}/alerts", self.all_alerts),
            web.get(f"{api}/supervise", self.supervise),
            web.get(f"{api}/supervise/stream", self.supervise_stream),
            web.get("/", self.index_page),
            web.get("/board/{site}", self.board_page),
            web.get("/take/{site}", self.take_page),
            web.get("/manage/{site}", self.manage_page),
            web.get("/supervise", self.supervise_page),
            web.post("/login", self.login),
            web.get("/logout", self.logout),
            web.static("/static", WEB_DIR / "static"),
        ]


def add_web(app: web.Application, engine_app: EngineApp, *, access: Access | None = None) -> Web:
    """Add the pages, the API and the live updates to the engine's application. Tokens are
    read from the environment now (at start-up) unless ``access`` is given."""
    site_web = Web(engine_app, access or Access.from_environment(engine_app.sites))
    app[WEB] = site_web
    app.middlewares.append(api_errors)
    app.add_routes(site_web.routes())
    app.on_shutdown.append(site_web.on_shutdown)
    engine_app.observers.append(site_web.broadcaster)
    if site_web.access.supervisor is None:
        log.warning("web: %s is not set: the supervision console is closed", SUPERVISOR_TOKEN_ENV)
    for site in engine_app.sites:
        if site_web.access.managers.get(site.id) is None:
            log.info(
                "web: %s is not set: site %s's console opens with the supervisor token only",
                site.web.token_env(site.id),
                site.id,
            )
    return site_web
