"""The citizen's phone pages in a real browser (Playwright driving Debian's Chromium on a
phone-sized screen), against the engine as a process with a real broker: the slip's page
follows its ticket live while a window calls over MQTT, shows the call, and takes the 好差评
rating; a window's poster page rates the visit just finished there."""

from __future__ import annotations

import json
import sqlite3
import urllib.request

import pytest
from conftest import DEMO_SITE
from mqtt_helpers import Device
from test_web_pages import Stack, serving
from web_helpers import SUPERVISOR_TOKEN

from queue_engine.tickettoken import entrance_key

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.integration

SECRET = b"a-ticket-secret-for-the-phone-pages"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
# Records what the page asks of the phone when it is called: vibrations and notifications
# (granted, as after the page's "开启叫号提醒" button).
PHONE_RECORDER = """
(() => {
  window.__vibrations = [];
  window.__notices = [];
  navigator.vibrate = (pattern) => { window.__vibrations.push(pattern); return true; };
  class RecordedNotification {
    constructor(title, options) { window.__notices.push({ title, body: options && options.body }); }
  }
  RecordedNotification.permission = "granted";
  RecordedNotification.requestPermission = async () => "granted";
  window.Notification = RecordedNotification;
})();
"""


class PhoneStack(Stack):
    """The web pages' stack, with a window's panel by its window and pages on a phone."""

    def panel(self, window: str) -> Device:
        return self.device(f"panel-{window}")

    def act(self, window: str, *events: str, **fields) -> None:
        for event in events:
            reply = self.panel(window).request(event, **fields)
            assert reply["ok"], reply

    def phone(self, path: str):
        # bypass_csp: Playwright evaluates the tests' expressions as strings, which the pages' CSP forbids.
        context = self.browser.new_context(**PHONE, locale="zh-CN", bypass_csp=True)
        context.add_init_script(PHONE_RECORDER)
        page = context.new_page()
        page.goto(self.base + path)
        return page

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def take(self, phone: str) -> dict:
        return self.call("POST", "/api/v1/sites/demo/tickets", {"service": "shebao", "phone": phone})["ticket"]

    def ratings(self) -> list[dict]:
        db = sqlite3.connect(f"file:{self.engine.db}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute("select * from ratings order by id")]
        finally:
            db.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("phone-pages")
    secret = workdir / "ticket-secret"
    secret.write_text(SECRET.decode() + "\n")
    extra = ("--ticket-secret-file", str(secret))
    with serving(workdir, [DEMO_SITE], extra_args=extra, client_id="phone-pages-test", stack=PhoneStack) as s:
        yield s


def test_the_slip_follows_its_ticket_is_called_and_rated_once(stack):
    before = [stack.take("13800000001"), stack.take("13800000002")]
    for ticket in before:  # checked in at the kiosk with their codes
        reply = stack.device("kiosk-1").request("ticket.checkin", code=ticket["check_in_code"])
        assert reply["ok"] and reply["ticket"]["no"] == ticket["no"], reply
    mine = stack.take("13800000003")
    assert mine["url"].endswith(f"/t/demo/{mine['token']}") and mine["status"] == "reserved"
    path = f"/t/demo/{mine['token']}"  # (the slip's QR code: the same path on the hall's address)
    page = stack.phone(path)
    page.wait_for_selector("#conn.up", timeout=10_000)
    assert page.locator("#no").text_content() == mine["no"]
    page.wait_for_function("document.querySelector('#state').textContent.includes('待签到')")
    assert page.locator("#state .code b").text_content() == mine["check_in_code"]

    # At the hall, the phone scans the entrance's code: checked in, back on the slip, in the queue.
    page.goto(f"{stack.base}/c/demo?k={entrance_key(SECRET, 'demo')}")
    page.wait_for_url(f"**{path}", timeout=10_000)
    page.wait_for_selector("#conn.up", timeout=10_000)
    page.wait_for_function("document.querySelector('#state').textContent.includes('前面还有 2 人')")
    assert page.locator("footer.complaints").text_content() == "县投诉电话：0377-65532345\n乡镇投诉电话：0377-65761234"
    assert page.viewport_size == {"width": 390, "height": 844}

    # Window 2 serves the two before it: the place moves up live.
    stack.act("w02", "staff.login", staff="s002")
    stack.act("w02", "call.next")
    page.wait_for_function("document.querySelector('#state').textContent.includes('前面还有 1 人')")
    stack.act("w02", "service.start")
    stack.act("w02", "service.finish", outcome="done")
    stack.act("w02", "call.next")
    page.wait_for_function("document.querySelector('#state').textContent.includes('您是下一位')")
    assert page.locator("#called").is_hidden()
    stack.act("w02", "service.start")
    stack.act("w02", "service.finish", outcome="done")

    # Called: the window in large type, a vibration and a notification.
    stack.act("w02", "call.next")
    page.wait_for_selector("#called:not([hidden])", timeout=10_000)
    assert page.locator("#called-window").text_content() == "2号窗口"
    assert page.evaluate("window.__vibrations.length") == 1
    notice = {"title": "请到 2号窗口 办理", "body": f"{mine['no']} {before[0]['service_name']}"}
    assert page.evaluate("window.__notices") == [notice]
    box = page.locator("#called-window").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390

    # Served: the 好差评 form, on this page and on a second one opened on the same slip.
    stack.act("w02", "service.start")
    stack.act("w02", "service.finish", outcome="done")
    page.wait_for_selector("#rate:not([hidden])", timeout=10_000)
    second = stack.phone(path)
    second.wait_for_selector("#rate:not([hidden])", timeout=10_000)
    assert page.locator("#served-by").text_content() == "2号窗口 · 李建军"
    assert page.locator("#reasons").is_hidden()
    page.get_by_label("不满意", exact=True).check()
    assert page.locator("#reasons").is_visible()
    page.get_by_label("办事效率低、等候时间长").check()
    page.locator("#comment").fill("等了很久")
    page.get_by_role("button", name="提交评价").click()
    page.wait_for_selector("#rated:not([hidden])", timeout=10_000)
    assert "不满意" in (page.locator("#rated").text_content() or "")

    # Stored against the window and the staff member who served it; a bad_rating opens.
    [row] = stack.ratings()
    assert (row["ticket"], row["window"], row["staff"], row["score"], row["device"]) == (
        mine["no"],
        "w02",
        "s002",
        2,
        "phone",
    )
    assert (json.loads(row["reasons"]), row["comment"]) == (["efficiency"], "等了很久")
    alerts = stack.api("/api/v1/sites/demo/alerts", token=SUPERVISOR_TOKEN)["alerts"]
    [bad] = [a for a in alerts if a["kind"] == "bad_rating"]
    assert (bad["window"], bad["staff"], bad["staff_name"]) == ("w02", "s002", "李建军")
    assert (bad["detail"]["ticket"], bad["detail"]["reasons"]) == (mine["no"], ["efficiency"])

    # The second page learns it live: its form is gone. Rating the visit again by its number on
    # the window's poster page is refused, in Chinese.
    second.wait_for_selector("#rated:not([hidden])", timeout=10_000)
    assert second.locator("#rate").is_hidden()
    poster = stack.phone("/w/demo/w02")
    poster.wait_for_function("document.querySelector('#visit').textContent.includes('请输入凭条上的号码')")
    poster.locator("#ticket").fill(mine["no"])
    poster.get_by_label("非常满意").check()
    poster.get_by_role("button", name="提交评价").click()
    poster.wait_for_function("document.querySelector('#rate-error').textContent.length > 0")
    assert "这次办事已经评价过了" in (poster.locator("#rate-error").text_content() or "")
    assert len(stack.ratings()) == 1
    for opened in (page, second, poster):
        opened.context.close()


def test_the_window_poster_rates_the_visit_just_finished_there(stack):
    ticket = stack.take("13900000001")
    assert stack.device("kiosk-1").request("ticket.checkin", code=ticket["check_in_code"])["ok"]
    stack.act("w01", "staff.login", staff="s001")
    reply = stack.panel("w01").request("call.pick", ticket=ticket["no"])
    assert reply["ok"], reply
    stack.act("w01", "service.start")
    stack.act("w01", "service.finish", outcome="done")
    page = stack.phone("/w/demo/w01")
    page.wait_for_function("document.querySelector('#visit').textContent.includes('刚办结')")
    assert ticket["no"] in (page.locator("#visit").text_content() or "")
    assert page.locator("#ask-number").is_hidden()
    page.get_by_label("满意", exact=True).check()
    page.get_by_role("button", name="提交评价").click()
    page.wait_for_selector("#rated:not([hidden])", timeout=10_000)
    row = stack.ratings()[-1]
    assert (row["ticket"], row["window"], row["staff"], row["score"]) == (ticket["no"], "w01", "s001", 4)
    page.context.close()
