"""The kinds of device, as data: what each may send, whether it belongs to a window, how it
is supervised. The configuration, the wire format, the broker's accounts and the agents all
derive from this table: adding a kind is one entry here (and its label in ``vocabulary``),
plus whatever new behaviour it brings."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from . import events as ev


class DeviceKind(StrEnum):
    KIOSK = "kiosk"
    PANEL = "panel"
    CAMERA = "camera"
    PAD = "pad"
    DISPLAY = "display"
    SELFSERVICE = "selfservice"


class OnlineHours(StrEnum):
    """When a device is expected online: what its liveness alerts and its accounted online and
    offline time are counted against."""

    OFFICE = "office"  # the site's opening periods on its working days
    ALWAYS = "always"  # day and night, every day (a 24-hour self-service terminal)


@dataclass(frozen=True, slots=True)
class DeviceRule:
    label: str  # Chinese, for every surface (core.vocabulary)
    # The events a device of the kind may send, besides its liveness (status, heartbeat);
    # the shell refuses the rest as ``not_allowed``.
    events: tuple[type[ev.Event], ...]
    # Belongs to a window: ``required`` (its events speak for that window only), ``optional``
    # (a supervision device may watch a window or a place: a lobby camera), ``none``.
    window: Literal["required", "optional", "none"]
    # 电子监察: switching it off is a fault to investigate (``device_shutdown``), its loss is
    # critical; others' loss is a warning, their orderly shutdown nothing.
    supervision: bool = False
    # Expected online at every hour (a 24-hour terminal), or only in working time; a device's
    # own configuration may say otherwise (``config.Device.online_hours``).
    online_hours: OnlineHours = OnlineHours.OFFICE
    # Its ``presence`` reports tell whether the window it watches is staffed.
    watches_seat: bool = False
    # Reads the site's board topics (calls, window and queue states).
    reads_board: bool = False
    # Issues tickets to citizens.
    issues_tickets: bool = False


PANEL_EVENTS = (
    ev.StaffLogin,
    ev.StaffLogout,
    ev.WindowPause,
    ev.WindowResume,
    ev.CallNext,
    ev.CallPick,
    ev.CallRecall,
    ev.CallSkip,
    ev.ServiceStart,
    ev.ServiceFinish,
    ev.TicketTransfer,
    *ev.CASE_EVENTS,
    ev.PriorityVerify,
)

K = DeviceKind
DEVICE_KINDS: dict[DeviceKind, DeviceRule] = {
    K.KIOSK: DeviceRule("取号机", (ev.TicketRequest, ev.TicketCheckIn), window="none", issues_tickets=True),
    K.SELFSERVICE: DeviceRule(
        "24小时自助终端",
        (ev.TicketRequest, ev.TicketCheckIn),
        window="none",
        supervision=True,
        online_hours=OnlineHours.ALWAYS,
        issues_tickets=True,
    ),
    K.PANEL: DeviceRule("窗口叫号器", PANEL_EVENTS, window="required"),
    K.CAMERA: DeviceRule(
        "电子监察摄像头", (ev.Presence, ev.Tamper), window="optional", supervision=True, watches_seat=True
    ),
    K.PAD: DeviceRule("好差评评价器", (ev.Rating,), window="required"),
    K.DISPLAY: DeviceRule("叫号显示屏", (), window="optional", reads_board=True),  # (a hall's board, or a window's own)
}


def rule(kind: str) -> DeviceRule:
    return DEVICE_KINDS[DeviceKind(kind)]
