"""The documentation says what the code does: every command and option, the supervision
settings, the protocol's error codes."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

from queue_engine.cli import build_parser
from queue_engine.config import Supervision, parse_site
from queue_engine.core.errors import ErrorCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser, _ = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_option_is_documented():
    undocumented = []
    for name, sub in subcommands().items():
        if f"hallwatch {name}" not in README + DOCS:
            undocumented.append(f"hallwatch {name}")
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help" and flag not in README + DOCS:
                    undocumented.append(f"hallwatch {name} {flag}")
    assert undocumented == []


def test_the_supervision_example_is_a_valid_configuration():
    doc = (ROOT / "docs" / "supervision.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```toml\n(.*?)```", doc, re.S)
    data = tomllib.loads((ROOT / "examples" / "demo-site.toml").read_text(encoding="utf-8"))
    data.update(tomllib.loads(block))
    site = parse_site(data)
    assert site.calendar.covered_years == [2027]
    for name in Supervision.model_fields:
        assert name in block, f"[supervision] {name} is not in docs/supervision.md"


def test_every_reply_error_code_is_documented():
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    shared = ROOT.parent / "shared" / "PROTOCOL.md"
    known = shared.read_text(encoding="utf-8") if shared.exists() else ""
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in protocol + known]
    assert missing == []
