"""The deployment commands of ``hallwatch``: ``broker-config`` and ``shards``, and the
``engine`` options that choose which of the configured sites an engine serves
(``--sites``, ``--shard``). Thin over ``brokerconf``, ``config`` and ``sharding``."""

from __future__ import annotations

import argparse
import os
import sys

from .config import ID_PATTERN, ConfigError, Site, expand_config_paths, load_site, load_sites
from .deploy.sharding import engine_name, parse_shard, parse_site_list, pick_sites, shard_plan, shard_sites

EXIT_CONFIG = 2
EXIT_FAILED = 1
DEFAULT_CLIENT_ID = "hallwatch-engine"
DEFAULT_COUNTY_CA = "/mosquitto/config/generated/bridge.d/county-ca.crt"


# -- engine: which sites ----------------------------------------------------------------------
def add_engine_options(engine: argparse.ArgumentParser) -> None:
    which = engine.add_mutually_exclusive_group()
    which.add_argument(
        "--sites",
        metavar="ID,ID",
        type=_site_list,
        help="serve only these of the configured sites (ids separated by commas)",
    )
    which.add_argument(
        "--shard",
        metavar="I/N",
        type=_shard,
        help="serve shard I of N of the configured sites (rendezvous hashing of the site id: "
        "N engines split the sites without overlap; see `hallwatch shards`)",
    )


