"""取号机 (ticket kiosk): offers the site's services, takes a number, prints the slip.

``--take SERVICE`` takes one number and exits (scripts, a phone-app gateway, tests);
``--checkin CODE`` checks in a number taken with a phone and exits; otherwise a numbered menu
on stdin: ``3`` or ``shebao``, optionally followed by a green channel, e.g. ``3 老年人``;
``签到 482915`` checks in a phone's number by its six-digit code; ``q`` leaves.
"""

from __future__ import annotations

import re
from typing import TextIO

from queue_engine.config import Site

from . import slip as slips
from .console import Lines, say
from .device import Device, NoReply
from .slip import PRIORITY_NAMES

# Green channel (绿色通道): the words a citizen or a hall guide may type for its codes.
PRIORITY_WORDS = {
    **{code: code for code in PRIORITY_NAMES},
    "老年人": "elderly",
    "老人": "elderly",
    "残疾人": "disabled",
    "残疾": "disabled",
    "孕妇": "pregnant",
    "军人": "veteran",
    "退役军人": "veteran",
    "其他": "other",
    "优先": "other",
}
RULE, THIN = slips.RULE, slips.THIN
CHECK_IN_WORDS = ("签到", "c", "checkin")
CHECK_IN_CODE = re.compile(r"^[0-9]{6}$")


class ChoiceError(ValueError):
    """What the citizen typed is not a choice; the text says so in Chinese."""


def parse_priority(text: str | None) -> str | None:
    if not text:
        return None
    code = PRIORITY_WORDS.get(text.strip().lower()) or PRIORITY_WORDS.get(text.strip())
    if code is None:
        raise ChoiceError(f"没有“{text}”这种绿色通道，可选：{'、'.join(PRIORITY_NAMES.values())}")
    return code


def menu(site: Site) -> str:
    lines = [RULE, site.name, "欢迎取号，请选择办理事项：", THIN]
    category = None
    for n, service in enumerate(site.services, 1):
        if service.category != category:
            category = service.category
            lines.append(f"【{category}】")
        lines.append(f"  {n:>2}. {service.name}（{service.prefix}）")
    lines += [
        THIN,
        "输入序号取号，如“1”；绿色通道在序号后注明，如“1 老年人”；",
        "手机取的号请签到：输入“签到 六位签到码”，如“签到 482915”；输入 q 退出。",
        RULE,
    ]
    return "\n".join(lines)


def parse_choice(site: Site, text: str) -> tuple[str, str | None]:
    """``"3"``, ``"shebao"``, ``"3 老年人"`` or ``"shebao elderly"`` -> (service code, priority)."""
    parts = text.split()
    if not parts:
        raise ChoiceError("请输入事项序号")
    first, rest = parts[0], parts[1:]
    if first.isdigit():
        n = int(first)
        if not 1 <= n <= len(site.services):
            raise ChoiceError(f"没有序号 {n}，请输入 1 到 {len(site.services)}")
        code = site.services[n - 1].code
    elif site.service(first) is not None:
        code = first
    else:
        raise ChoiceError(f"没有“{first}”这项业务，请按序号选择")
    if len(rest) > 1:
        raise ChoiceError("格式：序号 [绿色通道]，如“1 老年人”")
    return code, parse_priority(rest[0] if rest else None)


def parse_check_in(text: str) -> str | None:
    """``"签到 482915"`` -> ``"482915"``; None when the text is not a check-in."""
    parts = text.split()
    if len(parts) != 2 or parts[0].lower() not in CHECK_IN_WORDS:
        return None
    if not CHECK_IN_CODE.match(parts[1]):
        raise ChoiceError("签到码是六位数字，如“签到 482915”")
    return parts[1]


async def take_number(
    device: Device, site: Site, service: str, priority: str | None, out: TextIO, err: TextIO, printer=None
) -> bool:
    """Take a number and give the slip: on the screen, and printed when the kiosk has a
    printer (python-escpos; None: the screen only)."""
    fields = {"service": service, "priority": priority}
    return await _slip_for(device, site, "取号", "ticket.request", fields, priority, out, err, printer)


async def check_in(device: Device, site: Site, code: str, out: TextIO, err: TextIO, printer=None) -> bool:
    """Check in a number taken with a phone (reserved until then, never called) and give its
    slip, the number now waiting at its place."""
    return await _slip_for(device, site, "签到", "ticket.checkin", {"code": code}, None, out, err, printer)


async def _slip_for(
    device: Device,
    site: Site,
    action: str,
    kind: str,
    fields: dict,
    priority: str | None,
    out: TextIO,
    err: TextIO,
    printer,
) -> bool:
    try:
        reply = await device.request(kind, **fields)
    except NoReply:
        say(err, f"{action}失败：系统无应答，请稍后再试或咨询工作人员。")
        return False
    if not reply.get("ok"):
        say(err, f"{action}失败：{reply.get('message') or reply.get('error')}")
        return False
    ops = slips.layout(site, reply["ticket"], priority)
    say(out, slips.as_text(ops))
    if printer is not None and (exc := await slips.print_out(printer, ops)) is not None:
        say(err, f"凭条打印失败（{exc}），您的号码是 {reply['ticket']['no']}，请记下号码或咨询工作人员。")
        return False
    return True


async def run(
    device: Device,
    site: Site,
    *,
    take: str | None,
    priority: str | None,
    out: TextIO,
    err: TextIO,
    printer=None,
    checkin: str | None = None,
) -> int:
    if take is not None:
        return 0 if await take_number(device, site, take, priority, out, err, printer) else 1
    if checkin is not None:
        return 0 if await check_in(device, site, checkin, out, err, printer) else 1
    lines = Lines()
    say(out, menu(site))
    while True:
        text = await lines.next()
        if text is None or text.lower() in ("q", "quit", "退出"):
            return 0
        if not text:
            continue
        try:
            code = parse_check_in(text)
            if code is None:
                service, chosen_priority = parse_choice(site, text)
        except ChoiceError as exc:
            say(out, str(exc))
            continue
        if code is not None:
            await check_in(device, site, code, out, out, printer)
        else:
            await take_number(device, site, service, chosen_priority, out, out, printer)
        say(out, "请选择办理事项（输入序号，q 退出）：")
