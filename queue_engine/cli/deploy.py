"""``hallwatch broker-config`` and ``hallwatch shards``: thin over ``deploy.brokerconf``,
``deploy.sharding`` and ``config``.

Exit codes: 0 written, 1 the broker's password tool failed or the folder cannot be written,
2 bad configuration or arguments.
"""

from __future__ import annotations

import argparse
import re

from ..config import ID_PATTERN, ConfigError, expand_config_paths, load_site, load_sites
from ..deploy.sharding import parse_site_list, shard_plan
from .common import (
    ENV,
    EXIT_FAILED,
    EXIT_OK,
    Handler,
    add_config_option,
    argument_type,
    config_files,
    env,
    fail,
    report,
)

DEFAULT_COUNTY_CA = "/mosquitto/config/generated/bridge.d/county-ca.crt"


# -- hallwatch shards -------------------------------------------------------------------------
def cmd_shards(args: argparse.Namespace) -> int:
    configs = config_files(args.config)
    if not configs:
        return fail("shards", f"no site configuration (use --config FILE or {ENV['config']})")
    if args.count < 1:
        return fail("shards", "--count must be at least 1")
    try:
        sites = load_sites(expand_config_paths(configs))
    except ConfigError as err:
        return report(err)
    for index, ids in shard_plan([s.id for s in sites], args.count).items():
        print(f"{index}/{args.count}: {', '.join(ids) if ids else '(no site)'}")
    return EXIT_OK


# -- hallwatch broker-config ------------------------------------------------------------------
def cmd_broker_config(args: argparse.Namespace) -> int:
    from ..deploy import brokerconf
    from ..shells.mqtt import BrokerUrlError, parse_broker_url

    sources = config_files(args.config)
    if not sources:
        return fail("broker-config", f"no site configuration (use --config FILE or {ENV['config']})")
    try:
        files = expand_config_paths(sources)
        pairs = [(path, load_site(path)) for path in files]
        load_sites(files)  # refuses a site defined twice, naming both files
    except ConfigError as err:
        return report(err)
    sites = [site for _, site in pairs]
    townships = args.townships or []
    county_address = county_ca = None
    if args.county_url:
        try:
            county = parse_broker_url(args.county_url)
        except BrokerUrlError as err:
            return fail("broker-config", f"--county-url: {err}")
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
            sources=sources,
            title=", ".join(s.name for s in sites),
            shards=args.shards,
            engine_sites=args.engine_sites or (),
        )
    except brokerconf.AccountConflict as err:
        path = next(p for p, s in pairs if s.id == err.site)
        return report(ConfigError(path, [f"{err.field}: {err.message}"]))
    except BrokerUrlError as err:
        return fail("broker-config", f"--engine-url: {err}")
    except brokerconf.BrokerToolError as err:
        return fail("broker-config", err, EXIT_FAILED)
    except brokerconf.BrokerConfigError as err:
        return fail("broker-config", err)
    except OSError as err:
        return fail("broker-config", f"{args.out}: {err.strerror or err}", EXIT_FAILED)
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
    return EXIT_OK


def _township_ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [i for i in ids if not re.match(ID_PATTERN, i)]
    if not ids or bad:
        raise argparse.ArgumentTypeError(f"{text!r}: township ids separated by commas, each matching {ID_PATTERN}")
    return ids


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    broker = sub.add_parser(
        "broker-config",
        help="generate the broker's password file, ACL and credentials sheet from the site config",
        description="Write the Mosquitto password file, ACL, credentials sheet and engine account for one broker "
        "serving the configured sites. Secrets already in OUT/credentials.csv are kept.",
    )
    add_config_option(broker)
    broker.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write (created with mode 0711; every file 0600)"
    )
    broker.add_argument(
        "--root",
        default=env("root", "hallwatch"),
        help=f"MQTT topic root (env {ENV['root']})",
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
        type=argument_type(parse_site_list),
        metavar="ID,ID",
        help="one engine per group of sites (hallwatch engine --sites ID,ID), each with an account "
        "of its own; repeat for each engine, naming every site once",
    )
    broker.add_argument("--rotate", type=_names, metavar="USER,USER", help="give these accounts new secrets")
    broker.add_argument("--rotate-all", action="store_true", help="give every account a new secret")

    shards = sub.add_parser("shards", help="show which engine of --shard i/n serves which site")
    add_config_option(shards)
    shards.add_argument("--count", type=int, required=True, metavar="N", help="number of engines")
    return {"broker-config": cmd_broker_config, "shards": cmd_shards}
