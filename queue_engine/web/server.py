"""The HTTP connections themselves, below the application: aiohttp's server with what a hall's
server needs in front of its handlers.

A request that is not valid HTTP (a NUL byte in a header, a request line that is not one) is
refused by aiohttp's parser before any handler or middleware runs; aiohttp answers it in plain
text and logs a traceback per request. Here it is answered like every other error, in JSON,
and logged in one line (``QuietLog``).

aiohttp offers no hook for this (aio-libs/aiohttp#3287): ``HallRunner`` hands aiohttp's own
``Server`` to a ``HallServer`` that makes each connection a ``HallConnection``. That reads two
attributes aiohttp keeps private (``Server._loop``, ``Server._kwargs``), here and nowhere else;
``tests/test_web_hardening.py`` fails if they change.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .errors import QuietLog, json_response, printable

log = logging.getLogger("hallwatch.http")


class HallServer(web.Server):
    """aiohttp's server, taken over from the one the application built, whose connections
    are ``HallConnection``s."""

    def __init__(self, built: web.Server, quiet: QuietLog):
        super().__init__(
            built.request_handler,
            request_factory=built.request_factory,
            handler_cancellation=built.handler_cancellation,
            loop=built._loop,
            **built._kwargs,
        )
        self.quiet = quiet

    def __call__(self) -> RequestHandler:
        return HallConnection(self, loop=self._loop, **self._kwargs)


class HallConnection(RequestHandler):
    """One client connection: aiohttp's, with protocol errors answered in JSON and logged in
    one line."""

    def __init__(self, server: HallServer, **kwargs):
        super().__init__(server, **kwargs)
        self.server = server

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)  # a bug of ours: keep the traceback
        if request.writer.output_size > 0:  # as aiohttp does: too late for an answer
            raise ConnectionError("the answer has begun: no error answer can follow")
        what, detail = _what_and_detail(message or exc.message or str(exc))
        address = request.remote or "unknown"
        self.server.quiet.line(
            ("http: requests that are not valid HTTP from", address, what),
            logging.INFO,
            "http: refused a request from %s that is not valid HTTP: %s",
            address,
            printable(detail),
        )
        response = json_response(
            {"error": "bad_request", "message": "请求不符合 HTTP 协议，已拒绝", "status": status, "detail": detail},
            status=status,
        )
        response.force_close()
        return response


def _what_and_detail(message: str) -> tuple[str, str]:
    """aiohttp's parser message in one line (its first line says what is wrong; a caret line
    under the offending bytes is dropped), and that first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip() and set(line.strip()) != {"^"}]
    return (lines[0] if lines else "?"), " ".join(lines)


class HallRunner(web.AppRunner):
    """aiohttp's application runner, serving through a ``HallServer``."""

    def __init__(self, app: web.Application, *, quiet: QuietLog, **kwargs):
        super().__init__(app, **kwargs)
        self.quiet = quiet

    async def _make_server(self) -> web.Server:
        return HallServer(await super()._make_server(), self.quiet)
