"""The store's identity: which file ``--db`` names, and whether the engine may write it.

A hallwatch store carries ``PRAGMA application_id`` = ``APPLICATION_ID`` and its schema
version in ``PRAGMA user_version``. Before anything writes to a file (``PRAGMA
journal_mode=WAL`` and any CREATE change it), the file is inspected read-only:

- no file, an empty file or an SQLite database without any schema: a new store is created
  (mode 0600: it holds citizens' phone numbers; SQLite gives -wal and -shm the same mode);
- our application id and ``SCHEMA_VERSION``: opened;
- our application id and an older version, or a store of the first version (a ``meta``
  table with ``schema_version`` 1, no application id): migrated, one step per version;
- anything else (a newer version, another application's database, a file that is not
  SQLite, a store whose tables or columns differ from ``ensure_schema``'s): refused with
  ``StoreRefused``, and the file is left as it was.

Adding a schema version: change the tables in ``schema.ensure_schema`` (new stores are made
from it, and stores are checked against it), and add one function here::

    @migration(3)
    def _add_ticket_channel(db: sqlite_utils.Database) -> None:
        \"\"\"Tickets record the channel they came from.\"\"\"
        db["tickets"].add_column("channel", str)

A migration changes a store of the version before into this version: it runs in one
transaction of its own, which also records the new version. It is first rehearsed on an
empty copy of the store's tables, and the result compared with ``ensure_schema``'s, so it
must work on empty tables too; a store it would not bring to the expected shape is refused
before it is touched. Write each migration's own DDL (not a call to ``ensure_schema``,
which describes the latest version only).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlite_utils

from .schema import ensure_schema, new_store_id

log = logging.getLogger("hallwatch.store")

APPLICATION_ID = 0x48575145  # b"HWQE": hallwatch queue engine
SQLITE_NOTADB = 26
FILE_MODE = 0o600

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: dict[int, Migration] = {}  # version -> the step from the version before


def migration(version: int) -> Callable[[Migration], Migration]:
    """Register ``function`` as the step that makes a store of ``version - 1`` one of ``version``."""

    def register(function: Migration) -> Migration:
        if version in MIGRATIONS or version < 2:
            raise ValueError(f"migration to version {version} is registered twice or below 2")
        MIGRATIONS[version] = function
        return function

    return register


# -- the migrations: add the next one below the last, above SCHEMA_VERSION ------------------------
@migration(2)
def _adopt_first_version(db: sqlite_utils.Database) -> None:
    """The version moves from the ``meta`` table to ``PRAGMA user_version`` (the application
    id is set with it); ``meta`` goes, unless something else keeps rows in it."""
    db.execute("DELETE FROM meta WHERE key = 'schema_version'")
    if db.execute("SELECT count(*) FROM meta").fetchone()[0] == 0:
        db.execute("DROP TABLE meta")


@migration(3)
def _number_and_keep_publications(db: sqlite_utils.Database) -> None:
    """Events keep a digest of their content (a reused id is told from a resend); alert
    transitions are numbered (``seq``); alert transitions and calls wait in the outbox until
    the broker has them."""
    db.table("events").add_column("digest", str)
    db.table("alerts").add_column("seq", int)
    db.table("alert_log").add_column("seq", int)
    db.table("outbox").create(
        {"id": int, "site": str, "kind": str, "topic": str, "payload": str, "qos": int, "retain": int, "at": float},
        pk="id",
    )


@migration(4)
def _add_cases(db: sqlite_utils.Database) -> None:
    """办件: tickets record their first contact (首问) and the case, notice and matter of the
    visit; the cases, their log and the 一次性告知 given get their tables."""
    for column in ("first_window", "first_staff", "case_no", "notice_no", "matter"):
        db.table("tickets").add_column(column, str)

    def columns(names: str, floats: str = "", ints: str = "") -> dict[str, type]:
        return {c: float if c in floats.split() else int if c in ints.split() else str for c in names.split()}

    db.table("cases").create(
        columns(
            "site no kind service opened_at day due_day due_at status ticket ticket_day window staff agent "
            "passed_to first_window first_staff citizen matter result closed_at closed_by updated_at",
            floats="opened_at due_at closed_at updated_at",
        ),
        pk=("site", "no"),
    )
    db.table("case_log").create(
        columns("id site case_no action at actor note passed_to result", floats="at", ints="id"), pk="id"
    )
    db.table("notices").create(
        columns(
            "site no service at day missing ticket window staff first_window first_staff citizen matter "
            "breach previous",
            floats="at",
            ints="breach",
        ),
        pk=("site", "no"),
    )
    db.table("cases").create_index(["site", "status"])
    db.table("case_log").create_index(["site", "case_no"])
    db.table("notices").create_index(["site", "at"])


@migration(5)
def _citizens_phones(db: sqlite_utils.Database) -> None:
    """A rating keeps the reasons and the comment a citizen gave with it (from the phone); a
    ticket taken with a phone keeps its reservation (check-in code, expiry, check-in), the green
    channel it asked for with the window's verdict, and its phone as a citizen key and the last
    four digits."""
    db.table("ratings").add_column("reasons", str)
    db.table("ratings").add_column("comment", str)
    for column in ("reservation_expires_at", "checked_in_at", "priority_checked_at"):
        db.table("tickets").add_column(column, float)
    for column in ("check_in_code", "priority_claim", "priority_check", "priority_checked_by", "phone_tail"):
        db.table("tickets").add_column(column, str)
    # Phone numbers are kept as keyed hashes from now on; the migration has no key: the numbers
    # stored so far keep their last four digits only, and leave the event log too. The citizen
    # keys of cases and notices were unkeyed SHA-256 (a number can be found from one by trying
    # them all): dropped, so an earlier visit no longer links to a later one of the same matter.
    # (each where its column is there: a store whose tables were changed is refused by the
    # comparison after the rehearsal, which names what differs, not here)
    for table, column, statement in (
        ("tickets", "phone", "UPDATE tickets SET phone_tail = substr(phone, -4), phone = NULL WHERE phone IS NOT NULL"),
        (
            "events",
            "payload",
            "UPDATE events SET payload = json_remove(payload, '$.phone') "
            "WHERE json_valid(payload) AND json_extract(payload, '$.phone') IS NOT NULL",
        ),
        ("cases", "citizen", "UPDATE cases SET citizen = NULL"),
        ("notices", "citizen", "UPDATE notices SET citizen = NULL"),
    ):
        if column in db.table(table).columns_dict:
            db.execute(statement)


@migration(6)
def _link_pauses_to_cases(db: sqlite_utils.Database) -> None:
    """A window paused for fieldwork keeps the case it is out for (a home visit)."""
    db.table("windows").add_column("pause_case", str)


@migration(7)
def _give_the_store_its_identity(db: sqlite_utils.Database) -> None:
    """The store gets its identity (``store_meta``'s ``store_id``), published with the alert
    transitions and day figures: a subscriber tells a new store from this one."""
    db.execute("CREATE TABLE [store_meta] ([key] TEXT PRIMARY KEY, [value] TEXT NOT NULL)")
    new_store_id(db)


SCHEMA_VERSION = max(MIGRATIONS)  # the version of ensure_schema's tables
if sorted(MIGRATIONS) != list(range(2, SCHEMA_VERSION + 1)):  # pragma: no cover (a developer's slip)
    raise RuntimeError(f"the migrations skip a version: {sorted(MIGRATIONS)}")


class StoreRefused(Exception):
    """The file is not a store this version of hallwatch may use; nothing was written."""


@dataclass(frozen=True)
class StoreFile:
    path: Path
    state: Literal["new", "current", "older"]
    version: int  # 0 for a new store


# -- the shape the tables must have ------------------------------------------------------------
Columns = dict[str, tuple[str, bool, int]]  # column -> (declared type, not null, position in the key)


def _columns(conn: sqlite3.Connection, table: str) -> Columns:
    return {
        name: (kind.upper(), bool(notnull), pk)
        for name, kind, notnull, pk in conn.execute(
            'SELECT name, type, "notnull", pk FROM pragma_table_info(?)', (table,)
        )
    }


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
    ]


def _described(column: tuple[str, bool, int]) -> str:
    kind, notnull, key = column
    return " ".join(
        filter(None, [kind or "untyped", "NOT NULL" if notnull else "", f"(key part {key})" if key else ""])
    )


@functools.cache
def expected_tables() -> dict[str, Columns]:
    """The tables and columns of ``SCHEMA_VERSION``, as ``schema.ensure_schema`` makes them."""
    conn = sqlite3.connect(":memory:")
    try:
        ensure_schema(sqlite_utils.Database(conn))
        return {table: _columns(conn, table) for table in _tables(conn)}
    finally:
        conn.close()


def shape_problems(conn: sqlite3.Connection, tables: Iterable[str] | None = None) -> list[str]:
    """How the tables (default: all) of the store on ``conn`` differ from the expected ones.
    Tables of its own that a store has besides these are left alone."""
    expected = expected_tables()
    present = set(_tables(conn))
    problems = []
    for table in tables or expected:
        if table not in present:
            problems.append(f"no table {table}")
            continue
        want, have = expected[table], _columns(conn, table)
        missing = [c for c in want if c not in have]
        extra = [c for c in have if c not in want]
        changed = [
            f"column {c} is {_described(have[c])}, expected {_described(want[c])}"
            for c in want
            if c in have and have[c] != want[c]
        ]
        details = (
            ([f"no column {', '.join(missing)}"] if missing else [])
            + ([f"an unexpected column {', '.join(extra)}"] if extra else [])
            + changed
        )
        if details:
            problems.append(f"table {table}: {'; '.join(details)}")
    return problems


# -- inspection (read-only) ----------------------------------------------------------------------
def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot change the file, nor leave -wal or -shm files behind.

    ``mode=ro`` on a WAL database creates -wal and -shm when they are missing, and keeps them
    after closing; in a read-only directory it cannot create them and fails. Without a -wal
    (or a rollback -journal) every committed page is in the main file, so it is read as
    immutable: no locks, no side files. With one, the engine may be running: a read-only
    connection that takes part in its locking."""
    uri = path.resolve().as_uri()
    if any(_sidecar(path, s).exists() for s in ("-wal", "-journal")):
        uri += "?mode=ro"
    else:
        uri += "?immutable=1"
    return sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)


