"""What is random in a simulated day: service times (exponential or log-normal) and Poisson
arrivals. Each stream draws from a ``random.Random`` of its own, seeded by the caller, never
from the module's global state."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass


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


EXPONENTIAL = ServiceTimes()  # the default (frozen, so one instance serves every call)


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


@dataclass
class ArrivalStream:
    """Poisson arrivals of one service at ``rate`` per second over [start, end)."""

    service: str
    rate: float
    start: float
    end: float
    tag: Callable[[], Hashable] | Hashable  # where the arrivals' waits are recorded
    arrivals: random.Random
    service_time: Callable[[], float]
    remaining: float = math.inf  # arrivals still to come

    def following(self, now: float) -> float | None:
        """The time of the arrival after one at ``now``; ``None`` when it would fall after
        ``end`` or no arrival remains."""
        after = now + self.arrivals.expovariate(self.rate)
        return after if after < self.end and self.remaining > 0 else None
