"""``hallwatch check-config``: validate site configuration files, thin over ``config``.

Exit codes: 0 valid (warnings are printed), 2 a file is invalid (the message names the file,
the field and the problem). In Chinese unless ``--lang en``: each of the configuration's
problems carries both texts from where it is found (``config.Problem``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime

from ..config import ConfigError, Problem, expand_config_paths, load_sites
from ..core.calendar import WorkingCalendar
from .common import EXIT_CONFIG, EXIT_OK, Handler, add_lang_option


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    check = sub.add_parser("check-config", help="validate site configuration files")
    check.add_argument("files", nargs="+", help="site TOML files, or county files that include them")
    add_lang_option(check)
    return {"check-config": cmd_check_config}


def cmd_check_config(args: argparse.Namespace) -> int:
    zh = args.lang == "zh"
    try:
        files = expand_config_paths(args.files)
        sites = load_sites(files)
    except ConfigError as err:
        if not zh:
            print(err, file=sys.stderr)
        for problem in err.problems if zh else ():
            print(f"{err.path}：{problem.zh}", file=sys.stderr)
        return EXIT_CONFIG
    from ..calendar import official_calendar, uncovered_years

    this_year = datetime.now().year
    official = official_calendar()
    known = sorted(official.years)
    for path, site in zip(files, sites):
        if zh:
            print(
                f"{path}：正确：站点 {site.id}（{site.name}）：{len(site.services)} 项业务，"
                f"{len(site.windows)} 个窗口，{len(site.devices)} 台设备，{len(site.staff)} 名工作人员"
            )
        else:
            print(
                f"{path}: ok: site {site.id} ({site.name}): {len(site.services)} services, "
                f"{len(site.windows)} windows, {len(site.devices)} devices, {len(site.staff)} staff"
            )
        warnings = list(site.warnings())
        if any(w.staff_weekdays for w in site.windows):
            calendar = WorkingCalendar.of_site(official, site.calendar)
            for day in site.calendar.workdays:
                if day.isoweekday() >= 6 and calendar.schedule_weekday(day) == day.isoweekday():
                    warnings.append(_unpaired_workday(day))
        missing = uncovered_years(site, [this_year, this_year + 1])
        if missing:
            years = ", ".join(str(y) for y in missing)
            warnings.append(
                Problem(
                    f"calendar: no official working days for {years} (chinese-calendar knows "
                    f"{known[0]}-{known[-1]}; add the year's holidays and workdays to [calendar] and list it in "
                    f"covered_years): the engine assumes Monday-Friday for those years",
                    f"calendar：没有 {years} 年的法定节假日和调休（内置日历包含 {known[0]}-{known[-1]} 年）："
                    f"请把这一年的 holidays 和 workdays 写进 [calendar] 并列入 covered_years，"
                    f"否则这一年按星期一至星期五上班计算",
                )
            )
        for warning in warnings:
            print(f"{path}：提醒：{warning.zh}" if zh else f"{path}: warning: {warning}")
    return EXIT_OK


WEEKDAYS_ZH = "一二三四五六日"


def _unpaired_workday(day: date) -> Problem:
    return Problem(
        f"calendar.workdays: {day.isoformat()} is a working "
        f"{day.strftime('%A')} that follows no weekday: windows with staff_weekdays treat it as "
        f"weekday {day.isoweekday()}; name the weekday it makes up for in [calendar].follows "
        f"(e.g. follows = {{ {day.isoformat()} = 5 }})",
        f"calendar.workdays：{day.isoformat()} 是调休上班的星期{WEEKDAYS_ZH[day.isoweekday() - 1]}，"
        f"没有写明按星期几安排：设了 staff_weekdays 的窗口按星期 {day.isoweekday()} 安排；"
        f"请在 [calendar] 的 follows 里写明它补的是星期几（如 follows = {{ {day.isoformat()} = 5 }}）",
    )
