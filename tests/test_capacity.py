"""Capacity planning (增设服务窗口): Erlang C, the simulation through the pure core, the
``hallwatch plan`` command, and the live ``queue_surge`` alert (scripted time).

The whole M/M/c grid (utilisation 0.5-0.9 x 1-10 windows, long runs) is in bench/plan.py;
here a few cases with little noise for their length run on every test run."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from core_helpers import SITE_ID, Driver, local_ts, site_dict

from queue_engine.cli import main as cli_main
from queue_engine.config import load_site, parse_site
from queue_engine.core import Engine
from queue_engine.core.alerts import AlertKind, AlertState
from queue_engine.core.capacity import RecentArrivals, erlang_b, erlang_c, mean_wait, windows_needed
from queue_engine.core.commands import AlertChanged
from queue_engine.planning import (
    ArrivalsError,
    Demand,
    OpeningHours,
    plan_service,
    read_arrivals,
    simulate_day,
    simulate_mmc,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo-site.toml"
YEAREND = ROOT / "examples" / "arrivals-yearend.csv"


# -- Erlang C against independent formulas and published values ----------------------------
def erlang_c_by_factorials(c: int, a: float) -> float:
    """The textbook form: P0 = [sum_{k<c} a^k/k! + a^c/(c! (1-rho))]^-1, C = a^c/(c! (1-rho)) P0."""
    rho = a / c
    tail = a**c / math.factorial(c) / (1 - rho)
    return tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)


def erlang_b_in_logs(c: int, a: float) -> float:
    """B = (a^c/c!) / sum_k a^k/k!, summed in logarithms (no overflow for thousands of servers)."""
    terms = [k * math.log(a) - math.lgamma(k + 1) for k in range(c + 1)]
    top = max(terms)
    return math.exp(terms[-1] - top) / sum(math.exp(t - top) for t in terms)


def test_erlang_c_by_hand():
    # 10 citizens an hour, 15-minute services (4 an hour), 3 windows: a = 2.5 erlangs, rho = 5/6.
    # By hand: sum_{k<3} = 1 + 2.5 + 3.125 = 6.625; a^3/3!/(1/6) = 15.625; P0 = 1/22.25;
    # C = 15.625/22.25 = 0.70225; Wq = C/(3*4 - 10) = 0.35112 h = 21.07 min.
    assert erlang_c(3, 2.5) == pytest.approx(15.625 / 22.25, rel=1e-12)
    assert mean_wait(10, 4, 3) == pytest.approx(15.625 / 22.25 / 2, rel=1e-12)
    assert mean_wait(10, 4, 3) * 60 == pytest.approx(21.07, abs=0.01)
    # one window more: C = 0.31986, Wq = 0.0533 h = 3.2 min
    assert mean_wait(10, 4, 4) == pytest.approx(erlang_c_by_factorials(4, 2.5) / 6, rel=1e-12)
    assert mean_wait(10, 4, 4) * 60 == pytest.approx(3.20, abs=0.01)


def test_erlang_published_table_values():
    # Erlang B tables: 10 trunks offered 5 erlangs block 1.84 %; 1 trunk offered 1 erlang, 50 %.
    assert erlang_b(10, 5.0) == pytest.approx(0.018385, abs=5e-6)
    assert erlang_b(1, 1.0) == 0.5
    # Erlang C from it: 10 servers, 5 erlangs: 3.61 % of arrivals wait.
    assert erlang_c(10, 5.0) == pytest.approx(0.0361, abs=5e-5)
    # M/M/1: C = rho and Wq = rho / (mu - lambda); M/M/2: C = 2 rho^2 / (1 + rho).
    assert erlang_c(1, 0.9) == pytest.approx(0.9)
    assert mean_wait(9, 10, 1) == pytest.approx(0.9 / (10 - 9))
    assert erlang_c(2, 1.5) == pytest.approx(2 * 0.75**2 / 1.75)


@pytest.mark.parametrize("c", [1, 2, 3, 5, 8, 10, 20, 40])
@pytest.mark.parametrize("rho", [0.1, 0.5, 0.8, 0.95])
def test_erlang_c_matches_the_factorial_formula(c, rho):
    assert erlang_c(c, rho * c) == pytest.approx(erlang_c_by_factorials(c, rho * c), rel=1e-9)


def test_the_recursion_is_stable_for_thousands_of_windows():
    for c, a in [(500, 480.0), (2000, 1900.0), (5000, 4990.0)]:
        b = erlang_b(c, a)
        assert 0 < b < 1
        assert b == pytest.approx(erlang_b_in_logs(c, a), rel=1e-9)
        assert 0 < erlang_c(c, a) < 1


def test_unstable_and_empty_queues():
    assert erlang_c(3, 3.0) == 1.0 and erlang_c(3, 4.0) == 1.0
    assert mean_wait(12, 4, 3) == math.inf
    assert mean_wait(10, 4, 0) == math.inf
    assert mean_wait(0, 4, 0) == 0.0
    assert erlang_c(5, 0.0) == 0.0
    with pytest.raises(ValueError):
        mean_wait(1, 0, 1)


def test_windows_needed():
    assert windows_needed(10, 4, 0.1) == 4  # 3 windows: 0.351 h; 4: 0.053 h
    assert windows_needed(10, 4, 0.36) == 3
    assert windows_needed(10, 4, 1e9) == 3  # the fewest with rho < 1 (2.5 erlangs)
    assert windows_needed(0, 4, 0.1) == 0
    with pytest.raises(ValueError):
        windows_needed(10, 4, 0)
    # the smallest c that meets the target, checked by brute force
    for lam, mu, target in [(30, 10, 0.01), (100, 7.5, 1 / 12), (3, 2, 0.5), (900, 10, 0.001), (50, 60, 0.2)]:
        c = windows_needed(lam, mu, target)
        assert lam < c * mu and mean_wait(lam, mu, c) <= target
        assert c == 1 or lam >= (c - 1) * mu or mean_wait(lam, mu, c - 1) > target


def test_recent_arrivals_count_a_sliding_window():
    recent = RecentArrivals(1800)
    for t in (0, 60, 120):
        recent.add(t)
    assert recent.count(120) == 3
    assert recent.next_expiry(120) == 1800
    assert recent.count(1800) == 2  # the one at 0 has left (1800 s span)
    assert recent.rate(1860) == pytest.approx(1 / 1800)
    assert recent.count(5000) == 0 and recent.next_expiry(5000) is None


# -- the simulation through the core against Erlang C -----------------------------------------
# Cases with little noise for their length (a moderate utilisation, few windows: many citizens
# wait, and the queue forgets its past quickly): with 40,000 citizens each, the 95 % confidence
# half-width of the simulated mean wait is about 6 %. The full grid, with long runs: bench/plan.py.
@pytest.mark.parametrize("rho, windows", [(0.6, 1), (0.5, 2), (0.5, 3)])
def test_simulated_mm_c_waits_match_erlang_c(rho, windows):
    result = simulate_mmc(rho, windows, 40_000, seed=11)
    assert result.erlang == pytest.approx(mean_wait(rho * windows, 1.0, windows))
    assert abs(result.relative_error) < 0.10, result


def test_a_simulated_day_leaves_every_ticket_done_in_the_core():
    site = load_site(DEMO)
    demand = Demand({"shebao": {9: 20, 10: 25}, "huji": {9: 5, 10: 4}})
    sim = simulate_day(site, {"shebao": {9: 3, 10: 3}, "huji": {9: 1, 10: 1}}, demand, seed=3)
    hall = sim.engine.hall(site.id)
    simulated = sum(len(w) for w in sim.waits.values())
    assert simulated == len(hall.tickets) > 30
    assert {t.status.value for t in hall.tickets.values()} == {"done"}
    assert all(w.phase.value in ("idle", "closed") for w in hall.windows.values())
    assert sim.unserved == 0


def test_opening_hours_close_the_windows_in_breaks_and_serve_overtime():
    opening = OpeningHours(load_site(DEMO))  # 08:30-12:00, 14:30-17:30
    h = 3600.0
    assert opening.open_seconds(8) == 1800 and opening.open_seconds(12) == 0 and opening.open_seconds(17) == 1800
    assert opening.schedule({8: 2, 9: 3, 12: 0, 13: 0, 14: 4, 17: 1}) == [
        (8 * h, 0),
        (8.5 * h, 2),
        (9 * h, 3),
        (12 * h, 0),
        (14.5 * h, 4),
        (17 * h, 1),
    ]
    # waits count in opening hours, and after the close until called
    assert opening.wait(8 * h, 9 * h) == 1800
    assert opening.wait(11.5 * h, 15 * h) == 1800 + 1800
    assert opening.wait(17 * h, 18 * h) == 3600


def test_plan_is_deterministic_and_meets_the_target():
    site = load_site(DEMO)
    demand = read_arrivals(YEAREND, site)
    first = plan_service(site, "huji", demand, 15, replications=4, seed=5)
    again = plan_service(site, "huji", demand, 15, replications=4, seed=5)
    assert first == again
    open_hours = [h for h in first.hours if h.open_min > 0]
    assert [h.hour for h in first.hours] == list(range(8, 18))
    assert all(h.windows >= 1 and h.met for h in open_hours)
    assert all(h.sim_wait_min is None or h.sim_wait_min <= 15 for h in first.hours)
    assert [h.windows for h in first.hours if h.open_min == 0] == [0, 0]  # the lunch break


# -- the command -----------------------------------------------------------------------------
def test_plan_command_prints_a_recommendation_per_hour(capsys):
    code = cli_main(
        [
            "plan",
            "--config",
            str(DEMO),
            "--arrivals",
            str(YEAREND),
            "--target-wait",
            "15",
            "--replications",
            "3",
            "--seed",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Erlang C" in out and "建议窗口" in out
    for service in ("shebao", "yibao", "huji", "jiuye", "budongchan"):
        assert f"[{service}]" in out
    rows = [line.split() for line in out.splitlines() if line[:2].isdigit() and line[2] == ":"]
    per_service = [r for r in rows if len(r) >= 5]
    assert len(per_service) == 10 + 10 + 10 + 9 + 9  # every hour of every service in the CSV
    for row in per_service:
        assert row[2].isdigit() or row[2] == "休息"  # windows, or closed for lunch
    whole_hall = [r for r in rows if len(r) == 2]
    assert [r[0] for r in whole_hall] == [f"{h:02d}:00-{h + 1:02d}:00" for h in range(8, 18)]


BAD_FILES = [
    ("hour,service,arrivals\n9,shebao,12\n25,shebao,3\n", 3, "hour '25'"),
    ("hour,service,arrivals\n9,hunyin,12\n", 2, "unknown service 'hunyin'"),
    ("hour,service,arrivals\n9,shebao,-1\n", 2, "between 0 and"),
    ("hour,service,arrivals\n9,shebao,many\n", 2, "'many' is not a number"),
    ("hour,service,arrivals\n9,shebao,4\n# a comment\n\n09:00,shebao,5\n", 5, "already given on line 2"),
    ("hour,service,arrivals\n9,shebao\n", 2, "expected 3 fields"),
    ("# year-end\nhour,service,count\n9,shebao,4\n", 2, "unknown column 'count'"),
    ("hour,service\n9,shebao\n", 1, "missing column 'arrivals'"),
]


@pytest.mark.parametrize("text, line, problem", BAD_FILES)
def test_a_malformed_csv_names_file_line_and_problem(tmp_path, capsys, text, line, problem):
    path = tmp_path / "arrivals.csv"
    path.write_text(text, encoding="utf-8")
    code = cli_main(["plan", "--config", str(DEMO), "--arrivals", str(path), "--target-wait", "15"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"{path}:{line}: ") and problem in err, err


def test_unreadable_and_empty_csv(tmp_path):
    site = load_site(DEMO)
    (tmp_path / "gbk.csv").write_bytes("hour,service,arrivals\n9,社保,1\n".encode("gbk"))
    (tmp_path / "empty.csv").write_text("# nothing\n", encoding="utf-8")
    (tmp_path / "header.csv").write_text("hour,service,arrivals\n", encoding="utf-8")
    for name, problem in [
        ("gbk.csv", "not UTF-8"),
        ("empty.csv", "no header"),
        ("header.csv", "no rows"),
        ("missing.csv", "cannot read"),
    ]:
        with pytest.raises(ArrivalsError) as info:
            read_arrivals(tmp_path / name, site)
        assert str(info.value).startswith(f"{tmp_path / name}: ") and problem in str(info.value)


def test_the_installed_command_exits_2_on_a_malformed_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("hour,service,arrivals\n8,shebao,abc\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "queue_engine.cli",
            "plan",
            "--config",
            str(DEMO),
            "--arrivals",
            str(path),
            "--target-wait",
            "15",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{path}:2: arrivals 'abc' is not a number" in result.stderr


# -- live queue_surge in the core (scripted time) -----------------------------------------------
T0 = local_ts(2026, 11, 25, 9, 0)  # a Wednesday, in opening hours
MU_PER_H = 60 / 8  # shebao: expected_service_min 8 (the default); target_wait_min 20


def surge_driver(*, at: float = T0, **supervision) -> Driver:
    data = site_dict()
    data["supervision"] = {"heartbeat_misses": 100, **supervision}
    for device in data["devices"]:
        device["heartbeat_s"] = 3600  # no device falls silent in these scripts
    engine = Engine([parse_site(data)])
    driver = Driver(engine, now=at)
    driver.tick(at)
    return driver


def run_timers(driver: Driver, until: float) -> list:
    """Every timer at its own deadline up to ``until``, as the engine's timer shell runs them."""
    commands = []
    while driver.engine.next_deadline() <= until:
        commands += driver.tick(driver.engine.next_deadline())
    driver.now = until
    return commands


