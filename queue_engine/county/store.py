"""The county service's SQLite store, with the engine's conventions: its own application id
and schema version (``PRAGMA application_id`` / ``user_version``), checked read-only before
anything is written, a new file made with mode 0600, WAL, and one writer: a thread that
commits what the service has received in one transaction per batch, after which (and only
then) the service acknowledges those messages to the broker. A crash loses nothing the broker
has not been told was stored.

Tables, one per kind: ``halls`` (where each hall's engine publishes, and which of its alert
transition numbers are had), ``alerts`` (each alert's latest version), ``transitions`` (every
(site, seq) received: the record that nothing is counted twice), ``windows``, ``queues`` and
``devices`` (the latest state of each), ``figures`` (each hall's figures of each day, the
latest version: keyed by (site, day), so a day sent again is never counted twice),
``acknowledgements`` (what county operators asked of
the engines, and their answers), ``retired_alerts`` and ``retired_transitions`` (what the county
had of a hall's earlier engine store, moved there when the hall's engine started on a new
store: model.County.source; version 3, which also gave ``halls`` the store's id and the
retired ones).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import astuple, dataclass, field
from pathlib import Path

from ..shells.storefile import StoreRefused
from .model import Acknowledgement, County, Hall, timestamp

APPLICATION_ID = 0x48574354  # b"HWCT": hallwatch county
SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)  # an earlier version's store gains the tables and columns added since
FILE_MODE = 0o600

SCHEMA = """
CREATE TABLE IF NOT EXISTS halls (site TEXT PRIMARY KEY, prefix TEXT NOT NULL, covered INTEGER, above TEXT NOT NULL,
    store_id TEXT, retired TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS alerts (site TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    state TEXT NOT NULL, since REAL NOT NULL, until REAL, payload TEXT NOT NULL, PRIMARY KEY (site, id));
CREATE TABLE IF NOT EXISTS transitions (site TEXT NOT NULL, seq INTEGER NOT NULL, alert TEXT NOT NULL,
    state TEXT NOT NULL, received_at REAL NOT NULL, PRIMARY KEY (site, seq));
CREATE TABLE IF NOT EXISTS windows (site TEXT NOT NULL, window TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (site, window));
CREATE TABLE IF NOT EXISTS queues (site TEXT PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (site TEXT NOT NULL, device TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (site, device));
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (state);
CREATE TABLE IF NOT EXISTS figures (site TEXT NOT NULL, day TEXT NOT NULL, final INTEGER NOT NULL,
    payload TEXT NOT NULL, received_at REAL NOT NULL, PRIMARY KEY (site, day));
CREATE TABLE IF NOT EXISTS acknowledgements (id TEXT PRIMARY KEY, site TEXT NOT NULL, alert TEXT NOT NULL,
    by TEXT NOT NULL, note TEXT NOT NULL, asked_at REAL NOT NULL, state TEXT NOT NULL, error TEXT, message TEXT,
    answered_at REAL);
CREATE TABLE IF NOT EXISTS retired_alerts (site TEXT NOT NULL, store TEXT NOT NULL, id TEXT NOT NULL,
    payload TEXT NOT NULL, retired_at REAL NOT NULL, PRIMARY KEY (site, store, id));
CREATE TABLE IF NOT EXISTS retired_transitions (site TEXT NOT NULL, store TEXT NOT NULL, seq INTEGER NOT NULL,
    alert TEXT NOT NULL, state TEXT NOT NULL, received_at REAL NOT NULL, PRIMARY KEY (site, store, seq));
"""
HALLS_ADDED = (("store_id", "TEXT"), ("retired", "TEXT NOT NULL DEFAULT '[]'"))  # (version 3)
TABLES = ("alerts", "devices", "halls", "queues", "transitions", "windows")  # (those of version 1)


def _dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def open_store(path: str | Path) -> sqlite3.Connection:
    """The county store at ``path``, for writing: created if the file is new or empty,
    refused (``StoreRefused``, nothing written) if it is anything but a county store of
    this version."""
    path = Path(path)
    if path.exists() and path.stat().st_size > 0:
        _check(path)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
        os.close(fd)
        os.chmod(path, FILE_MODE)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    with conn:
        conn.execute("BEGIN")
        for statement in filter(str.strip, SCHEMA.split(";")):
            conn.execute(statement)
        have = {row[1] for row in conn.execute("PRAGMA table_info(halls)")}
        for column, declared in HALLS_ADDED:
            if column not in have:
                conn.execute(f"ALTER TABLE halls ADD COLUMN {column} {declared}")
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return conn


def _check(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreRefused(
            f"{path} is not an SQLite database ({exc}); give --db a county store or a new file"
        ) from None
    if app_id != APPLICATION_ID:
        raise StoreRefused(
            f"{path} is not a hallwatch county store (application id {app_id:#x}): an engine's store or another "
            "application's database is never written by the county service; give --db a new file name"
        )
    if version not in READABLE_VERSIONS or not set(TABLES) <= tables:
        raise StoreRefused(
            f"{path}: county store of schema version {version}; this hallwatch writes version {SCHEMA_VERSION}"
        )


def read_figures(path: str | Path, *, since: str = "") -> list[dict]:
    """Every hall's day figures of the days since ``since`` (YYYY-MM-DD), by site and day, read
    from the county store at ``path`` read-only (``StoreRefused`` if it is not one): the
    county report runs beside the service."""
    path = Path(path)
    _check(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT payload FROM figures WHERE day >= ? ORDER BY site, day", [since]).fetchall()
    finally:
        conn.close()
    return [json.loads(payload) for (payload,) in rows]


@dataclass
class Changes:
    """What one batch writes."""

    halls: dict[str, Hall] = field(default_factory=dict)
    alerts: list[tuple[str, dict]] = field(default_factory=list)
    transitions: list[tuple[str, int, str, str, float]] = field(default_factory=list)
    windows: list[tuple[str, str, str]] = field(default_factory=list)
    queues: list[tuple[str, str]] = field(default_factory=list)
    devices: list[tuple[str, str, str]] = field(default_factory=list)
    acknowledgements: list[Acknowledgement] = field(default_factory=list)
    figures: list[tuple[str, str, bool, str, float]] = field(default_factory=list)
    # Halls whose engine started on a new store: what the store has of them moves to the retired
    # tables (before this batch's own rows), with the retired store's rows of this batch.
    retire: list[tuple[str, float]] = field(default_factory=list)  # (site, at)
    retired_alerts: list[tuple[str, str, str, str, float]] = field(default_factory=list)
    retired_transitions: list[tuple[str, str, int, str, str, float]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (
                self.halls,
                self.alerts,
                self.transitions,
                self.windows,
                self.queues,
                self.devices,
                self.acknowledgements,
                self.figures,
                self.retire,
            )
        )


class CountyStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.conn = open_store(self.path)
        self._lock = threading.Lock()

    def write(self, changes: Changes) -> None:
        """One transaction (called on the writer thread)."""
        with self._lock, self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            for site, at in changes.retire:  # (labelled with the store the rows came from: the one stored)
                for table, columns in (
                    ("alerts", "id, payload, ?"),
                    ("transitions", "seq, alert, state, received_at"),
                ):
                    self.conn.execute(
                        f"INSERT OR IGNORE INTO retired_{table} SELECT site, "
                        f"coalesce((SELECT store_id FROM halls WHERE site = ?), ''), {columns} FROM {table} "
                        "WHERE site = ?",
                        [site, at, site] if table == "alerts" else [site, site],
                    )
                    self.conn.execute(f"DELETE FROM {table} WHERE site = ?", [site])
            self.conn.executemany("INSERT OR IGNORE INTO retired_alerts VALUES (?, ?, ?, ?, ?)", changes.retired_alerts)
            self.conn.executemany(
                "INSERT OR IGNORE INTO retired_transitions VALUES (?, ?, ?, ?, ?, ?)", changes.retired_transitions
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO halls VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (h.site, h.prefix, h.seq.covered, _dump(sorted(h.seq.above)), h.store_id, _dump(h.retired))
                    for h in changes.halls.values()
                ],
            )
            self.conn.executemany(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, id) DO UPDATE SET "
                "seq = excluded.seq, state = excluded.state, until = excluded.until, payload = excluded.payload "
                "WHERE excluded.seq > alerts.seq",
                [
                    (
                        site,
                        a["id"],
                        a["seq"],
                        a["kind"],
                        a["state"],
                        timestamp(a["since"]),
                        timestamp(a["until"]),
                        _dump(a),
                    )
                    for site, a in changes.alerts
                ],
            )
            self.conn.executemany("INSERT OR IGNORE INTO transitions VALUES (?, ?, ?, ?, ?)", changes.transitions)
            self.conn.executemany("INSERT OR REPLACE INTO windows VALUES (?, ?, ?)", changes.windows)
            self.conn.executemany("INSERT OR REPLACE INTO queues VALUES (?, ?)", changes.queues)
            self.conn.executemany("INSERT OR REPLACE INTO devices VALUES (?, ?, ?)", changes.devices)
            self.conn.executemany(
                "INSERT OR REPLACE INTO acknowledgements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [astuple(a) for a in changes.acknowledgements],
            )
            self.conn.executemany("INSERT OR REPLACE INTO figures VALUES (?, ?, ?, ?, ?)", changes.figures)

    def load(self, county: County, *, resolved_since: float, figures_since: str = "") -> None:
        """The state after a restart: every hall, its states, its open alerts and those
        resolved since ``resolved_since``, its figures of the days since ``figures_since``."""
        conn = self.conn
        for site, prefix, covered, above, store_id, retired in conn.execute(
            "SELECT site, prefix, covered, above, store_id, retired FROM halls"
        ):
            hall = county.hall(site, prefix)
            hall.seq.covered = covered
            hall.seq.above = set(json.loads(above))
            hall.store_id, hall.retired = store_id, json.loads(retired)
        for site, window, payload in conn.execute("SELECT site, window, payload FROM windows"):
            county.halls[site].windows[window] = json.loads(payload)
        for site, payload in conn.execute("SELECT site, payload FROM queues"):
            county.halls[site].queue = json.loads(payload)
        for site, device, payload in conn.execute("SELECT site, device, payload FROM devices"):
            county.halls[site].devices[device] = json.loads(payload)
        for site, payload in conn.execute("SELECT site, payload FROM figures WHERE day >= ?", [figures_since]):
            figures = json.loads(payload)
            county.halls[site].figures[figures["day"]] = figures
        for site, payload in conn.execute(
            "SELECT site, payload FROM alerts WHERE state != 'resolved' OR until >= ?", [resolved_since]
        ):
            alert = json.loads(payload)
            county.halls[site].alerts[alert["id"]] = alert

    def acknowledgements(self, *, since: float) -> list[Acknowledgement]:
        """Those not answered yet (to send again) and those asked since ``since``."""
        rows = self.conn.execute(
            "SELECT * FROM acknowledgements WHERE state = 'sent' OR asked_at >= ? ORDER BY asked_at", [since]
        )
        return [Acknowledgement(*row) for row in rows]

    def figures(self, site: str | None = None) -> list[dict]:
        """Every day's figures had (of ``site``), by site and day."""
        rows = self.conn.execute(
            "SELECT payload FROM figures WHERE ? IS NULL OR site = ? ORDER BY site, day", [site, site]
        )
        return [json.loads(payload) for (payload,) in rows]

    def transitions(self, site: str) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT seq FROM transitions WHERE site = ? ORDER BY seq", [site])]

    def close(self) -> None:
        self.conn.close()
