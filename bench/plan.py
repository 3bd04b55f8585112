"""Capacity planning: the simulation through the pure core against Erlang C, and its speed.

Part 1, the M/M/c grid: utilisation 0.5, 0.6, 0.7, 0.8, 0.9 x 1..10 windows. Each case is a
stationary M/M/c queue driven through ``queue_engine.core.Engine`` by the planning
simulation (``queue_engine.planning.simulate_mmc``: Poisson arrivals, exponential service
times, ``ticket.request`` / ``call.next`` / ``service.start`` / ``service.finish``), long
enough for its own noise to be small: the number of measured citizens per case is
``scale x max(50,000, 3000 / ((1 - rho)^2 x C))``, C being Erlang C's probability of waiting
(the noise of the mean wait grows with 1 / (1 - rho)^2 and with the rarity of waiting): at
``--scale 1`` the batch-means 95 % confidence half-width is 5-13 % of the mean wait (about ten
minutes on two cores), at ``--scale 2`` 4-9 %. Each run of up to 100,000 citizens starts empty
and discards its first 2 % as warm-up. Fixed seeds.
Prints each case's simulated mean wait, Erlang C's, the relative error and the 95 %
confidence half-width (20 batch means), all in units of the mean service time.

Part 2: a full simulated day of a 30-window hall (the demo site, six services, 30 dedicated
windows open 08:30-12:00 and 14:30-17:30, arrivals at about 85 % of their capacity from 08:00
to 17:00): the time it takes, median of 3 (target < 2 s).

    .venv/bin/python bench/plan.py [--jobs 2] [--scale 1] [--seed 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from queue_engine.config import load_site  # noqa: E402
from queue_engine.core.capacity import erlang_c  # noqa: E402
from queue_engine.planning import Demand, simulate_day, simulate_mmc  # noqa: E402

UTILISATIONS = (0.5, 0.6, 0.7, 0.8, 0.9)
WINDOWS = range(1, 11)
# The 30 windows of the day: service -> dedicated windows.
HALL_WINDOWS = {"shebao": 8, "yibao": 8, "huji": 4, "jiuye": 3, "budongchan": 4, "shuidianqi": 3}
HALL_UTILISATION = 0.85


def citizens_for(rho: float, windows: int, scale: float) -> int:
    return int(round(scale * max(50_000, 3000 / ((1 - rho) ** 2 * erlang_c(windows, rho * windows))), -4))


def run_case(args: tuple[float, int, int, int]):
    rho, windows, citizens, seed = args
    started = time.perf_counter()
    result = simulate_mmc(rho, windows, citizens, seed=seed)
    return result, time.perf_counter() - started


def thirty_window_day(seed: int) -> tuple[float, int, int]:
    site = load_site(ROOT / "examples" / "demo-site.toml")
    hours = [8, 9, 10, 11, 12, 13, 14, 15, 16]
    rates = {}
    for code, count in HALL_WINDOWS.items():
        per_hour = HALL_UTILISATION * count * 60 / site.service(code).expected_service_min
        rates[code] = {h: (0.0 if h in (12, 13) else per_hour) for h in hours}
    plan = {code: {h: count for h in hours} for code, count in HALL_WINDOWS.items()}
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        sim = simulate_day(site, plan, Demand(rates), seed=seed)
        timings.append(time.perf_counter() - started)
    citizens = sum(len(w) for w in sim.waits.values())
    return statistics.median(timings), citizens, sim.events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the grid (default 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every case's length (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    cases = [(rho, c, citizens_for(rho, c, args.scale), args.seed) for rho in UTILISATIONS for c in WINDOWS]
    total = sum(case[2] for case in cases)
    print(f"M/M/c grid: {len(cases)} cases, {total:,} measured citizens, {args.jobs} processes, seed {args.seed}")
    print(
        f"{'rho':>4} {'c':>3} {'citizens':>9} {'sim Wq':>8} {'Erlang Wq':>9} {'error':>7} {'95% CI':>7} "
        f"{'time':>6}  (waits in mean service times)",
        flush=True,
    )
    worst = 0.0
    outside = []
    events = elapsed = 0.0
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for result, seconds in pool.map(run_case, cases):
            error = result.relative_error
            worst = max(worst, abs(error))
            if abs(error) > 0.10:
                outside.append((result.utilisation, result.windows))
            events += result.events
            elapsed += seconds
            print(
                f"{result.utilisation:>4} {result.windows:>3} {result.citizens:>9,} {result.wait:>8.4f} "
                f"{result.erlang:>9.4f} {error:>+7.1%} {result.batch_half_width / result.erlang:>7.1%} "
                f"{seconds:>5.0f}s",
                flush=True,
            )
    wall = time.perf_counter() - started
    print(
        f"\nmax |relative error| {worst:.1%}; cases outside 10 %: "
        f"{', '.join(f'rho {r} c {c}' for r, c in outside) if outside else 'none'}"
    )
    print(f"grid: {wall:.0f} s wall, {events / elapsed:,.0f} core events/s per process")

    seconds, citizens, day_events = thirty_window_day(args.seed)
    print(
        f"\n30-window day (demo site, {len(HALL_WINDOWS)} services, utilisation {HALL_UTILISATION}): "
        f"{citizens:,} citizens, {day_events:,} core events, {seconds:.2f} s (median of 3; target < 2 s)"
    )


if __name__ == "__main__":
    main()
