"""Round-trip latency under load, on loopback, with a real broker and the engine process.

While a self-service terminal streams 1,000 ticket requests a second (QoS 1):
  - kiosk: ``ticket.request`` published -> its reply received;
  - panel: ``call.next`` published -> the ``board/call`` message received by a board.
Reports p50, p90, p99 and max of each (target: p99 <= 20 ms).

With ``--baseline-tree DIR`` another checkout's engine is measured too, run by run
alternating with this tree's (``--rounds`` runs of ``--samples`` each).

    .venv/bin/python bench/latency.py [--samples 500] [--load 1000] [--rounds 1] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Workspace, percentile  # noqa: E402


def connect(port: int, client_id: str) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect("127.0.0.1", port, keepalive=30)
    # As a device should: no Nagle delay on small request packets.
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError(f"{client_id} could not connect")
    return client


class Waiter:
    """Records the arrival time of messages matching a key, for a request/response pair."""

    def __init__(self, client: paho.Client, topic: str, key):
        self._key = key
        self._arrivals: dict[str, float] = {}
        self.bodies: dict[str, dict] = {}
        self._cond = threading.Condition()
        client.message_callback_add(topic, self._on_message)
        done = threading.Event()
        client.on_subscribe = lambda *a: done.set()
        client.subscribe(topic, 1)
        done.wait(10)

    def _on_message(self, client, userdata, message):
        now = time.perf_counter()
        body = json.loads(message.payload)
        with self._cond:
            self._arrivals.setdefault(self._key(body), now)
            self.bodies.setdefault(self._key(body), body)
            self._cond.notify_all()

    def wait(self, key: str, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        with self._cond:
            while key not in self._arrivals:
                if not self._cond.wait(deadline - time.monotonic()):
                    raise TimeoutError(key)
            return self._arrivals[key]


def background_load(port: int, rate: int, stop: threading.Event, sent: list[int]) -> None:
    client = connect(port, "selfservice-1")
    topic = "hallwatch/demo/dev/selfservice-1/event"
    services = ["shebao", "budongchan", "yibao", "huji"]
    n = 0
    start = time.perf_counter()
    while not stop.is_set():
        due = int((time.perf_counter() - start) * rate)
        while n < due:
            body = {"v": 1, "id": f"load-{n}", "type": "ticket.request", "service": services[n % 4]}
            client.publish(topic, json.dumps(body), qos=1)
            n += 1
        time.sleep(0.002)
    sent.append(n)
    client.loop_stop()
    client.disconnect()


def request(client: paho.Client, topic: str, body: dict, waiter: Waiter, key: str) -> float:
    t0 = time.perf_counter()
    client.publish(topic, json.dumps(body), qos=1)
    return (waiter.wait(key) - t0) * 1000.0


def report(name: str, samples: list[float]) -> str:
    return (
        f"{name:<32} p50 {percentile(samples, 50):6.2f} ms  p90 {percentile(samples, 90):6.2f} ms  "
        f"p99 {percentile(samples, 99):6.2f} ms  max {max(samples):6.2f} ms  (n={len(samples)})"
    )


def measure(ws: Workspace, args, tree: Path | None, tag: str) -> tuple[list[float], list[float], int]:
    """One engine (this tree's, or ``tree``'s) on a fresh store: the samples under load."""
    stop = threading.Event()
    sent: list[int] = []
    ws.start_engine(
        db_name=f"latency-{tag}.db", client_id=f"hallwatch-latency-{tag}", **({"tree": tree} if tree else {})
    )
    clients = []
    try:
        kiosk = connect(ws.port, "kiosk-1")
        panel = connect(ws.port, "panel-w02")
        board = connect(ws.port, f"board-{tag}")
        clients = [kiosk, panel, board]
        kiosk_replies = Waiter(kiosk, "hallwatch/demo/dev/kiosk-1/reply", lambda b: b["re"])
        panel_replies = Waiter(panel, "hallwatch/demo/dev/panel-w02/reply", lambda b: b["re"])
        calls = Waiter(board, "hallwatch/demo/board/call", lambda b: b["ticket"])
        panel_topic = "hallwatch/demo/dev/panel-w02/event"
        request(
            panel,
            panel_topic,
            {"v": 1, "id": f"login-{tag}", "type": "staff.login", "staff": "s001"},
            panel_replies,
            f"login-{tag}",
        )

        loader = threading.Thread(target=background_load, args=(ws.port, args.load, stop, sent))
        loader.start()
        time.sleep(1.0)  # the load is flowing, and shebao tickets are waiting

        kiosk_rtt, call_rtt = [], []
        for i in range(args.samples):
            kiosk_rtt.append(
                request(
                    kiosk,
                    "hallwatch/demo/dev/kiosk-1/event",
                    {"v": 1, "id": f"k{i}-{tag}", "type": "ticket.request", "service": "shebao"},
                    kiosk_replies,
                    f"k{i}-{tag}",
                )
            )
            t0 = time.perf_counter()
            panel.publish(panel_topic, json.dumps({"v": 1, "id": f"c{i}-{tag}", "type": "call.next"}), qos=1)
            panel_replies.wait(f"c{i}-{tag}")
            called = panel_replies.bodies[f"c{i}-{tag}"]["ticket"]  # the ticket the board will show
            call_rtt.append((calls.wait(called) - t0) * 1000.0)
            request(
                panel, panel_topic, {"v": 1, "id": f"s{i}-{tag}", "type": "call.skip"}, panel_replies, f"s{i}-{tag}"
            )
            time.sleep(0.01)
        stop.set()
        loader.join()
        return kiosk_rtt, call_rtt, sent[0]
    finally:
        stop.set()
        for client in clients:
            client.loop_stop()
            client.disconnect()
        ws.stop_engine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=500, help="samples per engine run")
    parser.add_argument("--load", type=int, default=1000, help="background events per second")
    parser.add_argument("--rounds", type=int, default=1, help="engine runs (of --samples each) per tree")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="another checkout whose engine is measured too, alternating run by run with this one",
    )
    args = parser.parse_args()

    ws = Workspace()
    trees: list[Path | None] = [None] + ([args.baseline_tree] if args.baseline_tree else [])
    results = {tree: ([], [], 0) for tree in trees}
    rounds: dict[Path | None, list[tuple[float, float]]] = {tree: [] for tree in trees}
    try:
        ws.start_broker()
        for round_no in range(args.rounds):
            for tree in trees if round_no % 2 == 0 else trees[::-1]:
                kiosk, call, sent = measure(ws, args, tree, f"r{round_no}t{trees.index(tree)}")
                rounds[tree].append((percentile(kiosk, 50), percentile(call, 50)))
                print(
                    f"round {round_no + 1}, {'this tree' if tree is None else 'baseline'}: kiosk p50 "
                    f"{percentile(kiosk, 50):.2f} p99 {percentile(kiosk, 99):.2f} ms, call p50 "
                    f"{percentile(call, 50):.2f} p99 {percentile(call, 99):.2f} ms",
                    flush=True,
                )
                before = results[tree]
                results[tree] = (before[0] + kiosk, before[1] + call, before[2] + sent)
        for tree in trees:
            kiosk_rtt, call_rtt, sent = results[tree]
            print(
                f"{'this tree' if tree is None else f'baseline {tree}'}: background load {args.load} ticket "
                f"requests/s ({sent:,} sent during the runs)"
            )
            print(report("kiosk ticket.request -> reply", kiosk_rtt))
            print(report("panel call.next -> board/call", call_rtt))
            worst = max(percentile(kiosk_rtt, 99), percentile(call_rtt, 99))
            print(f"worst p99 {worst:.2f} ms (target <= 20 ms)")
        if args.baseline_tree:
            # The machine's noise moves whole runs; the rounds' medians, paired, are what compare.
            for i, name in enumerate(("kiosk", "call")):
                ratios = sorted(a[i] / b[i] for a, b in zip(rounds[None], rounds[args.baseline_tree]))
                print(f"{name} p50, this tree / baseline, median of the rounds: {ratios[len(ratios) // 2]:.2f}")
    finally:
        ws.close()


if __name__ == "__main__":
    main()
