"""The HTTP connections themselves, below the application: aiohttp's server with what a hall's
server needs in front of its handlers (``HttpSettings``, ``hallwatch engine --http-*``).

A connection has ``idle_timeout_s`` from its opening, or from its last answer, to send its
next request (aiohttp's keep-alive timer), and ``header_timeout_s`` from the first byte of a
request to complete its header (a slow loris gets a 408 and is closed). A request being
answered is never cut: the live streams (SSE) are requests that last as long as the page.
Beyond ``max_connections`` open at once a new connection gets a 503 and is closed, the open
ones, streams included, carry on.

A request that is not valid HTTP (a NUL byte in a header, a request line that is not one) is
refused by aiohttp's parser before any handler or middleware runs; aiohttp answers it in plain
text and logs a traceback per request. Here it is answered like every other error, in JSON,
and logged in one line (``QuietLog``).

aiohttp offers no hook for this (aio-libs/aiohttp#3287): ``HallRunner`` hands aiohttp's own
``Server`` to a ``HallServer`` that makes each connection a ``HallConnection``. That reads attributes aiohttp
keeps private (``Server._loop``, ``Server._kwargs``, ``RequestHandler._waiter``: the future its
request loop awaits the next request on), here and nowhere else; ``tests/test_web_hardening.py``
fails if they change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .errors import QuietLog, dumps, json_response, printable

log = logging.getLogger("hallwatch.http")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """How the engine's HTTP server treats connections (docs/deployment.md, "The web server").
    The defaults suit a hall: a few boards and consoles on the hall's network, and phones."""

    # A browser sends its header in milliseconds, a phone on a poor link in a second or two.
    header_timeout_s: float = 10.0
    # Between requests: the pages keep their connection while they fetch, then mostly wait on
    # their live stream, which is a request in progress and not idle.
    idle_timeout_s: float = 60.0
    # Each browser opens up to 6; a county hall's boards, consoles and phones stay far below.
    max_connections: int = 256
    # Per client address: a mistyped token now and then, never ten a minute.
    wrong_tokens_per_minute: int = 10
    # The console cookies are Secure (sent back over HTTPS only) on every answer; otherwise
    # only on answers to HTTPS, which behind a TLS proxy only a trusted proxy can tell.
    cookie_secure: bool = False
    # Reverse proxies whose X-Forwarded-Proto and X-Forwarded-For are believed.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # SMS verification of phone numbers (web.phoneverify.PhoneVerifier); None: not verified.
    phone_verifier: object | None = None


# Sent with every answer (the pages add their own Content-Security-Policy, with frame-ancestors
# 'none', and a stricter Referrer-Policy): no type sniffing, no framing of the consoles.
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}


async def add_safe_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer the application gives carries SAFE_HEADERS."""
    for name, value in SAFE_HEADERS.items():
        response.headers.setdefault(name, value)


def parse_proxies(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``ADDRESS[,ADDRESS]``: IP addresses or networks (``10.0.0.5``, ``10.0.0.0/24``)."""
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise ValueError(f"{text!r}: {err} (IP addresses or networks, separated by commas)") from None


def trusted_proxies(networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]):
    """A middleware that believes a trusted proxy about the client: the scheme it was reached
    by (``X-Forwarded-Proto``: https makes ``request.secure``) and the client's address (the
    last ``X-Forwarded-For`` entry, the one the proxy added), for the per-address limits and the
    log. From anyone else the headers are ignored: a client could claim anything."""

    @web.middleware
    async def forwarded(request: web.Request, handler):
        if _within(request.remote, networks):
            scheme = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
            if scheme in ("http", "https"):
                request = request.clone(scheme=scheme)
            client = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
            if _within(client, ()):
                request = request.clone(remote=client)
        return await handler(request)

    return forwarded


def _within(address: str | None, networks) -> bool:
    """``address`` is an IP address (within one of ``networks``, when any are given)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return not networks or any(ip in network for network in networks)


class HallServer(web.Server):
    """aiohttp's server, taken over from the one the application built, whose connections
    are ``HallConnection``s."""

    def __init__(self, built: web.Server, settings: HttpSettings, quiet: QuietLog):
        super().__init__(
            built.request_handler,
            request_factory=built.request_factory,
            handler_cancellation=built.handler_cancellation,
            loop=built._loop,
            **built._kwargs,
        )
        self.settings, self.quiet = settings, quiet

    def __call__(self) -> RequestHandler:
        return HallConnection(self, loop=self._loop, **self._kwargs)


class HallConnection(RequestHandler):
    """One client connection: aiohttp's, with the connection cap, the header timeout, and
    protocol errors answered in JSON and logged in one line."""

    def __init__(self, server: HallServer, **kwargs):
        super().__init__(server, **kwargs)
        self.server = server
        self.header_deadline: asyncio.TimerHandle | None = None

    @property
    def address(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return str(peer[0]) if peer else "unknown"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        limit = self.server.settings.max_connections
        if len(self.server.connections) > limit:
            self.server.quiet.line(
                ("http: connections refused at the cap",),
                logging.WARNING,
                "http: %d connections open (--http-max-connections): refused one from %s",
                limit,
                self.address,
            )
            self.answer_and_close(503, "too_many_connections", "连接数已达上限，请稍后再试", {"Retry-After": "5"})

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_request():  # these bytes began a request, or continued one, not complete yet
            if self.header_deadline is None:
                self.header_deadline = asyncio.get_running_loop().call_later(
                    self.server.settings.header_timeout_s, self._header_too_slow
                )
        elif self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _awaiting_request(self) -> bool:
        # aiohttp's request loop is waiting for the parser to complete the next request.
        return self._waiter is not None and not self._waiter.done()

    def _header_too_slow(self) -> None:
        self.header_deadline = None
        if self.transport is None or not self._awaiting_request():
            return
        timeout = self.server.settings.header_timeout_s
        self.server.quiet.line(
            ("http: slow request headers from", self.address),
            logging.INFO,
            "http: closed a connection from %s: its request header was not complete within %g s",
            self.address,
            timeout,
        )
        self.answer_and_close(408, "header_timeout", f"请求头未在 {timeout:g} 秒内收齐，连接已关闭", {})

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None
        super().connection_lost(exc)

    def answer_and_close(self, status: int, code: str, message: str, headers: dict[str, str]) -> None:
        """An answer written straight to the connection (no request to answer through aiohttp:
        none has been read), then the connection closed once it is sent."""
        if self.transport is None:
            return
        body = dumps({"error": code, "message": message, "status": status}).encode()
        head = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            "Content-Type: application/json; charset=utf-8",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in {**SAFE_HEADERS, **headers}.items()),
        ]
        self.transport.write("\r\n".join(head).encode() + b"\r\n\r\n" + body)
        self.force_close()

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
            headers=SAFE_HEADERS,
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

    def __init__(self, app: web.Application, *, settings: HttpSettings, quiet: QuietLog, **kwargs):
        super().__init__(app, keepalive_timeout=settings.idle_timeout_s, **kwargs)
        self.settings, self.quiet = settings, quiet

    async def _make_server(self) -> web.Server:
        return HallServer(await super()._make_server(), self.settings, self.quiet)
