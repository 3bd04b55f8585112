"""The engine's aiohttp application, served on the engine's event loop.

``build_app(engine_app)`` returns the ``aiohttp.web.Application`` that serves ``/metrics``
(Prometheus text format, from ``shells.metrics``), ``/healthz``, and, added by ``add_web``,
the pages, the JSON API and their live updates. ``start_http(engine_app, host, port)`` runs
it and returns the runner to clean up. Unknown routes and errors answer JSON, never an HTML
error page.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from ..shells.metrics import EngineMetrics
from . import api, casepage, pages, phone
from .access import SUPERVISOR_TOKEN_ENV, Access
from .context import WEB, Web
from .errors import QUIET_LOG, QuietLog, api_errors, json_errors
from .server import HallRunner, HttpSettings, add_safe_headers, trusted_proxies

if TYPE_CHECKING:
    from ..app import EngineApp

log = logging.getLogger("hallwatch.http")
web_log = logging.getLogger("hallwatch.web")

ENGINE: web.AppKey[EngineApp] = web.AppKey("engine")
METRICS = web.AppKey("metrics", EngineMetrics)
HTTP_SETTINGS = web.AppKey("http_settings", HttpSettings)


class ListenAddressError(ValueError):
    pass


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (all interfaces)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ListenAddressError(f"{text!r} is not host:port, e.g. 127.0.0.1:9108 or :9108")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port_text)


async def healthz(request: web.Request) -> web.Response:
    """200 ``{"status": "ok"}`` when connected to the broker and the store is writable,
    else 503 with the reason."""
    ok, reason = request.app[ENGINE].healthy
    if ok:
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unhealthy", "reason": reason}, status=503)


def hardened_app(settings: HttpSettings) -> web.Application:
    """An application with what every hallwatch server puts before its handlers: a trusted
    proxy's word on the client, errors in JSON, the safe headers, the settings (which
    ``serve`` gives the connections)."""
    # Outermost: the trusted proxy's word on the client comes before everything that uses it.
    app = web.Application(
        middlewares=[trusted_proxies(settings.trusted_proxies), json_errors]
        if settings.trusted_proxies
        else [json_errors]
    )
    app.on_response_prepare.append(add_safe_headers)
    app[QUIET_LOG] = QuietLog(web_log)
    app[HTTP_SETTINGS] = settings
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve a ``hardened_app`` on the running loop (``HallRunner``: the header and idle
    timeouts, the connection cap, protocol errors in JSON); ``await runner.cleanup()`` to
    stop. Raises OSError when the address cannot be bound."""
    runner = HallRunner(app, settings=app[HTTP_SETTINGS], quiet=QuietLog(log), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def build_app(
    engine_app: EngineApp,
    *,
    metrics: EngineMetrics | None = None,
    settings: HttpSettings | None = None,
    access: Access | None = None,
) -> web.Application:
    """The engine's web application. Attaches the metrics to ``engine_app`` (whose commits
    then feed them) unless it has some already. Tokens are read from the environment unless
    ``access`` is given."""
    settings = settings or HttpSettings()
    if metrics is None:
        metrics = getattr(engine_app, "metrics", None) or EngineMetrics(engine_app)
    engine_app.metrics = metrics
    app = hardened_app(settings)
    app[ENGINE] = engine_app
    app[METRICS] = metrics
    app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
    app.router.add_get("/healthz", healthz)
    add_web(app, engine_app, access=access, settings=settings)
    return app


def add_web(
    app: web.Application,
    engine_app: EngineApp,
    *,
    access: Access | None = None,
    settings: HttpSettings | None = None,
) -> Web:
    """Add the pages, the API and the live updates to the engine's application. Tokens are
    read from the environment now (at start-up: WeakToken for one too short) unless
    ``access`` is given."""
    site_web = Web(
        engine_app,
        access or Access.from_environment(engine_app.sites),
        pages.load_templates(),
        settings or HttpSettings(),
    )
    app[WEB] = site_web
    app.middlewares.append(api_errors)
    app.add_routes([*api.ROUTES, *phone.ROUTES, *casepage.ROUTES, *pages.ROUTES])
    app.on_shutdown.append(site_web.on_shutdown)
    engine_app.observers.append(site_web.broadcaster)
    if site_web.access.supervisor is None:
        web_log.warning("web: %s is not set: the supervision console is closed", SUPERVISOR_TOKEN_ENV)
    for site in engine_app.sites:
        if site_web.access.managers.get(site.id) is None:
            web_log.info(
                "web: %s is not set: site %s's console opens with the supervisor token only",
                site.web.token_env(site.id),
                site.id,
            )
    return site_web


async def start_http(
    engine_app: EngineApp,
    host: str,
    port: int,
    *,
    app: web.Application | None = None,
    settings: HttpSettings | None = None,
    access: Access | None = None,
) -> web.AppRunner:
    """Serve ``app`` (default ``build_app(engine_app, settings=settings, access=access)``) on
    the running loop, with the settings it was built with; ``await runner.cleanup()`` to stop.
    Raises OSError when the address cannot be bound."""
    if app is None:
        app = build_app(engine_app, settings=settings, access=access)
    runner = await serve(app, host, port)
    log.info("http: serving /metrics and /healthz on %s:%d", host, port)
    return runner
