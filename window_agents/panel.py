"""叫号器 (window call panel): keyboard-driven, one command per line.

The panel shows what the engine says about its window and the queue (the retained
``window/{id}/state`` and ``queue/state`` topics), so the screen is right even after a
restart of the panel or the engine.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from queue_engine.config import Site
from queue_engine.core.vocabulary import OUTCOME, PAUSE_REASON
from queue_engine.privacy import citizen_key

from . import slip as slips
from .console import Lines, say
from .device import Device, NoReply, wait_event

OUTCOMES = {outcome.value: label for outcome, label in OUTCOME.items()}  # the vocabulary's words
OUTCOME_WORDS = {
    **{code: code for code in OUTCOMES},
    "办结": "done",
    "受理": "accepted",
    "告知": "informed",
    "一次性告知": "informed",
    "代办": "proxy",
    "帮办代办": "proxy",
    "办不成": "failed",
}
PAUSES = {reason.value: label for reason, label in PAUSE_REASON.items()}  # the vocabulary's words
PAUSE_WORDS = {
    **{code: code for code in PAUSES},
    **{name: code for code, name in PAUSES.items()},
    "吃饭": "meal",
    "用餐": "meal",
    "开会": "meeting",
}
# Options of a finish (f 结果 选项=值 …), by their word at the panel -> the protocol's field.
FINISH_OPTIONS = {
    "to": "passed_to",
    "转": "passed_to",
    "agent": "agent",
    "代办员": "agent",
    "missing": "missing",
    "缺": "missing",
    "id": "citizen",
    "证件": "citizen",
    "ref": "refer",
    "编号": "refer",
}
# Case events (k 办件号 动作 [文字]): the action's word -> (event type, the field its text fills).
CASE_ACTIONS = {
    "note": ("case.note", "note"),
    "进展": ("case.note", "note"),
    "pass": ("case.pass", "to"),
    "转": ("case.pass", "to"),
    "done": ("case.complete", "result"),
    "办结": ("case.complete", "result"),
    "return": ("case.return", "note"),
    "退回": ("case.return", "note"),
    "withdraw": ("case.withdraw", "note"),
    "撤回": ("case.withdraw", "note"),
}
CASE_DONE = {
    "case.note": "已记录进展",
    "case.pass": "已转交",
    "case.complete": "已办结",
    "case.return": "已退回",
    "case.withdraw": "已撤回",
}
PHASES = {"closed": "未签到", "idle": "空闲", "called": "已叫号", "serving": "办理中", "paused": "暂停服务"}

HELP = """\
叫号器按键（每行一条，回车执行）：
  l 工号      签到，如 l s001          o          签退
  n          叫下一个号                c 号码      叫指定的号（含过号后回来的），如 c A003
  r          重呼当前号                s          过号（未到）
  b          开始办理                  f [结果] [选项]  办结，结果：done 办结（缺省）、accepted 受理、
                                       informed 一次性告知、proxy 帮办代办、failed 办不成（转办不成事窗口）
             选项：缺=1,3 或材料名（所缺材料，按办事指南的序号）、转=部门（帮办代办转往何处）、
             代办员=工号、证件=身份证号或手机号（只发送其摘要）、编号=群众带来的告知书或办件编号，
             如 f 告知 缺=1,2 证件=13800000000
  k 办件号 动作 [文字]  办件：进展 文字、转 部门、办结 结果、退回 原因、撤回，如 k J20261125001 转 县人社局
  m 事项 [选项] [说明]  不取号登记帮办代办办件（上门办理），选项：证件=、转=，如 m daiban 证件=13800000000 独居老人
  t 事项/窗口  转移当前号，如 t shebao 或 t w03（保留原排队位置）
  p 原因 [办件号]  暂停：break 休息、meal 就餐、meeting 会议、fieldwork 外勤、other 其他；
             外勤写明办件号（为该办件上门办理），不计暂停超时，如 p 外勤 J20261125001
  u          恢复服务                  v          刷新显示
  h          帮助                      q          退出（设备正常下线）"""


class CommandError(ValueError):
    pass


@dataclass(frozen=True)
class Action:
    type: str
    fields: dict[str, Any]


def parse_command(
    site: Site, text: str, citizen_secret: bytes | None = None
) -> Action | Literal["help", "view", "quit"]:
    """A typed line -> the protocol event to send, or a local command (``help``, ``view``,
    ``quit``). ``citizen_secret``: the key of the citizen keys (``privacy``), to record an ID
    or mobile number. Raises CommandError with a Chinese explanation."""
    parts = text.split()
    key, args = parts[0].lower(), parts[1:]

    def one(what: str) -> str:
        if len(args) != 1:
            raise CommandError(f"请写明{what}，如：{HELP_EXAMPLES[key]}")
        return args[0]

    if key in ("h", "?", "help", "帮助"):
        return "help"
    if key in ("v", "view"):
        return "view"
    if key in ("q", "quit", "退出"):
        return "quit"
    if key == "l":
        return Action("staff.login", {"staff": one("工号")})
    if key == "o":
        return Action("staff.logout", {})
    if key == "n":
        return Action("call.next", {})
    if key == "c":
        return Action("call.pick", {"ticket": one("号码").upper()})
    if key == "r":
        return Action("call.recall", {})
    if key == "s":
        return Action("call.skip", {})
    if key == "b":
        return Action("service.start", {})
    if key == "f":
        has_outcome = bool(args) and "=" not in args[0]  # (options alone: done, with them)
        word = args[0] if has_outcome else "done"
        outcome = OUTCOME_WORDS.get(word.lower()) or OUTCOME_WORDS.get(word)
        if outcome is None:
            raise CommandError("办结结果可选：" + "、".join(f"{c} {n}" for c, n in OUTCOMES.items()))
        options = finish_options(args[1:] if has_outcome else args, citizen_secret)
        return Action("service.finish", {"outcome": outcome, **options})
    if key == "k":
        found = (CASE_ACTIONS.get(args[1].lower()) or CASE_ACTIONS.get(args[1])) if len(args) >= 2 else None
        if found is None:
            raise CommandError("办件操作：k 办件号 进展|转|办结|退回|撤回 [文字]，如 k J20261125001 转 县人社局")
        type_, field = found
        text = " ".join(args[2:])
        if not text and type_ != "case.withdraw":
            raise CommandError("请写明" + {"note": "进展或退回原因", "to": "转往的部门", "result": "办理结果"}[field])
        return Action(type_, {"case": args[0].upper(), **({field: text} if text else {})})
    if key == "m":
        if not args or site.service(args[0]) is None:
            raise CommandError("请写明上门代办的事项代码，如：m daiban 证件=13800000000 独居老人")
        words = [word for word in args[1:] if "=" in word]
        fields = finish_options(words, citizen_secret)
        if set(fields) - {"citizen", "passed_to"}:
            raise CommandError("上门代办的选项只有：证件=、转=")
        note = " ".join(word for word in args[1:] if "=" not in word)
        return Action("case.open", {"service": args[0], **fields, **({"note": note} if note else {})})
    if key == "t":
        target = one("转往的事项或窗口")
        if site.window(target) is not None:
            return Action("ticket.transfer", {"to_window": target})
        if site.service(target) is not None:
            return Action("ticket.transfer", {"to_service": target})
        raise CommandError(f"没有“{target}”这个事项或窗口")
    if key == "p":
        word = args[0] if len(args) == 2 else one("暂停原因")
        reason = PAUSE_WORDS.get(word.lower()) or PAUSE_WORDS.get(word)
        if reason is None:
            raise CommandError("暂停原因可选：" + "、".join(f"{c} {n}" for c, n in PAUSES.items()))
        if len(args) == 2:  # out for a case (a home visit)
            if reason != "fieldwork":
                raise CommandError("只有外勤可以写明办件号，如：p 外勤 J20261125001")
            return Action("window.pause", {"reason": reason, "case": args[1].upper()})
        return Action("window.pause", {"reason": reason})
    if key == "u":
        return Action("window.resume", {})
    raise CommandError(f"不认识的按键“{key}”，输入 h 查看帮助")


def finish_options(words: list[str], citizen_secret: bytes | None = None) -> dict[str, Any]:
    """``缺=1,3 转=县人社局 证件=…`` -> the finish's protocol fields. The ID or mobile number
    never leaves the panel: only its key (``privacy.citizen_key``) is sent, which needs the
    panel's citizen key (``HALLWATCH_CITIZEN_KEY``)."""
    fields: dict[str, Any] = {}
    for word in words:
        name, sep, value = word.partition("=")
        field = FINISH_OPTIONS.get(name.lower()) or FINISH_OPTIONS.get(name)
        if not sep or field is None or not value:
            raise CommandError(f"不认识的选项“{word}”，可用：缺=、转=、代办员=、证件=、编号=")
        if field == "missing":
            fields[field] = [
                int(item) if item.isdigit() else item for item in value.replace("，", ",").split(",") if item
            ]
        elif field == "citizen":
            if citizen_secret is None:
                raise CommandError("本叫号器未配置群众标识密钥（HALLWATCH_CITIZEN_KEY），不能记录证件号或手机号")
            fields[field] = citizen_key(citizen_secret, value)
        elif field == "refer":
            fields[field] = value.upper()
        else:
            fields[field] = value
    return fields


