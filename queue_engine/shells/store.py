"""SQLite persistence: an append-only event log plus current-state tables, written by one
thread in group commits, so the event loop never waits on the disk.

Schema and reads go through sqlite-utils. The hot path (one transaction per batch) uses
prepared ``executemany`` statements on the same connection: sqlite-utils' upsert helpers
introspect the table on every call, which costs more than the write itself at thousands
of events a second.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import sqlite_utils

from ..core.alerts import Alert, AlertState
from ..core.cases import Case, CaseChanged, InformedNotice, NoticeIssued
from ..core.commands import AlertChanged, DeviceChanged, RatingRecorded, TicketChanged, TimeAccounted, WindowChanged
from ..core.model import Ticket, TicketStatus, WindowState
from ..records import Batch, Outbound, Processed
from .schema import (
    ACCOUNT_COLUMNS,
    ALERT_COLUMNS,
    ALERT_LOG_COLUMNS,
    CASE_COLUMNS,
    CASE_LOG_COLUMNS,
    DEVICE_COLUMNS,
    DEVICE_LOG_COLUMNS,
    EVENT_COLUMNS,
    NOTICE_COLUMNS,
    OUTBOX_COLUMNS,
    RATING_COLUMNS,
    REJECTION_COLUMNS,
    TICKET_COLUMNS,
    WINDOW_COLUMNS,
    alert_from_row,
    alert_row,
    case_from_row,
    case_row,
    notice_from_row,
    notice_row,
    read_store_id,
    ticket_from_row,
    ticket_row,
    window_from_row,
    window_row,
)
from .storefile import open_for_writing, open_read_only

log = logging.getLogger("hallwatch.store")


def connect(path: str | Path) -> sqlite_utils.Database:
    """The store at ``path``, for writing: created, migrated or refused (``StoreRefused``,
    before anything is written) as ``storefile`` decides."""
    return sqlite_utils.Database(open_for_writing(path))


@dataclass
class Snapshot:
    tickets: list[Ticket]
    windows: list[WindowState]
    recent_events: list[tuple[str, str, str, float, str, bytes | None]]  # (site, device, id, at, digest, reply)
    open_alerts: list[Alert]
    alert_seqs: dict[str, int]  # the highest alert number per site
    transition_seqs: dict[str, int]  # the number of each site's last alert transition
    outbox: list[tuple[int, Outbound]]  # durable publications the broker has not acknowledged yet
    has_history: bool  # the store has received events before (an engine has run on it)
    devices: list[tuple[str, str, bool, str | None, float]]  # (site, device, online, reason, changed_at)
    totals: list[tuple[str, str, str, str, str, float]]  # accounting rows of the given days
    cases: list[Case]  # every open case, and those opened since ``matters_since``
    notices: list[InformedNotice]  # the 一次性告知 given since ``matters_since``
    store_id: str | None = None  # the store's identity (schema.read_store_id)


def load_snapshot(
    path: str | Path, *, since: float, days: Iterable[str], matters_since: float = float("inf")
) -> Snapshot:
    """The current state after a restart: the given days' tickets and every ticket not yet
    final (whatever its day, so that it can be expired), every window, the recent event keys
    (for deduplication of redelivered messages), every open case, and the cases and notices
    since ``matters_since`` (to link a visit to its matter). Read-only: the writer has made or
    migrated the store."""
    db = sqlite_utils.Database(open_read_only(path))
    try:
        day_list = sorted(set(days))
        marks = ",".join("?" for _ in day_list)
        open_statuses = [TicketStatus.WAITING.value, TicketStatus.CALLED.value, TicketStatus.SERVING.value]
        tickets = [
            ticket_from_row(r)
            for r in db.query(
                f"select * from tickets where day in ({marks}) or status in (?, ?, ?)", [*day_list, *open_statuses]
            )
        ]
        windows = [window_from_row(r) for r in db["windows"].rows]
        recent = [
            (
                r["site"],
                r["device"],
                r["event_id"],
                r["received_at"],
                r["digest"] or "",
                r["reply"].encode() if r["reply"] is not None else None,
            )
            for r in db.query(
                "select site, device, event_id, received_at, digest, reply from events "
                "where received_at >= ? order by received_at",
                [since],
            )
        ]
        open_alerts = [alert_from_row(r) for r in db.query("select * from alerts where state != 'resolved'")]
        alert_seqs: dict[str, int] = {}
        # ids are "{site}-{number}": the highest number, compared as a number
        transition_seqs: dict[str, int] = {}
        for r in db.query(
            "select site, max(cast(substr(id, length(site) + 2) as integer)) as last, "
            "max(seq) as transition from alerts group by site"
        ):
            alert_seqs[r["site"]] = r["last"] or 0
            transition_seqs[r["site"]] = r["transition"] or 0
        outbox = [
            (
                r["id"],
                Outbound(
                    r["topic"],
                    r["payload"].encode(),
                    qos=r["qos"],
                    retain=bool(r["retain"]),
                    site=r["site"],
                    kind=r["kind"],
                ),
            )
            for r in db.query("select * from outbox order by id")
        ]
        has_history = db.execute("select exists(select 1 from events)").fetchone()[0] == 1
        devices = [
            (r["site"], r["device"], bool(r["online"]), r["reason"], r["changed_at"]) for r in db["devices"].rows
        ]
        totals = (
            [
                (r["site"], r["day"], r["subject_kind"], r["subject"], r["category"], r["seconds"])
                for r in db.query(f"select * from accounting where day in ({marks})", day_list)
            ]
            if day_list
            else []
        )
        cases = [
            case_from_row(r)
            for r in db.query("select * from cases where status = 'open' or opened_at >= ?", [matters_since])
        ]
        notices = [notice_from_row(r) for r in db.query("select * from notices where at >= ?", [matters_since])]
        return Snapshot(
            cases=cases,
            notices=notices,
            tickets=tickets,
            windows=windows,
            recent_events=recent,
            open_alerts=open_alerts,
            alert_seqs=alert_seqs,
            transition_seqs=transition_seqs,
            outbox=outbox,
            has_history=has_history,
            devices=devices,
            totals=totals,
            store_id=read_store_id(db.conn),
        )
    finally:
        db.conn.close()


def _bulk(verb: str, table: str, columns: list[str]) -> str:
    """One statement for a whole batch of rows, passed as one JSON array of arrays.

    ``executemany`` binds each row in Python and releases and re-takes the GIL around each
    row's step, so the writer thread and the event loop hand the GIL back and forth
    thousands of times a second. Here the rows are encoded in one call and SQLite unpacks
    them in C with the GIL released, so the writer's work runs beside the event loop."""
    picks = ", ".join(f"value ->> {i}" for i in range(len(columns)))
    return f"{verb} INTO {table} ({', '.join(columns)}) SELECT {picks} FROM json_each(?)"


