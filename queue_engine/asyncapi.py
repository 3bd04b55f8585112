"""The device protocol as an AsyncAPI 3.0 document, and a plain reference page made from it.

The message schemas are generated from the wire structs (``wire``), the events each device
kind may send from the kinds' table (``core.kinds``), which events are answered from the
ingest (``ingest.NO_REPLY``), and the examples of the engine's messages by the engine's own
encoders: the document cannot say other than the code. What is written here by hand is what
the code does not hold as data: channels, operations, QoS and retain, descriptions.

    python -m queue_engine.asyncapi            # writes docs/asyncapi.yaml and docs/protocol-reference.md
    python -m queue_engine.asyncapi --check    # exit 1 if either file is not the generated one

The document takes the point of view of a client of the engine (a hall device, a board, a
supervision client): ``send`` is what such a client publishes, ``receive`` what it
subscribes to; the engine is the other side of every operation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from . import tickettoken, wire
from .core.alerts import Alert, AlertKind, AlertState
from .core.commands import AnnounceCall, Reply, TicketSlip
from .core.errors import MESSAGES, ErrorCode
from .core.hall import ServiceQueue
from .core.kinds import DEVICE_KINDS, DeviceKind
from .core.model import Staffing, WindowPhase, WindowState
from .ingest import MAX_MESSAGE_BYTES, NO_REPLY

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
REFERENCE = ROOT / "docs" / "protocol-reference.md"
SCHEMAS = "#/components/schemas/"
BINDING = "0.2.0"  # the MQTT bindings' version
TZ = ZoneInfo("Asia/Shanghai")
AT = 1795568400.0  # 2026-11-25 09:00 in the examples' site

DESCRIPTION_TEXT = """\
The MQTT protocol between the devices of a service hall (ticket kiosks, window call panels,
supervision cameras, rating pads, displays) and the hallwatch queue engine, version 1.
`PROTOCOL.md` is the contract and `docs/protocol.md` what the engine adds to it; this
document is generated from the engine's wire format (`python -m queue_engine.asyncapi`).

**Point of view.** Operations are those of a client of the engine: `send` is what a device
publishes, `receive` what a device, a board or a supervision client subscribes to. The engine
is the other side of every operation: it reads every `send` and publishes every `receive`.

**Transport.** MQTT 3.1.1 is the baseline; MQTT 5 clients are accepted. Payloads are UTF-8
JSON objects. A device connects with client id = user name = its device id, a keepalive of at
most 30 s and a Last Will on its `status` topic (`{"v":1,"state":"offline","reason":"lost"}`,
QoS 1, retained). The topic root is `hallwatch` (configurable per deployment). Ids of sites,
devices and windows match `{ID_PATTERN}`. A device message may carry at most
{MAX_MESSAGE_BYTES} bytes (the engine refuses more as `too_large`; the broker drops PUBLISH
packets over 16 KiB before they reach the engine).

**Growth.** The protocol may add topics, event types, optional fields and enumeration values;
it never renames or removes any. A client ignores fields it does not know; the engine ignores
unknown optional fields of an event. The enumerations below are those of this engine.

**Every message is applied once or rejected.** Events carry an `id` unique per device across
its restarts: a resend with the same id and content is answered with the first reply and not
applied again. A message the engine refuses is published on the `rejected` channel with its
reason; an event that asked for a reply also gets a failure reply.

