"""``hallwatch check-config``: validate site configuration files, thin over ``config``.

Exit codes: 0 valid (warnings are printed), 2 a file is invalid (the message names the file,
the field and the problem).
"""

from __future__ import annotations

import argparse
from datetime import datetime

from ..config import ConfigError, expand_config_paths, load_sites
from ..core.calendar import WorkingCalendar
from .common import EXIT_OK, Handler, report


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    check = sub.add_parser("check-config", help="validate site configuration files")
    check.add_argument("files", nargs="+", help="site TOML files, or county files that include them")
    return {"check-config": cmd_check_config}


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        files = expand_config_paths(args.files)
        sites = load_sites(files)
    except ConfigError as err:
        return report(err)
    from ..calendar import official_calendar, uncovered_years

    this_year = datetime.now().year
    official = official_calendar()
    known = sorted(official.years)
    for path, site in zip(files, sites):
        print(
            f"{path}: ok: site {site.id} ({site.name}): {len(site.services)} services, "
            f"{len(site.windows)} windows, {len(site.devices)} devices, {len(site.staff)} staff"
        )
        for warning in site.warnings():
            print(f"{path}: warning: {warning}")
        if any(w.staff_weekdays for w in site.windows):
            calendar = WorkingCalendar.of_site(official, site.calendar)
            for day in site.calendar.workdays:
                if day.isoweekday() >= 6 and calendar.schedule_weekday(day) == day.isoweekday():
                    print(
                        f"{path}: warning: calendar.workdays: {day.isoformat()} is a working "
                        f"{day.strftime('%A')} that follows no weekday: windows with staff_weekdays treat it as "
                        f"weekday {day.isoweekday()}; name the weekday it makes up for in [calendar].follows "
                        f"(e.g. follows = {{ {day.isoformat()} = 5 }})"
                    )
        missing = uncovered_years(site, [this_year, this_year + 1])
        if missing:
            years = ", ".join(str(y) for y in missing)
            print(
                f"{path}: warning: calendar: no official working days for {years} (chinese-calendar knows "
                f"{known[0]}-{known[-1]}; add the year's holidays and workdays to [calendar] and list it in "
                f"covered_years): the engine assumes Monday-Friday for those years"
            )
    return EXIT_OK