def surges(commands) -> list:
    return [c.alert for c in commands if isinstance(c, AlertChanged) and c.alert.kind is AlertKind.QUEUE_SURGE]


def six_shebao_tickets(driver: Driver, start: float = T0) -> None:
    """One window open for shebao (w02); six tickets a minute apart, nobody called. With 8-minute
    services the forecast passes 20 minutes at the third (6 an hour: M/M/1 gives 32 min)."""
    driver.login("w02", "s002")
    for k in range(1, 7):
        driver.issue("shebao", at=start + 60 * k)


def test_queue_surge_fires_after_its_grace_with_the_extra_windows():
    driver = surge_driver()
    six_shebao_tickets(driver)
    assert surges(run_timers(driver, T0 + 180 + 299)) == []
    (alert,) = surges(run_timers(driver, T0 + 180 + 300))
    assert alert.state is AlertState.FIRING and alert.severity == "warning"
    assert alert.subject == "shebao" and alert.since == T0 + 180 and alert.window is None
    # At firing: 6 tickets in 30 minutes = 12 an hour against 7.5 an hour for one window:
    # unbounded. Two windows: a = 1.6, C = 6.4/9, Wq = C/(15 - 12) h = 14.2 min <= 20.
    assert erlang_c_by_factorials(2, 12 / MU_PER_H) / (2 * MU_PER_H - 12) * 60 == pytest.approx(14.22, abs=0.01)
    assert alert.detail == {
        "service": "shebao",
        "forecast_wait_min": None,
        "target_min": 20.0,
        "open_windows": 1,
        "extra_windows": 1,
        "arrivals_per_hour": 12.0,
        "service_min": 8.0,
        "waiting": 6,
    }