**MQTT 5.** What a device on MQTT 5 is told beyond MQTT 3.1.1 (Mosquitto 2.0, the
project's broker configuration):

{REASON_CODES}

Refusals by the engine itself (bad JSON, a field at fault, an event the kind may not send)
are not MQTT reason codes: the broker has accepted the message by then; they come as a failure
reply (`ok: false`) and on the `rejected` channel.

`response-topic` and `correlation-data` are **not** honoured: the engine answers every
request on the device's own `reply` topic, with the event's `id` in `re`, whatever properties
the PUBLISH carried. The engine holds an MQTT 3.1.1 session (its acknowledge-after-commit and
persistent session rest on it), so the broker strips MQTT 5 properties before delivering to
it; and a reply topic chosen by the sender would let a device direct the engine's
publications (the engine may write to every device's reply topic and to the boards), which
the per-device ACL exists to prevent. The `id`/`re` pair is the correlation.
"""

# (packet, reason code, when): checked against the broker by tests/test_broker_security.py
REASON_CODES = (
    ("CONNACK", "135 not authorised", "a wrong user name or password"),
    (
        "PUBACK",
        "135 not authorised",
        "a topic the device's ACL does not let it publish to (another device's topics): the message is dropped",
    ),
    (
        "PUBACK",
        "16 no matching subscribers",
        "nobody subscribes to the topic (the engine has never connected to this broker): the message is not kept",
    ),
    (
        "PUBACK",
        "149 packet too large",
        "a PUBLISH over the broker's 16 KiB message_size_limit: dropped. 149 is not among MQTT 5's PUBACK codes; "
        "a strict client library (paho-mqtt 2) takes the packet as malformed and reconnects",
    ),
    ("SUBACK", "granted QoS", "also for a topic the ACL does not let the device read: nothing is delivered on it"),
)
DESCRIPTION = (
    DESCRIPTION_TEXT.replace("{ID_PATTERN}", wire.ID_PATTERN)
    .replace("{MAX_MESSAGE_BYTES}", f"{MAX_MESSAGE_BYTES:,}")
    .replace(
        "{REASON_CODES}",
        "\n".join(
            ["| packet | reason code | when |", "|---|---|---|"] + [f"| {p} | {c} | {w} |" for p, c, w in REASON_CODES]
        ),
    )
)

# -- schemas -------------------------------------------------------------------------------
INBOUND_EVENTS: tuple[type[wire.Envelope], ...] = tuple(wire.WIRE_TO_CORE)
OUTBOUND: tuple[type[msgspec.Struct], ...] = (
    wire.WireReplyOk,
    wire.WireReplyFailure,
    wire.WireCall,
    wire.WireWindowState,
    wire.WireQueueState,
    wire.WireAlert,
    wire.WireRejection,
    wire.WireDeviceState,
    wire.WireAlertReplay,
    wire.WireDayFigures,
)
# What the county service sends the engines (hallwatch county).
CONTROL_REQUESTS: tuple[type[msgspec.Struct], ...] = (
    wire.WireReplayRequest,
    wire.WireAcknowledgeRequest,
    wire.WireFiguresRequest,
)


def schema_name(struct: type) -> str:
    return struct.__name__.removeprefix("Wire")


def schemas() -> dict[str, Any]:
    """Every message's JSON Schema, by name, from the wire structs."""
    types = (*INBOUND_EVENTS, wire.WireStatus, wire.WireHeartbeat, *OUTBOUND, *CONTROL_REQUESTS)
    _, components = msgspec.json.schema_components(types, ref_template=SCHEMAS + "{name}")
    renamed = {name: name.removeprefix("Wire") for name in components}
    text = json.dumps(components, ensure_ascii=False)
    for old, new in renamed.items():
        text = text.replace(f'"{SCHEMAS}{old}"', f'"{SCHEMAS}{new}"')
    found = {renamed[name]: body for name, body in json.loads(text).items()}
    for body in found.values():
        body["title"] = body["title"].removeprefix("Wire")
    found["Event"] = {
        "title": "Event",
        "description": "The event envelope: `v`, `id`, optional `ts` and `window`, and `type`, which names the "
        "event and the fields it adds.",
        "oneOf": [{"$ref": SCHEMAS + schema_name(s)} for s in INBOUND_EVENTS],
        "discriminator": "type",
    }
    found["Reply"] = {
        "title": "Reply",
        "description": "The answer to an event, on the sending device's reply topic.",
        "oneOf": [{"$ref": SCHEMAS + "ReplyOk"}, {"$ref": SCHEMAS + "ReplyFailure"}],
        "discriminator": "ok",
    }
    return dict(sorted(found.items()))


# -- examples: the engine's own encoders, on made-up values ---------------------------------
EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "ticket.request": {"service": "shebao", "priority": "elderly"},
    "ticket.checkin": {"code": "482915"},
    "staff.login": {"staff": "s003"},
    "staff.logout": {},
    "window.pause": {"reason": "meal"},
    "window.resume": {},
    "call.next": {},
    "call.pick": {"ticket": "A012"},
    "call.recall": {},
    "call.skip": {},
    "service.start": {},
    "service.finish": {"outcome": "done"},
    "ticket.transfer": {"to_service": "yibao"},
    "priority.verify": {"ticket": "A012", "confirm": True},
    "case.note": {"case": "J20261125001", "note": "已报县自然资源局审核"},
    "case.pass": {"case": "J20261125001", "to": "县自然资源局"},
    "case.complete": {"case": "J20261125001", "result": "已登记发证"},
    "case.return": {"case": "J20261125001", "note": "权属证书与登记簿不符"},
    "case.withdraw": {"case": "J20261125001"},
    "case.open": {
        "service": "shebao",
        "citizen": "359ea74a80a57accd42a7311ed96eca04f3e631d0ab34ea76808c543240d8a68",
        "home": True,
        "note": "独居老人",
    },
    "presence": {"window": "w03", "present": True, "count": 1},
    "tamper": {"kind": "occluded"},
    "rating": {"window": "w03", "score": 2, "ticket": "A012", "reasons": ["efficiency"], "comment": "等了很久"},
}


def event_example(tag: str) -> dict[str, Any]:
    return {"v": 1, "id": "kiosk-1-mfz3k2a0b1-42", "ts": "2026-11-25T09:00:00.000+08:00", "type": tag} | (
        EVENT_EXAMPLES[tag]
    )


def outbound_examples() -> dict[str, list[dict[str, Any]]]:
    slip = TicketSlip(no="A012", day="2026-11-25", service="shebao", issued_at=AT, ahead=4, eta_min=12)
    token = tickettoken.ticket_token(b"an example secret, not a real one", "demo", slip.day, slip.no)
    refusal = ErrorCode.QUEUE_EMPTY
    window = WindowState(
        site="demo", window="w03", phase=WindowPhase.CALLED, staff="s003", ticket="A012", served_today=7, present=True
    )
    fired = Alert(
        id="demo-000042",
        site="demo",
        kind=AlertKind.WINDOW_UNSTAFFED,
        severity="warning",
        state=AlertState.FIRING,
        subject="w03",
        since=AT,
        window="w03",
        staff="s003",
        detail={"grace_min": 5, "camera": "cam-w03"},
        seq=42,
    )
    resolved = dataclasses.replace(fired, state=AlertState.RESOLVED, until=AT + 420, seq=43)
    queue = ServiceQueue(
        code="shebao",
        name="社保业务",
        prefix="A",
        waiting=3,
        priority_waiting=1,
        oldest_wait_s=312.0,
        eta_min=9,
        open_windows=2,
    )
    re = "panel-w03-mfz3k2a0b1-7"
    return {
        "replyOk": [
            wire.reply_payload(Reply(site="demo", device="kiosk-1", re=re, ok=True, ticket=slip), TZ),
            wire.reply_payload(
                Reply(site="demo", device="kiosk-1", re=re, ok=True, ticket=slip),
                TZ,
                token=token,
                url=tickettoken.slip_url("https://hall.example.cn", "demo", token),
            ),
            wire.reply_payload(Reply(site="demo", device="panel-w03", re=re, ok=True, ticket="A012"), TZ),
            wire.reply_payload(
                Reply(site="demo", device="panel-w03", re=re, ok=True, ticket="B003", case="J20261125001"), TZ
            ),
            wire.reply_payload(
                Reply(site="demo", device="panel-w03", re=re, ok=True, ticket="B004", notice="G20261125001"), TZ
            ),
            wire.reply_payload(
                Reply(site="demo", device="panel-w03", re=re, ok=True, ticket="A013", routed_to="w10"), TZ
            ),
            wire.reply_payload(Reply(site="demo", device="panel-w03", re=re, ok=True), TZ),
        ],
        "replyFailure": [
            wire.reply_payload(
                Reply(site="demo", device="panel-w03", re=re, ok=False, error=refusal, message=MESSAGES[refusal]),
                TZ,
            )
        ],
        "call": [
            wire.call_payload(
                AnnounceCall(site="demo", ticket="A012", window="w03", window_name="3号窗口", at=AT, recall=False, n=1),
                TZ,
            )
        ],
        "windowState": [
            wire.window_payload(window, TZ, name="3号窗口", staff_name="王丽娟", staffing=Staffing.STAFFED)
        ],
        "queueState": [wire.queue_payload([queue], AT, TZ)],
        "alert": [wire.alert_payload(a, TZ, staff_name="王丽娟") for a in (fired, resolved)],
        "deviceState": [
            {
                "v": 1,
                "device": "cam-w03",
                "kind": "camera",
                "window": "w03",
                "online": False,
                "reason": "shutdown",
                "since": wire.stamp(AT, TZ),
                "tamper": None,
                "video_ok": True,
            }
        ],
        "replayRequest": [{"v": 1, "id": "replay-3f2a9c", "after": 41}],
        "figuresRequest": [{"v": 1, "id": "figures-9b1c", "after": "2026-11-23"}],
        "dayFigures": [day_figures_example()],
        "acknowledgeRequest": [
            {"v": 1, "id": "county-ack-5d41402a", "alert": "demo-000042", "by": "王监察", "note": "已电话联系"}
        ],
        "alertReplay": [
            {
                "v": 1,
                "re": "replay-3f2a9c",
                "after": 41,
                "to": 43,
                "part": 1,
                "parts": 1,
                "alerts": [wire.alert_payload(resolved, TZ, staff_name="王丽娟")],
            }
        ],
        "rejection": [
            wire.rejection_payload(
                "hallwatch/demo/dev/kiosk-1/event",
                "bad_field",
                "Expected `str` of length >= 1, got `` - at `$.service`",
                b'{"v":1,"id":"k-1","type":"ticket.request","service":""}',
            )
        ],
    }


# -- the document ----------------------------------------------------------------------------
def message_id(tag: str) -> str:
    """``ticket.request`` -> ``ticketRequest``."""
    head, *rest = re.split(r"[._]", tag)
    return head + "".join(part.capitalize() for part in rest)


def _message(name: str, schema: str, title: str, summary: str, examples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": SCHEMAS + schema},
        "bindings": {"mqtt": {"payloadFormatIndicator": 1, "bindingVersion": BINDING}},
        "examples": [{"name": f"{name}{n + 1}" if n else name, "payload": p} for n, p in enumerate(examples)],
    }


def messages() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {
        "status": _message(
            "status",
            "Status",
            "Device status (retained)",
            "online on connecting; offline/shutdown before an orderly power-off; offline/lost is the Last Will.",
            [
                {"v": 1, "state": "online", "kind": "panel", "window": "w03", "fw": "2.1.0"},
                {"v": 1, "state": "offline", "reason": "shutdown"},
                {"v": 1, "state": "offline", "reason": "lost"},
            ],
        ),
        "heartbeat": _message(
            "heartbeat",
            "Heartbeat",
            "Heartbeat",
            "Every heartbeat_s while online; three missed make the device offline.",
            [{"v": 1, "seq": 1042, "uptime_s": 86400.0}, {"v": 1, "seq": 7, "uptime_s": 70.2, "video": "ok"}],
        ),
    }
    for struct in INBOUND_EVENTS:
        tag = wire.EVENT_TYPES[wire.WIRE_TO_CORE[struct]]
        found[message_id(tag)] = _message(
            message_id(tag), schema_name(struct), tag, (struct.__doc__ or "").strip(), [event_example(tag)]
        )
    summaries = {
        "replyOk": ("ReplyOk", "Reply: applied", "The event named by re was applied."),
        "replyFailure": ("ReplyFailure", "Reply: refused", "The event named by re was refused; nothing changed."),
        "call": ("Call", "Board call", "A ticket called to a window: show it and announce it."),
        "windowState": ("WindowState", "Window state (retained)", "A window as it is now."),
        "queueState": ("QueueState", "Queue state (retained)", "The site's queues as they are now."),
        "alert": ("Alert", "Alert transition", "An alert fired, was acknowledged or resolved."),
        "rejection": ("Rejection", "Rejected message", "A message the engine refused, and why."),
        "deviceState": ("DeviceState", "Device state (retained)", "A device as the engine judges it."),
        "replayRequest": ("ReplayRequest", "Replay request", "The county service asks for the alerts it missed."),
        "alertReplay": ("AlertReplay", "Alert replay", "The alerts changed since a transition number, in parts."),
        "figuresRequest": (
            "FiguresRequest",
            "Figures request",
            "The county service asks for the figures of the days it missed.",
        ),
        "dayFigures": ("DayFigures", "Day figures", "A site's figures of one day (retained: the latest day)."),
        "acknowledgeRequest": (
            "AcknowledgeRequest",
            "Acknowledgement request",
            "A county operator acknowledges an alert at the engine that owns it.",
        ),
    }
    for name, examples in outbound_examples().items():
        schema, title, summary = summaries[name]
        found[name] = _message(name, schema, title, summary, examples)
    return found


def day_figures_example() -> dict[str, Any]:
    subject = {"served": 31, "staffed_min": 402.0, "not_opened_min": 0.0, "unstaffed_min": 12.5, "unverified_min": 0.0}
    return {
        "v": 1,
        "site": "demo",
        "day": "2026-11-25",
        "final": True,
        "as_of": "2026-11-26T00:01:00.000+08:00",
        "issued": 96,
        "served": 88,
        "no_shows": 5,
        "expired": 3,
        "transferred": 2,
        "wait_mean_min": 7.4,
        "wait_p90_min": 16.0,
        "wait_max_min": 31.2,
        "within_target_pct": 91.7,
        "vacancy_min": {"not_opened": 0.0, "unstaffed": 12.5, "unverified": 0.0},
        "windows": [{"id": "w03", "name": "3号窗口", **subject, "ratings": 20, "satisfied_pct": 95.0}],
        "staff": [{"id": "s003", "name": "王丽娟", **subject, "ratings": 20, "satisfied_pct": 95.0}],
        "device_offline_min": 7.0,
        "devices": [{"device": "cam-w03", "kind": "camera", "window": "w03", "offline_min": 7.0}],
        "ratings": {"1": 0, "2": 1, "3": 2, "4": 5, "5": 12},
        "satisfied_pct": 95.0,
        "bad_ratings": 1,
        "follow_ups_overdue": 0,
        "alerts": {"window_unstaffed": 1, "device_shutdown": 1, "bad_rating": 1},
        "cases": {
            "opened": 4,
            "completed": 1,
            "on_time": 1,
            "overdue": 0,
            "still_open": 3,
            "unresolved": 1,
            "unresolved_completed": 0,
            "notices": 6,
            "breaches": 0,
        },
    }


def _channel(address: str, description: str, message_names: list[str], parameters: list[str]) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "parameters": {p: {"$ref": f"#/components/parameters/{p}"} for p in parameters},
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in message_names},
    }


