"""The county 考核 report (``hallwatch report --county``): a scripted month of day figures for
three halls, put into a county store through the county store's own API, checked figure by
figure in the HTML and the CSV, with the ranking order and the 整改 list."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT

from queue_engine.config import load_configs
from queue_engine.county.store import Changes, CountyStore
from queue_engine.reports.audit_live import county_lines
from queue_engine.reports.county import TABLES, build_county_report
from queue_engine.shells.store import connect

COUNTY = ROOT / "examples" / "county" / "county.toml"
MONTH = "2026-07"  # no public holiday from July to mid-August: 23 working days, deadline 2026-08-14
JULY_WORKDAYS = [date(2026, 7, d) for d in range(1, 32) if date(2026, 7, d).weekday() < 5]
AUGUST_WORKDAYS = [date(2026, 8, d) for d in range(3, 15) if date(2026, 8, d).weekday() < 5]  # up to the deadline
CST = ZoneInfo("Asia/Shanghai")


def window(wid: str, staffed: float, unstaffed: float = 0.0, not_opened: float = 0.0) -> dict:
    return {
        "id": wid,
        "name": wid,
        "served": 0,
        "staffed_min": staffed,
        "not_opened_min": not_opened,
        "unstaffed_min": unstaffed,
        "unverified_min": 0.0,
        "ratings": 0,
        "satisfied_pct": None,
    }


def day_figures(site: str, day: date, **fields) -> dict:
    windows = fields.pop("windows")
    figures = {
        "v": 1,
        "site": site,
        "day": day.isoformat(),
        "final": True,
        "as_of": f"{day + timedelta(days=1)}T00:01:00.000+08:00",
        "issued": 0,
        "served": 0,
        "no_shows": 0,
        "expired": 0,
        "transferred": 0,
        "wait_mean_min": None,
        "wait_p90_min": None,
        "wait_max_min": None,
        "within_target_pct": None,
        "vacancy_min": {
            "not_opened": sum(w["not_opened_min"] for w in windows),
            "unstaffed": sum(w["unstaffed_min"] for w in windows),
            "unverified": 0.0,
        },
        "windows": windows,
        "staff": [],
        "device_offline_min": 0.0,
        "devices": [],
        "ratings": {str(s): 0 for s in range(1, 6)},
        "satisfied_pct": None,
        "bad_ratings": 0,
        "follow_ups_overdue": 0,
        "alerts": {},
    }
    figures.update(fields)
    return figures


def scripted_month() -> list[dict]:
    """chimei: 10 unstaffed minutes at w02 on three days (30 in 46 window-days), put right in
    August; xiaguan: a camera offline 15 minutes one day and one follow-up overdue, nothing
    sent since; nanwan: a village station, clean but half its ratings bad; the county centre
    sends nothing."""
    out = []
    for i, day in enumerate(JULY_WORKDAYS):
        empty = 10.0 if i in (2, 9, 15) else 0.0
        out.append(
            day_figures(
                "chimei",
                day,
                windows=[window("w01", 360.0), window("w02", 350.0 - empty, unstaffed=empty)],
                issued=40,
                served=38,
                no_shows=2,
                wait_mean_min=6.0,
                wait_p90_min=20.0 if i == 4 else 12.0,
                wait_max_min=25.0,
                ratings={"1": 0, "2": 0, "3": 0, "4": 2, "5": 8},
                satisfied_pct=100.0,
            )
        )
        first_half = i < 12
        camera = (
            [{"device": "xiaguan-cam-w01", "kind": "camera", "window": "w01", "offline_min": 15.0}] if i == 7 else []
        )
        out.append(
            day_figures(
                "xiaguan",
                day,
                windows=[window("w01", 360.0), window("w02", 360.0)],
                issued=30 if first_half else 10,
                served=30 if first_half else 10,
                wait_mean_min=4.0 if first_half else 8.0,
                wait_p90_min=9.0,
                wait_max_min=14.0 if i != 20 else 33.5,
                devices=camera,
                device_offline_min=15.0 if camera else 0.0,
                ratings={"1": 1 if i == 3 else 0, "2": 0, "3": 0, "4": 0, "5": 5},
                bad_ratings=1 if i == 3 else 0,
                follow_ups_overdue=1 if i == 3 else 0,
            )
        )
        out.append(
            day_figures(
                "nanwan",
                day,
                windows=[window("w01", 390.0)],
                issued=5,
                served=5,
                wait_mean_min=2.0,
                wait_p90_min=3.0,
                wait_max_min=4.0,
                ratings={"1": 0, "2": 1 if i % 2 else 0, "3": 0, "4": 0 if i % 2 else 1, "5": 0},
            )
        )
    # A Saturday: windows without time to staff count no window-day.
    out.append(day_figures("chimei", date(2026, 7, 4), windows=[window("w01", 0.0), window("w02", 0.0)]))
    for day in AUGUST_WORKDAYS:  # chimei keeps its windows staffed after the month
        out.append(day_figures("chimei", day, windows=[window("w01", 360.0), window("w02", 360.0)]))
    return out


EXPECTED_RANKING = ["nanwan", "chimei", "xiaguan", "neixiang"]
# site -> column label -> text, as both the HTML and the CSV show it
EXPECTED = {
    "nanwan": {
        "有数据天数": "23",
        "窗口日": "23",
        "空岗合计(分钟)": "0.0",
        "取号数": "115",
        "平均等候(分钟)": "2.0",
        "评价数": "23",
        "满意率(%)": "52.2",
        "差评": "0",
        "整改项": "0",
    },
    "chimei": {
        "有数据天数": "24",
        "窗口日": "46",
        "空岗·无人在座(分钟)": "30.0",
        "空岗合计(分钟)": "30.0",
        "每窗口日空岗(分钟)": "0.7",
        "取号数": "920",
        "办理数": "874",
        "过号": "46",
        "平均等候(分钟)": "6.0",
        "日90%等候最高(分钟)": "20.0",
        "最长等候(分钟)": "25.0",
        "评价数": "230",
        "满意率(%)": "100.0",
        "整改项": "1",
    },
    "xiaguan": {
        "有数据天数": "23",
        "窗口日": "46",
        "空岗合计(分钟)": "0.0",
        "设备离线(分钟)": "15.0",
        "摄像头离线(分钟)": "15.0",
        "最长等候(分钟)": "33.5",
        "评价数": "116",
        "满意率(%)": "99.1",
        "差评": "1",
        "差评逾期未整改": "1",
        "整改项": "2",
    },
    "neixiang": {"有数据天数": "0", "窗口日": "0", "取号数": "0", "平均等候(分钟)": "", "满意率(%)": "", "整改项": "0"},
}
# xiaguan: 12 days of 30 tickets waiting 4.0 minutes on average, 11 days of 10 waiting 8.0
EXPECTED["xiaguan"]["平均等候(分钟)"] = f"{(12 * 30 * 4.0 + 11 * 10 * 8.0) / (12 * 30 + 11 * 10):.1f}"
EXPECTED["xiaguan"]["取号数"] = str(12 * 30 + 11 * 10)
EXPECTED_RECTIFY = [  # (site, check, deadline, state), in ranking order
    ("chimei", "vacancy", "2026-08-14", "已整改"),
    ("xiaguan", "cameras", "2026-08-14", "逾期未整改"),
    ("xiaguan", "follow_ups", "2026-08-14", "逾期未整改"),
]


@pytest.fixture(scope="module")
def county_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("county") / "county.db"
    store = CountyStore(path)
    try:
        figures = scripted_month()
        store.write(Changes(figures=[(f["site"], f["day"], True, _json(f), 0.0) for f in figures]))
        store.write(Changes(figures=[(f["site"], f["day"], True, _json(f), 1.0) for f in figures[:30]]))  # sent again
    finally:
        store.close()
    return path


def _json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def hallwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "queue_engine.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


class Tables(HTMLParser):
    """Each table's rows as {data-key: text}, with the row's data-site."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[dict]] = {}
        self._table = self._key = None
        self._row: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a["data-table"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table and "data-site" in a:
            self._row = {"site": a["data-site"]}
            self.tables[self._table].append(self._row)
        elif tag == "td" and self._row is not None:
            self._key = a["data-key"]
            self._row[self._key] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self._key = None
        elif tag == "table":
            self._table = self._row = None

    def handle_data(self, data):
        if self._key is not None and self._row is not None:
            self._row[self._key] += data


def test_the_county_report_ranks_every_hall_on_its_month_s_figures_in_html_and_csv(county_db, tmp_path):
    base = ["report", "--county", "--config", str(COUNTY), "--db", str(county_db), "--month", MONTH]
    done = hallwatch(*base, "--format", "csv", "--out", str(tmp_path / "csv"))
    assert done.returncode == 0, done.stderr
    ranking_csv = (tmp_path / "csv" / f"county-report-{MONTH}-ranking.csv").read_bytes()
    assert ranking_csv.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(ranking_csv.decode("utf-8-sig"))))
    assert [r["站点代码"] for r in rows] == EXPECTED_RANKING
    assert [r["排名"] for r in rows] == ["1", "2", "3", "4"]
    by_site = {r["站点代码"]: r for r in rows}
    for site, expected in EXPECTED.items():
        for label, text in expected.items():
            assert by_site[site][label] == text, (site, label)
    rectify = list(
        csv.DictReader(io.StringIO((tmp_path / "csv" / f"county-report-{MONTH}-rectify.csv").read_text("utf-8-sig")))
    )
    assert [(r["站点代码"], r["检查项代码"], r["整改期限"], r["状态"]) for r in rectify] == EXPECTED_RECTIFY
    assert "空岗 30.0 分钟（46 个窗口日" in rectify[0]["本月情况"]
    assert "确保工作日窗口不空岗" in rectify[0]["依据"] and "摄像头" in rectify[1]["依据"]

    done = hallwatch(*base, "--format", "html", "--out", str(tmp_path / "html"))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "html" / f"county-report-{MONTH}.html").read_text("utf-8")
    parsed = Tables()
    parsed.feed(page)
    html_rows = parsed.tables["ranking"]
    assert [r["site"] for r in html_rows] == EXPECTED_RANKING
    for html_row, csv_row in zip(html_rows, rows, strict=True):  # every cell the CSV's
        assert [html_row[c.key] for c in TABLES["ranking"].columns] == list(csv_row.values())
    assert [
        (r["site"], r["check"], r["deadline"], r["state_label"]) for r in parsed.tables["rectify"]
    ] == EXPECTED_RECTIFY
    assert 'class="overdue"' in page
    # inline charts: one bar per hall with figures, the value its figure
    chart = re.search(r'<svg class="chart" data-chart="satisfied_by_hall".*?</svg>', page, re.S).group(0)
    assert re.findall(r'data-value="([\d.]+)"', chart) == ["52.2", "100", "99.1"]
    assert 'data-chart="vacancy_by_hall"' in page and 'data-chart="offline_by_hall"' in page
    # the note says what the 满意率 counts as core.figures counts it: 基本满意 (3) and better
    assert "满意率为 3、4、5 分评价占全部评价的比例" in page


