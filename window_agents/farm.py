"""A device farm: many real device sessions of one or more sites, for fault drills and load tests.

Every device is a ``Device`` (device.py): one MQTT session with client id = username = its
device id, a Last Will, status online, a heartbeat every ``heartbeat_s`` of its site
configuration, reconnection with jittered backoff. The sessions are spread over worker
processes (``python -m window_agents.farm SPEC``), a few hundred each, since one event loop
is one core. Kiosks can take numbers, one citizen after another: a request not answered is
sent again with the same id until it is, as a citizen waits at the kiosk. Panels can sign in
and call, serve and finish tickets. A device can run alone in its process, to be killed for
good (SIGKILL: its connection drops and the broker publishes its Last Will), or to probe the
engine (when it answers again after a fault).

The coordinator, ``Farm``, speaks to each worker over its stdin and stdout, one JSON object a
line, and returns machine-readable statistics (``FarmStats``): the connections of every
device with their times, every request with its id, when it was sent and answered, and the
ticket it got.

``drill_site`` makes the site configurations a drill needs, from a template site.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from queue_engine.config import load_configs, parse_site
from queue_engine.core.kinds import DeviceKind
from queue_engine.shells.mqtt import parse_broker_url

from .device import Device, DeviceSettings, NoReply

log = logging.getLogger("hallwatch.farm")

# A citizen at a kiosk waits until the number comes: in practice, resend for ever.
UNTIL_ANSWERED = 10**9
# What a probe asks for: a service no site has, so the engine answers (unknown_service)
# without issuing a ticket.
PROBE_SERVICE = "probe"


# -- site configurations for drills --------------------------------------------------------
def drill_site(
    template: dict,
    site_id: str,
    *,
    windows: int,
    kiosks: int,
    heartbeat_s: float | None = None,
    window_displays: bool = False,
    supervision: dict | None = None,
    extra_kiosks: Iterable[str] = (),
) -> dict:
    """A site of ``windows`` windows, each with a panel, a camera and a rating pad (and a
    display with ``window_displays``), plus ``kiosks`` kiosks and one staff member a window,
    as TOML-ready data. Services, hours and rules come from ``template`` (a site file's data);
    windows repeat the template's windows in turn (roles, services, units). Device ids start
    with the site id, so that the ids of several sites never meet on one broker.

    ``supervision`` overrides the template's ``[supervision]``. A drill's kiosks issue
    numbers far faster than a hall's citizens: ``queue_surge`` would be true, and is not what
    a drill watches, so it waits four hours unless overridden."""
    pattern = template["windows"]
    data = {key: value for key, value in template.items() if key not in ("windows", "devices", "staff")}
    data["id"] = site_id
    data["name"] = f"{template['name']}（演练 {site_id}）"
    data["supervision"] = {**template.get("supervision", {}), "surge_fire_after_min": 240, **(supervision or {})}
    data["windows"], data["devices"], data["staff"] = [], [], []
    kinds = ["panel", "camera", "pad"] + (["display"] if window_displays else [])
    for n in range(1, windows + 1):
        model = pattern[(n - 1) % len(pattern)]
        window = {
            "id": f"w{n:03d}",
            "name": f"{n}号窗口",
            **{k: v for k, v in model.items() if k in ("unit", "role", "services")},
        }
        data["windows"].append(window)
        data["staff"].append({"id": f"s{n:03d}", "name": f"{n}号窗口工作人员", "unit": model.get("unit", "")})
        for kind in kinds:
            data["devices"].append({"id": f"{site_id}-{kind}-w{n:03d}", "kind": kind, "window": window["id"]})
    for n in range(1, kiosks + 1):
        data["devices"].append({"id": f"{site_id}-kiosk-{n}", "kind": "kiosk"})
    for device_id in extra_kiosks:
        data["devices"].append({"id": device_id, "kind": "kiosk"})
    if heartbeat_s is not None:
        for device in data["devices"]:
            device["heartbeat_s"] = heartbeat_s
    return data


def write_site(path: Path, data: dict) -> Path:
    """Validate a site (``queue_engine.config``: a ConfigError says what is wrong) and write
    it as TOML."""
    parse_site(data, path)
    path.write_text(dumps_toml(data), encoding="utf-8")
    return path


def dumps_toml(data: dict) -> str:
    """TOML for the shapes a site file has: scalars, lists of scalars, tables, arrays of
    tables (nested tables inside them too)."""
    lines: list[str] = []
    _toml_table(lines, "", data, array=False)
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_table(lines: list[str], name: str, table: dict, *, array: bool) -> None:
    if name:
        lines += ["", f"[[{name}]]" if array else f"[{name}]"]
    nested = {k: v for k, v in table.items() if isinstance(v, dict) or _is_tables(v)}
    lines += [f"{key} = {_toml_value(value)}" for key, value in table.items() if key not in nested]
    for key, value in nested.items():
        path = f"{name}.{key}" if name else key
        if isinstance(value, dict):
            _toml_table(lines, path, value, array=False)
        else:
            for item in value:
                _toml_table(lines, path, item, array=True)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


# -- what a worker does ------------------------------------------------------------------------
@dataclass(frozen=True)
class FarmOptions:
    """How the farm's devices behave. Times in seconds."""

    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    keepalive: int = 30
    reply_timeout: float = 5.0  # before the same request is sent again
    kiosk_interval_s: float = 0.0  # 0: kiosks take no numbers; else one citizen every ~N s per kiosk
    callers_per_site: int = 0  # panels that sign in, then call, serve and finish in a loop
    call_interval_s: float = 2.0
    devices_per_process: int = 400
    connect_timeout: float = 120.0


@dataclass
class _Sessions:
    """One worker: its devices, what they did, and the loops that drive them."""

    options: FarmOptions
    devices: dict[str, Device] = field(default_factory=dict)
    records: dict[str, dict] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    behaviours: list[asyncio.Task] = field(default_factory=list)
    quiet: asyncio.Event = field(default_factory=asyncio.Event)

    async def ask(self, device: Device, type_: str, **fields: Any) -> dict:
        """A request, resent with the same id until answered; recorded from the moment it is sent."""
        event_id = device.new_event_id()
        record = {
            "site": device.settings.site,
            "device": device.settings.device_id,
            "id": event_id,
            "type": type_,
            "sent_at": time.time(),
            "answered_at": None,
            "ok": None,
            "ticket": None,
            "error": None,
            **fields,
        }
        self.requests.append(record)
        reply = await device.request(type_, event_id=event_id, attempts=UNTIL_ANSWERED, **fields)
        ticket = reply.get("ticket")
        record.update(
            answered_at=time.time(),
            ok=reply.get("ok"),
            error=reply.get("error"),
            ticket=ticket.get("no") if isinstance(ticket, dict) else ticket,
        )
        return reply

    async def take_numbers(self, kiosk: Device, services: list[str]) -> None:
        interval = self.options.kiosk_interval_s
        await asyncio.sleep(random.uniform(0, interval))
        n = random.randrange(len(services))
        while not self.quiet.is_set():
            n += 1
            await self.ask(kiosk, "ticket.request", service=services[n % len(services)])
            await asyncio.sleep(interval * random.uniform(0.5, 1.5))

    async def call_tickets(self, panel: Device, staff: str) -> None:
        interval = self.options.call_interval_s
        await asyncio.sleep(random.uniform(0, interval))
        await self.ask(panel, "staff.login", staff=staff)
        while not self.quiet.is_set():
            if (await self.ask(panel, "call.next")).get("ok"):
                await self.ask(panel, "service.start")
                await self.ask(panel, "service.finish", outcome="done")
            await asyncio.sleep(interval * random.uniform(0.5, 1.5))

    async def probe(self, device: Device, timeout: float, every_s: float) -> dict:
        """Ask, a fresh id every ``every_s``, until the engine answers once."""
        started, sent = time.time(), 0
        while time.time() < started + timeout:
            sent += 1
            try:
                reply = await device.request("ticket.request", service=PROBE_SERVICE, timeout=every_s, attempts=1)
            except NoReply:
                continue
            return {"answered_at": time.time(), "sent": sent, "error": reply.get("error")}
        return {"answered_at": None, "sent": sent, "error": None}

    def stats(self) -> dict:
        for device_id, device in self.devices.items():
            self.records[device_id].update(connections=device.connections, heartbeats=device.heartbeats_sent)
        outstanding = sum(1 for r in self.requests if r["answered_at"] is None)
        return {"devices": self.records, "requests": self.requests, "outstanding": outstanding}


async def _serve(spec: dict) -> None:
    options = FarmOptions(**spec["options"])
    broker = parse_broker_url(spec["broker"])
    sites = {site.id: site for site in load_configs(spec["configs"])}
    farm = _Sessions(options)
    kiosks: list[tuple[Device, list[str]]] = []
    callers: list[tuple[Device, str]] = []
    for site_id, device_id in spec["devices"]:
        site = sites[site_id]
        config = site.device(device_id)
        assert config is not None  # Farm.start lists the sites' own devices
        record: dict[str, Any] = {"site": site_id, "kind": config.kind.value, "connected_at": []}

        def connected(times: list[float] = record["connected_at"]) -> None:  # (bound to this device's list)
            times.append(time.time())

        device = Device(
            DeviceSettings(
                site=site_id,
                device_id=device_id,
                kind=config.kind.value,
                broker=broker,
                window=config.window,
                heartbeat_s=config.heartbeat_s,
                keepalive=options.keepalive,
                reply_timeout=options.reply_timeout,
                backoff_initial_s=options.backoff_initial_s,
                backoff_max_s=options.backoff_max_s,
            ),
            on_connect=connected,
        )
        if config.kind is DeviceKind.CAMERA:
            device.set_heartbeat_fields(video="ok")
        farm.devices[device_id], farm.records[device_id] = device, record
        if config.kind is DeviceKind.KIOSK and options.kiosk_interval_s > 0:
            kiosks.append((device, [s.code for s in site.services if not s.theme]))
        if device_id in spec.get("callers", {}):
            callers.append((device, spec["callers"][device_id]))

    gate = asyncio.Semaphore(64)  # connect in waves, not all at once

    async def start(device: Device) -> None:
        async with gate:
            await device.start(connect_timeout=options.connect_timeout)

    await asyncio.gather(*(start(d) for d in farm.devices.values()))
    farm.behaviours += [asyncio.create_task(farm.take_numbers(d, services)) for d, services in kiosks]
    farm.behaviours += [asyncio.create_task(farm.call_tickets(d, staff)) for d, staff in callers]
    _emit({"ready": len(farm.devices)})

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    stopping = asyncio.Event()  # SIGTERM, or the coordinator gone (end of input)
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    stopped = asyncio.create_task(stopping.wait())
    while True:
        line = asyncio.create_task(reader.readline())
        await asyncio.wait({line, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not line.done():
            line.cancel()
        text = line.result() if line.done() and not line.cancelled() else b""
        command: dict[str, Any] = json.loads(text) if text.strip() else {"cmd": "stop"}
        if command["cmd"] == "stats":
            _emit(farm.stats())
        elif command["cmd"] == "quiet":
            farm.quiet.set()
            _emit({"quiet": True})
        elif command["cmd"] == "probe":
            _emit(await farm.probe(farm.devices[command["device"]], command["timeout"], command["every_s"]))
        elif command["cmd"] == "stop":
            for task in farm.behaviours:
                task.cancel()
            await asyncio.gather(*farm.behaviours, return_exceptions=True)
            await asyncio.gather(*(d.close() for d in farm.devices.values()))
            _emit(farm.stats())
            return


def _emit(body: dict) -> None:
    sys.stdout.write(json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    """A worker: ``python -m window_agents.farm SPEC_FILE`` (written by ``Farm``)."""
    args = argv if argv is not None else sys.argv[1:]
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(json.loads(Path(args[0]).read_text(encoding="utf-8"))))


# -- the coordinator -----------------------------------------------------------------------------
@dataclass
class FarmStats:
    """What the devices did. Times are ``time.time()`` of this machine."""

    devices: dict[str, dict]  # id -> site, kind, connections, connected_at [..], heartbeats, killed
    requests: list[dict]  # site, device, id, type, sent_at, answered_at, ok, ticket, error, fields

    def back_after(self, moment: float, since: float | None = None) -> dict[str, float | None]:
        """Per device not killed: seconds from ``moment`` (the broker's return) to its first
        connection since ``since`` (the fault's start; default ``moment``). None: not back."""
        since = moment if since is None else since
        delays = {}
        for device_id, record in self.devices.items():
            if record.get("killed"):
                continue
            later = [t for t in record["connected_at"] if t >= since]
            delays[device_id] = min(later) - moment if later else None
        return delays

    def all_back_after(self, moment: float, since: float | None = None) -> float | None:
        """Seconds from ``moment`` until every device was back; None if one is not."""
        delays = list(self.back_after(moment, since).values())
        known = [d for d in delays if d is not None]
        return max(known) if delays and len(known) == len(delays) else None

    @property
    def reconnections(self) -> int:
        return sum(max(0, r.get("connections", 0) - 1) for r in self.devices.values())

    @property
    def unanswered(self) -> list[dict]:
        return [r for r in self.requests if r["answered_at"] is None]

    def summary(self, moment: float | None = None, since: float | None = None) -> dict:
        back = self.back_after(moment, since) if moment is not None else {}
        delays = sorted(d for d in back.values() if d is not None)
        return {
            "devices": len(self.devices),
            "killed": sum(1 for r in self.devices.values() if r.get("killed")),
            "connections": sum(r.get("connections", 0) for r in self.devices.values()),
            "reconnections": self.reconnections,
            "back": len(delays),
            "not_back": sorted(d for d, delay in back.items() if delay is None)[:10],
            "back_median_s": delays[len(delays) // 2] if delays else None,
            "all_back_s": max(delays) if delays and len(delays) == len(back) else None,
            "requests": len(self.requests),
            "answered": len(self.requests) - len(self.unanswered),
            "unanswered": len(self.unanswered),
        }


class _Worker:
    def __init__(self, index: int, spec: dict, workdir: Path):
        spec_path = workdir / f"farm-{index}.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        self.devices = [device_id for _, device_id in spec["devices"]]
        self.log = workdir / f"farm-{index}.log"
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "window_agents.farm", str(spec_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.lines: queue.Queue = queue.Queue()
        self.last: dict = {"devices": {}, "requests": []}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # (a pipe: see __init__)
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def receive(self, timeout: float) -> dict:
        try:
            body = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"farm worker {self.proc.pid} silent for {timeout} s; see {self.log}") from None
        if body is None:
            raise RuntimeError(f"farm worker exited with {self.proc.wait()}: {self.log.read_text()[-2000:]}")
        return body

    def ask(self, command: dict, timeout: float = 60.0) -> dict:
        assert self.proc.stdin is not None  # (a pipe: see __init__)
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()
        return self.receive(timeout)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


class Farm:
    """Runs every device of the given site files (less ``exclude``) as real sessions.

    ``alone``: devices that each get a process of their own (to be killed with ``kill``).
    ``probe``: a kiosk, alone too, with a short backoff (it should notice the broker at once),
    that only ever asks ``probe()``. Stop the engine before ``stop()``: an orderly stop sends
    every device's status offline (shutdown), which for a camera in working hours is an alert."""

    def __init__(
        self,
        configs: list[Path],
        broker: str,
        workdir: Path,
        *,
        options: FarmOptions = FarmOptions(),
        alone: Iterable[str] = (),
        probe: str | None = None,
        exclude: Iterable[str] = (),
    ):
        self.configs = [str(c) for c in configs]
        self.broker = broker
        self.workdir = workdir
        self.options = options
        self.alone = set(alone)
        self.probe_device = probe
        self.exclude = set(exclude)
        self.workers: list[_Worker] = []
        self.killed: dict[str, float] = {}

    def start(self) -> Farm:
        self.workdir.mkdir(parents=True, exist_ok=True)
        sites = load_configs(self.configs)
        devices = [(s.id, d.id) for s in sites for d in s.devices if d.id not in self.exclude]
        named = self.alone | ({self.probe_device} if self.probe_device is not None else set())
        unknown = named - {d for _, d in devices}
        if unknown:
            raise ValueError(f"not devices of these sites: {', '.join(sorted(unknown))}")
        callers: dict[str, str] = {}  # panel -> the staff member who calls at it
        for site in sites:
            panels = [d.id for d in site.devices if d.kind is DeviceKind.PANEL and d.id not in self.exclude]
            callers.update(zip(panels[: self.options.callers_per_site], (s.id for s in site.staff)))
        shared = [d for d in devices if d[1] not in self.alone and d[1] != self.probe_device]
        count = max(1, math.ceil(len(shared) / self.options.devices_per_process))
        groups = [(shared[i::count], self.options) for i in range(count)]
        groups += [([d], self.options) for d in devices if d[1] in self.alone]
        groups += [
            ([d], replace(self.options, backoff_initial_s=0.1, backoff_max_s=0.25, kiosk_interval_s=0))
            for d in devices
            if d[1] == self.probe_device
        ]
        for n, (group, options) in enumerate(groups):
            if not group:
                continue
            spec = {
                "broker": self.broker,
                "configs": self.configs,
                "devices": group,
                "options": asdict(options),
                "callers": {d: callers[d] for _, d in group if d in callers},
            }
            self.workers.append(_Worker(n, spec, self.workdir))
        for worker in self.workers:
            worker.receive(self.options.connect_timeout + 30)  # {"ready": n}
        return self

    def _worker_of(self, device_id: str) -> _Worker:
        return next(w for w in self.workers if device_id in w.devices)

    def kill(self, device_id: str) -> float:
        """Kill the process of a device started ``alone``, for good: SIGKILL, so its connection
        drops without DISCONNECT and the broker publishes its Last Will. Returns when."""
        worker = self._worker_of(device_id)
        if device_id not in self.alone:
            raise ValueError(f"{device_id} shares its process; start it with alone=[...]")
        worker.last = worker.ask({"cmd": "stats"})
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait()
        self.killed[device_id] = time.time()
        return self.killed[device_id]

    def probe(self, timeout: float = 60.0, every_s: float = 0.2) -> float | None:
        """When (``time.time()``) the engine first answered the probe kiosk; None: not within
        ``timeout``."""
        assert self.probe_device is not None, "the farm was started without a probe device"
        worker = self._worker_of(self.probe_device)
        return worker.ask(
            {"cmd": "probe", "device": self.probe_device, "timeout": timeout, "every_s": every_s}, timeout + 30
        )["answered_at"]

    def stats(self) -> FarmStats:
        devices: dict[str, dict] = {}
        requests: list[dict] = []
        for worker in self.workers:
            body = worker.ask({"cmd": "stats"}) if worker.alive else worker.last
            for device_id, record in body["devices"].items():
                devices[device_id] = {**record, "killed": device_id in self.killed}
            requests += body["requests"]
        return FarmStats(devices=devices, requests=requests)

    def quiet(self, timeout: float = 60.0) -> FarmStats:
        """No new requests from now on; returns once those sent are answered (or ``timeout``)."""
        live = [w for w in self.workers if w.alive]
        for worker in live:
            worker.ask({"cmd": "quiet"})
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if not stats.unanswered or time.monotonic() > deadline:
                return stats
            time.sleep(0.2)

    def stop(self) -> FarmStats:
        """Every device shuts down in order; the last statistics."""
        devices: dict[str, dict] = {}
        requests: list[dict] = []
        for worker in self.workers:
            if worker.alive:
                try:
                    worker.last = worker.ask({"cmd": "stop"}, timeout=30)
                except (TimeoutError, RuntimeError, OSError):
                    worker.proc.kill()
                worker.proc.wait(30)
            for device_id, record in worker.last["devices"].items():
                devices[device_id] = {**record, "killed": device_id in self.killed}
            requests += worker.last["requests"]
        self.workers = []
        return FarmStats(devices=devices, requests=requests)

    def kill_all(self) -> None:
        """Last resort (a test's clean-up): every worker SIGKILLed."""
        for worker in self.workers:
            if worker.alive:
                worker.proc.kill()
                worker.proc.wait()
        self.workers = []


if __name__ == "__main__":
    main()
