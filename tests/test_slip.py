"""The printed slip (window_agents/slip.py): its ESC/POS bytes, from python-escpos's Dummy printer
and, end to end, from `hallwatch agent kiosk --printer file:PATH` against a real broker and
engine, decode to the expected Chinese text (GB18030) and carry the slip's link as the payload
of the printer's own QR command (GS ( k)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import DEMO_SITE, ROOT
from escpos.printer import Dummy

from queue_engine.config import load_site
from queue_engine.tickettoken import TicketRef, verify_ticket_token
from window_agents import slip

SITE = load_site(DEMO_SITE)
SECRET = "slip-test-ticket-secret-0123456789"
URL = "https://chimei-hall.example.cn/t/demo/20261125-A007-abcdefghijklmnopqrstuvwx"
REPLY_TICKET = {
    "no": "A007",
    "service": "shebao",
    "issued_at": "2026-11-25T09:12:30.000+08:00",
    "ahead": 3,
    "eta_min": 12,
    "token": "20261125-A007-abcdefghijklmnopqrstuvwx",
    "url": URL,
}
QR_COMMAND = b"\x1d(k"  # GS ( k: the printer's QR code functions


def decode_escpos(data: bytes) -> tuple[str, list[str]]:
    """The printed text (GB18030, control bytes left in place) and the payloads stored by the
    QR commands (GS ( k, cn 49, fn 80), in order."""
    text = bytearray()
    payloads = []
    i = 0
    while i < len(data):
        if data.startswith(QR_COMMAND, i):
            length = data[i + 3] + 256 * data[i + 4]
            block = data[i + 5 : i + 5 + length]
            if block[:2] == b"1P":  # cn 49 ('1'), fn 80 ('P'): store the data; m = '0'
                payloads.append(block[3:].decode("utf-8"))
            i += 5 + length
            continue
        text.append(data[i])
        i += 1
    return text.decode("gb18030"), payloads


EXPECTED_LINES = [
    "内乡县赤眉镇行政审批服务中心",
    "排队凭条",
    "号码：A007",
    "事项：城乡居民基本养老保险参保登记及待遇领取",
    "前面还有：3 人",
    "预计等候：约 12 分钟",
    "取号时间：2026-11-25 09:12:30",
    "县投诉电话：0377-65532345",
    "乡镇投诉电话：0377-65761234",
]


def test_the_dummy_printers_bytes_are_the_slip_in_gb18030_with_the_link_as_native_qr():
    printer = Dummy()
    slip.print_escpos(printer, slip.layout(SITE, REPLY_TICKET, "elderly"))
    data = printer.output
    text, payloads = decode_escpos(data)
    for line in [*EXPECTED_LINES, "绿色通道：老年人", "扫码：查看排队进度、评价服务"]:
        assert line in text, line
    assert payloads == [URL]
    assert "号码".encode("gb18030") in data and "号码".encode() not in data  # GB18030, not UTF-8
    assert data.startswith(b"\x1b@\x1c&")  # reset, then the Chinese character mode
    assert b"\x1dV" in data  # and the paper is cut


def test_without_a_link_the_slip_has_no_qr_code_and_the_console_shows_the_same_lines():
    no_link = {k: v for k, v in REPLY_TICKET.items() if k not in ("token", "url")}
    printer = Dummy()
    ops = slip.layout(SITE, no_link)
    slip.print_escpos(printer, ops)
    assert QR_COMMAND not in printer.output
    console = slip.as_text(ops)
    assert all(line in console for line in EXPECTED_LINES)
    assert "扫码" not in console
    assert URL in slip.as_text(slip.layout(SITE, REPLY_TICKET))


NOTICE_REPLY = {
    "ok": True,
    "ticket": "B002",
    "notice": "G20261125001",
    "service": "budongchan",
    "missing": ["申请人身份证明", "完税凭证（依法需要缴税的）"],
}


def test_the_one_time_notices_bytes_are_the_missing_materials_and_its_number_in_gb18030():
    printer = Dummy()
    slip.print_escpos(printer, slip.notice_layout(SITE, NOTICE_REPLY, "5号窗口"))
    text, payloads = decode_escpos(printer.output)
    for line in [
        "一次性告知书",
        "告知书编号：G20261125001",
        "事项：不动产转移登记（宅基地使用权及房屋所有权）",
        "告知窗口：5号窗口",
        "1. 申请人身份证明",
        "2. 完税凭证（依法需要缴税的）",
        "办理依据：《中华人民共和国民法典》；《不动产登记暂行条例》；《不动产登记暂行条例实施细则》",
        "县投诉电话：0377-65532345",
    ]:
        assert line in text, line
    assert "不动产权属证书原件" not in text and payloads == []
    assert "告知书编号".encode("gb18030") in printer.output and "告知书编号".encode() not in printer.output


def test_the_case_slip_carries_the_due_day_and_the_cases_page_as_its_qr_code():
    url = "https://chimei-hall.example.cn/case/demo/J20261125001-abcdefghijklmnopqrstuvwx"
    reply = {"ok": True, "case": "J20261125001", "service": "budongchan", "due_day": "2026-12-02", "case_url": url}
    printer = Dummy()
    slip.print_escpos(printer, slip.case_layout(SITE, reply, "proxy"))
    text, payloads = decode_escpos(printer.output)
    assert "办件编号：J20261125001" in text and "类型：帮办代办" in text and "承诺办结：2026-12-02 前" in text
    assert payloads == [url]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("usb:0416:5011", ("usb", (0x0416, 0x5011))),
        ("serial:/dev/ttyS0", ("serial", ("/dev/ttyS0",))),
        ("network:192.168.10.20", ("network", ("192.168.10.20", 9100))),
        ("network:printer.local:9101", ("network", ("printer.local", 9101))),
        ("file:/dev/usb/lp0", ("file", ("/dev/usb/lp0",))),
    ],
)
def test_printer_specs(spec, parsed):
    assert slip.parse_printer(spec) == parsed


@pytest.mark.parametrize("spec", ["lp0", "usb:zz:1", "usb:0416", "network:", "network:host:99999", "file:"])
def test_bad_printer_specs_are_refused_with_the_forms_expected(spec):
    with pytest.raises(slip.PrinterSpecError):
        slip.parse_printer(spec)


def kiosk(broker, *args: str, env=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "queue_engine.cli", "agent", "kiosk", "--config", str(DEMO_SITE)]
    return subprocess.run(
        [*command, "--broker", broker.url, "--device", "kiosk-1", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        env=env,
    )


@pytest.mark.integration
def test_the_kiosk_agent_prints_the_slip_with_the_engines_link(broker, engine_factory, monkeypatch, tmp_path):
    monkeypatch.setenv("HALLWATCH_TICKET_SECRET", SECRET)
    engine_factory().start()
    printed = tmp_path / "printer.bin"
    taken = kiosk(broker, "--take", "shebao", "--printer", f"file:{printed}")
    assert taken.returncode == 0, taken.stderr
    text, payloads = decode_escpos(printed.read_bytes())
    assert "号码：A001" in text and "前面还有：0 人" in text and "取号时间：2026-11-25 09:00" in text
    assert "县投诉电话：0377-65532345" in text and "内乡县赤眉镇行政审批服务中心" in text
    (url,) = payloads
    prefix = "https://chimei-hall.example.cn/t/demo/"
    assert url.startswith(prefix)
    assert verify_ticket_token(SECRET.encode(), "demo", url.removeprefix(prefix)) == TicketRef(
        "demo", "2026-11-25", "A001"
    )
    assert url in taken.stdout  # the console shows the same slip

    bad = kiosk(broker, "--take", "shebao", "--printer", "lpt1")
    assert bad.returncode == 2 and "is not a printer: usb:VID:PID" in bad.stderr
    missing = kiosk(broker, "--take", "shebao", "--printer", f"file:{tmp_path}/no/such/dir/lp0")
    assert missing.returncode == 2 and "打不开打印机" in missing.stderr
