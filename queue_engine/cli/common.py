"""What every ``hallwatch`` command shares: the exit codes, the environment variables that
stand in for options, and the option types. One place, so the commands agree."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from datetime import date, datetime

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_FAILED = 1  # a request refused, an audit line failed, a tool failed
EXIT_CONFIG = 2  # bad configuration or arguments
EXIT_BROKER = 3  # the broker unreachable, or refusing us
EXIT_STORE = 4  # the store cannot be used

# Environment variables that stand in for options (documented in the README). Read when the
# parser is built, never at import.
ENV = {
    "config": "HALLWATCH_CONFIG",
    "broker": "HALLWATCH_BROKER",
    "db": "HALLWATCH_DB",
    "ca_file": "HALLWATCH_CA_FILE",
    "root": "HALLWATCH_TOPIC_ROOT",
    "client_id": "HALLWATCH_CLIENT_ID",
    "http": "HALLWATCH_HTTP",
    "password": "HALLWATCH_DEVICE_PASSWORD",
    "frigate_broker": "HALLWATCH_FRIGATE_BROKER",
    "lang": "HALLWATCH_LANG",
}
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"

Handler = Callable[[argparse.Namespace], int]


def env(name: str, default: str | None = None) -> str | None:
    """The value of the environment variable that stands in for option ``name``."""
    return os.environ.get(ENV[name], default)


def add_lang_option(parser: argparse.ArgumentParser) -> None:
    """``--lang zh|en``: what the command prints for people, Chinese unless told. (Not from
    ``LANG``: servers are commonly set to en_US or C whatever their users read.)"""
    parser.add_argument(
        "--lang",
        choices=("zh", "en"),
        default=env("lang", "zh"),
        help=f"the language of the output: zh (Chinese, default) or en (env {ENV['lang']})",
    )


def config_files(values: list[str] | None) -> list[str]:
    """``--config`` values, else those of HALLWATCH_CONFIG (``:``-separated)."""
    if values:
        return values
    from_env = env("config")
    return from_env.split(os.pathsep) if from_env else []


def fail(command: str, message: object, code: int = EXIT_CONFIG) -> int:
    """Say what is wrong on stderr, prefixed with the command; return the exit code."""
    print(f"hallwatch {command}: {message}", file=sys.stderr)
    return code


def report(error: object, code: int = EXIT_CONFIG) -> int:
    """An error whose text already names the file and the field (ConfigError)."""
    print(error, file=sys.stderr)
    return code


# -- option types -------------------------------------------------------------------------------
def parse_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time, e.g. 2026-11-25T09:00:00+08:00") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. +08:00")
    return moment.timestamp()


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def time_of_day(text: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day HH:MM")
    return text


def file_mode(text: str) -> int:
    """``--mode``: octal permission bits such as 0600 or 644, nothing beyond rwx for all three."""
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal file mode such as 0600") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"{text!r}: a file mode is at most 0777 (no setuid, setgid or sticky bit)")
    return mode


def argument_type(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a parser that raises ValueError with a readable message."""

    def checked(text: str) -> object:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return checked


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type for a positive number: ``positive(int)``, ``positive(float)``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value

    return parse


def add_config_option(parser: argparse.ArgumentParser, *, repeatable: bool = True) -> None:
    if repeatable:
        parser.add_argument(
            "--config",
            action="append",
            metavar="FILE",
            help=f"site TOML file, or a county file that includes site files; repeatable "
            f"(env {ENV['config']}, ':'-separated)",
        )
    else:
        first = (env("config") or "").split(os.pathsep)[0] or None
        parser.add_argument(
            "--config",
            metavar="FILE",
            default=first,
            help=f"the site's configuration (TOML) (env {ENV['config']}, its first file)",
        )


def add_broker_options(parser: argparse.ArgumentParser, *, broker_help: str) -> None:
    """``--broker``, ``--ca-file`` and ``--root``, as every MQTT client of the product has them."""
    parser.add_argument("--broker", default=env("broker", DEFAULT_BROKER), help=f"{broker_help} (env {ENV['broker']})")
    parser.add_argument("--ca-file", default=env("ca_file"), help=f"CA certificate for mqtts:// (env {ENV['ca_file']})")
    parser.add_argument("--root", default=env("root", "hallwatch"), help=f"MQTT topic root (env {ENV['root']})")
