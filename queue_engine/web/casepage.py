"""The citizen's case on the phone (``/case/{site}/{token}``, the QR code of a case slip): its
number, service, kind, status, opened and due days, where it was passed on to and its status
changes, with the complaint telephones. No login: the token names one case and only the engine
can make it (``tickettoken.case_token``).

What the page shows is public by design: never the citizen (only a key of theirs is kept
anyway), no staff member (only the window the case was opened at), no progress note (those are
internal), no result text (it may name the citizen's matter in detail)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from aiohttp import web

from ..core.cases import PUBLIC_ACTIONS, Case, CaseAction
from ..core.hall import Hall
from ..shells.schema import CASE_COLUMNS, case_from_row
from ..shells.storefile import open_read_only
from ..tickettoken import verify_case_token
from . import views
from .context import WEB, Web
from .errors import ApiError, json_response
from .inputs import CASE_TOKEN


def stored_case(db_path: str | Path, site: str, number: str) -> tuple[Case | None, list[tuple[str, float, str | None]]]:
    """The case as stored and its public log rows (action, at, passed_to), oldest first; read
    only (call it in a thread). (None, []) when the store has no such case."""
    path = Path(db_path)
    if not path.exists():
        return None, []
    conn = open_read_only(path, ["cases", "case_log"])  # StoreRefused: not a store (the web answers 503)
    try:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE site = ? AND no = ?", (site, number)
        ).fetchone()
        marks = ",".join("?" * len(PUBLIC_ACTIONS))
        log = conn.execute(
            f"SELECT action, at, passed_to FROM case_log WHERE site = ? AND case_no = ? AND action IN ({marks}) "
            "ORDER BY at, id",
            (site, number, *(a.value for a in PUBLIC_ACTIONS)),
        ).fetchall()
    finally:
        conn.close()
    return (case_from_row(dict(row)) if row is not None else None), [
        (r["action"], r["at"], r["passed_to"]) for r in log
    ]


def public_case(hall: Hall, case: Case, log: list[tuple[str, float, str | None]], now: float) -> dict:
    """What the citizen's page shows of ``case`` (see the module's doc)."""
    service = hall.site.service(case.service)
    if not log:  # (a store that has not written it yet: the case itself says it was opened)
        log = [(CaseAction.OPENED.value, case.opened_at, None)]
    return {
        "site": hall.id,
        "site_name": hall.site.name,
        "no": case.no,
        "kind": case.kind.value,
        "status": case.status.value,
        "service": case.service,
        "service_name": service.name if service else case.service,
        "day": case.day,
        "due_day": case.due_day,
        "mark": views.case_mark(hall, case, now) if case.open else None,
        "window_name": hall.window_name(case.window) if case.window in hall.windows else None,
        "passed_to": case.passed_to,
        "closed_at": views.iso(case.closed_at, hall),
        "events": [
            {"action": action, "at": views.iso(at, hall), "passed_to": passed_to if action == "passed_on" else None}
            for action, at, passed_to in log
        ],
        "complaints": hall.site.complaints.labelled(),
    }


async def token_case(shell: Web, request: web.Request, hall: Hall) -> dict:
    """The public view of the case the route's token names: 400 for a malformed token, 404
    ``unknown_case`` for one this engine did not make for this site or a case it does not keep."""
    token = request.match_info["token"]
    if not CASE_TOKEN.accepts(token):
        raise ApiError(400, "bad_parameter", "办件令牌格式不正确", field="token")
    secret = shell.engine_app.ingest.links.secret
    number = verify_case_token(secret, hall.id, token) if secret is not None else None
    if number is None:
        raise ApiError(404, "unknown_case", "没有找到这个办件：请核对办件凭条上的二维码")
    stored, log = await asyncio.to_thread(stored_case, shell.engine_app.db_path, hall.id, number)
    case = hall.cases.cases.get(number) or stored  # (the engine's own is the newest)
    if case is None:
        raise ApiError(404, "unknown_case", "没有找到这个办件：请核对办件凭条上的二维码")
    return public_case(hall, case, log, shell.now)


async def case_json(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    return json_response({"case": await token_case(shell, request, hall)})


ROUTES = [web.get("/api/v1/sites/{site}/cases/by-token/{token}", case_json)]
