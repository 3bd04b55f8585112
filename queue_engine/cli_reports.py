"""``hallwatch report`` and ``hallwatch audit``: thin shells over ``queue_engine.reports``.

report: exit 0 written, 2 bad configuration or arguments, 4 the store cannot be read.
audit: exit 0 no line fails, 1 some line fails, 2 bad configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

EXIT_FAILED_AUDIT = 1
EXIT_CONFIG = 2
EXIT_STORE = 4


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def add_parsers(sub) -> None:
    """Add the subcommands to ``hallwatch``'s subparsers."""
    report = sub.add_parser("report", help="write the report of a period: HTML or CSV")
    report.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help="site TOML file; repeat for several sites (env HALLWATCH_CONFIG, ':'-separated)",
    )
    report.add_argument(
        "--db",
        default=os.environ.get("HALLWATCH_DB", "hallwatch.db"),
        help="the engine's SQLite file, read only (env HALLWATCH_DB)",
    )
    which = report.add_mutually_exclusive_group()
    which.add_argument("--site", action="append", metavar="S", help="a site id; repeatable (default: every site)")
    which.add_argument("--all", action="store_true", help="every configured site (the default)")
    report.add_argument(
        "--from",
        dest="start",
        type=_date,
        required=True,
        metavar="DATE",
        help="first day, YYYY-MM-DD (the site's local date)",
    )
    report.add_argument(
        "--to", dest="end", type=_date, required=True, metavar="DATE", help="last day, YYYY-MM-DD, included"
    )
    report.add_argument(
        "--format",
        choices=["html", "csv"],
        default="html",
        help="html: one self-contained page; csv: one UTF-8 (BOM) file per table",
    )
    report.add_argument("--out", metavar="DIR", default=".", help="directory to write into (created if needed)")

    audit = sub.add_parser("audit", help="check each site against the county standard (督导考核)")
    audit.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help="site TOML file; repeatable (env HALLWATCH_CONFIG, ':'-separated)",
    )


def _load(args, command: str):
    from .cli import _configs
    from .config import ConfigError, load_sites

    try:  # county files that include site files, where the configuration supports them
        from .cli_deploy import expand
    except ImportError:  # pragma: no cover
        expand = list
    files = _configs(args.config)
    if not files:
        print(f"hallwatch {command}: no site configuration (use --config FILE or HALLWATCH_CONFIG)", file=sys.stderr)
        return None
    try:
        return load_sites(expand(files))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return None


def _stem(site_ids: list[str], start: date, end: date) -> str:
    who = site_ids[0] if len(site_ids) == 1 else "all"
    period = start.isoformat() if start == end else f"{start.isoformat()}_{end.isoformat()}"
    return f"report-{who}-{period}"


def cmd_report(args) -> int:
    from .reports import ReportError, build_report, render_html, write_csv

    sites = _load(args, "report")
    if sites is None:
        return EXIT_CONFIG
    known = [s.id for s in sites]
    site_ids = known if args.all or not args.site else args.site
    unknown = [s for s in site_ids if s not in known]
    if unknown:
        print(f"hallwatch report: unknown site {', '.join(unknown)} (configured: {', '.join(known)})", file=sys.stderr)
        return EXIT_CONFIG
    if args.end < args.start:
        print(f"hallwatch report: --to {args.end} is before --from {args.start}", file=sys.stderr)
        return EXIT_CONFIG
    if not Path(args.db).is_file():
        print(f"hallwatch report: {args.db}: no such store", file=sys.stderr)
        return EXIT_CONFIG
    try:
        report = build_report(sites, args.db, site_ids, args.start, args.end)
    except ReportError as err:
        print(f"hallwatch report: {err}", file=sys.stderr)
        return EXIT_STORE
    out = Path(args.out)
    stem = _stem(site_ids, args.start, args.end)
    try:
        if args.format == "html":
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{stem}.html"
            path.write_text(render_html(report), encoding="utf-8")
            paths = [path]
        else:
            paths = write_csv(report, out, stem=f"{stem}-")
    except OSError as err:
        print(f"hallwatch report: cannot write to {out}: {err.strerror or err}", file=sys.stderr)
        return EXIT_CONFIG
    for path in paths:
        print(path)
    return 0


def cmd_audit(args) -> int:
    from .reports import audit_site, format_audit

    sites = _load(args, "audit")
    if sites is None:
        return EXIT_CONFIG
    failed = False
    for i, site in enumerate(sites):
        lines = audit_site(site)
        if i:
            print()
        print(format_audit(site, lines))
        failed = failed or any(line.status == "fail" for line in lines)
    return EXIT_FAILED_AUDIT if failed else 0


COMMANDS = {"report": cmd_report, "audit": cmd_audit}
