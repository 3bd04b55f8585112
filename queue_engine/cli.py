"""The ``hallwatch`` command: a thin shell over the library.

Exit codes: 0 ok, 2 bad configuration or arguments, 3 broker unreachable or refusing the
engine, 4 store failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import datetime

from . import cli_deploy
from .config import ConfigError, load_sites

EXIT_CONFIG = 2
EXIT_BROKER = 3
EXIT_STORE = 4

# Environment variables that stand in for options (documented in the README).
ENV = {
    "config": "HALLWATCH_CONFIG",
    "broker": "HALLWATCH_BROKER",
    "db": "HALLWATCH_DB",
    "ca_file": "HALLWATCH_CA_FILE",
    "root": "HALLWATCH_TOPIC_ROOT",
    "client_id": "HALLWATCH_CLIENT_ID",
    "http": "HALLWATCH_HTTP",
}


def _configs(values: list[str] | None) -> list[str]:
    if values:
        return values
    from_env = os.environ.get(ENV["config"])
    return from_env.split(os.pathsep) if from_env else []


def parse_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time, e.g. 2026-11-25T09:00:00+08:00") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. +08:00")
    return moment.timestamp()


def _listen_address(text: str) -> tuple[str, int]:
    from .web import ListenAddressError, parse_listen

    try:
        return parse_listen(text)
    except ListenAddressError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class HttpUnavailable(RuntimeError):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hallwatch", description="Queueing and window supervision for service halls.")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check-config", help="validate site configuration files")
    check.add_argument("files", nargs="+", help="site TOML files, or county files that include them")

    engine = sub.add_parser("engine", help="run the queue engine")
    engine.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help=f"site TOML file; repeat for several sites (env {ENV['config']}, ':'-separated)",
    )
    engine.add_argument(
        "--broker",
        default=os.environ.get(ENV["broker"], "mqtt://127.0.0.1:1883"),
        help=f"mqtt://[user:pass@]host:port or mqtts://... (env {ENV['broker']})",
    )
    engine.add_argument(
        "--ca-file", default=os.environ.get(ENV["ca_file"]), help=f"CA certificate for mqtts:// (env {ENV['ca_file']})"
    )
    engine.add_argument(
        "--db", default=os.environ.get(ENV["db"], "hallwatch.db"), help=f"SQLite file (env {ENV['db']})"
    )
    engine.add_argument(
        "--root", default=os.environ.get(ENV["root"], "hallwatch"), help=f"MQTT topic root (env {ENV['root']})"
    )
    engine.add_argument(
        "--client-id",
        default=os.environ.get(ENV["client_id"], "hallwatch-engine"),
        help=f"MQTT client id of the engine's persistent session (env {ENV['client_id']}); "
        "a broker with use_username_as_clientid, as in production, uses the user name instead",
    )
    engine.add_argument(
        "--start-at",
        type=parse_time,
        default=None,
        help="run the engine's clock from this ISO-8601 moment (simulation)",
    )
    engine.add_argument("--speed", type=float, default=1.0, help="clock speed factor (simulation)")
    engine.add_argument(
        "--sync",
        choices=["full", "normal"],
        default="full",
        help="SQLite synchronous mode: full survives power loss, normal only a crash",
    )
    engine.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        help="give up if the broker cannot be reached at start-up within this many seconds",
    )
    engine.add_argument(
        "--http",
        metavar="HOST:PORT",
        type=_listen_address,
        default=os.environ.get(ENV["http"]),
        help=f"serve /metrics and /healthz on this address, e.g. 127.0.0.1:9108 (env {ENV['http']})",
    )
    engine.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    cli_deploy.add_engine_options(engine)
    COMMANDS.update(cli_deploy.add_commands(sub))
    from .cli_reports import add_parsers as add_report_parsers

    add_report_parsers(sub)
    from window_agents.cli import register as register_agents  # hallwatch agent KIND ...

    register_agents(sub, COMMANDS)
    from window_agents.simulator import register as register_simulator  # hallwatch simulate

    register_simulator(sub, COMMANDS)
    from .cli_plan import add_plan_parser, cmd_plan  # hallwatch plan (capacity planning)

    add_plan_parser(sub)
    COMMANDS["plan"] = cmd_plan
    return parser


def cmd_check_config(args) -> int:
    try:
        files = cli_deploy.expand(args.files)
        sites = load_sites(files)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    from .calendar import official_calendar, uncovered_years

    this_year = datetime.now().year
    known = sorted(official_calendar().years)
    for path, site in zip(files, sites):
        print(
            f"{path}: ok: site {site.id} ({site.name}): {len(site.services)} services, "
            f"{len(site.windows)} windows, {len(site.devices)} devices, {len(site.staff)} staff"
        )
        missing = uncovered_years(site, [this_year, this_year + 1])
        if missing:
            years = ", ".join(str(y) for y in missing)
            print(
                f"{path}: warning: calendar: no official working days for {years} (chinese-calendar knows "
                f"{known[0]}-{known[-1]}; add the year's holidays and workdays to [calendar] and list it in "
                f"covered_years): the engine assumes Monday-Friday for those years"
            )
    return 0


def cmd_engine(args) -> int:
    from .app import BrokerUnreachable, EngineApp, StoreFailed
    from .shells.clock import Clock
    from .shells.mqtt import BrokerUrlError, parse_broker_url

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    files = _configs(args.config)
    if not files:
        print(f"hallwatch engine: no site configuration (use --config FILE or {ENV['config']})", file=sys.stderr)
        return EXIT_CONFIG
    try:
        sites = cli_deploy.engine_sites(files, args)
        broker = parse_broker_url(args.broker, ca_file=args.ca_file)
        clock = Clock(start_at=args.start_at, speed=args.speed)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    except (BrokerUrlError, ValueError) as err:
        print(f"hallwatch engine: {err}", file=sys.stderr)
        return EXIT_CONFIG
    client_id = cli_deploy.engine_client_id(args)
    warning = cli_deploy.client_id_warning(client_id, broker.username)
    if warning:
        logging.getLogger("hallwatch.engine").warning(warning)
    app = EngineApp(
        sites,
        broker=broker,
        db_path=args.db,
        clock=clock,
        root=args.root,
        client_id=client_id,
        synchronous=args.sync.upper(),
        connect_timeout=args.connect_timeout,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # A plain handler, not loop.add_signal_handler: under a burst the loop's wakeup pipe
        # can be full, and asyncio then loses the signal number written to it; a Python
        # handler always runs, and the stop it schedules is picked up on the next iteration.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(app.stop))
        runner = None
        if args.http:
            from .web import start_http

            try:
                runner = await start_http(app, *args.http)
            except OSError as err:
                raise HttpUnavailable(f"cannot serve HTTP on {args.http[0]}:{args.http[1]}: {err}") from None
        try:
            await app.run()
        finally:
            if runner is not None:
                await runner.cleanup()

    try:
        asyncio.run(main())
    except BrokerUnreachable as err:
        print(f"hallwatch engine: {err}", file=sys.stderr)
        return EXIT_BROKER
    except StoreFailed as err:
        print(f"hallwatch engine: {err}", file=sys.stderr)
        return EXIT_STORE
    except HttpUnavailable as err:
        print(f"hallwatch engine: {err}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


COMMANDS = {"check-config": cmd_check_config, "engine": cmd_engine}
from .cli_reports import COMMANDS as REPORT_COMMANDS  # noqa: E402 (report, audit)

COMMANDS.update(REPORT_COMMANDS)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
