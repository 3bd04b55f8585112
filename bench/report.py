"""The cost of a month's report of a busy county hall.

A store is filled through the core, as the engine would fill it: a county hall with 30
windows (10 无差别综合受理, 19 specialist, 1 办不成事), 12 services, a camera, a panel and a
rating pad at every window, open 08:30-12:00 and 13:30-17:30 on the working days of November
2026 (21 days), takes 60,000 tickets; windows call, serve (with transfers, no-shows and every
outcome), pause, leave their seats, cameras get switched off, about 60 % of visits are rated
and most bad ratings are followed up the next working day. Half the services are 承诺件
(3 to 7 working days), half 即办件 (rarely accepted instead of done there and then): visits
accepted for a 承诺件, 帮办代办 and 办不成 at the 办不成事 window open cases (办件), which the
officer completes, a few late, some withdrawn; 一次性告知 records notices. Every batch of commands is written
with the store's own ``write_batch``.

Then, in each round, the month is reported: ``build_report`` (the SQL), ``render_html`` and
``write_csv``, timed separately and together (target: under 3 s together); and once through
``hallwatch report --format html`` as a process (interpreter start included).

    .venv/bin/python bench/report.py [--tickets 60000] [--windows 30] [--rounds 3] [--db PATH]

With ``--db PATH`` an existing store made by an earlier run is reused (``--rebuild`` makes it
again).
"""

from __future__ import annotations

import argparse
import heapq
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from queue_engine.calendar import official_calendar
from queue_engine.config import parse_site
from queue_engine.core import Engine, Reply
from queue_engine.core import events as ev
from queue_engine.core.calendar import WorkingCalendar
from queue_engine.core.cases import CaseAction, CaseChanged
from queue_engine.core.commands import AlertChanged
from queue_engine.records import Processed
from queue_engine.reports import build_report, render_html, write_csv
from queue_engine.shells.store import connect, write_batch

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
SITE = "county"
FIRST, LAST = date(2026, 11, 1), date(2026, 11, 30)
SERVICES = [
    ("shebao", "社保业务", "A"),
    ("yibao", "医保业务", "B"),
    ("budongchan", "不动产登记", "C"),
    ("huji", "户籍业务", "D"),
    ("shichang", "市场主体登记", "E"),
    ("shuiwu", "税务业务", "F"),
    ("gongjijin", "住房公积金", "G"),
    ("minzheng", "民政业务", "H"),
    ("jiaotong", "交通运输", "J"),
    ("jiaoyu", "教育服务", "K"),
    ("tuiyi", "退役军人服务", "L"),
    ("banbucheng", "办不成事反映", "Z"),
]
# Share of the day's tickets issued in each hour (the morning rush, a lull at noon).
ARRIVALS = {8: 0.08, 9: 0.16, 10: 0.15, 11: 0.10, 12: 0.02, 13: 0.06, 14: 0.13, 15: 0.13, 16: 0.11, 17: 0.06}
OUTCOMES = (
    [ev.Outcome.DONE] * 70
    + [ev.Outcome.ACCEPTED] * 15
    + [ev.Outcome.INFORMED] * 8
    + [ev.Outcome.PROXY] * 5
    + [ev.Outcome.FAILED] * 2
)
SCORES = [5] * 70 + [4] * 20 + [3] * 5 + [2] * 3 + [1] * 2


def guide(index: int, code: str) -> dict:
    """承诺件 of 3 to 7 working days for every other service, 即办件 for the rest."""
    if code == "banbucheng" or index % 2:
        return {"item_type": "即办件", "time_limit": "即办"}
    days = 3 + index % 5
    return {"item_type": "承诺件", "promise_working_days": days, "time_limit": f"{days}个工作日"}


def site_data(windows: int) -> dict:
    codes = [code for code, _, _ in SERVICES[:-1]]
    window_list = []
    for i in range(1, windows + 1):
        wid = f"w{i:02d}"
        if i <= windows // 3:
            window_list.append({"id": wid, "name": f"{i}号窗口", "role": "comprehensive"})
        elif i == windows:
            window_list.append(
                {"id": wid, "name": f"{i}号窗口（办不成事反映）", "role": "fallback", "services": ["banbucheng"]}
            )
        else:
            window_list.append(
                {"id": wid, "name": f"{i}号窗口", "services": [codes[i % len(codes)], codes[(i + 5) % len(codes)]]}
            )
    devices = [
        {"id": "kiosk-1", "kind": "kiosk", "heartbeat_s": 3600},
        {"id": "kiosk-2", "kind": "kiosk", "heartbeat_s": 3600},
    ]
    for w in window_list:
        for prefix, kind in (("panel", "panel"), ("cam", "camera"), ("pad", "pad")):
            devices.append({"id": f"{prefix}-{w['id']}", "kind": kind, "window": w["id"], "heartbeat_s": 3600})
    return {
        "id": SITE,
        "name": "内乡县政务服务中心",
        "kind": "county",
        "timezone": "Asia/Shanghai",
        "hours": {"periods": ["08:30-12:00", "13:30-17:30"], "issue_before_open_min": 30},
        "supervision": {"heartbeat_misses": 100},
        "services": [
            {
                "code": c,
                "name": n,
                "prefix": p,
                "category": n,
                "expected_service_min": 4,
                "target_wait_min": 30,
                "guide": guide(i, c),
            }
            for i, (c, n, p) in enumerate(SERVICES)
        ],
        "windows": window_list,
        "devices": devices,
        "staff": [{"id": f"s{i:03d}", "name": f"工作人员{i:03d}"} for i in range(1, windows + 5)],
    }


