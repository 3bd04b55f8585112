"""``hallwatch report`` and ``hallwatch audit``: thin shells over ``queue_engine.reports``.

report: exit 0 written, 2 bad configuration or arguments, 4 the store cannot be read.
audit: exit 0 no line fails, 1 some line fails, 2 bad configuration.
"""

from __future__ import annotations

import argparse
from datetime import date
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
        required=True,
        metavar="DATE",
        help="first day, YYYY-MM-DD (the site's local date)",
    )
    report.add_argument(
        "--to", dest="end", type=iso_date, required=True, metavar="DATE", help="last day, YYYY-MM-DD, included"
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


def cmd_report(args: argparse.Namespace) -> int:
    from ..reports import ReportError, build_report, render_html, write_csv

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
    out = Path(args.out)
    stem = _stem(site_ids, args.start, args.end)
    try:
        if args.format == "html":
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{stem}.html"
            write_file(path, render_html(report), mode=args.mode)
            paths = [path]
        else:
            paths = write_csv(report, out, stem=f"{stem}-", mode=args.mode)
    except OSError as err:
        return fail("report", f"cannot write to {out}: {err.strerror or err}")
    for path in paths:
        print(path)
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from ..reports import audit_site, format_audit

    sites = _load(args, "audit")
    if sites is None:
        return EXIT_CONFIG
    failed = False
    for i, site in enumerate(sites):
        lines = audit_site(site)
        if i:
            print()
        print(format_audit(site, lines, lang=args.lang))
        failed = failed or any(line.status == "fail" for line in lines)
    return EXIT_FAILED if failed else EXIT_OK
