"""Screenshots of the three web pages at 1920x1080: the TV board, the manager console and the
supervision console, after a scripted morning at the demo township centre and a village
service station; and for the user manual (docs/zh/), the manager console with an alert's
note being typed and its open cases, and the county console of both.

    .venv/bin/python tests/screenshots.py            # writes docs/screenshots/{board,manage,supervise}.png
                                                     # and docs/zh/img/{manage-ack,manage-cases,county}.png
    .venv/bin/python tests/screenshots.py --out DIR --manual-out DIR

The engine runs in this process with the real store, a real Mosquitto and the real HTTP
application; its clock is moved by the script (08:25 to 10:30 of a working day) and every
event goes through ``EngineApp.submit_event``, the same core as a device's. The pages are
rendered by Debian's Chromium through Playwright. Chinese text needs a CJK font
(``fonts-wqy-microhei`` or ``fonts-noto-cjk``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from aiohttp import web as aioweb  # noqa: E402
from browser import launch  # noqa: E402
from web_helpers import MANAGER_TOKEN, SUPERVISOR_TOKEN, ManualClock, token_environment, village_site_toml  # noqa: E402

from queue_engine.app import EngineApp  # noqa: E402
from queue_engine.cli.common import parse_time  # noqa: E402
from queue_engine.config import load_site, parse_site  # noqa: E402
from queue_engine.core import events as ev  # noqa: E402
from queue_engine.core.model import WindowPhase  # noqa: E402
from queue_engine.county import web as county_web  # noqa: E402
from queue_engine.county.service import CountyService  # noqa: E402
from queue_engine.deploy import devbroker  # noqa: E402
from queue_engine.shells.mqtt import parse_broker_url  # noqa: E402
from queue_engine.web import WEB, Access, build_app, start_http  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
PAGES = ("board.png", "manage.png", "supervise.png")
MANUAL_OUT = ROOT / "docs" / "zh" / "img"
MANUAL_SHOTS = ("manage-ack.png", "manage-cases.png", "county.png")
ACK_NOTE = "已电话联系，5 分钟内回岗"
START = "2026-11-25T08:25:00+08:00"  # a Wednesday, a working day
END = "2026-11-25T10:30:00+08:00"
# How often each service is asked for (demo site), and the arrivals per minute through the morning.
DEMAND = {
    "shebao": 4,
    "yibao": 3,
    "budongchan": 2,
    "huji": 2,
    "shuidianqi": 1.5,
    "jiuye": 1,
    "jiuzhu": 1,
    "shichang": 1,
    "tuiyi": 0.5,
    "banbucheng": 0.3,
    "kaiban": 0.4,
    "wobudongchan": 0.3,
}
STAFF = {
    "w01": "s001",
    "w02": "s002",
    "w03": "s003",
    "w04": "s004",
    "w05": "s005",
    "w06": "s006",
    "w07": "s007",
    "w08": "s008",
    "w09": "s009",
    "w10": "s010",
}


def arrivals_per_minute(minute_of_day: int) -> float:
    if minute_of_day < 8 * 60 + 30:
        return 0.4
    if minute_of_day < 9 * 60 + 40:
        return 1.1
    return 0.6


class Story:
    """A working morning, told to the engine event by event."""

    def __init__(self, app: EngineApp, clock: ManualClock):
        self.app = app
        self.clock = clock
        self.ids = itertools.count(1)
        self.rng = random.Random(20261125)
        self.durations: dict[str, float] = {}
        self.logged_in: set[str] = set()
        self.absent: set[str] = set()

    async def send(self, cls, site: str = "demo", device: str = "web", **fields):
        done = await self.app.submit_event(cls(site=site, device=device, id=f"story-{next(self.ids)}", **fields))
        return done.result

    async def by_phone(self, site: str, **fields) -> None:
        """A number taken with a phone (``phone`` stands for its citizen key), its citizen at the
        hall at once: checked in with the reservation's code."""
        reply = await self.send(ev.TicketRequest, site=site, **fields)
        ticket = self.app.engine.hall(site).tickets.get(reply.ticket.no) if reply is not None and reply.ok else None
        if ticket is not None and ticket.check_in_code:
            await self.send(ev.TicketCheckIn, site=site, code=ticket.check_in_code)

    def at(self, hhmm: str) -> bool:
        minute = int(hhmm[:2]) * 60 + int(hhmm[3:])
        return self.minute == minute

    async def run(self, start: float, end: float) -> None:
        demo = self.app.engine.hall("demo")
        for site in self.app.sites:  # every device reports in
            for device in site.devices:
                await self.send(ev.DeviceStatus, site=site.id, device=device.id, online=True, kind=device.kind.value)
        t = start
        while t < end:
            self.clock.t = t
            local = demo.local(t)
            self.minute = local.hour * 60 + local.minute
            await self.script()
            await self.village()
            await self.arrivals()
            await self.windows()
            t += 60
        self.clock.t = end

    async def script(self) -> None:
        logins = {
            "08:30": ["w01", "w02", "w03", "w04", "w05"],
            "08:31": ["w06", "w07", "w08"],
            "08:52": ["w09"],
            "09:05": ["w10"],
        }
        for hhmm, windows in logins.items():
            if self.at(hhmm):
                for w in windows:
                    await self.send(ev.StaffLogin, device=f"panel-{w}", staff=STAFF[w])
                    await self.send(ev.Presence, device=f"cam-{w}", window=w, present=True, count=1)
                    self.logged_in.add(w)
        if self.at("09:20"):
            await self.away("w08")
        if self.at("09:32"):
            await self.back("w08")
        if self.at("10:05"):
            await self.away("w04")
        if self.at("10:15"):
            await self.send(ev.DeviceStatus, device="cam-w07", online=False, reason="shutdown")
        if self.at("10:21"):
            hall = self.app.engine.hall("demo")
            for alert in list(hall.supervisor.alerts.values()):
                if alert.kind.value == "device_shutdown":
                    await self.send(
                        ev.Acknowledge,
                        device="supervisor:张科长",
                        alert=alert.id,
                        note="已电话通知派出所窗口，摄像头 10 分钟内恢复",
                    )

    async def away(self, window: str) -> None:
        self.absent.add(window)
        await self.send(ev.Presence, device=f"cam-{window}", window=window, present=False, count=0)

    async def back(self, window: str) -> None:
        self.absent.discard(window)
        await self.send(ev.Presence, device=f"cam-{window}", window=window, present=True, count=1)

    async def village(self) -> None:
        if self.at("08:30"):
            for w, staff in (("w1", "v01"), ("w2", "v02")):
                await self.send(ev.StaffLogin, site="shuangquan", device=f"panel-{w}", staff=staff)
                await self.send(ev.Presence, site="shuangquan", device=f"cam-{w}", window=w, present=True, count=1)
        if self.at("09:50"):
            await self.send(ev.Presence, site="shuangquan", device="cam-w2", window="w2", present=False, count=0)
        if self.minute % 17 == 0 and self.minute >= 8 * 60 + 30:
            await self.by_phone("shuangquan", service="daiban", phone=f"1390000{self.minute:04d}")

    async def arrivals(self) -> None:
        rate = arrivals_per_minute(self.minute)
        count = int(rate) + (1 if self.rng.random() < rate - int(rate) else 0)
        codes, weights = zip(*DEMAND.items())
        for _ in range(count):
            code = self.rng.choices(codes, weights)[0]
            priority = ev.Priority.ELDERLY if self.rng.random() < 0.08 else None
            if self.rng.random() < 0.25:
                await self.by_phone(
                    "demo", service=code, priority=priority, phone=f"138{self.rng.randrange(10**8):08d}"
                )
            else:
                await self.send(ev.TicketRequest, device="kiosk-1", service=code, priority=priority)

    async def windows(self) -> None:
        hall = self.app.engine.hall("demo")
        now = self.clock.t
        for w in sorted(self.logged_in):
            state = hall.windows[w]
            panel = f"panel-{w}"
            if w in self.absent:
                continue
            if w == "w06" and self.minute >= 10 * 60 and state.phase is WindowPhase.IDLE:
                await self.send(ev.WindowPause, device=panel, reason=ev.PauseReason.MEETING)
                continue
            if state.phase is WindowPhase.IDLE:
                await self.send(ev.CallNext, device=panel)
            elif state.phase is WindowPhase.CALLED:
                ticket = hall.tickets[state.ticket]
                if now - ticket.called_at >= 60:
                    if self.rng.random() < 0.06:
                        await self.send(ev.CallSkip, device=panel)
                    else:
                        await self.send(ev.ServiceStart, device=panel)
                        expected = hall.service_config(ticket.service).expected_service_min * 60
                        self.durations[ticket.no] = expected * self.rng.uniform(0.6, 1.3)
            elif state.phase is WindowPhase.SERVING:
                ticket = hall.tickets[state.ticket]
                if now - ticket.started_at >= self.durations.get(ticket.no, 600):
                    item_type = hall.service_config(ticket.service).guide.item_type
                    outcome = ev.Outcome.ACCEPTED if item_type == "承诺件" else ev.Outcome.DONE
                    await self.send(ev.ServiceFinish, device=panel, outcome=outcome)
                    if self.rng.random() < 0.7:
                        score = (
                            1 if (w == "w05" and "bad" not in self.durations) else self.rng.choice([5, 5, 5, 4, 4, 3])
                        )
                        if score == 1:
                            self.durations["bad"] = 1
                        await self.send(ev.Rating, device=f"pad-{w}", window=w, score=score)