class Month:
    """Drives the core through the month and commits every batch to the store."""

    def __init__(self, site, db, rng: random.Random):
        self.site = site
        self.engine = Engine([site], official_calendar())
        self.db = db
        self.rng = rng
        self.now = 0.0
        self.seq = 0
        self.pending: list[Processed] = []
        self.heap: list[tuple[float, int, tuple]] = []
        self.bad_alerts: list[str] = []
        self.open_cases: list[str] = []
        self.on_the_spot = {s.code for s in site.services if s.guide.item_type == "即办件"}
        self.events = 0

    def at(self, day: date, hour: int, minute: float = 0.0) -> float:
        return datetime.combine(day, datetime.min.time(), TZ).timestamp() + hour * 3600 + minute * 60

    def commit(self, commands) -> None:
        for c in commands:
            if isinstance(c, AlertChanged) and c.alert.kind.value == "bad_rating" and c.alert.state.value == "firing":
                self.bad_alerts.append(c.alert.id)
            elif isinstance(c, CaseChanged) and c.action is CaseAction.OPENED:
                self.open_cases.append(c.case.no)
        self.pending.append(Processed(at=self.now, site=SITE, commands=commands))
        if len(self.pending) >= 2000:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            write_batch(self.db.conn, self.pending)
            self.pending = []

    def advance(self, to: float) -> None:
        while self.engine.next_deadline() <= to:
            self.now = max(self.now, self.engine.next_deadline())
            self.commit(self.engine.tick(self.now))
        self.now = max(self.now, to)

    def send(self, when: float, cls, device: str, **fields) -> Reply | None:
        self.advance(when)
        self.seq += 1
        self.events += 1
        commands = self.engine.handle(cls(site=SITE, device=device, id=f"b{self.seq}", **fields), self.now)
        self.commit(commands)
        return next((c for c in commands if isinstance(c, Reply)), None)

    def later(self, when: float, *action) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, action))

    def day(self, day: date, tickets: int, windows: list[str]) -> None:
        rng = self.rng
        for device in self.site.devices:
            self.send(self.at(day, 7, 55), ev.DeviceStatus, device.id, online=True)
        for w in windows:
            self.send(self.at(day, 7, 58), ev.Presence, f"cam-{w}", window=w, present=True, count=1)
        late = set(rng.sample(windows, 2))  # two windows open late (window_not_opened)
        for i, w in enumerate(windows):
            login = self.at(day, 10 if w in late else 8, rng.uniform(0, 25))
            self.later(login, "login", w, f"s{i + 1:03d}")
        hours = list(ARRIVALS)
        weights = [ARRIVALS[h] for h in hours]
        codes = [s.code for s in self.site.services]
        for _ in range(tickets):
            hour = rng.choices(hours, weights)[0]
            minute = rng.uniform(0, 30 if hour == 17 else 60)
            code = "banbucheng" if rng.random() < 0.01 else rng.choice(codes[:-1])
            self.later(self.at(day, hour, minute), "issue", code)
        for w in rng.sample(windows, 4):  # nobody at the seat for a while (window_unstaffed)
            start = self.at(day, rng.choice([9, 10, 14, 15]), rng.uniform(0, 40))
            self.later(start, "presence", w, False)
            self.later(start + rng.uniform(3, 20) * 60, "presence", w, True)
        w = rng.choice(windows)  # a camera switched off (device_shutdown)
        start = self.at(day, rng.choice([10, 15]), rng.uniform(0, 30))
        self.later(start, "camera", w, False)
        self.later(start + rng.uniform(10, 40) * 60, "camera", w, True)
        for w in rng.sample(windows, 6):  # breaks and meetings, a few too long (pause_overrun)
            self.later(
                self.at(day, rng.choice([10, 15]), rng.uniform(0, 50)),
                "pause",
                w,
                rng.choice([ev.PauseReason.BREAK, ev.PauseReason.MEETING]),
                rng.uniform(5, 25),
            )
        while self.heap:
            when, _, action = heapq.heappop(self.heap)
            self.act(when, action)

    def act(self, when: float, action: tuple) -> None:
        rng = self.rng
        kind, *args = action
        if kind == "issue":
            self.send(when, ev.TicketRequest, rng.choice(["kiosk-1", "kiosk-2"]), service=args[0])
        elif kind == "login":
            w, staff = args
            self.send(when, ev.StaffLogin, f"panel-{w}", staff=staff)
            self.later(when + 60, "call", w)
        elif kind == "call":
            (w,) = args
            due = self.pause_due.get(w)
            if due is not None and when >= due[0]:
                del self.pause_due[w]
                reason, minutes = due[1]
                self.send(when, ev.WindowPause, f"panel-{w}", reason=reason)
                self.later(when + minutes * 60, "resume", w)
                return
            reply = self.send(when, ev.CallNext, f"panel-{w}")
            if reply is None or not reply.ok:
                if when < self.closing:
                    self.later(when + rng.uniform(30, 90), "call", w)
                return
            if rng.random() < 0.03:
                self.later(when + 90, "skip", w)
            else:
                self.later(when + rng.uniform(15, 40), "start", w)
        elif kind == "skip":
            self.send(when, ev.CallSkip, f"panel-{args[0]}")
            self.later(when + 10, "call", args[0])
        elif kind == "start":
            (w,) = args
            self.send(when, ev.ServiceStart, f"panel-{w}")
            if rng.random() < 0.02 and w != self.fallback:
                self.later(when + 60, "transfer", w)
            else:
                self.later(when + rng.uniform(1.5, 5.5) * 60, "finish", w)
        elif kind == "transfer":
            (w,) = args
            self.send(when, ev.TicketTransfer, f"panel-{w}", to_window=self.fallback)
            self.later(when + 15, "call", w)
        elif kind == "finish":
            (w,) = args
            outcome = rng.choice(OUTCOMES)
            hall = self.engine.hall(SITE)
            serving = hall.windows[w].ticket
            on_the_spot = serving is not None and hall.tickets[serving].service in self.on_the_spot
            if outcome is ev.Outcome.ACCEPTED and on_the_spot and rng.random() < 0.95:
                outcome = ev.Outcome.DONE  # a 即办件 is done there and then, nearly always
            self.send(when, ev.ServiceFinish, f"panel-{w}", outcome=outcome)
            if rng.random() < 0.6:
                self.later(when + 8, "rate", w)
            self.later(when + rng.uniform(10, 30), "call", w)
        elif kind == "rate":
            (w,) = args
            self.send(when, ev.Rating, f"pad-{w}", window=w, score=rng.choice(SCORES))
        elif kind == "presence":
            w, present = args
            self.send(when, ev.Presence, f"cam-{w}", window=w, present=present, count=int(present))
        elif kind == "camera":
            w, online = args
            self.send(when, ev.DeviceStatus, f"cam-{w}", online=online, reason=None if online else "shutdown")
        elif kind == "pause":
            w, reason, minutes = args
            self.pause_due[w] = (when, (reason, minutes))
        elif kind == "acknowledge":
            self.send(when, ev.Acknowledge, "officer-1", alert=args[0], note="已电话回访，说明情况并致歉")
        elif kind == "case":
            number, cls, fields = args
            self.send(when, cls, "officer-1", case=number, **fields)
        elif kind == "resume":
            self.send(when, ev.WindowResume, f"panel-{args[0]}")
            self.later(when + 5, "call", args[0])

    def follow_up(self, day: date) -> None:
        """Four in five bad ratings of the day before are followed up in the morning; about a
        third of the cases still open are closed in the afternoon (a few withdrawn), so that
        some run past their due day."""
        for i, alert_id in enumerate(self.bad_alerts):
            if i % 5 != 4:
                self.later(self.at(day, 8, 40), "acknowledge", alert_id)
        self.bad_alerts = []
        still_open = []
        for number in self.open_cases:
            draw = self.rng.random()
            if draw < 0.30:
                self.later(
                    self.at(day, 16, self.rng.uniform(0, 60)), "case", number, ev.CaseComplete, {"result": "办结"}
                )
            elif draw < 0.31:
                self.later(self.at(day, 11, 0), "case", number, ev.CaseWithdraw, {"note": "申请人撤回"})
            else:
                still_open.append(number)
        self.open_cases = still_open

    def run(self, days: list[date], per_day: list[int]) -> None:
        windows = [w.id for w in self.site.windows]
        self.fallback = windows[-1]
        self.pause_due: dict[str, tuple] = {}
        self.now = self.at(days[0], 0, 1)
        self.commit(self.engine.tick(self.now))  # the engine starts on the first working day
        for day, tickets in zip(days, per_day):
            self.closing = self.at(day, 17, 30)
            self.pause_due = {}
            self.follow_up(day)
            self.day(day, tickets, windows)
            for w in windows:  # close the windows in the evening
                state = self.engine.hall(SITE).windows[w].phase.value
                if state in ("idle", "paused"):
                    self.send(self.at(day, 18, 0), ev.StaffLogout, f"panel-{w}")
        self.advance(self.at(LAST + timedelta(days=1), 0, 5))
        self.flush()


