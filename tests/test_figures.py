"""One definition of 空岗 and of 满意率 (core/figures.py): the manager console, the supervision
console's ranking, the report and the metrics give the same figures for one scripted morning.

A real store (SQLite) receives every batch the core decides; the console's views and the
metrics read the core, the report reads the store. The morning (Wednesday 2026-11-25, opening
08:30-12:00):

  w01  camera cam-w01. Nobody logs in until 08:40 (未开窗 10 min); the seat is empty 10:00-10:20
       (无人在座 20 min); the camera is off 11:00-11:30 (无法核实 30 min).
  w02  no camera: logged in from 08:30 to 11:00 (无法核实 150 min), then nobody (未开窗 60 min).
  w03  nobody logs in all morning (未开窗 210 min).
  w09  need not be staffed (must_staff false): closed all morning, which is no 空岗.
  Ratings at w01: 5, 4, 3, 2, 1, 5: 满意率 4 of 6.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from core_helpers import SITE_ID, local_ts, supervision_site_dict

from queue_engine.app import EngineApp
from queue_engine.config import parse_site
from queue_engine.core import events as ev
from queue_engine.core.figures import SATISFIED_SCORES
from queue_engine.records import Processed
from queue_engine.reports import build_report
from queue_engine.shells.clock import Clock
from queue_engine.shells.metrics import EngineMetrics
from queue_engine.shells.mqtt import BrokerSettings
from queue_engine.shells.store import connect, write_batch
from queue_engine.web import views

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_MINUTES = {
    "w01": {"not_opened": 10, "unstaffed": 20, "unverified": 30},
    "w02": {"not_opened": 60, "unstaffed": 0, "unverified": 150},
    "w03": {"not_opened": 210, "unstaffed": 0, "unverified": 0},
    "w09": {"not_opened": 0, "unstaffed": 0, "unverified": 0},
}
SCORES = (5, 4, 3, 2, 1, 5)


def wed(hour: int, minute: int = 0) -> float:
    return local_ts(2026, 11, 25, hour, minute)


class Morning:
    """The engine of an EngineApp (not started: no broker is needed to decide and to store),
    driven at exact moments, every batch committed to a real store."""

    def __init__(self, tmp_path: Path):
        data = supervision_site_dict(windows={"w09": {"must_staff": False}})
        data["supervision"]["device_offline_grace_s"] = 60
        self.site = parse_site(data)
        self.db_path = tmp_path / "hallwatch.db"
        self.db = connect(self.db_path)
        self.app = EngineApp(
            [self.site], broker=BrokerSettings(), db_path=self.db_path, clock=Clock(start_at=wed(12), speed=1e-9)
        )
        self.engine = self.app.engine
        self.now = wed(8)
        self.n = 0
        self.batches: list[Processed] = []  # everything committed, for the metrics to count
        self._commit(self.engine.tick(self.now))

    def _commit(self, commands) -> None:
        batch = [Processed(at=self.now, site=SITE_ID, commands=list(commands))]
        write_batch(self.db.conn, batch)
        self.batches += batch

    def until(self, moment: float) -> None:
        while self.engine.next_deadline() <= moment:
            self.now = self.engine.next_deadline()
            self._commit(self.engine.tick(self.now))
        self.now = moment

    def send(self, moment: float, cls, device: str, **fields) -> None:
        self.until(moment)
        self.n += 1
        self._commit(self.engine.handle(cls(site=SITE_ID, device=device, id=f"e{self.n}", **fields), moment))

    def play(self) -> None:
        self.send(wed(8, 0), ev.DeviceStatus, "cam-w01", online=True)
        self.send(wed(8, 30), ev.StaffLogin, "panel-w02", staff="s002")
        self.send(wed(8, 40), ev.StaffLogin, "panel-w01", staff="s001")
        self.send(wed(8, 40), ev.Presence, "cam-w01", window="w01", present=True, count=1)
        self.send(wed(8, 45), ev.TicketRequest, "kiosk-1", service="shebao")
        for n, score in enumerate(SCORES):
            at = wed(9) + n * 300
            self.send(at, ev.TicketRequest, "kiosk-1", service="shebao")
            self.send(at + 10, ev.CallNext, "panel-w01")
            self.send(at + 20, ev.ServiceStart, "panel-w01")
            self.send(at + 60, ev.ServiceFinish, "panel-w01", outcome=ev.Outcome.DONE)
            self.send(at + 70, ev.Rating, "pad-w01", window="w01", score=score)
        self.send(wed(10, 0), ev.Presence, "cam-w01", window="w01", present=False, count=0)
        self.send(wed(10, 20), ev.Presence, "cam-w01", window="w01", present=True, count=1)
        self.send(wed(11, 0), ev.StaffLogout, "panel-w02")
        self.send(wed(11, 0), ev.DeviceStatus, "cam-w01", online=False, reason="shutdown")
        self.send(wed(11, 30), ev.DeviceStatus, "cam-w01", online=True)
        self.until(wed(12))
        self._commit(self.engine.flush_accounting(wed(12)))


@pytest.fixture(scope="module")
def morning(tmp_path_factory):
    m = Morning(tmp_path_factory.mktemp("figures"))
    m.play()
    return m


def test_the_console_the_ranking_the_report_and_the_metrics_give_the_same_vacancy(morning):
    hall = morning.engine.hall(SITE_ID)
    end = wed(12)
    console = {row["window"]: row["vacant_min"] for row in views.windows(hall, end)}
    ranking = {row["window"]: row["vacant_min"] for row in views.ranking([hall], end)["windows"]}
    report = build_report([morning.site], morning.db_path, [SITE_ID], wed_date(), wed_date(), now=end)
    rows = {row.id: row for row in report.sites[0].windows}
    metrics = EngineMetrics(morning.app)

    def gauge(window: str, category: str) -> float:
        value = metrics.registry.get_sample_value(
            "hallwatch_window_vacant_seconds", {"site": SITE_ID, "window": window, "category": category}
        )
        return round(value / 60, 1)

    for window, expected in EXPECTED_MINUTES.items():
        total = sum(expected.values())
        assert console[window] == {**expected, "total": total}, window
        assert {c: getattr(rows[window], f"{c}_min") for c in expected} == expected, window
        assert rows[window].vacant_min == total, window
        assert {c: gauge(window, c) for c in expected} == expected, window
        if total:
            assert ranking[window] == {**expected, "total": total}, window
        else:
            assert window not in ranking  # (no 空岗, no line in the ranking)
    assert rows["w09"].closed_min == 210  # closed, and it need not be staffed: not 空岗
    # The ranking puts the longest first: w03 (210), w02 (210: 60 + 150), w01 (60).
    assert [w for w in views.ranking([hall], end)["windows"]][0]["minutes"] == 210


def test_the_console_the_report_and_the_metrics_give_one_satisfaction(morning):
    hall = morning.engine.hall(SITE_ID)
    expected = round(100 * sum(1 for s in SCORES if s in SATISFIED_SCORES) / len(SCORES), 1)
    assert expected == 66.7
    console = views.figures(hall, wed(12))["ratings"]["satisfied_pct"]
    report = build_report([morning.site], morning.db_path, [SITE_ID], wed_date(), wed_date(), now=wed(12))
    # The metrics: the recording rule's own formula over the engine's rating counters.
    rule = (ROOT / "dashboards/prometheus/rules/hallwatch-recording.yml").read_text(encoding="utf-8")
    satisfied_scores = {int(s) for s in re.search(r'score=~"([\d|]+)"', rule)[1].split("|")}
    metrics = EngineMetrics(morning.app)
    metrics.committed(morning.batches)
    ratings = {
        score: metrics.registry.get_sample_value(
            "hallwatch_ratings_total", {"site": SITE_ID, "window": "w01", "score": str(score)}
        )
        for score in range(1, 6)
    }
    by_rule = round(100 * sum(n for s, n in ratings.items() if s in satisfied_scores) / sum(ratings.values()), 1)
    assert console == round(report.sites[0].satisfied_pct, 1) == by_rule == expected
    assert satisfied_scores == set(SATISFIED_SCORES)


def wed_date():
    from datetime import date

    return date(2026, 11, 25)


def test_the_reports_say_the_satisfaction_they_count():
    """The notes of the report and of the county report state 满意率 as core/figures.py counts
    it: the scores of SATISFIED_SCORES and no others, each by its word."""
    from queue_engine.core.vocabulary import RATING
    from queue_engine.reports import county, html

    for notes in (html.NOTES, county.NOTES):
        assert not [n for n in notes if "好评率" in n]
        (note,) = [n for n in notes if "占全部评价" in n]
        said = [int(score) for score in re.findall(r"(\d) 分为", note)]
        assert sorted(said) == sorted(SATISFIED_SCORES), note
        assert all(f"{score} 分为{RATING[score]}" in note for score in SATISFIED_SCORES)
