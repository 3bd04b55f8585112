"""The core is pure: no IO imports, no clock reads, no files, and the same events at the
same times always give the same commands."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from core_helpers import BASE, DAY, SITE_ID, local_ts, make_site

from queue_engine.core import Engine
from queue_engine.core import events as ev

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "queue_engine" / "core"
TESTS = Path(__file__).resolve().parent

FORBIDDEN_MODULES = (
    "asyncio",
    "aiomqtt",
    "paho",
    "sqlite3",
    "sqlite_utils",
    "aiohttp",
    "prometheus_client",
    "socket",
    "threading",
    "selectors",
    "subprocess",
)
# The core reads the site model only for type checking; at runtime it gets a built Site.
FORBIDDEN_AT_RUNTIME = ("queue_engine.config", "pydantic")


def modules_after_import(statement: str) -> set[str]:
    """The modules loaded by a fresh interpreter after ``statement``."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


# -- (a) imports ------------------------------------------------------------------------------
def test_importing_the_core_loads_no_io_module_and_not_the_config():
    modules = modules_after_import("import queue_engine.core")
    assert "queue_engine.core.hall" in modules  # the import did happen
    assert [m for m in FORBIDDEN_MODULES + FORBIDDEN_AT_RUNTIME if loaded(modules, m)] == []


def test_the_import_check_can_see_an_import():
    # The same check on the config model must see pydantic, or the test above proves nothing.
    modules = modules_after_import("import queue_engine.config")
    assert loaded(modules, "pydantic")
    assert loaded(modules, "queue_engine.config")


# -- (b) source scan --------------------------------------------------------------------------
FORBIDDEN_CALLS = (
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "date.today",
    "time.time",
    "time.monotonic",
    "time.perf_counter",
)


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and dotted(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for child in node.body:
                inside |= {id(n) for n in ast.walk(child)}
    return inside


def impurities(source: str, filename: str = "<source>") -> list[str]:
    tree = ast.parse(source, filename)
    type_checking = _type_checking_only(tree)
    found: list[str] = []

    def where(node: ast.AST) -> str:
        return f"{filename}:{node.lineno}"

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in ("time", "os") or top in FORBIDDEN_MODULES:
                    found.append(f"{where(node)}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            top = module.split(".")[0]
            if node.level == 0 and (top in ("time", "os") or top in FORBIDDEN_MODULES):
                found.append(f"{where(node)}: from {module} import")
            # the config (pydantic, tomllib) may be imported for type checking only
            if module.endswith("config") and id(node) not in type_checking:
                found.append(f"{where(node)}: runtime import of {'.' * node.level}{module}")
        elif isinstance(node, ast.Attribute):
            name = dotted(node)
            if name is not None:
                if name.split(".")[0] == "os":
                    found.append(f"{where(node)}: {name}")
                if any(name == f or name.endswith("." + f) for f in FORBIDDEN_CALLS):
                    found.append(f"{where(node)}: {name}")
        elif isinstance(node, ast.Name) and node.id == "open":
            found.append(f"{where(node)}: open")
    return found


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_core_has_source_files():
    names = {p.name for p in core_files()}
    assert {
        "__init__.py",
        "events.py",
        "model.py",
        "commands.py",
        "errors.py",
        "lanes.py",
        "hall.py",
        "engine.py",
    } <= names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.name)
def test_core_source_reads_no_clock_and_does_no_io(path):
    assert impurities(path.read_text(encoding="utf-8"), path.name) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import time",
        "import time as t",
        "from time import monotonic",
        "import os",
        "from os import path",
        "import os.path",
        "import socket",
        "import threading",
        "import asyncio",
        "from sqlite3 import connect",
        "x = datetime.now()",
        "x = datetime.datetime.now(tz)",
        "x = datetime.utcnow()",
        "x = datetime.today()",
        "x = date.today()",
        "x = time.time()",
        "x = time.monotonic()",
        "x = time.perf_counter()",
        "clock = datetime.now",
        "x = os.environ['A']",
        "x = os.getcwd()",
        "f = open('x')",
        "with open('x') as f: pass",
        "from ..config import Site",
        "from queue_engine.config import Site",
    ],
)
def test_the_scan_catches_each_forbidden_form(snippet):
    assert impurities(snippet) != []


def test_the_scan_allows_what_the_core_needs():
    clean = (
        "from __future__ import annotations\n"
        "from datetime import date, datetime, timedelta\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..config import Site\n"
        "x = datetime.fromtimestamp(now, tz)\n"
        "y = datetime.combine(d, t, tz).timestamp()\n"
        "z = d + timedelta(days=1)\n"
    )
    assert impurities(clean) == []