def event_messages() -> list[str]:
    return [message_id(wire.EVENT_TYPES[core]) for core in wire.WIRE_TO_CORE.values()]


def channels() -> dict[str, dict[str, Any]]:
    dev = "hallwatch/{site}/dev/{device}"
    return {
        "deviceStatus": _channel(
            f"{dev}/status",
            "A device's status, retained: what the engine and a newcomer learn of it. The Last Will goes here.",
            ["status"],
            ["site", "device"],
        ),
        "deviceHeartbeat": _channel(f"{dev}/heartbeat", "A device's heartbeat.", ["heartbeat"], ["site", "device"]),
        "deviceEvent": _channel(
            f"{dev}/event", "What a device asks of the engine or reports to it.", event_messages(), ["site", "device"]
        ),
        "deviceReply": _channel(
            f"{dev}/reply",
            "The engine's answer to each event that asks for one; only this device may read it.",
            ["replyOk", "replyFailure"],
            ["site", "device"],
        ),
        "boardCall": _channel(
            "hallwatch/{site}/board/call",
            "Tickets called to windows, for the hall's boards and displays.",
            ["call"],
            ["site"],
        ),
        "windowState": _channel(
            "hallwatch/{site}/window/{window}/state",
            "Each window's state, retained.",
            ["windowState"],
            ["site", "window"],
        ),
        "queueState": _channel(
            "hallwatch/{site}/queue/state", "The site's queues, retained.", ["queueState"], ["site"]
        ),
        "alerts": _channel(
            "hallwatch/{site}/alerts",
            "Every transition of every alert of the site (电子监察, the manager, IT).",
            ["alert"],
            ["site"],
        ),
        "rejected": _channel(
            "hallwatch/{site}/rejected", "Every message of the site the engine refused.", ["rejection"], ["site"]
        ),
        "deviceState": _channel(
            "hallwatch/{site}/device/{device}/state",
            "Each device as the engine judges it (online; offline lost, silent or shut down), retained.",
            ["deviceState"],
            ["site", "device"],
        ),
        "replayRequest": _channel(
            "hallwatch/{site}/control/replay",
            "The county service's request for the alert transitions it missed; only its account may publish it.",
            ["replayRequest"],
            ["site"],
        ),
        "replayReply": _channel(
            "hallwatch/{site}/control/replay/reply",
            "The engine's answer to a replay request, in parts.",
            ["alertReplay"],
            ["site"],
        ),
        "dayFigures": _channel(
            "hallwatch/{site}/figures/day",
            "The site's figures of its latest finished day, retained, published once the day is over at the site.",
            ["dayFigures"],
            ["site"],
        ),
        "figuresRequest": _channel(
            "hallwatch/{site}/control/figures",
            "The county service's request for the figures of the days after a date (default: the last seven); "
            "only its account may publish it.",
            ["figuresRequest"],
            ["site"],
        ),
        "figuresReply": _channel(
            "hallwatch/{site}/control/figures/reply",
            "The engine's answer to a figures request: one message per day.",
            ["dayFigures"],
            ["site"],
        ),
        "acknowledgeRequest": _channel(
            "hallwatch/{site}/control/acknowledge",
            "A county operator's acknowledgement of an alert, applied by the engine that owns it as its "
            "manager console's is; only the county service's account may publish it.",
            ["acknowledgeRequest"],
            ["site"],
        ),
        "acknowledgeReply": _channel(
            "hallwatch/{site}/control/acknowledge/reply",
            "The engine's answer to an acknowledgement, after its commit: re is the request's id; the same "
            "request sent again is answered the same and applied once.",
            ["replyOk", "replyFailure"],
            ["site"],
        ),
    }


