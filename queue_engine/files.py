"""Writing the files the commands produce (reports, the broker's accounts and credentials,
posters): through a new file beside the target, renamed over it.

The target's name is predictable (``report-demo-2026-11-25.html``), so someone who can write
into the directory could plant a symlink there and have the report overwrite what it points
to. Here the data goes into a file created exclusively under an unpredictable name, with its
mode set on the open descriptor (whatever the umask), and ``os.replace`` then swaps that file
in for the target: a symlink at the target's name is replaced, never written through. A
reader sees the old file or the new one, never half of it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

PRIVATE = 0o600  # the default: reports name staff and carry operators' notes


@contextmanager
def replacing(path: str | Path, mode: int = PRIVATE) -> Iterator[tuple[Path, BinaryIO]]:
    """A new file beside ``path``, open for writing, that takes ``path``'s place when the block
    ends without an error and is removed otherwise. Yields its name and the open file (a
    caller that hands the file to another program closes it first)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            yield tmp, f
            if not f.closed:
                f.flush()
                os.fsync(f.fileno())  # on disk before it takes the target's name
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_file(path: str | Path, data: str | bytes, mode: int = PRIVATE) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` with ``mode``, replacing what is there."""
    with replacing(path, mode) as (_, f):
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