_INSERT_EVENT = _bulk("INSERT OR IGNORE", "events", EVENT_COLUMNS)
_INSERT_REJECTION = _bulk("INSERT", "rejections", REJECTION_COLUMNS)
_UPSERT_TICKET = _bulk("INSERT OR REPLACE", "tickets", TICKET_COLUMNS)
_UPSERT_WINDOW = _bulk("INSERT OR REPLACE", "windows", WINDOW_COLUMNS)
_INSERT_RATING = _bulk("INSERT", "ratings", RATING_COLUMNS)
_UPSERT_DEVICE = _bulk("INSERT OR REPLACE", "devices", DEVICE_COLUMNS)
_INSERT_DEVICE_LOG = _bulk("INSERT", "device_log", DEVICE_LOG_COLUMNS)
_UPSERT_ALERT = _bulk("INSERT OR REPLACE", "alerts", ALERT_COLUMNS)
_INSERT_ALERT_LOG = _bulk("INSERT", "alert_log", ALERT_LOG_COLUMNS)
_UPSERT_ACCOUNT = _bulk("INSERT OR REPLACE", "accounting", ACCOUNT_COLUMNS)
_INSERT_OUTBOX = _bulk("INSERT", "outbox", OUTBOX_COLUMNS)
_UPSERT_CASE = _bulk("INSERT OR REPLACE", "cases", CASE_COLUMNS)
_INSERT_CASE_LOG = _bulk("INSERT", "case_log", CASE_LOG_COLUMNS)
_INSERT_NOTICE = _bulk("INSERT", "notices", NOTICE_COLUMNS)
_DELETE_OUTBOX = "DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))"
_rows = msgspec.json.Encoder().encode
_detail = _rows


