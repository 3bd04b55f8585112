"""The HTML pages: the hall's TV board, the phone page, the manager console, the supervision
console and their login, from ``templates/`` (``{{name}}`` placeholders, HTML-escaped),
under a strict Content-Security-Policy; their scripts and styles are served from ``static/``.
The pages read the JSON API and follow its live streams."""

from __future__ import annotations

import html
import json
from pathlib import Path

from aiohttp import web

from ..core import vocabulary
from ..tickettoken import ENTRANCE_KEY_RE
from . import casepage
from .access import forget, remember
from .context import WEB, Web
from .errors import ApiError
from .phone import slip_ticket

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
PAGES = ("index", "board", "manage", "supervise", "login", "take", "slip", "window", "checkin", "case")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def load_templates() -> dict[str, str]:
    return {name: (TEMPLATES_DIR / f"{name}.html").read_text(encoding="utf-8") for name in PAGES}


def page(shell: Web, name: str, *, status: int = 200, **values: str) -> web.Response:
    return html_page(shell.templates[name], status=status, **values)


def html_page(text: str, *, status: int = 200, **values: str) -> web.Response:
    """A template's ``{{name}}`` placeholders filled in (HTML-escaped), under the pages' headers."""
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value))
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)


def see_other(path: str) -> web.Response:
    return web.Response(status=303, headers={"Location": path, "Cache-Control": "no-store"})


async def index_page(request: web.Request) -> web.Response:
    return page(request.app[WEB], "index")


async def board_page(request: web.Request) -> web.Response:
    shell = request.app[WEB]
    hall = shell.hall(request)
    return page(
        shell, "board", site=hall.id, site_name=hall.site.name, complaints="　".join(hall.site.complaints.labelled())
    )


def _complaints(hall) -> str:
    return "\n".join(hall.site.complaints.labelled())


async def take_page(request: web.Request) -> web.Response:
    """The site's page on a phone (``/s/{site}``, the hall poster's code; also ``/take/{site}``)."""
    shell = request.app[WEB]
    hall = shell.hall(request)
    return page(shell, "take", site=hall.id, site_name=hall.site.name, complaints=_complaints(hall))


async def slip_page(request: web.Request) -> web.Response:
    """A slip's page (``/t/{site}/{token}``, the slip's QR code): a token this engine did not
    make for the site, or of another day, gets the API's 404."""
    shell = request.app[WEB]
    hall = shell.hall(request)
    slip_ticket(shell, request, hall)
    return page(
        shell,
        "slip",
        site=hall.id,
        site_name=hall.site.name,
        token=request.match_info["token"],
        complaints=_complaints(hall),
    )


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else ""


async def case_page(request: web.Request) -> web.Response:
    """The phone page of a case (rendered on the server: it needs no script)."""
    shell = request.app[WEB]
    hall = shell.hall(request)
    case = await casepage.token_case(shell, request, hall)
    words = vocabulary.as_json()
    if case["mark"] is not None:
        due_state = words["case_mark"][case["mark"]]
    else:
        due_state = f"{_when(case['closed_at'])} {words['case_status'][case['status']]}"
    events = []
    for event in case["events"]:
        line = f"{_when(event['at'])}　{words['case_action'][event['action']]}"
        if event["passed_to"]:
            line += f"：{event['passed_to']}"
        events.append(line)
    return page(
        shell,
        "case",
        site=hall.id,
        site_name=hall.site.name,
        no=case["no"],
        service_name=case["service_name"],
        kind=words["case_kind"][case["kind"]],
        case_status=words["case_status"][case["status"]],
        status_class=case["status"],
        day=case["day"],
        due_day=case["due_day"],
        due_state=due_state,
        mark_class=case["mark"] or "closed",
        window_name=case["window_name"] or "",
        passed_to=case["passed_to"] or "—",
        events="\n".join(events),
        complaints="\n".join(case["complaints"]),
    )


async def check_in_page(request: web.Request) -> web.Response:
    """The hall entrance poster's code (``/c/{site}?k=…``): checks in the numbers this phone
    took for the site (its script presents the key with each slip's token)."""
    shell = request.app[WEB]
    hall = shell.hall(request)
    key = request.query.get("k", "")
    if not ENTRANCE_KEY_RE.fullmatch(key):
        raise ApiError(400, "bad_parameter", "签到二维码不完整：请扫描大厅入口的签到二维码", field="k")
    return page(shell, "checkin", site=hall.id, site_name=hall.site.name, key=key, complaints=_complaints(hall))


