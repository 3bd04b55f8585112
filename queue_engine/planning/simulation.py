"""The pure core run in simulated time.

A discrete-event simulation drives ``queue_engine.core.Engine`` exactly as the devices of a
hall would, without a broker, a store or a clock: citizens take numbers (``ticket.request``),
windows open and close by the hour (``staff.login`` / ``staff.logout``), and staff call,
start and finish (``call.next``, ``service.start``, ``service.finish``). Time is a float
taken from a heap of pending events; randomness comes from the streams of ``sampling``.

- ``planning_site``: the planning copy of a site, with windows dedicated to each service.
- ``OpeningHours``: when the windows serve, and how a wait is counted.
- ``HallSimulation``: one simulated run through the core.
- ``simulate_day``: one whole day of a hall, every service in one engine.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date, datetime

from ..config import Service, Site, parse_site
from ..core import Engine, Reply, TicketSlip
from ..core import events as ev
from ..core.alerts import Alert
from ..core.commands import AlertChanged
from .demand import Demand
from .sampling import EXPONENTIAL, ArrivalStream, ServiceTimes

# The simulated day: the core needs a date for its working calendar, and the plan does not
# depend on which (tickets may be taken at any hour in the planning copy of the site).
PLAN_DAY = date(2026, 12, 28)  # a Monday of the year-end peak
HOUR = 3600.0


# -- the planning copy of a site ------------------------------------------------------------------
def planning_site(site: Site, windows: dict[str, int]) -> tuple[Site, dict[str, list[str]]]:
    """The site with only the given services (a theme service without its bundle), each with
    its own ``windows[code]`` dedicated windows (a panel and a staff member each), tickets taken
    at any hour, and devices that never fall silent. Returns the site and the window ids of
    each service."""
    data = site.model_dump(mode="json", by_alias=True)
    data["services"] = [s for s in data["services"] if s["code"] in windows]
    for service in data["services"]:
        service["includes"] = []
    data["queue"]["issue_outside_hours"] = True
    data["supervision"]["heartbeat_misses"] = 100
    window_rows, devices, staff = [], [{"id": "plan-kiosk", "kind": "kiosk", "heartbeat_s": 3600}], []
    ids: dict[str, list[str]] = {}
    number = itertools.count(1)
    for code, count in windows.items():
        ids[code] = []
        for _ in range(max(1, count)):
            n = next(number)
            window_id = f"pw{n:03d}"
            ids[code].append(window_id)
            window_rows.append({"id": window_id, "name": f"规划窗口{n}", "services": [code], "must_staff": False})
            devices.append({"id": f"pp{n:03d}", "kind": "panel", "window": window_id, "heartbeat_s": 3600})
            staff.append({"id": f"ps{n:03d}", "name": f"规划人员{n}"})
    data.update(windows=window_rows, devices=devices, staff=staff)
    return parse_site(data, f"<planning copy of {site.id}>"), ids


def service_config(site: Site, code: str) -> Service:
    """The site's service ``code``; ``ValueError`` when the site has none."""
    config = site.service(code)
    if config is None:
        raise ValueError(f"the site {site.id} has no service {code!r}")
    return config


# -- the hours of the simulated day ---------------------------------------------------------------
def day_start(site: Site, day: date) -> float:
    """The time of the site's local midnight at the start of ``day``."""
    return datetime.combine(day, datetime.min.time(), site.tz).timestamp()


