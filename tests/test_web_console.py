"""The consoles in a real browser (Playwright driving Debian's Chromium) on an engine running in
this process with its real store, a real broker and the real HTTP application. The engine's
clock is moved by the test, so what takes days (a follow-up falling overdue) or a busy half
hour (a queue surge) happens at once.

The demo site, with two changes: window w10 has no camera (its cam-w10 left out), and its
devices heartbeat hourly (the clock jumps without heartbeats)."""

from __future__ import annotations

import asyncio

import pytest
from browser import launch
from conftest import DEMO_SITE, WORKDAY_9AM, free_port
from web_helpers import MANAGER_TOKEN, SUPERVISOR_TOKEN, ManualClock, token_environment

from queue_engine.app import EngineApp
from queue_engine.cli.common import parse_time
from queue_engine.config import Site, load_site
from queue_engine.core import events as ev
from queue_engine.shells.mqtt import parse_broker_url
from queue_engine.web import start_http

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.integration


def demo_site() -> Site:
    site = load_site(DEMO_SITE)
    devices = [d.model_copy(update={"heartbeat_s": 3600}) for d in site.devices if d.id != "cam-w10"]
    return site.model_copy(update={"devices": devices})


class Console:
    def __init__(self, app: EngineApp, clock: ManualClock, base: str, browser):
        self.app, self.clock, self.base, self.browser = app, clock, base, browser
        self.ids = 0

    async def event(self, cls, **fields):
        self.ids += 1
        done = await self.app.submit_event(cls(site="demo", id=f"c{self.ids}", **fields))
        assert done.result is None or done.result.ok, done.result

    async def page(self, path: str):
        # bypass_csp: Playwright evaluates the tests' expressions as strings, which the pages' CSP forbids.
        context = await self.browser.new_context(
            viewport={"width": 1920, "height": 1080}, locale="zh-CN", bypass_csp=True
        )
        page = await context.new_page()
        await page.goto(self.base + path)
        await page.wait_for_selector("#conn.up", timeout=10_000)
        return page


@pytest.fixture
async def console(broker, tmp_path, monkeypatch):
    for name, value in token_environment().items():
        monkeypatch.setenv(name, value)
    clock = ManualClock(parse_time(WORKDAY_9AM))
    app = EngineApp(
        [demo_site()],
        broker=parse_broker_url(broker.url),
        db_path=tmp_path / "console.db",
        clock=clock,
        client_id="web-console-test",
        synchronous="NORMAL",
    )
    task = asyncio.create_task(app.run())
    await asyncio.wait_for(app.ready.wait(), 10)
    port = free_port()
    runner = await start_http(app, "127.0.0.1", port)
    try:
        async with playwright_api.async_playwright() as p:
            browser = await launch(p)
            try:
                yield Console(app, clock, f"http://127.0.0.1:{port}", browser)
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
        app.stop()
        await asyncio.wait_for(task, 15)


async def test_the_consoles_mark_a_window_no_camera_watches(console):
    await console.event(ev.StaffLogin, device="panel-w10", staff="s010")
    await console.event(ev.StaffLogin, device="panel-w01", staff="s001")
    page = await console.page(f"/manage/demo?token={MANAGER_TOKEN}")
    row = page.locator('#windows tr[data-window="w10"]')
    await row.locator(".badge.no-camera").wait_for(timeout=10_000)
    text = await row.text_content()
    assert "无摄像头，无法核验在岗" in text and "无法核实" in text
    assert await page.locator("#windows .badge.no-camera").count() == 1  # the other windows have their camera

    page = await console.page(f"/supervise?token={SUPERVISOR_TOKEN}")
    mark = page.locator("#sites tr[data-site=demo] [data-no-camera]")
    await mark.wait_for(timeout=10_000)
    assert await mark.text_content() == "无摄像头，无法核验在岗：10号窗口（办不成事反映窗口）"


