"""Capacity planning (增设服务窗口): the pure core run in simulated time.

A discrete-event simulation drives ``queue_engine.core.Engine`` exactly as the devices of a
hall would, without a broker, a store or a clock: citizens take numbers (``ticket.request``),
windows open and close by the hour (``staff.login`` / ``staff.logout``), and staff call,
start and finish (``call.next``, ``service.start``, ``service.finish``). Time is a float
taken from a heap of pending events; randomness comes from ``random.Random`` instances
seeded here, one per stream, never from the module's global state.

- ``read_arrivals``: the hourly demand of a day, from a CSV file (see docs/planning.md).
- ``plan_service``: for each hour, the fewest windows whose simulated mean wait meets the
  target, with Erlang C's answer beside it.
- ``simulate_mmc``: a stationary M/M/c queue through the core, to check the simulation
  against Erlang C (``bench/plan.py``).

The plan assumes windows dedicated to the service planned (the sum of several services'
windows is the hall's need); every window open in an hour stays open until the citizen at it
is done, and after the last hour of the demand the windows of that hour serve whoever still
waits.
"""

from __future__ import annotations

import copy
import csv
import heapq
import itertools
import math
import random
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel

from .config import Site, parse_site
from .core import Engine, Reply
from .core import events as ev
from .core.alerts import Alert
from .core.capacity import mean_wait, windows_needed
from .core.commands import AlertChanged

COLUMNS = ("hour", "service", "arrivals")
MAX_ARRIVALS_PER_HOUR = 100_000
# The simulated day: the core needs a date for its working calendar, and the plan does not
# depend on which (tickets may be taken at any hour in the planning copy of the site).
PLAN_DAY = date(2026, 12, 28)  # a Monday of the year-end peak
HOUR = 3600.0


# -- the demand: arrivals per hour and service, from a CSV file --------------------------------
class ArrivalsError(ValueError):
    """A problem in an arrivals file; ``str()`` names the file, the line and the problem."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{self.path}:{line}: {problem}" if line else f"{self.path}: {problem}")


@dataclass(frozen=True)
class Demand:
    """Expected arrivals per hour: ``rates[service][hour]``, hour 0-23 of the local day."""

    rates: dict[str, dict[int, float]]

    def services(self) -> list[str]:
        return list(self.rates)

    def hours(self, service: str) -> list[int]:
        """Every hour from the service's first to its last row (missing hours: no arrivals)."""
        hours = self.rates[service]
        return list(range(min(hours), max(hours) + 1))

    def arrivals(self, service: str, hour: int) -> float:
        return self.rates[service].get(hour, 0.0)


_HOUR = re.compile(r"(\d{1,2})(?::00)?")