class OpeningHours:
    """When the site's windows serve, as seconds since local midnight: its opening periods,
    and after the last one, overtime until everyone who took a number has been called.
    A wait is counted like ``wait_too_long`` counts it, in this time only."""

    def __init__(self, site: Site, *, all_day: bool = False):
        if all_day:
            self.periods = [(0.0, 24 * HOUR)]
        else:
            self.periods = [
                (a.hour * HOUR + a.minute * 60.0, b.hour * HOUR + b.minute * 60.0) for a, b in site.hours.spans()
            ]
        self.close = self.periods[-1][1]

    def open_seconds(self, hour: int) -> float:
        start, end = hour * HOUR, (hour + 1) * HOUR
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b in self.periods)

    def is_open(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.periods)

    def wait(self, issued: float, called: float) -> float:
        counted = sum(max(0.0, min(called, b) - max(issued, a)) for a, b in self.periods)
        return counted + max(0.0, called - max(issued, self.close))

    def schedule(self, plan: dict[int, int]) -> list[tuple[float, int]]:
        """(seconds since midnight, windows open from then on) for an hourly plan: the plan's
        count inside the opening periods, none outside, and after the close the count of the
        last hour that was open (overtime until the queue is empty)."""
        first, last = min(plan), max(plan)
        open_hours = [h for h in sorted(plan) if self.open_seconds(h) > 0]
        overtime = plan[open_hours[-1]] if open_hours else 0
        points = {h * HOUR for h in plan} | {t for period in self.periods for t in period if t >= first * HOUR}
        schedule: list[tuple[float, int]] = []
        for t in sorted(points):
            if t >= self.close:
                count = overtime
            elif self.is_open(t):
                count = plan[min(max(int(t // HOUR), first), last)]
            else:
                count = 0
            if not schedule or schedule[-1][1] != count:
                schedule.append((t, count))
        return schedule


# -- one simulated run through the core ------------------------------------------------------------
class SimulationError(RuntimeError):
    """The core refused what the simulated hall did: a bug of the simulation or the core."""


ARRIVE, STAFF, FINISH = 0, 1, 2


@dataclass
class _Pool:
    """The windows of one service, as the simulated staff see them."""

    closed: list[str]
    idle: list[str] = field(default_factory=list)
    closing: set[str] = field(default_factory=set)
    busy: int = 0
    waiting: int = 0


class HallSimulation:
    """A planning site's engine, fed by arrival streams and an hourly window schedule.

    ``waits[tag]`` lists, in the order of calling, the waits (seconds from taking a number to
    being called, or what ``wait(issued, called)`` counts of them) of the citizens whose
    stream tagged them so; a tag of ``None`` is not recorded."""

    def __init__(
        self,
        site: Site,
        windows: dict[str, list[str]],
        *,
        start: float,
        collect_alerts: bool = False,
        wait: Callable[[float, float], float] | None = None,
        timers_on_time: bool = True,
    ):
        self.engine = Engine([site])
        self._wait = wait
        self._timers_on_time = timers_on_time
        self.site_id = site.id
        self._devices = {w: f"pp{w[2:]}" for ids in windows.values() for w in ids}
        self._staff = {w: f"ps{w[2:]}" for w in self._devices}
        self._service_of = {w: code for code, ids in windows.items() for w in ids}
        self.pools = {code: _Pool(closed=list(reversed(ids))) for code, ids in windows.items()}
        self._heap: list[tuple] = []
        self._seq = itertools.count()
        self._ids = itertools.count()
        self._issued: dict[str, tuple[Hashable, float, float, str]] = {}  # no -> (tag, issued at, service s, service)
        self.waits: dict[Hashable, list[float]] = {}
        self.alerts: list[Alert] | None = [] if collect_alerts else None
        self.events = 0
        self.now = start
        self._observe(self.engine.tick(start))

    # -- scheduling
    def _push(self, when: float, kind: int, payload) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), kind, payload))

    def add_arrivals(
        self,
        service: str,
        per_hour: float,
        start: float,
        end: float,
        tag,
        *,
        arrivals: random.Random,
        service_time: Callable[[], float],
        limit: float = math.inf,
    ) -> None:
        """Poisson arrivals at ``per_hour`` over [start, end), at most ``limit`` of them;
        ``tag`` (or ``tag()``, called at each arrival) says where their waits are recorded."""
        if per_hour <= 0 or end <= start or limit < 1:
            return
        stream = ArrivalStream(service, per_hour / HOUR, start, end, tag, arrivals, service_time, limit)
        first = stream.following(start)
        if first is not None:
            self._push(first, ARRIVE, stream)

    def set_windows(self, service: str, count: int, at: float) -> None:
        """From ``at`` on, ``count`` windows of the service are open."""
        self._push(at, STAFF, (service, count))

    # -- the run
    def run(self, until: float = math.inf) -> HallSimulation:
        """Handle the pending events due before ``until`` (all of them by default)."""
        heap = self._heap
        while heap and heap[0][0] < until:
            when, _, kind, payload = heapq.heappop(heap)
            self.now = when
            if kind == FINISH:
                self._finish(payload, when)
            elif kind == ARRIVE:
                self._arrive(payload, when)
            else:
                service, count = payload
                self._staff_change(service, count, when)
        return self

    @property
    def unserved(self) -> int:
        return sum(pool.waiting for pool in self.pools.values())

    def unserved_by_tag(self) -> dict[Hashable, int]:
        """Citizens never called (no window was left open for them), by tag."""
        counts: dict[Hashable, int] = {}
        for tag, *_ in self._issued.values():
            counts[tag] = counts.get(tag, 0) + 1
        return counts

    def _arrive(self, stream: ArrivalStream, now: float) -> None:
        reply = self._send(
            ev.TicketRequest(site=self.site_id, device="plan-kiosk", id=self._next_id(), service=stream.service), now
        )
        slip = reply.ticket
        if not isinstance(slip, TicketSlip):
            raise SimulationError(f"no ticket in the reply to TicketRequest at {now}")
        tag = stream.tag() if callable(stream.tag) else stream.tag
        self._issued[slip.no] = (tag, now, stream.service_time(), stream.service)
        stream.remaining -= 1
        pool = self.pools[stream.service]
        pool.waiting += 1
        if pool.idle:
            self._call(pool.idle.pop(), pool, now)
        following = stream.following(now)
        if following is not None:
            self._push(following, ARRIVE, stream)

    def _call(self, window: str, pool: _Pool, now: float) -> None:
        device = self._devices[window]
        reply = self._send(ev.CallNext(site=self.site_id, device=device, id=self._next_id()), now)
        if not isinstance(reply.ticket, str):
            raise SimulationError(f"no ticket called in the reply to CallNext at {now}")
        tag, issued_at, service_s, _ = self._issued.pop(reply.ticket)
        if tag is not None:
            waits = self.waits.get(tag)
            if waits is None:
                waits = self.waits[tag] = []
            waits.append(now - issued_at if self._wait is None else self._wait(issued_at, now))
        pool.waiting -= 1
        pool.busy += 1
        self._send(ev.ServiceStart(site=self.site_id, device=device, id=self._next_id()), now)
        self._push(now + service_s, FINISH, window)

    def _finish(self, window: str, now: float) -> None:
        device = self._devices[window]
        self._send(ev.ServiceFinish(site=self.site_id, device=device, id=self._next_id(), outcome=ev.Outcome.DONE), now)
        pool = self.pools[self._service_of[window]]
        pool.busy -= 1
        if window in pool.closing:
            pool.closing.discard(window)
            self._logout(window, pool, now)
        elif pool.waiting:
            self._call(window, pool, now)
        else:
            pool.idle.append(window)

    def _staff_change(self, service: str, count: int, now: float) -> None:
        pool = self.pools[service]
        active = len(pool.idle) + pool.busy - len(pool.closing)
        while active < count and pool.closing:  # keep a window that was about to close
            pool.closing.pop()
            active += 1
        while active < count and pool.closed:
            window = pool.closed.pop()
            self._send(
                ev.StaffLogin(
                    site=self.site_id, device=self._devices[window], id=self._next_id(), staff=self._staff[window]
                ),
                now,
            )
            active += 1
            if pool.waiting:
                self._call(window, pool, now)
            else:
                pool.idle.append(window)
        while active > count and pool.idle:
            self._logout(pool.idle.pop(), pool, now)
            active -= 1
        if active > count:  # the rest close once their citizen is done
            busy = [
                w
                for w in self._service_of
                if self._service_of[w] == service
                and w not in pool.closed
                and w not in pool.idle
                and w not in pool.closing
            ]
            for window in busy[: active - count]:
                pool.closing.add(window)

    def _logout(self, window: str, pool: _Pool, now: float) -> None:
        self._send(ev.StaffLogout(site=self.site_id, device=self._devices[window], id=self._next_id()), now)
        pool.closed.append(window)

    # -- the core
    def _next_id(self) -> str:
        return f"s{next(self._ids)}"

    def _send(self, event: ev.Event, now: float) -> Reply:
        engine = self.engine
        while self._timers_on_time and engine.next_deadline() <= now:  # as the timer shell runs them
            self._observe(engine.tick(engine.next_deadline()))
        commands = engine.handle(event, now)
        self.events += 1
        if self.alerts is not None:
            self._observe(commands)
        for command in reversed(commands):
            if type(command) is Reply and command.re == event.id:
                if not command.ok:
                    raise SimulationError(
                        f"the core refused {type(event).__name__} at {now}: {command.error} {command.message}"
                    )
                return command
        raise SimulationError(f"no reply to {type(event).__name__}")

    def _observe(self, commands: list) -> None:
        if self.alerts is not None:
            self.alerts += [c.alert for c in commands if isinstance(c, AlertChanged)]


# -- one whole day of a hall ------------------------------------------------------------------------
def simulate_day(
    site: Site,
    windows: dict[str, dict[int, int]],
    demand: Demand,
    *,
    seed: int = 1,
    service_times: ServiceTimes = EXPONENTIAL,
    day: date = PLAN_DAY,
    all_day: bool = False,
    collect_alerts: bool = False,
) -> HallSimulation:
    """One whole day of a hall: every service of ``windows`` with its hourly windows
    (``windows[service][hour]``) and its arrivals from ``demand``, all in one engine; waits
    are tagged (service, hour)."""
    sizes = {code: max(1, *plan.values()) for code, plan in windows.items()}
    psite, ids = planning_site(site, sizes)
    opening = OpeningHours(site, all_day=all_day)
    midnight = day_start(site, day)
    first = min(h for plan in windows.values() for h in plan)
    sim = HallSimulation(
        psite,
        ids,
        start=midnight + first * HOUR - 1.0,
        collect_alerts=collect_alerts,
        wait=lambda issued, called: opening.wait(issued - midnight, called - midnight),
    )
    for code, plan in windows.items():
        mean_s = service_config(site, code).expected_service_min * 60
        for at, count in opening.schedule(plan):
            sim.set_windows(code, count, midnight + at)
        for hour in sorted(plan):
            start = midnight + hour * HOUR
            key = f"{seed}:day:{code}:{hour}"
            sim.add_arrivals(
                code,
                demand.arrivals(code, hour),
                start,
                start + HOUR,
                (code, hour),
                arrivals=random.Random(key + ":arrivals"),
                service_time=service_times.sampler(mean_s, random.Random(key + ":service")),
            )
    return sim.run()
