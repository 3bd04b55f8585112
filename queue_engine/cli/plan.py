"""``hallwatch plan``: how many windows to open each hour of a peak day (增设服务窗口).

Runs the pure core in simulated time (``queue_engine.planning``) and prints, per service and
hour, the recommended windows, the simulated mean wait and Erlang C's answer; then the hall's
total per hour. See docs/planning.md. Exit 0 printed, 2 bad configuration, arrivals or arguments.
"""

from __future__ import annotations

import argparse
import unicodedata

from ..config import ConfigError, load_site
from ..planning import ArrivalsError, ServiceTimes, plan_service, read_arrivals, summarise
from .common import EXIT_OK, Handler, fail, positive, report


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
    return {"plan": cmd_plan}


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cell(text: str, width: int, right: bool = True) -> str:
    pad = " " * max(0, width - _width(text))
    return pad + text if right else text + pad


def _table(header: list[tuple[str, str]], rows: list[list[str]]) -> list[str]:
    widths = [max(_width(zh), _width(en), *(_width(r[i]) for r in rows)) for i, (zh, en) in enumerate(header)]
    lines = [
        "  ".join(_cell(zh, w, i > 0) for i, ((zh, _), w) in enumerate(zip(header, widths))),
        "  ".join(_cell(en, w, i > 0) for i, ((_, en), w) in enumerate(zip(header, widths))),
    ]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(_cell(c, w, i > 0) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    return lines


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

    distribution = "指数分布 exponential" if times.kind == "exponential" else f"对数正态 log-normal, CV {times.cv:g}"
    hours = "全天 every hour of the CSV" if args.all_day else ", ".join(site.hours.periods)
    out = [
        f"窗口测算 capacity plan: {site.name} ({site.id}), {args.arrivals}",
        f"目标平均等候 target mean wait: {args.target_wait:g} 分钟 min; 办理时长 service times: {distribution}; "
        f"每个数字来自 {args.replications} 个模拟日 simulated days (seed {args.seed})",
        f"窗口服务时段 windows serve: {hours}; 等候按服务时段计 waits count in those hours"
        + (
            ""
            if args.all_day
            else " (休息时段取号的群众开门后办理 citizens arriving in a break are served when the hall reopens)"
        ),
        "",
    ]
    header = [
        ("时段", "hour"),
        ("到达", "arrivals"),
        ("建议窗口", "windows"),
        ("模拟平均等候", "sim wait min"),
        ("Erlang C 窗口", "Erlang C windows"),
        ("Erlang C 等候", "Erlang C wait min"),
    ]
    unmet = False
    for plan in plans:
        out.append(
            f"{plan.name} [{plan.service}]: 平均办理 {plan.service_min:g} 分钟 mean service {plan.service_min:g} min"
        )
        rows = []
        for hour in plan.hours:
            closed = hour.open_min <= 0
            mark = "" if hour.met else " *"
            unmet |= not hour.met
            rows.append(
                [
                    f"{hour.hour:02d}:00-{hour.hour + 1:02d}:00",
                    _count(hour.arrivals),
                    "休息 closed" if closed else f"{hour.windows}{mark}",
                    _minutes(hour.sim_wait_min),
                    "-" if hour.erlang_windows is None else str(hour.erlang_windows),
                    "-" if closed else ("∞" if hour.erlang_wait_min is None else _minutes(hour.erlang_wait_min)),
                ]
            )
        out += _table(header, rows)
        window_hours = sum(h.windows * h.open_min / 60 for h in plan.hours)
        erlang_hours = sum((h.erlang_windows or 0) * h.open_min / 60 for h in plan.hours)
        out.append(
            f"全天 day: {plan.citizens:.0f} 人 citizens, 平均等候 mean wait {_minutes(plan.mean_wait_min)} 分钟 min, "
            f"窗口工时 window-hours {window_hours:g} (Erlang C {erlang_hours:g})"
        )
        out.append("")
    if len(plans) > 1:
        out.append("全厅合计 whole hall (各业务专用窗口之和 the sum of the services' windows):")
        out += _table(
            [("时段", "hour"), ("建议窗口", "windows")],
            [[f"{hour:02d}:00-{hour + 1:02d}:00", str(count)] for hour, count in summarise(plans).items()],
        )
        out.append("")
    if unmet:
        out.append(
            f"* 即使开 {args.max_windows} 个窗口也达不到目标 not even {args.max_windows} windows meet the target"
        )
    print("\n".join(out))
    return EXIT_OK