def test_a_failing_line_is_done_only_when_the_last_working_days_before_its_deadline_all_pass():
    sites = load_configs([COUNTY])
    month = scripted_month()
    july = [f for f in month if f["day"] < "2026-08"]
    first_week = [f for f in month if "2026-08-03" <= f["day"] <= "2026-08-07"]
    at = datetime(2026, 8, 8, 9, tzinfo=CST).timestamp()

    def states(figures):
        report = build_county_report(sites, figures, MONTH, now=at)
        return {(r.site, r.check): r.state for r in report.rectify}

    assert states(july + first_week) == {
        ("chimei", "vacancy"): "done",
        ("xiaguan", "cameras"): "open",
        ("xiaguan", "follow_ups"): "open",
    }
    assert states(july + first_week[1:])[("chimei", "vacancy")] == "open"  # four days are not enough
    relapse = [dict(f) for f in first_week]
    relapse[-1] = day_figures("chimei", date(2026, 8, 7), windows=[window("w01", 300.0, not_opened=60.0)])
    assert states(july + relapse)[("chimei", "vacancy")] == "open"
    later = datetime(2026, 8, 15, 9, tzinfo=CST).timestamp()
    report = build_county_report(sites, july + relapse, MONTH, now=later)
    assert {(r.site, r.state) for r in report.rectify} == {("chimei", "overdue"), ("xiaguan", "overdue")}


