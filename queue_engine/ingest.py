"""From a received MQTT message to what must be stored and then published.

This is the engine's application layer, free of IO: the MQTT shell hands it
``(topic, payload, now)``; it validates, authorises, deduplicates, drives the core and
returns a ``Processed`` record. The store commits a batch of those in one transaction and
only then does the shell publish what ``Outputs`` renders from them and acknowledge them.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from . import wire
from .config import WINDOW_BOUND_KINDS
from .core import events as ev
from .core.commands import AlertChanged, AnnounceCall, Command, QueueChanged, Reply, WindowChanged
from .core.engine import Engine

if TYPE_CHECKING:
    from .config import Site

log = logging.getLogger("hallwatch.ingest")

# Events whose sender waits for an answer on its reply topic.
NO_REPLY = (ev.Presence, ev.Tamper, ev.DeviceStatus, ev.Heartbeat)
DEDUPE_RETENTION_S = 2 * 86400.0


@dataclass(frozen=True, slots=True)
class Rejection:
    site: str | None
    device: str | None
    topic: str
    code: str
    reason: str
    payload: bytes
    at: float


@dataclass(slots=True)
class Processed:
    """One inbound message, handled. ``event_row`` is what the event log records."""

    at: float
    site: str | None = None
    commands: list[Command] = field(default_factory=list)
    event_row: tuple | None = None  # (site, device, event_id, type, received_at, payload, error, reply)
    reply: tuple[str, bytes] | None = None  # (topic, payload) to publish after commit
    rejection: Rejection | None = None
    duplicate: bool = False
    # Set by the MQTT shell: what to acknowledge after commit, and on which connection.
    mid: int = 0
    qos: int = 0
    generation: int = 0
    # For events from other shells (web, operators): resolved with the reply after commit.
    waiter: object = None
    result: Reply | None = None

    @property
    def needs_commit(self) -> bool:
        return bool(self.commands or self.event_row or self.rejection)


class Deduplicator:
    """Remembers (site, device, id) -> the reply given, so a redelivered event is answered
    the same way and applied once. Seeded from the event log at start-up."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str, str], tuple[float, bytes | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def get(self, key: tuple[str, str, str]) -> tuple[float, bytes | None] | None:
        return self._seen.get(key)

    def remember(self, key: tuple[str, str, str], at: float, reply: bytes | None) -> None:
        self._seen[key] = (at, reply)

    def forget_before(self, cutoff: float) -> None:
        while self._seen:
            key, (at, _) = next(iter(self._seen.items()))
            if at >= cutoff:
                break
            self._seen.popitem(last=False)


