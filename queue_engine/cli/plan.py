"""``hallwatch plan``: how many windows to open each hour of a peak day (增设服务窗口).

Runs the pure core in simulated time (``queue_engine.planning``) and prints, per service and
hour, the recommended windows, the simulated mean wait and Erlang C's answer; then the hall's
total per hour, in Chinese unless ``--lang en``. See docs/planning.md. Exit 0 printed, 2 bad
configuration, arrivals or arguments.
"""

from __future__ import annotations

import argparse
import unicodedata

from ..config import ConfigError, load_site
from ..planning import ArrivalsError, ServiceTimes, plan_service, read_arrivals, summarise
from .common import EXIT_OK, Handler, add_lang_option, fail, positive, report


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    plan = sub.add_parser("plan", help="recommend the windows to open each hour of a peak day (simulation + Erlang C)")
    plan.add_argument("--config", required=True, metavar="FILE", help="site TOML file")
    plan.add_argument(
        "--arrivals",
        required=True,
        metavar="CSV",
        help="expected arrivals per hour and service: hour,service,arrivals (docs/planning.md)",
    )
    plan.add_argument(
        "--target-wait",
        required=True,
        type=positive(float),
        metavar="MIN",
        help="target mean wait of the citizens of each hour, in minutes",
    )
    plan.add_argument("--service", metavar="CODE", help="plan this service only (default: every service in the CSV)")
    plan.add_argument("--seed", type=int, default=1, help="random seed of the simulation (default 1)")
    plan.add_argument(
        "--replications",
        type=positive(int),
        default=20,
        metavar="N",
        help="simulated days behind each figure (default 20)",
    )
    plan.add_argument(
        "--service-time",
        choices=["exponential", "lognormal"],
        default="exponential",
        help="distribution of service times, with the service's expected_service_min as mean",
    )
    plan.add_argument(
        "--service-cv",
        type=positive(float),
        default=0.5,
        metavar="CV",
        help="coefficient of variation of log-normal service times (default 0.5)",
    )
    plan.add_argument(
        "--max-windows",
        type=positive(int),
        default=30,
        metavar="N",
        help="the most windows one service may open (default 30)",
    )
    plan.add_argument(
        "--all-day",
        action="store_true",
        help="windows may serve at every hour of the CSV (延长服务时间), not only in the opening hours",
    )
    add_lang_option(plan)
    return {"plan": cmd_plan}


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cell(text: str, width: int, right: bool = True) -> str:
    pad = " " * max(0, width - _width(text))
    return pad + text if right else text + pad


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(_width(name), *(_width(r[i]) for r in rows)) for i, name in enumerate(header)]
    lines = ["  ".join(_cell(name, w, i > 0) for i, (name, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(_cell(c, w, i > 0) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    return lines


# The tables' columns, (Chinese, English).
COLUMNS = [
    ("时段", "hour"),
    ("到达人数", "arrivals"),
    ("建议窗口", "windows"),
    ("模拟平均等候(分钟)", "sim wait min"),
    ("Erlang C 窗口", "Erlang C windows"),
    ("Erlang C 等候(分钟)", "Erlang C wait min"),
]
HALL_COLUMNS = [COLUMNS[0], COLUMNS[2]]

# What the command prints, in each language of --lang ({...}: filled in).
WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "窗口测算：{name}（{id}），{arrivals}",
        "assumptions": "目标平均等候：{target} 分钟；办理时长：{distribution}；"
        "每个数字来自 {replications} 个模拟日（随机种子 {seed}）",
        "exponential": "指数分布",
        "lognormal": "对数正态分布，变异系数 {cv}",
        "hours": "窗口服务时段：{hours}；等候按服务时段计",
        "all_day": "全天（CSV 中的每个小时）",
        "break": "（休息时段取号的群众开门后办理）",
        "service": "{name} [{code}]：平均办理 {minutes} 分钟",
        "closed": "休息",
        "day": "全天：{citizens} 人，平均等候 {wait} 分钟，窗口工时 {hours}（Erlang C {erlang}）",
        "hall": "全厅合计（各业务专用窗口之和）：",
        "unmet": "* 即使开 {n} 个窗口也达不到目标",
    },
    "en": {
        "title": "capacity plan: {name} ({id}), {arrivals}",
        "assumptions": "target mean wait: {target} min; service times: {distribution}; "
        "each figure from {replications} simulated days (seed {seed})",
        "exponential": "exponential",
        "lognormal": "log-normal, CV {cv}",
        "hours": "windows serve: {hours}; waits count in those hours",
        "all_day": "every hour of the CSV",
        "break": " (citizens arriving in a break are served when the hall reopens)",
        "service": "{name} [{code}]: mean service {minutes} min",
        "closed": "closed",
        "day": "day: {citizens} citizens, mean wait {wait} min, window-hours {hours} (Erlang C {erlang})",
        "hall": "whole hall (the sum of the services' windows):",
        "unmet": "* not even {n} windows meet the target",
    },
}


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _count(value: float) -> str:
    return f"{value:g}"


def cmd_plan(args: argparse.Namespace) -> int:
    try:
        site = load_site(args.config)
        demand = read_arrivals(args.arrivals, site)
    except (ConfigError, ArrivalsError) as err:
        return report(err)
    services = demand.services()
    if args.service is not None:
        if args.service not in services:
            where = "the site" if site.service(args.service) is None else args.arrivals
            return fail(
                "plan", f"--service {args.service}: no such service in {where} (the CSV has {', '.join(services)})"
            )
        services = [args.service]
    times = ServiceTimes(args.service_time, args.service_cv if args.service_time == "lognormal" else 1.0)
    plans = []
    for code in services:
        try:
            plans.append(
                plan_service(
                    site,
                    code,
                    demand,
                    args.target_wait,
                    replications=args.replications,
                    seed=args.seed,
                    service_times=times,
                    max_windows=args.max_windows,
                    all_day=args.all_day,
                )
            )
        except ValueError as err:
            return fail("plan", err)

    words, lang = WORDS[args.lang], ("zh", "en").index(args.lang)
    distribution = words[times.kind].format(cv=f"{times.cv:g}")
    hours = words["all_day"] if args.all_day else ", ".join(site.hours.periods)
    out = [
        words["title"].format(name=site.name, id=site.id, arrivals=args.arrivals),
        words["assumptions"].format(
            target=f"{args.target_wait:g}", distribution=distribution, replications=args.replications, seed=args.seed
        ),
        words["hours"].format(hours=hours) + ("" if args.all_day else words["break"]),
        "",
    ]
    unmet = False
    for plan in plans:
        out.append(words["service"].format(name=plan.name, code=plan.service, minutes=f"{plan.service_min:g}"))
        rows = []
        for hour in plan.hours:
            closed = hour.open_min <= 0
            mark = "" if hour.met else " *"
            unmet |= not hour.met
            rows.append(
                [
                    f"{hour.hour:02d}:00-{hour.hour + 1:02d}:00",
                    _count(hour.arrivals),
                    words["closed"] if closed else f"{hour.windows}{mark}",
                    _minutes(hour.sim_wait_min),
                    "-" if hour.erlang_windows is None else str(hour.erlang_windows),
                    "-" if closed else ("∞" if hour.erlang_wait_min is None else _minutes(hour.erlang_wait_min)),
                ]
            )
        out += _table([c[lang] for c in COLUMNS], rows)
        window_hours = sum(h.windows * h.open_min / 60 for h in plan.hours)
        erlang_hours = sum((h.erlang_windows or 0) * h.open_min / 60 for h in plan.hours)
        out.append(
            words["day"].format(
                citizens=f"{plan.citizens:.0f}",
                wait=_minutes(plan.mean_wait_min),
                hours=f"{window_hours:g}",
                erlang=f"{erlang_hours:g}",
            )
        )
        out.append("")
    if len(plans) > 1:
        out.append(words["hall"])
        out += _table(
            [c[lang] for c in HALL_COLUMNS],
            [[f"{hour:02d}:00-{hour + 1:02d}:00", str(count)] for hour, count in summarise(plans).items()],
        )
        out.append("")
    if unmet:
        out.append(words["unmet"].format(n=args.max_windows))
    print("\n".join(out))
    return EXIT_OK
