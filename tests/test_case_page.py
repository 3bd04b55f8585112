"""The citizen follows a case (办件): the panel agent finishes a visit over MQTT as 受理, prints the
case slip on the window's printer (its QR code the case's page) and the engine's reply carries the
case's token and link; the phone page ``/case/{site}/{token}`` (Playwright on a phone-sized
screen) shows its status and due day, and 已办结 after the panel's case.complete; the JSON route
answers the same without any staff member, citizen or progress note, and a bad token gets 404
unknown_case. A 告知 at the panel prints the 一次性告知书: its ESC/POS bytes decode (GB18030) to
the missing materials, the basis and the notice's number.

The demo site: budongchan (B) a 承诺件 of 5 working days at w05; the engine's clock starts on
Wednesday 2026-11-25 at 09:00, so a case accepted then is due on Wednesday 2026-12-02.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from test_agents import run_agent
from test_phone_pages import SECRET, stack  # noqa: F401 (the fixture: the phone pages' stack, one of this module's own)
from test_slip import decode_escpos

from queue_engine.tickettoken import case_token, ticket_token, verify_case_token

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.integration

PUBLIC = "https://chimei-hall.example.cn"
BUDONGCHAN_MATERIALS = ["申请人身份证明", "完税凭证（依法需要缴税的）"]  # the guide's 2nd and 6th


def get(phone_stack, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(phone_stack.base + path, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def panel(phone_stack, stdin: str, *args: str):
    done = run_agent("panel", phone_stack.broker, "--device", "panel-w05", *args, stdin=stdin)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_case_accepted_at_the_panel_is_followed_on_the_phone_until_it_is_done(stack, tmp_path):  # noqa: F811 (the fixture)
    kiosk = stack.device("kiosk-1")
    assert kiosk.request("ticket.request", service="budongchan")["ticket"]["no"] == "B001"
    # The engine's reply to the finish, as a panel gets it: the case, its due day, token and link.
    stack.act("w05", "staff.login", staff="s005")
    stack.act("w05", "call.next")
    stack.act("w05", "service.start")
    reply = stack.panel("w05").request("service.finish", outcome="accepted")
    assert reply["case"] == "J20261125001" and reply["due_day"] == "2026-12-02", reply
    assert reply["service"] == "budongchan"
    token = reply["case_token"]
    assert verify_case_token(SECRET, "demo", token) == "J20261125001"
    assert reply["case_url"] == f"{PUBLIC}/case/demo/{token}"

    # The panel agent's 受理 prints the case slip, with the case's page as its QR code.
    assert kiosk.request("ticket.request", service="budongchan")["ticket"]["no"] == "B002"
    printed = tmp_path / "printer.bin"
    out = panel(stack, "n\nb\nf 受理\nq\n", "--printer", f"file:{printed}")
    assert "办件号 J20261125002" in out and "办件凭条" in out
    text, payloads = decode_escpos(printed.read_bytes())
    assert "办件编号：J20261125002" in text and "承诺办结：2026-12-02 前" in text and "类型：承诺件" in text
    (url,) = payloads
    assert url.startswith(f"{PUBLIC}/case/demo/J20261125002-")
    path = url.removeprefix(PUBLIC)

    page = stack.phone(path)
    assert page.locator("#no").text_content() == "J20261125002"
    assert page.locator("#status").text_content() == "办理中"
    assert page.locator("#due-day").text_content() == "2026-12-02"
    assert page.locator("#due-state").text_content() == "未到期"
    assert page.locator("#service").text_content() == "不动产转移登记（宅基地使用权及房屋所有权）（承诺件）"
    assert page.locator("#window").text_content() == "5号窗口"
    assert "县投诉电话：0377-65532345" in page.locator("footer.complaints").text_content()
    assert page.viewport_size == {"width": 390, "height": 844}

    # The panel's case keys: a progress note (internal), passed on, then done.
    panel(
        stack,
        "k J20261125002 进展 内部核查张三的档案\nk J20261125002 转 县自然资源局\nk J20261125002 办结 已登记发证\nq\n",
    )
    page.reload()
    assert page.locator("#status").text_content() == "已办结"
    assert "已办结" in page.locator("#due-state").text_content()
    assert page.locator("#passed-to").text_content() == "县自然资源局"
    events = page.locator("#events").text_content()
    assert "受理登记" in events and "转交：县自然资源局" in events and "办结" in events
    shown = page.content()
    assert "内部核查" not in shown and "已登记发证" not in shown and "s005" not in shown

    status, body = get(stack, f"/api/v1/sites/demo/cases/by-token/{path.rsplit('/', 1)[1]}")
    assert status == 200
    case = body["case"]
    assert (case["no"], case["status"], case["kind"], case["due_day"], case["mark"]) == (
        "J20261125002",
        "completed",
        "promised",
        "2026-12-02",
        None,
    )
    assert [e["action"] for e in case["events"]] == ["opened", "passed_on", "completed"]
    assert not {"agent", "agent_name", "citizen", "staff", "result", "first_staff_name"} & case.keys()


def test_a_bad_case_token_is_404_unknown_case_and_a_malformed_one_400(stack):  # noqa: F811 (the fixture)
    unknown = case_token(SECRET, "demo", "J20261125099")  # well made, but no such case
    other_secret = case_token(b"some-other-engines-secret", "demo", "J20261125001")
    other_site = case_token(SECRET, "elsewhere", "J20261125001")
    for token in (unknown, other_secret, other_site):
        status, body = get(stack, f"/api/v1/sites/demo/cases/by-token/{token}")
        assert (status, body["error"]) == (404, "unknown_case"), token
        try:
            urllib.request.urlopen(f"{stack.base}/case/demo/{token}", timeout=5)
            raise AssertionError("the page of a bad token opened")
        except urllib.error.HTTPError as err:
            assert err.code == 404
    slip = ticket_token(SECRET, "demo", "2026-11-25", "A001")  # a slip's token is no case's
    status, body = get(stack, f"/api/v1/sites/demo/cases/by-token/{slip}")
    assert (status, body["error"]) == (400, "bad_parameter")


def test_a_notice_at_the_panel_prints_the_one_time_notice_with_the_missing_materials(stack, tmp_path):  # noqa: F811 (the fixture)
    assert stack.device("kiosk-1").request("ticket.request", service="budongchan")["ok"]
    printed = tmp_path / "printer.bin"
    out = panel(stack, "n\nb\nf 告知 缺=2,6\nq\n", "--printer", f"file:{printed}")
    assert "一次性告知书 G20261125001" in out
    text, payloads = decode_escpos(printed.read_bytes())
    assert payloads == []
    assert "一次性告知书" in text and "告知书编号：G20261125001" in text
    assert "1. 申请人身份证明" in text and "2. 完税凭证（依法需要缴税的）" in text
    assert "不动产权属证书原件" not in text  # only what was missing
    assert "办理依据：《中华人民共和国民法典》" in text
    assert "县投诉电话：0377-65532345" in text and "乡镇投诉电话：0377-65761234" in text
    for name in BUDONGCHAN_MATERIALS:  # the screen shows the same notice
        assert name in out