def _refuse(path: Path, problem: str, advice: str) -> StoreRefused:
    return StoreRefused(f"{path}: {problem}. The file was left as it was. {advice}")


_USE_ANOTHER = "Give --db the path of a hallwatch store, or a new file name for a new store (the engine creates it)."


def _first_version(conn: sqlite3.Connection, names: set[str]) -> bool:
    """A store written before stores carried an application id: a ``meta`` table saying
    schema_version 1 beside the engine's own tables."""
    if not {"meta", "events", "tickets"} <= names:
        return False
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and str(row[0]) == "1"


def _rehearse(conn: sqlite3.Connection, version: int) -> list[str]:
    """The migrations from ``version`` run on an empty copy of the store's schema; what the
    result would lack."""
    rehearsal = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE "
            "'sqlite\\_%' ESCAPE '\\' ORDER BY type != 'table', rowid"
        ):
            rehearsal.execute(sql)
        _migrate(sqlite_utils.Database(rehearsal), version)
        return shape_problems(rehearsal)
    except sqlite3.Error as exc:
        return [f"its migration fails: {exc}"]
    finally:
        rehearsal.close()


def _classify(path: Path, conn: sqlite3.Connection) -> StoreFile:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise _refuse(
                path,
                f"it is a hallwatch store of schema version {version}, newer than this hallwatch "
                f"understands (version {SCHEMA_VERSION}): a later release wrote it",
                "Run it with that release (or a later one); this release cannot use it.",
            )
        if version == SCHEMA_VERSION:
            found = StoreFile(path, "current", version)
        elif 2 <= version < SCHEMA_VERSION:
            found = StoreFile(path, "older", version)
        else:
            raise _refuse(
                path,
                f"it carries hallwatch's application id but schema version {version}, which no "
                "release has written: it is damaged",
                "Restore it from a backup. " + _USE_ANOTHER,
            )
    elif app_id == 0 and version == 0 and not names:
        return StoreFile(path, "new", 0)  # an SQLite database with nothing in it
    elif app_id == 0 and _first_version(conn, names):
        found = StoreFile(path, "older", 1)
    else:
        owner = f"application id {app_id:#010x}" if app_id else "no application id"
        tables = sorted(n for n in names)
        holds = f"tables {', '.join(tables[:6])}{', …' if len(tables) > 6 else ''}" if tables else "no tables"
        raise _refuse(path, f"it is not a hallwatch store but another SQLite database ({owner}, {holds})", _USE_ANOTHER)
    problems = shape_problems(conn) if found.state == "current" else _rehearse(conn, found.version)
    if problems:
        raise _refuse(
            path,
            f"it is a hallwatch store (schema version {found.version}) whose tables are not what "
            f"this release expects: {'; '.join(problems)}. It was changed by something else, or "
            "damaged",
            "Restore it from a backup, or move it aside and start with a new store.",
        )
    return found


