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

With ``--metrics on`` the engine also serves Prometheus metrics (``--http``) and the
benchmark scrapes its ``/metrics`` every ``--scrape-interval`` seconds during the burst, as a
Prometheus would (more often than one does: 15 s is usual). With ``--metrics both`` every
round runs the engine without and then with metrics, so the two ratios come from the same
rounds: (c) is the engine with metrics, c/a its ratio and c/b what metrics cost (target:
c/b >= 0.9).

With ``--baseline-tree DIR`` (another checkout of the project, e.g. ``git worktree add
/tmp/base <rev>``) every round also runs that tree's engine, alternating the order with this
tree's: (d) is the baseline engine and b/d what the change costs, measured in the same rounds.

    .venv/bin/python bench/ingest.py [--events 20000] [--rounds 3] [--sync full|normal]
                                     [--metrics off|on|both] [--scrape-interval 1.0]
                                     [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Workspace, fast_publish, free_port, ticket_request_lines  # noqa: E402

DEVICES = ("kiosk-1", "selfservice-1")


async def count_until(port: int, topic_filter: str, expected: int, started: asyncio.Event, client_id: str) -> float:
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
        counter = asyncio.create_task(
            count_until(ws.port, "hallwatch/demo/dev/+/event", events, ready, f"bench-{tag}-{round_no}")
        )
        await ready.wait()
    else:
        counter = asyncio.create_task(stored_by(db_path, events))
    per_device = events // len(DEVICES)
    payloads = {d: ticket_request_lines(f"{d}-r{round_no}", per_device) for d in DEVICES}
    t0 = time.monotonic()
    publishers = [
        fast_publish(ws.port, f"hallwatch/demo/dev/{d}/event", payloads[d], f"pub-{tag}-{d}-{round_no}")
        for d in DEVICES
    ]
    end = await asyncio.wait_for(counter, timeout=300)
    for p in publishers:
        p.wait(30)
    return events / (end - t0)


class Scraper(threading.Thread):
    """Fetches /metrics every ``interval`` seconds, as Prometheus would, until stopped;
    records how long each scrape took (the engine answers it between messages)."""

    def __init__(self, port: int, interval: float):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.durations: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            started = time.monotonic()
            body = urllib.request.urlopen(self.url, timeout=30).read()
            self.durations.append(time.monotonic() - started)
            if b"hallwatch_tickets_issued_total" not in body:
                raise RuntimeError("the engine's /metrics lacks hallwatch_tickets_issued_total")

    def stop(self) -> list[float]:
        self._stop_event.set()
        self.join()
        return self.durations


async def forget_session(port: int, client_id: str) -> None:
    """End an engine's persistent session, so that it does not queue the later rounds'
    bursts in the broker (which would slow every later measurement a little more)."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id, clean_session=True):
        pass


async def run_engine(
    ws: Workspace, args, events: int, round_no: int, with_metrics: bool, tree: Path | None = None
) -> tuple[float, list[float]]:
    """One engine run: (rate, durations of the scrapes during the burst)."""
    tag = "baseline" if tree is not None else "metrics" if with_metrics else "engine"
    db_name = f"bench-{tag}-{round_no}.db"
    client_id = f"hallwatch-bench-{tag}-{round_no}"
    extra = ["--sync", args.sync]
    http_port = free_port() if with_metrics else None
    if with_metrics:
        extra += ["--http", f"127.0.0.1:{http_port}"]
    ws.start_engine(*extra, db_name=db_name, client_id=client_id, **({"tree": tree} if tree else {}))
    scraper = Scraper(http_port, args.scrape_interval) if with_metrics else None
    if scraper is not None:
        scraper.start()
    rate = await timed_burst(ws, events, round_no, tag, ws.dir / db_name)
    scrapes = scraper.stop() if scraper is not None else []
    try:
        ws.stop_engine()
    except subprocess.TimeoutExpired:  # measured already; say so, and go on
        print(
            f"warning: {tag} run {round_no + 1}: the engine did not stop within 30 s of SIGTERM; killed it",
            file=sys.stderr,
            flush=True,
        )
        ws.engine.kill()
        ws.engine.wait()
        ws.engine = None
    await forget_session(ws.port, client_id)
    with sqlite3.connect(ws.dir / db_name) as db:
        stored = db.execute("select count(*) from events").fetchone()[0]
    if stored != events:
        raise SystemExit(f"round {round_no}: the store holds {stored} events, expected {events}")
    return rate, scrapes


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sync", choices=["full", "normal"], default="full")
    parser.add_argument(
        "--metrics",
        choices=["off", "on", "both"],
        default="off",
        help="run the engine with Prometheus metrics served and scraped (both: without, then with)",
    )
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds between scrapes of /metrics")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="another checkout whose engine runs in every round too, alternating with this one",
    )
    args = parser.parse_args()
    events = args.events - args.events % len(DEVICES)

    ws = Workspace()
    try:
        ws.start_broker()
        variants: list = {"off": [False], "on": [True], "both": [False, True]}[args.metrics]
        if args.baseline_tree:
            variants.append("baseline")
        bare: list[float] = []
        runs: dict = {v: [] for v in variants}
        scrapes: list[float] = []
        for round_no in range(args.rounds):
            bare.append(await timed_burst(ws, events, round_no, "bare"))
            line = f"round {round_no + 1}: bare {bare[-1]:,.0f}/s"
            # Alternate the order, so that neither variant always runs on a warmer machine.
            for variant in variants if round_no % 2 == 0 else variants[::-1]:
                baseline = variant == "baseline"
                rate, durations = await run_engine(
                    ws, args, events, round_no, variant is True, args.baseline_tree if baseline else None
                )
                runs[variant].append(rate)
                scrapes += durations
                label = "baseline" if baseline else "engine+metrics" if variant is True else "engine"
                line += f"  {label} {rate:,.0f}/s (ratio {rate / bare[-1]:.2f})"
            print(line, flush=True)
        a = statistics.median(bare)
        print(f"\n{events:,} QoS 1 ticket requests, {args.rounds} rounds, engine sync={args.sync}")
        print(f"(a) bare aiomqtt QoS 1 subscriber: {a:,.0f} msg/s")
        if False in runs:
            b = statistics.median(runs[False])
            print(f"(b) engine, committed (then replied and acknowledged): {b:,.0f} msg/s")
            print(f"b/a = {b / a:.2f} (target >= 0.5)")
        if True in runs:
            c = statistics.median(runs[True])
            slowest = f", slowest {max(scrapes) * 1000:,.0f} ms" if scrapes else ""
            print(
                f"(c) engine with metrics (/metrics scraped every {args.scrape_interval:g} s: "
                f"{len(scrapes)} scrapes{slowest}): {c:,.0f} msg/s"
            )
            print(f"c/a = {c / a:.2f} (target >= 0.5)")
            if False in runs:
                print(f"c/b = {c / b:.2f} (target >= 0.9: metrics cost at most 10 %)")
        if "baseline" in runs:
            d = statistics.median(runs["baseline"])
            print(f"(d) baseline engine ({args.baseline_tree}): {d:,.0f} msg/s, d/a = {d / a:.2f}")
            if False in runs:
                print(f"b/d = {b / d:.2f} (this tree against the baseline, same rounds)")
    finally:
        ws.close()


if __name__ == "__main__":
    asyncio.run(main())
