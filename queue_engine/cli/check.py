"""``hallwatch check-config``: validate site configuration files, thin over ``config``.

Exit codes: 0 valid (warnings are printed), 2 a file is invalid (the message names the file,
the field and the problem). In Chinese unless ``--lang en``: the configuration's problems are
worded in English where they are found (the engine logs them so), and put into Chinese here.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date, datetime

from ..config import ConfigError, expand_config_paths, load_sites
from ..core.calendar import WorkingCalendar
from .common import EXIT_CONFIG, EXIT_OK, Handler, add_lang_option


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    check = sub.add_parser("check-config", help="validate site configuration files")
    check.add_argument("files", nargs="+", help="site TOML files, or county files that include them")
    add_lang_option(check)
    return {"check-config": cmd_check_config}


def _or(choices: str) -> str:
    return choices.replace(" or ", " 或 ").replace(", ", "、")


# The configuration's problems and warnings, as config.py and pydantic word them -> Chinese.
# A problem not listed here is printed as it is worded.
PROBLEMS_ZH: list[tuple[re.Pattern[str], str | object]] = [
    (re.compile(p), zh)
    for p, zh in [
        (r"required field is missing", "缺少这一项（必填）"),
        (r"unknown field \(not allowed here\)", "没有这个配置项（此处不能写它，请检查拼写）"),
        (
            r"unknown field \(a deployment file has only name and include\)",
            "没有这个配置项（县文件只有 name 和 include）",
        ),
        (r"Input should be greater than or equal to (\S+)", r"应不小于 \1"),
        (r"Input should be less than or equal to (\S+)", r"应不大于 \1"),
        (r"Input should be greater than (\S+)", r"应大于 \1"),
        (r"Input should be less than (\S+)", r"应小于 \1"),
        (r"Input should be a valid integer.*", "应为整数"),
        (r"Input should be a valid number.*", "应为数字"),
        (r"Input should be a valid boolean.*", "应为 true 或 false"),
        (r"Input should be a valid string", "应为文字（用引号括起来）"),
        (r"Input should be a valid list", '应为列表，如 ["a", "b"]'),
        (r"Input should be a valid date.*", "应为日期，如 2027-02-06"),
        (r"Input should be a valid dictionary.*", "应为一节或 { 键 = 值 }"),
        (r"Input should be (.+)", lambda m: f"应为 {_or(m[1])} 之一"),
        (r"String should match pattern '(.+)'", r"格式不对（应符合 \1）"),
        (r"String should have at least (\d+) characters?", r"至少 \1 个字符"),
        (r"List should have at least (\d+) items?.*", r"至少要有 \1 项"),
        (r"duplicate (.+)", r"与前面的重复：\1"),
        (r"unknown service (.+)", r"没有这项业务：\1"),
        (r"unknown window (.+)", r"没有这个窗口：\1"),
        (r"no window serves (.+)", r"没有窗口办理这项业务：\1"),
        (r"unknown timezone (.+)", r"不认识的时区：\1"),
        (r"site (.+) is already defined in (.+)", r"站点 \1 已在 \2 中定义"),
        (r"(.+) is not a time of day HH:MM", r"\1 不是时刻 HH:MM"),
        (r"at least one opening period is required", "至少要有一个工作时段"),
        (r"(.+) is not a period HH:MM-HH:MM", r"\1 不是时段 HH:MM-HH:MM"),
        (r"(.+) ends before it starts", r"\1 结束早于开始"),
        (r"(.+) overlaps or precedes the period before it", r"\1 与前一时段重叠或在它之前"),
        (r"listed both as holiday and workday: (.+)", r"既是放假日又是补班日：\1"),
        (r"follows names days off \(holidays\): (.+)", r"follows 写了放假的日子（holidays）：\1"),
        (
            r"a window that is not comprehensive must list the services it serves",
            "非综合受理窗口须写明可办业务 services",
        ),
        (r"a (\w+) device must name its window", r"\1 设备须写明所属窗口 window"),
        (r"a (\w+) device belongs to no window \(remove (.+)\)", r"\1 设备不属于窗口（请删去 \2）"),
        (
            r"a 承诺件 must state its promise in numbers: .*",
            "承诺件须写明承诺办结的工作日数：promise_working_days = N",
        ),
        (
            r"a 即办件 is done on the spot: .*",
            '即办件当场办结：请删去 promise_working_days，或改为 item_type = "承诺件"',
        ),
        (
            r"(.+) is not a telephone number: .*",
            r'\1 不是电话号码：数字和 -，可加“转”和分机号，如 "0377-65123456" 或 "12345"',
        ),
        (r"cannot read file: (.+)", r"无法读取文件：\1"),
        (r"file is not UTF-8 \(byte (\d+)\); save it as UTF-8", r"文件不是 UTF-8 编码（第 \1 字节）；请另存为 UTF-8"),
        (r"not valid TOML: (.+)", r"不是有效的 TOML：\1"),
        (r"(.+): no such file \(paths are relative to (.+)\)", r"\1：没有这个文件（路径相对于 \2）"),
        (r"(.+) matches no file in (.+)", r"\1 在 \2 中没有匹配的文件"),
        (r"(.+) includes (.+) again \(a loop\)", r"\1 再次包含 \2（循环包含）"),
        (r"(.+) is included twice", r"\1 被包含了两次"),
        (r"time_limit (.+) reads as 即办 but item_type is 承诺件", r"time_limit \1 是即办，但 item_type 是承诺件"),
        (
            r"time_limit (.+) promises working days but item_type is 即办件",
            r"time_limit \1 写了工作日，但 item_type 是即办件",
        ),
        (
            r"time_limit (.+) says (\d+) working days but promise_working_days = (\d+)",
            r"time_limit \1 写的是 \2 个工作日，但 promise_working_days = \3",
        ),
        (
            r"no camera watches (\S+) \((.+?)\), so .*",
            r"没有摄像头看着 \1（\2），无法核实是否有人在岗（一直是“无法核实”），也永远不会报“窗口空岗”；"
            r'请给它配一个摄像头（[[devices]] kind = "camera"，window = "\1"）',
        ),
    ]
]
LOCATION = re.compile(r"(\(top level\)|[a-z_]+(?:\[\d+\])?(?:\.[\w-]+(?:\[\d+\])?)*): (.*)", re.S)


def chinese(problem: str) -> str:
    """``field.path: problem`` (or a problem of the whole file) in Chinese."""
    match = LOCATION.fullmatch(problem)
    field, text = (match[1], match[2]) if match else (None, problem)
    for pattern, zh in PROBLEMS_ZH:
        found = pattern.fullmatch(text)
        if found:
            text = zh(found) if callable(zh) else found.expand(zh)  # type: ignore[arg-type]
            break
    return f"配置项 {field}：{text}" if field else text


def cmd_check_config(args: argparse.Namespace) -> int:
    zh = args.lang == "zh"
    try:
        files = expand_config_paths(args.files)
        sites = load_sites(files)
    except ConfigError as err:
        if not zh:
            print(err, file=sys.stderr)
        for problem in err.problems if zh else ():
            print(f"{err.path}：{chinese(problem)}", file=sys.stderr)
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
                    warnings.append(_unpaired_workday(day, zh))
        missing = uncovered_years(site, [this_year, this_year + 1])
        if missing:
            years = ", ".join(str(y) for y in missing)
            warnings.append(
                f"calendar：没有 {years} 年的法定节假日和调休（内置日历包含 {known[0]}-{known[-1]} 年）：请把这一年的 "
                f"holidays 和 workdays 写进 [calendar] 并列入 covered_years，否则这一年按星期一至星期五上班计算"
                if zh
                else f"calendar: no official working days for {years} (chinese-calendar knows "
                f"{known[0]}-{known[-1]}; add the year's holidays and workdays to [calendar] and list it in "
                f"covered_years): the engine assumes Monday-Friday for those years"
            )
        for warning in warnings:
            print(f"{path}：提醒：{chinese(warning)}" if zh else f"{path}: warning: {warning}")
    return EXIT_OK


WEEKDAYS_ZH = "一二三四五六日"


def _unpaired_workday(day: date, zh: bool) -> str:
    if zh:
        return (
            f"calendar.workdays：{day.isoformat()} 是调休上班的星期{WEEKDAYS_ZH[day.isoweekday() - 1]}，"
            f"没有写明按星期几安排：设了 staff_weekdays 的窗口按星期 {day.isoweekday()} 安排；"
            f"请在 [calendar] 的 follows 里写明它补的是星期几（如 follows = {{ {day.isoformat()} = 5 }}）"
        )
    return (
        f"calendar.workdays: {day.isoformat()} is a working "
        f"{day.strftime('%A')} that follows no weekday: windows with staff_weekdays treat it as "
        f"weekday {day.isoweekday()}; name the weekday it makes up for in [calendar].follows "
        f"(e.g. follows = {{ {day.isoformat()} = 5 }})"
    )