def _inspect(path: Path) -> tuple[StoreFile, sqlite3.Connection | None]:
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _refuse(path, f"it cannot be read: {exc.strerror}", "Check the path and its permissions.") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise _refuse(path, "it is a directory", "Give --db a file name.")
    if info is None or info.st_size == 0:
        wal = _sidecar(path, "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise _refuse(
                path,
                f"it is {'empty' if info else 'missing'}, but {wal.name} beside it holds the log of a "
                "store: the store's file was removed or truncated",
                f"Restore {path.name} from a "
                f"backup, or remove {wal.name} and {path.name}-shm to start with a new store.",
            )
        return StoreFile(path, "new", 0), None
    # Only SQLite opens the file: a plain open() and close() by this process would drop the
    # POSIX locks its store connections hold on it (SQLite's own connections share them).
    conn = None
    try:
        conn = _open_read_only(path)
        found = _classify(path, conn)
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        if getattr(exc, "sqlite_errorcode", None) == SQLITE_NOTADB:
            raise _refuse(
                path, f"it is not an SQLite database ({exc}), so not a hallwatch store", _USE_ANOTHER
            ) from None
        raise _refuse(
            path,
            f"it cannot be read as an SQLite database ({exc}): it is damaged, or not readable here",
            "Check that this user can read the file and its directory; if it is damaged, restore it from a backup.",
        ) from None
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return found, conn


