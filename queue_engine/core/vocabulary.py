"""The product's one vocabulary: the Chinese word for every value it records and shows.

Reports, the audit, the web pages (served to their scripts as ``/api/v1/vocabulary``) and
Grafana (through the ``hallwatch_label_info`` metric) all read these tables; the labels of
alert kinds and device kinds are kept with the kinds themselves (``alerts.ALERT_KINDS``,
``kinds.DEVICE_KINDS``). A value missing here is a test failure, not a blank on a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .alerts import ALERT_KINDS, AlertState, Audience
from .cases import CaseAction, CaseKind, CaseStatus
from .events import Outcome, PauseReason, Priority, RatingReason
from .kinds import DEVICE_KINDS, OnlineHours
from .model import Staffing, TicketStatus

OUTCOME = {
    Outcome.DONE: "办结",
    Outcome.ACCEPTED: "受理",
    Outcome.INFORMED: "一次性告知",
    Outcome.PROXY: "帮办代办",
    Outcome.FAILED: "办不成",
}
PAUSE_REASON = {
    PauseReason.BREAK: "休息",
    PauseReason.MEAL: "就餐",
    PauseReason.MEETING: "会议",
    PauseReason.FIELDWORK: "外勤",  # (the panel's key word, the manual's and the glossary's)
    PauseReason.OTHER: "其他",
}
ALERT_KIND = {kind.value: rule.label for kind, rule in ALERT_KINDS.items()}
ALERT_STATE = {AlertState.FIRING: "未解除", AlertState.ACKNOWLEDGED: "已确认", AlertState.RESOLVED: "已解除"}
SEVERITY = {"critical": "严重", "warning": "一般"}
AUDIENCE = {Audience.SUPERVISION: "电子监察", Audience.MANAGER: "中心管理", Audience.IT: "信息技术"}
DEVICE_KIND = {kind.value: rule.label for kind, rule in DEVICE_KINDS.items()}
ONLINE_HOURS = {OnlineHours.OFFICE: "工作时间", OnlineHours.ALWAYS: "全天24小时"}
OFFLINE_REASON = {"lost": "断线", "shutdown": "被关闭", "silent": "心跳中断"}
TICKET_STATUS = {
    TicketStatus.RESERVED: "待签到",
    TicketStatus.WAITING: "等候中",
    TicketStatus.CALLED: "正在呼叫",
    TicketStatus.SERVING: "办理中",
    TicketStatus.DONE: "已办结",
    TicketStatus.NO_SHOW: "已过号",
    TicketStatus.EXPIRED: "已过期",
}
STAFFING = {
    Staffing.STAFFED: "在岗",
    Staffing.UNSTAFFED: "无人在座",
    Staffing.UNVERIFIED: "无法核实",
    Staffing.NOT_OPENED: "未开窗",
    Staffing.CLOSED: "无须开窗",
    Staffing.PAUSED: "暂停",
}
# Marks on a window in the consoles: no camera watches it (config.Site.unwatched_windows), so
# its staffing is never verified and window_unstaffed can never fire for it.
WINDOW_MARK = {"no_camera": "无摄像头，无法核验在岗"}
# The three 空岗 categories (model.VACANCY), as the consoles, reports and Grafana show them.
VACANCY = {category: STAFFING[category] for category in (Staffing.NOT_OPENED, Staffing.UNSTAFFED, Staffing.UNVERIFIED)}
# The accounting's categories (the store's ``accounting.category``): a window's or staff
# member's staffing, paused with its reason, a device's liveness.
CATEGORY = {
    **{state.value: label for state, label in STAFFING.items() if state is not Staffing.PAUSED},
    **{f"paused:{reason.value}": f"暂停·{label}" for reason, label in PAUSE_REASON.items()},
    "online": "在线",
    "offline": "离线",
    "unknown": "未上报",
}
RATING = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
# 差评原因: what a citizen who rates 不满意 or 非常不满意 may say went wrong, in the national
# 好差评 categories (服务态度, 办事效率, 办事指南与告知, 材料, 跑动次数, 流程, 办理结果, 环境, 廉洁).
RATING_REASON = {
    RatingReason.ATTITUDE: "服务态度差",
    RatingReason.EFFICIENCY: "办事效率低、等候时间长",
    RatingReason.GUIDANCE: "办事指南不清楚、一次性告知不到位",
    RatingReason.MATERIALS: "要求提供的材料繁琐或重复",
    RatingReason.REPEAT_VISITS: "多次跑动",
    RatingReason.PROCESS: "办事流程繁琐",
    RatingReason.RESULT: "事项没有办成",
    RatingReason.ENVIRONMENT: "服务设施和环境不便利",
    RatingReason.INTEGRITY: "吃拿卡要、违规收费",
    RatingReason.OTHER: "其他",
}
SITE_KIND = {"county": "县级政务服务中心", "township": "乡镇行政审批服务中心", "village": "村（社区）便民服务站"}
FOLLOW_UP = {"done": "已整改", "overdue": "逾期未整改", "open": "待整改"}
# What an alert asks for beyond its kind, as the consoles word it ({n}, {day}: filled in): the
# windows a queue_surge wants opened (its detail's extra_windows), a bad rating's follow-up day.
ALERT_ASKS = {"extra_windows": "需加开 {n} 个窗口", "follow_up_due": "整改期限 {day}"}
GUIDE_FIELD = {
    "basis": "办事依据",
    "conditions": "办理条件",
    "materials": "申请材料",
    "time_limit": "办理时限",
    "fee": "收费情况",
    "item_type": "办件类型",
}
AUDIT_STATUS = {"pass": "达标", "fail": "未达标", "unknown": "未知", "n/a": "不适用"}
CASE_KIND = {CaseKind.PROMISED: "承诺件", CaseKind.PROXY: "帮办代办", CaseKind.UNRESOLVED: "办不成事兜底"}
CASE_STATUS = {
    CaseStatus.OPEN: "办理中",
    CaseStatus.COMPLETED: "已办结",
    CaseStatus.RETURNED: "已退回",
    CaseStatus.WITHDRAWN: "已撤回",
}
CASE_ACTION = {
    CaseAction.OPENED: "受理登记",
    CaseAction.NOTE: "进展",
    CaseAction.PASSED_ON: "转交",
    CaseAction.COMPLETED: "办结",
    CaseAction.RETURNED: "退回",
    CaseAction.WITHDRAWN: "撤回",
    CaseAction.FIELDWORK: "外出办理",
}
# 绿色通道: who may be served first.
PRIORITY = {
    Priority.ELDERLY: "老年人",
    Priority.DISABLED: "残疾人",
    Priority.PREGNANT: "孕妇",
    Priority.VETERAN: "军人及优抚对象",
    Priority.OTHER: "其他特殊群体",
}
# A green channel asked for with a phone, as a window judged it (Ticket.priority_check).
PRIORITY_CHECK = {"pending": "待窗口核验（请出示证件）", "confirmed": "已核验", "refused": "核验未通过，按普通号排队"}
# The report's 办件 figures are given for the site, and per service, window and staff member.
# An open case on the consoles: before its due day, on it (case_overdue warns), after it (critical).
CASE_MARK = {"in_time": "未到期", "due_today": "今日到期", "overdue": "已超期"}
CASE_DIMENSION = {"site": "全站", "service": "事项", "window": "窗口", "staff": "工作人员"}
# 县乡投诉电话 (the site configuration's [complaints]), as the board, the slips and the posters show them.
COMPLAINT_LINE = {"county": "县投诉电话", "township": "乡镇投诉电话"}
# An acknowledgement of an alert of an engine store that was replaced (the same id is another alert now).
STORE_REPLACED = "该大厅引擎已换用新的数据库，这条告警不在其中，无法在源头确认"

# Every table, by name: what the web pages are served and the metrics expose.
TABLES: dict[str, Mapping[Any, str]] = {
    "outcome": OUTCOME,
    "pause_reason": PAUSE_REASON,
    "alert_kind": ALERT_KIND,
    "alert_state": ALERT_STATE,
    "severity": SEVERITY,
    "audience": AUDIENCE,
    "device_kind": DEVICE_KIND,
    "online_hours": ONLINE_HOURS,
    "offline_reason": OFFLINE_REASON,
    "ticket_status": TICKET_STATUS,
    "staffing": STAFFING,
    "vacancy": VACANCY,
    "window_mark": WINDOW_MARK,
    "category": CATEGORY,
    "rating": RATING,
    "rating_reason": RATING_REASON,
    "site_kind": SITE_KIND,
    "follow_up": FOLLOW_UP,
    "alert_asks": ALERT_ASKS,
    "guide_field": GUIDE_FIELD,
    "audit_status": AUDIT_STATUS,
    "case_kind": CASE_KIND,
    "case_status": CASE_STATUS,
    "case_action": CASE_ACTION,
    "case_dimension": CASE_DIMENSION,
    "case_mark": CASE_MARK,
    "complaint_line": COMPLAINT_LINE,
    "priority_check": PRIORITY_CHECK,
    "priority": PRIORITY,
}


def as_json() -> dict[str, dict[str, str]]:
    """Every table with plain string keys (enum members by their value)."""
    return {
        name: {str(getattr(key, "value", key)): label for key, label in table.items()} for name, table in TABLES.items()
    }