class Ingest:
    def __init__(self, engine: Engine, sites: Iterable[Site], topics: wire.Topics):
        self.engine = engine
        self.sites = {s.id: s for s in sites}
        self.topics = topics
        self.dedupe = Deduplicator()
        self._devices = {(s.id, d.id): d for s in self.sites.values() for d in s.devices}
        self._tz = {s.id: s.tz for s in self.sites.values()}

    def process(self, topic: str, payload: bytes, now: float) -> Processed:
        try:
            where = wire.parse_device_topic(topic, self.topics.root)
        except wire.WireError as err:
            return self._reject(self._site_in(topic), None, topic, err.code, err.reason, payload, now)
        site, device_id = where.site, where.device
        if site not in self.sites:
            return self._reject(None, device_id, topic, "unknown_site", f"this engine does not serve site {site!r}",
                                payload, now)
        device = self._devices.get((site, device_id))
        if device is None:
            return self._reject(site, device_id, topic, "unknown_device",
                                f"device {device_id!r} is not configured for site {site!r}", payload, now)
        try:
            if where.channel == "event":
                event, claimed_window = wire.decode_event(payload, site, device_id)
            elif where.channel == "status":
                event, claimed_window = wire.decode_status(payload, site, device_id), None
            else:
                event, claimed_window = wire.decode_heartbeat(payload, site, device_id), None
        except wire.WireError as err:
            return self._reject(site, device_id, topic, err.code, err.reason, payload, now)

        kind = device.kind.value
        if not isinstance(event, ev.LIVENESS_EVENTS) and type(event) not in ev.EVENTS_BY_KIND[kind]:
            return self._reject(site, device_id, topic, "not_allowed",
                                f"a {kind} may not send {wire.EVENT_TYPES[type(event)]}", payload, now)
        if claimed_window is not None and claimed_window != device.window:
            own = f"its own window is {device.window!r}" if device.kind in WINDOW_BOUND_KINDS else "it has no window"
            return self._reject(site, device_id, topic, "wrong_window",
                                f"{device_id} may not speak for window {claimed_window!r}; {own}", payload, now)

        if isinstance(event, ev.LIVENESS_EVENTS):
            return Processed(at=now, site=site, commands=self.engine.handle(event, now))

        key = (site, device_id, event.id)
        seen = self.dedupe.get(key)
        reply_topic = self.topics.reply(site, device_id)
        if seen is not None:
            # Redelivered (or resent by the device): answer as the first time, apply nothing.
            _, previous_reply = seen
            return Processed(at=now, site=site, duplicate=True,
                             reply=(reply_topic, previous_reply) if previous_reply is not None else None)

        commands = self.engine.handle(event, now)
        reply = next((c for c in commands if isinstance(c, Reply) and c.re == event.id and c.device == device_id),
                     None)
        reply_bytes = None
        error = None
        if reply is not None:
            if not reply.ok:
                error = reply.error
            if not isinstance(event, NO_REPLY):
                reply_bytes = wire.encode(wire.reply_payload(reply, self._tz[site]))
        self.dedupe.remember(key, now, reply_bytes)
        row = (site, device_id, event.id, wire.EVENT_TYPES[type(event)], now,
               payload.decode("utf-8", errors="replace"), error,
               reply_bytes.decode("utf-8") if reply_bytes is not None else None)
        return Processed(at=now, site=site, commands=commands, event_row=row,
                         reply=(reply_topic, reply_bytes) if reply_bytes is not None else None)

    def process_event(self, event: ev.Event, now: float) -> Processed:
        """An event that did not come over MQTT (a phone ticket, an operator's action): the
        same deduplication, core and event log; ``result`` is the core's reply, if any."""
        key = (event.site, event.device, event.id)
        payload = wire.encode({"type": wire.EVENT_TYPES.get(type(event), type(event).__name__),
                               **{k: getattr(event, k) for k in event.__dataclass_fields__}})
        if self.dedupe.get(key) is not None:
            return Processed(at=now, site=event.site, duplicate=True)
        commands = self.engine.handle(event, now)
        reply = next((c for c in commands if isinstance(c, Reply) and c.re == event.id), None)
        reply_bytes = wire.encode(wire.reply_payload(reply, self._tz[event.site])) if reply is not None else None
        self.dedupe.remember(key, now, reply_bytes)
        row = (event.site, event.device, event.id, wire.EVENT_TYPES.get(type(event), type(event).__name__), now,
               payload.decode(), reply.error if reply is not None and not reply.ok else None,
               reply_bytes.decode() if reply_bytes is not None else None)
        return Processed(at=now, site=event.site, commands=commands, event_row=row, result=reply)

    def _site_in(self, topic: str) -> str | None:
        """The site of a malformed topic, when it is one of ours, so the refusal is seen there."""
        parts = topic.split("/")
        n = len(self.topics.root.split("/"))
        return parts[n] if len(parts) > n and parts[n] in self.sites else None

    def tick(self, now: float) -> Processed:
        self.dedupe.forget_before(now - DEDUPE_RETENTION_S)
        return Processed(at=now, commands=self.engine.tick(now))

    def _reject(self, site, device, topic, code, reason, payload, now) -> Processed:
        log.warning("rejected %s from %s: %s (%s)", topic, device or "?", code, reason)
        commands: list[Command] = []
        if site is not None and device is not None:
            # Refusals feed the `unauthorized` alert: a spoofing attempt is seen, not just dropped.
            commands = self.engine.handle(ev.Refusal(site=site, device=device, id="", code=code), now)
        return Processed(at=now, site=site, commands=commands,
                         rejection=Rejection(site=site, device=device, topic=topic, code=code, reason=reason,
                                             payload=bytes(payload[:256]), at=now))


@dataclass(frozen=True, slots=True)
class Outbound:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class Outputs:
    """Renders what a committed batch shows to devices, boards and operators. Window and
    queue states are coalesced: one message per window and per site per batch."""

    def __init__(self, engine: Engine, sites: Iterable[Site], topics: wire.Topics):
        self.engine = engine
        self.topics = topics
        self._tz = {s.id: s.tz for s in sites}

    def render(self, batch: Iterable[Processed], now: float) -> list[Outbound]:
        messages: list[Outbound] = []
        windows: dict[tuple[str, str], WindowChanged] = {}
        queues: set[str] = set()
        for item in batch:
            if item.rejection is not None:
                r = item.rejection
                body = wire.encode(wire.rejection_payload(r.topic, r.code, r.reason, r.payload))
                if r.site is not None:
                    messages.append(Outbound(self.topics.rejected(r.site), body))
            if item.reply is not None:
                messages.append(Outbound(*item.reply))
            for command in item.commands:
                if isinstance(command, AnnounceCall):
                    body = wire.encode(wire.call_payload(command, self._tz[command.site]))
                    messages.append(Outbound(self.topics.call(command.site), body))
                elif isinstance(command, WindowChanged):
                    windows[(command.site, command.window.window)] = command
                elif isinstance(command, QueueChanged):
                    queues.add(command.site)
                elif isinstance(command, AlertChanged):
                    messages.append(self.alert(command.alert))
        for (site, window_id), command in windows.items():
            messages.append(self.window_state(site, command.window))
        for site in sorted(queues):
            messages.append(self.queue_state(site, now))
        return messages

    def window_state(self, site: str, window) -> Outbound:
        hall = self.engine.hall(site)
        body = wire.window_payload(window, self._tz[site], name=hall.window_name(window.window),
                                   staff_name=hall.staff_name(window.staff), staffing=hall.staffing(window.window))
        return Outbound(self.topics.window_state(site, window.window), wire.encode(body), retain=True)

    def alert(self, alert) -> Outbound:
        hall = self.engine.hall(alert.site)
        body = wire.alert_payload(alert, self._tz[alert.site], staff_name=hall.staff_name(alert.staff))
        return Outbound(self.topics.alerts(alert.site), wire.encode(body))

    def queue_state(self, site: str, now: float) -> Outbound:
        view = self.engine.hall(site).queue_view(now)
        return Outbound(self.topics.queue_state(site), wire.encode(wire.queue_payload(view, now, self._tz[site])),
                        retain=True)
