"""Fault drills: a real broker, the real engine process at clock speed 1, a farm of real device
sessions with Last Wills (window_agents/farm.py) and a persistent subscriber on the alerts and
the board calls of every site; then what must hold after the fault, each check returning the
problems it found, with their numbers. Used by tests/test_faults.py and bench/faults.py."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from conftest import DEMO_SITE, Broker, EngineProcess
from mqtt_helpers import Listener

from queue_engine.config import Supervision, load_configs
from window_agents.farm import Farm, FarmOptions, FarmStats, drill_site, write_site

DEVICE_ALERTS = frozenset({"device_offline", "device_shutdown"})
WINDOW_ALERTS = frozenset({"window_unstaffed", "window_not_opened", "pause_overrun"})
WATCHED = ("hallwatch/+/alerts", "hallwatch/+/board/call")
# [supervision] keys the engine under test may not know yet (the site file refuses unknown
# keys): written only where queue_engine.config has them, so the same drill measures the
# engine before and after it learns them. (The broker keeps its persistence across restarts
# even when the tests run as root: queue_engine.deploy.devbroker.)
NEWER_KEYS = frozenset({"settle_s", "broker_alert_after_s", "stall_alert_after_s"})


@dataclass(frozen=True)
class DrillPlan:
    sites: int = 2
    windows: int = 40  # per site; each with a panel, a camera and a rating pad
    kiosks: int = 2  # per site
    window_displays: bool = False
    heartbeat_s: float | None = None  # None: the devices' default (10 s)
    supervision: dict = field(default_factory=dict)
    farm: FarmOptions = FarmOptions()
    dead: bool = True  # one camera runs alone, to be killed for good


class FaultDrill:
    """Everything a fault drill runs, in ``workdir``. Times are ``time.time()``."""

    def __init__(self, workdir: Path, plan: DrillPlan):
        self.workdir = workdir
        self.plan = plan
        self.broker: Broker | None = None
        self.engine: EngineProcess | None = None
        self.farm: Farm | None = None
        self.watcher: Listener | None = None
        self.configs: list[Path] = []
        self.probe = "s0-probe"
        self.dead = f"s0-camera-w{plan.windows:03d}" if plan.dead else None
        self._wall = 0.0  # time.time() - time.monotonic(), for the watcher's arrival times
        self.ready_at = 0.0  # time.time() when every device was online

    # -- setting up ----------------------------------------------------------------------------
    def write_configs(self) -> list[Path]:
        template = tomllib.loads(DEMO_SITE.read_text(encoding="utf-8"))
        supervision = {
            k: v for k, v in self.plan.supervision.items() if k not in NEWER_KEYS or k in Supervision.model_fields
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.configs = [
            write_site(
                self.workdir / f"s{n}.toml",
                drill_site(
                    template,
                    f"s{n}",
                    windows=self.plan.windows,
                    kiosks=self.plan.kiosks,
                    heartbeat_s=self.plan.heartbeat_s,
                    window_displays=self.plan.window_displays,
                    supervision=supervision,
                    extra_kiosks=[self.probe] if n == 0 else (),
                ),
            )
            for n in range(self.plan.sites)
        ]
        self.sites = {site.id: site for site in load_configs(self.configs)}
        return self.configs

    def start(self, online_timeout: float = 120.0) -> FaultDrill:
        self.write_configs()
        self.broker = Broker(self.workdir / "broker").start()
        self._wall = time.time() - time.monotonic()
        # Subscribed before the engine starts, so it sees every alert transition from the first.
        self.watcher = Listener(self.broker.port, *WATCHED, client_id="fault-watch", clean=False)
        self.engine = EngineProcess(
            self.broker, self.workdir / "hallwatch.db", self.configs, self.workdir / "engine"
        ).start()
        self.farm = Farm(
            self.configs,
            self.broker.url,
            self.workdir / "farm",
            options=self.plan.farm,
            alone=[self.dead] if self.dead else [],
            probe=self.probe,
        ).start()
        self.wait_all_online(online_timeout)
        self.ready_at = time.time()
        return self

    def wait_broker_saved(self, timeout: float = 30.0) -> None:
        """Until the broker has saved its persistence (every ``autosave_interval``) since the
        drill was ready: a broker killed before that returns without the sessions made since
        its last save, which is that fault (the engine raises session_lost) and not the one a
        drill of kill -9 means to test."""
        saved = self.workdir / "broker" / "mosquitto.db"
        deadline = time.monotonic() + timeout
        while not (saved.exists() and saved.stat().st_mtime > self.ready_at):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker did not save {saved} within {timeout:g} s")
            time.sleep(0.1)

    @property
    def device_ids(self) -> set[str]:
        return {d.id for site in self.sites.values() for d in site.devices}

    def wait_all_online(self, timeout: float) -> None:
        """Until the engine's store has every device online."""
        deadline = time.monotonic() + timeout
        while True:
            with self.store() as db:
                online = {d for (d,) in db.execute("select device from devices where online = 1")}
            missing = self.device_ids - online
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(missing)} devices never online in the engine's store, e.g. {sorted(missing)[:5]}"
                )
            time.sleep(0.25)

    def store(self) -> sqlite3.Connection:
        """The engine's store, read-only (the engine keeps writing)."""
        db = sqlite3.connect(f"file:{self.workdir / 'hallwatch.db'}?mode=ro", uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    # -- during the drill ------------------------------------------------------------------------
    def liveness_allowance(self, device_id: str) -> tuple[float, float]:
        """(device_offline_grace_s, heartbeat timeout) of a device, from its site's configuration."""
        for site in self.sites.values():
            device = site.device(device_id)
            if device is not None:
                rules = site.supervision
                return rules.device_offline_grace_s, device.heartbeat_s * rules.heartbeat_misses
        raise KeyError(device_id)

    def kill_dead_device(self) -> float:
        return self.farm.kill(self.dead)

    def alerts(self, since: float = 0.0) -> list[tuple[float, str, dict]]:
        """Every alert message the watcher received (at or after ``since``): its arrival time,
        the site of its topic, its body."""
        with self.watcher._cond:
            messages = list(self.watcher.messages)
        return [
            (at + self._wall, topic.split("/")[1], json.loads(payload))
            for topic, payload, _, at in messages
            if topic.endswith("/alerts") and at + self._wall >= since
        ]

    def calls(self) -> list[tuple[str, dict]]:
        with self.watcher._cond:
            messages = list(self.watcher.messages)
        return [
            (topic.split("/")[1], json.loads(payload))
            for topic, payload, _, _ in messages
            if topic.endswith("/board/call")
        ]

    def wait_alert(self, predicate, until: float) -> float | None:
        """When the first alert satisfying ``predicate(body)`` arrived; None if none by ``until``."""
        while True:
            hits = [at for at, _, body in self.alerts() if predicate(body)]
            if hits:
                return min(hits)
            if time.time() > until:
                return None
            time.sleep(0.1)

    def finish(self, delivery_timeout: float = 20.0) -> FarmStats:
        """Kiosks and panels stop asking and get their answers; the alert transitions the store
        holds have time to reach the watcher; then the engine stops (before the devices, whose
        orderly shutdown would be a real alert)."""
        stats = self.farm.quiet(timeout=60)
        deadline = time.monotonic() + delivery_timeout
        while undelivered_transitions(self) and time.monotonic() < deadline:
            time.sleep(0.25)
        self.engine.stop()
        return stats

    def close(self) -> None:
        if self.engine is not None and self.engine.proc is not None and self.engine.proc.poll() is None:
            self.engine.proc.send_signal(signal.SIGCONT)  # (a drill stopped in a stall)
            self.engine.stop()
        if self.farm is not None:
            try:
                self.farm.stop()
            except Exception:  # noqa: BLE001 - clean-up goes on
                self.farm.kill_all()
        if self.watcher is not None:
            self.watcher.close()
        if self.broker is not None:
            self.broker.stop()


# -- what must hold after a fault -------------------------------------------------------------
def false_device_alerts(drill: FaultDrill) -> list[str]:
    """device_offline / device_shutdown raised against a device that was alive throughout."""
    living = drill.device_ids - set(drill.farm.killed)
    with drill.store() as db:
        stored = {(r["id"], r["kind"], r["device"]) for r in db.execute("select id, kind, device from alerts")}
    received = {(b.get("id"), b.get("kind"), b.get("device")) for _, _, b in drill.alerts()}
    false = sorted({a for a in stored | received if a[1] in DEVICE_ALERTS and a[2] in living})
    if not false:
        return []
    by_kind = defaultdict(int)
    for _, kind, _ in false:
        by_kind[kind] += 1
    return [
        f"{len(false)} device alerts against devices alive throughout ({dict(by_kind)}; "
        f"{len({d for _, _, d in false})} of {len(living)} devices), e.g. {false[:3]}"
    ]


def window_alerts(drill: FaultDrill) -> list[str]:
    with drill.store() as db:
        rows = [
            (r["id"], r["kind"], r["window"])
            for r in db.execute("select id, kind, window from alerts")
            if r["kind"] in WINDOW_ALERTS
        ]
    return [f"{len(rows)} window alerts, e.g. {rows[:3]}"] if rows else []


def _alert_log(drill: FaultDrill) -> tuple[list[sqlite3.Row], bool]:
    with drill.store() as db:
        columns = {r["name"] for r in db.execute("pragma table_info(alert_log)")}
        has_seq = "seq" in columns
        rows = db.execute(f"select site, alert_id, state{', seq' if has_seq else ''} from alert_log").fetchall()
    return rows, has_seq


def undelivered_transitions(drill: FaultDrill) -> list[tuple]:
    """Alert transitions of the store's alert_log that the watcher has not received, by
    (site, seq) where the log has seq, else by (site, alert, state)."""
    rows, has_seq = _alert_log(drill)
    received = drill.alerts()
    if has_seq:
        got = {(site, b.get("seq")) for _, site, b in received}
        return sorted({(r["site"], r["seq"]) for r in rows} - got)
    got = {(site, b.get("id"), b.get("state")) for _, site, b in received}
    return sorted({(r["site"], r["alert_id"], r["state"]) for r in rows} - got)


def alert_delivery(drill: FaultDrill) -> list[str]:
    """Every transition the engine decided (its alert_log) reached the subscriber: duplicates
    allowed, gaps not; each site's seq counts 1, 2, 3 ..."""
    rows, has_seq = _alert_log(drill)
    received = [b for _, _, b in drill.alerts()]
    problems = []
    pairs = {(r["site"], r["alert_id"], r["state"]) for r in rows}
    lost = pairs - {(site, b.get("id"), b.get("state")) for _, site, b in drill.alerts()}
    if lost:
        problems.append(
            f"{len(lost)} of {len(pairs)} alert transitions in the store never reached the "
            f"subscriber, e.g. {sorted(lost)[:3]}"
        )
    if not has_seq:
        problems.append("the store's alert_log has no seq column")
    else:
        by_site = defaultdict(list)
        for r in rows:
            by_site[r["site"]].append(r["seq"])
        for site, seqs in sorted(by_site.items()):
            if sorted(seqs) != list(range(1, len(seqs) + 1)):
                problems.append(
                    f"{site}: alert_log seq is not 1..{len(seqs)} (duplicates or gaps): {sorted(seqs)[:10]} ..."
                )
        missing = undelivered_transitions(drill)
        if missing:
            problems.append(f"{len(missing)} alert seqs never reached the subscriber: {missing[:10]}")
    unnumbered = sum(1 for b in received if "seq" not in b)
    if unnumbered:
        problems.append(f"{unnumbered} of {len(received)} alert messages carry no seq")
    no_audience = sum(1 for b in received if b.get("audience") not in ("it", "supervision", "manager"))
    if no_audience:
        problems.append(f"{no_audience} of {len(received)} alert messages carry no audience it/supervision/manager")
    return problems


def call_delivery(drill: FaultDrill) -> list[str]:
    """Every board call the store counts (a ticket's ``calls``) reached the subscriber, as
    (site, ticket, n)."""
    with drill.store() as db:
        counted = {
            (r["site"], r["no"]): r["calls"] for r in db.execute("select site, no, calls from tickets") if r["calls"]
        }
    expected = {(site, no, n) for (site, no), calls in counted.items() for n in range(1, calls + 1)}
    calls = drill.calls()
    problems = []
    unnumbered = sum(1 for _, b in calls if "n" not in b)
    if unnumbered:
        problems.append(f"{unnumbered} of {len(calls)} board calls carry no n")
    never = set(counted) - {(site, b["ticket"]) for site, b in calls}
    if never:
        problems.append(
            f"{len(never)} of {len(counted)} called tickets never announced to the subscriber, e.g. {sorted(never)[:3]}"
        )
    missing = expected - {(site, b["ticket"], b.get("n")) for site, b in calls}
    if missing and unnumbered < len(calls):
        problems.append(
            f"{len(missing)} of {len(expected)} board calls (site, ticket, n) never reached the "
            f"subscriber, e.g. {sorted(missing)[:3]}"
        )
    return problems


def request_problems(drill: FaultDrill, stats: FarmStats) -> list[str]:
    """Every request a device sent is answered and stored exactly once with the answer it got:
    the store's events table (its key (site, device, event_id) admits one row), and one ticket
    per number request (a request applied twice would show as a second ticket); tickets are
    numbered without gaps."""
    problems = []
    if stats.unanswered:
        problems.append(
            f"{len(stats.unanswered)} of {len(stats.requests)} requests never answered, e.g. "
            f"{[(r['device'], r['id'], r['type']) for r in stats.unanswered[:3]]}"
        )
    with drill.store() as db:
        stored = {
            (r["site"], r["device"], r["event_id"]): r["reply"]
            for r in db.execute("select site, device, event_id, reply from events")
        }
        tickets = db.execute("select site, day, no, seq, issued_by from tickets").fetchall()
    not_stored = [r for r in stats.requests if (r["site"], r["device"], r["id"]) not in stored]
    if not_stored:
        problems.append(
            f"{len(not_stored)} of {len(stats.requests)} requests not in the store's events, e.g. "
            f"{[(r['device'], r['id']) for r in not_stored[:3]]}"
        )
    issued = [r for r in stats.requests if r["type"] == "ticket.request" and r["ok"]]
    differ = [
        r
        for r in issued
        if (r["site"], r["device"], r["id"]) in stored
        and (json.loads(stored[(r["site"], r["device"], r["id"])] or "{}").get("ticket") or {}).get("no") != r["ticket"]
    ]
    if differ:
        problems.append(f"{len(differ)} kiosks were told another number than the store's, e.g. {differ[:2]}")
    by_prefix = defaultdict(list)
    for t in tickets:
        by_prefix[(t["site"], t["day"], t["no"].rstrip("0123456789"))].append(t["seq"])
    for key, seqs in sorted(by_prefix.items()):
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            problems.append(f"ticket numbers of {key} have gaps or repeats: {sorted(seqs)[:10]} ...")
    farm_numbers = sorted((r["site"], r["ticket"]) for r in issued)
    store_numbers = sorted((t["site"], t["no"]) for t in tickets if t["issued_by"] in {r["device"] for r in issued})
    if farm_numbers != store_numbers:
        problems.append(f"kiosks got {len(farm_numbers)} numbers, the store issued {len(store_numbers)} to them")
    return problems


def it_alerts(drill: FaultDrill, since: float) -> list[dict]:
    """Infrastructure alerts (audience "it") received since ``since``, firing."""
    return [b for _, _, b in drill.alerts(since) if b.get("audience") == "it" and b.get("state") == "firing"]


def received_kinds(drill: FaultDrill, since: float = 0.0) -> dict[str, int]:
    kinds: dict[str, int] = defaultdict(int)
    for _, _, body in drill.alerts(since):
        kinds[f"{body.get('kind')}:{body.get('state')}"] += 1
    return dict(kinds)
