"""Values of the hall: tickets and windows. Immutable, so a snapshot handed to the store's
writer thread or a publisher can never change under it; the hall replaces them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from .events import Outcome, PauseReason, Priority
from .records import evolve, record


class TicketStatus(StrEnum):
    RESERVED = "reserved"  # taken with a phone, not yet checked in at the hall: never called
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"  # finished, with an outcome
    NO_SHOW = "no_show"
    EXPIRED = "expired"  # still waiting when the day ended


FINAL_STATUSES = frozenset({TicketStatus.DONE, TicketStatus.NO_SHOW, TicketStatus.EXPIRED})


@record
class Ticket:
    site: str
    day: str  # local date, ISO: numbering restarts each local day
    no: str  # e.g. "A012"
    service: str
    seq: int
    issued_at: float
    # Place in the queue: the order of issue at the site that day, kept across transfers.
    # A counter, not a time, so a clock that steps back cannot reorder the queue.
    place: int
    priority: Priority | None = None
    appointment: str | None = None
    issued_by: str = ""  # device id, or "web" for phone tickets
    phone: str | None = None  # taken with a phone: its citizen key (privacy.citizen_key), never the number
    status: TicketStatus = TicketStatus.WAITING
    window: str | None = None  # the window that called it last
    staff: str | None = None
    directed_window: str | None = None  # transferred to one specific window
    called_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    outcome: Outcome | None = None
    calls: int = 0
    transfers: int = 0
    first_called_at: float | None = None
    rating: int | None = None  # 好差评 score, once per visit
    # 首问负责: the first window that called the visit, and who was at it; kept through later
    # calls and transfers.
    first_window: str | None = None
    first_staff: str | None = None
    case_no: str | None = None  # the case (办件) the visit opened
    notice_no: str | None = None  # the 一次性告知书 it was given
    matter: str | None = None  # the earlier notice or case it continues (core.cases)
    phone_tail: str | None = None  # the phone number's last four digits, for display
    # Taken with a phone: reserved until checked in with its code, or expired at this moment.
    reservation_expires_at: float | None = None
    check_in_code: str | None = None
    checked_in_at: float | None = None
    # Green channel asked for with a phone: not granted until a window confirms it (``priority``
    # is then set); ``priority_check`` pending, confirmed or refused, by whom and when.
    priority_claim: Priority | None = None
    priority_check: str | None = None
    priority_checked_by: str | None = None
    priority_checked_at: float | None = None

    @property
    def is_priority(self) -> bool:
        return self.priority is not None or self.appointment is not None

    def evolve(self, **changes: Any) -> Ticket:
        return evolve(self, **changes)


class Staffing(StrEnum):
    """What a window is, for supervision, at a moment: the one definition the consoles, the
    reports, the metrics and the alerts share."""

    STAFFED = "staffed"  # open (a staff member logged in, not paused), and a camera sees somebody
    UNSTAFFED = "unstaffed"  # open, and its camera sees nobody at the seat
    UNVERIFIED = "unverified"  # open, and no working camera can tell (none, off, or tampered with)
    NOT_OPENED = "not_opened"  # nobody logged in while the window must be staffed (working time)
    CLOSED = "closed"  # nobody logged in, and it need not be staffed now
    PAUSED = "paused"  # a declared pause

    @property
    def open(self) -> bool:
        return self in (Staffing.STAFFED, Staffing.UNSTAFFED, Staffing.UNVERIFIED)


# 空岗: the time a window that must be staffed is not seen staffed, in three categories shown
# side by side everywhere (never opened; open but empty; open with the camera off).
VACANCY = (Staffing.NOT_OPENED, Staffing.UNSTAFFED, Staffing.UNVERIFIED)


class WindowPhase(StrEnum):
    CLOSED = "closed"  # nobody logged in
    IDLE = "idle"  # open, no current ticket
    CALLED = "called"  # a ticket called, citizen not yet arrived
    SERVING = "serving"
    PAUSED = "paused"  # declared pause


# A staff member logged in and not paused: the window serves.
OPEN_PHASES = frozenset({WindowPhase.IDLE, WindowPhase.CALLED, WindowPhase.SERVING})


@record
class WindowState:
    site: str
    window: str
    phase: WindowPhase = WindowPhase.CLOSED
    staff: str | None = None
    logged_in_at: float | None = None
    pause_reason: PauseReason | None = None
    paused_at: float | None = None
    ticket: str | None = None  # current ticket number
    priority_streak: int = 0  # consecutive priority calls, for the green-channel cap
    served_today: int = 0
    day: str = ""
    last_served_ticket: str | None = None  # the visit a rating pad's score refers to
    last_served_staff: str | None = None
    present: bool | None = None  # camera: somebody at the seat (None: no report yet)
    pause_case: str | None = None  # the case a fieldwork pause is for (no pause overrun then)

    def evolve(self, **changes: Any) -> WindowState:
        return evolve(self, **changes)