def _operation(
    action: str,
    channel: str,
    summary: str,
    message_names: list[str],
    *,
    qos: int,
    retain: bool,
    description: str = "",
    reply: bool = False,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
    }
    if description:
        op["description"] = description
    op["bindings"] = {"mqtt": {"qos": qos, "retain": retain, "bindingVersion": BINDING}}
    op["messages"] = [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in message_names]
    if reply:
        op["reply"] = {
            "channel": {"$ref": "#/channels/deviceReply"},
            "messages": [{"$ref": "#/channels/deviceReply/messages/" + m} for m in ("replyOk", "replyFailure")],
        }
    return op


def operations() -> dict[str, dict[str, Any]]:
    ops = {
        "sendStatus": _operation(
            "send",
            "deviceStatus",
            "Every device: its status, retained",
            ["status"],
            qos=1,
            retain=True,
            description="Kinds: " + ", ".join(f"`{k.value}`" for k in DeviceKind) + ".",
        ),
        "sendHeartbeat": _operation(
            "send", "deviceHeartbeat", "Every device: a heartbeat", ["heartbeat"], qos=0, retain=False
        ),
    }
    for kind, rule in DEVICE_KINDS.items():
        answered = [e for e in rule.events if not issubclass(e, NO_REPLY)]
        reports = [e for e in rule.events if issubclass(e, NO_REPLY)]
        for events, replied in ((answered, True), (reports, False)):
            if not events:
                continue
            names = [message_id(wire.EVENT_TYPES[e]) for e in events]
            verb = "requests" if replied else "reports"
            ops[f"send{kind.value.capitalize()}{verb.capitalize()}"] = _operation(
                "send",
                "deviceEvent",
                f"{rule.label} ({kind.value}): its {verb}",
                names,
                qos=1,
                retain=False,
                description=(
                    "Each is answered on the device's reply topic."
                    if replied
                    else "Reports: nothing is published in answer (a refusal goes to the rejected channel)."
                ),
                reply=replied,
            )
    readers = ", ".join(f"`{k.value}`" for k, r in DEVICE_KINDS.items() if r.reads_board)
    ops |= {
        "receiveReply": _operation(
            "receive",
            "deviceReply",
            "Every device that sends requests: its replies",
            ["replyOk", "replyFailure"],
            qos=1,
            retain=False,
        ),
        "receiveCall": _operation(
            "receive",
            "boardCall",
            "Boards and displays: calls to announce",
            ["call"],
            qos=1,
            retain=False,
            description=f"Device kinds that read the board: {readers}; and the boards' accounts.",
        ),
        "receiveWindowState": _operation(
            "receive", "windowState", "Boards, displays, panels: window states", ["windowState"], qos=1, retain=True
        ),
        "receiveQueueState": _operation(
            "receive", "queueState", "Boards, displays, panels: queue states", ["queueState"], qos=1, retain=True
        ),
        "receiveAlerts": _operation(
            "receive",
            "alerts",
            "Supervision (电子监察) and managers: alert transitions",
            ["alert"],
            qos=1,
            retain=False,
        ),
        "receiveRejections": _operation(
            "receive", "rejected", "Operators and installers: refused messages", ["rejection"], qos=1, retain=False
        ),
        "receiveDeviceState": _operation(
            "receive", "deviceState", "The county service: device states", ["deviceState"], qos=1, retain=True
        ),
        "sendReplayRequest": _operation(
            "send", "replayRequest", "The county service: ask for missed alerts", ["replayRequest"], qos=1, retain=False
        ),
        "receiveReplay": _operation(
            "receive", "replayReply", "The county service: the alerts it missed", ["alertReplay"], qos=1, retain=False
        ),
        "receiveDayFigures": _operation(
            "receive", "dayFigures", "The county service: each site's day figures", ["dayFigures"], qos=1, retain=True
        ),
        "sendFiguresRequest": _operation(
            "send",
            "figuresRequest",
            "The county service: ask for the figures of missed days",
            ["figuresRequest"],
            qos=1,
            retain=False,
        ),
        "receiveFigures": _operation(
            "receive",
            "figuresReply",
            "The county service: the figures of the days asked for",
            ["dayFigures"],
            qos=1,
            retain=False,
        ),
        "sendAcknowledgeRequest": _operation(
            "send",
            "acknowledgeRequest",
            "The county service: acknowledge an alert at its source",
            ["acknowledgeRequest"],
            qos=1,
            retain=False,
        ),
        "receiveAcknowledgeAnswer": _operation(
            "receive",
            "acknowledgeReply",
            "The county service: the engine's answer to an acknowledgement",
            ["replyOk", "replyFailure"],
            qos=1,
            retain=False,
        ),
    }
    return ops


