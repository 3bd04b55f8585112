"""Planning: for each hour of the demand, the fewest windows whose simulated mean wait meets
the target, with Erlang C's answer beside it.

The plan assumes windows dedicated to the service planned (the sum of several services'
windows is the hall's need); every window open in an hour stays open until the citizen at it
is done, and after the last hour of the demand the windows of that hour serve whoever still
waits.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel

from ..config import Site
from ..core.capacity import mean_wait, windows_needed
from .demand import Demand
from .sampling import EXPONENTIAL, ServiceTimes
from .simulation import HOUR, PLAN_DAY, HallSimulation, OpeningHours, day_start, planning_site, service_config


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
        self.config = service_config(site, service)
        self.mean_s = self.config.expected_service_min * 60
        self.target_s = target_min * 60
        self.seed, self.service_times = seed, service_times
        self.max_windows = max_windows
        self.midnight = day_start(site, day)
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

    def _windows_for(self, hour: int, chosen: dict[int, int], exempt: set[int]) -> int:
        """The fewest windows for ``hour`` (the earlier hours having the windows of ``chosen``)
        with which no hour so far fails; when even the most windows leave hours failing, those
        hours are added to ``exempt``."""
        mu = 1.0 / self.mean_s
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
                exempt.update(tried[count])
        return count

    def plan(self) -> tuple[list[HourPlan], dict[int, tuple[float, int]]]:
        mu = 1.0 / self.mean_s
        chosen: dict[int, int] = {}
        exempt: set[int] = set()  # hours that even max_windows cannot bring to the target
        for hour in self.hours:
            if self.opening.open_seconds(hour) <= 0:
                chosen[hour] = 0  # closed: its citizens are served when the hall opens
            else:
                chosen[hour] = self._windows_for(hour, chosen, exempt)
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
    service_times: ServiceTimes = EXPONENTIAL,
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
    mu, target_s = 1.0 / (service_config(site, service).expected_service_min * 60), target_min * 60
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
    config = service_config(site, service)
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


def summarise(plans: Iterable[ServicePlan]) -> dict[int, int]:
    """Windows per hour for the whole hall (the sum over services)."""
    total: dict[int, int] = {}
    for plan in plans:
        for hour in plan.hours:
            total[hour.hour] = total.get(hour.hour, 0) + hour.windows
    return dict(sorted(total.items()))