PRUNE_CHUNK = 5000  # rows of each table deleted per batch, so retention never holds up commits
_PRUNE = [
    f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE site = ? AND {column} < ? "
    f"LIMIT {PRUNE_CHUNK})"
    for table, column in (("events", "received_at"), ("rejections", "at"))
]


def write_batch(
    conn: sqlite3.Connection,
    batch: list[Processed],
    *,
    outbox: Iterable[tuple[int, Outbound]] = (),
    delivered: Iterable[int] = (),
    prune: Iterable[tuple[str, float, float]] = (),
) -> int:
    """Everything a batch changed, in one transaction. A ticket or window changed several
    times in the batch is written once, in its last state. ``outbox``: the batch's durable
    publications, numbered; ``delivered``: outbox numbers the broker has acknowledged;
    ``prune``: (site, events before, rejections before), at most PRUNE_CHUNK rows of each.
    Returns the number of rows pruned."""
    events, rejections, ratings, devices = [], [], [], []
    at = batch[-1].at if batch else 0.0
    tickets: dict[tuple, tuple] = {}
    windows: dict[tuple, tuple] = {}
    alerts: dict[str, tuple] = {}
    alert_log: list[tuple] = []
    accounts: dict[tuple, tuple] = {}
    cases: dict[tuple, tuple] = {}
    case_log: list[tuple] = []
    notices: list[tuple] = []
    for item in batch:
        if item.event is not None:
            events.append(item.event)
        if item.rejection is not None:
            r = item.rejection
            rejections.append(
                (r.at, r.site, r.device, r.topic, r.code, r.reason, r.payload.decode("utf-8", errors="replace"))
            )
        for c in item.commands:
            if isinstance(c, TicketChanged):
                tickets[(c.ticket.site, c.ticket.day, c.ticket.no)] = ticket_row(c.ticket)
            elif isinstance(c, WindowChanged):
                windows[(c.window.site, c.window.window)] = window_row(c.window)
            elif isinstance(c, RatingRecorded):
                reasons = _detail(list(c.reasons)).decode() if c.reasons else None
                comment = c.comment or None
                ratings.append((c.site, c.window, c.device, c.ticket, c.staff, c.score, c.at, reasons, comment))
            elif isinstance(c, DeviceChanged):
                devices.append((c.site, c.device, int(c.online), c.at, c.reason))
            elif isinstance(c, AlertChanged):
                a = c.alert
                alerts[a.id] = alert_row(a)
                moment = {AlertState.FIRING: a.since, AlertState.RESOLVED: a.until}.get(a.state, a.acknowledged_at)
                if a.state is AlertState.FIRING and a.overdue:
                    moment = a.due
                alert_log.append((a.id, a.site, a.kind.value, a.state.value, moment, a.severity, int(a.overdue), a.seq))
            elif isinstance(c, CaseChanged):
                k = c.case
                cases[(k.site, k.no)] = case_row(k)
                closing = None if k.open else k.result  # (the result is logged with the closing action)
                case_log.append((k.site, k.no, c.action.value, c.at, c.by, c.note, k.passed_to, closing))
            elif isinstance(c, NoticeIssued):
                notices.append(notice_row(c.notice))
            elif isinstance(c, TimeAccounted):
                accounts[(c.site, c.day, c.subject_kind, c.subject, c.category)] = (
                    c.site,
                    c.day,
                    c.subject_kind,
                    c.subject,
                    c.category,
                    c.seconds,
                )
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement, rows in (
            (_INSERT_EVENT, events),
            (_INSERT_REJECTION, rejections),
            (_UPSERT_TICKET, list(tickets.values())),
            (_UPSERT_WINDOW, list(windows.values())),
            (_INSERT_RATING, ratings),
            (_UPSERT_DEVICE, devices),
            (_INSERT_DEVICE_LOG, devices),
            (_UPSERT_ALERT, list(alerts.values())),
            (_INSERT_ALERT_LOG, alert_log),
            (_UPSERT_ACCOUNT, list(accounts.values())),
            (_UPSERT_CASE, list(cases.values())),
            (_INSERT_CASE_LOG, case_log),
            (_INSERT_NOTICE, notices),
            (
                _INSERT_OUTBOX,
                [(n, m.site, m.kind, m.topic, m.payload.decode(), m.qos, int(m.retain), at) for n, m in outbox],
            ),
            (_DELETE_OUTBOX, list(delivered)),
        ):
            if rows:
                conn.execute(statement, (_rows(rows),))
        pruned = 0
        for site, events_before, rejections_before in prune:
            for statement, cutoff in zip(_PRUNE, (events_before, rejections_before)):
                pruned += conn.execute(statement, (site, cutoff)).rowcount
        conn.execute("COMMIT")
        return pruned
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (a full disk): keep the real error
            conn.execute("ROLLBACK")
        raise