def make_store(path: Path, tickets: int, windows: int) -> None:
    site = parse_site(site_data(windows))
    calendar = WorkingCalendar(official_calendar())
    days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    days = [d for d in days if calendar.is_working_day(d)]
    per_day = [tickets // len(days) + (1 if i < tickets % len(days) else 0) for i in range(len(days))]
    db = connect(path)
    db.execute("PRAGMA synchronous=OFF")
    started = time.perf_counter()
    month = Month(site, db, random.Random(1))
    month.run(days, per_day)
    db.conn.close()
    print(
        f"store: {len(days)} working days, {month.events:,} events through the core in "
        f"{time.perf_counter() - started:.1f} s -> {path}"
    )


def write_site_file(path: Path, windows: int) -> None:
    """The bench site as TOML, for the ``hallwatch report`` process."""
    import json

    def value(v):
        if isinstance(v, dict):  # (a service's guide: an inline table)
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return json.dumps(v, ensure_ascii=False) if not isinstance(v, bool) else str(v).lower()

    data = site_data(windows)
    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, (dict, list))]
    for section in ("hours", "supervision"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in data[section].items()]
    for table in ("services", "windows", "devices", "staff"):
        for item in data[table]:
            lines.append(f"[[{table}]]")
            lines += [f"{k} = {value(v)}" for k, v in item.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=60_000)
    parser.add_argument("--windows", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or make) the store at this path")
    parser.add_argument("--rebuild", action="store_true", help="make the store again even if --db exists")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hallwatch-report-bench-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a store given with --db is kept


