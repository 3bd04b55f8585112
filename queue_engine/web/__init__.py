"""The web shell: the hall's TV board, the manager console, the supervision console, the
phone page and the JSON API under ``/api/v1`` (``docs/api.md``), live over Server-Sent
Events, with ``/metrics`` and ``/healthz``, in one aiohttp application on the engine's loop.

Thin like every shell: reads come from the core's current state, actions go through
``EngineApp.submit_event`` and are answered after the commit. Every error is JSON.

- ``app``: the application (``build_app``, ``add_web``, ``start_http``), ``/healthz``, ``/metrics``
- ``server``: the connections below it: timeouts, the connection cap, protocol errors (``HttpSettings``)
- ``errors``: JSON answers, ``ApiError`` and the error middlewares
- ``access``: tokens, cookies, who may see what
- ``context``: what the handlers share (``Web``, under ``app[WEB]``)
- ``api``: the JSON API handlers and routes; ``openapi``: their description
- ``views``: what the pages and the API show, read from the core
- ``live``: the broadcaster of committed updates and the SSE streams
- ``limits``: phone tickets per phone and per address
- ``pages``: the HTML pages from ``templates/``, the assets in ``static/``
- ``casepage``: a case followed by its token (``/case/{site}/{token}`` and its JSON), public fields only
"""

from .access import Access
from .app import ENGINE, METRICS, ListenAddressError, add_web, build_app, parse_listen, start_http
from .context import WEB, Web
from .errors import ApiError
from .openapi import openapi_document
from .server import HttpSettings

__all__ = [
    "ENGINE",
    "METRICS",
    "WEB",
    "Access",
    "ApiError",
    "HttpSettings",
    "ListenAddressError",
    "Web",
    "add_web",
    "build_app",
    "openapi_document",
    "parse_listen",
    "start_http",
]