def document() -> dict[str, Any]:
    id_rule = f"Matches `{wire.ID_PATTERN}`."
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "hallwatch device protocol",
            "version": str(wire.PROTOCOL_VERSION),
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "hall": _server(1883, "mqtt", "The hall's broker on the hall network. MQTT 5 is accepted as well."),
            "hallTls": _server(
                8883, "secure-mqtt", "The same broker over TLS (TLS 1.2 or later), for networks the hall does not own."
            ),
        },
        "channels": channels(),
        "operations": operations(),
        "components": {
            "schemas": schemas(),
            "messages": messages(),
            "parameters": {
                "site": {"description": f"The site (hall) id, e.g. `demo`. {id_rule}", "examples": ["demo"]},
                "device": {
                    "description": f"The device id: also its MQTT client id and user name. {id_rule}",
                    "examples": ["kiosk-1", "panel-w03"],
                },
                "window": {"description": f"The window id, e.g. `w03`. {id_rule}", "examples": ["w03"]},
            },
            "securitySchemes": {
                "account": {
                    "type": "userPassword",
                    "description": "Each device has its own account: user name = client id = device id. The "
                    "broker's ACL lets a device publish only its own status, heartbeat and event topics and read "
                    "only its own reply topic (and the board topics, for kinds that read the board).",
                }
            },
        },
    }


