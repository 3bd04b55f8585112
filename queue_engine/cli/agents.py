"""``hallwatch agent KIND ...``: the device agents as commands.

Exit codes: 0 done (or stopped by Ctrl-C / SIGTERM, in order), 1 a request was refused or
unanswered, 2 bad configuration or arguments, 3 broker unreachable at start-up.
What a citizen or a staff member sees is Chinese; so are the agent's own errors (a staff member
starting a panel reads them too) unless ``--lang en``. The engine's and the devices' logs stay
English.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from window_agents import camera, kiosk, pad, panel, slip
from window_agents.device import BrokerUnreachable, Device, DeviceSettings, password_from_env

from ..config import ConfigError, load_site
from ..core.kinds import DEVICE_KINDS, DeviceKind
from ..core.vocabulary import DEVICE_KIND
from ..shells.mqtt import BrokerUrlError, parse_broker_url
from ..wire import Topics
from .common import (
    ENV,
    EXIT_BROKER,
    EXIT_CONFIG,
    EXIT_OK,
    Handler,
    add_broker_options,
    add_config_option,
    add_lang_option,
    env,
)

# The device kinds each agent can be: the kiosk agent any kind that issues tickets.
KIND_OF_AGENT = {
    "kiosk": tuple(kind.value for kind, rule in DEVICE_KINDS.items() if rule.issues_tickets),
    "panel": (DeviceKind.PANEL.value,),
    "pad": (DeviceKind.PAD.value,),
    "camera": (DeviceKind.CAMERA.value,),
}


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_config_option(common, repeatable=False)
    add_broker_options(common, broker_help="mqtt://host:port or mqtts://...; the username is always the device id")
    common.add_argument(
        "--password-file",
        metavar="FILE",
        help=f"file holding the device's broker password (else env {ENV['password']}, else the password in --broker)",
    )
    common.add_argument(
        "--reply-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait for the engine's reply before sending the request again (same id); default 5",
    )
    common.add_argument(
        "--attempts", type=int, default=3, metavar="N", help="sends of one request before giving up; default 3"
    )
    common.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="give up at start-up if the broker cannot be reached within S seconds; default 30",
    )
    common.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log to stderr from this level; default WARNING",
    )
    add_lang_option(common)
    return common


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    agent = sub.add_parser(
        "agent",
        help="run a device agent: kiosk, panel, camera (Frigate bridge) or pad",
        description="Run a device agent that speaks the hallwatch device protocol.",
    )
    kinds = agent.add_subparsers(dest="kind", required=True, metavar="KIND")
    common = _common()
    raw = argparse.RawDescriptionHelpFormatter

    kiosk = kinds.add_parser(
        "kiosk",
        parents=[common],
        formatter_class=raw,
        help="取号机: take a number",
        description="取号机: offers the site's services and prints the ticket slip. "
        "Interactive (a menu on stdin; 签到 CODE checks in a phone's number) unless --take or --checkin is given.",
    )
    kiosk.add_argument("--device", required=True, help="the kiosk's device id in the site configuration")
    kiosk.add_argument("--take", metavar="SERVICE", help="take one number for this service code, print the slip, exit")
    kiosk.add_argument(
        "--checkin",
        metavar="CODE",
        type=_check_in_code,
        help="check in the number a phone took (reserved until then) by its six-digit code, print its slip, exit",
    )
    kiosk.add_argument(
        "--priority",
        choices=["elderly", "disabled", "pregnant", "veteran", "other"],
        help="green channel (绿色通道) for --take",
    )
    kiosk.add_argument(
        "--printer",
        metavar="SPEC",
        type=_printer_spec,
        help="print each slip on this ESC/POS receipt printer (GB18030, with the QR code of the slip's link): "
        f"{slip.PRINTER_FORMS}; default: none, the slip is shown on the console only",
    )

    panel_parser = kinds.add_parser(
        "panel",
        parents=[common],
        formatter_class=raw,
        epilog=panel.HELP,
        help="叫号器: a window's call panel, commands on stdin",
        description="叫号器: a window's call panel. One command per line on stdin; "
        "exits at q or end of input (status 1 if any command failed).",
    )
    panel_parser.add_argument("--device", required=True, help="the panel's device id in the site configuration")
    panel_parser.add_argument(
        "--citizen-key-file",
        metavar="FILE",
        help="the citizen key (`hallwatch citizen-key`; else env HALLWATCH_CITIZEN_KEY): needed to record an ID "
        "or mobile number (证件=), sent only as its keyed hash",
    )

    panel_parser.add_argument(
        "--printer",
        metavar="SPEC",
        type=_printer_spec,
        help="print each 一次性告知书 and 办件凭条 on the window's ESC/POS receipt printer (GB18030, with the QR "
        f"code of the case's page): {slip.PRINTER_FORMS}; default: none, they are shown on the console only",
    )

    pad = kinds.add_parser(
        "pad",
        parents=[common],
        formatter_class=raw,
        help="好差评: the window's rating pad",
        description="好差评 rating pad: 5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意. "
        "Interactive (a digit per line on stdin) unless --score is given.",
    )
    pad.add_argument("--device", required=True, help="the pad's device id in the site configuration")
    pad.add_argument("--score", type=int, choices=range(1, 6), metavar="N", help="send one rating (1..5) and exit")
    pad.add_argument("--ticket", help="the ticket rated with --score (default: the window's last finished one)")

    camera = kinds.add_parser(
        "camera",
        parents=[common],
        formatter_class=raw,
        help="电子监察: bridge a Frigate NVR's MQTT output to camera events",
        description="Bridge Frigate's MQTT output (zone person counts, availability, "
        "detect stream health) to hallwatch camera devices.",
    )
    camera.add_argument(
        "--device",
        action="append",
        metavar="ID",
        help="a camera device id (repeatable); default: the cameras in --map, else every camera of the site",
    )
    camera.add_argument(
        "--map",
        metavar="FILE",
        help="mapping TOML: Frigate prefix, object, and per camera device its Frigate camera and zone",
    )
    camera.add_argument(
        "--frigate-broker",
        default=env("frigate_broker"),
        metavar="URL",
        help=f"the broker Frigate publishes to (env {ENV['frigate_broker']}); default: --broker",
    )
    camera.add_argument("--frigate-prefix", metavar="PREFIX", help="Frigate's mqtt.topic_prefix (default frigate)")
    camera.add_argument("--frigate-camera", metavar="NAME", help="Frigate's name of the one --device camera")
    camera.add_argument(
        "--zone", metavar="NAME", help="the Frigate zone over the window's seat (default: the window id)"
    )
    camera.add_argument(
        "--frigate-client-id",
        metavar="ID",
        help="client id on Frigate's broker (default: the first device id + '-frigate')",
    )
    return {"agent": cmd_agent}


def _printer_spec(text: str) -> str:
    try:
        slip.parse_printer(text)
    except slip.PrinterSpecError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _check_in_code(text: str) -> str:
    if not kiosk.CHECK_IN_CODE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a check-in code (six digits, as the phone's slip shows)")
    return text


def _fail(args: argparse.Namespace, zh: str, en: str, code: int = EXIT_CONFIG) -> int:
    """Say what is wrong on stderr, in the language of ``--lang``; return the exit code."""
    print(f"hallwatch agent: {zh if args.lang == 'zh' else en}", file=sys.stderr)
    return code


def _config_failed(args: argparse.Namespace, err: ConfigError) -> int:
    """A configuration that cannot be used: each problem with its file and field, as
    ``check-config`` words it."""
    if args.lang != "zh":
        return _fail(args, "", str(err))
    for problem in err.problems:
        print(f"hallwatch agent: {err.path}：{problem.zh}", file=sys.stderr)
    return EXIT_CONFIG


def _kind(kind: str) -> str:
    return f"{DEVICE_KIND.get(kind, kind)}（{kind}）"


def cmd_agent(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not args.config:
        return _fail(
            args,
            f"没有站点配置（用 --config 文件，或环境变量 {ENV['config']}）",
            f"no site configuration (use --config FILE or {ENV['config']})",
        )
    try:
        site = load_site(args.config)
        broker = parse_broker_url(args.broker, ca_file=args.ca_file)
    except ConfigError as err:
        return _config_failed(args, err)
    except BrokerUrlError as err:
        return _fail(args, f"消息服务器地址不对：{err}", str(err))
    try:
        password = _password(args)
    except OSError as err:
        return _fail(
            args, f"--password-file：读不了（{err.strerror or err}）", f"--password-file: {err.strerror or err}"
        )
    device_ids = args.device if isinstance(args.device, list) else [args.device] if args.device else []
    for device_id in device_ids:
        device = site.device(device_id)
        if device is None:
            return _fail(
                args,
                f"{args.config}：站点 {site.id} 没有设备 {device_id!r}",
                f"{args.config}: site {site.id} has no device {device_id!r}",
            )
        if device.kind.value not in KIND_OF_AGENT[args.kind]:
            return _fail(
                args,
                f"{args.config}：设备 {device_id!r} 是{_kind(device.kind.value)}，不是{_kind(args.kind)}",
                f"{args.config}: device {device_id!r} is a {device.kind.value}, not a {args.kind}",
            )
    if args.attempts < 1 or args.reply_timeout <= 0:
        return _fail(
            args,
            "--attempts 至少是 1，--reply-timeout 须大于 0",
            "--attempts must be at least 1 and --reply-timeout positive",
        )
    runner = {"kiosk": _kiosk, "panel": _panel, "pad": _pad, "camera": _camera}[args.kind]
    return runner(args, site, broker, password)


def _password(args: argparse.Namespace) -> str | None:
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            return f.read().strip()
    return password_from_env()


def _settings(args, site, broker, password, device_id: str):
    device = site.device(device_id)
    return DeviceSettings(
        site=site.id,
        device_id=device_id,
        kind=device.kind.value,
        window=device.window,
        broker=broker,
        heartbeat_s=device.heartbeat_s,
        root=args.root,
        password=password,
        reply_timeout=args.reply_timeout,
        attempts=args.attempts,
    )


def _run(args, devices: list, body: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Start the devices, run the agent, and shut every device down in order, also on
    SIGINT or SIGTERM."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stopper = asyncio.create_task(stop.wait())
        try:
            for device in devices:
                starting = asyncio.create_task(device.start(args.connect_timeout))
                await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not starting.done():  # stopped while still connecting
                    starting.cancel()
                    await asyncio.gather(starting, return_exceptions=True)
                    return EXIT_OK
                starting.result()  # BrokerUnreachable
            work = asyncio.create_task(body())
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                return work.result()
            # Stopped: the agent's work ends here whatever it was doing (even if it does not
            # take the cancellation at once), and every device then shuts down in order.
            work.cancel()
            await asyncio.wait({work}, timeout=2)
            return EXIT_OK
        finally:
            stopper.cancel()
            for device in devices:
                await device.close()

    try:
        return asyncio.run(main())
    except BrokerUnreachable as err:
        return _fail(
            args,
            f"设备 {err.device_id} 连不上消息服务器 {err.broker}（{err.reason or '超时'}）："
            "请检查网络和服务器，或找信息员",
            str(err),
            EXIT_BROKER,
        )


def _kiosk(args, site, broker, password) -> int:
    if args.take is not None and site.service(args.take) is None:
        codes = ", ".join(s.code for s in site.services)
        return _fail(
            args,
            f"--take：站点 {site.id} 没有业务 {args.take!r}（可选：{codes}）",
            f"--take: site {site.id} has no service {args.take!r} (services: {codes})",
        )
    if args.priority and args.take is None:
        return _fail(args, "--priority 要和 --take 一起用", "--priority goes with --take")
    if args.take is not None and args.checkin is not None:
        return _fail(args, "--take 和 --checkin 只能用一个", "--take and --checkin: one or the other")
    printer, failed = _open_printer(args)
    if failed is not None:
        return failed
    device = Device(_settings(args, site, broker, password, args.device))
    try:
        return _run(
            args,
            [device],
            lambda: kiosk.run(
                device,
                site,
                take=args.take,
                priority=args.priority,
                out=sys.stdout,
                err=sys.stderr,
                printer=printer,
                checkin=args.checkin,
            ),
        )
    finally:
        if printer is not None:
            printer.close()


def _panel(args, site, broker, password) -> int:
    from ..privacy import CitizenKeyError, load_citizen_secret

    try:
        secret = load_citizen_secret(args.citizen_key_file)
    except CitizenKeyError as err:
        return _fail(args, f"群众标识密钥不能用：{err}", str(err))
    settings = _settings(args, site, broker, password, args.device)
    topics = Topics(settings.root)
    view = panel.PanelView(
        site, settings.window, topics.window_state(site.id, settings.window), topics.queue_state(site.id)
    )
    printer, failed = _open_printer(args)
    if failed is not None:
        return failed
    device = Device(settings, subscriptions=[view.window_topic, view.queue_topic], on_message=view.update)
    try:
        return _run(
            args, [device], lambda: panel.run(device, view, out=sys.stdout, citizen_secret=secret, printer=printer)
        )
    finally:
        if printer is not None:
            printer.close()


def _open_printer(args: argparse.Namespace):
    """(the printer ``--printer`` names, opened, or None; the exit status when it cannot be opened)."""
    spec = args.printer
    if not spec:
        return None, None
    try:
        return slip.open_printer(spec), None
    except Exception as err:  # python-escpos's DeviceNotFoundError, USB and serial errors
        return None, _fail(
            args, f"--printer {spec}：打不开打印机（{err}）", f"--printer {spec}: cannot open the printer: {err}"
        )


def _pad(args, site, broker, password) -> int:
    settings = _settings(args, site, broker, password, args.device)
    window = site.window(settings.window)
    device = Device(settings)
    return _run(
        args,
        [device],
        lambda: pad.run(
            device,
            settings.window,
            window.name if window else settings.window,
            score=args.score,
            ticket=args.ticket,
            out=sys.stdout,
            err=sys.stderr,
        ),
    )


def _camera(args, site, broker, password) -> int:
    try:
        bridge_map = camera.load_map(args.map) if args.map else camera.BridgeMap()
        links = camera.resolve_links(site, bridge_map, args.device, args.frigate_camera, args.zone)
        frigate_broker = parse_broker_url(args.frigate_broker) if args.frigate_broker else broker
    except (camera.MappingError, BrokerUrlError) as err:
        return _fail(args, f"摄像头对应关系或 Frigate 消息服务器不对：{err}", str(err))
    prefix = args.frigate_prefix or bridge_map.prefix
    devices, bridges = [], []
    for link in links:
        device = Device(_settings(args, site, broker, password, link.device))
        devices.append(device)
        bridges.append(camera.CameraBridge(link=link, device=device))
    router = camera.FrigateRouter(bridges, prefix, bridge_map.object)
    client_id = args.frigate_client_id or f"{links[0].device}-frigate"
    return _run(args, devices, lambda: camera.run(bridges, router, frigate_broker, client_id))
