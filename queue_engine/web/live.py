"""Live updates: Server-Sent Events fed by ``Broadcaster``, an observer of each committed
batch that forwards the very payloads published over MQTT (calls, window and queue states,
alerts) and device changes, and costs one check when nobody is connected. ``serve`` streams
them to one page until it goes away or falls too far behind (it then reconnects and reloads).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from ..core.commands import DeviceChanged
from . import views
from .errors import dumps

if TYPE_CHECKING:
    from ..app import EngineApp
    from ..shells.clock import Clock

log = logging.getLogger("hallwatch.web")

SSE_PING_S = 15.0
SSE_MAX_BACKLOG = 2000  # frames queued for one slow client before it is dropped (it reconnects)
# What the pages follow live, by the kind of the published message (ingest.Outbound.kind).
LIVE_KINDS = frozenset({"call", "window", "queue", "alert"})
# What each stream sends after its ``hello`` (``openapi.py`` describes each event's data).
BOARD_EVENTS = frozenset({"call", "queue"})
MANAGE_EVENTS = frozenset({"call", "queue", "window", "alert", "device"})
SUPERVISE_EVENTS = frozenset({"queue", "window", "alert", "device"})


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


class Fanout(Protocol):
    """What ``serve`` needs of a broadcaster (the engine's, or the county service's)."""

    def add(self, client: Subscriber) -> None: ...

    def discard(self, client: Subscriber) -> None: ...


async def serve(
    request: web.Request, broadcaster: Fanout, clock: Clock, site: str | None, kinds: frozenset[str]
) -> web.StreamResponse:
    """Stream the ``kinds`` of updates about ``site`` (None: every site) to one page: a
    ``hello`` with the engine's time first, a comment line after 15 s of quiet."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    client = Subscriber(site, kinds)
    broadcaster.add(client)
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
        broadcaster.discard(client)
    return response
