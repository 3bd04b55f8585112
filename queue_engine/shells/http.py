"""The HTTP shell: one aiohttp application in the engine process.

``build_app(engine_app)`` returns the ``aiohttp.web.Application`` that serves ``/metrics``
(Prometheus text format, from ``shells.metrics``) and ``/healthz``; further pages and the
JSON API are added to the same application (``app.router.add_*`` before it starts, or a
sub-application with ``app.add_subapp``). ``start_http(engine_app, host, port)`` runs it on
the engine's event loop and returns the runner to clean up. Unknown routes and errors
answer JSON, never an HTML error page.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from .metrics import EngineMetrics

if TYPE_CHECKING:
    from ..app import EngineApp

log = logging.getLogger("hallwatch.http")

ENGINE = web.AppKey("engine", object)  # the EngineApp
METRICS = web.AppKey("metrics", EngineMetrics)


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


@web.middleware
async def json_errors(request: web.Request, handler):
    """HTTP errors (404, 405, ...) as ``{"error": ..., "status": ..., "path": ...}``; an
    unexpected exception is logged with its traceback and answered as a JSON 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return web.json_response(
            {"error": exc.reason.lower().replace(" ", "_"), "status": exc.status, "path": request.path},
            status=exc.status,
            headers=_kept_headers(exc),
        )
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal_error", "status": 500, "path": request.path}, status=500)


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow",)}


async def healthz(request: web.Request) -> web.Response:
    """200 ``{"status": "ok"}`` when connected to the broker and the store is writable,
    else 503 with the reason."""
    ok, reason = request.app[ENGINE].healthy
    if ok:
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unhealthy", "reason": reason}, status=503)


def build_app(engine_app: EngineApp, *, metrics: EngineMetrics | None = None) -> web.Application:
    """The engine's web application. Attaches the metrics to ``engine_app`` (whose commits
    then feed them) unless it has some already."""
    if metrics is None:
        metrics = getattr(engine_app, "metrics", None) or EngineMetrics(engine_app)
    engine_app.metrics = metrics
    app = web.Application(middlewares=[json_errors])
    app[ENGINE] = engine_app
    app[METRICS] = metrics
    app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
    app.router.add_get("/healthz", healthz)
    from .web import add_web  # the pages, the JSON API and live updates (docs/api.md)

    add_web(app, engine_app)
    return app


async def start_http(
    engine_app: EngineApp, host: str, port: int, *, app: web.Application | None = None
) -> web.AppRunner:
    """Serve ``app`` (default ``build_app(engine_app)``) on the running loop; ``await
    runner.cleanup()`` to stop. Raises OSError when the address cannot be bound."""
    runner = web.AppRunner(app if app is not None else build_app(engine_app), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("http: serving /metrics and /healthz on %s:%d", host, port)
    return runner