@dataclass
class CommitStats:
    batches: int = 0
    items: int = 0
    last_batch: int = 0
    last_seconds: float = 0.0


class StoreWriter:
    """The one writer. ``submit(batch)`` from the event loop; the batches queued while a
    transaction runs are committed together in the next one (group commit), and
    ``on_commit(batch)`` is called for each, in order, from the writer thread after its commit
    (the caller hops back to its loop). On a failed commit ``on_failure(exc)`` is called and the writer stops:
    the in-memory state is then ahead of the disk, and only a restart from the store is safe."""

    _STOP = object()

    def __init__(
        self,
        path: str | Path,
        *,
        on_commit: Callable[[Batch], None],
        on_failure: Callable[[BaseException], None],
        synchronous: str = "FULL",
        observe: Callable[[int, float], None] | None = None,
        max_merge: int = 20,
    ):
        self.path = str(path)
        self._max_merge = max_merge
        self._on_commit = on_commit
        self._on_failure = on_failure
        self._synchronous = synchronous
        self._observe = observe
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hallwatch-store", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.stats = CommitStats()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def submit(self, batch: Batch) -> None:
        self._queue.put(batch)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what was submitted, then stop."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join(timeout)

    def writable(self) -> bool:
        return self._thread.is_alive() and self._error is None

    def _run(self) -> None:
        try:
            db = connect(self.path)
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            conn = db.conn
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is self._STOP:
                break
            batches = [first]  # what queued up meanwhile is committed with it (group commit)
            while len(batches) < self._max_merge:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is self._STOP:
                    stopping = True
                    break
                batches.append(more)
            merged = batches[0] if len(batches) == 1 else _merge(batches)
            size = len(merged.items)
            started = time.perf_counter()
            try:
                pruned = write_batch(
                    conn, merged.items, outbox=merged.outbox, delivered=merged.delivered, prune=merged.prune
                )
            except BaseException as exc:
                log.critical("commit of %d events to %s failed: %s", size, self.path, exc)
                self._error = exc
                self._on_failure(exc)
                break
            for batch in batches:
                batch.pruned = pruned if batch.prune else 0
            elapsed = time.perf_counter() - started
            self.stats.batches += 1
            self.stats.items += size
            self.stats.last_batch = size
            self.stats.last_seconds = elapsed
            if self._observe is not None:
                self._observe(size, elapsed)
            for batch in batches:
                self._on_commit(batch)
        conn.close()


def _merge(batches: list[Batch]) -> Batch:
    """Several batches in one transaction: their items, outbox rows and deletions in order."""
    return Batch(
        [item for b in batches for item in b.items],
        outbox=[row for b in batches for row in b.outbox],
        delivered=[n for b in batches for n in b.delivered],
        prune=next((b.prune for b in batches if b.prune), []),
    )
