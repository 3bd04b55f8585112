"""Chinese labels of the values the store records (outcomes, alert kinds, categories)."""

from __future__ import annotations

OUTCOMES = ("done", "accepted", "informed", "proxy", "failed")
OUTCOME_LABELS = {
    "done": "办结",
    "accepted": "受理",
    "informed": "一次性告知",
    "proxy": "帮办代办",
    "failed": "办不成",
}

PAUSE_REASONS = ("break", "meal", "meeting", "fieldwork", "other")
PAUSE_LABELS = {
    "break": "休息",
    "meal": "就餐",
    "meeting": "会议",
    "fieldwork": "外出办事",
    "other": "其他",
}

# Accounting categories (``accounting.category``), counted within working time only.
CATEGORY_LABELS = {
    "staffed": "在岗",
    "unstaffed": "空岗（无人在座）",
    "unverified": "无法核实（摄像头不可用）",
    "closed": "未开窗（无人登录）",
    "online": "在线",
    "offline": "离线",
    "unknown": "未上报",
    **{f"paused:{reason}": f"暂停·{label}" for reason, label in PAUSE_LABELS.items()},
}

ALERT_LABELS = {
    "window_unstaffed": "窗口空岗",
    "window_not_opened": "窗口未按时开窗",
    "pause_overrun": "暂停超时",
    "device_offline": "设备离线",
    "device_shutdown": "监察设备被关闭",
    "camera_tamper": "摄像头遮挡或移位",
    "wait_too_long": "等候超时",
    "queue_surge": "排队激增",
    "bad_rating": "差评",
    "unauthorized": "非法或越权设备",
}

ALERT_STATE_LABELS = {"firing": "未解除", "acknowledged": "已确认", "resolved": "已解除"}
SEVERITY_LABELS = {"critical": "严重", "warning": "一般"}

SITE_KIND_LABELS = {"county": "县级政务服务中心", "township": "乡镇行政审批服务中心", "village": "村（社区）便民服务站"}

DEVICE_KIND_LABELS = {
    "kiosk": "取号机",
    "panel": "窗口叫号器",
    "camera": "电子监察摄像头",
    "pad": "好差评评价器",
    "display": "叫号显示屏",
    "selfservice": "24小时自助终端",
}

FOLLOW_UP_LABELS = {"done": "已整改", "overdue": "逾期未整改", "open": "待整改"}

GUIDE_FIELD_LABELS = {
    "basis": "办事依据",
    "conditions": "办理条件",
    "materials": "申请材料",
    "time_limit": "办理时限",
    "fee": "收费情况",
    "item_type": "办件类型",
}
