"""Reports and assessment: the store's tables -> report tables -> HTML and CSV; the audit.

A shell-side library: it reads an engine's SQLite store (read-only) and the site
configuration, and never touches the core's state.

    report = build_report(sites, "hallwatch.db", ["demo"], date(2026, 11, 1), date(2026, 11, 30))
    html = render_html(report)            # one self-contained page, printable on A4
    paths = write_csv(report, out_dir)    # one UTF-8 (BOM) file per table
    data = render_csv(report, "alerts")   # one table's file, as bytes (a download)
    lines = audit_site(site)              # the county standard's checklist
    month, live = audit_live.live_audit(site, "hallwatch.db")  # and the last month's figures, judged
"""

from .audit import AuditLine, audit_site, format_audit
from .compute import ReportError, build_report, open_store
from .csv_out import render_csv, write_csv
from .html import render_html
from .model import TABLES, Report, SiteReport

__all__ = [
    "AuditLine",
    "audit_site",
    "format_audit",
    "ReportError",
    "build_report",
    "open_store",
    "render_csv",
    "write_csv",
    "render_html",
    "TABLES",
    "Report",
    "SiteReport",
]