def _server(port: int, protocol: str, description: str) -> dict[str, Any]:
    return {
        "host": f"{{broker}}:{port}",
        "protocol": protocol,
        "protocolVersion": "3.1.1",
        "description": description,
        "variables": {"broker": {"description": "The broker's host name.", "default": "mosquitto"}},
        "security": [{"$ref": "#/components/securitySchemes/account"}],
        "bindings": {"mqtt": _device_session()},
    }


def _device_session() -> dict[str, Any]:
    return {
        "cleanSession": True,
        "keepAlive": 30,
        "lastWill": {
            "topic": "hallwatch/{site}/dev/{device}/status",
            "qos": 1,
            "message": '{"v":1,"state":"offline","reason":"lost"}',
            "retain": True,
        },
        "bindingVersion": BINDING,
    }


# -- rendering ------------------------------------------------------------------------------
HEADER = "# Generated by `python -m queue_engine.asyncapi` from queue_engine/wire.py: do not edit.\n"


def to_yaml(doc: dict[str, Any]) -> str:
    import yaml  # (the document's only reader at run time is this command)

    class Dumper(yaml.SafeDumper):
        """Multi-line text as literal blocks, as it was written."""

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return HEADER + yaml.dump(
        doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
    )


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _payload_link(name: str) -> str:
    return f"[{name}](#{name.lower()}-schema)"


