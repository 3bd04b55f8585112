"""The store's tables: their columns, the rows of the core's records, and ``ensure_schema``
(the tables of the current schema version). ``store.py`` writes and reads them;
``storefile.py`` makes new stores from them, checks every store against them and migrates
older ones to them.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter

import msgspec
import sqlite_utils

from ..core.alerts import Alert, AlertKind, AlertState
from ..core.cases import Case, CaseKind, CaseStatus, InformedNotice
from ..core.events import Outcome, PauseReason, Priority
from ..core.model import Ticket, TicketStatus, WindowPhase, WindowState
from ..records import EventRecord

TICKET_COLUMNS = [f.name for f in fields(Ticket)]
WINDOW_COLUMNS = [f.name for f in fields(WindowState)]


def _enum_value(value):
    return getattr(value, "value", value)


# The writer encodes rows as JSON with msgspec, which writes an enum as its value: a record's
# attributes in column order are its row (one C call per ticket, on the writer's hot path).
ticket_row: Callable[[Ticket], tuple] = attrgetter(*TICKET_COLUMNS)


def ticket_from_row(row: dict) -> Ticket:
    data = {name: row[name] for name in TICKET_COLUMNS}
    data["status"] = TicketStatus(data["status"])
    data["priority"] = Priority(data["priority"]) if data["priority"] else None
    data["priority_claim"] = Priority(data["priority_claim"]) if data["priority_claim"] else None
    data["outcome"] = Outcome(data["outcome"]) if data["outcome"] else None
    return Ticket(**data)


CASE_COLUMNS = [f.name for f in fields(Case)]
NOTICE_COLUMNS = [f.name for f in fields(InformedNotice)]
CASE_LOG_COLUMNS = ["site", "case_no", "action", "at", "actor", "note", "passed_to", "result"]
_CASE_FLOATS = ("opened_at", "due_at", "closed_at", "updated_at")


case_row: Callable[[Case], tuple] = attrgetter(*CASE_COLUMNS)


def case_from_row(row: dict) -> Case:
    data = {name: row[name] for name in CASE_COLUMNS}
    data["kind"] = CaseKind(data["kind"])
    data["status"] = CaseStatus(data["status"])
    return Case(**data)


def notice_row(notice: InformedNotice) -> tuple:
    values = [getattr(notice, name) for name in NOTICE_COLUMNS]
    values[NOTICE_COLUMNS.index("missing")] = _detail(list(notice.missing)).decode()
    values[NOTICE_COLUMNS.index("breach")] = int(notice.breach)
    return tuple(values)


def notice_from_row(row: dict) -> InformedNotice:
    data = {name: row[name] for name in NOTICE_COLUMNS}
    data["missing"] = tuple(msgspec.json.decode(data["missing"])) if data["missing"] else ()
    data["breach"] = bool(data["breach"])
    return InformedNotice(**data)


window_row: Callable[[WindowState], tuple] = attrgetter(*WINDOW_COLUMNS)


def window_from_row(row: dict) -> WindowState:
    data = {name: row[name] for name in WINDOW_COLUMNS}
    data["phase"] = WindowPhase(data["phase"])
    data["pause_reason"] = PauseReason(data["pause_reason"]) if data["pause_reason"] else None
    data["present"] = None if data["present"] is None else bool(data["present"])
    return WindowState(**data)


ALERT_COLUMNS = [
    "id",
    "site",
    "kind",
    "severity",
    "state",
    "subject",
    "window",
    "device",
    "staff",
    "since",
    "until",
    "acknowledged_at",
    "acknowledged_by",
    "note",
    "due",
    "overdue",
    "seq",
    "detail",
]
ALERT_LOG_COLUMNS = ["alert_id", "site", "kind", "state", "at", "severity", "overdue", "seq"]
ACCOUNT_COLUMNS = ["site", "day", "subject_kind", "subject", "category", "seconds"]
_detail = msgspec.json.Encoder().encode


def alert_row(alert: Alert) -> tuple:
    values = [_enum_value(getattr(alert, name)) for name in ALERT_COLUMNS[:-1]]
    return (*values, _detail(alert.detail).decode())


def alert_from_row(row: dict) -> Alert:
    data = {name: row[name] for name in ALERT_COLUMNS}
    data["kind"] = AlertKind(data["kind"])
    data["state"] = AlertState(data["state"])
    data["overdue"] = bool(data["overdue"])
    data["seq"] = data["seq"] or 0  # (alerts of a store from before transitions were numbered)
    data["detail"] = msgspec.json.decode(data["detail"]) if data["detail"] else {}
    return Alert(**data)


def ensure_schema(db: sqlite_utils.Database) -> None:
    """The tables of the current schema version: new stores are made from them, and every
    store is checked against them. A change here is a new version: add its migration in
    ``storefile.py`` (one function)."""
    db.table("events").create(
        {
            "site": str,
            "device": str,
            "event_id": str,
            "type": str,
            "received_at": float,
            "payload": str,
            "error": str,
            "reply": str,
            "digest": str,
        },
        pk=("site", "device", "event_id"),
        if_not_exists=True,
    )
    db.table("rejections").create(
        {"id": int, "at": float, "site": str, "device": str, "topic": str, "error": str, "reason": str, "payload": str},
        pk="id",
        if_not_exists=True,
    )
    ticket_types = {
        name: (
            float if name.endswith("_at") else int if name in ("seq", "calls", "transfers", "place", "rating") else str
        )
        for name in TICKET_COLUMNS
    }
    db.table("tickets").create(ticket_types, pk=("site", "day", "no"), if_not_exists=True)
    window_types = {
        name: (
            float if name.endswith("_at") else int if name in ("priority_streak", "served_today", "present") else str
        )
        for name in WINDOW_COLUMNS
    }
    db.table("windows").create(window_types, pk=("site", "window"), if_not_exists=True)
    db.table("ratings").create(
        {
            "id": int,
            "site": str,
            "window": str,
            "device": str,
            "ticket": str,
            "staff": str,
            "score": int,
            "at": float,
            "reasons": str,  # JSON list of vocabulary.RATING_REASON's keys (bad scores only)
            "comment": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("devices").create(
        {"site": str, "device": str, "online": int, "changed_at": float, "reason": str},
        pk=("site", "device"),
        if_not_exists=True,
    )
    db.table("device_log").create(
        {"id": int, "site": str, "device": str, "online": int, "at": float, "reason": str}, pk="id", if_not_exists=True
    )
    db.table("alerts").create(
        {
            name: (
                float
                if name in ("since", "until", "acknowledged_at", "due")
                else int
                if name in ("overdue", "seq")
                else str
            )
            for name in ALERT_COLUMNS
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("alert_log").create(
        {
            "id": int,
            "alert_id": str,
            "site": str,
            "kind": str,
            "state": str,
            "at": float,
            "severity": str,
            "overdue": int,
            "seq": int,
        },
        pk="id",
        if_not_exists=True,
    )
    # Alert transitions and calls decided and committed, until the broker has acknowledged
    # them: published again after a lost connection or a restart.
    db.table("outbox").create(
        {"id": int, "site": str, "kind": str, "topic": str, "payload": str, "qos": int, "retain": int, "at": float},
        pk="id",
        if_not_exists=True,
    )
    db.table("accounting").create(
        {"site": str, "day": str, "subject_kind": str, "subject": str, "category": str, "seconds": float},
        pk=("site", "day", "subject_kind", "subject", "category"),
        if_not_exists=True,
    )
    _case_tables(db)
    _identity_table(db)
    db.table("events").create_index(["received_at"], if_not_exists=True)
    db.table("tickets").create_index(["site", "day", "status"], if_not_exists=True)
    db.table("alerts").create_index(["site", "state"], if_not_exists=True)
    db.table("alerts").create_index(["since"], if_not_exists=True)


STORE_ID = "store_id"  # the store_meta key of the store's identity


def _identity_table(db: sqlite_utils.Database) -> None:
    """``store_meta``: facts about the store itself, ``store_id`` first: a random id made once
    with the store (``new_store_id``), which the engine publishes with its alert transitions
    and day figures, so that a subscriber tells a new store (whose numbering starts again)
    from the one it knew. Schema version 7."""
    db.table("store_meta").create({"key": str, "value": str}, pk="key", not_null={"value"}, if_not_exists=True)


def new_store_id(db: sqlite_utils.Database) -> None:
    """Give the store its identity, once (a store that has one keeps it)."""
    db.execute("INSERT OR IGNORE INTO store_meta (key, value) VALUES (?, ?)", [STORE_ID, uuid.uuid4().hex])


def read_store_id(conn: sqlite3.Connection) -> str | None:
    """The store's identity; None for a store of a version before it (read-only, not migrated)."""
    try:
        row = conn.execute("SELECT value FROM store_meta WHERE key = ?", [STORE_ID]).fetchone()
    except sqlite3.OperationalError:  # (no such table)
        return None
    return None if row is None else row[0]


