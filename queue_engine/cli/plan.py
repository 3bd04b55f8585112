"""``hallwatch plan``: the windows to open each hour of a peak day (thin over
``queue_engine.planning``; the command itself lives in ``queue_engine.cli_plan`` until the
planning package is split)."""

from __future__ import annotations

import argparse

from ..cli_plan import add_plan_parser, cmd_plan
from .common import Handler


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    add_plan_parser(sub)
    return {"plan": cmd_plan}
