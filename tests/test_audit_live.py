"""The audit's live figures (``hallwatch audit --db STORE --month YYYY-MM``): the scripted day of
tests/test_reports.py in a real store, audited as a process. The day's known minutes:
w01 staffed all day (0 空岗), w02 30 minutes nobody at the seat, w03 60 minutes unverified
(its camera switched off 15:00-16:00), w09 not opened until 10:00 (90 minutes); A003's bad
rating never followed up (overdue by now), B001's and A007's followed up.

The site file given to the audit declares what the static checks ask (facts, a 24-hour terminal,
complete guides), so that every static line passes and the exit code tells the live lines."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from test_reports import (
    SITE,
    SITE_TOML,
    STANDARD,
    audit_lines,
    hallwatch,
    site_config,
    store,  # noqa: F401 (the fixture: the scripted day's store)
)

from queue_engine.config import parse_site
from queue_engine.reports import audit_site, build_report
from queue_engine.reports.audit_live import last_month, live_audit, live_lines

GUIDE = """
[services.guide]
basis = "《测试条例》"
conditions = "本人办理"
materials = ["居民身份证"]
time_limit = "即办"
fee = "不收费"
item_type = "即办件"
"""
FACTS = """
[facts]
area_m2 = 1200
residents = 30000
agent_points = 5