HELP_EXAMPLES = {"l": "l s001", "c": "c A003", "t": "t shebao", "p": "p meal"}


class PanelView:
    """The panel's screen, from the engine's retained window and queue states."""

    def __init__(self, site: Site, window_id: str, window_topic: str, queue_topic: str):
        self.site = site
        self.window_id = window_id
        self.window_topic = window_topic
        self.queue_topic = queue_topic
        window = site.window(window_id)
        self.window_name = window.name if window else window_id
        self.services = site.window_services(window) if window else frozenset()
        self.window: dict | None = None
        self.queue: dict | None = None
        self.changed = asyncio.Event()

    def update(self, topic: str, payload: bytes) -> None:
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if topic == self.window_topic:
            self.window = body
            self.changed.set()
        elif topic == self.queue_topic:
            self.queue = body
            self.changed.set()

    def waiting(self) -> int | None:
        if self.queue is None:
            return None
        return sum(s.get("waiting", 0) for s in self.queue.get("services", []) if s.get("service") in self.services)

    def render(self) -> str:
        parts = [f"【{self.window_name}】"]
        w = self.window
        if w is None:
            parts.append("等待服务器状态…")
        else:
            if w.get("staff"):
                parts.append(f"{w.get('staff_name') or ''}（{w['staff']}）")
            phase = w.get("state", "")
            label = PHASES.get(phase, phase)
            if phase == "paused" and w.get("pause_reason"):
                label += f"：{PAUSES.get(w['pause_reason'], w['pause_reason'])}"
            parts.append(label)
            if w.get("ticket"):
                parts.append(f"当前号 {w['ticket']}")
            parts.append(f"今日已办 {w.get('served_today', 0)} 件")
        waiting = self.waiting()
        if waiting is not None:
            parts.append(f"本窗口可办等候 {waiting} 人")
        return " | ".join(parts)


