"""The screenshot script runs: the three pages, 1920x1080, after a scripted morning, and the
user manual's (docs/zh/img/)."""

from __future__ import annotations

import struct

import pytest
from screenshots import MANUAL_SHOTS, PAGES, take

pytestmark = pytest.mark.integration


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


async def test_the_screenshot_script_renders_the_three_pages_and_the_manual_s(tmp_path):
    shots = await take(tmp_path / "shots", workdir=tmp_path, manual_out=tmp_path / "manual")
    assert sorted(p.name for p in shots) == sorted(PAGES + MANUAL_SHOTS)
    assert {p.parent.name for p in shots if p.name in MANUAL_SHOTS} == {"manual"}
    for path in shots:
        assert png_size(path.read_bytes()) == (1920, 1080)
        assert path.stat().st_size > 50_000  # a page, not a blank screen
