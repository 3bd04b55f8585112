"""The protocol on the wire: topics, and JSON <-> typed events and outputs.

Decoding is strict where the protocol is strict (types, enums, lengths) and lenient where it
promises to grow (unknown optional fields are ignored), and every refusal names a reason
that an installer can act on. msgspec decodes straight into typed structs, so a bad field
is found in the same pass that parses the JSON.

Every message on the wire, both ways, is a struct here: the engine's messages are built from
theirs, and the JSON Schemas of the machine-readable protocol (docs/asyncapi.yaml, made by
``queue_engine.asyncapi``) are generated from all of them, docstrings included, so the
document says what the code does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Union, cast
from zoneinfo import ZoneInfo

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from .core import events as ev
from .core.alerts import ALERT_KINDS, Alert, AlertKind, AlertState, Audience
from .core.commands import AnnounceCall, Reply, TicketSlip
from .core.errors import ErrorCode
from .core.hall import ServiceQueue
from .core.kinds import DeviceKind
from .core.model import Staffing, WindowPhase, WindowState

PROTOCOL_VERSION = 1
ID_PATTERN = "^[a-z0-9][a-z0-9_-]{0,63}$"  # site, device, window and staff ids
ID_RE = re.compile(ID_PATTERN)
EventId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        description="Unique per device, across its restarts: the engine applies a (device, id) once, "
        "and answers a resend of the same request with the same reply.",
    ),
]
Text = Annotated[str, Meta(min_length=1, max_length=64)]
Note = Annotated[str, Meta(max_length=500)]
# 一次性告知: the guide's materials that were missing, by number (1 = the first) or by name.
Missing = Annotated[
    tuple[Annotated[int, Meta(ge=1, le=100)] | Annotated[str, Meta(min_length=1, max_length=100)], ...],
    Meta(max_length=50),
]
# The version is checked after decoding, so that another version is refused as
# ``unsupported_version`` rather than as a bad field; the schema states the one accepted.
Version = Annotated[
    int,
    Meta(description="Protocol version; any other is refused (unsupported_version).", extra_json_schema={"const": 1}),
]
Timestamp = Annotated[
    str,
    Meta(
        description="ISO-8601 with the site's UTC offset, from the engine's clock.",
        extra_json_schema={"format": "date-time"},
    ),
]


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
        replies it writes itself), and the county service's requests about the site."""
        return [f"{self.root}/{site}/dev/+/{channel}" for channel in ("status", "heartbeat", "event")] + [
            self.control(site, "+")
        ]

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

    def device_state(self, site: str, device: str) -> str:
        return f"{self.root}/{site}/device/{device}/state"

    def control(self, site: str, request: str) -> str:
        """A request of the county service to the engine that owns ``site`` (CONTROL_REQUESTS)."""
        return f"{self.root}/{site}/control/{request}"

    def control_reply(self, site: str, request: str) -> str:
        return f"{self.root}/{site}/control/{request}/reply"

    def figures(self, site: str) -> str:
        """The site's figures of its latest finished day (retained)."""
        return f"{self.root}/{site}/figures/day"


# What the county service may ask of an engine (docs/protocol.md, "The county service").
CONTROL_REQUESTS = ("replay", "acknowledge", "figures")


def parse_control_topic(topic: str, root: str) -> tuple[str, str] | None:
    """(site, request) of a control request topic, or None if ``topic`` is not one."""
    parts = topic.split("/")
    n = len(root.split("/"))
    if len(parts) == n + 3 and "/".join(parts[:n]) == root and parts[n + 1] == "control":
        return parts[n], parts[n + 2]
    return None


# -- inbound: the event envelope, one struct per type -----------------------------------
class Envelope(Struct, tag_field="type", kw_only=True):
    """What every event carries; ``type`` names the event and the fields it adds."""

    v: Version
    id: EventId
    ts: Annotated[str, Meta(description="The device's clock, informational: timing uses the engine's.")] | None = None
    # Any event may name its window; it must then be the sending device's own.
    window: Text | None = None


class WireTicketRequest(Envelope, tag="ticket.request"):
    """A citizen takes a number (``priority``: the green channel; ``appointment``: a booking's reference)."""

    service: Text
    priority: ev.Priority | None = None
    appointment: Annotated[str, Meta(max_length=64)] | None = None


