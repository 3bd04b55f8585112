"""``hallwatch engine``: the queue engine, thin over ``queue_engine.app``.

Exit codes: 0 stopped cleanly, 2 bad configuration or arguments (also an ``--http`` address
that cannot be listened on), 3 broker unreachable or refusing the engine, 4 store failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from ..config import ConfigError, load_configs
from ..deploy.sharding import (
    DEFAULT_ENGINE_ID,
    client_id_warning,
    engine_client_id,
    parse_shard,
    parse_site_list,
    served_sites,
)
from .common import (
    ENV,
    EXIT_BROKER,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_STORE,
    Handler,
    add_broker_options,
    add_config_option,
    argument_type,
    config_files,
    env,
    fail,
    parse_time,
    positive,
    report,
)


class HttpUnavailable(RuntimeError):
    pass


def _listen_address(text: str) -> tuple[str, int]:
    from ..web import parse_listen

    return parse_listen(text)


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    engine = sub.add_parser("engine", help="run the queue engine")
    add_config_option(engine)
    add_broker_options(engine, broker_help="mqtt://[user:pass@]host:port or mqtts://...")
    engine.add_argument("--db", default=env("db", "hallwatch.db"), help=f"SQLite file (env {ENV['db']})")
    engine.add_argument(
        "--client-id",
        default=env("client_id", DEFAULT_ENGINE_ID),
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
        type=argument_type(_listen_address),
        default=env("http"),
        help=f"serve /metrics and /healthz on this address, e.g. 127.0.0.1:9108 (env {ENV['http']})",
    )
    engine.add_argument(
        "--ticket-secret-file",
        metavar="FILE",
        help="file holding the secret that signs each ticket's token (the slip's QR link); "
        "else env HALLWATCH_TICKET_SECRET; at least 16 characters",
    )
    engine.add_argument(
        "--phone-verifier",
        metavar="MODULE:FACTORY",
        help="verify phone numbers by SMS before taking a number: FACTORY() returns an object with async "
        "send_code(site, phone) and check_code(site, phone, code) (queue_engine.web.phoneverify; none is built in)",
    )
    add_http_options(engine)
    engine.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    which = engine.add_mutually_exclusive_group()
    which.add_argument(
        "--sites",
        metavar="ID,ID",
        type=argument_type(parse_site_list),
        help="serve only these of the configured sites (ids separated by commas)",
    )
    which.add_argument(
        "--shard",
        metavar="I/N",
        type=argument_type(parse_shard),
        help="serve shard I of N of the configured sites (rendezvous hashing of the site id: "
        "N engines split the sites without overlap; see `hallwatch shards`)",
    )
    citizen = sub.add_parser(
        "citizen-key",
        help="print the citizen key the panels need (derived from the engine's ticket secret)",
        description='The key of the citizen keys (docs/deployment.md, "Privacy"): panels hash an ID or '
        "mobile number with it, as the engine hashes the phone numbers it keeps. Give it to the panel agents "
        "(HALLWATCH_CITIZEN_KEY or --citizen-key-file), not the ticket secret itself.",
    )
    citizen.add_argument(
        "--ticket-secret-file", metavar="FILE", help="the engine's ticket secret; else env HALLWATCH_TICKET_SECRET"
    )
    return {"engine": cmd_engine, "citizen-key": cmd_citizen_key}


def cmd_citizen_key(args: argparse.Namespace) -> int:
    from ..privacy import citizen_secret
    from ..tickettoken import SECRET_ENV, SecretError, load_secret

    try:
        secret = load_secret(args.ticket_secret_file)
    except SecretError as err:
        return fail("citizen-key", err)
    if secret is None:
        return fail("citizen-key", f"no ticket secret: give --ticket-secret-file or set {SECRET_ENV}")
    print(citizen_secret(secret).hex())
    return EXIT_OK


# The web server's settings (queue_engine.web.HttpSettings, docs/deployment.md): option,
# metavar, type, the HttpSettings field it sets (and whose default it shows), help.
HTTP_OPTIONS = [
    (
        "--http-header-timeout",
        "SECONDS",
        positive(float),
        "header_timeout_s",
        "a request's header must be complete this long after its first byte, else 408 and the connection is closed",
    ),
    (
        "--http-idle-timeout",
        "SECONDS",
        positive(float),
        "idle_timeout_s",
        "close a connection that sends no request this long after opening or after its last answer; "
        "live streams are answers in progress, never idle",
    ),
    ("--http-max-connections", "N", positive(int), "max_connections", "connections open at once; one more gets 503"),
    (
        "--http-wrong-tokens",
        "N",
        positive(int),
        "wrong_tokens_per_minute",
        "wrong tokens one client address may present within a minute; then its tokens get 429 until a minute has "
        "passed since the first",
    ),
]


def add_http_options(parser: argparse.ArgumentParser) -> None:
    from ..web import HttpSettings

    default = HttpSettings()
    for flag, metavar, kind, field, text in HTTP_OPTIONS:
        value = getattr(default, field)
        parser.add_argument(
            flag, metavar=metavar, type=kind, dest=field, default=value, help=f"{text} (default {value:g})"
        )
    parser.add_argument(
        "--cookie-secure",
        action="store_true",
        help="mark the consoles' cookies Secure on every answer (the engine is reached over HTTPS only); "
        "otherwise only on answers over HTTPS, as a --trusted-proxy tells",
    )
    parser.add_argument(
        "--trusted-proxy",
        metavar="ADDRESS[,ADDRESS]",
        type=argument_type(parse_proxies),
        default=(),
        help="reverse proxies (IP addresses or networks) whose X-Forwarded-Proto and X-Forwarded-For "
        "are believed: the scheme the client used, and its address",
    )


def parse_proxies(text: str):
    from ..web.server import parse_proxies

    return parse_proxies(text)


def http_settings(args: argparse.Namespace):
    """The web server's settings; raises ValueError for a phone verifier that cannot be loaded."""
    from ..web import HttpSettings
    from ..web.phoneverify import load_verifier

    spec = getattr(args, "phone_verifier", None)
    return HttpSettings(
        **{field: getattr(args, field) for _, _, _, field, _ in HTTP_OPTIONS},
        cookie_secure=args.cookie_secure,
        trusted_proxies=args.trusted_proxy,
        phone_verifier=load_verifier(spec) if spec else None,
    )


