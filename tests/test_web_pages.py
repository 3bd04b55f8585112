"""The web pages in a real browser (Playwright driving Debian's Chromium), against the engine
as a process (`hallwatch engine --http`) with a real broker: devices publish over MQTT and
the pages must show it, live.

The engine serves two sites: the demo township centre and a village station whose unstaffed
grace is 1.2 s (so the manager sees a window go unstaffed without waiting five minutes)."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request

import pytest
from browser import launch
from conftest import DEMO_SITE, Broker, EngineProcess, free_port, wait_for_port
from mqtt_helpers import Device
from web_helpers import SUPERVISOR_TOKEN, VILLAGE_TOKEN, token_environment, write_village_site

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.integration

# Replaces the browser's speech synthesis before the page loads: records every utterance the
# page hands over, "speaks" each for 500 ms, then fires its end, like a real voice.
SPEECH_RECORDER = """
(() => {
  const log = [];
  let current = null;
  const synth = {
    speaking: false, pending: false, paused: false,
    getVoices: () => window.__voices,
    speak(utterance) {
      const entry = { text: utterance.text, lang: utterance.lang, start: performance.now(), end: null,
                      overlapped: current !== null };
      log.push(entry);
      current = entry;
      this.speaking = true;
      setTimeout(() => {
        entry.end = performance.now();
        current = null;
        this.speaking = false;
        if (typeof utterance.onend === "function") utterance.onend(new Event("end"));
      }, 500);
    },
    cancel() { log.push({ cancelled: true }); },
    pause() {}, resume() {}, addEventListener() {}, removeEventListener() {},
  };
  window.__voices = [{ name: "测试普通话", lang: "zh-CN", default: true, localService: true, voiceURI: "test-zh" }];
  window.__spoken = log;
  Object.defineProperty(window, "speechSynthesis", { configurable: true, get: () => synth });
})();
"""
NO_VOICE = "window.__voices = [];"


class Stack:
    def __init__(self, broker: Broker, engine: EngineProcess, http: int, browser):
        self.broker, self.engine, self.http, self.browser = broker, engine, http, browser
        self.devices: dict[tuple[str, str], Device] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def device(self, device_id: str, site: str = "demo") -> Device:
        key = (site, device_id)
        if key not in self.devices:
            self.devices[key] = Device(self.broker.port, device_id, site=site)
        return self.devices[key]

    def online(self, device_id: str, site: str, kind: str, window: str) -> None:
        dev = self.device(device_id, site)
        status = {"v": 1, "state": "online", "kind": kind, "window": window, "fw": "1.0"}
        dev.client.publish(dev.topic("status"), json.dumps(status), qos=1, retain=True).wait_for_publish(10)
        dev.client.publish(
            dev.topic("heartbeat"), json.dumps({"v": 1, "seq": 1, "video": "ok"}), qos=0
        ).wait_for_publish(10)

    def page(self, path: str, *, voice: bool = True):
        # bypass_csp: Playwright evaluates the tests' expressions as strings, which the pages' CSP forbids.
        context = self.browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", bypass_csp=True)
        context.add_init_script(SPEECH_RECORDER + ("" if voice else NO_VOICE))
        page = context.new_page()
        page.goto(self.base + path)
        return page

    def api(self, path: str, token: str | None = None) -> dict:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


@contextlib.contextmanager
def serving(workdir, configs: list, *, extra_args: tuple[str, ...] = (), client_id: str, stack: type = Stack):
    """A broker, the engine as a process serving HTTP with the tests' tokens, and Chromium: a
    ``stack`` of them, stopped on leaving."""
    broker = Broker(workdir / "broker").start()
    http = free_port()
    with pytest.MonkeyPatch.context() as env:
        for name, value in token_environment().items():
            env.setenv(name, value)
        engine = EngineProcess(
            broker,
            workdir / "web.db",
            configs,
            workdir / "engine",
            extra_args=["--http", f"127.0.0.1:{http}", *extra_args],
            client_id=client_id,
        ).start()
    wait_for_port(http)
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        s = stack(broker, engine, http, browser)
        try:
            yield s
        finally:
            for dev in s.devices.values():  # disconnect all first: each network thread then ends at once
                dev.client.disconnect()
            for dev in s.devices.values():
                dev.client.loop_stop()
            browser.close()
            engine.stop()
            broker.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("web-pages")
    village = write_village_site(workdir, unstaffed_grace_min=0.02, clear_after_s=1, heartbeat_s=120)
    with serving(workdir, [DEMO_SITE, village], client_id="web-pages-test") as s:
        yield s


def wait_live(page) -> None:
    """The page's stream is open and its first snapshot drawn."""
    page.wait_for_selector("#conn.up", timeout=10_000)


