"""The manual's installation without Docker (docs/zh/it.md, 4.3), followed line by line in a
fresh copy of the repository, and its backup (4.7) made while the engine runs.

What needs root and the system's own services (apt-get, files under /etc, systemctl) is left
out; in their place the test gives the broker the files the chapter installs (the production
configuration with the accounts broker-config wrote), and ``pip install .`` is stood in for by
a ``.venv/bin/hallwatch`` that runs this tree's code."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, free_port, wait_until
from deploy_helpers import production_broker

pytestmark = pytest.mark.integration

CHAPTER = (ROOT / "docs" / "zh" / "it.md").read_text(encoding="utf-8")
NEEDS_ROOT = ("sudo ", "| sudo ")
# Stood in for: the venv and pip install (a wrapper), the root steps (the broker started below).
STOOD_IN_FOR = ("python3 -m venv .venv", ".venv/bin/pip install .")


def shell_lines(heading: str) -> list[str]:
    """The ```sh lines of the section that starts with ``heading``."""
    start = CHAPTER.index(f"\n## {heading}")
    end = CHAPTER.find("\n## ", start + 1)
    section = CHAPTER[start : end if end > 0 else None]
    return [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", section, re.S)
        for line in block.splitlines()
        if line.strip()
    ]


def install_hallwatch(clone: Path) -> None:
    """What ``.venv/bin/pip install .`` gives: a ``hallwatch`` command (here, this tree's)."""
    bin_dir = clone / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "hallwatch"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m queue_engine.cli "$@"\n')
    wrapper.chmod(0o755)


def env_file(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
    )


def healthz(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read()
    except OSError:
        return None


def test_the_installation_chapter_without_docker_works_in_a_fresh_copy(tmp_path):
    clone = tmp_path / "hallwatch"
    for part in ("examples", "broker_config"):
        shutil.copytree(ROOT / part, clone / part)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALLWATCH_")}
    http_port = free_port()
    ran, skipped = [], []
    broker = engine = None
    try:
        for line in shell_lines("4.3") + shell_lines("4.7"):
            if line.startswith(NEEDS_ROOT) or any(marker in line for marker in NEEDS_ROOT[1:]):
                skipped.append(line)
            elif line in STOOD_IN_FOR:
                if line.startswith(".venv/bin/pip"):
                    install_hallwatch(clone)
                skipped.append(line)
            elif line == "set -a; . var/broker/engine.env; set +a":
                env.update(env_file(clone / "var" / "broker" / "engine.env"))
                ran.append(line)
            elif line.startswith(".venv/bin/hallwatch engine "):
                # the broker as steps 1 and 5 install it: the production configuration, these accounts
                broker = production_broker(tmp_path / "broker", clone / "var").start()
                env["HALLWATCH_BROKER"] = env["HALLWATCH_BROKER"].replace("127.0.0.1:1883", f"127.0.0.1:{broker.port}")
                command = shlex.split(line.replace(":9108", f":{http_port}"))
                log = open(tmp_path / "engine.log", "w")
                engine = subprocess.Popen(command, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT)
                log.close()
                wait_until(
                    lambda: "ready: subscribed to 1 site(s)" in (tmp_path / "engine.log").read_text(),
                    timeout=30,
                    what="the engine's ready line",
                )
                ran.append(line)
            elif line.startswith("curl -s "):
                url = line.split()[-1].replace(":9108", f":{http_port}")
                assert wait_until(lambda url=url: healthz(url), what="/healthz") == b'{"status": "ok"}'
                ran.append(line)
            else:
                result = subprocess.run(
                    line, shell=True, cwd=clone, env=env, capture_output=True, text=True, timeout=120
                )
                assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
                ran.append(line)
        assert engine is not None and engine.poll() is None, (tmp_path / "engine.log").read_text()
    finally:
        if engine is not None and engine.poll() is None:
            engine.terminate()
            engine.wait(15)
        if broker is not None:
            broker.stop()

    assert all(line.startswith("sudo ") or "| sudo " in line or line in STOOD_IN_FOR for line in skipped)
    assert [line.split()[1] for line in ran if line.startswith(".venv/bin/hallwatch")] == [
        "check-config",
        "broker-config",
        "engine",
    ]
    # what it made: the accounts and the credentials sheet, a store, and its backup
    assert {"passwd", "acl", "credentials.md", "credentials.csv", "engine.env"} <= {
        p.name for p in (clone / "var" / "broker").iterdir()
    }
    assert "panel-w02" in (clone / "var" / "broker" / "credentials.md").read_text(encoding="utf-8")
    with sqlite3.connect(clone / "var" / "hallwatch-backup.db") as backup:
        assert backup.execute("PRAGMA application_id").fetchone()[0] == 1213681989
        assert backup.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert engine.returncode == 0
