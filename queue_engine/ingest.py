"""From a received MQTT message to what must be stored and then published.

This is the engine's application layer, free of IO: the MQTT shell hands it
``(topic, payload, now)``; it validates, authorises, deduplicates, drives the core and
returns a ``Processed`` record (``records``). The store commits a batch of those in one
transaction and only then does the shell publish what ``outputs.Outputs`` rendered from
them and acknowledge them.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from hashlib import blake2b
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from . import wire
from .core import events as ev
from .core.commands import Command, Reply, TicketSlip
from .core.engine import Engine
from .core.errors import MESSAGES, ErrorCode
from .core.kinds import DEVICE_KINDS
from .records import EventRecord, Outbound, Processed, Rejection
from .tickettoken import TicketLinks

if TYPE_CHECKING:
    from .config import Site

log = logging.getLogger("hallwatch.ingest")

# Reports whose sender waits for no answer: no reply is published for them (every other
# event is answered on the device's reply topic).
NO_REPLY = (ev.Presence, ev.Tamper, ev.DeviceStatus, ev.Heartbeat)
DEDUPE_RETENTION_S = 2 * 86400.0
# A device message may carry at most this much (the protocol's largest event is a few hundred
# bytes; the broker refuses far larger ones itself, broker_config/conf.d/tuning.conf).
MAX_MESSAGE_BYTES = 4096
# A repeated event id is a resend of the same request (answered as the first time) only if
# the content is the same and it comes within this time of the first, or the broker marks it
# as redelivered (DUP). Otherwise the id has been reused, and answering with another
# request's reply (yesterday's ticket) would lie.
RETRY_WINDOW_S = 600.0


class Seen(NamedTuple):
    at: float
    digest: str
    reply: bytes | None


class Deduplicator:
    """Remembers (site, device, id) -> when, the content's digest and the reply given, so a
    redelivered event is answered the same way and applied once. Seeded from the event log
    at start-up."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str, str], Seen] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def get(self, key: tuple[str, str, str]) -> Seen | None:
        return self._seen.get(key)

    def remember(self, key: tuple[str, str, str], at: float, digest: str, reply: bytes | None) -> None:
        self._seen[key] = Seen(at, digest, reply)

    def forget_before(self, cutoff: float) -> None:
        while self._seen:
            key, seen = next(iter(self._seen.items()))
            if seen.at >= cutoff:
                break
            self._seen.popitem(last=False)


_encode_fields = msgspec.json.Encoder().encode


def event_digest(event: ev.Event) -> str:
    """The content of an event (its type and fields; not the device's informational ``ts``),
    hashed: the same request sent again has the same digest."""
    return blake2b(type(event).__name__.encode() + _encode_fields(event), digest_size=8).hexdigest()


