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
import ssl
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiomqtt

from queue_engine.config import Site
from queue_engine.shells.mqtt import TCP_NODELAY, BrokerSettings

from .device import boot_prefix

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
        progress=sys.stdout,
    ):
        self.site = site
        self.broker = broker
        self.start_at = start_at
        self.speed = speed
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
        self._loop_t0 = 0.0
        self._ids = itertools.count(1)
        self._boot = boot_prefix()  # ids unique across runs: the engine refuses a reused one
        self._replies: dict[str, asyncio.Future] = {}
        self._client: aiomqtt.Client | None = None
        self._down: set[str] = set()  # devices switched off or crashed
        self._away: set[str] = set()  # windows whose staff left the seat
        self.services = [s.code for s in site.services if not s.theme]
        self.root = "hallwatch"

    # -- simulated time -------------------------------------------------------------------
    def at(self, hour: int, minute: int = 0) -> float:
        return datetime.combine(self.day, datetime.min.time(), self.site.tz).timestamp() + hour * 3600 + minute * 60

    def now(self) -> float:
        return self.start_at + (asyncio.get_running_loop().time() - self._loop_t0) * self.speed

    async def until(self, moment: float) -> None:
        delay = (moment - self.now()) / self.speed
        if delay > 0:
            await asyncio.sleep(delay)

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    # -- the wire -------------------------------------------------------------------------
    def topic(self, device: str, channel: str) -> str:
        return f"{self.root}/{self.site.id}/dev/{device}/{channel}"

    async def send(self, device: str, type_: str, **fields) -> dict | None:
        event_id = f"sim-{self._boot}-{next(self._ids)}"
        future = asyncio.get_running_loop().create_future()
        self._replies[event_id] = future
        body = {
            "v": 1,
            "id": event_id,
            "ts": datetime.fromtimestamp(self.now(), self.site.tz).isoformat(),
            "type": type_,
            **fields,
        }
        await self._client.publish(self.topic(device, "event"), json.dumps(body), qos=1)
        try:
            reply = await asyncio.wait_for(future, 10)
        except TimeoutError:
            return None
        finally:
            self._replies.pop(event_id, None)
        if not reply.get("ok"):
            self.tally.refused += 1
        return reply

    async def notify(self, device: str, type_: str, **fields) -> None:
        body = {"v": 1, "id": f"sim-{self._boot}-{next(self._ids)}", "type": type_, **fields}
        await self._client.publish(self.topic(device, "event"), json.dumps(body), qos=1)

    async def status(self, device: str, online: bool, reason: str = "shutdown") -> None:
        kind = self.site.device(device).kind.value
        body = {"v": 1, "state": "online", "kind": kind} if online else {"v": 1, "state": "offline", "reason": reason}
        await self._client.publish(self.topic(device, "status"), json.dumps(body), qos=1, retain=True)

    async def _listen(self) -> None:
        async for message in self._client.messages:
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
                    await self._client.publish(
                        self.topic(device.id, "heartbeat"),
                        json.dumps({"v": 1, "seq": seq, "uptime_s": seq * 10}),
                        qos=0,
                    )
            await self.wait(10)

    async def citizens(self) -> None:
        await self.until(self.at(8, 30))
        kiosks = [d.id for d in self.site.devices if d.kind.value in ("kiosk", "selfservice")]
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
        break_at = self.at(10, 0) + self.random.uniform(-1800, 3600)
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
            await self.send(panel, "service.finish", outcome=self.random.choice(OUTCOMES))
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
        if online:
            self._down.discard(device)
        else:
            self._down.add(device)
        await self.status(device, online, reason)

    async def show_progress(self) -> None:
        while True:
            t = self.tally
            clock = datetime.fromtimestamp(self.now(), self.site.tz).strftime("%H:%M")
            alerts = ", ".join(f"{k} {n}" for k, n in sorted(t.alerts.items())) or "-"
            print(
                f"\r{clock}  issued {t.issued}  served {t.served}  no-shows {t.no_shows}  "
                f"transfers {t.transfers}  alerts: {alerts}   ",
                end="",
                file=self.progress,
                flush=True,
            )
            await asyncio.sleep(1.0)

    async def run(self) -> Tally:
        self._loop_t0 = asyncio.get_running_loop().time()
        b = self.broker
        client = aiomqtt.Client(
            b.host,
            b.port,
            identifier=f"hallwatch-simulator-{self.site.id}",
            username=b.username,
            password=b.password,
            keepalive=30,
            socket_options=TCP_NODELAY,
            max_inflight_messages=0,
            tls_context=ssl.create_default_context(cafile=b.ca_file) if b.tls else None,
        )
        async with client:
            self._client = client
            await client.subscribe([(self.topic("+", "reply"), 1), (f"{self.root}/{self.site.id}/alerts", 1)])
            listener = asyncio.create_task(self._listen())
            for device in self.site.devices:
                await self.status(device.id, True)
            background = [asyncio.create_task(c) for c in (self.heartbeats(), self.show_progress())]
            staff = [s.id for s in self.site.staff]
            actors = [self.window(w.id, staff[i % len(staff)]) for i, w in enumerate(self.site.windows) if staff]
            work = asyncio.gather(self.citizens(), self.scenes(), *actors)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(work, timeout=max(1.0, (self.end_at - self.now()) / self.speed))
            for task in (*background, listener):
                task.cancel()
            for device in self.site.devices:
                await self.status(device.id, False, "shutdown")
        print(file=self.progress)
        return self.tally


