"""Broker accounts and access control, generated from the site configuration.

``hallwatch broker-config --config FILE --out DIR`` writes, for one Mosquitto broker:

``passwd``           every account, password hashed by Mosquitto's own ``mosquitto_passwd``
``acl``              what each account may read and write (Mosquitto ``acl_file`` syntax)
``credentials.csv``  every account's secret in clear: the store that later runs keep secrets
                     from (so adding a device does not re-key the others)
``credentials.md``   the sheet for installers: per site, each device's user name and password
``engine.env``       ``HALLWATCH_BROKER=mqtt://hallwatch-engine:...@host:port`` for the engine
                     (``--shards N``: ``engine-IofN.env`` for each engine; ``--engine-sites``:
                     ``engine-{sites}.env``)
``bridge.d/``        where a township puts the county bridge file it is given (may stay empty)
``bridges/T.conf``   (county broker, ``--townships``) the bridge file for township T, rendered
                     from ``broker_config/bridge-to-county.conf`` with T's own account

Every file is written with mode 0600 (owner only). The folder, when created, gets 0711: others
may pass through it to a file they own (the broker's user, once given ``passwd`` and ``acl``:
Mosquitto reads them after dropping root, and again on every reload) but not list it;
``bridge.d/`` gets 0755 (Mosquitto lists it on every reload), ``bridges/`` 0700.

The accounts (device id = user name = client id, as the protocol says):

- each device publishes only its own ``status``, ``heartbeat`` and ``event`` topics and reads
  only its own ``reply``; a ``display`` device also reads its site's board topics;
- ``hallwatch-engine`` reads the device topics of the configured sites and writes the
  engine's topics (replies, calls, window and queue states, alerts, rejections); with
  ``--shards N``, ``hallwatch-engine-{i}of{N}`` instead, one per engine, each for the sites
  of its shard (the split of ``hallwatch shards``); with ``--engine-sites``, one per group
  of sites, named as ``hallwatch engine --sites`` names its client id. The production broker
  makes each client's user name its client id (``use_username_as_clientid``), so every
  engine needs an account of its own: two engines sharing one would take each other's
  connection and persistent session;
- ``hallwatch-board-{site}`` reads the site's calls, window states and queue state only;
- ``hallwatch-supervision`` reads alerts only (all configured sites, and on a county broker
  the alerts the townships bridge up, with each bridge's link state);
- on a county broker: ``bridge-{township}`` may write only what its bridge carries up under
  ``townships/{township}/`` and its link's state, never the control topics (and read the
  county service's requests to the township's sites, which its bridge carries down), and
  ``hallwatch-county-board`` reads the townships' queue and window states;
- ``hallwatch-county``, the county service (``hallwatch county``), reads what every engine
  publishes for the county (alerts, window, queue and device states, the answers to its
  requests), directly or bridged up, and is the only account that may write the engines'
  control topics (``{root}/{site}/control/...``).

Which engine topic is which is taken from ``wire.Topics``, so the ACL and the engine agree.
"""

from __future__ import annotations

import csv
import inspect
import io
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import NamedTuple

from ..config import Site
from ..core.kinds import DEVICE_KINDS
from ..files import replacing, write_file
from ..wire import Topics
from .sharding import engine_name, pick_sites, shard_sites

ENGINE_USER = "hallwatch-engine"
SUPERVISION_USER = "hallwatch-supervision"
COUNTY_BOARD_USER = "hallwatch-county-board"
COUNTY_USER = "hallwatch-county"
BOARD_USER_PREFIX = "hallwatch-board-"
BRIDGE_USER_PREFIX = "bridge-"
# On the county broker, township T's topics live under townships/T/{root}/...
BRIDGE_ROOT = "townships"

# wire.Topics methods, by who uses them. Every engine output topic must be listed in
# ENGINE_WRITES, or the broker silently drops what the engine publishes there.
DEVICE_CHANNELS = ("status", "heartbeat", "event")
ENGINE_WRITES = (
    "reply",
    "call",
    "window_state",
    "queue_state",
    "alerts",
    "rejected",
    "device_state",
    "control_reply",
    "figures",
)
BOARD_READS = ("call", "window_state", "queue_state")
SUPERVISION_READS = ("alerts",)
# What a township's bridge sends up to the county (see broker_config/bridge-to-county.conf).
BRIDGED = ("alerts", "queue_state", "window_state", "device_state", "figures")
# What the county service reads of every site (and writes: the control requests).
COUNTY_READS = ("alerts", "queue_state", "window_state", "device_state", "control_reply", "figures")

