"""A simulated working day at high speed against the real engine over a real broker."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime

import pytest
from conftest import DEMO_SITE, ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = "2026-11-25T08:20:00+08:00"
SPEED = 300.0  # a day of 9.5 hours in about two minutes


def simulate(broker, start: str, *options: str, text: bool = True) -> subprocess.CompletedProcess:
    """``hallwatch simulate`` of the demo site at SPEED from ``start``, its output captured."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "queue_engine.cli",
            "simulate",
            "--config",
            str(DEMO_SITE),
            "--broker",
            broker.url,
            "--start-at",
            start,
            "--speed",
            str(SPEED),
            *options,
        ],
        capture_output=True,
        text=text,
        cwd=ROOT,
        timeout=400,
    )


def test_a_simulated_day_ends_consistent_with_the_store_and_with_its_staged_alerts(broker, engine_factory):
    engine = engine_factory(start_at=START, speed=SPEED).start()
    result = simulate(broker, START, "--arrivals-per-hour", "40")
    assert result.returncode == 0, result.stderr
    tally = json.loads(result.stdout.strip().splitlines()[-1])
    assert engine.stop() == 0
    with sqlite3.connect(engine.db) as db:
        statuses = dict(db.execute("select status, count(*) from tickets group by status"))
        issued = db.execute("select count(*) from tickets").fetchone()[0]
        kinds = {k for (k,) in db.execute("select distinct kind from alerts")}
        unstaffed = db.execute("select window from alerts where kind = 'window_unstaffed'").fetchall()
        shutdown = db.execute("select device from alerts where kind = 'device_shutdown'").fetchall()
        offline = db.execute("select device from alerts where kind = 'device_offline'").fetchall()
        rated = db.execute("select count(*) from ratings").fetchone()[0]
    assert tally["issued"] > 100
    assert issued == tally["issued"]  # the simulator's own count and the store agree
    assert statuses.get("done", 0) == tally["served"]
    assert statuses.get("no_show", 0) == tally["no_shows"]
    assert rated == tally["ratings"]
    # Every ticket is done or a no-show; any still waiting at closing time expires at midnight.
    assert set(statuses) <= {"done", "no_show", "waiting"}
    assert ("w03",) in unstaffed  # the staff member who left unannounced
    assert ("cam-w04",) in shutdown  # the camera switched off mid-morning
    assert ("kiosk-1",) in offline  # the kiosk that crashed
    assert {"window_unstaffed", "device_shutdown", "device_offline"} <= kinds


def test_three_simulated_days_on_one_store_each_agree_with_the_store(broker, engine_factory):
    """The simulator's event ids are unique across its runs: on the second and third day the
    engine neither answers a new request with an old reply nor refuses it as a reused id."""
    engine = engine_factory()
    for day in ("2026-11-25", "2026-11-26", "2026-11-27"):
        start = f"{day}T08:20:00+08:00"
        engine.start_at, engine.speed = start, SPEED
        engine.start()
        result = simulate(broker, start, "--arrivals-per-hour", "40", "--closing", "10:15", "--seed", day[-2:])
        assert result.returncode == 0, result.stderr
        tally = json.loads(result.stdout.strip().splitlines()[-1])
        assert engine.stop() == 0
        with sqlite3.connect(engine.db) as db:
            issued = db.execute("select count(*) from tickets where day = ?", (day,)).fetchone()[0]
            statuses = dict(db.execute("select status, count(*) from tickets where day = ? group by status", (day,)))
            midnight = datetime.fromisoformat(f"{day}T00:00:00+08:00").timestamp()
            rated = db.execute(
                "select count(*) from ratings where at >= ? and at < ?", (midnight, midnight + 86400)
            ).fetchone()[0]
            reused = db.execute("select count(*) from rejections where error = 'id_reused'").fetchone()[0]
        assert tally["issued"] > 20, day
        assert (issued, statuses.get("done", 0), statuses.get("no_show", 0), rated, reused) == (
            tally["issued"],
            tally["served"],
            tally["no_shows"],
            tally["ratings"],
            0,
        ), day


def test_off_a_terminal_the_progress_is_plain_lines_and_the_clock_reminder_shows_when_run_alone(broker, engine_factory):
    engine_factory(start_at=START, speed=SPEED).start()
    result = simulate(broker, START, "--closing", "09:00", "--lang", "en", text=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert b"\r" not in result.stdout, out
    first, *progress, count = out.splitlines()
    assert "start the engine with --start-at and the same --speed" in first  # alone, the reminder is due
    # A line at the start, at every quarter of a simulated hour (08:30, 08:45, ...) and at the end.
    times = [line[:5] for line in progress]
    assert len(times) >= 4 and times[0] < "08:30" and times == sorted(times), out  # (the last may repeat)
    assert all("  issued " in line for line in progress), out
    assert json.loads(count)["issued"] > 0
