"""Working days and working time of a site: pure, from data handed in.

China's official calendar (holidays, and the weekend days that become working days, 调休)
comes in as ``OfficialCalendar`` data, built outside the core from the chinese-calendar
package; the site's own additions override it; for a year that neither covers, Monday to
Friday is assumed and ``covered()`` says so, so the engine can warn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class OfficialCalendar:
    """Days that differ from Monday-Friday in the official calendar, and the years known."""

    exceptions: dict[date, bool] = field(default_factory=dict)  # day -> is a working day
    years: frozenset[int] = frozenset()


class WorkingCalendar:
    def __init__(
        self,
        official: OfficialCalendar,
        *,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        covered_years: Iterable[int] = (),
    ):
        self._official = official
        self._holidays = frozenset(holidays)
        self._workdays = frozenset(workdays)
        self._covered_years = frozenset(covered_years)

    def covered(self, day: date) -> bool:
        return day.year in self._official.years or day.year in self._covered_years

    def is_working_day(self, day: date) -> bool:
        if day in self._holidays:
            return False
        if day in self._workdays:
            return True
        if day.year in self._official.years and day in self._official.exceptions:
            return self._official.exceptions[day]
        return day.weekday() < 5

    def add_working_days(self, day: date, count: int) -> date:
        """The ``count``-th working day after ``day`` (限时办结, follow-up deadlines)."""
        while count > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count -= 1
        return day


def periods_of(day: date, spans: list[tuple[time, time]], tz: tzinfo) -> list[tuple[float, float]]:
    """The opening periods of a day as epoch-second intervals."""
    return [
        (datetime.combine(day, start, tz).timestamp(), datetime.combine(day, end, tz).timestamp())
        for start, end in spans
    ]


def whole_day(day: date, tz: tzinfo) -> tuple[float, float]:
    """A day from its midnight to the next, as epoch seconds (a 24-hour device's expected time)."""
    return (
        datetime.combine(day, time.min, tz).timestamp(),
        datetime.combine(day + timedelta(days=1), time.min, tz).timestamp(),
    )


def overlap(periods: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end) that fall within the periods."""
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in periods)


def after_working_seconds(periods: list[tuple[float, float]], start: float, seconds: float) -> float | None:
    """The moment at which ``seconds`` of working time have passed since ``start``, or None
    if that does not happen within these periods."""
    remaining = seconds
    for a, b in periods:
        if b <= start:
            continue
        begin = max(a, start)
        if begin + remaining <= b:
            return begin + remaining
        remaining -= b - begin
    return None
