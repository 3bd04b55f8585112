"""False alerts and recovery when the broker fails under a county's devices.

2,040 real device sessions: 6 sites x 84 windows, each with a panel, a camera, a rating pad
and a display, plus 4 kiosks a site (window_agents/farm.py, over several processes), and a
probe kiosk; with the defaults a hall has: heartbeat every 10 s, device reconnect backoff up
to 30 s, the engine's own [supervision] defaults. Kiosks take a number about every 10 s
(resending an unanswered request with the same id until it is answered), 4 panels a site
call, serve and finish. Each fault runs in a fresh setup (broker, engine, store, devices):

  restart   a graceful broker restart (Mosquitto publishes every device's Last Will);
  outage    a 40 s broker outage (a graceful stop, 40 s, a start).

Reported for each, as JSON and a table: false alerts (device_offline / device_shutdown
although every device is alive; target 0), seconds from the broker's return until every
device is connected again and until the engine answers again (target: within 5 s), the
engine's CPU (share of one core: over the storm, the minute after the broker's return, and
its busiest 5 s) and peak resident memory, the broker's CPU, alert transitions and board
calls that never reached a persistent subscriber, requests never answered. Each fault is
watched for the engine's grace + heartbeat timeout (+ settle) + 10 s after the engine's
return, so that a false alert has the time to show.

    .venv/bin/python bench/faults.py [--faults restart,outage] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fault_helpers import (  # noqa: E402 (after the path to tests/)
    DEVICE_ALERTS,
    DrillPlan,
    FaultDrill,
    alert_delivery,
    call_delivery,  # noqa: E402
    received_kinds,
    request_problems,
)

from window_agents.farm import FarmOptions  # noqa: E402

STORM_S = 60.0


class Sampler(threading.Thread):
    """CPU seconds and resident memory of the engine and the broker, every 0.5 s."""

    def __init__(self, drill: FaultDrill):
        super().__init__(daemon=True)
        self.drill = drill
        self.samples: list[tuple[float, str, int, float, int]] = []  # (time, name, pid, cpu s, rss)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for name, proc in (("engine", self.drill.engine.proc), ("broker", self.drill.broker.proc)):
                try:
                    p = psutil.Process(proc.pid)
                    cpu = p.cpu_times()
                    self.samples.append((time.time(), name, proc.pid, cpu.user + cpu.system, p.memory_info().rss))
                except (psutil.Error, AttributeError):
                    pass

    def usage(self, name: str, start: float, end: float) -> dict:
        rows = [s for s in self.samples if s[1] == name and start <= s[0] <= end]
        if len(rows) < 2:
            return {}
        rows = [r for r in rows if r[2] == rows[-1][2]]  # one process (a restarted broker is another)
        share = (rows[-1][3] - rows[0][3]) / (rows[-1][0] - rows[0][0])
        peak = max(((b[3] - a[3]) / (b[0] - a[0]) for a, b in zip(rows, rows[10:])), default=share)
        return {
            "cpu_share": round(share, 3),
            "cpu_peak_5s": round(peak, 3),
            "rss_mb": round(max(r[4] for r in rows) / 2**20, 1),
        }


def device_alert_ids(drill: FaultDrill) -> set[str]:
    with drill.store() as db:
        return {r["id"] for r in db.execute("select id, kind from alerts") if r["kind"] in DEVICE_ALERTS}


def run_fault(name: str, plan: DrillPlan, workdir: Path) -> dict:
    drill = FaultDrill(workdir, plan)
    try:
        began = time.time()
        drill.start(online_timeout=300)
        started = time.time() - began
        rules = next(iter(drill.sites.values())).supervision
        silence = (plan.heartbeat_s or 10.0) * rules.heartbeat_misses
        watch_s = rules.device_offline_grace_s + silence + getattr(rules, "settle_s", 0.0) + 10.0
        time.sleep(2 * (plan.heartbeat_s or 10.0))  # every device heartbeating, kiosks and panels busy
        before = device_alert_ids(drill)
        sampler = Sampler(drill)
        sampler.start()
        fault_at = time.time()
        if name == "restart":
            drill.broker.restart()
        else:
            drill.broker.stop()
            time.sleep(40)
            drill.broker.start()
        returned = time.time()
        back = drill.farm.probe(timeout=180)
        deadline = time.time() + 180
        while (all_back := drill.farm.stats().all_back_after(returned, fault_at)) is None and time.time() < deadline:
            time.sleep(1.0)
        time.sleep(max(0.0, (back or returned) + watch_s - time.time()))
        sampler.stop.set()
        false = device_alert_ids(drill) - before
        stats = drill.finish()
        result = {
            "sessions": len(drill.device_ids),
            "sessions_up_s": round(started, 1),
            "false_alerts": len(false),
            "alerts_received_since_fault": received_kinds(drill, fault_at),
            "devices_back_s": None if all_back is None else round(all_back, 2),
            "devices_back_median_s": stats.summary(returned, fault_at)["back_median_s"],
            "engine_back_s": None if back is None else round(back - returned, 2),
            "reconnections": stats.reconnections,
            "watched_s": round(watch_s, 1),
            "engine": sampler.usage("engine", returned, returned + STORM_S),
            "broker": sampler.usage("broker", returned, returned + STORM_S),
            "requests": len(stats.requests),
            "unanswered": len(stats.unanswered),
            "delivery": alert_delivery(drill) + call_delivery(drill),
            "requests_check": request_problems(drill, stats),
        }
        return result
    finally:
        drill.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", default="restart,outage")
    parser.add_argument("--sites", type=int, default=6)
    parser.add_argument("--windows", type=int, default=84)
    parser.add_argument("--kiosks", type=int, default=4)
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args()
    plan = DrillPlan(
        sites=args.sites,
        windows=args.windows,
        kiosks=args.kiosks,
        window_displays=True,
        dead=False,
        farm=FarmOptions(kiosk_interval_s=10.0, callers_per_site=4, call_interval_s=5.0, devices_per_process=400),
    )
    results = {}
    for name in args.faults.split(","):
        with tempfile.TemporaryDirectory(prefix=f"hallwatch-faults-{name}-") as workdir:
            results[name] = run_fault(name, plan, Path(workdir))
        print(json.dumps({name: results[name]}, ensure_ascii=False), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    rows = [
        ("device sessions (with the probe kiosk)", "sessions"),
        ("false alerts (target 0)", "false_alerts"),
        ("all devices back after broker return, s", "devices_back_s"),
        ("engine back after broker return, s (target <= 5)", "engine_back_s"),
        ("reconnections", "reconnections"),
    ]
    print(f"\n{'':<50}" + "".join(f"{name:>12}" for name in results))
    for label, key in rows:
        print(f"{label:<50}" + "".join(f"{str(r[key]):>12}" for r in results.values()))
    for who in ("engine", "broker"):
        for label, key in (
            ("CPU share of one core, first 60 s", "cpu_share"),
            ("CPU, busiest 5 s", "cpu_peak_5s"),
            ("peak resident memory, MB", "rss_mb"),
        ):
            print(f"{who + ' ' + label:<50}" + "".join(f"{str(r[who].get(key)):>12}" for r in results.values()))
    for name, r in results.items():
        for problem in r["delivery"] + r["requests_check"]:
            print(f"{name}: {problem}")


if __name__ == "__main__":
    main()
