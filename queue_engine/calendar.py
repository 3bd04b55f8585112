"""China's official working calendar, from the chinese-calendar package, as data for the core."""

from __future__ import annotations

from datetime import date

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
    return OfficialCalendar(exceptions=exceptions, years=frozenset(range(first, last + 1)))


def uncovered_years(site, years: list[int]) -> list[int]:
    """The years among ``years`` for which neither the official data nor the site's
    ``[calendar].covered_years`` give the working days."""
    known = official_calendar().years
    return [y for y in years if y not in known and y not in set(site.calendar.covered_years)]