def read_arrivals(path: str | Path, site: Site) -> Demand:
    """Read ``hour,service,arrivals`` rows (header first; ``#`` comment lines and blank lines
    are skipped). Raises ``ArrivalsError`` at the first problem."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a spreadsheet's BOM is welcome
    except OSError as exc:
        raise ArrivalsError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ArrivalsError(path, None, f"file is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV") from None
    known = {s.code for s in site.services}
    columns: dict[str, int] | None = None
    rates: dict[str, dict[int, float]] = {}
    first_line: dict[tuple[str, int], int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([raw]))]
        if columns is None:
            columns = _header(path, number, fields)
            continue
        if len(fields) != len(columns):
            raise ArrivalsError(
                path, number, f"expected {len(columns)} fields ({','.join(columns)}), found {len(fields)}"
            )
        hour_text, service, count_text = (fields[columns[name]] for name in COLUMNS)
        match = _HOUR.fullmatch(hour_text)
        if match is None or int(match[1]) > 23:
            raise ArrivalsError(path, number, f"hour {hour_text!r} is not an hour of the day: 0-23 or HH:00")
        hour = int(match[1])
        if service not in known:
            raise ArrivalsError(
                path, number, f"unknown service {service!r}: the site {site.id} has {', '.join(sorted(known))}"
            )
        try:
            count = float(count_text)
        except ValueError:
            raise ArrivalsError(path, number, f"arrivals {count_text!r} is not a number") from None
        if not math.isfinite(count) or count < 0 or count > MAX_ARRIVALS_PER_HOUR:
            raise ArrivalsError(path, number, f"arrivals {count_text!r} must be between 0 and {MAX_ARRIVALS_PER_HOUR}")
        if (service, hour) in first_line:
            raise ArrivalsError(
                path, number, f"hour {hour}, service {service!r} is already given on line {first_line[(service, hour)]}"
            )
        first_line[(service, hour)] = number
        rates.setdefault(service, {})[hour] = count
    if columns is None:
        raise ArrivalsError(path, None, f"no header: the first line must be {','.join(COLUMNS)}")
    if not rates:
        raise ArrivalsError(path, None, "no rows after the header")
    return Demand(rates)


def _header(path: Path, number: int, fields: list[str]) -> dict[str, int]:
    names = [f.lower() for f in fields]
    for name in names:
        if name not in COLUMNS:
            raise ArrivalsError(path, number, f"header: unknown column {name!r} (the columns are {','.join(COLUMNS)})")
    for name in COLUMNS:
        if name not in names:
            raise ArrivalsError(path, number, f"header: missing column {name!r} (the columns are {','.join(COLUMNS)})")
    if len(set(names)) != len(names):
        raise ArrivalsError(path, number, "header: a column is named twice")
    return {name: names.index(name) for name in COLUMNS}


# -- service times ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceTimes:
    """How long a service takes: exponential (the M/M/c model's assumption) or log-normal
    (closer to real counters: few very short visits) with coefficient of variation ``cv``;
    both with the service's ``expected_service_min`` as their mean."""

    kind: str = "exponential"
    cv: float = 1.0

    def __post_init__(self):
        if self.kind not in ("exponential", "lognormal"):
            raise ValueError(f"unknown service time distribution {self.kind!r}")
        if not self.cv > 0:
            raise ValueError("the coefficient of variation must be positive")

    def sampler(self, mean_s: float, rng: random.Random) -> Callable[[], float]:
        return _Sampler(self.kind, mean_s, self.cv, rng)


class _Sampler:
    """Draws service times (an object, not a closure, so that a copied simulation copies its
    random state too)."""

    __slots__ = ("rng", "exponential", "a", "b")

    def __init__(self, kind: str, mean_s: float, cv: float, rng: random.Random):
        self.rng, self.exponential = rng, kind == "exponential"
        if self.exponential:
            self.a, self.b = 1.0 / mean_s, 0.0
        else:
            sigma2 = math.log1p(cv * cv)
            self.a, self.b = math.log(mean_s) - sigma2 / 2, math.sqrt(sigma2)

    def __call__(self) -> float:
        if self.exponential:
            return self.rng.expovariate(self.a)
        return self.rng.lognormvariate(self.a, self.b)


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


# -- one simulated run through the core ------------------------------------------------------------
class SimulationError(RuntimeError):
    """The core refused what the simulated hall did: a bug of the simulation or the core."""


ARRIVE, STAFF, FINISH = 0, 1, 2


@dataclass
class _Stream:
    """Poisson arrivals of one service at ``rate`` per second over [start, end)."""

    service: str
    rate: float
    start: float
    end: float
    tag: Callable[[], Hashable] | Hashable  # where the arrivals' waits are recorded
    arrivals: random.Random
    service_time: Callable[[], float]
    remaining: float = math.inf  # arrivals still to come


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
        stream = _Stream(service, per_hour / HOUR, start, end, tag, arrivals, service_time, limit)
        first = start + arrivals.expovariate(stream.rate)
        if first < end:
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
                self._staff_change(*payload, when)
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

    def _arrive(self, stream: _Stream, now: float) -> None:
        reply = self._send(
            ev.TicketRequest(site=self.site_id, device="plan-kiosk", id=self._next_id(), service=stream.service), now
        )
        tag = stream.tag() if callable(stream.tag) else stream.tag
        self._issued[reply.ticket.no] = (tag, now, stream.service_time(), stream.service)
        stream.remaining -= 1
        pool = self.pools[stream.service]
        pool.waiting += 1
        if pool.idle:
            self._call(pool.idle.pop(), pool, now)
        following = now + stream.arrivals.expovariate(stream.rate)
        if following < stream.end and stream.remaining > 0:
            self._push(following, ARRIVE, stream)

    def _call(self, window: str, pool: _Pool, now: float) -> None:
        device = self._devices[window]
        reply = self._send(ev.CallNext(site=self.site_id, device=device, id=self._next_id()), now)
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


# -- planning: the fewest windows per hour --------------------------------------------------------
@dataclass(frozen=True)
class HourPlan:
    hour: int
    arrivals: float  # expected arrivals in the hour (the CSV's figure)
    open_min: float  # minutes of the hour within the site's opening periods
    windows: int  # recommended: the fewest whose simulated mean wait meets the target (0: closed)
    sim_wait_min: float | None  # simulated mean wait of the hour's arrivals (None: nobody came)
    erlang_windows: int | None  # Erlang C's answer for the hour alone, steady state (None: closed)
    erlang_wait_min: float | None  # Erlang C's mean wait with the recommended windows (None: closed or unbounded)
    met: bool  # False when even ``max_windows`` windows do not meet the target


@dataclass(frozen=True)
class ServicePlan:
    service: str
    name: str
    service_min: float
    target_min: float
    hours: list[HourPlan]
    replications: int
    citizens: float  # simulated citizens per day, averaged over the replications
    mean_wait_min: float | None  # the day's simulated mean wait under the plan


def _day_start(site: Site, day: date) -> float:
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
        schedule = []
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


def _immutables(site: Site) -> dict[int, object]:
    """A deepcopy memo that shares the site's (frozen) configuration between copies."""
    memo: dict[int, object] = {}

    def walk(value) -> None:
        if isinstance(value, BaseModel):
            memo[id(value)] = value
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(site)
    return memo


class _TooSmall(Exception):
    """The planning copy of the site has too few windows for the answer: plan again, larger."""


class _Planner:
    """Hour by hour: ``replications`` simulated days advance together with the windows chosen
    so far; each candidate for the next hour is tried on copies of them (common random
    numbers: every candidate meets the same citizens), run until the queue is empty."""

    def __init__(
        self,
        site: Site,
        service: str,
        demand: Demand,
        target_min: float,
        *,
        replications: int,
        seed: int,
        service_times: ServiceTimes,
        max_windows: int,
        day: date,
        hours: OpeningHours,
        size: int,
    ):
        self.service, self.demand = service, demand
        self.config = site.service(service)
        self.mean_s = self.config.expected_service_min * 60
        self.target_s = target_min * 60
        self.seed, self.service_times = seed, service_times
        self.max_windows = max_windows
        self.midnight = _day_start(site, day)
        self.opening = hours
        self.hours = demand.hours(service)
        self.size = size  # windows in the planning copy: the most any candidate may open
        self.site, self.ids = planning_site(site, {service: size})
        self._memo = _immutables(self.site)
        midnight, opening = self.midnight, hours
        self.days = [
            HallSimulation(
                self.site,
                self.ids,
                start=midnight + self.hours[0] * HOUR - 1.0,
                wait=lambda issued, called: opening.wait(issued - midnight, called - midnight),
            )
            for _ in range(replications)
        ]

    def _copy(self, sim: HallSimulation) -> HallSimulation:
        return copy.deepcopy(sim, dict(self._memo))

    def _advance(
        self, sim: HallSimulation, rep: int, plan: dict[int, int], hour: int, until: float = math.inf
    ) -> HallSimulation:
        """Give ``sim`` (at the start of ``hour``) the windows of ``plan`` from then on and the
        hour's arrivals, and run it until ``until``."""
        start = self.midnight + hour * HOUR
        for at, count in self.opening.schedule(plan):
            if start <= self.midnight + at < until:
                sim.set_windows(self.service, count, self.midnight + at)
        key = f"{self.seed}:{rep}:{self.service}:{hour}"
        sim.add_arrivals(
            self.service,
            self.demand.arrivals(self.service, hour),
            start,
            start + HOUR,
            hour,
            arrivals=random.Random(key + ":arrivals"),
            service_time=self.service_times.sampler(self.mean_s, random.Random(key + ":service")),
        )
        return sim.run(until)

    def _failing(self, sims: list[HallSimulation], upto: int, exempt: set[int]) -> set[int]:
        """The hours up to ``upto`` whose citizens waited longer than the target on average
        over the finished runs (or were never called), except those in ``exempt``."""
        failing = set()
        for hour in range(self.hours[0], upto + 1):
            waits = [w for sim in sims for w in sim.waits.get(hour, ())]
            if (
                any(sim.unserved_by_tag().get(hour) for sim in sims)
                or waits
                and hour not in exempt
                and sum(waits) / len(waits) > self.target_s
            ):
                failing.add(hour)
        return failing

    def plan(self) -> tuple[list[HourPlan], dict[int, tuple[float, int]]]:
        mu = 1.0 / self.mean_s
        chosen: dict[int, int] = {}
        exempt: set[int] = set()  # hours that even max_windows cannot bring to the target
        for hour in self.hours:
            if self.opening.open_seconds(hour) <= 0:
                chosen[hour] = 0  # closed: its citizens are served when the hall opens
            else:
                rate = self.demand.arrivals(self.service, hour) / HOUR
                tried: dict[int, set[int]] = {}

                def ok(count: int) -> bool:
                    if count not in tried:
                        plan = {**chosen, hour: count}
                        runs = [self._advance(self._copy(sim), rep, plan, hour) for rep, sim in enumerate(self.days)]
                        tried[count] = self._failing(runs, hour, exempt)
                    return not tried[count]

                most = min(self.max_windows, self.size)
                count = min(windows_needed(rate, mu, self.target_s), most)
                if ok(count):
                    while count > 0 and ok(count - 1):
                        count -= 1
                else:
                    while count < most and not ok(count + 1):
                        count += 1
                    count = min(count + 1, most)
                    if not ok(count):
                        if most < self.max_windows:
                            raise _TooSmall
                        exempt |= tried[count]
                chosen[hour] = count
            until = self.midnight + (hour + 1) * HOUR if hour != self.hours[-1] else math.inf
            for rep, sim in enumerate(self.days):
                self._advance(sim, rep, chosen, hour, until)
        final: dict[int, tuple[float, int]] = {}
        for hour in self.hours:
            waits = [w for sim in self.days for w in sim.waits.get(hour, ())]
            final[hour] = (sum(waits), len(waits))
        result = []
        for hour in self.hours:
            rate = self.demand.arrivals(self.service, hour) / HOUR
            total, count = final[hour]
            closed = self.opening.open_seconds(hour) <= 0
            wait = mean_wait(rate, mu, chosen[hour])
            result.append(
                HourPlan(
                    hour=hour,
                    arrivals=self.demand.arrivals(self.service, hour),
                    open_min=self.opening.open_seconds(hour) / 60,
                    windows=chosen[hour],
                    sim_wait_min=total / count / 60 if count else None,
                    erlang_windows=None if closed else windows_needed(rate, mu, self.target_s),
                    erlang_wait_min=None if closed or math.isinf(wait) else wait / 60,
                    met=not (count and total / count > self.target_s),
                )
            )
        return result, final


def plan_service(
    site: Site,
    service: str,
    demand: Demand,
    target_min: float,
    *,
    replications: int = 20,
    seed: int = 1,
    service_times: ServiceTimes = ServiceTimes(),
    max_windows: int = 30,
    day: date = PLAN_DAY,
    all_day: bool = False,
) -> ServicePlan:
    """Recommend the windows of each hour of ``demand`` for ``service``: hour by hour, the
    fewest windows with which the simulated mean wait of the citizens arriving in that hour,
    and of every earlier hour, stays within ``target_min`` (``replications`` simulated days
    with common random numbers, so that candidates are compared on the same citizens).
    Windows serve within the site's opening periods (``all_day``: at any hour)."""
    if target_min <= 0:
        raise ValueError("the target wait must be positive")
    opening = OpeningHours(site, all_day=all_day)
    if not any(opening.open_seconds(h) > 0 for h in demand.hours(service)):
        raise ValueError(
            f"{service}: none of the hours of the demand is within the opening hours ({', '.join(site.hours.periods)})"
        )
    # As few windows in the planning copy as the answer may need: copying the simulated days
    # for each candidate costs in proportion to the windows.
    mu, target_s = 1.0 / (site.service(service).expected_service_min * 60), target_min * 60
    steady = max(windows_needed(demand.arrivals(service, h) / HOUR, mu, target_s) for h in demand.hours(service))
    size = min(max_windows, 2 * steady + 2)
    while True:
        planner = _Planner(
            site,
            service,
            demand,
            target_min,
            replications=replications,
            seed=seed,
            service_times=service_times,
            max_windows=max_windows,
            day=day,
            hours=opening,
            size=size,
        )
        try:
            hours, final = planner.plan()
            break
        except _TooSmall:
            size = min(max_windows, 2 * size)
    total, count = sum(t for t, _ in final.values()), sum(n for _, n in final.values())
    config = site.service(service)
    return ServicePlan(
        service=service,
        name=config.name,
        service_min=config.expected_service_min,
        target_min=target_min,
        hours=hours,
        replications=replications,
        citizens=count / replications,
        mean_wait_min=total / count / 60 if count else None,
    )


# -- checking the simulation against Erlang C -----------------------------------------------------
@dataclass(frozen=True)
class MMcResult:
    utilisation: float
    windows: int
    citizens: int  # measured (after each run's warm-up)
    wait: float  # simulated mean wait, in mean service times
    erlang: float  # Erlang C's mean wait, in mean service times
    batch_half_width: float  # 95 % confidence half-width from batch means, same unit
    events: int  # core events handled

    @property
    def relative_error(self) -> float:
        return (self.wait - self.erlang) / self.erlang


def _mmc_site(windows: int, mean_s: float) -> tuple[Site, dict[str, list[str]]]:
    base = parse_site(
        {
            "id": "mmc",
            "name": "M/M/c",
            "hours": {"periods": ["00:00-23:59"], "issue_before_open_min": 0},
            "queue": {"issue_outside_hours": True},
            "services": [
                {"code": "s", "name": "M/M/c", "prefix": "A", "category": "check", "expected_service_min": mean_s / 60}
            ],
            "windows": [{"id": "w", "name": "w", "services": ["s"]}],
        }
    )
    return planning_site(base, {"s": windows})


def simulate_mmc(
    utilisation: float,
    windows: int,
    citizens: int,
    *,
    seed: int,
    per_run: int = 100_000,
    warmup: int | None = None,
    batches: int = 20,
) -> MMcResult:
    """A stationary M/M/c queue through the core: ``citizens`` measured arrivals in runs of
    up to ``per_run`` (one simulated day each, time scaled so that a run fits in 20 hours),
    each run's first ``warmup`` arrivals discarded (default: 2 % of the run, at least 1,000)."""
    if not 0 < utilisation < 1:
        raise ValueError("utilisation must be between 0 and 1")
    runs = max(1, math.ceil(citizens / per_run))
    measured_per_run = math.ceil(citizens / runs)
    warm = warmup if warmup is not None else max(1000, measured_per_run // 50)
    arrivals_per_run = measured_per_run + warm
    # Scale: mean service time such that the run's arrivals span 20 hours.
    span = 20 * HOUR
    rate = arrivals_per_run / span  # arrivals per second
    mean_s = utilisation * windows / rate
    site, ids = _mmc_site(windows, mean_s)
    start = _day_start(site, PLAN_DAY) + 1800.0
    waits: list[float] = []
    events = 0
    for run in range(runs):
        sim = HallSimulation(site, ids, start=start - 1.0, timers_on_time=False)
        sim.set_windows("s", windows, start - 1.0)
        arrived = itertools.count(1)
        key = f"mmc:{seed}:{utilisation}:{windows}:{run}"
        sim.add_arrivals(
            "s",
            rate * HOUR,
            start,
            start + 2 * span,
            lambda: "m" if next(arrived) > warm else None,
            arrivals=random.Random(key + ":arrivals"),
            service_time=ServiceTimes().sampler(mean_s, random.Random(key + ":service")),
            limit=arrivals_per_run,
        )
        sim.run()
        if sim.unserved:
            raise SimulationError(f"{sim.unserved} citizens were never called")
        waits += sim.waits["m"]  # in the order of calling, which is the order of arrival (FIFO)
        events += sim.events
    mean = sum(waits) / len(waits)
    size = len(waits) // batches
    means = [sum(waits[i * size : (i + 1) * size]) / size for i in range(batches)] if size else [mean]
    spread = math.sqrt(sum((m - mean) ** 2 for m in means) / max(1, len(means) - 1)) / math.sqrt(len(means))
    mu = 1.0 / mean_s
    erlang = mean_wait(utilisation * windows * mu, mu, windows)
    return MMcResult(
        utilisation=utilisation,
        windows=windows,
        citizens=len(waits),
        wait=mean / mean_s,
        erlang=erlang / mean_s,
        batch_half_width=2.09 * spread / mean_s,
        events=events,
    )


def simulate_day(
    site: Site,
    windows: dict[str, dict[int, int]],
    demand: Demand,
    *,
    seed: int = 1,
    service_times: ServiceTimes = ServiceTimes(),
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
    midnight = _day_start(site, day)
    first = min(h for plan in windows.values() for h in plan)
    sim = HallSimulation(
        psite,
        ids,
        start=midnight + first * HOUR - 1.0,
        collect_alerts=collect_alerts,
        wait=lambda issued, called: opening.wait(issued - midnight, called - midnight),
    )
    for code, plan in windows.items():
        mean_s = site.service(code).expected_service_min * 60
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


def summarise(plans: Iterable[ServicePlan]) -> dict[int, int]:
    """Windows per hour for the whole hall (the sum over services)."""
    total: dict[int, int] = {}
    for plan in plans:
        for hour in plan.hours:
            total[hour.hour] = total.get(hour.hour, 0) + hour.windows
    return dict(sorted(total.items()))
