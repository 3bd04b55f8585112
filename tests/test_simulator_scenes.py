"""The simulator's staged scenes on a site that is not the demo's (no broker needed)."""

from __future__ import annotations

from conftest import ROOT

from queue_engine.config import load_site
from queue_engine.shells.mqtt import BrokerSettings
from window_agents.simulator import Simulation

START = 1795566000.0  # 2026-11-25 08:20 in Asia/Shanghai


class Recorder:
    """Stands in for the MQTT client: what would have been published."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, topic: str, payload: bytes, **options) -> None:
        self.published.append(topic)


async def test_a_scene_for_a_device_the_site_does_not_have_is_skipped():
    site = load_site(ROOT / "examples" / "village-deficient.toml")
    assert site.device("cam-w04") is None
    sim = Simulation(site, BrokerSettings(), start_at=START, speed=1.0)
    sim._client = client = Recorder()
    await sim._power("cam-w04", False, "shutdown")  # the demo's camera, switched off at 10:30
    await sim._power("cam-w04", True)  # and on again at 11:00
    assert client.published == [] and sim._down == set()
