"""The protocol on the wire: topics, and JSON <-> typed events and outputs.

Decoding is strict where the protocol is strict (types, enums, lengths) and lenient where it
promises to grow (unknown optional fields are ignored), and every refusal names a reason
that an installer can act on. msgspec decodes straight into typed structs, so a bad field
is found in the same pass that parses the JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, Union, cast
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta, Struct

from .core import events as ev
from .core.alerts import ALERT_KINDS, Alert
from .core.commands import AnnounceCall, Reply, TicketSlip
from .core.hall import ServiceQueue
from .core.kinds import DeviceKind
from .core.model import WindowState

PROTOCOL_VERSION = 1
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
EventId = Annotated[str, Meta(min_length=1, max_length=64)]
Text = Annotated[str, Meta(min_length=1, max_length=64)]


class WireError(Exception):
    """A message the engine refuses; ``code`` goes to the rejected topic with ``reason``."""

    def __init__(self, code: str, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


# -- topics ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeviceTopic:
    site: str
    device: str
    channel: str  # status, heartbeat, event


CHANNELS = frozenset({"status", "heartbeat", "event"})


def parse_device_topic(topic: str, root: str) -> DeviceTopic:
    parts = topic.split("/")
    root_parts = root.split("/")
    n = len(root_parts)
    if len(parts) != n + 4 or parts[:n] != root_parts or parts[n + 1] != "dev" or parts[n + 3] not in CHANNELS:
        raise WireError("bad_topic", f"not a device topic: {topic}")
    site, device = parts[n], parts[n + 2]
    if not ID_RE.match(site) or not ID_RE.match(device):
        raise WireError("bad_topic", "site and device ids must match [a-z0-9][a-z0-9_-]{0,63}")
    return DeviceTopic(site, device, parts[n + 3])


class Topics:
    """Engine-side topic names for one root."""

    def __init__(self, root: str = "hallwatch"):
        self.root = root

    def subscriptions(self, site: str) -> list[str]:
        """What the engine reads: each device's status, heartbeat and event (not the
        replies it writes itself)."""
        return [f"{self.root}/{site}/dev/+/{channel}" for channel in ("status", "heartbeat", "event")]

    def device(self, site: str, device: str, channel: str) -> str:
        return f"{self.root}/{site}/dev/{device}/{channel}"

    def reply(self, site: str, device: str) -> str:
        return f"{self.root}/{site}/dev/{device}/reply"

    def call(self, site: str) -> str:
        return f"{self.root}/{site}/board/call"

    def window_state(self, site: str, window: str) -> str:
        return f"{self.root}/{site}/window/{window}/state"

    def queue_state(self, site: str) -> str:
        return f"{self.root}/{site}/queue/state"

    def alerts(self, site: str) -> str:
        return f"{self.root}/{site}/alerts"

    def rejected(self, site: str) -> str:
        return f"{self.root}/{site}/rejected"


# -- inbound: the event envelope, one struct per type -----------------------------------
class Envelope(Struct, tag_field="type", kw_only=True):
    v: int
    id: EventId
    ts: str | None = None
    # Any event may name its window; it must then be the sending device's own.
    window: Text | None = None


class WireTicketRequest(Envelope, tag="ticket.request"):
    service: Text
    priority: ev.Priority | None = None
    appointment: Annotated[str, Meta(max_length=64)] | None = None


class WireStaffLogin(Envelope, tag="staff.login"):
    staff: Text


class WireStaffLogout(Envelope, tag="staff.logout"):
    pass


class WireWindowPause(Envelope, tag="window.pause"):
    reason: ev.PauseReason


class WireWindowResume(Envelope, tag="window.resume"):
    pass


class WireCallNext(Envelope, tag="call.next"):
    pass


class WireCallPick(Envelope, tag="call.pick"):
    ticket: Text


class WireCallRecall(Envelope, tag="call.recall"):
    pass


class WireCallSkip(Envelope, tag="call.skip"):
    pass


class WireServiceStart(Envelope, tag="service.start"):
    pass


class WireServiceFinish(Envelope, tag="service.finish"):
    outcome: ev.Outcome


class WireTicketTransfer(Envelope, tag="ticket.transfer"):
    to_service: Text | None = None
    to_window: Text | None = None


class WirePresence(Envelope, tag="presence"):
    window: Text
    present: bool
    count: Annotated[int, Meta(ge=0, le=1000)]


class WireTamper(Envelope, tag="tamper"):
    kind: Literal["occluded", "moved", "video_lost", "restored"]


class WireRating(Envelope, tag="rating"):
    window: Text
    score: Annotated[int, Meta(ge=1, le=5)]
    ticket: Text | None = None


WIRE_TO_CORE: dict[type[Envelope], type[ev.Event]] = {
    WireTicketRequest: ev.TicketRequest,
    WireStaffLogin: ev.StaffLogin,
    WireStaffLogout: ev.StaffLogout,
    WireWindowPause: ev.WindowPause,
    WireWindowResume: ev.WindowResume,
    WireCallNext: ev.CallNext,
    WireCallPick: ev.CallPick,
    WireCallRecall: ev.CallRecall,
    WireCallSkip: ev.CallSkip,
    WireServiceStart: ev.ServiceStart,
    WireServiceFinish: ev.ServiceFinish,
    WireTicketTransfer: ev.TicketTransfer,
    WirePresence: ev.Presence,
    WireTamper: ev.Tamper,
    WireRating: ev.Rating,
}
# msgspec types a tag as str | int | None; every wire event above declares a string tag.
EVENT_TYPES: dict[type[ev.Event], str] = {
    core: cast(str, wire.__struct_config__.tag) for wire, core in WIRE_TO_CORE.items()
}
# The fields an event carries beyond the envelope, shared by the wire and core types.
_PAYLOAD_FIELDS = {
    wire: tuple(
        name
        for name in wire.__struct_fields__
        if name in core.__dataclass_fields__ and name not in ("site", "device", "id")
    )
    for wire, core in WIRE_TO_CORE.items()
}
_envelope_decoder = msgspec.json.Decoder(Union[tuple(WIRE_TO_CORE)])  # type: ignore[arg-type]  # noqa: UP007 (built)


class WireStatus(Struct):
    v: int
    state: Literal["online", "offline"]
    kind: DeviceKind | None = None
    window: Text | None = None
    fw: Annotated[str, Meta(max_length=64)] | None = None
    reason: Literal["lost", "shutdown"] | None = None


class WireHeartbeat(Struct):
    v: int
    seq: Annotated[int, Meta(ge=0)]
    uptime_s: Annotated[float, Meta(ge=0)] | None = None
    video: Literal["ok", "lost"] | None = None


_status_decoder = msgspec.json.Decoder(WireStatus)
_heartbeat_decoder = msgspec.json.Decoder(WireHeartbeat)


def _classify(exc: msgspec.ValidationError) -> WireError:
    text = str(exc)
    if "at `$.type`" in text or "Object missing required field `type`" in text:
        return WireError("unknown_type" if "Invalid value" in text else "missing_field", text)
    if "missing required field" in text:
        return WireError("missing_field", text)
    return WireError("bad_field", text)


def _decode(decoder: msgspec.json.Decoder, payload: bytes):
    try:
        message = decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise _classify(exc) from None
    except msgspec.DecodeError as exc:
        raise WireError("bad_json", str(exc)) from None
    if message.v != PROTOCOL_VERSION:
        raise WireError("unsupported_version", f"protocol version {message.v} is not supported (expected 1)")
    return message


def decode_event(payload: bytes, site: str, device: str) -> tuple[ev.Event, str | None]:
    """The typed event, and the window the message claims to speak for (if any)."""
    message = _decode(_envelope_decoder, payload)
    core_type = WIRE_TO_CORE[type(message)]
    values = {name: getattr(message, name) for name in _PAYLOAD_FIELDS[type(message)]}
    return core_type(site=site, device=device, id=message.id, **values), message.window


def decode_status(payload: bytes, site: str, device: str) -> ev.DeviceStatus:
    message = _decode(_status_decoder, payload)
    online = message.state == "online"
    return ev.DeviceStatus(
        site=site,
        device=device,
        id="",
        online=online,
        reason=None if online else (message.reason or "lost"),
        kind=message.kind,
        firmware=message.fw,
    )


def decode_heartbeat(payload: bytes, site: str, device: str) -> ev.Heartbeat:
    message = _decode(_heartbeat_decoder, payload)
    video_ok = None if message.video is None else message.video == "ok"
    return ev.Heartbeat(site=site, device=device, id="", seq=message.seq, video_ok=video_ok)


# -- outbound ----------------------------------------------------------------------------
_encoder = msgspec.json.Encoder()


def encode(obj: dict) -> bytes:
    return _encoder.encode(obj)


def iso(ts: float | None, tz: ZoneInfo) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="milliseconds")


def reply_payload(reply: Reply, tz: ZoneInfo, *, token: str | None = None, url: str | None = None) -> dict:
    """``token`` and ``url``: a new ticket's token and the slip's link (tickettoken.py),
    added to its ``ticket`` only when the engine has them (older kiosks ignore them)."""
    body: dict = {"v": 1, "re": reply.re, "ok": reply.ok}
    if isinstance(reply.ticket, TicketSlip):
        slip = reply.ticket
        body["ticket"] = {
            "no": slip.no,
            "service": slip.service,
            "issued_at": iso(slip.issued_at, tz),
            "ahead": slip.ahead,
            "eta_min": slip.eta_min,
        }
        if token is not None:
            body["ticket"]["token"] = token
        if url is not None:
            body["ticket"]["url"] = url
    elif reply.ticket is not None:
        body["ticket"] = reply.ticket
    if not reply.ok:
        body["error"] = reply.error
        body["message"] = reply.message
    return body


def call_payload(call: AnnounceCall, tz: ZoneInfo) -> dict:
    """``n``: the ticket's call count with this call: (ticket, n) names a call, so a board
    that receives a repeated publication announces it once."""
    return {
        "v": 1,
        "ticket": call.ticket,
        "window": call.window,
        "window_name": call.window_name,
        "at": iso(call.at, tz),
        "recall": call.recall,
        "n": call.n,
    }


def window_payload(window: WindowState, tz: ZoneInfo, *, name: str, staff_name: str | None, staffing: str) -> dict:
    """``staffing``: closed, paused, staffed, unstaffed, or unverified (no working camera)."""
    return {
        "v": 1,
        "window": window.window,
        "window_name": name,
        "state": window.phase.value,
        "staffing": staffing,
        "staff": window.staff,
        "staff_name": staff_name,
        "ticket": window.ticket,
        "pause_reason": window.pause_reason.value if window.pause_reason else None,
        "paused_since": iso(window.paused_at, tz),
        "served_today": window.served_today,
        "present": window.present,
    }


def queue_payload(view: list[ServiceQueue], now: float, tz: ZoneInfo) -> dict:
    return {
        "v": 1,
        "at": iso(now, tz),
        "waiting": sum(s.waiting for s in view),
        "services": [
            {
                "service": s.code,
                "name": s.name,
                "prefix": s.prefix,
                "waiting": s.waiting,
                "priority_waiting": s.priority_waiting,
                "oldest_wait_s": round(s.oldest_wait_s, 1),
                "eta_min": s.eta_min,
                "open_windows": s.open_windows,
            }
            for s in view
        ],
    }


def alert_payload(alert: Alert, tz: ZoneInfo, *, staff_name: str | None = None) -> dict:
    """``seq``: the site's alert-transition number (each transition one more than the last),
    so that a subscriber can drop a repeated publication and notice a missing one;
    ``audience``: who acts on it (supervision, manager or it)."""
    detail = {
        key: iso(value, tz) if key.endswith("_at") and isinstance(value, (int, float)) else value
        for key, value in alert.detail.items()
    }
    return {
        "v": 1,
        "id": alert.id,
        "seq": alert.seq,
        "kind": alert.kind.value,
        "audience": ALERT_KINDS[alert.kind].audience.value,
        "severity": alert.severity,
        "state": alert.state.value,
        "site": alert.site,
        "window": alert.window,
        "device": alert.device,
        "staff": alert.staff,
        "staff_name": staff_name,
        "since": iso(alert.since, tz),
        "until": iso(alert.until, tz),
        "duration_s": None if alert.duration_s is None else round(alert.duration_s, 1),
        "acknowledged_at": iso(alert.acknowledged_at, tz),
        "acknowledged_by": alert.acknowledged_by,
        "note": alert.note,
        "due": iso(alert.due, tz),
        "overdue": alert.overdue,
        "detail": detail,
    }


def rejection_payload(topic: str, code: str, reason: str, payload: bytes) -> dict:
    return {
        "v": 1,
        "topic": topic,
        "error": code,
        "reason": reason,
        "payload": payload[:256].decode("utf-8", errors="replace"),
    }