def test_a_call_published_over_mqtt_is_on_the_board_within_a_second(stack):
    page = stack.page("/board/demo")
    wait_live(page)
    page.wait_for_selector("#services .tile")
    panel, kiosk = stack.device("panel-w02"), stack.device("kiosk-1")
    assert panel.request("staff.login", staff="s002")["ok"]
    assert kiosk.request("ticket.request", service="shebao")["ticket"]["no"] == "A001"
    page.wait_for_function("document.querySelector('#services').textContent.includes('1人')")

    published_ms = time.time() * 1000
    panel.send("call.next")
    page.wait_for_function("window.hallwatch.rendered.some(r => r.ticket === 'A001')", timeout=5000)
    rendered = page.evaluate("window.hallwatch.rendered.find(r => r.ticket === 'A001')")
    latency_ms = rendered["at"] - published_ms
    print(f"\nboard update latency from MQTT publication: {latency_ms:.1f} ms")
    assert 0 < latency_ms < 1000
    assert page.text_content("#now-ticket") == "A001"
    assert page.text_content("#now-window") == "请到 2号窗口 办理"
    assert "A001" in page.text_content("#recent")
    page.wait_for_function("window.__spoken.length === 1")
    assert page.evaluate("window.__spoken[0]")["text"] == "请 A001 号 到 2号窗口 办理"
    assert page.evaluate("window.__spoken[0]")["lang"] == "zh-CN"
    # Readable at 1920x1080 with nothing to scroll.
    assert page.evaluate("[document.documentElement.scrollHeight, document.documentElement.scrollWidth]") == [
        1080,
        1920,
    ]
    page.context.close()


def test_two_calls_100_ms_apart_are_both_announced_in_order_and_a_recall_again(stack):
    page = stack.page("/board/demo")
    wait_live(page)
    kiosk = stack.device("kiosk-1")
    w03, w04 = stack.device("panel-w03"), stack.device("panel-w04")
    assert w03.request("staff.login", staff="s003")["ok"] and w04.request("staff.login", staff="s004")["ok"]
    assert kiosk.request("ticket.request", service="jiuye")["ticket"]["no"] == "J001"
    assert kiosk.request("ticket.request", service="yibao")["ticket"]["no"] == "C001"

    w03.send("call.next")
    time.sleep(0.1)
    w04.send("call.next")
    page.wait_for_function("window.__spoken.length === 2", timeout=10_000)
    w03.send("call.recall")
    page.wait_for_function("window.__spoken.length === 3 && window.__spoken[2].end !== null", timeout=10_000)
    spoken = page.evaluate("window.__spoken")
    assert [s["text"] for s in spoken] == [
        "请 J001 号 到 3号窗口 办理",
        "请 C001 号 到 4号窗口 办理",
        "请 J001 号 到 3号窗口 办理",
    ]
    assert not any(s["overlapped"] for s in spoken)  # each handed over only after the previous ended
    assert all(later["start"] >= earlier["end"] for earlier, later in zip(spoken, spoken[1:]))
    assert [r["recall"] for r in page.evaluate("window.hallwatch.rendered")] == [False, False, True]
    assert page.text_content("#now-ticket") == "J001"
    page.context.close()


def test_without_a_chinese_voice_the_board_chimes(stack):
    page = stack.page("/board/demo", voice=False)
    wait_live(page)
    panel, kiosk = stack.device("panel-w05"), stack.device("kiosk-1")
    assert panel.request("staff.login", staff="s005")["ok"]
    assert kiosk.request("ticket.request", service="budongchan")["ticket"]["no"] == "B001"
    panel.send("call.next")
    page.wait_for_function("window.hallwatch.chimes.length === 1", timeout=5000)
    assert page.evaluate("window.hallwatch.chimes") == ["请 B001 号 到 5号窗口 办理"]
    assert page.evaluate("window.__spoken.length") == 0
    page.context.close()


def test_the_manager_sees_a_window_go_unstaffed_and_acknowledges_its_alert(stack):
    site = "shuangquan"
    stack.online("cam-w1", site, "camera", "w1")
    panel, camera = stack.device("panel-w1", site), stack.device("cam-w1", site)
    assert panel.request("staff.login", staff="v01")["ok"]
    camera.send("presence", window="w1", present=True, count=1)

    page = stack.page(f"/manage/{site}?token={VILLAGE_TOKEN}")
    assert page.url.endswith(f"/manage/{site}")  # the token went into a cookie, out of the address
    wait_live(page)
    row = page.locator('#windows tr[data-window="w1"]')
    row.locator("text=开放").wait_for()
    assert "刘桂芝" in row.text_content()

    camera.send("presence", window="w1", present=False, count=0)
    row.locator("text=空岗").wait_for(timeout=5000)
    alert = page.locator("#alerts li.firing", has_text="窗口空岗")
    alert.wait_for(timeout=10_000)
    assert "1号窗口" in alert.text_content() and "刘桂芝" in alert.text_content()

    page.fill("#by", "周主任")
    alert.locator("input[name=note]").fill("已提醒回岗")
    # The list is drawn again on live updates (another window opening here): what the manager
    # is typing stays, with the caret in it.
    note = "#alerts li.firing input[name=note]"
    page.eval_on_selector(note, "input => { input.drawnBefore = true; }")
    assert stack.device("panel-w2", site).request("staff.login", staff="v02")["ok"]
    page.wait_for_function(f"!document.querySelector({note!r}).drawnBefore", timeout=10_000)
    assert page.eval_on_selector(note, "input => [input.value, document.activeElement === input]") == [
        "已提醒回岗",
        True,
    ]
    alert.locator("button.ack").click()
    acknowledged = page.locator("#alerts li.acknowledged", has_text="窗口空岗")
    acknowledged.wait_for(timeout=5000)
    assert "周主任（中心管理）" in acknowledged.text_content() and "已提醒回岗" in acknowledged.text_content()
    (open_alert,) = [
        a
        for a in stack.api(f"/api/v1/sites/{site}/alerts", VILLAGE_TOKEN)["alerts"]
        if a["kind"] == "window_unstaffed" and a["window"] == "w1"
    ]
    assert (open_alert["state"], open_alert["acknowledged_by"], open_alert["note"]) == (
        "acknowledged",
        "manager:周主任",
        "已提醒回岗",
    )
    page.context.close()