def cmd_engine(args: argparse.Namespace) -> int:
    from ..app import BrokerUnreachable, EngineApp, StoreFailed
    from ..shells.clock import Clock
    from ..shells.mqtt import BrokerUrlError, parse_broker_url
    from ..tickettoken import SECRET_ENV, SecretError, load_secret

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    files = config_files(args.config)
    if not files:
        return fail("engine", f"no site configuration (use --config FILE or {ENV['config']})")
    try:
        sites = served_sites(load_configs(files), ids=args.sites, shard=args.shard)
        broker = parse_broker_url(args.broker, ca_file=args.ca_file)
        clock = Clock(start_at=args.start_at, speed=args.speed)
        ticket_secret = load_secret(args.ticket_secret_file)
        settings = http_settings(args)
    except ConfigError as err:
        return report(err)
    except (BrokerUrlError, SecretError, ValueError) as err:
        return fail("engine", err)
    if ticket_secret is None and any(site.web.public_url for site in sites):
        logging.getLogger("hallwatch.engine").warning(
            "no ticket secret (%s or --ticket-secret-file): the slips carry no link to follow the ticket", SECRET_ENV
        )
    client_id = engine_client_id(args.client_id, shard=args.shard, sites=args.sites)
    warning = client_id_warning(client_id, broker.username)
    if warning:
        logging.getLogger("hallwatch.engine").warning(warning)
    access = None
    if args.http:
        from ..web.access import Access, WeakToken

        try:  # the console tokens are read now, at start-up, and only when there are consoles
            access = Access.from_environment(sites)
        except WeakToken as err:
            return fail("engine", err)
    app = EngineApp(
        sites,
        broker=broker,
        db_path=args.db,
        clock=clock,
        root=args.root,
        client_id=client_id,
        synchronous=args.sync.upper(),
        connect_timeout=args.connect_timeout,
        ticket_secret=ticket_secret,
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
            from ..web import start_http

            try:
                runner = await start_http(app, *args.http, settings=settings, access=access)
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
        return fail("engine", err, EXIT_BROKER)
    except StoreFailed as err:
        return fail("engine", err, EXIT_STORE)
    except HttpUnavailable as err:
        return fail("engine", err, EXIT_CONFIG)
    return EXIT_OK