FILE_MODE = 0o600
OUT_DIR_MODE = 0o711
BRIDGE_D_MODE = 0o755
PRIVATE_DIR_MODE = 0o700
CSV_FIELDS = ("username", "password", "role", "site", "kind", "window")


class BrokerConfigError(Exception):
    """Something the operator must fix; ``str()`` says what and how."""


class BrokerToolError(BrokerConfigError):
    """Mosquitto's password tool is missing or failed."""


class AccountConflict(BrokerConfigError):
    """Two accounts would share a user name; ``site`` and ``field`` locate the culprit."""

    def __init__(self, site: str, field: str, message: str):
        self.site = site
        self.field = field
        self.message = message
        super().__init__(f"site {site}: {field}: {message}")


@dataclass(frozen=True)
class Account:
    username: str
    role: str  # device, engine, board, supervision, bridge, county-board
    site: str = ""
    kind: str = ""
    window: str = ""
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    # Where the account comes from, for error messages: (site, "devices[3].id").
    origin: tuple[str, str] | None = field(default=None, compare=False)
    note: str = field(default="", compare=False)  # for the credentials sheet


class EngineGroup(NamedTuple):
    """One engine process: its account, the option that starts it on its sites, the sites."""

    username: str
    option: str
    sites: Sequence[Site]

    @property
    def env_file(self) -> str:
        """engine.env; engine-1of2.env for hallwatch-engine-1of2."""
        suffix = self.username.removeprefix(ENGINE_USER)
        return f"engine{suffix}.env"


def engine_groups(
    sites: Sequence[Site], *, shards: int | None = None, site_groups: Sequence[Sequence[str]] = ()
) -> list[EngineGroup]:
    """The engines that serve ``sites``: one for all of them (the default); one per shard of
    ``shards`` (``hallwatch engine --shard i/N``); or one per group of site ids
    (``hallwatch engine --sites a,b``), which must name every site once."""
    if shards is not None:
        if shards < 1:
            raise BrokerConfigError("--shards must be at least 1")
        groups = [
            EngineGroup(
                engine_name(ENGINE_USER, shard=(i, shards)), f"--shard {i}/{shards}", shard_sites(sites, i, shards)
            )
            for i in range(1, shards + 1)
        ]
        empty = [g.option for g in groups if not g.sites]
        if empty:
            raise BrokerConfigError(
                f"--shards {shards}: none of the {len(sites)} sites falls to {', '.join(empty)} "
                f"(`hallwatch shards --count {shards}` shows the split); use fewer shards or "
                "--engine-sites"
            )
        return groups
    if site_groups:
        served: dict[str, str]  # site id -> the group that serves it
        groups, served = [], {}
        for ids in site_groups:
            try:
                picked = pick_sites(sites, ids)
            except ValueError as err:
                raise BrokerConfigError(str(err).replace("--sites", "--engine-sites", 1)) from None
            for site in picked:
                if site.id in served:
                    raise BrokerConfigError(
                        f"--engine-sites: site {site.id} is in two groups ({served[site.id]} and "
                        f"{','.join(ids)}): one engine per site"
                    )
                served[site.id] = ",".join(ids)
            groups.append(EngineGroup(engine_name(ENGINE_USER, sites=ids), f"--sites {','.join(ids)}", picked))
        left = [s.id for s in sites if s.id not in served]
        if left:
            raise BrokerConfigError(
                f"--engine-sites: no engine serves {', '.join(left)}: name every configured site in one group"
            )
        return groups
    return [EngineGroup(ENGINE_USER, "", list(sites))]


def topic(topics: Topics, name: str, site: str) -> str:
    """The topic filter of ``Topics.<name>`` for ``site``, every other level a ``+``."""
    method = getattr(topics, name)
    extra = len(inspect.signature(method).parameters) - 1
    return method(site, *(["+"] * extra))