def _site_list(text: str) -> list[str]:
    try:
        return parse_site_list(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _shard(text: str) -> tuple[int, int]:
    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def expand(files: list[str]) -> list[str]:
    """Site files and deployment (county) files -> site files."""
    return [str(p) for p in expand_config_paths(files)]


def engine_sites(files: list[str], args) -> list[Site]:
    """The sites this engine serves: every site of the configuration files (site files or
    county files), narrowed by ``--sites`` or ``--shard``. Raises ConfigError or ValueError."""
    sites = load_sites(expand(files))
    ids = getattr(args, "sites", None)
    shard = getattr(args, "shard", None)
    if ids:
        sites = pick_sites(sites, ids)
    elif shard:
        index, count = shard
        everything = sites
        sites = shard_sites(everything, index, count)
        if not sites:
            raise ValueError(
                f"--shard {index}/{count}: none of the {len(everything)} configured sites falls to this "
                f"shard (`hallwatch shards --count {count}` shows the split); run fewer engines "
                "or choose sites with --sites"
            )
    return sites


def engine_client_id(args) -> str:
    """Two engines must never share a persistent session: with ``--shard i/n`` and the
    default client id, the id becomes ``hallwatch-engine-{i}of{n}``; with ``--sites``, the
    site ids are appended (``sharding.engine_name``). An explicit ``--client-id`` (or
    HALLWATCH_CLIENT_ID) is kept. The production broker uses the account's user name instead
    (``use_username_as_clientid``): ``broker-config --shards`` and ``--engine-sites`` name each
    engine's account as this function names its client id."""
    if args.client_id != DEFAULT_CLIENT_ID:
        return args.client_id
    return engine_name(args.client_id, shard=getattr(args, "shard", None), sites=getattr(args, "sites", None))


def client_id_warning(client_id: str, username: str | None) -> str | None:
    """What to tell the operator of an engine whose client id is not its broker user name."""
    if not username or username == client_id:
        return None
    return (
        f"client id {client_id!r} is not the broker user name {username!r}: a broker with "
        f"use_username_as_clientid (the production configuration) gives this engine the client id and "
        f"persistent session {username!r}, and engines sharing that account take each other's connection "
        "(one account per engine: hallwatch broker-config --shards N or --engine-sites)"
    )


# -- hallwatch shards -------------------------------------------------------------------------
def cmd_shards(args) -> int:
    configs = _configs(args, "shards")
    if configs is None:
        return EXIT_CONFIG
    if args.count < 1:
        print("hallwatch shards: --count must be at least 1", file=sys.stderr)
        return EXIT_CONFIG
    try:
        sites = load_sites(expand(configs))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    for index, ids in shard_plan([s.id for s in sites], args.count).items():
        print(f"{index}/{args.count}: {', '.join(ids) if ids else '(no site)'}")
    return 0


# -- hallwatch broker-config ------------------------------------------------------------------
def cmd_broker_config(args) -> int:
    from .deploy import brokerconf
    from .shells.mqtt import BrokerUrlError, parse_broker_url

    files = expand_or_report(_configs(args, "broker-config"))
    if files is None:
        return EXIT_CONFIG
    try:
        pairs = [(path, load_site(path)) for path in files]
        load_sites(files)  # refuses a site defined twice, naming both files
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    sites = [site for _, site in pairs]
    townships = args.townships or []
    county_address = county_ca = None
    if args.county_url:
        try:
            county = parse_broker_url(args.county_url)
        except BrokerUrlError as err:
            print(f"hallwatch broker-config: --county-url: {err}", file=sys.stderr)
            return EXIT_CONFIG
        county_address = f"{county.host}:{county.port}"
        county_ca = (args.county_ca or DEFAULT_COUNTY_CA) if county.tls else None
    try:
        written = brokerconf.write_broker_config(
            sites,
            args.out,
            root=args.root,
            engine_url=args.engine_url,
            townships=townships,
            county_address=county_address,
            county_ca=county_ca,
            bridge_retry_s=args.bridge_retry,
            bridge_template=args.bridge_template,
            rotate=args.rotate or [],
            rotate_all=args.rotate_all,
            sources=_configs(args, "broker-config"),
            title=", ".join(s.name for s in sites),
            shards=args.shards,
            engine_sites=args.engine_sites or (),
        )
    except brokerconf.AccountConflict as err:
        path = next(p for p, s in pairs if s.id == err.site)
        print(ConfigError(path, [f"{err.field}: {err.message}"]), file=sys.stderr)
        return EXIT_CONFIG
    except BrokerUrlError as err:
        print(f"hallwatch broker-config: --engine-url: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except brokerconf.BrokerToolError as err:
        print(f"hallwatch broker-config: {err}", file=sys.stderr)
        return EXIT_FAILED
    except brokerconf.BrokerConfigError as err:
        print(f"hallwatch broker-config: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as err:
        print(f"hallwatch broker-config: {args.out}: {err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED
    devices = sum(1 for a in written.accounts if a.role == "device")
    print(
        f"{written.out}: {len(written.accounts)} accounts ({devices} devices, "
        f"{len(written.accounts) - devices} service accounts) for {len(sites)} site(s): "
        f"{written.kept} secrets kept, {written.created} new"
    )
    for path in written.files:
        print(f"  wrote {path} (mode 0600)")
    print(
        "  these files hold secrets and are readable by their owner only; give passwd and acl to the broker's "
        f"user, e.g. for the compose stack: sudo chown 1883:1883 {written.out / 'passwd'} {written.out / 'acl'}"
    )
    return 0


CONFIG_ENV = "HALLWATCH_CONFIG"


def _configs(args, command: str) -> list[str] | None:
    if args.config:
        return args.config
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return from_env.split(os.pathsep)
    print(f"hallwatch {command}: no site configuration (use --config FILE or {CONFIG_ENV})", file=sys.stderr)
    return None


def expand_or_report(files: list[str] | None) -> list[str] | None:
    if files is None:
        return None
    try:
        return expand(files)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return None


def _township_ids(text: str) -> list[str]:
    import re

    ids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [i for i in ids if not re.match(ID_PATTERN, i)]
    if not ids or bad:
        raise argparse.ArgumentTypeError(f"{text!r}: township ids separated by commas, each matching {ID_PATTERN}")
    return ids


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_commands(sub) -> dict:
    """Register the subcommands; returns {name: handler}."""
    broker = sub.add_parser(
        "broker-config",
        help="generate the broker's password file, ACL and credentials sheet from the site config",
        description="Write the Mosquitto password file, ACL, credentials sheet and engine account for one broker "
        "serving the configured sites. Secrets already in OUT/credentials.csv are kept.",
    )
    broker.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help=f"site or county TOML file; repeat for several (env {CONFIG_ENV}, ':'-separated)",
    )
    broker.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write (created with mode 0711; every file 0600)"
    )
    broker.add_argument(
        "--root",
        default=os.environ.get("HALLWATCH_TOPIC_ROOT", "hallwatch"),
        help="MQTT topic root (env HALLWATCH_TOPIC_ROOT)",
    )
    broker.add_argument(
        "--engine-url",
        default="mqtt://mosquitto:1883",
        help="how the engine reaches this broker, without credentials; written with the engine's "
        "account to OUT/engine.env (default: the compose stack's mqtt://mosquitto:1883)",
    )
    broker.add_argument(
        "--townships",
        type=_township_ids,
        metavar="ID,ID",
        help="county broker: the townships whose brokers bridge up to it; writes a bridge account "
        "and OUT/bridges/ID.conf for each",
    )
    broker.add_argument(
        "--county-url",
        metavar="URL",
        help="county broker: its address as the township brokers reach it, mqtts://host:8883 (TLS) or mqtt://host:1883",
    )
    broker.add_argument(
        "--county-ca",
        metavar="PATH",
        help=f"with an mqtts:// --county-url: the county CA file as the township broker sees it "
        f"(default {DEFAULT_COUNTY_CA})",
    )
    broker.add_argument(
        "--bridge-retry",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between a township bridge's reconnection attempts (default 10)",
    )
    broker.add_argument(
        "--bridge-template", metavar="FILE", help="bridge template (default broker_config/bridge-to-county.conf)"
    )
    engines = broker.add_mutually_exclusive_group()
    engines.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="N engines (hallwatch engine --shard I/N), each with an account of its own: "
        "hallwatch-engine-IofN for the sites of its shard, in OUT/engine-IofN.env "
        "(default: one engine, hallwatch-engine, for every site, in OUT/engine.env)",
    )
    engines.add_argument(
        "--engine-sites",
        action="append",
        type=_site_list,
        metavar="ID,ID",
        help="one engine per group of sites (hallwatch engine --sites ID,ID), each with an account "
        "of its own; repeat for each engine, naming every site once",
    )
    broker.add_argument("--rotate", type=_names, metavar="USER,USER", help="give these accounts new secrets")
    broker.add_argument("--rotate-all", action="store_true", help="give every account a new secret")

    shards = sub.add_parser("shards", help="show which engine of --shard i/n serves which site")
    shards.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help=f"site or county TOML file; repeat for several (env {CONFIG_ENV})",
    )
    shards.add_argument("--count", type=int, required=True, metavar="N", help="number of engines")
    return {"broker-config": cmd_broker_config, "shards": cmd_shards}