# -- (c) determinism ----------------------------------------------------------------------------
def script() -> list[tuple[ev.Event | None, float]]:
    """A scripted day and the morning after: (event, time); None means engine.tick(time)."""

    def kiosk(n, service, **kw):
        return ev.TicketRequest(site=SITE_ID, device="kiosk-1", id=f"k{n}", service=service, **kw)

    def panel(n, window, cls, **kw):
        return cls(site=SITE_ID, device=f"panel-{window}", id=f"p{n}", **kw)

    t = BASE
    steps: list[tuple[ev.Event | None, float]] = []
    services = ["shebao", "budongchan", "shebao", "fankui", "shebao", "budongchan", "shebao", "budongchan"]
    for n, service in enumerate(services):
        priority = ev.Priority.ELDERLY if n in (2, 5) else None
        steps.append((kiosk(n, service, priority=priority), t + n * 7.5))
    t += 120
    n = 0
    for window, staff in (("w01", "s001"), ("w02", "s002"), ("w03", "s003"), ("w09", "s004")):
        steps.append((panel(n := n + 1, window, ev.StaffLogin, staff=staff), t := t + 3))
    for _ in range(3):
        for window in ("w01", "w02", "w03"):
            steps.append((panel(n := n + 1, window, ev.CallNext), t := t + 11))
            steps.append((panel(n := n + 1, window, ev.ServiceStart), t := t + 40))
            steps.append((panel(n := n + 1, window, ev.ServiceFinish, outcome=ev.Outcome.ACCEPTED), t := t + 300))
        steps.append((ev.Rating(site=SITE_ID, device="pad-w01", id=f"r{n}", window="w01", score=5), t := t + 5))
    steps.append((panel(n := n + 1, "w02", ev.CallNext), t := t + 9))  # refused: queue empty
    steps.append((kiosk(99, "fankui"), t := t + 1))
    steps.append((panel(n := n + 1, "w09", ev.CallNext), t := t + 9))
    steps.append((panel(n := n + 1, "w09", ev.TicketTransfer, to_window="w01"), t := t + 9))
    steps.append((panel(n := n + 1, "w01", ev.ServiceFinish, outcome=ev.Outcome.DONE), t := t + 9))  # refused
    steps.append((panel(n := n + 1, "w01", ev.CallNext), t := t + 9))
    steps.append((panel(n := n + 1, "w01", ev.CallSkip), t := t + 60))
    steps.append((panel(n := n + 1, "w01", ev.CallPick, ticket="F002"), t := t + 60))
    steps.append((panel(n := n + 1, "w01", ev.TicketTransfer, to_service="shebao"), t := t + 9))
    steps.append((kiosk(100, "shebao"), t := t + 1))
    steps.append((kiosk(101, "hunyin"), t := t + 1))  # refused
    steps.append((kiosk(102, "shebao"), local_ts(2026, 11, 25, 18, 0)))  # refused: closed
    steps.append((None, BASE + DAY - 9 * 3600))  # midnight: expiry
    steps.append((kiosk(103, "shebao"), BASE + DAY))
    return steps


def run(steps) -> list:
    engine = Engine([make_site()])
    commands: list = []
    for event, now in steps:
        commands += engine.tick(now) if event is None else engine.handle(event, now)
    return commands


def test_same_events_same_times_same_commands():
    steps = script()
    first, second = run(steps), run(steps)
    assert first == second
    # the script is not trivial: it issues, calls, rates, refuses and expires
    kinds = {type(c).__name__ for c in first}
    assert {"TicketChanged", "WindowChanged", "AnnounceCall", "RatingRecorded", "Reply"} <= kinds
    assert any(getattr(c, "ok", True) is False for c in first)
    assert any(getattr(getattr(c, "ticket", None), "status", None) == "expired" for c in first)
    assert any(getattr(getattr(c, "ticket", None), "transfers", 0) == 2 for c in first)
    assert len(first) > 100


def test_same_commands_whatever_the_hash_seed():
    """Set iteration order depends on PYTHONHASHSEED: the core must not."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_core_purity as t; "
        "print('\\n'.join(repr(c) for c in t.run(t.script())))"
    )
    outputs = []
    for seed in ("1", "2", "3"):
        result = subprocess.run(
            [sys.executable, "-c", code, str(TESTS)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].splitlines() == [repr(c) for c in run(script())]