def sites(workdir: Path):
    demo = load_site(ROOT / "examples" / "demo-site.toml")
    # Devices heartbeat hourly here: the story sends no heartbeats between its events.
    demo = demo.model_copy(update={"devices": [d.model_copy(update={"heartbeat_s": 3600}) for d in demo.devices]})
    village = parse_site(tomllib.loads(village_site_toml(heartbeat_s=3600)))
    return [demo, village]


async def take(out: Path, *, workdir: Path, manual_out: Path | None = None) -> list[Path]:
    """The three pages into ``out``; with ``manual_out``, also the manual's shots into it."""
    from playwright.async_api import async_playwright

    broker, port = devbroker.start(workdir / "broker")
    clock = ManualClock(parse_time(START))
    app = EngineApp(
        sites(workdir),
        broker=parse_broker_url(f"mqtt://127.0.0.1:{port}"),
        db_path=workdir / "shots.db",
        clock=clock,
        client_id="hallwatch-screenshots",
        synchronous="NORMAL",
    )
    engine = asyncio.create_task(app.run())
    runner = None
    runners: list = []
    try:
        await asyncio.wait_for(app.ready.wait(), 15)
        await Story(app, clock).run(parse_time(START), parse_time(END))
        http_port = devbroker.free_port()
        http_app = build_app(app)
        http_app[WEB].access = Access.from_environment(app.sites, token_environment())
        runner = await start_http(app, "127.0.0.1", http_port, app=http_app)
        base = f"http://127.0.0.1:{http_port}"
        out.mkdir(parents=True, exist_ok=True)
        shots = []
        async with async_playwright() as p:
            browser = await launch(p)
            try:
                context = await browser.new_context(
                    viewport={"width": 1920, "height": 1080},
                    locale="zh-CN",
                    timezone_id="Asia/Shanghai",
                    reduced_motion="reduce",
                    bypass_csp=True,
                )  # for wait_for_function's expressions
                page = await context.new_page()
                await page.goto(f"{base}/board/demo?kiosk=1")
                await page.wait_for_function(
                    "document.querySelectorAll('#services .tile').length > 0 "
                    "&& document.querySelector('#now-ticket').textContent !== '—'"
                )
                shots.append(await shot(page, out / "board.png"))
                await page.goto(f"{base}/manage/demo?token={MANAGER_TOKEN}")
                await page.wait_for_function(
                    "document.querySelectorAll('#windows tr').length === 10 "
                    "&& document.querySelector('#chart svg polyline')"
                )
                shots.append(await shot(page, out / "manage.png"))
                if manual_out is not None:
                    manual_out.mkdir(parents=True, exist_ok=True)
                    form = page.locator('#alerts li.firing:has-text("窗口空岗") .ack-form').first
                    await form.locator("input[name=note]").fill(ACK_NOTE)
                    await page.fill("#by", "李主任")
                    await form.locator("input[name=note]").focus()
                    shots.append(await shot(page, manual_out / "manage-ack.png"))
                    # The console's open cases (在办办件), the 承诺件 the morning's windows accepted.
                    await page.wait_for_function("document.querySelectorAll('#cases tr[data-case]').length > 0")
                    await page.evaluate("document.querySelector('#cases').closest('section').scrollIntoView()")
                    shots.append(await shot(page, manual_out / "manage-cases.png"))
                await page.goto(f"{base}/supervise?token={SUPERVISOR_TOKEN}")
                await page.wait_for_function(
                    "document.querySelectorAll('#sites tr').length === 2 "
                    "&& document.querySelectorAll('#alerts li[data-alert]').length > 0"
                )
                shots.append(await shot(page, out / "supervise.png"))
                if manual_out is not None:
                    county, county_task, county_runner = await start_county(app, port, workdir, clock)
                    runners.append(county_runner)
                    county_port = county_runner.addresses[0][1]
                    await page.goto(f"http://127.0.0.1:{county_port}/county?token={SUPERVISOR_TOKEN}")
                    await page.wait_for_function(
                        "document.querySelectorAll('#sites tr[data-site]').length === 2 "
                        "&& document.querySelectorAll('#alerts li[data-alert]').length > 0"
                    )
                    shots.append(await shot(page, manual_out / "county.png"))
                    await county_runner.cleanup()
                    runners.remove(county_runner)
                    county.stop()
                    await asyncio.wait_for(county_task, 15)
            finally:
                await browser.close()
        return shots
    finally:
        for extra in runners:
            await extra.cleanup()
        if runner is not None:
            await runner.cleanup()
        app.stop()
        await asyncio.wait_for(engine, 15)
        broker.terminate()
        broker.wait(10)


