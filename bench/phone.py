"""Phones following their slips: 300 phones on their slip's live stream and 10 boards on the
hall's, on one engine (``--http``, the demo site, a ticket secret).

  (1) call -> phone: window 2 calls the queue's tickets one after another (``call.next`` over
      MQTT, then ``service.start`` and ``service.finish``); for each call, the delay from
      publishing ``call.next`` to the called ticket's phone receiving the slip that says
      ``called`` (the page shows it on that event). p50 and p99; target p99 <= 250 ms.
  (2) ingest with them: a burst of QoS 1 ticket requests (``mosquitto_pub -l``, as bench/ingest.py)
      into an engine with the 300 phones and 10 boards connected, against the same burst into an
      engine with nobody connected (each engine new, the same 300 tickets issued first; the
      order alternates between rounds); N / time until the store holds them all. Target
      ratio >= 0.9.

The phones and boards are aiohttp clients in this process (on a 2-core machine they take CPU
from the engine, as a busier server would not let them).

    .venv/bin/python bench/phone.py [--phones 300] [--boards 10] [--calls 200] [--events 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Workspace, fast_publish, free_port, percentile, ticket_request_lines  # noqa: E402

from queue_engine.shells.mqtt import TCP_NODELAY  # noqa: E402

SECRET = "a-ticket-secret-for-the-phone-benchmark"
ROOT_TOPIC = "hallwatch/demo/dev"


class Requests:
    """Devices' requests over MQTT, each answered on the device's reply topic."""

    def __init__(self, client: aiomqtt.Client):
        self.client = client
        self.waiting: dict[str, asyncio.Future] = {}
        self.n = 0

    async def listen(self) -> None:
        async for message in self.client.messages:
            body = json.loads(message.payload)
            future = self.waiting.pop(body.get("re"), None)
            if future is not None and not future.done():
                future.set_result(body)

    async def send(self, device: str, kind: str, **fields) -> tuple[float, asyncio.Future]:
        self.n += 1
        event_id = f"{device}-bench-{self.n}"
        future = asyncio.get_running_loop().create_future()
        self.waiting[event_id] = future
        sent = time.monotonic()
        body = {"v": 1, "id": event_id, "type": kind, **fields}
        await self.client.publish(f"{ROOT_TOPIC}/{device}/event", json.dumps(body), qos=1)
        return sent, future

    async def ask(self, device: str, kind: str, **fields) -> dict:
        _, future = await self.send(device, kind, **fields)
        reply = await asyncio.wait_for(future, 10)
        if not reply["ok"]:
            raise RuntimeError(f"{kind}: {reply}")
        return reply


async def stream(session: aiohttp.ClientSession, url: str, on_event, connected: asyncio.Event | None = None) -> None:
    """Read an SSE stream until cancelled; ``on_event(name, data)`` for each event."""
    async with session.get(url) as response:
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status}")
        name = None
        async for line in response.content:
            if line.startswith(b"event: "):
                name = line[7:].strip()
                if name == b"hello" and connected is not None:
                    connected.set()
            elif line.startswith(b"data: ") and name is not None:
                on_event(name, line[6:])


class Hall:
    """One engine with its tickets, and (optionally) the phones and boards following them."""

    def __init__(self, ws: Workspace, tag: str):
        self.ws, self.tag = ws, tag
        self.http = free_port()
        self.db = ws.dir / f"phone-{tag}.db"
        self.tokens: list[tuple[str, str]] = []  # (number, token)
        self.called_seen: dict[str, float] = {}
        self.frames = 0
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        os.environ["HALLWATCH_TICKET_SECRET"] = SECRET
        self.ws.start_engine(
            "--http",
            f"127.0.0.1:{self.http}",
            "--http-max-connections",
            "2000",
            "--sync",
            "normal",
            db_name=self.db.name,
            client_id=f"bench-phone-{self.tag}",
        )

    async def issue(self, requests: Requests, count: int) -> None:
        for _ in range(count):
            reply = await requests.ask("kiosk-1", "ticket.request", service="shebao")
            self.tokens.append((reply["ticket"]["no"], reply["ticket"]["token"]))

    async def connect(self, session: aiohttp.ClientSession, phones: int, boards: int) -> None:
        base = f"http://127.0.0.1:{self.http}/api/v1/sites/demo"
        ready = []
        for no, token in self.tokens[:phones]:

            def seen(name, data, no=no):
                self.frames += 1
                if name == b"ticket" and no not in self.called_seen and b'"status":"called"' in data:
                    self.called_seen[no] = time.monotonic()

            ready.append(asyncio.Event())
            self.tasks.append(asyncio.create_task(stream(session, f"{base}/slips/{token}/stream", seen, ready[-1])))
        for _ in range(boards):
            ready.append(asyncio.Event())
            self.tasks.append(asyncio.create_task(stream(session, f"{base}/stream", lambda *_: None, ready[-1])))
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 60)

    async def calls(self, requests: Requests, count: int) -> list[float]:
        """Window 2 calls ``count`` tickets; the delay to each called phone."""
        await requests.ask("panel-w02", "staff.login", staff="s002")
        delays = []
        for _ in range(count):
            sent, future = await requests.send("panel-w02", "call.next")
            reply = await asyncio.wait_for(future, 10)
            number = reply["ticket"]
            deadline = time.monotonic() + 5
            while number not in self.called_seen and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            if number not in self.called_seen:
                raise RuntimeError(f"the phone of {number} never saw its call")
            delays.append(self.called_seen[number] - sent)
            await requests.ask("panel-w02", "service.start")
            await requests.ask("panel-w02", "service.finish", outcome="done")
        return delays

    async def burst(self, events: int, round_no: int) -> float:
        """``events`` ticket requests from two kiosks at once; N / time until all are stored."""
        with sqlite3.connect(self.db) as db:
            before = db.execute("select count(*) from events").fetchone()[0]
        lines = {
            d: ticket_request_lines(f"{d}-r{round_no}-{self.tag}", events // 2) for d in ("kiosk-1", "selfservice-1")
        }
        started = time.monotonic()
        publishers = [
            fast_publish(self.ws.port, f"{ROOT_TOPIC}/{d}/event", body, f"bench-pub-{d}-{self.tag}-{round_no}")
            for d, body in lines.items()
        ]
        with sqlite3.connect(self.db) as db:
            while db.execute("select count(*) from events").fetchone()[0] < before + events:
                await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        for publisher in publishers:
            publisher.wait(30)
        return events / elapsed

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.ws.stop_engine()
        async with aiomqtt.Client("127.0.0.1", self.ws.port, identifier=f"bench-phone-{self.tag}", clean_session=True):
            pass


async def one_engine(
    ws: Workspace, args, tag: str, *, followed: bool, round_no: int, calls: int
) -> tuple[float, list[float]]:
    hall = Hall(ws, f"{tag}-{round_no}")
    hall.start()
    # TCP_NODELAY, as the engine and the agents set it: without it Nagle holds each request ~40 ms.
    async with aiomqtt.Client(
        "127.0.0.1", ws.port, identifier=f"bench-devices-{tag}-{round_no}", socket_options=TCP_NODELAY
    ) as client:
        await client.subscribe(f"{ROOT_TOPIC}/+/reply", qos=1)
        requests = Requests(client)
        listener = asyncio.create_task(requests.listen())
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None), connector=aiohttp.TCPConnector(limit=0)
        )
        try:
            await hall.issue(requests, args.phones)
            if followed:
                await hall.connect(session, args.phones, args.boards)
            rate = await hall.burst(args.events, round_no)
            delays = await hall.calls(requests, calls) if followed and calls else []
        finally:
            await hall.stop()
            await session.close()
            listener.cancel()
    return rate, delays


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, default=300)
    parser.add_argument("--boards", type=int, default=10)
    parser.add_argument("--calls", type=int, default=200, help="calls measured (in the first round)")
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.calls = min(args.calls, args.phones)
    ws = Workspace()
    try:
        ws.start_broker()
        alone: list[float] = []
        followed: list[float] = []
        delays: list[float] = []
        for round_no in range(args.rounds):
            order = (False, True) if round_no % 2 == 0 else (True, False)
            line = f"round {round_no + 1}:"
            for with_phones in order:
                rate, measured = await one_engine(
                    ws,
                    args,
                    "phones" if with_phones else "alone",
                    followed=with_phones,
                    round_no=round_no,
                    calls=args.calls if round_no == 0 else 0,
                )
                (followed if with_phones else alone).append(rate)
                delays += measured
                line += f"  {'with phones' if with_phones else 'alone'} {rate:,.0f}/s"
            print(line, flush=True)
        a, b = statistics.median(alone), statistics.median(followed)
        print(f"\n{args.phones} phones on their slips' streams, {args.boards} boards, engine sync=normal")
        p50, p99 = (percentile(delays, p) * 1000 for p in (50, 99))
        print(
            f"(1) call.next -> the called phone's slip: {len(delays)} calls, p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms, max {max(delays) * 1000:.1f} ms (target p99 <= 250 ms)"
        )
        print(f"(2) ingest of {args.events:,} QoS 1 ticket requests, median of {args.rounds} rounds:")
        print(f"    nobody connected {a:,.0f} msg/s; with the phones and boards {b:,.0f} msg/s")
        print(f"    ratio {b / a:.2f} (target >= 0.9)")
    finally:
        ws.close()


if __name__ == "__main__":
    asyncio.run(main())