class WireTicketCheckIn(Envelope, tag="ticket.checkin"):
    """A citizen who took a number with a phone is at the hall: the reservation's check-in code,
    typed at the kiosk. The reply carries the slip (the ticket now waits); ``unknown_reservation``
    when no reserved ticket has that code (a mistyped code, or the reservation expired)."""

    code: Annotated[str, Meta(pattern="^[0-9]{6}$", description="the six-digit check-in code the phone shows")]


class WireStaffLogin(Envelope, tag="staff.login"):
    """A staff member signs in at this window."""

    staff: Text


class WireStaffLogout(Envelope, tag="staff.logout"):
    """The staff member signs out."""


class WireWindowPause(Envelope, tag="window.pause"):
    """The window closes for a while, with a declared reason; ``case``: the case a fieldwork
    pause is for (a home visit), which is then never a pause overrun."""

    reason: ev.PauseReason
    case: Text | None = None  # (optional: a panel that sends only the reason pauses as before)


class WireWindowResume(Envelope, tag="window.resume"):
    """The window is open again."""


class WireCallNext(Envelope, tag="call.next"):
    """Call the next ticket this window may serve (the reply names it)."""


class WireCallPick(Envelope, tag="call.pick"):
    """Call one waiting ticket (or a no-show of the same day who came back)."""

    ticket: Text


class WireCallRecall(Envelope, tag="call.recall"):
    """Announce the current ticket again."""


class WireCallSkip(Envelope, tag="call.skip"):
    """The current ticket did not come (no-show)."""


class WireServiceStart(Envelope, tag="service.start"):
    """The citizen arrived; service begins."""


class WireServiceFinish(Envelope, tag="service.finish"):
    """Service ended: done (办结), accepted (受理), informed (一次性告知), proxy (帮办代办) or failed (办不成)."""

    outcome: ev.Outcome
    # (each optional: a panel that sends only the outcome finishes as before; docs/protocol.md)
    citizen: Text | None = None
    refer: Text | None = None
    missing: Missing = ()
    passed_to: Text | None = None
    agent: Text | None = None


class WireTicketTransfer(Envelope, tag="ticket.transfer"):
    """Hand the current ticket on to a service or a window (one of the two), keeping its place."""

    to_service: Text | None = None
    to_window: Text | None = None


class WirePriorityVerify(Envelope, tag="priority.verify"):
    """The staff member at this window has seen the citizen of ``ticket``, who asked for the
    green channel with a phone: ``confirm`` true grants it (the ticket moves to the priority
    lane at its place), false refuses it. ``no_priority_claim`` when none waits for a verdict."""

    ticket: Text
    confirm: bool


class WireCaseEvent(Envelope, kw_only=True):
    """What every case event carries (not itself an event type)."""

    case: Text
    note: Note = ""


class WireCaseNote(WireCaseEvent, tag="case.note"):
    pass


class WireCasePassOn(WireCaseEvent, kw_only=True, tag="case.pass"):
    to: Text


class WireCaseComplete(WireCaseEvent, kw_only=True, tag="case.complete"):
    result: Annotated[str, Meta(min_length=1, max_length=500)]


class WireCaseReturn(WireCaseEvent, tag="case.return"):
    pass


class WireCaseWithdraw(WireCaseEvent, tag="case.withdraw"):
    pass


class WireCaseOpen(Envelope, kw_only=True, tag="case.open"):
    """A 帮办代办 case taken on without a queue ticket by the staff member signed in (a village
    代办员's home visit, 上门办理 when ``home``); the reply carries its number."""

    service: Text
    citizen: Text | None = None
    passed_to: Text | None = None
    home: bool = True
    note: Note = ""


class WirePresence(Envelope, tag="presence"):
    """Staff presence at a window's seat, on every change and after every heartbeat."""

    window: Text
    present: bool
    count: Annotated[int, Meta(ge=0, le=1000)]


class WireTamper(Envelope, tag="tamper"):
    """The camera's integrity (occluded, moved, video lost; restored when it is whole again)."""

    kind: Literal["occluded", "moved", "video_lost", "restored"]


