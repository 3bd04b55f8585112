"""``hallwatch report`` and ``hallwatch audit``: thin shells over ``queue_engine.reports``.

report: exit 0 written, 2 bad configuration or arguments, 4 the store cannot be read.
audit: exit 0 no line fails, 1 some line fails, 2 bad configuration or arguments, 4 the store
(--db) cannot be read.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from pathlib import Path

from ..config import ConfigError, Site, load_configs
from ..files import PRIVATE, write_file
from .common import (
    ENV,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STORE,
    Handler,
    add_config_option,
    add_lang_option,
    argument_type,
    config_files,
    env,
    fail,
    file_mode,
    iso_date,
)
from .common import report as report_error


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    report = sub.add_parser("report", help="write the report of a period: HTML or CSV")
    add_config_option(report)
    report.add_argument(
        "--db",
        default=env("db", "hallwatch.db"),
        help=f"the engine's SQLite file, read only (env {ENV['db']})",
    )
    which = report.add_mutually_exclusive_group()
    which.add_argument("--site", action="append", metavar="S", help="a site id; repeatable (default: every site)")
    which.add_argument("--all", action="store_true", help="every configured site (the default)")
    report.add_argument(
        "--from",
        dest="start",
        type=iso_date,
        metavar="DATE",
        help="first day, YYYY-MM-DD (the site's local date); with --to, required for a site report",
    )
    report.add_argument("--to", dest="end", type=iso_date, metavar="DATE", help="last day, YYYY-MM-DD, included")
    report.add_argument(
        "--county",
        action="store_true",
        help="the county 考核 report of --month, from the county service's store (--db) instead of an engine's",
    )
    report.add_argument(
        "--month", type=argument_type(_month), metavar="YYYY-MM", help="the county report's month (with --county)"
    )
    report.add_argument(
        "--format",
        choices=["html", "csv"],
        default="html",
        help="html: one self-contained page; csv: one UTF-8 (BOM) file per table",
    )
    report.add_argument("--out", metavar="DIR", default=".", help="directory to write into (created if needed)")
    report.add_argument(
        "--mode",
        type=file_mode,
        default=PRIVATE,
        metavar="OCTAL",
        help="permissions of the files written (default 0600: reports name staff and carry operators' notes)",
    )

    audit = sub.add_parser("audit", help="check each site against the county standard (督导考核)")
    add_config_option(audit)
    add_lang_option(audit)
    live = audit.add_mutually_exclusive_group()
    live.add_argument(
        "--db",
        metavar="STORE",
        help="also judge each site's live figures of --month from this engine store (read only)",
    )
    live.add_argument(
        "--county-db",
        metavar="STORE",
        help="the same from the day figures the county service keeps (its store, read only)",
    )
    audit.add_argument(
        "--month",
        type=argument_type(_month),
        metavar="YYYY-MM",
        help="the live figures' month (with --db or --county-db; default: the last complete month at each site)",
    )
    return {"report": cmd_report, "audit": cmd_audit}


def _load(args: argparse.Namespace, command: str) -> list[Site] | None:
    files = config_files(args.config)
    if not files:
        fail(command, f"no site configuration (use --config FILE or {ENV['config']})")
        return None
    try:
        return load_configs(files)
    except ConfigError as err:
        report_error(err)
        return None


def _stem(site_ids: list[str], start: date, end: date) -> str:
    who = site_ids[0] if len(site_ids) == 1 else "all"
    period = start.isoformat() if start == end else f"{start.isoformat()}_{end.isoformat()}"
    return f"report-{who}-{period}"


def _month(text: str) -> str:
    from ..reports.county import month_span

    try:
        month_span(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a month: give YYYY-MM") from None
    return text


def cmd_report(args: argparse.Namespace) -> int:
    from ..reports import ReportError, build_report, render_html, write_csv

    if args.county:
        return _county_report(args)
    if args.month:
        return fail("report", "--month is the county report's period: give --county, or --from and --to")
    if args.start is None or args.end is None:
        return fail("report", "give the period with --from DATE --to DATE")
    sites = _load(args, "report")
    if sites is None:
        return EXIT_CONFIG
    known = [s.id for s in sites]
    site_ids = known if args.all or not args.site else args.site
    unknown = [s for s in site_ids if s not in known]
    if unknown:
        return fail("report", f"unknown site {', '.join(unknown)} (configured: {', '.join(known)})")
    if args.end < args.start:
        return fail("report", f"--to {args.end} is before --from {args.start}")
    if not Path(args.db).is_file():
        return fail("report", f"{args.db}: no such store")
    try:
        report = build_report(sites, args.db, site_ids, args.start, args.end)
    except ReportError as err:
        return fail("report", err, EXIT_STORE)
    return _write(args, _stem(site_ids, args.start, args.end), lambda: render_html(report), partial(write_csv, report))


def _write(args: argparse.Namespace, stem: str, html: Callable[[], str], csv: Callable[..., list[Path]]) -> int:
    """Write one HTML page or the CSV files (``csv(out, stem=, mode=)``) into ``--out``."""
    out = Path(args.out)
    try:
        if args.format == "html":
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{stem}.html"
            write_file(path, html(), mode=args.mode)
            paths = [path]
        else:
            paths = csv(out, stem=f"{stem}-", mode=args.mode)
    except OSError as err:
        return fail("report", f"cannot write to {out}: {err.strerror or err}")
    for path in paths:
        print(path)
    return EXIT_OK


def _county_report(args: argparse.Namespace) -> int:
    from ..county.store import read_figures
    from ..reports.county import build_county_report, render_county_html, stem_of, write_county_csv
    from ..shells.storefile import StoreRefused

    if args.month is None or args.start or args.end or args.site or args.all:
        return fail("report", "the county report takes --month YYYY-MM and reports on every configured hall")
    sites = _load(args, "report")
    if sites is None:
        return EXIT_CONFIG
    if not Path(args.db).is_file():
        return fail("report", f"{args.db}: no such store")
    try:
        figures = read_figures(args.db, since=f"{args.month}-01")
    except (StoreRefused, sqlite3.Error) as err:
        return fail("report", err, EXIT_STORE)
    report = build_county_report(sites, figures, args.month)
    return _write(args, stem_of(args.month), lambda: render_county_html(report), partial(write_county_csv, report))


def cmd_audit(args: argparse.Namespace) -> int:
    from ..reports import ReportError, audit_site, format_audit, open_store
    from ..reports.audit_live import county_live_audit, live_audit
    from ..shells.storefile import StoreRefused

    store = args.db or args.county_db
    if args.month and not store:
        return fail("audit", "--month is the live figures' month: give the engine store with --db (or --county-db)")
    sites = _load(args, "audit")
    if sites is None:
        return EXIT_CONFIG
    if store and not Path(store).is_file():
        return fail("audit", f"{store}: no such store")
    try:
        live: Callable[[Site], tuple[str, list]] | None = None
        if args.db:
            conn = open_store(args.db)
            live = partial(live_audit, db=conn, month=args.month)
        elif args.county_db:
            figures = _county_figures(args.county_db, args.month)
            live = partial(county_live_audit, figures=figures, month=args.month)
    except (ReportError, StoreRefused, sqlite3.Error) as err:
        return fail("audit", err, EXIT_STORE)
    failed = False
    try:
        for i, site in enumerate(sites):
            lines = audit_site(site)
            if i:
                print()
            print(format_audit(site, lines, lang=args.lang))
            if live is not None:
                month, found = live(site)
                print(format_audit(site, found, lang=args.lang, heading=f"{month} 运行实绩（{Path(store).name}）"))
                lines += found
            failed = failed or any(line.status == "fail" for line in lines)
    except ReportError as err:
        return fail("audit", err, EXIT_STORE)
    finally:
        if args.db and live is not None:
            conn.close()
    return EXIT_FAILED if failed else EXIT_OK


def _county_figures(path: str, month: str | None) -> list[dict]:
    """The county store's day figures from the month (default: from the start of last month
    anywhere: each site's default month is its own)."""
    from ..county.store import read_figures

    since = f"{month}-01" if month else (date.today().replace(day=1) - timedelta(days=40)).replace(day=1).isoformat()
    return read_figures(path, since=since)
