"""The store knows itself: the engine and the readers use a file given to ``--db`` only when it
is a hallwatch store they understand (or nothing yet), migrate an older one, and refuse
anything else with exit code 4 and the file left byte for byte as it was. New stores are
private (0600). A full disk is named, and its error is not hidden by a failed rollback.

Real SQLite files, the real ``hallwatch`` commands; the read-only directory and the full disk
are real tmpfs mounts (the tests that need one skip where mounting is not permitted)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import aiohttp
import pytest
from conftest import DEMO_SITE, ROOT, WORKDAY_9AM, EngineProcess, free_port
from mqtt_helpers import Device

from queue_engine.shells.schema import read_store_id
from queue_engine.shells.store import connect, load_snapshot
from queue_engine.shells.storefile import SCHEMA_VERSION, inspect, open_read_only

V1_DUMP = Path(__file__).parent / "data" / "store-v1.sql"  # `sqlite3 .dump` of a store the first version wrote
HALLWATCH_ID = 0x48575145  # fixed for good: every store carries it


# -- files ------------------------------------------------------------------------------------------
def sql_file(path: Path, script: str) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(script)


def v1_store(path: Path) -> None:
    """A store as the first version left it: WAL, a meta table, no application id."""
    sql_file(path, V1_DUMP.read_text(encoding="utf-8") + "PRAGMA journal_mode=WAL;")


def new_store(path: Path) -> None:
    connect(path).conn.close()


def changed(make, script: str):
    def build(path: Path) -> None:
        make(path)
        sql_file(path, script)

    return build


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def damaged(path: Path) -> None:
    new_store(path)
    data = path.read_bytes()
    path.write_bytes(data[:100] + os.urandom(len(data) - 100))  # SQLite's header, then noise


BAD_FILES = {  # name: (how to make it, what the message says)
    "foreign SQLite, WAL": (
        lambda p: sql_file(
            p, "PRAGMA journal_mode=WAL; CREATE TABLE customers (id, name);INSERT INTO customers VALUES (1, 'x');"
        ),
        "not a hallwatch store but another SQLite database (no application id, tables customers)",
    ),
    "another application's id": (
        lambda p: sql_file(p, f"PRAGMA application_id={0x0F055112};CREATE TABLE blob (x);"),
        "another SQLite database (application id 0x0f055112, tables blob)",
    ),
    "foreign with its own meta": (
        lambda p: sql_file(
            p,
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
            "INSERT INTO meta VALUES ('schema_version', '7');"
            "CREATE TABLE items (sku, qty);",
        ),
        "not a hallwatch store but another SQLite database",
    ),
    "a meta saying 1, no hallwatch tables": (
        lambda p: sql_file(p, "CREATE TABLE meta (key, value);INSERT INTO meta VALUES ('schema_version', '1');"),
        "not a hallwatch store but another SQLite database",
    ),
    "newer schema": (
        changed(new_store, f"PRAGMA user_version={SCHEMA_VERSION + 1};"),
        f"hallwatch store of schema version {SCHEMA_VERSION + 1}, newer than this hallwatch understands",
    ),
    "renamed column": (
        changed(new_store, "ALTER TABLE tickets RENAME COLUMN phone TO telephone;"),
        "table tickets: no column phone; an unexpected column telephone",
    ),
    "renamed column in a first-version store": (
        changed(v1_store, "ALTER TABLE tickets RENAME COLUMN phone TO telephone;"),
        "hallwatch store (schema version 1) whose tables are not what this release expects: table tickets: "
        "no column phone",
    ),
    "random bytes": (random_bytes, "not an SQLite database"),
    "damaged": (damaged, "cannot be read as an SQLite database (database disk image is malformed)"),
}


def files(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file of the directory: its bytes, mode and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def header(path: Path) -> tuple[int, int]:
    """(application id, user version) from the database header's bytes, as SQLite reads them."""
    data = path.read_bytes()[:100]
    return int.from_bytes(data[68:72], "big"), int.from_bytes(data[60:64], "big")


# -- commands ---------------------------------------------------------------------------------------
def hallwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "queue_engine.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def engine_on(db: Path) -> subprocess.CompletedProcess:
    """The engine, with a broker address where nothing listens: a refusal that came after the
    broker would end in exit code 3, not 4."""
    return hallwatch(
        "engine",
        "--config",
        str(DEMO_SITE),
        "--db",
        str(db),
        "--start-at",
        WORKDAY_9AM,
        "--broker",
        f"mqtt://127.0.0.1:{free_port()}",
        "--connect-timeout",
        "10",
    )


def report_on(db: Path, out: Path) -> subprocess.CompletedProcess:
    return hallwatch(
        "report",
        "--config",
        str(DEMO_SITE),
        "--db",
        str(db),
        "--from",
        "2026-11-25",
        "--to",
        "2026-11-25",
        "--out",
        str(out),
    )


