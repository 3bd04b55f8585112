"""Checking the simulation against Erlang C: a stationary M/M/c queue driven through the core
(``simulate_mmc``; bench/plan.py runs the whole grid)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Site, parse_site
from ..core.capacity import mean_wait
from .sampling import ServiceTimes
from .simulation import HOUR, PLAN_DAY, HallSimulation, SimulationError, day_start, planning_site


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


def _measured_after(warm: int) -> Callable[[], str | None]:
    """The tag of each arrival of a run in turn: ``None`` (not recorded) for the first ``warm``,
    then ``"m"``."""
    arrived = itertools.count(1)
    return lambda: "m" if next(arrived) > warm else None


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
    start = day_start(site, PLAN_DAY) + 1800.0
    waits: list[float] = []
    events = 0
    for run in range(runs):
        sim = HallSimulation(site, ids, start=start - 1.0, timers_on_time=False)
        sim.set_windows("s", windows, start - 1.0)
        key = f"mmc:{seed}:{utilisation}:{windows}:{run}"
        sim.add_arrivals(
            "s",
            rate * HOUR,
            start,
            start + 2 * span,
            _measured_after(warm),
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
