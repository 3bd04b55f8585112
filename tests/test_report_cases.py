"""The report's 办件 figures: a scripted month of cases driven through the core (the site of
tests/test_core_cases.py: shebao a 即办件, budongchan a 承诺件 of 5 working days, 帮办代办 10;
the 办不成事 window w09), committed with the store's own writer, then every figure of the
``cases`` table checked in the HTML and the CSV. November 2026 has no holiday: Monday to
Friday are its working days. The report covers November, as of Tuesday 1 December 09:00.

  when        visit / event                                       case (due)
  Fri 10-30   budongchan 受理 at w03 (s003)                       J1030 (before the period)
  Mon 11-02   budongchan 受理 at w03 (s003), twice                C1, C2 (11-09)
              shebao at w02 (s002): 办结 ×3, 受理 ×1; at w01 (s001): 办结
  Tue 11-03   budongchan 帮办代办 at w01 (s001), agent s002        C3 (11-17), never closed
  Wed 11-04   shebao 办不成 at w02, goes on to w09, 办不成 there    C4 unresolved (11-06)
  Thu 11-05   C1 completed (3 days), C4 completed (1 day)
  Tue 11-10   budongchan 一次性告知 at w03 (s003), citizen X       N1
              shebao 一次性告知 at w02 (s002)                      N2
  Thu 11-12   C2 completed (10 days, after its due day)
  Fri 11-13   budongchan 一次性告知 at w01 (s001), citizen X       N3: a breach
  Mon 11-16   fankui 办不成 at w09 (s004)                          C5 unresolved (11-23)
  Wed 11-18   C5 withdrawn
  Fri 11-27   budongchan 受理 at w03 (s003)                       C6 (12-04), open
"""

from __future__ import annotations

from datetime import date

import msgspec
import pytest
from core_helpers import SITE_ID
from test_core_cases import at, case_event, cases_driver, finish, opened, visit
from test_reports import Tables, picked, read_csv

from queue_engine import wire
from queue_engine.core import events as ev
from queue_engine.county.store import Changes, CountyStore
from queue_engine.dayfigures import day_figures
from queue_engine.privacy import citizen_key
from queue_engine.records import Processed
from queue_engine.reports import build_report, render_html, write_csv
from queue_engine.reports.county import build_county_report, render_county_html
from queue_engine.shells.store import connect, write_batch

O = ev.Outcome  # noqa: E741
NOV = 11
CITIZEN = citizen_key(b"a citizen secret of the test hall", "13800000000")
AS_OF = at(date(2026, 12, 1), 9)


def nov(day: int, hour: int = 9) -> float:
    return at(date(2026, NOV, day), hour)


def on(d, moment: float) -> None:
    d.now = max(d.now, moment)


def close(d, window: str, staff: str, cls, number: str, **fields) -> None:
    if d.hall.windows[window].staff != staff:
        d.login(window, staff)
    commands = case_event(d, f"panel-{window}", cls, case=number, **fields)
    assert all(r.ok for r in commands if hasattr(r, "ok")), commands