def refused(done: subprocess.CompletedProcess, db: Path, says: str) -> None:
    assert done.returncode == 4, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # one paragraph: the file, the problem, what to do
    assert last.split(": ", 1)[1].startswith(f"{db}: "), last
    assert says in last and "The file was left as it was." in last, last


# -- refusals ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_the_engine_and_the_report_refuse_a_file_that_is_not_their_store(case, tmp_path):
    make, says = BAD_FILES[case]
    directory = tmp_path / "store"
    directory.mkdir()
    db = directory / "hallwatch.db"
    make(db)
    before = files(directory)
    assert list(before) == ["hallwatch.db"]

    refused(engine_on(db), db, says)
    assert files(directory) == before
    refused(report_on(db, tmp_path / "out"), db, says)
    assert files(directory) == before
    assert not (tmp_path / "out").exists()


def test_a_log_without_its_store_is_refused(tmp_path):
    """A store's file removed while its -wal stayed: SQLite would read the log into a new,
    empty file; the engine says what it found instead."""
    directory = tmp_path / "store"
    directory.mkdir()
    db = directory / "hallwatch.db"
    holder = connect(db)  # open: its -wal holds the new tables
    wal = (directory / "hallwatch.db-wal").read_bytes()
    holder.conn.close()
    db.unlink()
    (directory / "hallwatch.db-wal").write_bytes(wal)
    before = files(directory)
    assert list(before) == ["hallwatch.db-wal"] and len(wal) > 0

    refused(engine_on(db), db, "it is missing, but hallwatch.db-wal beside it holds the log of a store")
    assert files(directory) == before


def test_checking_a_store_in_use_leaves_its_writer_alone(tmp_path):
    """The web views check the store inside the engine's process, beside its writer. SQLite's
    locks belong to the process: had the check opened and closed the file itself, the writer's
    locks would be gone, the next process to close the store would take its log away, and the
    writer's later commits would be lost."""
    db = tmp_path / "hallwatch.db"
    writer = connect(db)
    try:
        open_read_only(db).close()
        inspect(db)
        query = [
            sys.executable,
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
            "'select count(*) from rejections').fetchone()[0])",
            str(db),
        ]
        assert subprocess.run(query, capture_output=True, text=True, check=True).stdout == "0\n"
        writer.execute("INSERT INTO rejections (at, reason) VALUES (1, 'committed')")
        assert subprocess.run(query, capture_output=True, text=True, check=True).stdout == "1\n"
    finally:
        writer.conn.close()


# -- what the engine makes and adopts ----------------------------------------------------------------------
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_store_is_private_and_carries_its_identity(engine_factory, tmp_path, umask_022):
    engine = engine_factory().start()
    db = engine.db
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.glob("hallwatch.db*")}
    assert modes == {"hallwatch.db": 0o600, "hallwatch.db-wal": 0o600, "hallwatch.db-shm": 0o600}
    assert engine.stop() == 0
    assert header(db) == (HALLWATCH_ID, SCHEMA_VERSION)
    assert inspect(db).state == "current"


def test_an_empty_file_becomes_a_private_store(tmp_path, umask_022):
    db = tmp_path / "hallwatch.db"
    db.touch()
    assert db.stat().st_mode & 0o777 == 0o644
    new_store(db)
    assert db.stat().st_mode & 0o777 == 0o600
    assert header(db) == (HALLWATCH_ID, SCHEMA_VERSION)


