"""Outbound commands: what the core asks the shells to do. The store records the state
changes in one transaction; only after it commits do the publishers show anything."""

from __future__ import annotations

from enum import StrEnum

from .alerts import Alert
from .errors import ErrorCode
from .model import Ticket, WindowState
from .records import record


@record
class Command:
    site: str


@record
class TicketSlip:
    """What a citizen is told when taking a number. ``day`` (the hall's local date, ISO)
    and ``no`` name the ticket: the shells derive its token from them."""

    no: str
    day: str
    service: str
    issued_at: float
    ahead: int
    eta_min: int


@record
class Reply(Command):
    """Answer to the device that sent an event."""

    device: str
    re: str
    ok: bool
    ticket: TicketSlip | str | None = None
    error: ErrorCode | None = None  # set when not ok
    message: str | None = None
    case: str | None = None  # the case a finished visit opened, or the case an event changed
    notice: str | None = None  # the 一次性告知书 a finished visit issued
    service: str | None = None  # the service of the case or notice it opened (the panel's slip)
    due_day: str | None = None  # the case it opened: its due day (local ISO date)
    missing: tuple[str, ...] | None = None  # the notice it issued: the materials found missing
    routed_to: str | None = None  # 办不成: the 办不成事 window the visit went on to


@record
class AnnounceCall(Command):
    """Show a call on the boards (and have them speak it). ``n`` is the ticket's call count
    with this one (the first call 1, each recall or later call one more): a board that gets
    a publication twice sees the same (ticket, n) and announces it once."""

    ticket: str
    window: str
    window_name: str
    at: float
    recall: bool = False
    n: int = 1


class TicketTransition(StrEnum):
    """What happened to a ticket: the shells count and show it without guessing."""

    ISSUED = "issued"
    CALLED = "called"  # to a window (again, for a no-show called back)
    RECALLED = "recalled"  # announced again by the same window
    STARTED = "started"
    FINISHED = "finished"  # with its outcome
    NO_SHOW = "no_show"
    TRANSFERRED = "transferred"  # waiting again, for another service or window, at its place
    EXPIRED = "expired"  # still waiting or called when the day ended
    RATED = "rated"
    CHECKED_IN = "checked_in"  # a reservation checked in at the hall: waiting now
    PRIORITY_CHECKED = "priority_checked"  # a green channel claimed with a phone, confirmed or refused


@record
class TicketChanged(Command):
    ticket: Ticket
    transition: TicketTransition


@record
class WindowChanged(Command):
    window: WindowState


@record
class QueueChanged(Command):
    """The waiting queue changed; the publisher sends one queue state per batch."""


@record
class RatingRecorded(Command):
    window: str
    device: str
    score: int
    at: float
    ticket: str | None
    staff: str | None
    reasons: tuple[str, ...] = ()
    comment: str = ""


@record
class DeviceChanged(Command):
    device: str
    online: bool
    at: float
    reason: str | None = None


@record
class AlertChanged(Command):
    """An alert fired, was acknowledged, became overdue or resolved: store and publish. The
    alert's ``seq`` numbers this transition among the site's."""

    alert: Alert

    @property
    def seq(self) -> int:
        return self.alert.seq


@record
class TimeAccounted(Command):
    """A running total of the day: seconds a window, staff member or device spent in a
    category (staffed, unstaffed, unverified, closed, paused:<reason>, online, offline),
    counted within working time only."""

    day: str
    subject_kind: str  # window, staff, device
    subject: str
    category: str
    seconds: float


@record
class Notice(Command):
    """Something the operators should read in the engine's log."""

    level: str
    text: str
