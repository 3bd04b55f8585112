"""Capacity planning: the M/M/c queue (Erlang C), and a sliding count of recent arrivals.

Pure math, no IO. Rates are per unit of time and waits come out in the same unit: pass
arrivals per hour and services per hour and the wait is in hours; pass per-second rates and
it is in seconds.

- ``erlang_b(c, a)``: the blocking probability of c servers offered a load of a = λ/μ
  erlangs, by the recursion B(0) = 1, B(k) = a·B(k-1) / (k + a·B(k-1)), which stays
  between 0 and 1 at every step (no factorials, no powers: stable for thousands of servers).
- ``erlang_c(c, a)``: the probability that an arrival has to wait, C = c·B / (c - a·(1 - B)),
  for a < c (1.0 when a >= c: the queue grows without bound).
- ``mean_wait(λ, μ, c)``: the mean wait in the queue, Wq = C / (c·μ - λ) (``math.inf`` when
  λ >= c·μ).
- ``windows_needed(λ, μ, target)``: the smallest c with λ < c·μ and Wq <= target.
"""

from __future__ import annotations

import math
from collections import deque


def erlang_b(servers: int, load: float) -> float:
    """Erlang B: the probability that all ``servers`` are busy in an M/M/c/c system offered
    ``load`` erlangs (λ/μ)."""
    if servers < 0 or load < 0:
        raise ValueError("servers and load must not be negative")
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def _erlang_c_from_b(servers: int, load: float, blocking: float) -> float:
    return servers * blocking / (servers - load * (1.0 - blocking))


def erlang_c(servers: int, load: float) -> float:
    """Erlang C: the probability that an arrival waits in an M/M/c queue with ``servers``
    servers and offered ``load`` erlangs (λ/μ); 1.0 when the load reaches the servers."""
    if load < 0:
        raise ValueError("load must not be negative")
    if load == 0:
        return 0.0
    if servers <= load:
        return 1.0
    return _erlang_c_from_b(servers, load, erlang_b(servers, load))


def mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time spent waiting in the queue (Wq) of an M/M/c queue, in the unit of time of the
    rates; ``math.inf`` when ``arrival_rate >= servers * service_rate``."""
    if arrival_rate < 0 or service_rate <= 0:
        raise ValueError("the arrival rate must not be negative and the service rate must be positive")
    if arrival_rate == 0:
        return 0.0
    if servers <= 0:
        return math.inf
    capacity = servers * service_rate
    if arrival_rate >= capacity:
        return math.inf
    return erlang_c(servers, arrival_rate / service_rate) / (capacity - arrival_rate)


def windows_needed(arrival_rate: float, service_rate: float, target_wait: float) -> int:
    """The smallest number of servers c with ρ = λ/(cμ) < 1 and Wq <= ``target_wait`` (in the
    unit of time of the rates). 0 when nobody arrives. One pass of the Erlang B recursion,
    so the cost grows with the answer, not with the number of candidates tried."""
    if target_wait <= 0:
        raise ValueError("the target wait must be positive")
    if arrival_rate < 0 or service_rate <= 0:
        raise ValueError("the arrival rate must not be negative and the service rate must be positive")
    if arrival_rate == 0:
        return 0
    load = arrival_rate / service_rate
    blocking = 1.0
    servers = 0
    while True:  # terminates: Wq <= 1 / (c·μ - λ), which falls below any positive target
        servers += 1
        blocking = load * blocking / (servers + load * blocking)
        if servers > load:
            wait = _erlang_c_from_b(servers, load, blocking) / (servers * service_rate - arrival_rate)
            if wait <= target_wait:
                return servers


class RecentArrivals:
    """The arrival times of the last ``span`` seconds, oldest first; adding and counting are
    amortised O(1)."""

    __slots__ = ("span", "_times")

    def __init__(self, span: float):
        if span <= 0:
            raise ValueError("span must be positive")
        self.span = span
        self._times: deque[float] = deque()

    def add(self, at: float) -> None:
        self._times.append(at)

    def _prune(self, now: float) -> None:
        times, horizon = self._times, now - self.span
        while times and times[0] <= horizon:
            times.popleft()

    def count(self, now: float) -> int:
        """Arrivals in (now - span, now]."""
        self._prune(now)
        return len(self._times)

    def rate(self, now: float) -> float:
        """Arrivals per second over the last ``span`` seconds."""
        return self.count(now) / self.span

    def next_expiry(self, now: float) -> float | None:
        """When the oldest arrival still counted leaves the span (the count then falls)."""
        self._prune(now)
        return self._times[0] + self.span if self._times else None

    def clear(self) -> None:
        self._times.clear()