def _case_tables(db: sqlite_utils.Database) -> None:
    """办件 (core.cases): the cases (current state), every change of each (``case_log``, with
    who and when) and the 一次性告知 given (``notices``). Schema version 4."""
    db.table("cases").create(
        {name: float if name in _CASE_FLOATS else str for name in CASE_COLUMNS},
        pk=("site", "no"),
        if_not_exists=True,
    )
    db.table("case_log").create(
        {"id": int, **{name: float if name == "at" else str for name in CASE_LOG_COLUMNS}},
        pk="id",
        if_not_exists=True,
    )
    db.table("notices").create(
        {name: float if name == "at" else int if name == "breach" else str for name in NOTICE_COLUMNS},
        pk=("site", "no"),
        if_not_exists=True,
    )
    db.table("cases").create_index(["site", "status"], if_not_exists=True)
    db.table("case_log").create_index(["site", "case_no"], if_not_exists=True)
    db.table("notices").create_index(["site", "at"], if_not_exists=True)


EVENT_COLUMNS = list(EventRecord._fields)
REJECTION_COLUMNS = ["at", "site", "device", "topic", "error", "reason", "payload"]
RATING_COLUMNS = ["site", "window", "device", "ticket", "staff", "score", "at", "reasons", "comment"]
DEVICE_COLUMNS = ["site", "device", "online", "changed_at", "reason"]
DEVICE_LOG_COLUMNS = ["site", "device", "online", "at", "reason"]
OUTBOX_COLUMNS = ["id", "site", "kind", "topic", "payload", "qos", "retain", "at"]
