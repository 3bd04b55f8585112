"""What ``hallwatch audit``, ``check-config``, ``plan`` and ``simulate`` print for people is
Chinese unless told otherwise (``--lang en`` or ``HALLWATCH_LANG=en``): the audit's
达标/未达标/未知/不适用 and its checks by name; check-config's file, field and problem; the
plan's table and totals; the simulated day's progress and count."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEMO_SITE
from deploy_helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
DEMO_TEXT = (ROOT / "examples" / "demo-site.toml").read_text(encoding="utf-8")
CJK = re.compile(r"[\u4e00-\u9fff]")


def without_lang() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "HALLWATCH_LANG"}


def test_audit_speaks_chinese_by_default():
    done = run_cli("audit", "--config", "examples/village-deficient.toml", env=without_lang())
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert "xiaowan: 未达标 场所面积：20 平方米，要求不低于 30 平方米" in lines
    assert "xiaowan: 未知　 便民服务代办点：未申报代办点数（[facts] agent_points），要求不少于 3 个" in lines
    assert any(line.startswith("xiaowan: 不适用 无差别综合受理窗口：") for line in lines)
    assert lines[-1] == "xiaowan: 达标 0 项，未达标 4 项，未知 1 项，不适用 4 项"
    assert not re.search(r"^\S+: (pass|fail|unknown|n/a)\s", done.stdout, re.M)
    assert not set(re.findall(r"[a-z_/]+", done.stdout)) & {"area", "comprehensive_window", "rating", "service_guides"}


@pytest.mark.parametrize("how", ["option", "environment"])
def test_audit_in_english_when_asked(how):
    args = ("--lang", "en") if how == "option" else ()
    env = {**without_lang(), **({"HALLWATCH_LANG": "en"} if how == "environment" else {})}
    done = run_cli("audit", "--config", "examples/demo-site.toml", *args, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "demo: 9 pass, 0 fail, 0 unknown, 0 n/a"
    assert re.search(r"^demo: pass +area +场所面积：1200 平方米", done.stdout, re.M)


def broken_site(tmp_path: Path) -> Path:
    text = DEMO_TEXT.replace("priority_cap = 2", "priority_cap = 0\npriority_limit = 3", 1)
    text = text.replace('kind = "township"', 'kind = "town"', 1)
    text = text.replace('periods = ["08:30-12:00", "14:30-17:30"]', 'periods = ["08:30-12:00", "14:30-13:30"]', 1)
    path = tmp_path / "chimei.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_config_names_the_file_the_field_and_the_problem_in_chinese(tmp_path):
    path = broken_site(tmp_path)
    done = run_cli("check-config", str(path), env=without_lang())
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{path}：配置项 kind：应为 'county'、'township' 或 'village' 之一",
        f"{path}：配置项 hours.periods：'14:30-13:30' 结束早于开始",
        f"{path}：配置项 queue.priority_cap：应不小于 1",
        f"{path}：配置项 queue.priority_limit：没有这个配置项（此处不能写它，请检查拼写）",
    ]
    english = run_cli("check-config", "--lang", "en", str(path), env=without_lang())
    assert english.returncode == 2
    assert f"{path}: queue.priority_cap: Input should be greater than or equal to 1" in english.stderr.splitlines()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('code = "shebao"', 'code = "shebao"\nfoo = 1'), "没有这个配置项"),
        (('timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"'), "不认识的时区：'Asia/Beijing'"),
        (('prefix = "J"', 'prefix = "A"'), "与前面的重复：'A'"),
        (("expected_service_min = 6", "expected_service_min = 0"), "应大于 0"),
        (("area_m2 = 1200", 'area_m2 = "大"'), "应为数字"),
        (
            ('public_url = "https://chimei-hall.example.cn"', 'public_url = "ftp://hall"'),
            "'ftp://hall' 不是大厅的公网地址",
        ),
        (
            ('[complaints]\ncounty = "0377-65532345"', '[complaints]\ncounty = "投诉"'),
            '\'投诉\' 不是电话号码：数字和 -，可加“转”和分机号，如 "0377-65123456" 或 "12345"',
        ),
    ],
)
def test_check_config_problems_in_chinese(tmp_path, change, problem):
    old, new = change
    assert old in DEMO_TEXT
    path = tmp_path / "site.toml"
    path.write_text(DEMO_TEXT.replace(old, new, 1), encoding="utf-8")
    done = run_cli("check-config", str(path), env=without_lang())
    assert done.returncode == 2
    assert problem in done.stderr, done.stderr
    for line in done.stderr.splitlines():
        assert line.startswith(f"{path}：") and CJK.search(line.removeprefix(str(path))), line


def test_check_config_says_ok_and_warns_in_chinese():
    done = run_cli("check-config", "examples/village-deficient.toml", "examples/demo-site.toml", env=without_lang())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        "examples/demo-site.toml：正确：站点 demo（内乡县赤眉镇行政审批服务中心）："
        "12 项业务，10 个窗口，33 台设备，12 名工作人员" in lines
    )
    assert (
        "examples/village-deficient.toml：提醒：配置项 windows[0]：没有摄像头看着 w01（1号窗口），无法核实是否有人在岗"
        "（一直是“无法核实”），也永远不会报“窗口空岗”；"
        '请给它配一个摄像头（[[devices]] kind = "camera"，window = "w01"）' in lines
    )
    assert all(": ok:" not in line and ": warning:" not in line for line in lines)


def plan(*args: str, env: dict[str, str]) -> list[str]:
    done = run_cli(
        "plan",
        "--config",
        "examples/demo-site.toml",
        "--arrivals",
        "examples/arrivals-yearend.csv",
        "--target-wait",
        "15",
        "--replications",
        "2",
        *args,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def without_names(line: str) -> str:
    """A line without the site's and the services' names (Chinese in either language)."""
    names = ["内乡县赤眉镇行政审批服务中心", *re.findall(r'^name = "(.+)"$', DEMO_TEXT, re.M)]
    for name in names:
        line = line.replace(name, "")
    return line


def test_plan_speaks_chinese_by_default_without_an_english_half():
    lines = plan(env=without_lang())
    assert lines[0] == "窗口测算：内乡县赤眉镇行政审批服务中心（demo），examples/arrivals-yearend.csv"
    assert lines[1] == "目标平均等候：15 分钟；办理时长：指数分布；每个数字来自 2 个模拟日（随机种子 1）"
    assert "城乡居民基本养老保险参保登记及待遇领取 [shebao]：平均办理 6 分钟" in lines
    assert lines.count("时段         到达人数  建议窗口  模拟平均等候(分钟)  Erlang C 窗口  Erlang C 等候(分钟)") == 5
    assert [line.split()[2] for line in lines if line.startswith("12:00-13:00") and len(line.split()) > 2] == [
        "休息"
    ] * 5
    assert (
        sum(
            re.fullmatch(r"全天：\d+ 人，平均等候 [\d.]+ 分钟，窗口工时 [\d.]+（Erlang C [\d.]+）", line) is not None
            for line in lines
        )
        == 5
    )
    assert "全厅合计（各业务专用窗口之和）：" in lines
    # No English half: Latin letters only in the method's name, the file, the site's and the services' codes.
    codes = re.compile(r"Erlang C|examples/arrivals-yearend\.csv|（demo）|\[[a-z]+\]")
    assert [line for line in lines if re.search(r"[A-Za-z]{2,}", codes.sub("", line))] == []


@pytest.mark.parametrize("how", ["option", "environment"])
def test_plan_in_english_when_asked(how):
    args = ("--lang", "en") if how == "option" else ()
    env = {**without_lang(), **({"HALLWATCH_LANG": "en"} if how == "environment" else {})}
    lines = plan("--service", "shebao", *args, env=env)
    assert lines[0] == "capacity plan: 内乡县赤眉镇行政审批服务中心 (demo), examples/arrivals-yearend.csv"
    assert "城乡居民基本养老保险参保登记及待遇领取 [shebao]: mean service 6 min" in lines
    assert "hour         arrivals  windows  sim wait min  Erlang C windows  Erlang C wait min" in lines
    assert any(line.startswith("12:00-13:00") and line.split()[2] == "closed" for line in lines)
    assert not [line for line in lines if CJK.search(without_names(line))]


def test_a_simulated_day_is_told_in_chinese_and_counted_as_json(broker, engine_factory):
    start = "2026-11-25T08:20:00+08:00"
    engine_factory(start_at=start, speed=300.0).start()
    done = subprocess.run(
        [sys.executable, "-m", "queue_engine.cli", "simulate", "--config", str(DEMO_SITE), "--broker", broker.url]
        + ["--start-at", start, "--speed", "300", "--closing", "09:00"],
        capture_output=True,
        text=True,
        cwd=DEMO_SITE.parent.parent,
        timeout=300,
        env=without_lang(),
    )
    assert done.returncode == 0, done.stderr
    first, *progress, summary, count = done.stdout.splitlines()
    assert first == (
        "模拟 内乡县赤眉镇行政审批服务中心 的一天：自 2026-11-25T08:20:00+08:00 起，300 倍速；"
        "请用同样的 --start-at 和 --speed 启动排队服务器"
    )
    assert progress and all(
        re.fullmatch(r"\d\d:\d\d  取号 \d+  办结 \d+  过号 \d+  转办 \d+  告警：\D+( \d+)?(，\D+ \d+)*", line)
        for line in progress
    ), progress
    tally = json.loads(count)  # the last line stays JSON, for scripts
    assert tally["issued"] > 0
    words = "，".join(
        f"{zh} {tally[key]}"
        for key, zh in [
            ("issued", "取号"),
            ("called", "叫号"),
            ("served", "办结"),
            ("no_shows", "过号"),
            ("transfers", "转办"),
            ("ratings", "评价"),
            ("refused", "被拒"),
        ]
    )
    assert summary.startswith(f"模拟结束：{words}，告警："), summary
    assert not re.search(r"[a-z]{2,}", summary), summary  # alert kinds by their Chinese names