def plan_accounts(
    sites: Sequence[Site],
    *,
    root: str = "hallwatch",
    townships: Sequence[str] = (),
    engines: Sequence[EngineGroup] | None = None,
) -> list[Account]:
    """Every account of a broker that serves ``sites`` with ``engines`` (default: one engine
    for all; see ``engine_groups``) and, on a county broker, receives the bridges of
    ``townships``, with what it may read and write."""
    topics = Topics(root)
    accounts: list[Account] = []
    for site in sites:
        board_reads = tuple(topic(topics, name, site.id) for name in BOARD_READS)
        for i, device in enumerate(site.devices):
            reads: tuple[str, ...] = (topics.reply(site.id, device.id),)
            if DEVICE_KINDS[device.kind].reads_board:
                reads += board_reads
            accounts.append(
                Account(
                    device.id,
                    "device",
                    site.id,
                    device.kind.value,
                    device.window or "",
                    read=reads,
                    write=tuple(topics.device(site.id, device.id, channel) for channel in DEVICE_CHANNELS),
                    origin=(site.id, f"devices[{i}].id"),
                )
            )
        accounts.append(Account(f"{BOARD_USER_PREFIX}{site.id}", "board", site.id, read=board_reads))
    for engine in engines or engine_groups(sites):
        accounts.append(
            Account(
                engine.username,
                "engine",
                read=tuple(f for site in engine.sites for f in topics.subscriptions(site.id)),
                write=tuple(topic(topics, name, site.id) for site in engine.sites for name in ENGINE_WRITES),
                note=f"`hallwatch engine {engine.option}`: {', '.join(s.id for s in engine.sites)}"
                if engine.option
                else "",
            )
        )
    supervision = tuple(topic(topics, name, site.id) for site in sites for name in SUPERVISION_READS)
    county_reads = tuple(topic(topics, name, "+") for name in COUNTY_READS)
    county_writes: tuple[str, ...] = (topic(topics, "control", "+"),)
    if townships:
        bridged = Topics(f"{BRIDGE_ROOT}/+/{root}")
        supervision += tuple(topic(bridged, name, "+") for name in SUPERVISION_READS)
        supervision += (f"{BRIDGE_ROOT}/+/bridge/state",)
        accounts.append(
            Account(
                COUNTY_BOARD_USER,
                "county-board",
                read=tuple(topic(bridged, name, "+") for name in BRIDGED if name not in SUPERVISION_READS),
            )
        )
        county_reads += tuple(topic(bridged, name, "+") for name in COUNTY_READS) + (f"{BRIDGE_ROOT}/+/bridge/state",)
        county_writes += (topic(bridged, "control", "+"),)
        for township in townships:
            down = Topics(f"{BRIDGE_ROOT}/{township}/{root}")
            accounts.append(
                Account(
                    f"{BRIDGE_USER_PREFIX}{township}",
                    "bridge",
                    township,
                    read=(topic(down, "control", "+"),),
                    # What its bridge carries up, and its link's state: never the control
                    # topics, which only the county service may write.
                    write=tuple(topic(down, name, "+") for name in BRIDGED + ("control_reply",))
                    + (f"{BRIDGE_ROOT}/{township}/bridge/state",),
                )
            )
    accounts.append(Account(COUNTY_USER, "county", read=county_reads, write=county_writes))
    accounts.append(Account(SUPERVISION_USER, "supervision", read=supervision))
    _check_unique(accounts)
    return accounts


def _check_unique(accounts: Iterable[Account]) -> None:
    seen: dict[str, Account] = {}
    for account in accounts:
        other = seen.get(account.username)
        if other is not None:
            culprit = account if account.origin else other
            first = other if culprit is account else account
            if culprit.origin is None:
                raise BrokerConfigError(f"user name {account.username!r} would be used twice")
            if first.role == "device":
                problem = (
                    f"device id {account.username!r} is also a device of site {first.site}: the devices "
                    "of the sites one broker serves need distinct ids (the id is the broker user name)"
                )
            else:
                problem = f"device id {account.username!r} is reserved for the {first.role} account; rename the device"
            raise AccountConflict(culprit.origin[0], culprit.origin[1], problem)
        seen[account.username] = account