def run_month():
    d = cases_driver(at(date(2026, 10, 30), 9))
    opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED))  # before the period
    on(d, nov(2))
    c1 = opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED))
    c2 = opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED))
    assert (c1.due_day, c2.due_day) == ("2026-11-09", "2026-11-09")
    for outcome in (O.DONE, O.DONE, O.DONE, O.ACCEPTED):
        visit(d, "shebao", "w02", "s002", outcome)
    visit(d, "shebao", "w01", "s001", O.DONE)
    on(d, nov(3))
    c3 = opened(visit(d, "budongchan", "w01", "s001", O.PROXY, agent="s002"))
    assert c3.due_day == "2026-11-17"
    on(d, nov(4))
    d.issue("shebao")
    d.login("w02", "s002")
    finish(d, "w02", O.FAILED)  # goes on to the 办不成事 window
    d.login("w09", "s004")
    c4 = opened(finish(d, "w09", O.FAILED))
    assert (c4.kind.value, c4.due_day) == ("unresolved", "2026-11-06")
    on(d, nov(5))
    close(d, "w03", "s003", ev.CaseComplete, c1.no, result="已登记发证")
    close(d, "w09", "s004", ev.CaseComplete, c4.no, result="已协调县社保局办结")
    on(d, nov(10))
    visit(d, "budongchan", "w03", "s003", O.INFORMED, citizen=CITIZEN, missing=(1,))
    visit(d, "shebao", "w02", "s002", O.INFORMED, missing=(1,))
    on(d, nov(12))
    close(d, "w03", "s003", ev.CaseComplete, c2.no, result="已登记发证")
    on(d, nov(13))
    visit(d, "budongchan", "w01", "s001", O.INFORMED, citizen=CITIZEN, missing=(2,))
    on(d, nov(16))
    c5 = opened(visit(d, "fankui", "w09", "s004", O.FAILED))
    assert c5.due_day == "2026-11-23"
    on(d, nov(18))
    close(d, "w09", "s004", ev.CaseWithdraw, c5.no, note="群众撤回")
    on(d, nov(27))
    assert opened(visit(d, "budongchan", "w03", "s003", O.ACCEPTED)).due_day == "2026-12-04"
    return d


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = run_month()
    path = tmp_path_factory.mktemp("cases") / "hallwatch.db"
    db = connect(path)
    write_batch(db.conn, [Processed(at=d.now, site=SITE_ID, commands=d.log)])
    db.conn.close()
    site = d.engine.hall(SITE_ID).site
    return build_report([site], path, [SITE_ID], date(2026, NOV, 1), date(2026, NOV, 30), now=AS_OF)


COLUMNS = (
    "dimension_label",
    "id",
    "opened",
    "completed",
    "on_time",
    "overdue",
    "still_open",
    "mean_days",
    "on_the_spot_visits",
    "on_the_spot",
    "on_the_spot_pct",
    "notices",
    "breaches",
    "unresolved",
    "unresolved_completed",
    "unresolved_mean_days",
)
# fmt: off
EXPECTED = [
    dict(zip(COLUMNS, row))
    for row in (
        # who            opened done on-time overdue open days  即办 当场 率    告知 违规 办不成 结  天
        ("全站", SITE_ID,   "6", "3", "2", "2", "2", "4.7", "5", "4", "80.0", "3", "1", "2", "1", "1.0"),
        ("事项", "shebao",  "1", "1", "1", "0", "0", "1.0", "5", "4", "80.0", "1", "0", "1", "1", "1.0"),
        ("事项", "budongchan", "4", "2", "1", "2", "2", "6.5", "0", "0", "", "2", "1", "0", "0", ""),
        ("事项", "fankui",  "1", "0", "0", "0", "0", "",    "0", "0", "",     "0", "0", "1", "0", ""),
        ("窗口", "w01",     "1", "0", "0", "1", "1", "",    "1", "1", "100.0", "1", "1", "0", "0", ""),
        ("窗口", "w02",     "0", "0", "0", "0", "0", "",    "4", "3", "75.0", "1", "0", "0", "0", ""),
        ("窗口", "w03",     "3", "2", "1", "1", "1", "6.5", "0", "0", "",     "1", "0", "0", "0", ""),
        ("窗口", "w09",     "2", "1", "1", "0", "0", "1.0", "0", "0", "",     "0", "0", "2", "1", "1.0"),
        ("工作人员", "s001", "0", "0", "0", "0", "0", "",    "1", "1", "100.0", "1", "1", "0", "0", ""),
        ("工作人员", "s002", "1", "0", "0", "1", "1", "",    "4", "3", "75.0", "1", "0", "0", "0", ""),
        ("工作人员", "s003", "3", "2", "1", "1", "1", "6.5", "0", "0", "",     "1", "0", "0", "0", ""),
        ("工作人员", "s004", "2", "1", "1", "0", "0", "1.0", "0", "0", "",     "0", "0", "2", "1", "1.0"),
    )
]
# fmt: on


def test_every_case_figure_in_the_html(report):
    html = render_html(report)
    tables = Tables(html)
    assert picked(tables.tables[("cases", SITE_ID)], EXPECTED) == EXPECTED
    kpis = {label: value for (site, label), value in tables.kpis.items() if site == SITE_ID}
    assert (kpis["办件"], kpis["办件超期"], kpis["重复告知"], kpis["即办件当场办结率(%)"]) == ("6", "2", "1", "80.0")