def describe_success(action: Action, reply: dict, view: PanelView) -> str:
    ticket = reply.get("ticket") if isinstance(reply.get("ticket"), str) else None
    f = action.fields
    site = view.site
    if action.type == "staff.login":
        staff = next((s for s in site.staff if s.id == f["staff"]), None)
        return f"签到成功：{staff.name if staff else ''}（{f['staff']}）"
    if action.type == "staff.logout":
        return "已签退"
    if action.type in ("call.next", "call.pick"):
        return f"已叫号：{ticket}"
    if action.type == "call.recall":
        return f"已重呼：{ticket}"
    if action.type == "call.skip":
        return f"已过号：{ticket}"
    if action.type == "service.start":
        current = view.window.get("ticket") if view.window else None
        return f"开始办理：{ticket or current or ''}"
    if action.type == "service.finish":
        text = (
            f"已{OUTCOMES[f['outcome']]}：{ticket}"
            if f["outcome"] == "done"
            else f"已结束办理（{OUTCOMES[f['outcome']]}）：{ticket}"
        )
        if reply.get("routed_to"):
            window = site.window(reply["routed_to"])
            text += f"，转{window.name if window else reply['routed_to']}"
        if reply.get("case"):
            text += f"，办件号 {reply['case']}"
        if reply.get("notice"):
            text += f"，一次性告知书 {reply['notice']}"
        return text
    if action.type in CASE_DONE:
        return f"办件 {f['case']} {CASE_DONE[action.type]}" + (f"：{f['to']}" if "to" in f else "")
    if action.type == "ticket.transfer":
        # (parse_command transfers only to a window or a service the site has)
        if "to_window" in f:
            window = site.window(f["to_window"])
            assert window is not None
            target = window.name
        else:
            service = site.service(f["to_service"])
            assert service is not None
            target = service.name
        return f"已转移：{ticket} → {target}"
    if action.type == "window.pause":
        return f"暂停服务：{PAUSES[f['reason']]}" + (f"（办件 {f['case']}，不计暂停超时）" if "case" in f else "")
    if action.type == "case.open":
        service = site.service(f["service"])
        assert service is not None  # (parse_command opens cases only for a service the site has)
        return f"已登记上门代办：{service.name}，办件号 {reply.get('case')}"
    if action.type == "window.resume":
        return "恢复服务"
    return "完成"