class WireRating(Envelope, tag="rating"):
    """A rating (好差评), 5 非常满意 … 1 非常不满意, for the visit just served (or ``ticket``); for
    2 不满意 and 1 非常不满意 the citizen may add reasons (the national 好差评 categories) and a comment."""

    window: Text
    score: Annotated[int, Meta(ge=1, le=5)]
    ticket: Text | None = None
    reasons: Annotated[tuple[ev.RatingReason, ...], Meta(max_length=10)] = ()
    comment: Annotated[str, Meta(max_length=200)] = ""


WIRE_TO_CORE: dict[type[Envelope], type[ev.Event]] = {
    WireTicketRequest: ev.TicketRequest,
    WireTicketCheckIn: ev.TicketCheckIn,
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
    WirePriorityVerify: ev.PriorityVerify,
    WireCaseNote: ev.CaseNote,
    WireCasePassOn: ev.CasePassOn,
    WireCaseComplete: ev.CaseComplete,
    WireCaseReturn: ev.CaseReturn,
    WireCaseWithdraw: ev.CaseWithdraw,
    WireCaseOpen: ev.CaseOpen,
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
    """Retained: ``online`` (with ``kind``) on connecting; ``offline`` with ``reason`` ``shutdown`` before an orderly
    power-off, or ``lost``: the Last Will the broker publishes when the connection dies."""

    v: Version
    state: Literal["online", "offline"]
    kind: DeviceKind | None = None
    window: Text | None = None
    fw: Annotated[str, Meta(max_length=64)] | None = None
    reason: Literal["lost", "shutdown"] | None = None


class WireHeartbeat(Struct):
    """Every ``heartbeat_s`` (default 10 s) while online; a camera adds ``video``."""

    v: Version
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


# -- outbound: every message the engine publishes --------------------------------------
# What a message refused by the engine is refused for (docs/protocol.md explains each).
RejectionCode = Literal[
    "bad_topic",
    "unknown_site",
    "unknown_device",
    "bad_json",
    "unsupported_version",
    "unknown_type",
    "missing_field",
    "bad_field",
    "not_allowed",
    "wrong_window",
    "too_large",
    "id_reused",
]
Severity = Literal["warning", "critical"]


class WireTicketSlip(Struct, kw_only=True):
    """The number a ticket request was given, as the kiosk prints it."""

    no: Annotated[str, Meta(description="the number, e.g. A012: the service's prefix and a daily count")]
    service: str
    issued_at: Timestamp
    ahead: Annotated[int, Meta(ge=0, description="tickets before this one")]
    eta_min: Annotated[int, Meta(ge=0, description="expected wait, minutes")]
    token: Annotated[str, Meta(description="the ticket's token: opens the slip's page without a login")] | UnsetType = (
        UNSET
    )
    url: Annotated[str, Meta(description="the slip's link, {public_url}/t/{site}/{token}")] | UnsetType = UNSET


class WireReplyOk(Struct, kw_only=True):
    """The event ``re`` was applied. A ticket request's reply carries the slip; a call's, a
    service start's and a transfer's the ticket's number."""

    v: Version
    re: Annotated[str, Meta(description="the id of the event answered")]
    ok: Literal[True]
    ticket: WireTicketSlip | str | UnsetType = UNSET
    case: (
        Annotated[str, Meta(description="the case (办件) a finished visit opened, or the case a case event changed")]
        | UnsetType
    ) = UNSET
    notice: Annotated[str, Meta(description="the 一次性告知书 a finished visit was given")] | UnsetType = UNSET
    service: (
        Annotated[str, Meta(description="the service of the case or 一次性告知书 this reply opened")] | UnsetType
    ) = UNSET
    due_day: (
        Annotated[str, Meta(description="the case this reply opened: its due day (local date, YYYY-MM-DD)")] | UnsetType
    ) = UNSET
    case_token: (
        Annotated[str, Meta(description="the case this reply opened: its token (the phone page /case/{site}/{token})")]
        | UnsetType
    ) = UNSET
    case_url: (
        Annotated[str, Meta(description="the case this reply opened: its phone page, for the case slip's QR code")]
        | UnsetType
    ) = UNSET
    missing: (
        Annotated[list[str], Meta(description="the 一次性告知书 this reply issued: the guide's materials missing")]
        | UnsetType
    ) = UNSET
    routed_to: (
        Annotated[str, Meta(description="办不成: the 办不成事 window the visit went on to, keeping its place")]
        | UnsetType
    ) = UNSET


class WireReplyFailure(Struct, kw_only=True):
    """The event ``re`` was refused and changed nothing; ``message`` is for the panel's screen."""

    v: Version
    re: Annotated[str, Meta(description="the id of the event answered")]
    ok: Literal[False]
    error: ErrorCode
    message: Annotated[str, Meta(description="Chinese, for the device's screen")]


class WireCall(Struct, kw_only=True):
    """A ticket called to a window, for the boards to show and announce. ``n`` is the ticket's
    call count with this call: the same (ticket, n) received twice is one call."""

    v: Version
    ticket: str
    window: str
    window_name: str
    at: Timestamp
    recall: bool
    n: Annotated[int, Meta(ge=1)]


class WireWindowState(Struct, kw_only=True):
    """A window as it is now (retained): its phase, who is signed in, its current ticket, and
    ``staffing`` for supervision (unverified: no working camera can tell)."""

    v: Version
    window: str
    window_name: str
    state: WindowPhase
    staffing: Staffing
    staff: str | None
    staff_name: str | None
    ticket: str | None
    pause_reason: ev.PauseReason | None
    paused_since: Timestamp | None
    served_today: Annotated[int, Meta(ge=0)]
    present: Annotated[bool | None, Meta(description="the camera sees somebody at the seat; null: no report yet")]


class WireServiceQueue(Struct, kw_only=True):
    """One service's queue."""

    service: str
    name: str
    prefix: str
    waiting: Annotated[int, Meta(ge=0)]
    priority_waiting: Annotated[int, Meta(ge=0)]
    oldest_wait_s: Annotated[float, Meta(ge=0)]
    eta_min: Annotated[int, Meta(ge=0)]
    open_windows: Annotated[int, Meta(ge=0)]


class WireQueueState(Struct, kw_only=True):
    """The site's queues as they are now (retained)."""

    v: Version
    at: Timestamp
    waiting: Annotated[int, Meta(ge=0)]
    services: list[WireServiceQueue]


class WireAlert(Struct, kw_only=True):
    """One transition of an alert (firing, acknowledged, resolved). ``seq`` numbers the site's
    transitions, each one more than the last: the same ``seq`` received twice is one message,
    a gap is a missed one. ``audience``: who acts on it. ``staff``: who was signed in at the
    window when it fired."""

    v: Version
    id: str
    seq: Annotated[int, Meta(ge=0)]
    kind: AlertKind
    audience: Audience
    # (a default, so that an engine of an earlier release, which sends none, is still read)
    audiences: Annotated[
        list[Audience],
        Meta(description="every one who acts on it: audience first (case_overdue: manager, supervision)"),
    ] = []
    severity: Severity
    state: AlertState
    site: str
    window: str | None
    device: str | None
    staff: str | None
    staff_name: str | None
    since: Timestamp
    until: Timestamp | None
    duration_s: Annotated[float, Meta(ge=0)] | None
    acknowledged_at: Timestamp | None
    acknowledged_by: str | None
    note: str | None
    due: Annotated[
        Timestamp | None, Meta(description="follow-up deadline (bad ratings); a case's due moment (case_overdue)")
    ]
    overdue: bool
    detail: Annotated[dict[str, Any], Meta(description="the kind's particulars; times in keys ending in _at")]
    # (added later: absent from an engine of an earlier release)
    store_id: Annotated[
        str | None,
        Meta(
            description="the engine store whose numbering seq follows: a new one (a store made anew) starts again at 1"
        ),
    ] = None


class WireRejection(Struct, kw_only=True):
    """A message the engine refused, and why: nothing of it was applied."""

    v: Version
    topic: str
    error: RejectionCode
    reason: Annotated[str, Meta(description="what is wrong, e.g. the field at fault")]
    payload: Annotated[str, Meta(description="the message's first 256 bytes, as text")]


class WireDeviceState(Struct, kw_only=True):
    """A device as the engine judges it (retained), published when it goes online or offline:
    offline with why (``lost``: its Last Will; ``silent``: no heartbeat beyond its timeout;
    ``shutdown``: switched off in order)."""

    v: Version
    device: str
    kind: DeviceKind
    window: str | None
    online: Annotated[bool | None, Meta(description="null: not heard from since the engine started")]
    reason: Literal["lost", "silent", "shutdown"] | None
    since: Annotated[Timestamp | None, Meta(description="offline since")]
    tamper: Annotated[str | None, Meta(description="the camera's integrity fault: occluded, moved, video_lost")]
    video_ok: bool


class WireReplayRequest(Struct, kw_only=True):
    """The county service asks for the site's alerts whose latest transition is numbered
    above ``after`` (it missed some): answered on the request's reply topic."""

    v: Version
    id: Text
    after: Annotated[int, Meta(ge=0)]


class WireAlertReplay(Struct, kw_only=True):
    """Part ``part`` of ``parts`` of the answer to replay request ``re``: the current version of
    every alert whose latest transition is numbered in (``after``, ``to``], open ones and those
    resolved in the last days. Together the parts cover every number up to ``to``: a subscriber
    that has them has missed nothing up to there."""

    v: Version
    re: str
    after: Annotated[int, Meta(ge=0)]
    to: Annotated[int, Meta(ge=0)]
    part: Annotated[int, Meta(ge=1)]
    parts: Annotated[int, Meta(ge=1)]
    alerts: list[WireAlert]
    store_id: Annotated[str | None, Meta(description="the engine store answering (as in WireAlert)")] = None


class WireAcknowledgeRequest(Struct, kw_only=True):
    """The county service acknowledges an alert at the engine that owns it, for the county
    operator ``by``: the engine applies it as its manager console's acknowledgement would, as
    ``county:{by}`` at the time it applies it, and answers on the request's reply topic (the
    device reply format: ``re`` is ``id``). ``id`` names this acknowledgement: the same request
    sent again is answered the same and applied once."""

    v: Version
    id: EventId
    alert: Text
    by: Annotated[str, Meta(max_length=32, description="the county operator's name")] = ""
    note: Annotated[str, Meta(max_length=500)] = ""
    store_id: Annotated[
        str | None,
        Meta(description="the engine store the alert is known from (WireAlert): refused (unknown_alert) by another"),
    ] = None


class WireControlAnswer(Struct, kw_only=True):
    """An engine's answer to a request that changes something (WireReplyOk or
    WireReplyFailure), as the county service reads it."""

    v: Version
    re: str
    ok: bool
    error: ErrorCode | None = None
    message: str = ""


class WireFiguresRequest(Struct, kw_only=True):
    """The county service asks for the site's figures of every finished day after ``after``
    (default: the last seven), at most 62 days: each is answered as a WireDayFigures on the
    request's reply topic."""

    v: Version
    id: Text
    after: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None


class WireSubjectDay(Struct, kw_only=True):
    """A window or staff member's day: service, time staffed and 空岗 by category (minutes)."""

    id: str
    name: str
    served: int
    staffed_min: float
    not_opened_min: float
    unstaffed_min: float
    unverified_min: float
    ratings: int
    satisfied_pct: float | None


class WireDeviceDay(Struct, kw_only=True):
    device: str
    kind: str
    window: str
    offline_min: float


class WireCasesDay(Struct, kw_only=True):
    """办件 opened that day (the site report's case figures of the day), and what became of them
    as of the figures' ``as_of``; the 一次性告知 given that day."""

    opened: int
    completed: Annotated[int, Meta(description="办结 by as_of")]
    on_time: Annotated[int, Meta(description="completed by the end of their due day")]
    overdue: Annotated[int, Meta(description="closed after their due day, or still open after it at as_of")]
    still_open: int
    unresolved: Annotated[int, Meta(description="办不成事 兜底 cases opened")]
    unresolved_completed: int
    notices: Annotated[int, Meta(description="一次性告知 given")]
    breaches: Annotated[int, Meta(description="of them, a second 告知 in the same matter")]


class WireDayFigures(Struct, kw_only=True):
    """A site's figures of one local day, from the engine's store (the site report's, for that
    day): tickets, waits, 空岗 minutes by category, device downtime, 好差评, follow-ups of bad
    ratings, alerts, 办件. ``final``: the day is over at the engine (else: so far). The same day sent
    again replaces what was had: nothing is counted twice."""

    v: Version
    site: str
    day: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    final: bool
    as_of: Timestamp
    issued: int
    served: int
    no_shows: int
    expired: int
    transferred: int
    wait_mean_min: float | None
    wait_p90_min: float | None
    wait_max_min: float | None
    within_target_pct: float | None
    vacancy_min: Annotated[dict[str, float], Meta(description="空岗 minutes: not_opened, unstaffed, unverified")]
    windows: list[WireSubjectDay]
    staff: list[WireSubjectDay]
    device_offline_min: float
    devices: Annotated[list[WireDeviceDay], Meta(description="devices offline some of the day")]
    ratings: Annotated[dict[str, int], Meta(description="好差评 ratings by score, 1 to 5")]
    satisfied_pct: float | None
    bad_ratings: int
    follow_ups_overdue: Annotated[int, Meta(description="bad ratings of the day whose follow-up is overdue")]
    alerts: Annotated[dict[str, int], Meta(description="alerts fired that day, by kind")]
    # (added with 办件: absent from an engine that predates them)
    cases: WireCasesDay | None = None
    store_id: Annotated[str | None, Meta(description="the engine store they were read from (as in WireAlert)")] = None


_replay_request_decoder = msgspec.json.Decoder(WireReplayRequest)
_figures_request_decoder = msgspec.json.Decoder(WireFiguresRequest)
_acknowledge_request_decoder = msgspec.json.Decoder(WireAcknowledgeRequest)


def decode_replay_request(payload: bytes) -> WireReplayRequest:
    return cast(WireReplayRequest, _decode(_replay_request_decoder, payload))


def decode_figures_request(payload: bytes) -> WireFiguresRequest:
    return cast(WireFiguresRequest, _decode(_figures_request_decoder, payload))


def decode_acknowledge_request(payload: bytes) -> WireAcknowledgeRequest:
    return cast(WireAcknowledgeRequest, _decode(_acknowledge_request_decoder, payload))


_encoder = msgspec.json.Encoder()


def encode(obj: dict | Struct) -> bytes:
    return _encoder.encode(obj)


def iso(ts: float | None, tz: ZoneInfo) -> str | None:
    return None if ts is None else stamp(ts, tz)


def stamp(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="milliseconds")


def reply_message(
    reply: Reply,
    tz: ZoneInfo,
    *,
    token: str | None = None,
    url: str | None = None,
    case_token: str | None = None,
    case_url: str | None = None,
) -> WireReplyOk | WireReplyFailure:
    """``token`` and ``url``: a new ticket's token and the slip's link (tickettoken.py),
    added to its ``ticket`` only when the engine has them (older kiosks ignore them);
    ``case_token`` and ``case_url`` likewise for the case the reply opened. Encoded as it is
    (``encode``), or as plain data (``reply_payload``)."""
    if not reply.ok:
        error = reply.error or ErrorCode.BAD_REQUEST
        return WireReplyFailure(v=PROTOCOL_VERSION, re=reply.re, ok=False, error=error, message=reply.message or "")
    ticket: WireTicketSlip | str | UnsetType = UNSET
    if isinstance(reply.ticket, TicketSlip):
        slip = reply.ticket
        ticket = WireTicketSlip(
            no=slip.no,
            service=slip.service,
            issued_at=stamp(slip.issued_at, tz),
            ahead=slip.ahead,
            eta_min=slip.eta_min,
            token=UNSET if token is None else token,
            url=UNSET if url is None else url,
        )
    elif reply.ticket is not None:
        ticket = reply.ticket
    return WireReplyOk(
        v=PROTOCOL_VERSION,
        re=reply.re,
        ok=True,
        ticket=ticket,
        case=UNSET if reply.case is None else reply.case,
        notice=UNSET if reply.notice is None else reply.notice,
        service=UNSET if reply.service is None else reply.service,
        due_day=UNSET if reply.due_day is None else reply.due_day,
        case_token=UNSET if case_token is None else case_token,
        case_url=UNSET if case_url is None else case_url,
        missing=UNSET if reply.missing is None else list(reply.missing),
        routed_to=UNSET if reply.routed_to is None else reply.routed_to,
    )


def reply_payload(reply: Reply, tz: ZoneInfo, **links: str | None) -> dict:
    """``reply_message`` as plain data."""
    return msgspec.to_builtins(reply_message(reply, tz, **links))


def call_payload(call: AnnounceCall, tz: ZoneInfo) -> dict:
    return msgspec.to_builtins(
        WireCall(
            v=PROTOCOL_VERSION,
            ticket=call.ticket,
            window=call.window,
            window_name=call.window_name,
            at=stamp(call.at, tz),
            recall=call.recall,
            n=call.n,
        )
    )


def window_payload(
    window: WindowState, tz: ZoneInfo, *, name: str, staff_name: str | None, staffing: Staffing | str
) -> dict:
    return msgspec.to_builtins(
        WireWindowState(
            v=PROTOCOL_VERSION,
            window=window.window,
            window_name=name,
            state=window.phase,
            staffing=Staffing(staffing),
            staff=window.staff,
            staff_name=staff_name,
            ticket=window.ticket,
            pause_reason=window.pause_reason,
            paused_since=iso(window.paused_at, tz),
            served_today=window.served_today,
            present=window.present,
        )
    )


def queue_payload(view: list[ServiceQueue], now: float, tz: ZoneInfo) -> dict:
    return msgspec.to_builtins(
        WireQueueState(
            v=PROTOCOL_VERSION,
            at=stamp(now, tz),
            waiting=sum(s.waiting for s in view),
            services=[
                WireServiceQueue(
                    service=s.code,
                    name=s.name,
                    prefix=s.prefix,
                    waiting=s.waiting,
                    priority_waiting=s.priority_waiting,
                    oldest_wait_s=round(s.oldest_wait_s, 1),
                    eta_min=s.eta_min,
                    open_windows=s.open_windows,
                )
                for s in view
            ],
        )
    )


def alert_payload(alert: Alert, tz: ZoneInfo, *, staff_name: str | None = None, store_id: str | None = None) -> dict:
    detail = {
        key: iso(value, tz) if key.endswith("_at") and isinstance(value, (int, float)) else value
        for key, value in alert.detail.items()
    }
    return msgspec.to_builtins(
        WireAlert(
            v=PROTOCOL_VERSION,
            id=alert.id,
            seq=alert.seq,
            kind=alert.kind,
            audience=ALERT_KINDS[alert.kind].audience,
            audiences=[ALERT_KINDS[alert.kind].audience, *ALERT_KINDS[alert.kind].also],
            severity=cast(Severity, alert.severity),
            state=alert.state,
            site=alert.site,
            window=alert.window,
            device=alert.device,
            staff=alert.staff,
            staff_name=staff_name,
            since=stamp(alert.since, tz),
            until=iso(alert.until, tz),
            duration_s=None if alert.duration_s is None else round(alert.duration_s, 1),
            acknowledged_at=iso(alert.acknowledged_at, tz),
            acknowledged_by=alert.acknowledged_by,
            note=alert.note,
            due=iso(alert.due, tz),
            overdue=alert.overdue,
            detail=detail,
            store_id=store_id,
        )
    )


def device_payload(device, tz: ZoneInfo) -> dict:
    """``device``: the supervisor's DeviceLive."""
    return msgspec.to_builtins(
        WireDeviceState(
            v=PROTOCOL_VERSION,
            device=device.id,
            kind=DeviceKind(device.kind),
            window=device.window,
            online=device.online,
            reason=device.reason,
            since=iso(device.offline_since, tz) if device.online is False else None,
            tamper=device.tamper,
            video_ok=device.video_ok,
        )
    )


def rejection_payload(topic: str, code: str, reason: str, payload: bytes) -> dict:
    return msgspec.to_builtins(
        WireRejection(
            v=PROTOCOL_VERSION,
            topic=topic,
            error=cast(RejectionCode, code),
            reason=reason,
            payload=payload[:256].decode("utf-8", errors="replace"),
        )
    )
