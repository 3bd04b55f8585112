"""``hallwatch simulate``: a working day of a hall against the engine, over MQTT (thin over
``window_agents.simulator``).

What it prints for people is Chinese unless ``--lang en``; its count of the day ends the output
as JSON, in either language, for scripts.

Exit codes: 0 the day ran or was stopped by Ctrl-C or SIGTERM (its devices signed off, nothing
more printed), 2 bad configuration or arguments, 3 the broker unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from datetime import datetime

import aiomqtt

from window_agents.simulator import COUNT_WORDS, Simulation, Tally, default_start, local_time

from ..config import ConfigError, load_site
from ..shells.mqtt import BrokerUrlError, parse_broker_url
from .common import (
    EXIT_BROKER,
    EXIT_OK,
    Handler,
    add_broker_options,
    add_lang_option,
    fail,
    parse_time,
    report,
    time_of_day,
)


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    parser = sub.add_parser("simulate", help="a working day of a hall against the engine, over MQTT")
    parser.add_argument("--config", required=True, help="site TOML file")
    add_broker_options(parser, broker_help="mqtt://host:port or mqtts://..., the engine's broker")
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real second")
    parser.add_argument(
        "--start-at", type=parse_time, default=None, help="ISO-8601 moment the day starts (default 08:20 today)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arrivals-per-hour", type=float, default=60.0)
    parser.add_argument(
        "--closing",
        metavar="HH:MM",
        type=time_of_day,
        default=None,
        help="end the day early: from this time no number is taken and no ticket called; windows "
        "finish the visit in hand and sign out",
    )
    parser.add_argument(
        "--engine-clock-set",
        action="store_true",
        help="the engine already runs with this --start-at and --speed (as `make demo` starts it): "
        "leave out the reminder to start it so",
    )
    add_lang_option(parser)
    return {"simulate": cmd_simulate}


async def simulate_until_stopped(sim: Simulation) -> Tally | None:
    """The day, or None when Ctrl-C or SIGTERM stopped it: the simulation is cancelled, its
    devices sign off, and the stop is an ordinary end, not an error with a traceback."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await sim.run()
    except asyncio.CancelledError:
        return None


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        site = load_site(args.config)
        broker = parse_broker_url(args.broker, ca_file=args.ca_file)
    except ConfigError as err:
        return report(err)
    except BrokerUrlError as err:
        return fail("simulate", err)
    start = args.start_at if args.start_at is not None else default_start(site, datetime.now().astimezone())
    sim = Simulation(
        site,
        broker,
        start_at=start,
        speed=args.speed,
        seed=args.seed,
        arrivals_per_hour=args.arrivals_per_hour,
        closing_at=local_time(site, start, args.closing) if args.closing else None,
        root=args.root,
        lang=args.lang,
    )
    begins = datetime.fromtimestamp(start, site.tz).isoformat()
    if args.lang == "zh":
        reminder = "" if args.engine_clock_set else "；请用同样的 --start-at 和 --speed 启动排队服务器"
        print(f"模拟 {site.name} 的一天：自 {begins} 起，{args.speed:g} 倍速" + reminder, flush=True)
    else:
        reminder = "" if args.engine_clock_set else "; start the engine with --start-at and the same --speed"
        print(f"simulating {site.name} from {begins} at x{args.speed:g}" + reminder, flush=True)
    try:
        tally = asyncio.run(simulate_until_stopped(sim))
    except aiomqtt.MqttError as err:
        return fail("simulate", f"broker {broker.describe()}: {err}", EXIT_BROKER)
    if tally is not None:
        if args.lang == "zh":
            print(f"模拟结束：{tally.describe(tuple(COUNT_WORDS['zh']), 'zh', '，')}")
        print(json.dumps(tally.counts(), ensure_ascii=False))  # the last line, for scripts
    return EXIT_OK
