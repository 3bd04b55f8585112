"""The hall simulator: a working day of a township centre against the real engine, over MQTT.

Every device of the site speaks the protocol on its own topics: kiosks issue tickets to
citizens who arrive with a morning peak (some of them priority, some never turning up), panels
call, serve, transfer and finish, rating pads rate, cameras report presence, every device
heartbeats. Staged along the day: staff breaks and lunch, one staff member who leaves the
window unannounced (10:00), one camera switched off mid-morning (10:30-11:00), one kiosk
crashing (11:15, its Last Will; back at 11:40). Time runs ``speed`` times faster than real
time from ``start_at``: start the engine with the same ``--start-at`` and ``--speed``.

The simulator keeps its own count of what it did, to compare with the engine's store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

import aiomqtt

from queue_engine.config import Site
from queue_engine.core.kinds import DEVICE_KINDS
from queue_engine.core.vocabulary import ALERT_KIND
from queue_engine.shells.clock import Clock
from queue_engine.shells.mqtt import BrokerSettings, new_client
from queue_engine.wire import Topics

from .device import boot_prefix, event, heartbeat, status_offline, status_online

OUTCOMES = ["done"] * 70 + ["accepted"] * 15 + ["informed"] * 8 + ["proxy"] * 5 + ["failed"] * 2
SCORES = [5] * 70 + [4] * 20 + [3] * 6 + [2] * 3 + [1] * 1


@dataclass
class Tally:
    issued: int = 0
    called: int = 0
    served: int = 0
    no_shows: int = 0
    transfers: int = 0
    ratings: int = 0
    refused: int = 0
    alerts: Counter = field(default_factory=Counter)

    def counts(self) -> dict:
        """The day's count, as the command prints it (JSON)."""
        return {
            **{
                name: getattr(self, name)
                for name in ("issued", "called", "served", "no_shows", "transfers", "ratings", "refused")
            },
            "alerts": dict(self.alerts),
        }

    def describe(self, names: tuple[str, ...], lang: str, sep: str) -> str:
        """The counts ``names`` and the alerts by kind, for people, in ``lang`` (zh, en)."""
        words = COUNT_WORDS[lang]
        counts = sep.join(f"{words[name]} {getattr(self, name)}" for name in names)
        if lang == "zh":
            alerts = "，".join(f"{ALERT_KIND.get(k, k)} {n}" for k, n in sorted(self.alerts.items())) or "无"
            return f"{counts}{sep}告警：{alerts}"
        return f"{counts}{sep}alerts: {', '.join(f'{k} {n}' for k, n in sorted(self.alerts.items())) or '-'}"


# The day's counts as people read them (``hallwatch simulate --lang``).
COUNT_WORDS = {
    "zh": {
        "issued": "取号",
        "called": "叫号",
        "served": "办结",
        "no_shows": "过号",
        "transfers": "转办",
        "ratings": "评价",
        "refused": "被拒",
    },
    "en": {
        "issued": "issued",
        "called": "called",
        "served": "served",
        "no_shows": "no-shows",
        "transfers": "transfers",
        "ratings": "ratings",
        "refused": "refused",
    },
}


