"""``make demo`` (``python -m queue_engine.demo``) as a terminal runs it: in a process group of
its own, stopped by Ctrl-C (SIGINT to the whole group)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request

import psutil
import pytest
from conftest import DEMO_SITE, ROOT, free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROGRESS = re.compile(r"\d\d:\d\d  取号 \d+ ")  # the simulator's progress line (Chinese by default)


def progress_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if PROGRESS.match(line)]  # (a carriage return splits too)


class Demo:
    """The demo on free ports, its output (stdout and stderr together) collected as it comes."""

    def __init__(self, speed: float = 60.0):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "queue_engine.demo",
                "--config",
                str(DEMO_SITE),
                "--http-port",
                str(self.port),
                "--speed",
                str(speed),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, as a terminal's foreground job
        )
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):  # type: ignore[union-attr]
            self.chunks.append(chunk)

    @property
    def output(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")

    def serves(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    def processes(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def ctrl_c(self) -> int:
        """SIGINT to the demo's process group, as a terminal's Ctrl-C; its exit code."""
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(60)
        self.reader.join(10)
        return code

    def kill(self) -> None:
        for proc in [*self.processes(), psutil.Process(self.proc.pid)] if self.proc.poll() is None else []:
            proc.kill()


@pytest.fixture
def demo_factory():
    demos: list[Demo] = []

    def start(**kwargs) -> Demo:
        demos.append(Demo(**kwargs))
        return demos[-1]

    yield start
    for demo in demos:
        demo.kill()


def test_ctrl_c_stops_the_whole_demo_quietly_with_one_line_and_exit_code_0(demo_factory):
    demo = demo_factory()
    wait_until(demo.serves, timeout=60, what="the demo's web pages")
    wait_until(lambda: progress_lines(demo.output), timeout=60, what="the simulator's first progress line")
    children = demo.processes()
    assert len(children) == 3  # the broker, the engine and the simulator
    before = len(demo.output)
    assert demo.ctrl_c() == 0, demo.output
    output = demo.output
    assert "Traceback" not in output and "exception was never retrieved" not in output, output
    # After Ctrl-C: the demo's line, and at most a progress line that was on its way.
    after = [line for line in output[before:].splitlines() if line.strip() and not PROGRESS.match(line)]
    assert after == ["hallwatch demo stopped: broker, engine, simulator and web pages"], output[before:]
    assert [p.pid for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def test_the_demo_prints_its_progress_as_lines_and_no_reminder_it_already_followed(demo_factory):
    demo = demo_factory(speed=900.0)  # a quarter of a simulated hour a second
    progress = wait_until(lambda: progress_lines(demo.output)[2:], timeout=60, what="three progress lines")
    assert demo.ctrl_c() == 0, demo.output
    output = demo.output
    assert "\r" not in output, output
    assert re.search(r"^模拟 .+ 的一天：自 ", output, re.M) and "启动排队服务器" not in output, output
    assert all(f"{line}\n" in output for line in progress), output  # each a line of its own