def inspect(path: str | Path) -> StoreFile:
    """What ``path`` is, read without changing it; raises ``StoreRefused`` for a file that is
    not a store this release may use."""
    found, conn = _inspect(Path(path))
    if conn is not None:
        conn.close()
    return found


def open_read_only(path: str | Path, tables: Iterable[str] | None = None) -> sqlite3.Connection:
    """A read-only connection to the store at ``path`` (for reports and web views), after the
    same inspection as the engine's; ``tables``: those the reader needs (default all), which an
    older store must already have in their current shape. Raises ``StoreRefused``."""
    path = Path(path)
    found, conn = _inspect(path)
    if found.state == "new":
        if conn is not None:
            conn.close()
        raise _refuse(path, "it is empty: no store has been written to it yet", "Give --db the engine's store.")
    assert conn is not None  # _inspect opens a connection to every file but a "new" one, refused above
    problems = shape_problems(conn, tables) if found.state == "older" else []
    if problems:
        conn.close()
        raise _refuse(
            path,
            f"it is a hallwatch store of an earlier schema version ({found.version}): {'; '.join(problems)}",
            f"Start `hallwatch engine` on it once: it migrates the store to version {SCHEMA_VERSION}.",
        )
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


# -- opening for writing ---------------------------------------------------------------------------
def _read_only_reason(directory: Path) -> str:
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "it is on a read-only filesystem"
    except OSError:
        pass
    return "this user may not write there"