def columns(db: Path) -> dict[str, list[str]]:
    with closing(sqlite3.connect(db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", (t,))] for t in tables}


def rows(db: Path, tables: dict[str, list[str]]) -> dict[str, set[tuple]]:
    """The rows of the given tables, of the given columns (later versions may add some)."""
    with closing(sqlite3.connect(db)) as conn:
        return {t: set(conn.execute(f"SELECT {', '.join(cols)} FROM {t}")) for t, cols in tables.items()}


def test_a_first_version_store_is_migrated_and_keeps_its_rows(engine_factory, tmp_path):
    engine = engine_factory()
    v1_store(engine.db)
    first = columns(engine.db)
    before = rows(engine.db, first)
    assert header(engine.db) == (0, 0) and ("schema_version", "1") in before["meta"]
    assert len(before["tickets"]) == 3 and len(before["events"]) == 3

    engine.start()
    log = engine.log_text()
    assert f"migrated to schema version {SCHEMA_VERSION}" in log
    assert "restored 3 tickets (3 waiting)" in log
    assert engine.stop() == 0
    assert header(engine.db) == (HALLWATCH_ID, SCHEMA_VERSION)
    assert "meta" not in columns(engine.db)
    after = rows(engine.db, {t: cols for t, cols in first.items() if t != "meta"})
    for table in ("events", "tickets", "device_log"):  # the log and the tickets, row for row
        assert before[table] <= after[table], table
    for table, key in (("windows", 2), ("devices", 2), ("accounting", 5)):  # rows the engine updates
        assert {r[:key] for r in before[table]} <= {r[:key] for r in after[table]}, table


def shape(db: Path) -> dict:
    """Tables with their columns and indexes, from SQLite's own description."""
    with closing(sqlite3.connect(db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            t: (
                sorted(conn.execute('SELECT name, type, "notnull", pk FROM pragma_table_info(?)', (t,))),
                sorted(
                    (i[1], i[2], tuple(c[2] for c in conn.execute("SELECT * FROM pragma_index_info(?)", (i[1],))))
                    for i in conn.execute("SELECT * FROM pragma_index_list(?)", (t,))
                ),
            )
            for t in tables
        }


def test_every_migration_leads_to_what_a_new_store_is(tmp_path):
    """From the first version through every migration registered: the same tables, columns
    and indexes as a store made new (so a migration that forgets something fails here)."""
    old, fresh = tmp_path / "old.db", tmp_path / "new.db"
    v1_store(old)
    new_store(old)
    new_store(fresh)
    assert shape(old) == shape(fresh)
    assert header(old) == header(fresh) == (HALLWATCH_ID, SCHEMA_VERSION)


def test_the_migration_keeps_no_phone_number(tmp_path):
    """Phone numbers are kept as keyed hashes from schema 5 on; a migration has no key: the
    numbers a store holds keep their last four digits only, in the tickets and the event log."""
    db = tmp_path / "old.db"
    v1_store(db)
    sql_file(
        db,
        "UPDATE tickets SET phone = '13800000001', issued_by = 'web' WHERE no = 'A002';"
        "UPDATE events SET payload = json_set(payload, '$.phone', '13800000001') "
        "WHERE event_id = 'kiosk-1-mx5i9lzzac68-1';",
    )
    new_store(db)  # (opened for writing: migrated)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT phone, phone_tail FROM tickets WHERE no = 'A002'").fetchone() == (None, "0001")
        payloads = "".join(r[0] for r in conn.execute("SELECT payload FROM events"))
    assert "13800000001" not in payloads and '"service":"shebao"' in payloads


# -- read-only directories (a tmpfs mounted read-only: root may write anywhere else) ----------------------------
@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, size) -> a directory of its own filesystem; unmounted at the end."""
    mounted: list[Path] = []

    def mount(name: str, size: str = "4m") -> Path:
        where = tmp_path / name
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def test_no_new_store_in_a_read_only_directory(tmpfs):
    where = tmpfs("ro")
    read_only(where)
    db = where / "hallwatch.db"
    done = engine_on(db)
    assert done.returncode == 4, done.stderr
    assert (
        f"{db}: a new store cannot be created there: the directory {where} is not writable (it is on a "
        "read-only filesystem)" in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert list(where.iterdir()) == []


@pytest.mark.parametrize("make", [new_store, v1_store], ids=["current store", "first-version store"])
def test_a_store_in_a_read_only_directory_is_refused_by_the_engine(tmpfs, make):
    """The engine writes beside the store (-wal, -shm) and migrates it: it says it cannot."""
    where = tmpfs("ro")
    db = where / "hallwatch.db"
    make(db)
    read_only(where)
    before = files(where)
    refused(engine_on(db), db, f"the directory {where} is not writable (it is on a read-only filesystem)")
    assert files(where) == before


def test_a_report_reads_a_store_in_a_read_only_directory(tmpfs, tmp_path):
    """``mode=ro`` cannot open a WAL database there (it would create -wal and -shm); the
    report reads it all the same, and leaves it as it was."""
    where = tmpfs("ro")
    new_store(where / "hallwatch.db")
    read_only(where)
    before = files(where)
    done = report_on(where / "hallwatch.db", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert [Path(p).name for p in done.stdout.split()] == ["report-demo-2026-11-25.html"]
    assert files(where) == before


def test_a_report_leaves_nothing_beside_the_store(tmp_path):
    """``mode=ro`` on a WAL database creates -wal and -shm and keeps them; the report does not."""
    directory = tmp_path / "store"
    directory.mkdir()
    new_store(directory / "hallwatch.db")
    before = files(directory)
    assert list(before) == ["hallwatch.db"]
    done = report_on(directory / "hallwatch.db", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert files(directory) == before


# -- a full disk -----------------------------------------------------------------------------------
def fill(directory: Path) -> None:
    """Write into the filesystem until it has no byte left."""
    with open(directory / "filler", "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        try:
            while f.write(chunk) == len(chunk):
                pass
            while f.write(b"\0"):
                pass
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC


def test_a_full_disk_stops_the_engine_naming_the_disk(broker, tmpfs, tmp_path):
    disk = tmpfs("disk", size="2m")
    engine = EngineProcess(broker, disk / "hallwatch.db", [DEMO_SITE], tmp_path / "engine").start()
    kiosk = None
    try:
        fill(disk)
        kiosk = Device(broker.port, "kiosk-1")
        first = kiosk.send("ticket.request", service="shebao")
        for _ in range(20):
            if engine.proc.poll() is not None:
                break
            kiosk.send("ticket.request", service="shebao")
        engine.proc.wait(30)
        log = engine.log_text()
        assert engine.proc.returncode == 4, log
        message = log.strip().splitlines()[-1]
        assert message.startswith(
            f"hallwatch engine: store {disk / 'hallwatch.db'}: a commit failed: the disk is "
            f"full: the filesystem mounted at {disk}, which holds {disk}, has "
        ), message
        assert re.search(
            r"has [0-9.]+ K?i?B free of 2\.0 MiB \(database or disk is full\)\. The engine stopped", message
        ), message
        assert "cannot rollback" not in log and "Traceback" not in log

        (disk / "filler").unlink()  # room again: the engine resumes from its store
        engine.start()
        assert kiosk.wait_reply(first)["ok"] is True  # delivered again by the broker, stored now
        assert engine.stop() == 0
    finally:
        engine.kill()  # not left running when the test fails
        if kiosk is not None:
            kiosk.close()


# -- the web views ------------------------------------------------------------------------------------
async def test_the_web_answers_a_refused_store_with_json(tmp_path, monkeypatch):
    """The alerts of the day and the supervision summary read the store: when its file is not
    one the engine would open, they answer 503 ``store_refused`` in JSON."""
    from web_helpers import SUPERVISOR_TOKEN, ManualClock, token_environment

    from queue_engine.app import EngineApp
    from queue_engine.cli.common import parse_time
    from queue_engine.config import load_site
    from queue_engine.shells.mqtt import parse_broker_url
    from queue_engine.web import start_http

    for name, value in token_environment().items():
        monkeypatch.setenv(name, value)
    make, says = BAD_FILES["newer schema"]
    db = tmp_path / "hallwatch.db"
    make(db)
    before = files(tmp_path)
    app = EngineApp(
        [load_site(DEMO_SITE)],
        broker=parse_broker_url(f"mqtt://127.0.0.1:{free_port()}"),
        db_path=db,
        clock=ManualClock(parse_time(WORKDAY_9AM)),
    )
    port = free_port()
    runner = await start_http(app, "127.0.0.1", port)
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}) as session:
            for path in ("/api/v1/alerts?state=all", "/api/v1/supervise", "/api/v1/sites/demo/alerts?state=all"):
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    body = json.loads(await response.text())
                    assert response.status == 503, body
                    assert body["error"] == "store_refused"
                    assert body["detail"].startswith(f"{db}: ") and says in body["detail"]
            async with session.get(f"http://127.0.0.1:{port}/api/v1/alerts?state=open") as response:
                assert response.status == 200  # what is in memory does not need the store
    finally:
        await runner.cleanup()
    assert files(tmp_path) == before


def store_id(db: Path) -> str:
    with closing(open_read_only(db)) as conn:
        found = read_store_id(conn)
    assert found is not None and re.fullmatch(r"[0-9a-f]{32}", found), found
    return found


def test_a_store_is_given_its_own_id_once_and_a_migrated_one_gets_one(tmp_path):
    """The id the engine publishes with its alert transitions and day figures, so that the
    county tells a new store (numbering from 1 again) from the one it knew."""
    first, second, old = tmp_path / "first.db", tmp_path / "second.db", tmp_path / "old.db"
    new_store(first)
    new_store(second)
    made = store_id(first)
    assert made != store_id(second)  # each store its own
    new_store(first)  # opened again for writing: the same store, the same id
    assert store_id(first) == made
    v1_store(old)
    with closing(sqlite3.connect(old)) as conn:
        assert read_store_id(conn) is None  # (a store of before, read as it is)
    new_store(old)  # migrated
    assert store_id(old) not in (made, store_id(second))
    assert load_snapshot(old, since=0.0, days=[]).store_id == store_id(old)


def test_the_documented_way_to_give_a_restored_backup_a_new_id_works(tmp_path):
    (statement,) = re.findall(
        r'sqlite3 hallwatch\.db "(UPDATE store_meta [^"]+)"', (ROOT / "docs" / "deployment.md").read_text("utf-8")
    )
    db = tmp_path / "hallwatch.db"
    new_store(db)
    before = store_id(db)
    sql_file(db, statement)
    new_store(db)  # (the engine opens it as its own)
    assert store_id(db) != before