def test_the_county_report_refuses_a_wrong_month_or_a_store_that_is_not_the_county_s(county_db, tmp_path):
    common = ["report", "--county", "--config", str(COUNTY), "--out", str(tmp_path)]
    done = hallwatch(*common, "--db", str(county_db), "--month", "2026-13")
    assert done.returncode == 2 and "'2026-13' is not a month" in done.stderr
    done = hallwatch(*common, "--db", str(county_db))
    assert done.returncode == 2 and "--month" in done.stderr
    engine_db = tmp_path / "engine.db"
    engine_db.write_bytes(b"not a database at all, but long enough to be read as a file" * 20)
    done = hallwatch(*common, "--db", str(engine_db), "--month", MONTH)
    assert done.returncode == 4 and "not an SQLite database" in done.stderr
    assert list(tmp_path.glob("*.html")) == []


AUDIT_LINE = re.compile(r"^(\S+): (pass|fail|unknown|n/a)\s+(\S+)\s+(.*)$")


def test_the_audit_judges_each_hall_s_month_from_the_county_s_day_figures(county_db):
    """``hallwatch audit --county-db``: the live lines from the day figures the county keeps,
    for every hall of the county, without the townships' stores."""
    done = hallwatch("audit", "--lang", "en", "--config", str(COUNTY), "--county-db", str(county_db), "--month", MONTH)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {}
    for text in done.stdout.splitlines():
        if match := AUDIT_LINE.match(text):
            lines[match[1], match[3]] = (match[2], match[4])
    assert f"chimei: {MONTH} 运行实绩（{county_db.name}）" in done.stdout.splitlines()
    assert lines["chimei", "vacancy:w01"][0] == "pass"
    assert lines["chimei", "vacancy:w02"] == (
        "fail",
        "工作日窗口不空岗·2号窗口：空岗 30.0 分钟（无人在座 30.0），在岗 8020.0 分钟",
    )
    assert lines["chimei", "vacancy:w03"][0] == "unknown"  # (no minute of it in the figures)
    assert lines["xiaguan", "device:xiaguan-cam-w01"][0] == "fail"
    assert "离线 15.0 分钟，23 天（据各日上报县中心的数据）" in lines["xiaguan", "device:xiaguan-cam-w01"][1]
    assert lines["xiaguan", "device:xiaguan-cam-w02"][0] == "pass"
    assert lines["xiaguan", "follow_ups"][0] == "fail"  # one shown overdue in its day's figures
    assert lines["chimei", "follow_ups"][0] == "pass"  # no bad rating
    assert lines["chimei", "cases_on_time"][0] == "unknown"  # (figures without cases)
    assert lines["nanwan", "device:nanwan-cam-w01"][0] == "n/a"  # (a village: not asked)
    assert {status for (site, check), (status, _) in lines.items() if site == "neixiang" and ":" in check} <= {
        "unknown",
        "n/a",
    }
    # A month the county has no figures of fails nothing.
    quiet = hallwatch("audit", "--config", str(COUNTY), "--county-db", str(county_db), "--month", "2026-10")
    assert quiet.returncode == 0, quiet.stdout


