"""Working days and working time of a site: pure, from data handed in.

China's official calendar (holidays, and the weekend days that become working days, 调休)
comes in as ``OfficialCalendar`` data, built outside the core from the chinese-calendar
package; the site's own additions override it; for a year that neither covers, Monday to
Friday is assumed and ``covered()`` says so, so the engine can warn.

A 调休 working weekend day follows the schedule of the weekday it makes up for (the weekday off
of the same holiday it is worked in exchange for): ``schedule_weekday`` gives that weekday,
from the site's explicit ``follows`` first, then the official pairing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the core reads the site model; it never loads files itself
    from ..config import Calendar as SiteCalendar


@dataclass(frozen=True)
class OfficialCalendar:
    """Days that differ from Monday-Friday in the official calendar, and the years known."""

    exceptions: dict[date, bool] = field(default_factory=dict)  # day -> is a working day
    years: frozenset[int] = frozenset()
    # A working weekend day (调休) -> the weekday (1 = Monday ... 7 = Sunday) of the day off it
    # makes up for.
    follows: dict[date, int] = field(default_factory=dict)


class WorkingCalendar:
    def __init__(
        self,
        official: OfficialCalendar,
        *,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        covered_years: Iterable[int] = (),
        follows: Mapping[date, int] | None = None,
    ):
        self._official = official
        self._holidays = frozenset(holidays)
        self._workdays = frozenset(workdays)
        self._covered_years = frozenset(covered_years)
        self._follows = dict(follows or {})

    @classmethod
    def of_site(cls, official: OfficialCalendar, site: SiteCalendar) -> WorkingCalendar:
        """The official calendar with a site's own ``[calendar]`` additions."""
        return cls(
            official,
            holidays=site.holidays,
            workdays=site.workdays,
            covered_years=site.covered_years,
            follows=site.follows,
        )

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

    def schedule_weekday(self, day: date) -> int:
        """The weekday (1 = Monday ... 7 = Sunday) whose schedule ``day`` follows (which
        windows must be staffed: ``staff_weekdays``): its own, except that a 调休 working weekend
        day follows the weekday it makes up for, as the site's ``follows`` names it or else as
        the official calendar pairs it. A working weekend day neither names keeps its own."""
        if day in self._follows:
            return self._follows[day]
        if day.year in self._official.years and day in self._official.follows:
            return self._official.follows[day]
        return day.isoweekday()

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
