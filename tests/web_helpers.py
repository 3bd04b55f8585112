"""Shared by the web tests and the screenshot script: a second, small site (a village
service station), tokens, and a clock that the script moves by hand."""

from __future__ import annotations

from pathlib import Path

from queue_engine.shells.clock import Clock

SUPERVISOR_TOKEN = "supervisor-token-for-tests-0123456789"
MANAGER_TOKEN = "manager-token-for-demo-0123456789"
VILLAGE_TOKEN = "manager-token-for-village-0123456789"


def village_site_toml(
    site_id: str = "shuangquan", *, unstaffed_grace_min: float = 5, clear_after_s: float = 60, heartbeat_s: float = 10
) -> str:
    """A village service station (村便民服务站): two windows, each with a panel and a camera."""
    return f'''
id = "{site_id}"
name = "赤眉镇双泉村便民服务站"
kind = "village"

[web]
manager_token_env = "HALLWATCH_MANAGER_TOKEN_VILLAGE"

[supervision]
unstaffed_grace_min = {unstaffed_grace_min}
clear_after_s = {clear_after_s}
settle_s = 0  # (alerts at once after the engine connects: the tests start it and act at once)
device_offline_grace_s = 0

[[services]]
code = "daiban"
prefix = "A"
name = "帮办代办（社保、医保、民政）"
category = "帮办代办"
expected_service_min = 8

[services.guide]
basis = "《关于推进基层政务服务体系标准化规范化便利化建设的指导意见》"
conditions = "本村村民"
materials = ["居民身份证"]
time_limit = "即办"
fee = "不收费"
item_type = "即办件"

[[services]]
code = "zixun"
prefix = "B"
name = "政策咨询"
category = "咨询"
expected_service_min = 5

[services.guide]
basis = "《优化营商环境条例》"
conditions = "无"
materials = ["无"]
time_limit = "即办"
fee = "不收费"
item_type = "即办件"

[[windows]]
id = "w1"
name = "1号窗口"
unit = "双泉村便民服务站"
role = "comprehensive"

[[windows]]
id = "w2"
name = "2号窗口"
unit = "双泉村便民服务站"
role = "comprehensive"

[[devices]]
id = "panel-w1"
kind = "panel"
window = "w1"
heartbeat_s = {heartbeat_s}

[[devices]]
id = "cam-w1"
kind = "camera"
window = "w1"
heartbeat_s = {heartbeat_s}

[[devices]]
id = "panel-w2"
kind = "panel"
window = "w2"
heartbeat_s = {heartbeat_s}

[[devices]]
id = "cam-w2"
kind = "camera"
window = "w2"
heartbeat_s = {heartbeat_s}

[[staff]]
id = "v01"
name = "刘桂芝"
title = "代办员"

[[staff]]
id = "v02"
name = "王保国"
title = "村委委员"
'''


def write_village_site(directory: Path, **kwargs) -> Path:
    path = directory / "village-site.toml"
    path.write_text(village_site_toml(**kwargs), encoding="utf-8")
    return path


def token_environment() -> dict[str, str]:
    return {
        "HALLWATCH_SUPERVISOR_TOKEN": SUPERVISOR_TOKEN,
        "HALLWATCH_MANAGER_TOKEN_DEMO": MANAGER_TOKEN,
        "HALLWATCH_MANAGER_TOKEN_VILLAGE": VILLAGE_TOKEN,
    }


class ManualClock(Clock):
    """The engine's clock, moved by the script: a day's story told in seconds."""

    def __init__(self, start_at: float):
        super().__init__(start_at=start_at)
        self.t = start_at

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def real_seconds_until(self, deadline: float) -> float:
        return 0.0 if deadline <= self.t else 0.05