def _check_writable(found: StoreFile) -> None:
    path = found.path
    directory = path.parent
    if not directory.is_dir():
        raise _refuse(path, f"the directory {directory} does not exist", "Create it, or give --db another path.")
    if found.state == "new" and not path.exists():
        if not os.access(directory, os.W_OK):
            raise _refuse(
                path,
                f"a new store cannot be created there: the directory {directory} is not writable "
                f"({_read_only_reason(directory)})",
                "Give --db a path in a writable directory, or make this one writable for the engine.",
            )
        return
    if not os.access(directory, os.W_OK):
        raise _refuse(
            path,
            f"the engine writes the store and keeps {path.name}-wal and {path.name}-shm beside it, "
            f"but the directory {directory} is not writable ({_read_only_reason(directory)})",
            "Make the directory writable for the engine, or copy the store to a writable one; reports "
            "can read it where it is.",
        )
    if not os.access(path, os.W_OK):
        raise _refuse(
            path,
            f"the file is not writable ({_read_only_reason(directory)})",
            "Make it writable for the engine's user.",
        )


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _stamp(db: sqlite_utils.Database, version: int) -> None:
    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    db.execute(f"PRAGMA user_version={version}")


def _migrate(db: sqlite_utils.Database, version: int, path: Path | None = None) -> None:
    for step in range(version + 1, SCHEMA_VERSION + 1):
        with db.atomic():
            MIGRATIONS[step](db)
            _stamp(db, step)
        if path is not None:
            log.info("store %s migrated to schema version %d", path, step)


def _create(path: Path) -> sqlite3.Connection:
    existed = path.exists()
    if not existed:  # a file no connection of this process can have open yet
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
    os.chmod(path, FILE_MODE)  # whatever the umask, and for an empty file that was there
    conn = _connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        db = sqlite_utils.Database(conn)
        with db.atomic():
            ensure_schema(db)
            new_store_id(db)
            _stamp(db, SCHEMA_VERSION)
    except BaseException:
        conn.close()
        if not existed:
            for name in (path, _sidecar(path, "-wal"), _sidecar(path, "-shm")):
                name.unlink(missing_ok=True)
        raise
    log.info("created the store %s (schema version %d)", path, SCHEMA_VERSION)
    return conn


def open_for_writing(path: str | Path) -> sqlite3.Connection:
    """The engine's connection to its store at ``path`` (autocommit; usable from any thread):
    created, migrated or opened as the inspection found. Raises ``StoreRefused`` before
    anything is written; ``sqlite3.Error``/``OSError`` when writing fails (see
    ``explain_failure``)."""
    found = inspect(path)
    _check_writable(found)
    if found.state == "new":
        return _create(found.path)
    conn = _connect(found.path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        if found.state == "older":
            _migrate(sqlite_utils.Database(conn), found.version, found.path)
    except BaseException:
        conn.close()
        raise
    mode = found.path.stat().st_mode
    if mode & 0o077:
        log.warning(
            "store %s can be read by other users (mode %03o) and holds citizens' phone numbers: chmod 600 it",
            found.path,
            stat.S_IMODE(mode),
        )
    return conn


# -- failures while writing ---------------------------------------------------------------------------
def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def _mount_point(directory: Path) -> Path:
    here = directory.resolve()
    device = here.stat().st_dev
    while here.parent != here and here.parent.stat().st_dev == device:
        here = here.parent
    return here


def disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == 13  # SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def explain_failure(path: str | Path, exc: BaseException) -> str:
    """What went wrong writing the store at ``path``, in words: for a full disk, which
    filesystem holds the store and how much space it has left."""
    if not disk_full(exc):
        return str(exc)
    directory = Path(path).resolve().parent
    try:
        vfs = os.statvfs(directory)
        mount = _mount_point(directory)
    except OSError:
        return f"the disk holding {directory} is full ({exc})"
    free, total = vfs.f_bavail * vfs.f_frsize, vfs.f_blocks * vfs.f_frsize
    text = (
        f"the disk is full: the filesystem mounted at {mount}, which holds {directory}, has {_size(free)} free "
        f"of {_size(total)} ({exc})"
    )
    if free > 64 * 1024 * 1024:
        text += "; it has room now: something else filled it and freed it, or SQLite's temporary directory is full"
    return text