def test_opening_the_extra_window_resolves_the_surge():
    driver = surge_driver()
    six_shebao_tickets(driver)
    (fired,) = surges(run_timers(driver, T0 + 600))
    driver.login("w01", "s001")  # the comprehensive window also serves shebao: 2 windows
    (resolved,) = surges(run_timers(driver, T0 + 601 + 60))
    assert resolved.id == fired.id and resolved.state is AlertState.RESOLVED and resolved.until == T0 + 601


def test_a_short_surge_is_not_alerted():
    driver = surge_driver()
    six_shebao_tickets(driver)  # the condition holds from T0 + 180
    driver.login("w01", "s001")  # a second window at T0 + 361: the forecast is back under target
    assert driver.now < T0 + 180 + 300
    assert surges(driver.log + run_timers(driver, T0 + 1800)) == []


def test_queue_surge_counts_in_working_time_only():
    lunch = local_ts(2026, 11, 25, 14, 0)  # the hall reopens at 14:30
    driver = surge_driver(at=lunch)
    for k in range(6):
        driver.issue("shebao", at=lunch + 600 + 60 * k)  # 14:10-14:15, no window open
    assert surges(run_timers(driver, local_ts(2026, 11, 25, 14, 30) - 1)) == []
    (alert,) = surges(run_timers(driver, local_ts(2026, 11, 25, 14, 35)))
    assert alert.since == local_ts(2026, 11, 25, 14, 30)
    # nobody at any window: 12 an hour need 2 windows (14.2 min), so 2 extra
    assert alert.detail["open_windows"] == 0 and alert.detail["extra_windows"] == 2
    assert alert.detail["forecast_wait_min"] is None