def handout(action: Action, reply: dict, view: PanelView) -> list[slips.Operation] | None:
    """The paper the citizen is handed after ``action``: the 一次性告知书 of a finish that issued
    one, the 办件凭条 of a finish or a home visit that opened a case; None otherwise."""
    if action.type == "service.finish" and reply.get("notice"):
        return slips.notice_layout(view.site, reply, view.window_name)
    if action.type in ("service.finish", "case.open") and reply.get("case"):
        return slips.case_layout(view.site, reply, action.fields.get("outcome", "proxy"), view.window_name)
    return None


async def run(
    device: Device,
    view: PanelView,
    *,
    out: TextIO,
    settle_s: float = 0.3,
    citizen_secret: bytes | None = None,
    printer=None,
) -> int:
    """Read commands until ``q`` or end of input. Exit code 1 if any command was refused
    or unanswered (so a script notices), else 0. A 一次性告知书 or a 办件凭条 is shown on the
    screen and printed on ``printer`` (python-escpos; None: the screen only)."""
    lines = Lines()
    failures = 0
    say(out, f"{view.site.name} {view.window_name} 叫号器已就绪，输入 h 查看帮助。")
    await _settle(view, settle_s)
    say(out, view.render())
    while True:
        text = await lines.next()
        if text is None:
            break
        if not text:
            continue
        try:
            action = parse_command(view.site, text, citizen_secret)
        except CommandError as exc:
            say(out, str(exc))
            failures += 1
            continue
        if action == "quit":
            break
        if action == "help":
            say(out, HELP)
            continue
        if action == "view":
            say(out, view.render())
            continue
        view.changed.clear()
        try:
            reply = await device.request(action.type, **action.fields)
        except NoReply:
            say(out, "操作失败：服务器无应答，请检查网络后重试")
            failures += 1
            continue
        if reply.get("ok"):
            say(out, describe_success(action, reply, view))
            ops = handout(action, reply, view)
            if ops is not None:
                say(out, slips.as_text(ops))
                if printer is not None and (failed := await slips.print_out(printer, ops)) is not None:
                    say(out, f"打印失败（{failed}）：请把屏幕上的编号抄给办事群众")
                    failures += 1
            await _settle(view, settle_s)
        else:
            failures += 1
            say(out, f"操作失败：{reply.get('message') or reply.get('error')}")
        say(out, view.render())
    return 1 if failures else 0


async def _settle(view: PanelView, first_s: float, quiet_s: float = 0.05) -> None:
    """The engine publishes the window's and the queue's new states right after the reply:
    wait briefly for them (then for a short quiet spell) so that the screen shows them."""
    if not await wait_event(view.changed, first_s):
        return
    while True:
        view.changed.clear()
        if not await wait_event(view.changed, quiet_s):
            return
