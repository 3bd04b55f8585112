"""Detection delays and the cost of watching a county's devices.

Part 1, the demo site with a real broker and the engine process at real speed: the delay
from a threshold being crossed to the alert arriving at a subscriber of
``hallwatch/demo/alerts`` (target: each within 1 s of its threshold):
  - Last Will: from the moment a subscriber sees the broker publish the camera's Last Will;
  - heartbeat silence: from the last heartbeat + heartbeat_s x heartbeat_misses;
  - grace expiry: from the camera's "nobody" + unstaffed_grace_min.
The bench's copy of the demo site shortens cam-w05's heartbeat to 1 s and the unstaffed
grace to 3 s, so each sample takes seconds, not minutes.

Part 2: 100 sites x 30 windows x 4 devices = 12,000 devices, each heartbeating every 10 s
(1,200 messages/s): the engine's CPU share (of one core) and resident memory over a
measured interval (target: under half a core and under 400 MB).

    .venv/bin/python bench/detect.py [--samples 5] [--measure-s 30]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEMO_SITE, Workspace  # noqa: E402

GRACE_S = 3.0


def client(port: int, client_id: str, will: tuple[str, str] | None = None) -> paho.Client:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    if will:
        c.will_set(will[0], will[1], qos=1, retain=True)
    done = threading.Event()
    c.on_connect = lambda *a: done.set()
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    done.wait(10)
    return c


class Arrivals:
    def __init__(self, port: int, *topics: str):
        self.seen: list[tuple[float, str, dict]] = []
        self.cond = threading.Condition()
        self.c = client(port, f"bench-watch-{random.randrange(1 << 30)}")
        self.c.on_message = self._on
        for t in topics:
            self.c.subscribe(t, 1)
        time.sleep(0.3)

    def _on(self, _c, _u, m):
        with self.cond:
            self.seen.append((time.time(), m.topic, json.loads(m.payload)))
            self.cond.notify_all()

    def wait(self, pred, timeout=30.0) -> tuple[float, dict]:
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, topic, body in self.seen:
                    if pred(topic, body):
                        return at, body
                if not self.cond.wait(max(0.0, end - time.monotonic())):
                    raise TimeoutError("nothing arrived")


def bench_config(path: Path) -> None:
    text = DEMO_SITE.read_text(encoding="utf-8")
    text = text.replace(
        'id = "cam-w05"\nkind = "camera"\nwindow = "w05"\n',
        'id = "cam-w05"\nkind = "camera"\nwindow = "w05"\nheartbeat_s = 1\n',
    )
    text += f"\n[supervision]\nunstaffed_grace_min = {GRACE_S / 60}\nclear_after_s = 1\n"
    path.write_text(text, encoding="utf-8")


def part1(samples: int) -> dict[str, list[float]]:
    ws = Workspace()
    delays: dict[str, list[float]] = {"Last Will": [], "heartbeat silence": [], "grace expiry": []}
    try:
        ws.start_broker()
        config = ws.dir / "site.toml"
        bench_config(config)
        start_engine(ws, ["--config", str(config)])
        watch = Arrivals(ws.port, "hallwatch/demo/alerts", "hallwatch/demo/dev/+/status")
        panel = client(ws.port, "panel-w05")
        panel.publish(
            "hallwatch/demo/dev/panel-w05/event",
            json.dumps({"v": 1, "id": "login", "type": "staff.login", "staff": "s005"}),
            qos=1,
        )
        for n in range(samples):
            # Last Will: a camera dies without disconnecting.
            status = "hallwatch/demo/dev/cam-w04/status"
            cam = client(ws.port, "cam-w04", will=(status, '{"v":1,"state":"offline","reason":"lost"}'))
            cam.publish(status, '{"v":1,"state":"online","kind":"camera","window":"w04"}', qos=1, retain=True)
            time.sleep(0.5)
            dropped_at = time.time()
            cam._sock.close()  # the connection drops: the broker publishes the Last Will
            cam.loop_stop()
            will_at, _ = watch.wait(
                lambda t, b, d=dropped_at, s=status: (
                    t == s and b.get("reason") == "lost" and _arrived_after(watch, b, d)
                )
            )
            alert_at, _ = watch.wait(
                lambda t, b, w=will_at: (
                    t.endswith("/alerts")
                    and b["device"] == "cam-w04"
                    and b["kind"] == "device_offline"
                    and b["state"] == "firing"
                    and _arrived_after(watch, b, w)
                )
            )
            delays["Last Will"].append(alert_at - will_at)

            # Heartbeat silence: cam-w05 heartbeats every 1 s, then stops (timeout 3 s).
            cam5 = client(ws.port, f"cam-w05-{n}")
            cam5.publish(
                "hallwatch/demo/dev/cam-w05/status",
                '{"v":1,"state":"online","kind":"camera","window":"w05"}',
                qos=1,
                retain=True,
            )
            for seq in range(3):
                cam5.publish("hallwatch/demo/dev/cam-w05/heartbeat", json.dumps({"v": 1, "seq": seq}))
                last_hb = time.time()
                time.sleep(1.0)
            cam5.publish("hallwatch/demo/dev/cam-w05/heartbeat", json.dumps({"v": 1, "seq": 99}))
            last_hb = time.time()
            alert_at, _ = watch.wait(
                lambda t, b, h=last_hb: (
                    t.endswith("/alerts")
                    and b["device"] == "cam-w05"
                    and b["kind"] == "device_offline"
                    and b["state"] == "firing"
                    and _arrived_after(watch, b, h)
                )
            )
            delays["heartbeat silence"].append(alert_at - (last_hb + 3.0))

            # Grace expiry: cam-w05 online again and sees nobody at window w05.
            cam5.publish(
                "hallwatch/demo/dev/cam-w05/status",
                '{"v":1,"state":"online","kind":"camera","window":"w05"}',
                qos=1,
                retain=True,
            )
            stop = threading.Event()
            beat = threading.Thread(target=_heartbeat, args=(cam5, stop), daemon=True)
            beat.start()
            time.sleep(1.5)
            absent_at = time.time()
            cam5.publish(
                "hallwatch/demo/dev/cam-w05/event",
                json.dumps({"v": 1, "id": f"p{n}", "type": "presence", "window": "w05", "present": False, "count": 0}),
                qos=1,
            )
            alert_at, _ = watch.wait(
                lambda t, b, a=absent_at: (
                    t.endswith("/alerts")
                    and b["window"] == "w05"
                    and b["kind"] == "window_unstaffed"
                    and b["state"] == "firing"
                    and _arrived_after(watch, b, a)
                )
            )
            delays["grace expiry"].append(alert_at - (absent_at + GRACE_S))
            cam5.publish(
                "hallwatch/demo/dev/cam-w05/event",
                json.dumps({"v": 1, "id": f"q{n}", "type": "presence", "window": "w05", "present": True, "count": 1}),
                qos=1,
            )
            time.sleep(2.0)  # present again for longer than clear_after: the alert resolves
            stop.set()
            beat.join()
            cam5.loop_stop()
            cam5.disconnect()
    finally:
        ws.close()
    return delays


def _heartbeat(c: paho.Client, stop: threading.Event) -> None:
    seq = 1000
    while not stop.is_set():
        c.publish("hallwatch/demo/dev/cam-w05/heartbeat", json.dumps({"v": 1, "seq": seq}))
        seq += 1
        stop.wait(0.5)


def _arrived_after(watch: Arrivals, body: dict, moment: float) -> bool:
    return any(b is body and at >= moment for at, _, b in watch.seen)


def start_engine(ws: Workspace, args: list[str]) -> None:
    log_path = ws.dir / "engine.log"
    log = open(log_path, "w")
    ws.engine = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "queue_engine.cli",
            "engine",
            *args,
            "--broker",
            f"mqtt://127.0.0.1:{ws.port}",
            "--db",
            str(ws.dir / "detect.db"),
            "--start-at",
            "2026-11-25T09:00:00+08:00",
            "--client-id",
            f"bench-detect-{random.randrange(1 << 30)}",
            "--connect-timeout",
            "30",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while "ready: subscribed" not in log_path.read_text():
        if ws.engine.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log_path.read_text())
        time.sleep(0.1)


def county_site(n: int) -> str:
    lines = [
        f'id = "site{n:03d}"',
        f'name = "第{n}乡镇行政审批服务中心"',
        "",
        '[[services]]\ncode = "zonghe"\nname = "综合受理"\nprefix = "A"\ncategory = "综合"\n',
    ]
    for w in range(1, 31):
        lines.append(f'[[windows]]\nid = "w{w:02d}"\nname = "{w}号窗口"\nrole = "comprehensive"\n')
    for w in range(1, 31):
        for kind in ("panel", "camera", "pad", "display"):
            lines.append(f'[[devices]]\nid = "{kind}-w{w:02d}"\nkind = "{kind}"\nwindow = "w{w:02d}"\n')
    return "\n".join(lines)


def part2(measure_s: float, sites: int = 100) -> tuple[float, float, int]:
    ws = Workspace()
    try:
        ws.start_broker()
        args = []
        for n in range(sites):
            path = ws.dir / f"site{n:03d}.toml"
            path.write_text(county_site(n), encoding="utf-8")
            args += ["--config", str(path)]
        start_engine(ws, args)
        devices = [
            (f"site{n:03d}", f"{kind}-w{w:02d}")
            for n in range(sites)
            for w in range(1, 31)
            for kind in ("panel", "camera", "pad", "display")
        ]
        pub = client(ws.port, "bench-county-devices")
        for site, device in devices:
            kind = device.split("-")[0]
            pub.publish(
                f"hallwatch/{site}/dev/{device}/status",
                json.dumps({"v": 1, "state": "online", "kind": kind}),
                qos=1,
                retain=True,
            )
        stop = threading.Event()

        def heartbeats():
            seq = 0
            period = 10.0
            start = time.monotonic()
            while not stop.is_set():
                seq += 1
                for i, (site, device) in enumerate(devices):
                    due = start + (seq - 1) * period + i * period / len(devices)
                    delay = due - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        return
                    pub.publish(f"hallwatch/{site}/dev/{device}/heartbeat", f'{{"v":1,"seq":{seq}}}')

        sender = threading.Thread(target=heartbeats, daemon=True)
        sender.start()
        time.sleep(15)  # warm up: statuses applied, every device heartbeating
        proc = psutil.Process(ws.engine.pid)
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        time.sleep(measure_s)
        cpu1, t1 = proc.cpu_times(), time.monotonic()
        rss = proc.memory_info().rss
        stop.set()
        sender.join()
        share = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / (t1 - t0)
        return share, rss / 2**20, len(devices)
    finally:
        ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--measure-s", type=float, default=30.0)
    args = parser.parse_args()
    delays = part1(args.samples)
    for name, values in delays.items():
        print(
            f"{name:<18} delay after threshold: median {statistics.median(values) * 1000:7.1f} ms   "
            f"max {max(values) * 1000:7.1f} ms   (n={len(values)}, target < 1000 ms)"
        )
    share, rss_mb, count = part2(args.measure_s)
    print(
        f"{count:,} devices heartbeating every 10 s: engine CPU {share * 100:.1f} % of one core "
        f"(target < 50 %), resident memory {rss_mb:.0f} MB (target < 400 MB)"
    )


if __name__ == "__main__":
    main()
