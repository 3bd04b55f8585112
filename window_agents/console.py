"""Keyboard input for the agents: lines from stdin, read without blocking the event loop.

A daemon thread reads stdin (a terminal, a pipe or a file alike) and hands each line to
the loop, so a panel or a pad can be driven by a person at a keyboard or by a script.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from typing import TextIO


class Lines:
    """Lines of a text stream, stripped; ``await next()`` returns None at end of input."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream if stream is not None else sys.stdin
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, name="stdin", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._stream:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, line.strip())
            self._loop.call_soon_threadsafe(self._queue.put_nowait, None)
        except (OSError, ValueError, RuntimeError):  # stdin closed, or the loop has ended
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def next(self) -> str | None:
        return await self._queue.get()


def say(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")
    out.flush()
