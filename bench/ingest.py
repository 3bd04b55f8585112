"""Ingest throughput: how close the engine comes to what a bare MQTT subscriber can take.

Same script, same broker configuration, same publisher (two ``mosquitto_pub -l`` processes,
QoS 1 ticket requests from ``kiosk-1`` and ``selfservice-1``):

  (a) a bare aiomqtt QoS 1 subscriber receives the burst: N / time until it has all;
  (b) the engine processes it durably: every request parsed, validated, deduplicated,
      applied, committed to SQLite (WAL, synchronous=FULL by default), then its reply
      published and its QoS 1 message acknowledged (both in the commit's callback):
      N / time until the store holds all N. The store is polled every 20 ms rather than
      the replies counted by a subscriber, because on a 2-core machine that subscriber
      would take CPU from the engine; the kiosks that receive replies in a hall run
      elsewhere.

Reports a, b and b/a (target >= 0.5), median of the rounds.

    .venv/bin/python bench/ingest.py [--events 20000] [--rounds 3] [--sync full|normal]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Workspace, fast_publish, ticket_request_lines  # noqa: E402

DEVICES = ("kiosk-1", "selfservice-1")


async def count_until(port: int, topic_filter: str, expected: int, started: asyncio.Event,
                      client_id: str) -> float:
    """Subscribe, signal readiness, then return the monotonic time the last expected message arrived."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id) as client:
        await client.subscribe(topic_filter, qos=1)
        started.set()
        seen = 0
        async for _ in client.messages:
            seen += 1
            if seen >= expected:
                return time.monotonic()
    raise RuntimeError("subscription ended early")


async def stored_by(db_path: Path, expected: int) -> float:
    """The monotonic time at which the store first holds ``expected`` events."""
    with sqlite3.connect(db_path) as db:
        while db.execute("select count(*) from events").fetchone()[0] < expected:
            await asyncio.sleep(0.02)
    return time.monotonic()


async def timed_burst(ws: Workspace, events: int, round_no: int, tag: str, db_path: Path | None = None) -> float:
    if db_path is None:
        ready = asyncio.Event()
        counter = asyncio.create_task(count_until(ws.port, "hallwatch/demo/dev/+/event", events, ready,
                                                  f"bench-{tag}-{round_no}"))
        await ready.wait()
    else:
        counter = asyncio.create_task(stored_by(db_path, events))
    per_device = events // len(DEVICES)
    payloads = {d: ticket_request_lines(f"{d}-r{round_no}", per_device) for d in DEVICES}
    t0 = time.monotonic()
    publishers = [fast_publish(ws.port, f"hallwatch/demo/dev/{d}/event", payloads[d], f"pub-{tag}-{d}-{round_no}")
                  for d in DEVICES]
    end = await asyncio.wait_for(counter, timeout=300)
    for p in publishers:
        p.wait(30)
    return events / (end - t0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sync", choices=["full", "normal"], default="full")
    args = parser.parse_args()
    events = args.events - args.events % len(DEVICES)

    ws = Workspace()
    try:
        ws.start_broker()
        bare, engine = [], []
        for round_no in range(args.rounds):
            bare.append(await timed_burst(ws, events, round_no, "bare"))
            # A new persistent session each round: the previous round's session would
            # otherwise have queued the next bare round's burst for the engine.
            ws.start_engine("--sync", args.sync, db_name=f"bench-{round_no}.db",
                            client_id=f"hallwatch-bench-engine-{round_no}")
            engine.append(await timed_burst(ws, events, round_no, "engine", ws.dir / f"bench-{round_no}.db"))
            ws.stop_engine()
            with sqlite3.connect(ws.dir / f"bench-{round_no}.db") as db:
                stored = db.execute("select count(*) from events").fetchone()[0]
            if stored != events:
                raise SystemExit(f"round {round_no}: the store holds {stored} events, expected {events}")
            print(f"round {round_no + 1}: bare {bare[-1]:,.0f}/s  engine {engine[-1]:,.0f}/s  "
                  f"ratio {engine[-1] / bare[-1]:.2f}", flush=True)
        a, b = statistics.median(bare), statistics.median(engine)
        print(f"\n{events:,} QoS 1 ticket requests, {args.rounds} rounds, engine sync={args.sync}")
        print(f"(a) bare aiomqtt QoS 1 subscriber: {a:,.0f} msg/s")
        print(f"(b) engine, committed (then replied and acknowledged): {b:,.0f} msg/s")
        print(f"b/a = {b / a:.2f} (target >= 0.5)")
    finally:
        ws.close()


if __name__ == "__main__":
    asyncio.run(main())