def test_a_bad_rating_whose_follow_up_was_not_due_yet_when_its_day_was_sent_is_unknown():
    (site,) = [s for s in load_configs([COUNTY]) if s.id == "xiaguan"]
    july = date(2026, 7, 1)
    windows = [window("w01", 360.0)]
    lines = {
        line.check: line for line in county_lines(site, [day_figures("xiaguan", july, windows=windows, bad_ratings=1)])
    }
    assert lines["follow_ups"].status == "unknown"
    assert "以站点数据库为准" in lines["follow_ups"].detail
    cases = dict.fromkeys(("opened", "completed", "on_time", "overdue", "still_open"), 0)
    cases |= {"unresolved": 0, "unresolved_completed": 0, "notices": 2, "breaches": 1}
    lines = {
        line.check: line.status
        for line in county_lines(
            site, [day_figures("xiaguan", july, windows=windows, cases={**cases, "opened": 1, "still_open": 1})]
        )
    }
    assert (lines["cases_on_time"], lines["notices"]) == ("unknown", "fail")


def test_the_audit_refuses_an_engine_s_store_as_the_county_s_and_both_at_once(county_db, tmp_path):
    engine_db = tmp_path / "hallwatch.db"
    connect(engine_db).conn.close()
    done = hallwatch("audit", "--config", str(COUNTY), "--county-db", str(engine_db))
    assert done.returncode == 4 and "county store" in done.stderr, done.stderr
    both = hallwatch("audit", "--config", str(COUNTY), "--db", str(engine_db), "--county-db", str(county_db))
    assert both.returncode == 2 and "not allowed with" in both.stderr