async def window_page(request: web.Request) -> web.Response:
    """A window's 好差评 page (``/w/{site}/{window}``, the window poster's code)."""
    shell = request.app[WEB]
    hall = shell.hall(request)
    window = request.match_info["window"]
    if window not in hall.windows:
        raise ApiError(404, "unknown_window", f"没有这个窗口：{window}", window=window)
    config = hall.window_config(window)
    return page(
        shell,
        "window",
        site=hall.id,
        site_name=hall.site.name,
        window=window,
        window_name=config.name,
        unit=config.unit,
        complaints=_complaints(hall),
    )


async def manage_page(request: web.Request) -> web.Response:
    hall = request.app[WEB].hall(request)
    return _guarded_page(request, "manage", hall.id, hall.site.name, f"/manage/{hall.id}")


async def supervise_page(request: web.Request) -> web.Response:
    return _guarded_page(request, "supervise", None, "电子监察", "/supervise")


def _guarded_page(request: web.Request, name: str, site: str | None, title: str, path: str) -> web.Response:
    shell = request.app[WEB]
    token = request.query.get("token")
    if token is not None:  # from a link: check it, keep it in a cookie, drop it from the address
        return _login(request, token, site, path, title)
    try:
        shell.authorize(request, site)
    except ApiError as err:
        return _login_page(shell, site, title, path, err.status, "" if err.code == "missing_token" else err.message)
    return page(shell, name, site=site or "", site_name=title)


def _login(request: web.Request, token: str, site: str | None, path: str, title: str) -> web.Response:
    shell = request.app[WEB]
    try:
        role = shell.login_role(request, token, site)
    except ApiError as err:  # too many wrong tokens from this address
        return _login_page(shell, site, title, path, err.status, err.message)
    if role is None:
        return _login_page(shell, site, title, path, 403, "访问令牌不正确")
    response = see_other(path)
    remember(response, request, role, site, token, always_secure=shell.settings.cookie_secure)
    return response


def _login_page(shell: Web, site: str | None, title: str, path: str, status: int, error: str) -> web.Response:
    return page(
        shell,
        "login",
        status=status,
        site=site or "",
        site_name=title,
        scope="manage" if site else "supervise",
        error=error,
        heading="管理控制台登录" if site else "电子监察登录",
        next=path,
    )


async def login(request: web.Request) -> web.Response:
    halls = request.app[WEB].engine_app.engine.halls
    try:
        form = await request.post()
    except ValueError as err:  # e.g. multipart without a boundary
        raise ApiError(400, "bad_form", f"登录表单无法解析：{err}", malformed=True) from None
    scope, site, token = form.get("scope"), form.get("site") or None, form.get("token") or ""
    if scope == "manage":
        if not isinstance(site, str) or site not in halls:
            raise ApiError(404, "unknown_site", f"没有这个站点：{site!s}")
        return _login(request, str(token), site, f"/manage/{site}", halls[site].site.name)
    if scope == "supervise":
        return _login(request, str(token), None, "/supervise", "电子监察")
    raise ApiError(400, "bad_field", "scope 须为 manage 或 supervise", field="scope")


async def vocabulary_script(request: web.Request) -> web.Response:
    """The product's vocabulary (core.vocabulary) as a script every page loads before hw.js:
    the pages show the same words as the reports and Grafana."""
    body = (
        "/* hallwatch: the vocabulary, generated from core.vocabulary */\nconst HW_WORDS = "
        + json.dumps(vocabulary.as_json(), ensure_ascii=False, sort_keys=True)
        + ";\n"
    )
    return web.Response(
        text=body, content_type="text/javascript", charset="utf-8", headers={"Cache-Control": "no-cache"}
    )


async def logout(request: web.Request) -> web.Response:
    response = see_other("/")
    forget(response, request, request.app[WEB].engine_app.engine.halls)
    return response


ROUTES = [
    web.get("/", index_page),
    web.get("/board/{site}", board_page),
    web.get("/take/{site}", take_page),
    web.get("/s/{site}", take_page),
    web.get("/t/{site}/{token}", slip_page),
    web.get("/case/{site}/{token}", case_page),
    web.get("/w/{site}/{window}", window_page),
    web.get("/c/{site}", check_in_page),
    web.get("/manage/{site}", manage_page),
    web.get("/supervise", supervise_page),
    web.post("/login", login),
    web.get("/logout", logout),
    web.get("/vocabulary.js", vocabulary_script),
    web.static("/static", STATIC_DIR),
]
