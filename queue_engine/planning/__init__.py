"""Capacity planning (增设服务窗口): the pure core run in simulated time.

A discrete-event simulation drives ``queue_engine.core.Engine`` as the devices of a hall
would, without a broker, a store or a clock (``simulation``), with seeded random streams of
arrivals and service times (``sampling``).

- ``read_arrivals`` (``demand``): the hourly demand of a day, from a CSV file (see
  docs/planning.md).
- ``plan_service`` (``planner``): for each hour, the fewest windows whose simulated mean wait
  meets the target, with Erlang C's answer beside it.
- ``simulate_mmc`` (``erlang``): a stationary M/M/c queue through the core, to check the
  simulation against Erlang C (``bench/plan.py``).

Erlang C itself is ``queue_engine.core.capacity``, which the core's live forecast uses too.
"""

from .demand import COLUMNS, MAX_ARRIVALS_PER_HOUR, ArrivalsError, Demand, read_arrivals
from .erlang import MMcResult, simulate_mmc
from .planner import HourPlan, ServicePlan, plan_service, summarise
from .sampling import ServiceTimes
from .simulation import (
    HOUR,
    PLAN_DAY,
    HallSimulation,
    OpeningHours,
    SimulationError,
    planning_site,
    simulate_day,
)

__all__ = [
    "COLUMNS",
    "HOUR",
    "MAX_ARRIVALS_PER_HOUR",
    "PLAN_DAY",
    "ArrivalsError",
    "Demand",
    "HallSimulation",
    "HourPlan",
    "MMcResult",
    "OpeningHours",
    "ServicePlan",
    "ServiceTimes",
    "SimulationError",
    "plan_service",
    "planning_site",
    "read_arrivals",
    "simulate_day",
    "simulate_mmc",
    "summarise",
]
