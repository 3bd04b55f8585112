"""``hallwatch county``: the county supervision service, thin over ``queue_engine.county``.

Exit codes: 0 stopped cleanly, 2 bad configuration or arguments (also an ``--http`` address
that cannot be listened on), 3 broker unreachable or refusing the service, 4 store failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from ..config import ConfigError, load_configs
from .common import (
    EXIT_BROKER,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_STORE,
    Handler,
    add_broker_options,
    add_config_option,
    argument_type,
    config_files,
    fail,
    parse_time,
    report,
)
from .engine import _listen_address, add_http_options, http_settings


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    county = sub.add_parser(
        "county", help="run the county supervision service: every hall's alerts and states, on the county broker"
    )
    add_config_option(county)
    add_broker_options(county, broker_help="the county broker, mqtt://hallwatch-county:PASSWORD@host:port")
    county.add_argument("--db", default="hallwatch-county.db", help="the county service's own SQLite file")
    county.add_argument(
        "--client-id",
        default="hallwatch-county",
        help="MQTT client id of the service's persistent session (production brokers use the user name)",
    )
    county.add_argument(
        "--http",
        metavar="HOST:PORT",
        type=argument_type(_listen_address),
        help="serve the county console and its API on this address, e.g. 127.0.0.1:9110",
    )
    add_http_options(county)
    county.add_argument("--start-at", type=parse_time, default=None, help="run the clock from this moment (simulation)")
    county.add_argument("--speed", type=float, default=1.0, help="clock speed factor (simulation)")
    county.add_argument("--connect-timeout", type=float, default=30.0, help="give up at start-up after this many s")
    county.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return {"county": cmd_county}


def cmd_county(args: argparse.Namespace) -> int:
    from ..county.service import BrokerUnreachable, CountyService, StoreFailed
    from ..shells.clock import Clock
    from ..shells.mqtt import BrokerUrlError, parse_broker_url
    from ..web.access import WeakToken

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sites = load_configs(config_files(args.config))
        broker = parse_broker_url(args.broker, ca_file=args.ca_file)
    except ConfigError as err:
        return report(err)
    except BrokerUrlError as err:
        return fail("county", err)
    service = CountyService(
        sites,
        broker=broker,
        db_path=args.db,
        root=args.root,
        client_id=args.client_id,
        clock=Clock(start_at=args.start_at, speed=args.speed),
        connect_timeout=args.connect_timeout,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(service.stop))
        runner = None
        if args.http:
            from ..county.web import start_http

            runner = await start_http(service, *args.http, settings=http_settings(args))
            logging.getLogger("hallwatch.county").info("http: the county console on %s:%d/county", *args.http)
        try:
            await service.run()
        finally:
            if runner is not None:
                await runner.cleanup()

    try:
        asyncio.run(main())
    except BrokerUnreachable as err:
        return fail("county", err, EXIT_BROKER)
    except StoreFailed as err:
        return fail("county", err, EXIT_STORE)
    except OSError as err:
        return fail("county", f"cannot serve HTTP: {err}", EXIT_CONFIG)
    except WeakToken as err:  # the supervisor token, read when the console starts
        return fail("county", err)
    return EXIT_OK
