"""The engine's clock: the one place that reads real time.

By default it is the wall clock. With ``start_at`` and ``speed`` it runs from a given moment
``speed`` times faster than real time, for the simulator, demonstrations and tests; every
timestamp the engine writes or publishes follows it.
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    def __init__(self, start_at: float | None = None, speed: float = 1.0):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = time.time() if start_at is None else start_at
        self._mono0 = time.monotonic()
        self.simulated = start_at is not None or speed != 1.0

    def now(self) -> float:
        if not self.simulated:
            return time.time()
        return self._origin + (time.monotonic() - self._mono0) * self.speed

    def real_seconds_until(self, deadline: float) -> float:
        return max(0.0, (deadline - self.now()) / self.speed)

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(self.real_seconds_until(deadline))