async def start_county(app: EngineApp, broker_port: int, workdir: Path, clock: ManualClock):
    """The county service on the same broker, on a new store: it asks the engine for what it
    missed, so the morning's alerts are on its console."""
    county = CountyService(
        app.sites,
        broker=parse_broker_url(f"mqtt://127.0.0.1:{broker_port}"),
        db_path=workdir / "county.db",
        client_id="hallwatch-county-screenshots",
        clock=clock,
    )
    running = asyncio.create_task(county.run())
    await asyncio.wait_for(county.ready.wait(), 15)
    http_app = county_web.build_app(county, access=Access.from_environment(app.sites, token_environment()))
    runner = aioweb.AppRunner(http_app, access_log=None)
    await runner.setup()
    await aioweb.TCPSite(runner, "127.0.0.1", devbroker.free_port()).start()
    return county, running, runner


async def shot(page, path: Path) -> Path:
    await page.wait_for_timeout(300)  # the clock's first tick
    await page.screenshot(path=str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--manual-out", type=Path, default=MANUAL_OUT)
    args = parser.parse_args(argv)
    os.environ.update(token_environment())  # this process's own: the engine reads them at start-up
    with tempfile.TemporaryDirectory(prefix="hallwatch-shots-") as workdir:
        for path in asyncio.run(take(args.out, workdir=Path(workdir), manual_out=args.manual_out)):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
