"""The device farm's pure parts: the drill sites it generates and the statistics it reports.
(Its sessions run against a real broker in tests/test_faults.py.)"""

from __future__ import annotations

import tomllib

import pytest
from conftest import DEMO_SITE, ROOT

from queue_engine.config import load_site
from window_agents.farm import FarmStats, drill_site, dumps_toml, write_site

TEMPLATE = tomllib.loads(DEMO_SITE.read_text(encoding="utf-8"))


def test_site_files_round_trip_through_the_farms_toml():
    for path in [DEMO_SITE, *sorted((ROOT / "examples" / "county").rglob("*.toml"))]:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert tomllib.loads(dumps_toml(data)) == data, path


def test_a_county_of_2040_devices_is_a_valid_configuration(tmp_path):
    devices = 0
    for n in range(6):
        data = drill_site(
            TEMPLATE,
            f"s{n}",
            windows=84,
            kiosks=4,
            window_displays=True,
            heartbeat_s=2.5,
            supervision={"device_offline_grace_s": 30},
        )
        site = load_site(write_site(tmp_path / f"s{n}.toml", data))
        devices += len(site.devices)
        assert {d.heartbeat_s for d in site.devices} == {2.5}
        assert site.supervision.device_offline_grace_s == 30
        assert [s.code for s in site.services] == [s["code"] for s in TEMPLATE["services"]]
        # the template's windows in turn: w011 is like w01 (comprehensive), w012 like w02
        assert site.window("w011").role == "comprehensive" and site.window("w012").services == ["shebao"]
        assert len(site.staff) == 84
        assert all(d.id.startswith(f"s{n}-") for d in site.devices)  # ids unique on one broker
    assert devices == 2040


def test_devices_back_after_a_broker_return():
    stats = FarmStats(
        devices={
            "a": {"connected_at": [100.0, 151.0], "connections": 2},
            "b": {"connected_at": [100.0, 149.9, 153.5], "connections": 3},  # back a moment before the return
            "c": {"connected_at": [100.0], "connections": 1, "killed": True},
        },
        requests=[{"answered_at": None}, {"answered_at": 120.0}],
    )
    assert stats.back_after(150.0, since=140.0) == {"a": 1.0, "b": pytest.approx(-0.1)}
    assert stats.all_back_after(150.0, since=140.0) == 1.0
    assert stats.back_after(152.0) == {"a": None, "b": 1.5}  # a has not connected since 152
    assert stats.all_back_after(152.0) is None
    assert stats.reconnections == 3 and len(stats.unanswered) == 1
