"""Named refusals. An event that is not legal in the current state raises one of these and
changes nothing; the shell turns it into a failure reply with the code and the Chinese text."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNKNOWN_SERVICE = "unknown_service"
    SERVICE_CLOSED = "service_closed"
    QUEUE_EMPTY = "queue_empty"
    NOT_LOGGED_IN = "not_logged_in"
    NOT_ALLOWED = "not_allowed"
    NO_CURRENT_TICKET = "no_current_ticket"
    # Added to the protocol's list; each names a refusal a panel operator can act on.
    BUSY = "busy"  # the window still has a ticket called or in service
    WINDOW_PAUSED = "window_paused"
    NOT_PAUSED = "not_paused"
    NOT_STARTED = "not_started"
    ALREADY_STARTED = "already_started"
    UNKNOWN_TICKET = "unknown_ticket"
    UNKNOWN_WINDOW = "unknown_window"
    UNKNOWN_STAFF = "unknown_staff"
    ALREADY_RATED = "already_rated"
    NOTHING_TO_RATE = "nothing_to_rate"
    UNKNOWN_ALERT = "unknown_alert"
    ALREADY_ACKNOWLEDGED = "already_acknowledged"
    NOTE_REQUIRED = "note_required"
    ID_REUSED = "id_reused"  # the event id was used before for another request
    UNKNOWN_CASE = "unknown_case"  # no case or notice of that number (at this site, still kept)
    CASE_CLOSED = "case_closed"  # the case was completed, returned or withdrawn already
    UNKNOWN_RESERVATION = "unknown_reservation"  # no reserved ticket has this check-in code (now)
    NO_PRIORITY_CLAIM = "no_priority_claim"  # no green channel waits for a window's word on this ticket


MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.BAD_REQUEST: "请求格式不正确",
    ErrorCode.UNKNOWN_SERVICE: "没有这项业务",
    ErrorCode.SERVICE_CLOSED: "该业务当前不在取号时间内",
    ErrorCode.QUEUE_EMPTY: "当前没有可叫的号",
    ErrorCode.NOT_LOGGED_IN: "本窗口尚未签到",
    ErrorCode.NOT_ALLOWED: "本窗口不能办理该业务",
    ErrorCode.NO_CURRENT_TICKET: "本窗口当前没有在办的号",
    ErrorCode.BUSY: "请先处理当前号（开始办理、办结、过号或转移）",
    ErrorCode.WINDOW_PAUSED: "本窗口暂停服务中，请先恢复",
    ErrorCode.NOT_PAUSED: "本窗口没有暂停",
    ErrorCode.NOT_STARTED: "当前号尚未开始办理",
    ErrorCode.ALREADY_STARTED: "当前号已开始办理",
    ErrorCode.UNKNOWN_TICKET: "没有这个号或该号不在等候",
    ErrorCode.UNKNOWN_WINDOW: "没有这个窗口",
    ErrorCode.UNKNOWN_STAFF: "没有这名工作人员",
    ErrorCode.ALREADY_RATED: "这次办事已经评价过了",
    ErrorCode.NOTHING_TO_RATE: "本窗口还没有可评价的办事记录",
    ErrorCode.UNKNOWN_ALERT: "没有这条未关闭的告警",
    ErrorCode.ALREADY_ACKNOWLEDGED: "这条告警已经确认过了",
    ErrorCode.NOTE_REQUIRED: "差评告警须填写整改回访情况",
    ErrorCode.UNKNOWN_CASE: "没有这个办件或告知书编号",
    ErrorCode.CASE_CLOSED: "该办件已办结、退回或撤回",
    ErrorCode.UNKNOWN_RESERVATION: "没有这个签到码，或预约已过期",
    ErrorCode.NO_PRIORITY_CLAIM: "这个号没有待核验的优先（绿色通道）申请",
    ErrorCode.ID_REUSED: "该请求编号已用于另一个请求，本次请求未受理；设备须为每个新请求使用新的编号",
}


class Refused(Exception):
    """The event is not legal now. Raised before any state changes."""

    def __init__(self, code: ErrorCode, detail: str | None = None):
        self.code = code
        self.pending: list[Any] = []  # commands of a day roll done before the refusal (Hall.handle)
        self.message = MESSAGES[code] + (f"：{detail}" if detail else "")
        super().__init__(f"{code.value}: {self.message}")
