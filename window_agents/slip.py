"""排队凭条: the ticket slip, laid out once and printed on a receipt printer or shown as text;
likewise the window's 办件凭条 (``case_layout``) and 一次性告知书 (``notice_layout``).

``layout`` is a pure function from the engine's reply (its ``ticket``) and the site to the
slip's operations: lines of text and the QR code of the slip's link. ``as_text`` shows them on
a console; ``print_escpos`` sends them to an ESC/POS printer through python-escpos: the text in
GB18030 (what the receipt printers sold in China print in their Chinese mode), the QR code with
the printer's own QR command (GS ( k), so it is as sharp as the printer can make it.

``--printer`` names the printer: ``usb:VID:PID`` (hexadecimal), ``serial:/dev/ttyS0``,
``network:HOST[:PORT]`` (default port 9100), or ``file:PATH`` (the raw bytes, e.g. a device
file such as /dev/usb/lp0, or a plain file for tests).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from queue_engine.config import Site

RULE = "=" * 32
THIN = "-" * 32
ENCODING = "gb18030"
# FS & : the printer's Chinese character mode, in which it reads the two- and four-byte
# GB18030 sequences; ESC @ first resets whatever a previous job left set.
_INIT = b"\x1b@"
_CHINESE_MODE = b"\x1c&"
QR_MODULE_DOTS = 6  # a module of 6 dots: about 0.75 mm on a 203 dpi printer, easy for a phone

# Green channel (绿色通道): the protocol's priority codes and their Chinese names.
PRIORITY_NAMES = {"elderly": "老年人", "disabled": "残疾人", "pregnant": "孕妇", "veteran": "军人", "other": "其他优先"}


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    bold: bool = False
    big: bool = False  # double width and height: the number
    align: Literal["left", "center"] = "left"


@dataclass(frozen=True, slots=True)
class QrCode:
    data: str


@dataclass(frozen=True, slots=True)
class Cut:
    pass


Operation = Line | QrCode | Cut


def _local_time(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def layout(site: Site, ticket: dict, priority: str | None = None) -> list[Operation]:
    """The slip of the reply's ``ticket`` at ``site``: name, number, service, people ahead,
    wait, time, the QR code of the slip's link (when the engine sent one) and the complaint
    telephones."""
    service = site.service(ticket.get("service", ""))
    service_name = service.name if service else ticket.get("service", "")
    ahead = ticket.get("ahead", 0)
    eta = ticket.get("eta_min")
    wait = "无需等候" if not ahead else (f"约 {eta} 分钟" if eta is not None else "请留意叫号")
    ops = _header(site, "排队凭条")
    ops += [
        Line(f"号码：{ticket['no']}", bold=True, big=True),
        Line(f"事项：{service_name}"),
        Line(f"前面还有：{ahead} 人"),
        Line(f"预计等候：{wait}"),
        Line(f"取号时间：{_local_time(ticket.get('issued_at'))}"),
    ]
    if priority:
        ops.append(Line(f"绿色通道：{PRIORITY_NAMES.get(priority, priority)}"))
    ops += [
        Line(THIN),
        Line("请留意大厅叫号屏和语音提示，"),
        Line("叫到您的号码时请到对应窗口办理。"),
        Line("办事结束后，欢迎对服务进行评价。"),
    ]
    url = ticket.get("url")
    if url:
        ops += [Line(THIN), Line("微信或浏览器扫码：查看排队进度、评价服务", align="center"), QrCode(url)]
    return ops + _footer(site)


def _header(site: Site, title: str) -> list[Operation]:
    return [Line(RULE), Line(site.name, bold=True, align="center"), Line(title, align="center"), Line(THIN)]


def _footer(site: Site) -> list[Operation]:
    """The complaint telephones (whom to call), and the cut."""
    complaints = site.complaints.labelled()
    ops: list[Operation] = [Line(THIN), *(Line(text) for text in complaints)] if complaints else []
    return [*ops, Line(RULE), Cut()]


def _service_name(site: Site, code: str) -> str:
    service = site.service(code)
    return service.name if service else code


# What a finish's outcome makes of the case it opens (the case slip's 办件类型).
CASE_KINDS = {"accepted": "承诺件", "proxy": "帮办代办", "failed": "办不成事兜底"}


def case_layout(site: Site, reply: dict, outcome: str, window_name: str = "") -> list[Operation]:
    """办件凭条: the case a finish (受理, 帮办代办, 办不成) or a home visit opened, from the
    engine's reply: its number, service, kind, due day and the QR code of its page (when the
    engine sent its link), so that the citizen can follow it."""
    ops = _header(site, "办件凭条")
    ops += [
        Line(f"办件编号：{reply['case']}", bold=True),
        Line(f"事项：{_service_name(site, reply.get('service', ''))}"),
        Line(f"类型：{CASE_KINDS.get(outcome, '帮办代办')}"),
    ]
    if window_name:
        ops.append(Line(f"受理窗口：{window_name}"))
    if reply.get("due_day"):
        ops.append(Line(f"承诺办结：{reply['due_day']} 前", bold=True))
    ops += [Line(THIN), Line("请妥善保存办件编号，"), Line("查询或再次办理时请出示。")]
    url = reply.get("case_url")
    if url:
        ops += [Line(THIN), Line("微信或浏览器扫码：查看办理进度", align="center"), QrCode(url)]
    return ops + _footer(site)


def notice_layout(site: Site, reply: dict, window_name: str = "") -> list[Operation]:
    """一次性告知书: what the citizen must still bring, told once (一次性告知制): the notice's
    number, the service, the missing materials by name (as the engine recorded them from the
    guide), the guide's basis (办事依据) and whom to call."""
    service = site.service(reply.get("service", ""))
    ops = _header(site, "一次性告知书")
    ops += [
        Line(f"告知书编号：{reply['notice']}", bold=True),
        Line(f"事项：{_service_name(site, reply.get('service', ''))}"),
    ]
    if window_name:
        ops.append(Line(f"告知窗口：{window_name}"))
    ops += [Line(THIN), Line("您办理本事项尚需补齐以下材料：")]
    ops += [Line(f"{i}. {name}") for i, name in enumerate(reply.get("missing") or [], 1)]
    if service is not None and service.guide.basis:
        ops += [Line(THIN), Line(f"办理依据：{service.guide.basis}")]
    ops += [
        Line(THIN),
        Line("以上为本事项需补齐的全部材料，"),
        Line("补齐后再来办理时请出示本告知书编号。"),
        Line("如有疑问或再次被要求补充其他材料，"),
        Line("请拨打以下电话反映："),
    ]
    return ops + _footer(site)