async def test_the_manager_console_shows_the_windows_a_surge_asks_for_and_an_overdue_follow_up(console):
    # Wednesday 2026-11-25: a bad rating at w02, to be followed up within five working days,
    # so by the end of Wednesday 2026-12-02.
    await console.event(ev.StaffLogin, device="panel-w02", staff="s002")
    await console.event(ev.TicketRequest, device="kiosk-1", service="shebao")
    for cls, fields in (
        (ev.CallNext, {}),
        (ev.ServiceStart, {}),
        (ev.ServiceFinish, {"outcome": ev.Outcome.DONE}),
        (ev.StaffLogout, {}),
    ):
        await console.event(cls, device="panel-w02", **fields)
        if cls is ev.ServiceFinish:
            await console.event(ev.Rating, device="pad-w02", window="w02", score=1)

    # Thursday 2026-12-03, 09:00: not followed up, overdue. Ten citizens ask for 社保 at once,
    # and no window that serves it is open: after the surge's five minutes, queue_surge.
    console.clock.t = parse_time("2026-12-03T09:00:00+08:00")
    for _ in range(10):
        await console.event(ev.TicketRequest, device="kiosk-1", service="shebao")
    for seconds in (1, 5 * 60):  # a burst is forecast once, a second on; then five minutes on
        console.clock.advance(seconds)
        await console.event(ev.TicketRequest, device="kiosk-1", service="shebao")
    alerts = {a.kind.value: a for a in console.app.engine.hall("demo").supervisor.alerts.values()}
    extra = alerts["queue_surge"].detail["extra_windows"]
    assert extra >= 1 and alerts["bad_rating"].overdue

    page = await console.page(f"/manage/demo?token={MANAGER_TOKEN}")
    surge = page.locator("#alerts li", has_text="排队激增")
    await surge.wait_for(timeout=10_000)
    assert f"需加开 {extra} 个窗口" in await surge.text_content()
    follow_up = page.locator(f'#alerts li[data-alert="{alerts["bad_rating"].id}"]')
    assert await follow_up.locator(".due").text_content() == "整改期限 2026-12-02"
    assert await follow_up.locator(".badge.overdue").text_content() == "逾期未整改"


async def accept_budongchan(console: Console, window: str, staff: str) -> str:
    """A visit accepted at ``window`` for budongchan (a 承诺件 of 5 working days): its case."""
    await console.event(ev.StaffLogin, device=f"panel-{window}", staff=staff)
    await console.event(ev.TicketRequest, device="kiosk-1", service="budongchan")
    for cls, fields in ((ev.CallNext, {}), (ev.ServiceStart, {}), (ev.ServiceFinish, {"outcome": ev.Outcome.ACCEPTED})):
        await console.event(cls, device=f"panel-{window}", **fields)
    return console.app.engine.hall("demo").cases.open_cases()[-1].no


async def test_open_cases_by_due_date_on_the_consoles_and_a_case_completed_from_the_manager_console(console):
    # Wednesday 2026-11-25: due 2026-12-02. Thursday 2026-12-03: the first is overdue, a second
    # is opened (due 2026-12-10).
    late = await accept_budongchan(console, "w01", "s001")
    console.clock.t = parse_time("2026-12-03T09:00:00+08:00")
    fresh = await accept_budongchan(console, "w01", "s001")
    hall = console.app.engine.hall("demo")
    (alert,) = [a for a in hall.supervisor.alerts.values() if a.kind.value == "case_overdue"]
    assert (alert.subject, alert.overdue) == (late, True)

    page = await console.page(f"/supervise?token={SUPERVISOR_TOKEN}")
    row = page.locator(f'#cases tr[data-case="{late}"]')
    await row.wait_for(timeout=10_000)
    assert "2026-12-02" in await row.text_content() and await page.locator("#cases tr[data-case]").count() == 1

    page = await console.page(f"/manage/demo?token={MANAGER_TOKEN}")
    rows = page.locator("#cases tr[data-case]")
    await rows.first.wait_for(timeout=10_000)
    assert [await r.get_attribute("data-case") for r in await rows.all()] == [late, fresh]  # by due date
    assert await rows.nth(0).get_attribute("class") == "overdue"
    assert await rows.nth(0).locator("[data-mark]").text_content() == "已超期"
    assert await rows.nth(1).locator("[data-mark]").text_content() == "未到期"
    assert await page.locator("#case-count").text_content() == "2 件，超期 1 件"

    await page.fill("#by", "赵主任")
    await page.dispatch_event("#by", "change")
    form = rows.nth(0).locator("form")
    await form.locator("select").select_option("complete")
    await form.locator("button").click()  # nothing written: refused, the case stays
    await form.locator(".error").wait_for(timeout=10_000)
    assert "result" in await form.locator(".error").text_content()
    await form.locator("input[name=text]").fill("已登记发证")
    await form.locator("button").click()
    await page.locator(f'#cases tr[data-case="{late}"]').wait_for(state="detached", timeout=10_000)
    assert await page.locator("#case-count").text_content() == "1 件，超期 0 件"

    case = hall.cases.cases[late]
    assert (case.status.value, case.result, case.closed_by) == ("completed", "已登记发证", "manager:赵主任")
    assert hall.supervisor.alerts.get(alert.id) is None  # case_overdue resolved with the case