class Simulation:
    def __init__(
        self,
        site: Site,
        broker: BrokerSettings,
        *,
        start_at: float,
        speed: float,
        end_at: float | None = None,
        seed: int = 1,
        arrivals_per_hour: float = 60.0,
        closing_at: float | None = None,
        root: str = "hallwatch",
        progress: TextIO = sys.stdout,
        lang: str = "zh",
    ):
        self.site = site
        self.broker = broker
        self.start_at = start_at
        self.speed = speed
        self.clock = Clock(start_at=start_at, speed=speed)  # the engine's own clock, started alike
        local = datetime.fromtimestamp(start_at, site.tz)
        self.day = local.date()
        self.end_at = end_at or self.at(19, 0)  # a cap: the day ends when the last citizen is served
        # When citizens stop taking numbers and windows stop calling: they finish the visit in
        # hand and sign out (a shorter day, for tests and demonstrations).
        self.closing_at = min(closing_at or math.inf, self.at(17, 30))
        self.random = random.Random(seed)
        self.rate = arrivals_per_hour
        self.tally = Tally()
        self.progress = progress
        self.lang = lang  # of the progress line: zh or en
        self._progress_on_terminal = progress.isatty()
        self._ids = itertools.count(1)
        self._boot = boot_prefix()  # ids unique across runs: the engine refuses a reused one
        self._replies: dict[str, asyncio.Future] = {}
        self._client: aiomqtt.Client | None = None
        self._down: set[str] = set()  # devices switched off or crashed
        self._away: set[str] = set()  # windows whose staff left the seat
        self.services = [s.code for s in site.services if not s.theme]
        self.topics = Topics(root)

    @property
    def _live_client(self) -> aiomqtt.Client:
        """The connection run() opened: everything that publishes runs inside it."""
        assert self._client is not None, "the simulation is not running"
        return self._client

    # -- simulated time -------------------------------------------------------------------
    def at(self, hour: int, minute: int = 0) -> float:
        return datetime.combine(self.day, datetime.min.time(), self.site.tz).timestamp() + hour * 3600 + minute * 60

    def now(self) -> float:
        return self.clock.now()

    async def until(self, moment: float) -> None:
        await self.clock.sleep_until(moment)

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    # -- the wire: the devices' own encoders and the protocol's topics -------------------
    def topic(self, device: str, channel: str) -> str:
        return self.topics.device(self.site.id, device, channel)

    def _event(self, type_: str, **fields) -> tuple[str, bytes]:
        event_id = f"sim-{self._boot}-{next(self._ids)}"
        return event_id, event(event_id, type_, datetime.fromtimestamp(self.now(), self.site.tz).isoformat(), **fields)

    async def send(self, device: str, type_: str, **fields) -> dict | None:
        event_id, body = self._event(type_, **fields)
        future = asyncio.get_running_loop().create_future()
        self._replies[event_id] = future
        await self._live_client.publish(self.topic(device, "event"), body, qos=1)
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the day's own
            # timeout cancelling the actors when it arrives as a reply does, and the day then
            # never ends
            async with asyncio.timeout(10):
                reply = await future
        except TimeoutError:
            return None
        finally:
            self._replies.pop(event_id, None)
        if not reply.get("ok"):
            self.tally.refused += 1
        return reply

    async def notify(self, device: str, type_: str, **fields) -> None:
        _, body = self._event(type_, **fields)
        await self._live_client.publish(self.topic(device, "event"), body, qos=1)

    async def status(self, device: str, online: bool, reason: str = "shutdown") -> None:
        config = self.site.device(device)
        assert config is not None  # (called for the site's own devices)
        body = (
            status_online(config.kind.value, config.window, "hallwatch-simulator") if online else status_offline(reason)
        )
        await self._live_client.publish(self.topic(device, "status"), body, qos=1, retain=True)

    async def _listen(self) -> None:
        # A lost connection ends this loop with MqttError; the actors' next publish raises it
        # too, and run() reports it (the task is always awaited, so its error is retrieved).
        async for message in self._live_client.messages:
            body = json.loads(message.payload)
            if message.topic.value.endswith("/reply"):
                future = self._replies.get(body.get("re"))
                if future is not None and not future.done():
                    future.set_result(body)
            elif message.topic.value.endswith("/alerts") and body.get("state") == "firing":
                self.tally.alerts[body["kind"]] += 1

    # -- the actors -----------------------------------------------------------------------
    async def heartbeats(self) -> None:
        seq = 0
        while True:
            seq += 1
            for device in self.site.devices:
                if device.id not in self._down:
                    await self._live_client.publish(
                        self.topic(device.id, "heartbeat"),
                        heartbeat(seq, seq * 10.0),
                        qos=0,
                    )
            await self.wait(10)

    async def citizens(self) -> None:
        await self.until(self.at(8, 30))
        kiosks = [d.id for d in self.site.devices if DEVICE_KINDS[d.kind].issues_tickets]
        while self.now() < min(self.at(17, 15), self.closing_at):
            hour = datetime.fromtimestamp(self.now(), self.site.tz).hour
            peak = 1.8 if 9 <= hour < 11 else 0.3 if hour == 12 or hour == 13 else 1.0  # morning peak
            await self.wait(self.random.expovariate(self.rate * peak / 3600))
            kiosk = next(k for k in self.random.sample(kiosks, len(kiosks)) if k not in self._down)
            extra = {"priority": "elderly"} if self.random.random() < 0.08 else {}
            reply = await self.send(kiosk, "ticket.request", service=self.random.choice(self.services), **extra)
            if reply and reply.get("ok"):
                self.tally.issued += 1

    async def window(self, window_id: str, staff: str) -> None:
        panel, camera, pad = f"panel-{window_id}", f"cam-{window_id}", f"pad-{window_id}"
        has = {d.id for d in self.site.devices}
        await self.until(self.at(8, 25) + self.random.uniform(0, 240))
        await self.send(panel, "staff.login", staff=staff)
        if camera in has:
            await self.notify(camera, "presence", window=window_id, present=True, count=1)
        break_at: float | None = self.at(10, 0) + self.random.uniform(-1800, 3600)
        while self.now() < self.closing_at:
            now = self.now()
            if self.at(12, 0) <= now < self.at(14, 30):  # lunch: a declared pause
                await self.send(panel, "window.pause", reason="meal")
                await self.until(self.at(14, 30) + self.random.uniform(0, 120))
                await self.send(panel, "window.resume")
                continue
            if break_at and now >= break_at:
                break_at = None
                await self.send(panel, "window.pause", reason="break")
                await self.wait(self.random.uniform(300, 720))
                await self.send(panel, "window.resume")
                continue
            reply = await self.send(panel, "call.next")
            if not reply or not reply.get("ok"):
                await self.wait(30)
                continue
            self.tally.called += 1
            await self.wait(self.random.uniform(20, 90))
            if self.random.random() < 0.06:
                await self.send(panel, "call.skip")
                self.tally.no_shows += 1
                continue
            await self.send(panel, "service.start")
            expected = 60 * 8
            await self.wait(min(45 * 60, self.random.expovariate(1 / expected)))
            if self.random.random() < 0.05:
                others = [s for s in self.services if s != "banbucheng"]
                transfer = await self.send(panel, "ticket.transfer", to_service=self.random.choice(others))
                if transfer and transfer.get("ok"):
                    self.tally.transfers += 1
                    continue
            finished = await self.send(panel, "service.finish", outcome=self.random.choice(OUTCOMES))
            if finished and finished.get("routed_to"):  # 办不成: on to the 办不成事 window
                self.tally.transfers += 1
                continue
            self.tally.served += 1
            if pad in has and self.random.random() < 0.8:
                rated = await self.send(pad, "rating", window=window_id, score=self.random.choice(SCORES))
                if rated and rated.get("ok"):
                    self.tally.ratings += 1
        await self.send(panel, "staff.logout")

    async def scenes(self) -> None:
        """What the supervision office should see (those before the closing time)."""
        script = [
            ((10, 0), lambda: self._leave("w03")),  # the staff member leaves unannounced
            ((10, 20), lambda: self._return("w03")),
            ((10, 30), lambda: self._power("cam-w04", False, "shutdown")),  # switched off mid-morning
            ((11, 0), lambda: self._power("cam-w04", True)),
            ((11, 15), lambda: self._power("kiosk-1", False, "lost")),  # crashes: its Last Will
            ((11, 40), lambda: self._power("kiosk-1", True)),
        ]
        for (hour, minute), scene in script:
            if self.at(hour, minute) >= self.closing_at:
                return
            await self.until(self.at(hour, minute))
            await scene()

    async def _leave(self, window: str) -> None:
        self._away.add(window)
        await self.notify(f"cam-{window}", "presence", window=window, present=False, count=0)

    async def _return(self, window: str) -> None:
        await self.notify(f"cam-{window}", "presence", window=window, present=True, count=1)
        self._away.discard(window)

    async def _power(self, device: str, online: bool, reason: str = "shutdown") -> None:
        if self.site.device(device) is None:
            return  # a scene for a device this site does not have
        if online:
            self._down.discard(device)
        else:
            self._down.add(device)
        await self.status(device, online, reason)

    PROGRESS_STEP = 15 * 60  # simulated seconds between two progress lines off a terminal

    def progress_line(self) -> str:
        clock = datetime.fromtimestamp(self.now(), self.site.tz).strftime("%H:%M")
        return f"{clock}  {self.tally.describe(('issued', 'served', 'no_shows', 'transfers'), self.lang, '  ')}"

    async def show_progress(self) -> None:
        """On a terminal, one line rewritten in place every second; elsewhere (a pipe, a log
        file) a line of its own every quarter of a simulated hour, so that the output reads
        as lines and does not grow one endless line."""
        while True:
            if self._progress_on_terminal:
                print(f"\r{self.progress_line()}\033[K", end="", file=self.progress, flush=True)
                await asyncio.sleep(1.0)
            else:
                print(self.progress_line(), file=self.progress, flush=True)
                await self.until((self.now() // self.PROGRESS_STEP + 1) * self.PROGRESS_STEP)

    def end_progress(self, day_ran: bool) -> None:
        """The terminal's line is closed; off a terminal the end of the day gets its line."""
        if self._progress_on_terminal:
            print(file=self.progress, flush=True)
        elif day_ran:
            print(self.progress_line(), file=self.progress, flush=True)

    async def run(self) -> Tally:
        """The day, to its end; cancelled (Ctrl-C, SIGTERM), the devices still sign off."""
        self.clock = Clock(start_at=self.start_at, speed=self.speed)  # from now, as the engine's from its start
        b = self.broker
        client = new_client(b, identifier=f"hallwatch-simulator-{self.site.id}", max_inflight_messages=0)
        day_ran = False
        async with client:
            self._client = client
            await client.subscribe([(self.topics.reply(self.site.id, "+"), 1), (self.topics.alerts(self.site.id), 1)])
            listener = asyncio.create_task(self._listen())
            background = [asyncio.create_task(c) for c in (self.heartbeats(), self.show_progress())]
            try:
                for device in self.site.devices:
                    await self.status(device.id, True)
                staff = [s.id for s in self.site.staff]
                actors = [self.window(w.id, staff[i % len(staff)]) for i, w in enumerate(self.site.windows) if staff]
                # asyncio.timeout, not wait_for: cancelled, Python 3.11's wait_for leaves the
                # gathering's CancelledError unretrieved (a traceback at exit).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(1.0, (self.end_at - self.now()) / self.speed)):
                        await asyncio.gather(self.citizens(), self.scenes(), *actors)
                day_ran = True
            finally:
                for task in (*background, listener):
                    task.cancel()
                await asyncio.gather(*background, listener, return_exceptions=True)
                with contextlib.suppress(aiomqtt.MqttError):
                    for device in self.site.devices:
                        await self.status(device.id, False, "shutdown")
                self.end_progress(day_ran)
        return self.tally


def default_start(site: Site, now: datetime) -> float:
    """08:20 of today (or the last weekday), in the site's timezone."""
    day = now.astimezone(site.tz).date()
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), site.tz).timestamp() + 8 * 3600 + 20 * 60


def local_time(site: Site, day_of: float, hhmm: str) -> float:
    """``HH:MM`` on the (local) day of the moment ``day_of``."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    day = datetime.fromtimestamp(day_of, site.tz).date()
    return datetime.combine(day, datetime.min.time(), site.tz).timestamp() + hour * 3600 + minute * 60