def render_acl(accounts: Sequence[Account], *, sources: Sequence[str] = ()) -> str:
    lines = [
        "# hallwatch: Mosquitto ACL, generated by `hallwatch broker-config`; regenerate, do not edit.",
        f"# From: {', '.join(sources)}" if sources else "#",
        "# Anonymous clients are refused by the broker (allow_anonymous false) and granted nothing here.",
        "# A publication the ACL refuses is dropped (MQTT 5 clients get PUBACK 'not authorised');",
        "# a subscription outside it receives nothing.",
        "",
    ]
    for account in accounts:
        label = (
            f"{account.role}"
            + (f", site {account.site}" if account.site else "")
            + (f", {account.kind}" if account.kind else "")
            + (f", window {account.window}" if account.window else "")
            + (f", {account.note}" if account.note else "")
        )
        lines += [f"# {label}", f"user {account.username}"]
        lines += [f"topic read {t}" for t in account.read]
        lines += [f"topic write {t}" for t in account.write]
        lines.append("")
    return "\n".join(lines)


# -- secrets ---------------------------------------------------------------------------------
def new_secret() -> str:
    """24 URL-safe characters (144 bits): safe in a URL, a CSV cell and a Mosquitto password file."""
    return secrets.token_urlsafe(18)


def assign_secrets(
    accounts: Sequence[Account],
    previous: dict[str, str],
    *,
    rotate: Iterable[str] = (),
    rotate_all: bool = False,
    generate=new_secret,
) -> dict[str, str]:
    """Keep each account's previous secret unless rotated; new accounts get a new one."""
    names = {a.username for a in accounts}
    rotate = set(rotate)
    unknown = sorted(rotate - names)
    if unknown:
        raise BrokerConfigError(f"--rotate: no such account: {', '.join(unknown)}")
    return {
        a.username: previous[a.username]
        if a.username in previous and not rotate_all and a.username not in rotate
        else generate()
        for a in accounts
    }


