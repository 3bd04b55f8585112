"""The county supervision console and its JSON API, served by ``hallwatch county --http``.

It reuses the engine's web pieces: the shared script (``/static/hw.js``: the alert list),
the vocabulary (``/vocabulary.js``), the JSON errors, and the supervisor token
(HALLWATCH_SUPERVISOR_TOKEN, as a Bearer header or the cookie its login sets). Routes
(docs/api.md, "The county service"):

- ``GET /county``: the console (the login page without a token);
- ``GET /api/v1/county``: every hall live, today's alerts, the 空岗 rankings (today's as
  alerted; the latest day's from the halls' day figures), devices offline;
- ``GET /api/v1/county/alerts?site=&kind=&state=``: alerts, filtered;
- ``POST /api/v1/county/sites/{site}/alerts/{alert}/acknowledge``: acknowledge an alert at
  the engine that owns it (``{"note", "by", "id"}``): 200 once that engine has applied it,
  its refusal as the engine's console would give it (404 unknown_alert, 409
  already_acknowledged, 422 note_required), 202 while it has not answered (its link is down:
  the acknowledgement is sent again until answered);
- ``GET /api/v1/county/stream``: live updates (Server-Sent Events: alert, window, queue,
  device, link, acknowledgement, figures);
- ``GET /api/v1/openapi.json``: these routes' OpenAPI document (``openapi.py``);
- ``GET /healthz``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..core.alerts import AlertKind, AlertState
from ..web import live
from ..web.access import Access, forget, remember
from ..web.api import json_body
from ..web.app import hardened_app, serve
from ..web.context import TokenGate
from ..web.errors import ERROR_STATUS, ApiError, api_errors, dumps, json_response
from ..web.inputs import CountyAcknowledgement
from ..web.pages import STATIC_DIR, TEMPLATES_DIR, html_page, see_other, vocabulary_script
from ..web.server import HttpSettings
from .openapi import county_openapi_document

if TYPE_CHECKING:
    from .service import CountyService

HERE = Path(__file__).resolve().parent
API = "/api/v1/county"
TITLE = "全县电子监察"
PENDING_TEXT = "已发往乡镇，尚未答复（链路恢复后送达）"


class CountyBroadcaster:
    """Observer of the service's commits: forwards each change to the connected consoles."""

    def __init__(self) -> None:
        self.clients: set[live.Subscriber] = set()

    def add(self, client: live.Subscriber) -> None:
        self.clients.add(client)

    def discard(self, client: live.Subscriber) -> None:
        self.clients.discard(client)

    def __call__(self, pushes: list[tuple[str, dict]]) -> None:
        if not self.clients or not pushes:
            return
        frames = [(kind, live.sse_frame(kind, dumps(body))) for kind, body in pushes]
        for client in list(self.clients):
            for kind, frame in frames:
                if kind in client.kinds:
                    client.push(frame)


class CountyWeb(TokenGate):
    def __init__(self, service: CountyService, access: Access, settings: HttpSettings):
        super().__init__(access, settings)
        self.service = service
        self.broadcaster = CountyBroadcaster()
        self.page = (HERE / "templates" / "county.html").read_text(encoding="utf-8")
        self.login = (TEMPLATES_DIR / "login.html").read_text(encoding="utf-8")
        service.observers.append(self.broadcaster)


COUNTY_WEB = web.AppKey("county_web", CountyWeb)


def _shell(request: web.Request) -> CountyWeb:
    return request.app[COUNTY_WEB]


async def console(request: web.Request) -> web.Response:
    shell = _shell(request)
    token = request.query.get("token")
    if token is not None:
        return _login(request, token)
    try:
        shell.authorize(request, None)
    except ApiError as err:
        return _login_page(shell, err.status, "" if err.code == "missing_token" else err.message)
    return html_page(shell.page, site_name=TITLE)


def _login(request: web.Request, token: str) -> web.Response:
    shell = _shell(request)
    role = shell.login_role(request, token, None)
    if role is None:
        return _login_page(shell, 403, "访问令牌不正确")
    response = see_other("/county")
    remember(response, request, role, None, token, always_secure=shell.settings.cookie_secure)
    return response


def _login_page(shell: CountyWeb, status: int, error: str) -> web.Response:
    return html_page(
        shell.login, status=status, site="", site_name=TITLE, scope="supervise", error=error, heading="电子监察登录"
    )


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    return _login(request, str(form.get("token") or ""))


async def logout(request: web.Request) -> web.Response:
    response = see_other("/county")
    forget(response, request, [])
    return response


async def overview(request: web.Request) -> web.Response:
    shell = _shell(request)
    shell.authorize(request, None)
    county, now = shell.service.county, shell.service.clock.now()
    return json_response(
        {
            "now_ms": round(now * 1000),
            "sites": [county.overview(h, now) for h in county.halls.values()],
            "alerts": county.alerts(now),
            "ranking": county.ranking(now),
            "ranking_figures": county.figures_ranking(),
            "devices_offline": county.offline_devices(),
            "links": county.links,
        }
    )


