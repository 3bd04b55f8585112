"""Inbound events: what devices (and operators) tell the engine, already validated and
authorised by the shell. Frozen, slotted, keyword-only: an event is a fact, not a bag."""

from __future__ import annotations

from enum import StrEnum

from .records import record


class Priority(StrEnum):
    ELDERLY = "elderly"
    DISABLED = "disabled"
    PREGNANT = "pregnant"
    VETERAN = "veteran"
    OTHER = "other"


class PauseReason(StrEnum):
    BREAK = "break"
    MEAL = "meal"
    MEETING = "meeting"
    FIELDWORK = "fieldwork"
    OTHER = "other"


class RatingReason(StrEnum):
    """Why a visit was rated 不满意 or 非常不满意: the national 好差评 categories (labels in
    ``vocabulary.RATING_REASON``)."""

    ATTITUDE = "attitude"
    EFFICIENCY = "efficiency"
    GUIDANCE = "guidance"
    MATERIALS = "materials"
    REPEAT_VISITS = "repeat_visits"
    PROCESS = "process"
    RESULT = "result"
    ENVIRONMENT = "environment"
    INTEGRITY = "integrity"
    OTHER = "other"


class Outcome(StrEnum):
    DONE = "done"  # 办结: finished on the spot
    ACCEPTED = "accepted"  # 受理: accepted for later completion
    INFORMED = "informed"  # 一次性告知: told once what is missing
    PROXY = "proxy"  # 帮办代办
    FAILED = "failed"  # 办不成


@record
class Event:
    site: str
    device: str
    id: str  # the device's event id; replies carry it back as "re"


# -- kiosk ---------------------------------------------------------------------------
@record
class TicketRequest(Event):
    """A number asked for: at a kiosk, or with a phone (``phone`` set, by the web): such a
    ticket is reserved until checked in at the hall (``[web] reservation_min``), and its
    ``priority`` is only a claim that a window confirms or refuses."""

    service: str
    priority: Priority | None = None
    appointment: str | None = None
    # Taken with a phone (web API): its citizen key (privacy.citizen_key, never the number) and
    # the number's last four digits, for display.
    phone: str | None = None
    phone_tail: str | None = None


@record
class TicketCheckIn(Event):
    """A reserved ticket's citizen is at the hall: its check-in code, typed at a kiosk or sent
    by the web for the phone that scanned the entrance's code."""

    code: str


@record
class PriorityVerify(Event):
    """A window's staff member confirms or refuses the green channel a phone asked for."""

    ticket: str
    confirm: bool


# -- panel ---------------------------------------------------------------------------
@record
class StaffLogin(Event):
    staff: str


@record
class StaffLogout(Event):
    pass


@record
class WindowPause(Event):
    reason: PauseReason


@record
class WindowResume(Event):
    pass


@record
class CallNext(Event):
    pass


@record
class CallPick(Event):
    ticket: str


@record
class CallRecall(Event):
    pass


@record
class CallSkip(Event):
    pass


@record
class ServiceStart(Event):
    pass


@record
class ServiceFinish(Event):
    """The visit ends with its outcome. The optional fields (core.cases) say what it leads to:
    ``citizen``: the citizen's key (``privacy.citizen_key`` of the ID or mobile number), to link
    the matter's visits; ``refer``: a notice's or case's number the citizen brings; ``missing``
    (一次性告知): the guide's materials that were missing, by number (1 = the first listed) or
    by name; ``passed_to`` and ``agent`` (帮办代办): where it was passed on to, and the
    responsible staff member when not the one at the window."""

    outcome: Outcome
    citizen: str | None = None
    refer: str | None = None
    missing: tuple[str | int, ...] = ()
    passed_to: str | None = None
    agent: str | None = None


@record
class TicketTransfer(Event):
    to_service: str | None = None
    to_window: str | None = None


# -- cases (办件): from panels, or from the manager console (``device`` names the operator) ----
@record
class CaseEvent(Event):
    case: str  # the case's number
    note: str = ""


@record
class CaseNote(CaseEvent):
    """A progress note."""


@record
class CasePassOn(CaseEvent):
    """Passed on to a department or a higher level; the agent stays responsible."""

    to: str


@record
class CaseComplete(CaseEvent):
    result: str


@record
class CaseReturn(CaseEvent):
    """Returned to the citizen (``note``: why)."""


@record
class CaseWithdraw(CaseEvent):
    """The citizen withdrew it."""


# -- camera, pad ---------------------------------------------------------------------
@record
class Presence(Event):
    window: str
    present: bool
    count: int


@record
class Tamper(Event):
    kind: str  # occluded, moved, video_lost, restored


@record
class Rating(Event):
    """A 好差评 rating of one visit, from the window's pad or the citizen's phone (``device``
    ``phone``): the visit just finished at ``window``, or ``ticket``. ``reasons`` (only for a
    bad score: 不满意, 非常不满意) and ``comment`` are the citizen's."""

    window: str
    score: int
    ticket: str | None = None
    reasons: tuple[RatingReason, ...] = ()
    comment: str = ""


# -- any device: liveness (no reply) ----------------------------------------------------
@record
class DeviceStatus(Event):
    online: bool
    reason: str | None = None  # "lost" (Last Will) or "shutdown" when offline
    kind: str | None = None
    firmware: str | None = None


@record
class Heartbeat(Event):
    seq: int
    video_ok: bool | None = None


# -- raised by the shells ------------------------------------------------------------
@record
class Refusal(Event):
    """The shell refused a message from this device (for the ``unauthorized`` alert)."""

    code: str


@record
class EngineLink(Event):
    """The engine's own connection to the broker went down or came back. While it is down,
    and for a settling period after it returns, what devices did not say is no evidence
    against them. ``session_lost``: the broker no longer had the engine's persistent session
    (what devices sent meanwhile is gone)."""

    up: bool
    session_lost: bool = False


@record
class EngineStalled(Event):
    """The engine's event loop did not run from ``since`` until now (a paused VM, a process
    stopped): nothing was read meanwhile, so silences of that period prove nothing."""

    since: float


@record
class Acknowledge(Event):
    """An operator acknowledges an alert; ``device`` names the operator."""

    alert: str
    note: str = ""


CASE_EVENTS = (CaseNote, CasePassOn, CaseComplete, CaseReturn, CaseWithdraw)
# Liveness is the same for every kind.
LIVENESS_EVENTS = (DeviceStatus, Heartbeat)
# Raised by the engine's shells about the engine itself: applied before any timer is run, so
# that deadlines which fell in a blind period are judged knowing it.
ENGINE_EVENTS = (EngineLink, EngineStalled)
