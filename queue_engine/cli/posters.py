"""``hallwatch posters``: the 好差评 QR posters of each configured site, thin over ``posters``.

Exit codes: 0 written, 2 bad configuration or arguments (also a site without ``[web]
public_url``, or no font with the Chinese characters), 1 a file could not be written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import ConfigError, load_configs
from .common import ENV, EXIT_FAILED, EXIT_OK, Handler, add_config_option, config_files, fail, report

FORMATS = {"pdf": ("pdf",), "png": ("png",), "both": ("pdf", "png")}


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:
    from ..posters import DEFAULT_FONT

    posters = sub.add_parser(
        "posters",
        help="print the 好差评 QR posters: one A4 for the hall, one A5 per window",
        description="The hall's poster (A4: its code opens the site's page), one per window (A5: its code "
        "rates the visit just finished there) and, with the engine's ticket secret, the entrance's check-in "
        "poster (A4: numbers taken with a phone are called once checked in), with the complaint telephones; "
        "PDF and PNG (300 dpi).",
    )
    add_config_option(posters)
    posters.add_argument("--out", required=True, metavar="DIR", help="where to write poster-{site}-{hall|window}.*")
    posters.add_argument("--format", choices=sorted(FORMATS), default="both", help="pdf, png or both (default both)")
    posters.add_argument(
        "--font",
        type=Path,
        default=DEFAULT_FONT,
        metavar="FILE",
        help=f"a TrueType font (or collection) with the Chinese characters; default {DEFAULT_FONT} "
        "(fonts-wqy-microhei)",
    )
    posters.add_argument(
        "--ticket-secret-file",
        metavar="FILE",
        help="the engine's ticket secret (else env HALLWATCH_TICKET_SECRET): with it, the entrance's check-in "
        "poster is printed too",
    )
    return {"posters": cmd_posters}


def cmd_posters(args: argparse.Namespace) -> int:
    from ..posters import write_posters
    from ..tickettoken import SecretError, load_secret

    files = config_files(args.config)
    if not files:
        return fail("posters", f"no site configuration (use --config FILE or {ENV['config']})")
    try:
        sites = load_configs(files)
    except ConfigError as err:
        return report(err)
    try:
        secret = load_secret(args.ticket_secret_file)
    except SecretError as err:
        return fail("posters", err)
    if not args.font.is_file():
        return fail("posters", f"--font {args.font}: no such font file (install fonts-wqy-microhei, or give --font)")
    for site in sites:
        if not site.web.public_url:
            return fail("posters", f"site {site.id} has no [web] public_url: the posters' codes are links under it")
    out = Path(args.out)
    for site in sites:
        try:
            written = write_posters(site, out, FORMATS[args.format], args.font, secret)
        except OSError as err:
            return fail("posters", f"cannot write in {out}: {err}", EXIT_FAILED)
        print(f"{site.id}: {len(written)} files in {out}: " + ", ".join(p.name for p in written))
    return EXIT_OK
