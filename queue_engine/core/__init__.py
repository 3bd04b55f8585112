"""The pure core: events in, commands out, time passed in. No IO, no clock reads."""

from .commands import (
    AnnounceCall,
    Command,
    DeviceChanged,
    QueueChanged,
    RatingRecorded,
    Reply,
    TicketChanged,
    TicketSlip,
    WindowChanged,
)
from .engine import Engine, UnknownSite
from .errors import ErrorCode, Refused
from .hall import WINDOW_TRANSITIONS, Hall, Position, ServiceQueue
from .model import FINAL_STATUSES, Ticket, TicketStatus, WindowPhase, WindowState

__all__ = [
    "AnnounceCall",
    "Command",
    "DeviceChanged",
    "QueueChanged",
    "RatingRecorded",
    "Reply",
    "TicketChanged",
    "TicketSlip",
    "WindowChanged",
    "Engine",
    "UnknownSite",
    "ErrorCode",
    "Refused",
    "WINDOW_TRANSITIONS",
    "Hall",
    "Position",
    "ServiceQueue",
    "FINAL_STATUSES",
    "Ticket",
    "TicketStatus",
    "WindowPhase",
    "WindowState",
]