def default_start(site: Site, now: datetime) -> float:
    """08:20 of today (or the last weekday), in the site's timezone."""
    day = now.astimezone(site.tz).date()
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), site.tz).timestamp() + 8 * 3600 + 20 * 60


def cmd_simulate(args) -> int:
    from queue_engine.cli import EXIT_CONFIG, parse_time
    from queue_engine.config import ConfigError, load_site
    from queue_engine.shells.mqtt import BrokerUrlError, parse_broker_url

    try:
        site = load_site(args.config)
        broker = parse_broker_url(args.broker, ca_file=args.ca_file)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    except BrokerUrlError as err:
        print(f"hallwatch simulate: {err}", file=sys.stderr)
        return EXIT_CONFIG
    start = parse_time(args.start_at) if args.start_at else default_start(site, datetime.now().astimezone())
    closing = None
    if args.closing:
        hour, minute = (int(x) for x in args.closing.split(":"))
        day = datetime.fromtimestamp(start, site.tz).date()
        closing = datetime.combine(day, datetime.min.time(), site.tz).timestamp() + hour * 3600 + minute * 60
    sim = Simulation(
        site,
        broker,
        start_at=start,
        speed=args.speed,
        seed=args.seed,
        arrivals_per_hour=args.arrivals_per_hour,
        closing_at=closing,
    )
    print(
        f"simulating {site.name} from {datetime.fromtimestamp(start, site.tz).isoformat()} at x{args.speed:g}; "
        f"start the engine with --start-at and the same --speed",
        flush=True,
    )
    try:
        tally = asyncio.run(sim.run())
    except aiomqtt.MqttError as err:
        print(f"hallwatch simulate: broker {broker.describe()}: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 0
    print(
        json.dumps(
            {
                "issued": tally.issued,
                "called": tally.called,
                "served": tally.served,
                "no_shows": tally.no_shows,
                "transfers": tally.transfers,
                "ratings": tally.ratings,
                "refused": tally.refused,
                "alerts": dict(tally.alerts),
            },
            ensure_ascii=False,
        )
    )
    return 0


def register(sub, commands) -> None:
    import os

    parser = sub.add_parser("simulate", help="a working day of a hall against the engine, over MQTT")
    parser.add_argument("--config", required=True, help="site TOML file")
    parser.add_argument("--broker", default=os.environ.get("HALLWATCH_BROKER", "mqtt://127.0.0.1:1883"))
    parser.add_argument("--ca-file", default=os.environ.get("HALLWATCH_CA_FILE"))
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real second")
    parser.add_argument("--start-at", default=None, help="ISO-8601 moment the day starts (default 08:20 today)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arrivals-per-hour", type=float, default=60.0)
    parser.add_argument(
        "--closing",
        metavar="HH:MM",
        type=_hhmm,
        default=None,
        help="end the day early: from this time no number is taken and no ticket called; windows "
        "finish the visit in hand and sign out",
    )
    commands["simulate"] = cmd_simulate


def _hhmm(text: str) -> str:
    import argparse
    import re

    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day HH:MM")
    return text