def as_text(ops: list[Operation]) -> str:
    """The slip as a console shows it (the QR code as its link)."""
    lines = []
    for op in ops:
        if isinstance(op, Line):
            lines.append(op.text.center(28).rstrip() if op.align == "center" else op.text)
        elif isinstance(op, QrCode):
            lines.append(op.data)
    return "\n".join(lines)


def print_escpos(printer, ops: list[Operation]) -> None:
    """Send the slip to a python-escpos printer (any of its classes, Dummy included)."""
    printer._raw(_INIT + _CHINESE_MODE)
    for op in ops:
        if isinstance(op, Line):
            printer.set(align=op.align, bold=op.bold, double_width=op.big, double_height=op.big, normal_textsize=True)
            printer._raw(op.text.encode(ENCODING) + b"\n")
        elif isinstance(op, QrCode):
            printer.set(align="center", normal_textsize=True)
            printer.qr(op.data, size=QR_MODULE_DOTS, native=True)
        else:
            printer.cut()


async def print_out(printer, ops: list[Operation]) -> Exception | None:
    """Print ``ops`` off the event loop (the printer blocks); the printer's error, if any, for
    the caller to say what the citizen should do instead."""
    try:
        await asyncio.to_thread(print_escpos, printer, ops)
    except Exception as exc:  # the printer's own errors (escpos.exceptions), OSError, USB errors
        return exc
    return None


class PrinterSpecError(ValueError):
    """``--printer`` names no printer this agent can drive; the text says what is expected."""


PRINTER_FORMS = "usb:VID:PID (hex), serial:DEVICE, network:HOST[:PORT] or file:PATH"


def parse_printer(spec: str) -> tuple[str, tuple]:
    """``--printer`` -> (kind, arguments), checked before anything is opened."""
    kind, _, rest = spec.partition(":")
    if kind == "usb":
        vendor, _, product = rest.partition(":")
        try:
            return "usb", (int(vendor, 16), int(product, 16))
        except ValueError:
            raise PrinterSpecError(
                f"{spec!r}: a USB printer is usb:VID:PID in hexadecimal, e.g. usb:0416:5011"
            ) from None
    if kind in ("serial", "file") and rest:
        return kind, (rest,)
    if kind == "network" and rest:
        host, _, port = rest.partition(":")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise PrinterSpecError(f"{spec!r}: the port must be a number from 1 to 65535")
        return "network", (host, int(port) if port else 9100)
    raise PrinterSpecError(f"{spec!r} is not a printer: {PRINTER_FORMS}")


def open_printer(spec: str):
    """The python-escpos printer ``spec`` names, opened (a printer that cannot be reached
    raises here, before any number is taken)."""
    # Imported when a printer is used: it loads Pillow and the USB and serial libraries.
    from escpos import printer as escpos_printer

    kind, args = parse_printer(spec)
    if kind == "usb":
        device = escpos_printer.Usb(*args)
    elif kind == "serial":
        device = escpos_printer.Serial(devfile=args[0])
    elif kind == "network":
        device = escpos_printer.Network(host=args[0], port=args[1])
    else:
        device = escpos_printer.File(devfile=args[0])
    device.open()
    return device
