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

from ..core.commands import DeviceChanged, TicketChanged, TicketTransition, WindowChanged
from ..core.model import FINAL_STATUSES
from . import views
from .errors import dumps

if TYPE_CHECKING:
    from ..app import EngineApp
    from ..core.hall import Hall
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
SLIP_EVENTS = frozenset({"ticket"})


class Subscriber:
    """One page's stream. ``ticket``: a phone following one ticket of ``site`` (its slip),
    sent a ``ticket`` event whenever what its page shows of it changes."""

    __slots__ = ("site", "kinds", "frames", "wake", "closed", "overflow", "ticket", "last", "place")

    def __init__(self, site: str | None, kinds: frozenset[str], ticket: str | None = None):
        self.site = site
        self.kinds = kinds
        self.frames: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.closed = False
        self.overflow = False
        self.ticket = ticket
        self.last: bytes = b""  # the last ticket frame sent: an unchanged view is not sent again
        self.place: tuple[int, int] | None = None  # (ahead, eta_min) in that frame

    def push(self, frame: bytes) -> None:
        if len(self.frames) >= SSE_MAX_BACKLOG:
            self.overflow = True
        else:
            self.frames.append(frame)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()

    def push_slip(self, hall: Hall) -> None:
        """Queue the view of this phone's ticket, unless it is the one it was sent last."""
        assert self.ticket is not None
        view = views.slip(hall, self.ticket)
        if view is None:  # (the day rolled: the ticket is gone from the hall)
            return
        self.place = (view["ahead"], view["eta_min"])
        frame = sse_frame("ticket", dumps(view))
        if frame != self.last:
            self.last = frame
            self.push(frame)


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
        if any(c.ticket is not None for c in self.clients):
            self._slips(batch)
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

    def _slips(self, batch) -> None:
        """The phones whose ticket this batch changed get its view; so do those whose place or
        wait it may have moved, when it did."""
        changed: set[tuple[str, str]] = set()
        moved: set[str] = set()  # sites where a waiting ticket's place or wait may have changed
        for item in batch:
            for command in item.commands:
                kind = type(command)
                if kind is TicketChanged:
                    changed.add((command.site, command.ticket.no))
                    # A number issued at the back of the normal lane moves nobody; anything
                    # else may (a call, a check-in at an earlier place, a green channel).
                    if command.transition is not TicketTransition.ISSUED or command.ticket.is_priority:
                        moved.add(command.site)
                elif kind is WindowChanged:  # (open windows: the waits)
                    moved.add(command.site)
        if not changed and not moved:
            return
        halls = self.engine_app.engine.halls
        for client in list(self.clients):
            if client.ticket is None or client.site is None:
                continue
            hall = halls.get(client.site)
            if hall is None:
                continue
            if (client.site, client.ticket) in changed:
                client.push_slip(hall)
            elif client.site in moved:
                position = hall.position(client.ticket)  # (cheap: the full view only when it moved)
                if (
                    position is not None
                    and position.ticket.status not in FINAL_STATUSES
                    and (position.ahead, position.eta_min) != client.place
                ):
                    client.push_slip(hall)


class Fanout(Protocol):
    """What ``serve`` needs of a broadcaster (the engine's, or the county service's)."""

    def add(self, client: Subscriber) -> None: ...

    def discard(self, client: Subscriber) -> None: ...


async def serve(
    request: web.Request,
    broadcaster: Fanout,
    clock: Clock,
    site: str | None,
    kinds: frozenset[str],
    *,
    client: Subscriber | None = None,
) -> web.StreamResponse:
    """Stream the ``kinds`` of updates about ``site`` (None: every site) to one page: a
    ``hello`` with the engine's time first, then what ``client`` already holds (a slip's
    first view), a comment line after 15 s of quiet."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    client = client or Subscriber(site, kinds)
    broadcaster.add(client)
    try:
        hello = {"now_ms": round(clock.now() * 1000), "speed": clock.speed, "site": site}
        first, client.frames = b"".join(client.frames), deque()
        await response.write(b"retry: 2000\n\n" + sse_frame("hello", dumps(hello)) + first)
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