def test_the_supervision_console_lists_an_alert_from_a_second_site(stack):
    site = "shuangquan"
    page = stack.page(f"/supervise?token={SUPERVISOR_TOKEN}")
    wait_live(page)
    page.locator("#sites tr", has_text="赤眉镇双泉村便民服务站").wait_for()
    assert page.locator("#sites tr").count() == 2

    stack.online("cam-w2", site, "camera", "w2")
    panel, camera = stack.device("panel-w2", site), stack.device("cam-w2", site)
    assert panel.request("staff.login", staff="v02")["ok"]
    camera.send("presence", window="w2", present=True, count=1)
    camera.send("presence", window="w2", present=False, count=0)
    alert = page.locator("#alerts li.firing", has_text="2号窗口")
    alert.wait_for(timeout=10_000)  # pushed live: the page was open before the alert fired
    text = alert.text_content()
    assert "赤眉镇双泉村便民服务站" in text and "窗口空岗" in text and "王保国" in text

    alert.locator("input[name=note]").fill("已电话督促")
    alert.locator("button.ack").click()
    page.locator("#alerts li.acknowledged", has_text="已电话督促").wait_for(timeout=5000)
    # The ranking counts the open unstaffed stretch too.
    page.locator("#rank-windows tr", has_text="2号窗口").wait_for(timeout=5000)
    page.context.close()


def test_the_board_shows_the_complaint_telephones_in_its_footer(stack):
    """在显要位置公布县乡投诉电话: the demo site's [complaints], on the board, in view; a site
    without them shows no empty line."""
    page = stack.page("/board/demo")
    wait_live(page)
    footer = page.locator("footer #complaints")
    assert footer.is_visible()
    assert footer.text_content() == "县投诉电话：0377-65532345　乡镇投诉电话：0377-65761234"
    box = footer.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 1080 and box["x"] + box["width"] <= 1920
    page.context.close()
    village = stack.page("/board/shuangquan")
    wait_live(village)
    assert village.locator("footer #complaints").text_content() == ""
    assert not village.locator("footer #complaints").is_visible()
    village.context.close()


def test_the_pages_run_under_their_own_content_security_policy(stack):
    """Without bypass_csp: the pages' scripts, styles and streams all come from the engine."""
    context = stack.browser.new_context(viewport={"width": 1920, "height": 1080})
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "request", lambda r: problems.append(f"off-site request {r.url}") if not r.url.startswith(stack.base) else None
    )
    checks = [
        ("/", "#sites li a"),
        ("/board/demo", "#services .tile"),
        ("/take/demo", "#service option"),
        (f"/manage/shuangquan?token={VILLAGE_TOKEN}", "#windows tr"),
        (f"/supervise?token={SUPERVISOR_TOKEN}", "#sites tr"),
    ]
    for path, ready in checks:
        page.goto(stack.base + path)
        page.wait_for_selector(ready, state="attached", timeout=10_000)
        if path != "/" and not path.startswith("/take"):
            page.wait_for_selector("#conn.up", timeout=10_000)
    assert problems == []
    context.close()


def test_the_board_reconnects_by_itself_when_the_engine_restarts(stack):
    """Last in this module: it restarts the engine the other tests share."""
    page = stack.page("/board/demo")
    wait_live(page)
    panel, kiosk = stack.device("panel-w06"), stack.device("kiosk-1")
    assert panel.request("staff.login", staff="s006")["ok"]
    stack.engine.stop()
    page.wait_for_selector("#conn.down", timeout=10_000)
    stack.engine.start()
    page.wait_for_selector("#conn.up", timeout=15_000)
    assert kiosk.request("ticket.request", service="jiuzhu")["ticket"]["no"] == "D001"
    panel.send("call.next")
    page.wait_for_function("window.hallwatch.rendered.some(r => r.ticket === 'D001')", timeout=5000)
    assert page.text_content("#now-ticket") == "D001"
    page.context.close()