def _type_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return _payload_link(prop["$ref"].removeprefix(SCHEMAS))
    if "anyOf" in prop:
        return " or ".join(_type_of(p) for p in prop["anyOf"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type_of(prop['items'])}"
    limits = [
        f"{label} {prop[key]}"
        for key, label in (
            ("minLength", "length ≥"),
            ("maxLength", "length ≤"),
            ("minimum", "≥"),
            ("maximum", "≤"),
            ("format", "format"),
        )
        if key in prop
    ]
    return kind + (f" ({', '.join(limits)})" if limits else "")


def _schema_table(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name} schema", ""] + ([schema["description"], ""] if schema.get("description") else [])
    if "enum" in schema:
        return [*lines, "One of: " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".", ""]
    if "oneOf" in schema:
        lines += [
            "One of: " + ", ".join(_type_of(s) for s in schema["oneOf"]) + f" (by `{schema['discriminator']}`).",
            "",
        ]
        return lines
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, prop in schema.get("properties", {}).items():
        text = prop.get("description", "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{field}` | {_type_of(prop)} | {'yes' if field in required else ''} | {text} |")
    return [*lines, ""]


def to_markdown(doc: dict[str, Any]) -> str:
    """A plain reference page: channels, operations, messages and their payloads."""
    info = doc["info"]
    lines = [
        "<!-- Generated by `python -m queue_engine.asyncapi` from docs/asyncapi.yaml's sources: do not edit. -->",
        f"# {info['title']}, version {info['version']}: reference",
        "",
        "The machine-readable document is [asyncapi.yaml](asyncapi.yaml) (AsyncAPI 3.0); this page is made from it.",
        "",
        info["description"],
        "## Channels",
        "",
        "| topic | messages | published by | QoS | retained |",
        "|---|---|---|---|---|",
    ]
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for op in doc["operations"].values():
        by_channel.setdefault(op["channel"]["$ref"].rsplit("/", 1)[1], []).append(op)
    for channel_id, channel in doc["channels"].items():
        ops = by_channel[channel_id]
        binding = ops[0]["bindings"]["mqtt"]
        who = "device" if ops[0]["action"] == "send" else "engine"
        names = ", ".join(f"[{m}](#{m.lower()})" for m in channel["messages"])
        lines.append(
            f"| `{channel['address']}` | {names} | {who} | {binding['qos']} | {'yes' if binding['retain'] else 'no'} |"
        )
    lines += ["", "## Operations", "", "| operation | action | topic | messages | reply |", "|---|---|---|---|---|"]
    for op_id, op in doc["operations"].items():
        channel = _resolve(doc, op["channel"]["$ref"])
        names = ", ".join(m["$ref"].rsplit("/", 1)[1] for m in op["messages"])
        reply = "`reply`" if "reply" in op else ""
        lines.append(f"| {op_id}: {op['summary']} | {op['action']} | `{channel['address']}` | {names} | {reply} |")
    lines += ["", "## Messages", ""]
    for name, message in doc["components"]["messages"].items():
        schema = message["payload"]["$ref"].removeprefix(SCHEMAS)
        lines += [
            f"### {name}",
            "",
            f"{message['title']}: {message['summary']} Payload: {_payload_link(schema)}.",
            "",
        ]
        for example in message["examples"]:
            lines += ["```json", json.dumps(example["payload"], ensure_ascii=False), "```", ""]
    lines += ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        lines += _schema_table(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m queue_engine.asyncapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed files are not the generated ones")
    args = parser.parse_args(argv)
    doc = document()
    outputs = {DOCUMENT: to_yaml(doc), REFERENCE: to_markdown(doc)}
    stale = [path for path, text in outputs.items() if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(
                f"{path.relative_to(ROOT)} is not the generated one: run python -m queue_engine.asyncapi",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