def test_every_case_figure_in_the_csv(report, tmp_path):
    write_csv(report, tmp_path)
    rows = read_csv(tmp_path / "cases.csv", "cases")
    assert {row.pop("site") for row in rows} == {SITE_ID}
    assert picked(rows, EXPECTED) == EXPECTED
    assert rows[1]["name"] == "社保业务"


def test_a_case_counts_in_the_period_it_was_opened_in(tmp_path):
    d = run_month()
    site = d.engine.hall(SITE_ID).site
    conn = connect(tmp_path / "hallwatch.db").conn
    write_batch(conn, [Processed(at=d.now, site=SITE_ID, commands=d.log)])
    october = build_report([site], conn, [SITE_ID], date(2026, 10, 1), date(2026, 10, 31), now=AS_OF)
    row = october.sites[0].cases[0]
    # Opened on 10-30, due 11-06, still open on 12-01: October's one case, overdue.
    assert (row.dimension, row.opened, row.overdue, row.still_open, row.on_the_spot_visits) == ("site", 1, 1, 1, 0)


def test_each_day_s_figures_carry_its_cases_and_the_county_adds_them_up_to_the_month_s(report, tmp_path):
    """The day figures (dayfigures.py) carry the 办件 of each day, as the county service decodes
    them, through the county's store into the county report, whose month is the site report's."""
    d = run_month()
    site = d.engine.hall(SITE_ID).site
    path = tmp_path / "hallwatch.db"
    conn = connect(path).conn
    write_batch(conn, [Processed(at=d.now, site=SITE_ID, commands=d.log)])
    conn.close()
    days = [day_figures(path, site, date(2026, NOV, n), AS_OF, final=True) for n in range(1, 31)]
    cases = {f["day"][-2:]: f["cases"] for f in days}
    none = dict.fromkeys(wire.WireCasesDay.__struct_fields__, 0)
    # C1 done on time, C2 done after its due day
    assert cases["02"] == {**none, "opened": 2, "completed": 2, "on_time": 1, "overdue": 1}
    assert cases["03"] == {**none, "opened": 1, "still_open": 1, "overdue": 1}  # C3, never closed
    assert cases["04"] == {
        **none,
        "opened": 1,
        "completed": 1,
        "on_time": 1,
        "unresolved": 1,
        "unresolved_completed": 1,
    }
    assert cases["10"] == {**none, "notices": 2}
    assert cases["13"] == {**none, "notices": 1, "breaches": 1}
    assert cases["16"] == {**none, "opened": 1, "unresolved": 1}  # C5, withdrawn: closed, not completed
    assert cases["27"] == {**none, "opened": 1, "still_open": 1}  # C6, due 12-04
    assert cases["05"] == none
    # On the wire, as the county service decodes it; an older engine's figures have none.
    decoder = msgspec.json.Decoder(wire.WireDayFigures)
    assert msgspec.to_builtins(decoder.decode(wire.encode(days[1]))) == days[1]
    older = {key: value for key, value in days[1].items() if key != "cases"}
    assert decoder.decode(wire.encode(older)).cases is None

    county = CountyStore(tmp_path / "county.db")
    try:
        county.write(Changes(figures=[(SITE_ID, f["day"], True, wire.encode(f).decode(), 0.0) for f in days]))
        had = county.figures()
    finally:
        county.close()
    (hall,) = build_county_report([site], had, "2026-11", now=AS_OF).halls
    month = report.sites[0].cases[0]
    assert (hall.cases_opened, hall.cases_overdue, hall.unresolved_cases, hall.notice_breaches) == (6, 2, 2, 1)
    assert (month.opened, month.overdue, month.unresolved, month.breaches) == (6, 2, 2, 1)
    page = render_county_html(build_county_report([site], had, "2026-11", now=AS_OF))
    assert '<td data-key="cases_opened" class=num>6</td>' in page
    assert '<td data-key="cases_overdue" class=num>2</td>' in page
    # A hall whose engine sends no cases: the columns are empty, not 0.
    (old,) = build_county_report([site], [{**f, "cases": None} for f in had], "2026-11", now=AS_OF).halls
    assert (old.cases_opened, old.cases_overdue) == (None, None)