def read_credentials(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BrokerConfigError(f"{path}: cannot read the previous credentials: {exc}") from None
    if rows and not {"username", "password"} <= set(rows[0]):
        raise BrokerConfigError(
            f"{path}: not a credentials file written by hallwatch broker-config (columns username and password missing)"
        )
    return {row["username"]: row["password"] for row in rows if row.get("username") and row.get("password")}


def render_credentials_csv(accounts: Sequence[Account], secrets_: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for a in accounts:
        writer.writerow([a.username, secrets_[a.username], a.role, a.site, a.kind, a.window])
    return out.getvalue()


ROLE_TEXT = {
    "engine": "排队引擎 queue engine",
    "board": "叫号屏/大厅看板（只读叫号、窗口和排队状态） board reader",
    "supervision": "电子监察（只读告警） supervision reader",
    "county-board": "县级看板（只读各乡镇排队和窗口状态） county board reader",
    "bridge": "乡镇到县的桥接 township bridge",
    "county": "县级监察服务（hallwatch county） county service",
}


def render_sheet(
    accounts: Sequence[Account], secrets_: dict[str, str], sites: Sequence[Site], *, title: str = ""
) -> str:
    names = {s.id: s.name for s in sites}
    windows = {(s.id, w.id): w.name for s in sites for w in s.windows}
    lines = [
        f"# 设备接入凭据 Broker credentials{(' — ' + title) if title else ''}",
        "",
        "> **机密**：本文件只有所有者可读（文件权限 0600），请勿复制到共享目录或发给无关人员。"
        "每位安装人员只需要他所安装设备的那一行。设备的用户名就是设备编号，也必须用作 MQTT 客户端 ID。",
        "> **Secret**: this file is readable by its owner only (mode 0600), like every file "
        "`hallwatch broker-config` writes. Give each installer only the rows of the devices they "
        "install. A device's user name is its device id and must also be its MQTT client id.",
        "",
        "Broker: the hall server, port 1883 (MQTT on the hall network) or 8883 (MQTT over TLS, "
        "with the CA certificate `ca.crt`). Keepalive at most 30 s; Last Will on the device's "
        "`status` topic (see the device protocol).",
        "",
    ]
    by_site: dict[str, list[Account]] = {}
    for account in accounts:
        if account.role == "device":
            by_site.setdefault(account.site, []).append(account)
    for site_id, devices in by_site.items():
        lines += [
            f"## {names.get(site_id, site_id)} (`{site_id}`)",
            "",
            "| 设备 device | 类型 kind | 窗口 window | 用户名 = 客户端ID user = client id | 密码 password |",
            "|---|---|---|---|---|",
        ]
        for a in devices:
            window = f"{windows.get((site_id, a.window), a.window)} ({a.window})" if a.window else ""
            lines.append(f"| {a.username} | {a.kind} | {window} | `{a.username}` | `{secrets_[a.username]}` |")
        lines.append("")
    others = [a for a in accounts if a.role != "device"]
    lines += [
        "## 系统账号 Service accounts",
        "",
        "| 用途 role | 用户名 user | 密码 password | 可读 reads | 可写 writes |",
        "|---|---|---|---|---|",
    ]
    for a in others:
        reads = "<br>".join(f"`{t}`" for t in a.read[:4]) + (" …" if len(a.read) > 4 else "")
        writes = "<br>".join(f"`{t}`" for t in a.write[:4]) + (" …" if len(a.write) > 4 else "")
        lines.append(
            f"| {ROLE_TEXT.get(a.role, a.role)}{(' ' + a.site) if a.site else ''}"
            f"{(' (' + a.note + ')') if a.note else ''} | `{a.username}` | "
            f"`{secrets_[a.username]}` | {reads} | {writes} |"
        )
    lines.append("")
    return "\n".join(lines)


# -- the county bridge -----------------------------------------------------------------------
def render_bridge(
    template: str,
    *,
    township: str,
    address: str,
    password: str,
    root: str = "hallwatch",
    ca_file: str | None = None,
    retry_s: float = 10,
) -> str:
    tls = ""
    if ca_file:
        tls = f"bridge_cafile {ca_file}\nbridge_insecure false\nbridge_tls_version tlsv1.2"
    try:
        return Template(template).substitute(
            township=township, address=address, password=password, root=root, tls=tls, retry_s=f"{retry_s:g}"
        )
    except (KeyError, ValueError) as exc:
        raise BrokerConfigError(f"bridge template: unknown or malformed placeholder {exc}") from None


def default_bridge_template() -> Path:
    """broker_config/bridge-to-county.conf of the source tree, or of the working directory
    (the container's /app)."""
    candidates = [
        Path(__file__).resolve().parents[2] / "broker_config" / "bridge-to-county.conf",
        Path.cwd() / "broker_config" / "bridge-to-county.conf",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BrokerConfigError("broker_config/bridge-to-county.conf not found; give it with --bridge-template")


# -- files -------------------------------------------------------------------------------------
def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, replacing it atomically."""
    write_file(path, text, mode=FILE_MODE)


def mosquitto_passwd_tool() -> str:
    for candidate in (shutil.which("mosquitto_passwd"), "/usr/bin/mosquitto_passwd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrokerToolError(
        "mosquitto_passwd not found: install Mosquitto (Debian: apt-get install mosquitto), "
        "or run this command in the hallwatch container image, which has it"
    )


def write_password_file(path: Path, secrets_: dict[str, str], *, tool: str | None = None) -> None:
    """Hash every password with Mosquitto's own tool (``mosquitto_passwd -U`` turns a file of
    ``user:password`` lines into salted PBKDF2-SHA512 hashes in place)."""
    tool = tool or mosquitto_passwd_tool()
    with replacing(path, FILE_MODE) as (tmp, plain):
        plain.write("".join(f"{user}:{password}\n" for user, password in secrets_.items()).encode("utf-8"))
        plain.close()
        result = subprocess.run([tool, "-U", str(tmp)], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            output = result.stderr.strip() or result.stdout.strip()
            raise BrokerToolError(f"{tool} -U failed ({result.returncode}): {output}")
        hashed = tmp.read_text(encoding="utf-8").splitlines()
        if len(hashed) != len(secrets_) or not all(line.split(":", 1)[1].startswith("$") for line in hashed):
            raise BrokerToolError(f"{tool} -U did not hash every password in {tmp}")
        os.chmod(tmp, FILE_MODE)  # (the tool may have written a new file of its own)


@dataclass
class Written:
    out: Path
    accounts: list[Account]
    files: list[Path]
    kept: int  # secrets kept from the previous run
    created: int  # new secrets


def write_broker_config(
    sites: Sequence[Site],
    out: str | Path,
    *,
    root: str = "hallwatch",
    engine_url: str = "mqtt://mosquitto:1883",
    townships: Sequence[str] = (),
    county_address: str | None = None,
    county_ca: str | None = None,
    bridge_retry_s: float = 10,
    bridge_template: str | Path | None = None,
    rotate: Iterable[str] = (),
    rotate_all: bool = False,
    sources: Sequence[str] = (),
    title: str = "",
    passwd_tool: str | None = None,
    shards: int | None = None,
    engine_sites: Sequence[Sequence[str]] = (),
) -> Written:
    from ..shells.mqtt import parse_broker_url

    engines = engine_groups(sites, shards=shards, site_groups=engine_sites)
    accounts = plan_accounts(sites, root=root, townships=townships, engines=engines)
    engine = parse_broker_url(engine_url)
    if engine.username or engine.password:
        raise BrokerConfigError(
            f"--engine-url {engine_url!r}: give the address only; the engine's user name and password are generated"
        )
    template = None
    if townships:
        if not county_address:
            raise BrokerConfigError(
                "--townships needs --county-url: the address the township brokers reach this county broker at"
            )
        template_file = Path(bridge_template) if bridge_template else default_bridge_template()
        try:
            template = template_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise BrokerConfigError(f"bridge template {bridge_template}: {exc.strerror or exc}") from None

    out = Path(out)
    if not out.exists():
        out.mkdir(parents=True)
        os.chmod(out, OUT_DIR_MODE)
    previous = read_credentials(out / "credentials.csv")
    secrets_ = assign_secrets(accounts, previous, rotate=rotate, rotate_all=rotate_all)
    kept = sum(1 for user, secret in secrets_.items() if previous.get(user) == secret)

    files = [out / "passwd", out / "acl", out / "credentials.csv", out / "credentials.md"]
    write_password_file(out / "passwd", secrets_, tool=passwd_tool)
    write_secret_file(out / "acl", render_acl(accounts, sources=sources))
    write_secret_file(out / "credentials.csv", render_credentials_csv(accounts, secrets_))
    write_secret_file(out / "credentials.md", render_sheet(accounts, secrets_, sites, title=title))
    scheme = "mqtts" if engine.tls else "mqtt"
    for group in engines:
        account_url = f"{scheme}://{group.username}:{secrets_[group.username]}@{engine.host}:{engine.port}"
        start = (
            f"# For `hallwatch engine {group.option}` (sites {', '.join(s.id for s in group.sites)}).\n"
            if group.option
            else ""
        )
        files.append(out / group.env_file)
        write_secret_file(
            files[-1],
            "# The engine's broker account (hallwatch broker-config). "
            f"Secret: mode 0600.\n{start}HALLWATCH_BROKER={account_url}\n",
        )
    bridge_dir = out / "bridge.d"
    if not bridge_dir.exists():
        bridge_dir.mkdir()
        os.chmod(bridge_dir, BRIDGE_D_MODE)
    if townships:
        assert template is not None and county_address is not None  # both read or refused above
        bridges = out / "bridges"
        if not bridges.exists():
            bridges.mkdir()
            os.chmod(bridges, PRIVATE_DIR_MODE)
        for township in townships:
            path = bridges / f"{township}.conf"
            write_secret_file(
                path,
                render_bridge(
                    template,
                    township=township,
                    address=county_address,
                    root=root,
                    ca_file=county_ca,
                    password=secrets_[f"{BRIDGE_USER_PREFIX}{township}"],
                    retry_s=bridge_retry_s,
                ),
            )
            files.append(path)
    return Written(out, accounts, files, kept=kept, created=len(secrets_) - kept)
