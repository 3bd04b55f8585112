"""China's official working calendar, from the chinese-calendar package, as data for the core.

Which weekday a 调休 working weekend day makes up for: the State Council's notices move days
off (the package's ``in_lieu_days``, e.g. Wednesday 2026-10-07) to working weekend days (its
``workdays`` on a Saturday or Sunday, e.g. Saturday 2026-10-10), each marked with the holiday
it belongs to. Within one holiday the n-th working weekend day makes up for the n-th day off,
in date order (the notices give no pairing of their own; this is the convention schools and
offices follow: 调休上班的周六按所调换的那一天的课表/排班). A working weekend day the data
leaves unpaired keeps its own weekday; a site names the weekday in ``[calendar].follows``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from .core.calendar import OfficialCalendar


def official_calendar() -> OfficialCalendar:
    """Holidays on weekdays and working weekend days (调休) for the years the package knows."""
    try:
        import chinese_calendar
        from chinese_calendar import constants
    except ImportError:  # pragma: no cover - a declared dependency; Monday-Friday otherwise
        return OfficialCalendar()
    exceptions: dict[date, bool] = {}
    for day in constants.holidays:
        if day.weekday() < 5:
            exceptions[day] = False
    for day in constants.workdays:
        if day.weekday() >= 5:
            exceptions[day] = True
    years = {d.year for d in constants.holidays} | {d.year for d in constants.workdays}
    first, last = min(years), max(years)
    del chinese_calendar
    weekend_workdays = {day: name for day, name in constants.workdays.items() if day.weekday() >= 5}
    return OfficialCalendar(
        exceptions=exceptions,
        years=frozenset(range(first, last + 1)),
        follows=pair_make_up_days(weekend_workdays, dict(constants.in_lieu_days)),
    )


# Two days of one holiday are at most this far apart (a New Year's 调休 may fall in December).
HOLIDAY_REACH = timedelta(days=60)


def pair_make_up_days(weekend_workdays: dict[date, str], days_off: dict[date, str]) -> dict[date, int]:
    """Each working weekend day -> the weekday (1-7) of the day off it makes up for: within
    each holiday (its name, and days no further apart than HOLIDAY_REACH), the n-th working
    day pairs with the n-th day off, in date order."""
    by_name: dict[str, list[tuple[date, bool]]] = defaultdict(list)
    for day, name in weekend_workdays.items():
        by_name[name].append((day, True))
    for day, name in days_off.items():
        by_name[name].append((day, False))
    follows: dict[date, int] = {}
    for days in by_name.values():
        days.sort()
        start = 0
        for i in range(1, len(days) + 1):
            if i == len(days) or days[i][0] - days[i - 1][0] > HOLIDAY_REACH:
                holiday = days[start:i]
                worked = [day for day, is_workday in holiday if is_workday]
                off = [day for day, is_workday in holiday if not is_workday]
                follows.update((w, o.isoweekday()) for w, o in zip(worked, off))
                start = i
    return follows


def uncovered_years(site, years: list[int]) -> list[int]:
    """The years among ``years`` for which neither the official data nor the site's
    ``[calendar].covered_years`` give the working days."""
    known = official_calendar().years
    return [y for y in years if y not in known and y not in set(site.calendar.covered_years)]