def _choice(request: web.Request, name: str, allowed: set[str] | None) -> str | None:
    value = request.query.get(name)  # (given empty: not one of them)
    if value is not None and allowed is not None and value not in allowed:
        raise ApiError(400, "bad_parameter", f"{name} 须为 {'、'.join(sorted(allowed))} 之一", field=name)
    return value


async def alerts(request: web.Request) -> web.Response:
    shell = _shell(request)
    shell.authorize(request, None)
    county = shell.service.county
    site = request.query.get("site")
    if site is not None and site not in county.halls:  # (whatever its spelling, as a path's: 404)
        raise ApiError(404, "unknown_site", f"没有大厅 {site}（可选：{'、'.join(sorted(county.halls))}）", field="site")
    kind = _choice(request, "kind", {k.value for k in AlertKind})
    state = _choice(request, "state", {s.value for s in AlertState})
    return json_response({"alerts": county.alerts(shell.service.clock.now(), site=site, kind=kind, state=state)})


async def acknowledge(request: web.Request) -> web.Response:
    shell = _shell(request)
    shell.authorize(request, None)
    service = shell.service
    site, alert_id = request.match_info["site"], request.match_info["alert"]
    if site not in service.county.halls or not service.county.halls[site].heard:
        raise ApiError(404, "unknown_site", f"没有收到过大厅 {site} 的数据", field="site")
    asked = await json_body(request, CountyAcknowledgement)
    try:
        record = await service.acknowledge(site, alert_id, by=asked.by or "", note=asked.note or "", ack_id=asked.id)
    except KeyError:
        raise ApiError(404, "unknown_site", f"没有收到过大厅 {site} 的数据", field="site") from None
    answer = asdict(record)
    if record.state == "refused":
        error = record.error or "bad_request"
        raise ApiError(ERROR_STATUS.get(error, 400), error, record.message or error, acknowledgement=answer)
    if record.state == "sent":
        return json_response(
            {"acknowledgement": answer, "alert": None, "pending": True, "message": PENDING_TEXT},
            status=202,
        )
    hall = service.county.halls[site]
    current = hall.alerts.get(alert_id)
    shown = service.county.named(hall, current) if current and current["state"] != "firing" else None
    return json_response({"acknowledgement": answer, "alert": shown})


async def stream(request: web.Request) -> web.StreamResponse:
    shell = _shell(request)
    shell.authorize(request, None)
    kinds = frozenset({"alert", "window", "queue", "device", "link", "acknowledgement", "figures"})
    return await live.serve(request, shell.broadcaster, shell.service.clock, None, kinds)


async def openapi(request: web.Request) -> web.Response:
    return json_response(county_openapi_document())


async def healthz(request: web.Request) -> web.Response:
    ok, reason = _shell(request).service.healthy
    if ok:
        return json_response({"status": "ok"})
    return json_response({"status": "unhealthy", "reason": reason}, status=503)


async def home(request: web.Request) -> web.Response:
    return see_other("/county")


def build_app(
    service: CountyService, *, access: Access | None = None, settings: HttpSettings | None = None
) -> web.Application:
    """The county's web application, on the engine's hardened server (``web.app.hardened_app``:
    errors in JSON, the safe headers, a trusted proxy; the wrong-token throttle of
    ``TokenGate``); tokens from the environment unless ``access`` is given."""
    settings = settings or HttpSettings()
    app = hardened_app(settings)
    app.middlewares.append(api_errors)
    shell = CountyWeb(service, access or Access.from_environment([]), settings)
    app[COUNTY_WEB] = shell
    app.add_routes(
        [
            web.get("/", home),
            web.get("/county", console),
            web.post("/login", login),
            web.get("/logout", logout),
            web.get("/healthz", healthz),
            web.get("/api/v1/openapi.json", openapi),
            web.get(API, overview),
            web.get(f"{API}/alerts", alerts),
            web.get(f"{API}/stream", stream),
            web.post(f"{API}/sites/{{site}}/alerts/{{alert}}/acknowledge", acknowledge),
            web.get("/vocabulary.js", vocabulary_script),
            web.static("/county/static", HERE / "static"),
            web.static("/static", STATIC_DIR),
        ]
    )

    async def close_streams(_app: web.Application) -> None:
        for client in list(shell.broadcaster.clients):
            client.close()

    app.on_shutdown.append(close_streams)
    return app


async def start_http(
    service: CountyService, host: str, port: int, *, settings: HttpSettings | None = None
) -> web.AppRunner:
    """Serve the county console with the engine's connection handling (``web.app.serve``)."""
    return await serve(build_app(service, settings=settings), host, port)
