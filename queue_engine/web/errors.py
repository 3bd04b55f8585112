"""Every answer is JSON, errors too.

``json_response`` encodes as the pages expect (UTF-8 text, not ``\\u`` escapes). An
``ApiError`` becomes ``{"error": code, "message": text, "status": n, ...}``. Two middlewares:
``api_errors`` (added with the pages and the API) answers an ``ApiError``, a refused store
file, an unknown route or method under ``/api/v1`` and an unexpected exception; the
application's own ``json_errors``, outermost, answers every other HTTP error (404, 405, ...)
as ``{"error", "status", "path"}``, never as an HTML error page.

A malformed request (``ApiError(..., malformed=True)``: bytes no correct client sends) is logged
in one line through the application's ``QuietLog``, which keeps a flood of them from flooding
the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Hashable, Mapping

from aiohttp import web

from ..shells.storefile import StoreRefused

log = logging.getLogger("hallwatch.web")
http_log = logging.getLogger("hallwatch.http")

# Every error code the API answers, by HTTP status: the handlers', the access checks', the
# core's refusals (``api.refused``) and the middleware's. ``openapi.py`` states them per status.
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: ("bad_json", "missing_field", "bad_field", "bad_parameter", "bad_ticket_number", "bad_header", "bad_request"),
    401: ("missing_token",),
    403: (
        "bad_token",
        "access_not_configured",
        "phone_tickets_disabled",
        "phone_unverified",
        "phone_verification_off",
        "bad_check_in_key",
    ),
    404: ("unknown_site", "unknown_service", "unknown_ticket", "unknown_alert", "unknown_window", "not_found"),
    405: ("method_not_allowed",),
    409: (
        "service_closed",
        "already_acknowledged",
        "already_rated",
        "nothing_to_rate",
        "not_finished",
        "not_reserved",
        "unknown_reservation",
    ),
    413: ("body_too_large",),
    415: ("unsupported_media_type",),
    422: ("note_required", "reasons_not_allowed"),
    429: (
        "phone_limit",
        "phone_no_shows",
        "address_limit",
        "network_limit",
        "site_limit",
        "too_many_wrong_tokens",
    ),
    500: ("internal_error",),
    503: ("engine_unavailable", "store_refused"),
}
ERROR_STATUS = {code: status for status, codes in ERROR_CODES.items() for code in codes}


def dumps(obj) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a request (a "\\ud800" escape) echoed back
        return json.dumps(obj, separators=(",", ":"))
    return text


def printable(text: str, limit: int = 200) -> str:
    """``text`` for a log line: control characters and lone surrogates (from bytes that were
    not UTF-8) escaped, at most ``limit`` characters."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])


class QuietLog:
    """At most one line per key and period: the first at once, the others counted and summed
    up in one line when the period ends. A client that sends a thousand bad requests costs the
    log two lines a minute, not a thousand."""

    def __init__(self, logger: logging.Logger, period_s: float = 60.0):
        self.logger, self.period_s = logger, period_s
        self.more: dict[Hashable, int] = {}

    def line(self, key: Hashable, level: int, message: str, *args) -> None:
        if key in self.more:
            self.more[key] += 1
            return
        self.more[key] = 0
        self.logger.log(level, message, *args)
        asyncio.get_running_loop().call_later(self.period_s, self._sum_up, key, level)

    def _sum_up(self, key: Hashable, level: int) -> None:
        more = self.more.pop(key, 0)
        if more:
            self.logger.log(level, "%s: %d more like it in the last %.0f s", _key_text(key), more, self.period_s)


def _key_text(key: Hashable) -> str:
    return " ".join(map(str, key)) if isinstance(key, tuple) else str(key)


QUIET_LOG = web.AppKey("quiet_log", QuietLog)


def json_response(body, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=dumps)


class ApiError(Exception):
    """An answer other than success: becomes ``{"error", "message", "status", ...}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        malformed: bool = False,
        **extra,
    ):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra
        self.malformed = malformed  # bytes no correct client sends: worth a (quiet) log line

    def response(self) -> web.Response:
        return json_response(
            {"error": self.code, "message": self.message, "status": self.status, **self.extra},
            status=self.status,
            headers=self.headers,
        )


def _code(exc: web.HTTPException) -> str:
    return exc.reason.lower().replace(" ", "_")


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow",)}


@web.middleware
async def api_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as err:
        if err.malformed:
            log_malformed(request, err)
        return err.response()
    except StoreRefused as err:  # the store file was replaced by one the engine would not open
        log.error("%s %s: %s", request.method, request.path, err)
        return ApiError(503, "store_refused", "存储文件不可用，请联系系统管理员", detail=str(err)).response()
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json" or not request.path.startswith("/api/v1/"):
            raise  # json_errors answers JSON for the rest
        # No such route (404) or method (405) in the API: JSON that names the problem, in Chinese too.
        message = {404: f"没有这个地址：{request.path}", 405: f"{request.path} 不支持 {request.method} 方法"}.get(
            exc.status, exc.reason
        )
        return ApiError(exc.status, _code(exc), message, headers=_kept_headers(exc), path=request.path).response()
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return ApiError(500, "internal_error", "服务器内部错误，请稍后再试").response()


def log_malformed(request: web.Request, err: ApiError) -> None:
    """One line (per address, problem and route a minute) about a malformed request."""
    address = request.remote or "unknown"
    route = request.match_info.route.resource
    where = route.canonical if route is not None else "?"
    request.app[QUIET_LOG].line(
        ("web: malformed requests from", address, err.code, where),
        logging.INFO,
        "web: refused %s %s from %s: %d %s (%s)",
        request.method,
        printable(request.raw_path),
        address,
        err.status,
        err.code,
        printable(err.message),
    )


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
            {"error": _code(exc), "status": exc.status, "path": request.path},
            status=exc.status,
            headers=_kept_headers(exc),
        )
    except Exception:
        http_log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal_error", "status": 500, "path": request.path}, status=500)
