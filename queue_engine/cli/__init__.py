"""The ``hallwatch`` command: a thin shell over the library, one module per command group.

Each group module has ``register(subparsers) -> {command: handler}``; a handler takes the
parsed arguments and returns the exit code (``cli.common``: 0 ok, 1 failed, 2 bad
configuration or arguments, 3 broker, 4 store). Nothing is registered at import: the parser
is built by ``build_parser``.
"""

from __future__ import annotations

import argparse

from . import agents, check, county, deploy, engine, plan, posters, reports, simulate
from .common import Handler

GROUPS = (engine, county, check, deploy, reports, plan, agents, simulate, posters)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    parser = argparse.ArgumentParser(prog="hallwatch", description="Queueing and window supervision for service halls.")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Handler] = {}
    for group in GROUPS:
        handlers.update(group.register(sub))
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    return handlers[args.command](args)


__all__ = ["build_parser", "main"]