def run(args, work: Path) -> None:
    db = args.db or work / "month.db"
    if args.rebuild and db.exists():
        db.unlink()
    if not db.exists():
        make_store(db, args.tickets, args.windows)
    site = parse_site(site_data(args.windows))
    conn = connect(db).conn
    counts = {
        t: conn.execute(f"select count(*) from {t}").fetchone()[0]
        for t in ("tickets", "ratings", "alerts", "alert_log", "accounting", "cases", "case_log", "notices")
    }
    conn.close()
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))

    official = official_calendar()
    rows = []
    for i in range(args.rounds):
        t0 = time.perf_counter()
        report = build_report([site], db, [SITE], FIRST, LAST, official=official)
        t1 = time.perf_counter()
        html = render_html(report)
        t2 = time.perf_counter()
        paths = write_csv(report, work / f"csv-{i}")
        t3 = time.perf_counter()
        rows.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
        print(
            f"round {i + 1}: build {t1 - t0:.3f} s, html {t2 - t1:.3f} s ({len(html) / 1e6:.1f} MB), "
            f"csv {t3 - t2:.3f} s ({len(paths)} files), total {t3 - t0:.3f} s"
        )
    site_file = work / "county.toml"
    write_site_file(site_file, args.windows)
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "queue_engine.cli",
            "report",
            "--config",
            str(site_file),
            "--db",
            str(db),
            "--from",
            FIRST.isoformat(),
            "--to",
            LAST.isoformat(),
            "--format",
            "html",
            "--out",
            str(work / "cli"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    cli = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"hallwatch report failed:\n{done.stderr}")
    site_report = build_report([site], db, [SITE], FIRST, LAST, official=official).sites[0]
    total = site_report.total
    print(
        f"month: {total.issued:,} tickets issued, {total.served:,} served, {len(site_report.alerts):,} alerts, "
        f"{site_report.rating_count:,} ratings, {len(site_report.bad_ratings)} bad"
    )
    median = [statistics.median(r[k] for r in rows) for k in range(4)]
    print(
        f"median of {args.rounds}: build {median[0]:.3f} s, html {median[1]:.3f} s, csv {median[2]:.3f} s, "
        f"total {median[3]:.3f} s (target < 3 s); max total {max(r[3] for r in rows):.3f} s"
    )
    print(f"hallwatch report --format html (a process, interpreter start included): {cli:.2f} s")


if __name__ == "__main__":
    main()
