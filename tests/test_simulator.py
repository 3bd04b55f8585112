"""A simulated working day at high speed against the real engine over a real broker."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from conftest import DEMO_SITE, ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = "2026-11-25T08:20:00+08:00"
SPEED = 300.0  # a day of 9.5 hours in about two minutes


def test_a_simulated_day_ends_consistent_with_the_store_and_with_its_staged_alerts(broker, engine_factory):
    engine = engine_factory(start_at=START, speed=SPEED).start()
    result = subprocess.run(
        [sys.executable, "-m", "queue_engine.cli", "simulate", "--config", str(DEMO_SITE), "--broker", broker.url,
         "--start-at", START, "--speed", str(SPEED), "--arrivals-per-hour", "40"],
        capture_output=True, text=True, cwd=ROOT, timeout=400)
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