def test_the_surge_resolves_as_its_arrivals_age_out():
    driver = surge_driver()
    six_shebao_tickets(driver)  # at T0 + 60 ... T0 + 360
    (fired,) = surges(run_timers(driver, T0 + 600))
    # With no event at all: at T0 + 240 + 1800 only two tickets remain in the last 30 minutes
    # (4 an hour: M/M/1 gives 9.1 min), so the condition ends then and the alert resolves
    # clear_after_s (60 s) later.
    assert surges(run_timers(driver, T0 + 240 + 1800 - 1)) == []
    (resolved,) = surges(run_timers(driver, T0 + 240 + 1800 + 60))
    assert resolved.id == fired.id and resolved.until == T0 + 240 + 1800


def test_a_burst_of_tickets_is_forecast_once_at_its_end():
    driver = surge_driver(surge_fire_after_min=0)
    driver.login("w02", "s002")
    for k in range(4):  # four tickets within 0.3 s: the forecast runs at the first and 1 s later
        driver.issue("shebao", at=T0 + 10 + 0.1 * k)
    assert surges(driver.log) == []
    (alert,) = surges(run_timers(driver, T0 + 12))
    assert alert.since == T0 + 11  # 1 s after the first ticket's forecast
    assert alert.detail["arrivals_per_hour"] == 8.0


def test_surge_settings_and_restore():
    driver = surge_driver(surge_window_min=10)
    six_shebao_tickets(driver)
    hall = driver.hall
    assert hall.recent_arrivals("shebao").span == 600
    assert hall.recent_arrivals("shebao").count(T0 + 700) == 5  # the ticket of T0 + 60 has left
    # a restarted engine counts the same arrivals from the tickets it restores
    tickets, windows = list(hall.tickets.values()), list(hall.windows.values())
    again = surge_driver(surge_window_min=10, at=T0 + 700).engine
    again.restore(now=T0 + 700, tickets=tickets, windows=windows)
    assert again.hall(SITE_ID).recent_arrivals("shebao").count(T0 + 700) == 5