[[devices]]
id = "selfservice-1"
kind = "selfservice"
heartbeat_s = 3600
"""


def passing_site_toml() -> str:
    """SITE_TOML with what the static audit asks declared: every static line passes."""
    with_guides = re.sub(r"(target_wait_min = \d+\n)", lambda m: m[1] + GUIDE, SITE_TOML)
    return with_guides + FACTS


@pytest.fixture(scope="module")
def audit_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "hall-r.toml"
    path.write_text(passing_site_toml(), encoding="utf-8")
    return path


def test_the_test_site_passes_every_static_line():
    import tomllib

    site = parse_site(tomllib.loads(passing_site_toml()))
    assert {line.status for line in audit_site(site)} == {"pass"}


def test_the_audit_judges_each_window_s_known_empty_minutes_of_the_month(store, audit_file):  # noqa: F811
    done = hallwatch("audit", "--config", str(audit_file), "--db", str(store), "--month", "2026-11")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout.splitlines()
    assert f"{SITE}: 2026-11 运行实绩（{store.name}）" in out
    assert f"{SITE}: 达标　 工作日窗口不空岗·1号窗口：空岗 0.0 分钟，在岗 380.0 分钟" in out
    assert f"{SITE}: 未达标 工作日窗口不空岗·2号窗口：空岗 30.0 分钟（无人在座 30.0），在岗 360.0 分钟" in out
    # Under each live line, the standard's words it rests on.
    below = out[
        out.index(f"{SITE}: 未达标 工作日窗口不空岗·2号窗口：空岗 30.0 分钟（无人在座 30.0），在岗 360.0 分钟") + 1
    ]
    assert below == f"{SITE}: 　　　 依据 内放办〔2022〕9号 二（一）3：「确保工作日窗口不空岗」"

    english = hallwatch("audit", "--lang", "en", "--config", str(audit_file), "--db", str(store), "--month", "2026-11")
    assert english.returncode == 1
    lines = audit_lines(english.stdout)
    # (follow_ups: A003's is due on 2026-12-03 and overdue after it, by the wall clock; judged below)
    live = {check: status for (site, check), (status, _) in lines.items() if ":" in check or check in LIVE_CHECKS}
    assert live == {
        "vacancy:w01": "pass",
        "vacancy:w02": "fail",
        "vacancy:w03": "fail",
        "vacancy:w09": "fail",
        "device:cam-w01": "pass",
        "device:cam-w02": "pass",
        "device:cam-w03": "fail",
        "device:cam-w09": "pass",
        "device:selfservice-1": "unknown",  # (declared for the static line, never heard of)
        "cases_on_time": "pass",
        "notices": "pass",
        "ratings": "n/a",
    }
    assert lines[(SITE, "follow_ups")][0] in ("pass", "fail")


LIVE_CHECKS = ("cases_on_time", "notices", "ratings")


def test_the_live_lines_carry_the_report_s_figures(store):  # noqa: F811
    site = site_config()

    def lines_as_of(now: float) -> dict:
        report = build_report([site], store, [SITE], date(2026, 11, 1), date(2026, 11, 30), now=now)
        return {line.check: line for line in live_lines(site, report.sites[0])}

    lines = lines_as_of(NOW + 9 * 86400)  # 2026-12-10: A003's follow-up (due 2026-12-03) overdue
    assert lines["vacancy:w03"].detail == "空岗 60.0 分钟（无法核实 60.0），在岗 330.0 分钟"
    assert lines["vacancy:w09"].detail.startswith("空岗 90.0 分钟（未开窗 90.0）")
    assert lines["device:cam-w03"].detail.startswith("离线 60.0 分钟，在线 330.0 分钟")
    assert (lines["follow_ups"].status, lines["follow_ups"].detail) == (
        "fail",
        "差评 3 条：已整改 2 条，逾期未整改 1 条，待整改 0 条",
    )
    # 6 of the 9 ratings score 3 or more (满意率, core.figures); the standard sets no figure for it
    assert lines["ratings"].detail == "评价 9 条，满意率 66.7%，差评 3 条；标准未定满意率指标，只列不判"
    assert lines["ratings"].status == "n/a"
    # Before A003's follow-up is due, it is open, not overdue.
    early = lines_as_of(NOW)["follow_ups"]
    assert (early.status, early.detail) == ("pass", "差评 3 条：已整改 2 条，逾期未整改 0 条，待整改 1 条")
    # Every live line cites the standard's own words.
    for line in lines.values():
        assert "".join(line.basis.words.split()) in "".join(STANDARD.split()), line.basis


NOW = 1796054400.0  # 2026-12-01 00:00 +08:00


def test_a_month_without_figures_fails_nothing_and_the_default_month_is_the_last_complete_one(
    store,  # noqa: F811
    audit_file,
):
    done = hallwatch("audit", "--lang", "en", "--config", str(audit_file), "--db", str(store), "--month", "2026-10")
    assert done.returncode == 0, done.stdout
    lines = audit_lines(done.stdout)
    assert lines[(SITE, "vacancy:w02")][0] == "unknown"
    assert lines[(SITE, "device:cam-w02")][0] == "unknown"
    assert f"{SITE}: 2026-10 运行实绩（{store.name}）" in done.stdout.splitlines()
    assert last_month(date(2026, 12, 1)) == "2026-11"
    assert last_month(date(2027, 1, 31)) == "2026-12"
    assert live_audit(site_config(), store, now=NOW)[0] == "2026-11"  # the site's date: 2026-12-01
    assert live_audit(site_config(), store, now=NOW - 1)[0] == "2026-10"  # still November there


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--month", "2026-11"], 2, "give the engine store with --db"),
        (["--db", "/nonexistent/hallwatch.db"], 2, "no such store"),
        (["--db", "STORE", "--month", "11/2026"], 2, "is not a month"),
    ],
)
def test_the_audit_refuses_a_month_without_a_store_or_a_missing_store(store, audit_file, args, code, message):  # noqa: F811
    args = [str(store) if a == "STORE" else a for a in args]
    done = hallwatch("audit", "--config", str(audit_file), *args)
    assert done.returncode == code
    assert message in done.stderr


def test_a_file_that_is_not_an_engine_store_is_refused_with_code_4(audit_file, tmp_path):
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"not a database at all" * 100)
    done = hallwatch("audit", "--config", str(audit_file), "--db", str(bogus))
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stdout == ""  # refused before any line