class Ingest:
    def __init__(
        self, engine: Engine, sites: Iterable[Site], topics: wire.Topics, *, ticket_secret: bytes | None = None
    ):
        """``ticket_secret``: signs the tokens of new tickets' replies (tickettoken.py)."""
        self.engine = engine
        self.sites = {s.id: s for s in sites}
        self.topics = topics
        self.links = TicketLinks(ticket_secret, {s.id: s.web.public_url or None for s in self.sites.values()})
        self.dedupe = Deduplicator()
        self._devices = {(s.id, d.id): d for s in self.sites.values() for d in s.devices}
        self._tz = {s.id: s.tz for s in self.sites.values()}

    def process(self, topic: str, payload: bytes, now: float, *, redelivered: bool = False) -> Processed:
        """``redelivered``: the broker sent it again (MQTT DUP), after the engine received it
        once and did not acknowledge it (it stopped before its commit was acknowledged)."""
        try:
            where = wire.parse_device_topic(topic, self.topics.root)
        except wire.WireError as err:
            return self._reject(self._site_in(topic), None, topic, err.code, err.reason, payload, now)
        site, device_id = where.site, where.device
        if site not in self.sites:
            return self._reject(
                None, device_id, topic, "unknown_site", f"this engine does not serve site {site!r}", payload, now
            )
        device = self._devices.get((site, device_id))
        if device is None:
            return self._reject(
                site,
                device_id,
                topic,
                "unknown_device",
                f"device {device_id!r} is not configured for site {site!r}",
                payload,
                now,
            )
        if len(payload) > MAX_MESSAGE_BYTES:
            return self._reject(
                site,
                device_id,
                topic,
                "too_large",
                f"{len(payload)} bytes; a device message may carry at most {MAX_MESSAGE_BYTES}",
                payload,
                now,
            )
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
        if not isinstance(event, ev.LIVENESS_EVENTS) and type(event) not in DEVICE_KINDS[device.kind].events:
            return self._reject(
                site,
                device_id,
                topic,
                "not_allowed",
                f"a {kind} may not send {wire.EVENT_TYPES[type(event)]}",
                payload,
                now,
            )
        if claimed_window is not None and claimed_window != device.window:
            own = f"its own window is {device.window!r}" if device.window else "it has no window"
            return self._reject(
                site,
                device_id,
                topic,
                "wrong_window",
                f"{device_id} may not speak for window {claimed_window!r}; {own}",
                payload,
                now,
            )

        if isinstance(event, ev.LIVENESS_EVENTS):
            return Processed(at=now, site=site, commands=self.engine.handle(event, now))
        return self._apply(
            event,
            now,
            payload.decode("utf-8", errors="replace"),
            topic=topic,
            raw=payload,
            redelivered=redelivered,
            answer=not isinstance(event, NO_REPLY),
        )

    def process_event(
        self, event: ev.Event, now: float, *, reply_topic: str | None = None, resend: bool = False
    ) -> Processed:
        """An event that did not come over MQTT (a phone ticket, an operator's action): the
        same deduplication, core and event log; ``result`` is the core's reply, if any.
        ``reply_topic``: also publish the reply there (the county's requests). ``resend``: the
        sender gives every request an id of its own, so the same id with the same content is
        its resend however late (within the deduplication's memory), answered the same."""
        payload = wire.encode(
            {
                "type": wire.EVENT_TYPES.get(type(event), type(event).__name__),
                **{k: getattr(event, k) for k in event.__dataclass_fields__},
            }
        )
        return self._apply(
            event,
            now,
            payload.decode(),
            topic=None,
            raw=payload,
            redelivered=resend,
            answer=reply_topic is not None,
            reply_topic=reply_topic,
        )

    def _apply(
        self,
        event: ev.Event,
        now: float,
        text: str,
        *,
        topic: str | None,
        raw: bytes,
        redelivered: bool,
        answer: bool,
        reply_topic: str | None = None,
    ) -> Processed:
        """Deduplicate, hand to the core, and record. ``answer``: publish the reply to
        ``reply_topic``, by default the device's reply topic (MQTT devices that wait for one)."""
        site, device_id = event.site, event.device
        key = (site, device_id, event.id)
        digest = event_digest(event)
        seen = self.dedupe.get(key)
        reply_topic = reply_topic or self.topics.reply(site, device_id)
        if seen is not None:
            # (an event logged before digests were kept has none: its id is trusted)
            if seen.digest in (digest, "") and (redelivered or now - seen.at <= RETRY_WINDOW_S):
                # Redelivered, or resent by the device: answer as the first time, apply nothing.
                resent = (
                    Outbound(reply_topic, seen.reply, site=site, kind="reply")
                    if answer and seen.reply is not None
                    else None
                )
                return Processed(at=now, site=site, duplicate=True, reply=resent)
            return self._refuse_reused(event, now, seen, digest, topic, raw, answer, reply_topic)
        commands = self.engine.handle(event, now)
        reply = next((c for c in commands if isinstance(c, Reply) and c.re == event.id and c.device == device_id), None)
        reply_bytes = wire.encode(self._reply_message(reply)) if reply is not None else None
        self.dedupe.remember(key, now, digest, reply_bytes)
        record = EventRecord(
            site,
            device_id,
            event.id,
            wire.EVENT_TYPES.get(type(event), type(event).__name__),
            now,
            text,
            reply.error if reply is not None and not reply.ok else None,
            reply_bytes.decode("utf-8") if reply_bytes is not None else None,
            digest,
        )
        return Processed(
            at=now,
            site=site,
            commands=commands,
            event=record,
            result=reply,
            reply=Outbound(reply_topic, reply_bytes, site=site, kind="reply")
            if answer and reply_bytes is not None
            else None,
        )

    def _reply_message(self, reply: Reply) -> wire.WireReplyOk | wire.WireReplyFailure:
        """The reply as sent; a new ticket's carries its token and the slip's link, a new case's
        its token and its page's link. Rendered
        once and kept with the event, so a resend is answered with the same link."""
        token = url = case_token = case_url = None
        if isinstance(reply.ticket, TicketSlip):
            token, url = self.links.link(reply.site, reply.ticket.day, reply.ticket.no)
        if reply.case is not None and reply.due_day is not None:  # (a reply that opened the case)
            case_token, case_url = self.links.case_link(reply.site, reply.case)
        return wire.reply_message(
            reply, self._tz[reply.site], token=token, url=url, case_token=case_token, case_url=case_url
        )

    def _refuse_reused(
        self,
        event: ev.Event,
        now: float,
        seen: Seen,
        digest: str,
        topic: str | None,
        raw: bytes,
        answer: bool,
        reply_topic: str,
    ) -> Processed:
        """The same id for other content, or long after the first: never answer with the
        reply of another request. Refused, with a reply saying why, and recorded."""
        same = seen.digest == digest
        reason = (
            f"event id {event.id!r} was used {now - seen.at:.0f} s ago "
            + ("for the same content, longer ago than a resend" if same else "for a different request")
            + "; a device must give every new request a new id"
        )
        log.warning("rejected %s from %s: id_reused (%s)", topic or "event", event.device, reason)
        refusal = Reply(
            site=event.site,
            device=event.device,
            re=event.id,
            ok=False,
            error=ErrorCode.ID_REUSED,
            message=MESSAGES[ErrorCode.ID_REUSED],
        )
        reply_bytes = wire.encode(wire.reply_payload(refusal, self._tz[event.site]))
        return Processed(
            at=now,
            site=event.site,
            result=refusal,
            reply=Outbound(reply_topic, reply_bytes, site=event.site, kind="reply") if answer else None,
            rejection=Rejection(
                site=event.site,
                device=event.device,
                topic=topic or f"(web) {event.site}/{event.device}",
                code="id_reused",
                reason=reason,
                payload=bytes(raw[:256]),
                at=now,
            ),
        )

    def notify(self, event: ev.Event, now: float) -> Processed:
        """An event the engine raises about itself (its broker link, its own stalls): the
        core hears it; nothing is logged as a device's event."""
        return Processed(at=now, site=event.site, commands=self.engine.handle(event, now))

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
        return Processed(
            at=now,
            site=site,
            commands=commands,
            rejection=Rejection(
                site=site, device=device, topic=topic, code=code, reason=reason, payload=bytes(payload[:256]), at=now
            ),
        )
