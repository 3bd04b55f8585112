"""The JSON API's OpenAPI 3.1 description, served at ``/api/v1/openapi.json``.

What a request may be is not written here: the request bodies and parameters are the very
definitions the handlers decode and check with (``inputs``), the error codes the table the
handlers answer from (``errors.ERROR_CODES``), the live streams' events the sets the streams
send (``live``). The answers are described from the core's tables (alert kinds, staffing,
ticket status, ...) and checked against the running server by ``tests/test_api_contract.py``
(schemathesis), which also takes the links between operations from here to reach every one.
A test checks that every route under ``/api/v1`` is described, with the same methods.
"""

from __future__ import annotations

from copy import deepcopy
from enum import StrEnum
from typing import get_args

from ..config import SiteKind, WindowRole
from ..core import events as ev
from ..core.alerts import ALERT_KINDS, AlertKind, AlertState, Audience
from ..core.cases import PUBLIC_ACTIONS, CaseKind, CaseStatus
from ..core.kinds import DeviceKind
from ..core.model import VACANCY, Staffing, TicketStatus, WindowPhase
from ..core.vocabulary import CASE_MARK
from . import inputs, live
from .errors import ERROR_CODES

REFS = "#/components/schemas/{name}"


# -- schema helpers -----------------------------------------------------------------------------------
def _ref(name: str) -> dict:
    return {"$ref": REFS.format(name=name)}


def _null(schema: dict) -> dict:
    """``schema`` or null."""
    if isinstance(schema.get("type"), str):
        nullable = {**schema, "type": [schema["type"], "null"]}
        if "enum" in schema:
            nullable["enum"] = [*schema["enum"], None]
        return nullable
    return {"anyOf": [schema, {"type": "null"}]}


def _enum(values) -> dict:
    return {"type": "string", "enum": [v.value if isinstance(v, StrEnum) else v for v in values]}


def _object(properties: dict, *, optional: tuple[str, ...] = (), description: str = "") -> dict:
    """An object with exactly these ``properties``, each present unless ``optional``."""
    schema: dict = {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _array(items: dict) -> dict:
    return {"type": "array", "items": items}


def _counts(keys=None) -> dict:
    """name -> count."""
    schema: dict = {"type": "object", "additionalProperties": _int}
    if keys is not None:
        schema["propertyNames"] = _enum(keys)
    return schema


_str = {"type": "string"}
_int = {"type": "integer"}
_num = {"type": "number"}
_bool = {"type": "boolean"}
_time = {"type": "string", "format": "date-time"}
_str_or_null = _null(_str)
_time_or_null = _null(_time)
_num_or_null = _null(_num)
_v = {"type": "integer", "const": 1, "description": "protocol version (as on MQTT)"}

# -- answers ------------------------------------------------------------------------------------------
WINDOW_PROPERTIES = {
    "v": _v,
    "window": _str,
    "window_name": _str,
    "state": _enum(WindowPhase),
    "staffing": _enum(Staffing),
    "staff": _str_or_null,
    "staff_name": _str_or_null,
    "ticket": _str_or_null,
    "pause_reason": _null(_enum(ev.PauseReason)),
    "paused_since": _time_or_null,
    "served_today": _int,
    "present": _null(_bool),
}
ALERT_PROPERTIES = {
    "v": _v,
    "id": _str,
    "seq": _int,
    "kind": _enum(AlertKind),
    "audience": _enum(Audience),
    "audiences": _array(_enum(Audience)),
    "severity": _enum(sorted({rule.severity for rule in ALERT_KINDS.values()})),
    "state": _enum(AlertState),
    "site": _str,
    "window": _str_or_null,
    "device": _str_or_null,
    "staff": _str_or_null,
    "staff_name": _str_or_null,
    "since": _time,
    "until": _time_or_null,
    "duration_s": _num_or_null,
    "acknowledged_at": _time_or_null,
    "acknowledged_by": _str_or_null,
    "note": _str_or_null,
    "due": _time_or_null,
    "overdue": _bool,
    "detail": {"type": "object", "description": "what the alert's kind records (docs/protocol.md)"},
    "store_id": {**_str_or_null, "description": "the engine store whose numbering seq follows (null: not named)"},
}
CALL_PROPERTIES = {
    "ticket": _str,
    "window": _str,
    "window_name": _str,
    "at": _time,
    "recall": _bool,
}
SITE_PROPERTIES = {
    "id": _str,
    "name": _str,
    "kind": _enum(get_args(SiteKind)),
    "timezone": _str,
    "hours": _array({"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$"}),
    "open": _bool,
    "now": _time,
}
VACANCY_MINUTES = _object(
    {**{c.value: _num for c in VACANCY}, "total": _num},
    description="空岗 minutes today by category (not_opened, unstaffed, unverified) and their total",
)
DEVICE_PROPERTIES = {
    "site": _str,
    "site_name": _str,
    "device": _str,
    "kind": _enum(DeviceKind),
    "window": _str_or_null,
    "window_name": _str_or_null,
    "online": _null(_bool),
    "reason": _str_or_null,
    "since": _time_or_null,
    "tamper": _str_or_null,
    "video_ok": _bool,
}
TICKET_POSITION = {
    "no": _str,
    "site": _str,
    "service": _str,
    "service_name": _str,
    "status": _enum(TicketStatus),
    "status_text": _str,
    "priority": _bool,
    "issued_at": _time,
    "ahead": _int,
    "eta_min": _int,
    "window": _str_or_null,
    "window_name": _str_or_null,
    "called_at": _time_or_null,
}
RANKED = {"site": _str, "site_name": _str, "minutes": _num, "seconds": _num, "vacant_min": _ref("Vacancy")}

# What every view of a case begins with: which case it is, of what, and where it stands.
_CASE_IDENTITY = {
    "site": _str,
    "site_name": _str,
    "no": _str,
    "kind": _enum(CaseKind),
    "status": _enum(CaseStatus),
    "service": _str,
    "service_name": _str,
}
_DUE_DAY = {"type": "string", "format": "date", "description": "its last day"}

SCHEMAS: dict[str, dict] = {
    "Vacancy": VACANCY_MINUTES,
    "SiteBrief": _object(SITE_PROPERTIES),
    "Site": _object(
        {
            **SITE_PROPERTIES,
            "windows": _array(_object({"id": _str, "name": _str, "unit": _str, "role": _enum(WindowRole)})),
        }
    ),
    "Service": _object(
        {
            "code": _str,
            "name": _str,
            "prefix": {"type": "string", "pattern": "^[A-Z]{1,2}$"},
            "category": _str,
            "theme": _bool,
            "includes": _array(_str),
            "expected_service_min": _num,
            "target_wait_min": _num,
            "windows": _array(_str),
            "guide": _object(
                {
                    "basis": _str,
                    "conditions": _str,
                    "materials": _array(_str),
                    "time_limit": _str,
                    "fee": _str,
                    "item_type": _str,
                },
                description="办事指南",
            ),
        }
    ),
    "QueueState": _object(
        {
            "site": _str,
            "v": _v,
            "at": _time,
            "waiting": _int,
            "services": _array(
                _object(
                    {
                        "service": _str,
                        "name": _str,
                        "prefix": _str,
                        "waiting": _int,
                        "priority_waiting": _int,
                        "oldest_wait_s": _num,
                        "eta_min": _int,
                        "open_windows": _int,
                    }
                )
            ),
        },
        optional=("site",),
        description="the MQTT queue state (hallwatch/{site}/queue/state), with `site` in /queue and on the streams",
    ),
    "Call": _object(
        {**CALL_PROPERTIES, "v": _v, "n": _int, "site": _str},
        optional=("v", "n", "site"),
        description="a call; on the live streams the MQTT call (with v, n: this ticket's call count) and the site",
    ),
    "Board": _object(
        {
            "site": _object({"id": _str, "name": _str, "timezone": _str}),
            "now": _time,
            "now_ms": _int,
            "calls": _array(_ref("Call")),
            "queue": _ref("QueueState"),
        }
    ),
    "IssuedTicket": _object(
        {
            "no": _str,
            "site": _str,
            "service": _str,
            "service_name": _str,
            "issued_at": _time,
            "ahead": _int,
            "eta_min": _int,
            "phone": {"type": "string", "pattern": "^1[0-9]{2}[*]{4}[0-9]{4}$", "description": "masked: 138****0000"},
            "status_url": _str,
            "status": _enum([TicketStatus.RESERVED, TicketStatus.WAITING]),
            "check_in_code": _null(
                {"type": "string", "pattern": "^[0-9]{6}$", "description": "reserved: the code to type at a kiosk"}
            ),
            "token": _null({**_str, "description": "the slip's token (null: the engine has no ticket secret)"}),
            "url": _null({**_str, "description": "the slip's page, {public_url}/t/{site}/{token}"}),
        }
    ),
    "TicketPosition": _object(TICKET_POSITION),
    "Slip": _object(
        {
            **TICKET_POSITION,
            "site_name": _str,
            "staff_name": _str_or_null,
            "finished_at": _time_or_null,
            "rating": _null({"type": "integer", "minimum": 1, "maximum": 5}),
            "ratable": {"type": "boolean", "description": "finished and not rated yet: the 好差评 form is shown"},
            "complaints": _array({"type": "string", "description": "县乡投诉电话, e.g. 县投诉电话：12345"}),
            "check_in_code": _null(
                {"type": "string", "pattern": "^[0-9]{6}$", "description": "reserved: the code to type at a kiosk"}
            ),
            "reserved_until": _null({**_time, "description": "reserved: unchecked by then, a no-show"}),
            "priority_claim": _null(_enum(ev.Priority)),
            "priority_check": _null(
                {**_enum(["pending", "confirmed", "refused"]), "description": "the window's word on the green channel"}
            ),
        },
        description="a slip on the phone: the ticket's position, who served it, its rating",
    ),
    "WindowVisit": _object(
        {
            "site": _str,
            "site_name": _str,
            "window": _str,
            "window_name": _str,
            "unit": _str,
            "staff_name": _str_or_null,
            "visit": _null(
                _object({"ticket": _str, "service_name": _str, "staff_name": _str_or_null, "finished_at": _time})
            ),
            "complaints": _array(_str),
        },
        description="a window's poster page: the window, who is on duty, the visit just finished there "
        "(null: none to rate without the slip's number)",
    ),
    "RatingRecorded": _object(
        {
            "rating": _object(
                {
                    "site": _str,
                    "ticket": _str,
                    "window": _str,
                    "window_name": _str,
                    "staff_name": _str_or_null,
                    "score": {"type": "integer", "minimum": 1, "maximum": 5},
                    "reasons": _array(_enum(ev.RatingReason)),
                }
            )
        }
    ),
    "WindowState": _object(
        {**WINDOW_PROPERTIES, "site": _str},
        optional=("site",),
        description="the MQTT window state (hallwatch/{site}/window/{window}/state); on the live streams with the site",
    ),
    "Window": _object(
        {
            **WINDOW_PROPERTIES,
            "unit": _str,
            "camera": {
                "type": "boolean",
                "description": "whether a camera watches it: without one its staffing is never verified "
                "and it never raises window_unstaffed",
            },
            "vacant_min": _ref("Vacancy"),
        },
        description="the MQTT window state, plus the unit, its camera and today's 空岗 minutes by category",
    ),
    "AlertMessage": _object(ALERT_PROPERTIES, description="the MQTT alert (hallwatch/{site}/alerts)"),
    "Alert": _object(
        {
            **ALERT_PROPERTIES,
            "site_name": _str,
            "window_name": _str_or_null,
            "subject_name": _str,
            "due_day": _null({"type": "string", "format": "date", "description": "a follow-up's last day"}),
        },
        description="the MQTT alert, plus the names of its site, window and subject, and a follow-up's last day "
        "(due is its end)",
    ),
    "Device": _object(DEVICE_PROPERTIES),
    "DeviceChange": _object(
        {
            "site": _str,
            "device": _str,
            "online": _bool,
            "reason": _str_or_null,
            "at": _time_or_null,
            "kind": _null(_enum(DeviceKind)),
            "window": _str_or_null,
        }
    ),
    "Hello": _object(
        {"now_ms": _int, "speed": _num, "site": _str_or_null},
        description="the engine's clock (it may run faster in a simulation) and the stream's site (null: every site)",
    ),
    "Figures": _object(
        {
            "day": {"type": "string", "format": "date"},  # (hall.day: the local date, ISO)
            "issued": _int,
            "served": _int,
            "no_shows": _int,
            "waiting": _int,
            "in_service": _int,
            "phone_tickets": _int,
            "outcomes": _counts(ev.Outcome),
            "wait_avg_min": _num_or_null,
            "wait_p90_min": _num_or_null,
            "ratings": _object(
                {
                    "count": _int,
                    "average": _num_or_null,
                    "scores": _counts(["1", "2", "3", "4", "5"]),
                    "bad": _int,
                    "satisfied_pct": _num_or_null,
                }
            ),
        }
    ),
    "ManagerSummary": _object(
        {
            "site": _ref("Site"),
            "now_ms": _int,
            "role": _enum(["manager", "supervisor"]),
            "queue": _ref("QueueState"),
            "windows": _array(_ref("Window")),
            "alerts": _array(_ref("Alert")),
            "figures": _ref("Figures"),
            "series": _array(_object({"at": _time, "waiting": _int, "wait_avg_min": _num_or_null, "called": _int})),
            "calls": _array(_ref("Call")),
            "devices_offline": _array(_ref("Device")),
        }
    ),
    "Supervision": _object(
        {
            "now_ms": _int,
            "sites": _array(
                _object(
                    {
                        "id": _str,
                        "name": _str,
                        "kind": SITE_PROPERTIES["kind"],
                        "open": _bool,
                        "now": _time,
                        "waiting": _int,
                        "windows": _counts(Staffing),
                        "alerts": _object({"firing": _int, "acknowledged": _int, "critical": _int}),
                        "devices_offline": _int,
                        "windows_without_camera": _array(_str),
                    }
                )
            ),
            "alerts": _array(_ref("Alert")),
            "ranking": _object(
                {
                    "windows": _array(
                        _object(
                            {
                                **RANKED,
                                "window": _str,
                                "window_name": _str,
                                "staff": _str_or_null,
                                "staff_name": _str_or_null,
                            }
                        )
                    ),
                    "staff": _array(_object({**RANKED, "staff": _str, "staff_name": _str})),
                },
                description="windows and staff by 空岗 minutes today, longest first",
            ),
            "devices_offline": _array(_ref("Device")),
        }
    ),
    "Case": _object(
        {
            **_CASE_IDENTITY,
            "ticket": _str_or_null,
            "opened_at": _time,
            "due_day": _DUE_DAY,
            "due_at": {"type": "string", "format": "date-time", "description": "the end of its due day"},
            "mark": _null(_enum(CASE_MARK)),
            "window": _str_or_null,
            "window_name": _str_or_null,
            "agent": _str_or_null,
            "agent_name": _str_or_null,
            "passed_to": _str_or_null,
            "first_window": _str_or_null,
            "first_window_name": _str_or_null,
            "first_staff_name": _str_or_null,
            "result": _str_or_null,
            "closed_at": _time_or_null,
            "closed_by": _str_or_null,
            "updated_at": _time_or_null,
        },
        description="a case (办件): mark is in_time, due_today or overdue while it is open (null once closed); "
        "the citizen is never shown",
    ),
    "PublicCase": _object(
        {
            **_CASE_IDENTITY,
            "day": {"type": "string", "format": "date", "description": "the day it was opened"},
            "due_day": _DUE_DAY,
            "mark": _null(_enum(CASE_MARK)),
            "window_name": _str_or_null,
            "passed_to": _str_or_null,
            "closed_at": _time_or_null,
            "events": _array(
                _object(
                    {
                        "action": _enum(PUBLIC_ACTIONS),
                        "at": _time,
                        "passed_to": _str_or_null,
                    }
                )
            ),
            "complaints": _array(_str),
        },
        description="a case as its citizen follows it (the case slip's QR code): its status changes only "
        "(progress notes are internal), no citizen, no staff member, no result text",
    ),
    "Error": _object(
        {
            "error": _str,
            "message": {"type": "string", "description": "说明（中文）"},
            "status": _int,
            "field": {"type": "string", "description": "the request field at fault"},
            "limit": {"type": "integer", "description": "the limit reached (429)"},
            "path": {"type": "string", "description": "the path that has no route (404, 405)"},
            "site": _str,
            "service": _str,
            "ticket": _str,
            "detail": _str,
            "header": {"type": "string", "description": "the request header at fault (bad_header)"},
            "window": _str,
        },
        optional=("field", "limit", "path", "site", "service", "ticket", "detail", "header", "window"),
    ),
    **inputs.body_schemas(REFS),
}

# The data of each live event, by its name (``event:``).
EVENT_DATA = {
    "hello": "Hello",
    "call": "Call",
    "queue": "QueueState",
    "window": "WindowState",
    "alert": "AlertMessage",
    "device": "DeviceChange",
    "ticket": "Slip",
}


def _stream(events: frozenset[str], data: dict[str, str] = EVENT_DATA) -> dict:
    """A live stream: ``hello`` first, then ``events`` (their ``data`` schemas by name) as each
    batch commits."""
    names = ["hello", *sorted(events)]
    one_event = {
        "oneOf": [
            _object(
                {
                    "event": {"const": name},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": _ref(data[name]),
                    },
                    "id": _str,
                    "retry": _int,
                },
                optional=("id", "retry"),
            )
            for name in names
        ]
    }
    return {
        "description": "Server-Sent Events, each described here (`event` and its JSON `data`): "
        f"{', '.join(names)}. A comment line every 15 s keeps the connection open.",
        "content": {"text/event-stream": {"schema": one_event}},
    }


# -- operations ---------------------------------------------------------------------------------------
def _json(schema: dict, description: str, *, links: dict | None = None, headers: dict | None = None) -> dict:
    response: dict = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    if links:
        response["links"] = links
    return response


def _errors(*statuses: int) -> dict:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


def _link(operation: str, description: str, parameters: dict | None = None, body: dict | None = None) -> dict:
    link: dict = {"operationId": operation, "description": description}
    if parameters:
        link["parameters"] = parameters
    if body:
        link["requestBody"] = body
    return link


SAME_SITE = "$request.path.site"


def _acknowledge_latest(site: str) -> dict:
    """From a list of alerts (latest first) to acknowledging the first."""
    return {
        "acknowledge": _link(
            "acknowledgeAlert", "the latest alert", {"site": site, "alert": "$response.body#/alerts/0/id"}
        )
    }


MANAGER: list[dict[str, list[str]]] = [{"bearer": []}, {"managerCookie": []}, {"supervisorCookie": []}]
SUPERVISOR: list[dict[str, list[str]]] = [{"bearer": []}, {"supervisorCookie": []}]
# A token header that is not UTF-8 (400 bad_header), none (401), a wrong one (403), too many
# wrong ones from the client's address (429).
TOKEN_ERRORS = (400, 401, 403, 429)
# A manager's action on an alert or a case: a bad body or one too large, an unknown alert or
# case, one closed already, what the action needs missing (422), the engine not answering.
MANAGER_ACTION_ERRORS = (400, *TOKEN_ERRORS, 404, 409, 413, 415, 422, 503)


def _operation(
    operation_id: str,
    summary: str,
    ok: dict,
    *errors: int,
    params: tuple[inputs.Param, ...] = (),
    security: list | None = None,
    tag: str = "public",
    body: str | None = None,
    ok_status: int = 200,
) -> dict:
    op: dict = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "security": security if security is not None else [],
        "parameters": [p.openapi() for p in params],
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    op["responses"] = {str(ok_status): ok, **_errors(*errors)}
    return op


S = inputs.SITE


def _site_read(operation_id: str, summary: str, schema: dict, description: str, *params: inputs.Param) -> dict:
    """A public read of one site's: 404 when the site (or what ``params`` name) is unknown."""
    return {"get": _operation(operation_id, summary, _json(schema, description), 404, params=(S, *params))}


def _rating(operation_id: str, summary: str, param: inputs.Param, body: str) -> dict:
    """A 好差评 from a phone: 201 once committed."""
    return {
        "post": _operation(
            operation_id,
            summary,
            _json(_ref("RatingRecorded"), "the rating, committed (a bad one opens a bad_rating alert)"),
            400,
            404,
            409,
            413,
            415,
            422,
            503,
            params=(S, param),
            body=body,
            ok_status=201,
        )
    }


PATHS = {
    "/api/v1/openapi.json": {
        "get": _operation(
            "getOpenApi",
            "本接口的 OpenAPI 描述",
            _json({"type": "object", "required": ["openapi", "info", "paths"]}, "OpenAPI 3.1 document"),
        )
    },
    "/api/v1/vocabulary": {
        "get": _operation(
            "getVocabulary",
            "产品词表：每个记录值的中文名称（告警类型、状态、办理结果、暂停原因、设备类型、空岗类别……）",
            _json(
                {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": _str}},
                "table name -> value -> 中文",
            ),
        )
    },
    "/api/v1/sites": {
        "get": _operation(
            "listSites",
            "站点列表",
            _json(
                _object({"sites": _array(_ref("SiteBrief"))}),
                "every site of this engine",
                links={
                    "site": _link("getSite", "the first site", {"site": "$response.body#/sites/0/id"}),
                    "services": _link("listServices", "its services", {"site": "$response.body#/sites/0/id"}),
                },
            ),
        )
    },
    "/api/v1/sites/{site}": _site_read("getSite", "站点信息（名称、工作时间、窗口）", _ref("Site"), "the site"),
    "/api/v1/sites/{site}/services": {
        "get": _operation(
            "listServices",
            "服务事项目录及办事指南",
            _json(
                _object({"site": _str, "services": _array(_ref("Service"))}),
                "the catalogue",
                links={
                    "service": _link(
                        "getService",
                        "the first service",
                        {"site": SAME_SITE, "service": "$response.body#/services/0/code"},
                    ),
                    "take": _link(
                        "takeTicket",
                        "a number for the first service",
                        {"site": SAME_SITE},
                        {"service": "$response.body#/services/0/code"},
                    ),
                },
            ),
            404,
            params=(S,),
        )
    },
    "/api/v1/sites/{site}/services/{service}": _site_read(
        "getService", "一个服务事项及其办事指南", _ref("Service"), "the service", inputs.SERVICE
    ),
    "/api/v1/sites/{site}/queue": _site_read(
        "getQueue", "各业务排队情况（与 MQTT queue/state 相同）", _ref("QueueState"), "queue"
    ),
    "/api/v1/sites/{site}/board": _site_read(
        "getBoard", "叫号大屏的初始数据：最近叫号、排队、引擎时间", _ref("Board"), "board snapshot"
    ),
    "/api/v1/sites/{site}/tickets": {
        "post": _operation(
            "takeTicket",
            "手机取号（每个手机号每天、每个客户端地址每小时的次数受站点 [web] 配置限制）",
            _json(
                _object({"ticket": _ref("IssuedTicket")}),
                "the ticket, committed",
                headers={"Location": {"description": "its status URL", "required": True, "schema": _str}},
                links={
                    "ticket": _link(
                        "getTicket", "the ticket just taken", {"site": SAME_SITE, "ticket": "$response.body#/ticket/no"}
                    ),
                    "slip": _link("getSlip", "its slip", {"site": SAME_SITE, "token": "$response.body#/ticket/token"}),
                },
            ),
            400,
            403,
            404,
            409,
            413,
            415,
            429,
            503,
            params=(S,),
            body="PhoneTicketRequest",
            ok_status=201,
        )
    },
    "/api/v1/sites/{site}/tickets/{ticket}": {
        "get": _operation(
            "getTicket",
            "查询号码：状态、前面人数、预计等候",
            _json(_ref("TicketPosition"), "the ticket today"),
            400,
            404,
            params=(S, inputs.TICKET),
        )
    },
    "/api/v1/sites/{site}/slips/{token}": {
        "get": _operation(
            "getSlip",
            "凭条（手机扫码）：号码、前面人数、预计等候、叫号窗口、评价",
            _json(
                _ref("Slip"),
                "the slip's ticket today",
                links={
                    "rate": _link(
                        "rateSlip",
                        "rate the visit",
                        {"site": SAME_SITE, "token": "$request.path.token"},
                        {"score": 2, "reasons": ["efficiency"]},
                    )
                },
            ),
            400,
            404,
            params=(S, inputs.SLIP_TOKEN),
        )
    },
    "/api/v1/sites/{site}/cases/by-token/{token}": {
        "get": _operation(
            "getCaseByToken",
            "办件进度（手机扫办件凭条二维码）：状态、承诺办结日期、转交与办理进程",
            _json(_object({"case": _ref("PublicCase")}), "the case"),
            400,
            404,
            503,
            params=(S, inputs.CASE_TOKEN),
        )
    },
    "/api/v1/sites/{site}/slips/{token}/check-in": {
        "post": _operation(
            "checkIn",
            "到厅签到（扫描大厅入口签到二维码）：预约的号进入排队",
            _json(_ref("Slip"), "the slip, checked in (committed): it waits in the queue now"),
            400,
            403,
            404,
            409,
            413,
            415,
            503,
            params=(S, inputs.SLIP_TOKEN),
            body="CheckIn",
        )
    },
    "/api/v1/sites/{site}/phone-codes": {
        "post": _operation(
            "sendPhoneCode",
            "发送短信验证码（本中心启用短信验证时；每个客户端地址每小时的次数受限）",
            _json(
                _object({"sent": _bool, "phone": {"type": "string", "pattern": "^1[0-9]{2}[*]{4}[0-9]{4}$"}}),
                "the code was handed to the SMS gateway",
            ),
            400,
            403,
            404,
            413,
            415,
            429,
            503,
            params=(S,),
            body="PhoneCodeRequest",
            ok_status=202,
        )
    },
    "/api/v1/sites/{site}/slips/{token}/stream": {
        "get": _operation(
            "slipStream",
            "凭条实时推送（SSE）：该号每次变化（前移、叫号、办结、评价）推送一次",
            _stream(live.SLIP_EVENTS),
            400,
            404,
            params=(S, inputs.SLIP_TOKEN),
        )
    },
    "/api/v1/sites/{site}/slips/{token}/rating": _rating(
        "rateSlip", "好差评（凭条）：办结后评价一次；不满意、非常不满意可选原因并留言", inputs.SLIP_TOKEN, "SlipRating"
    ),
    "/api/v1/sites/{site}/windows/{window}/visit": {
        "get": _operation(
            "getWindowVisit",
            "窗口评价二维码：窗口、在岗人员、刚办结可评价的办事",
            _json(
                _ref("WindowVisit"),
                "the window",
                links={
                    "rate": _link(
                        "rateWindow",
                        "rate the visit just finished",
                        {"site": SAME_SITE, "window": "$request.path.window"},
                        {"score": 5},
                    )
                },
            ),
            404,
            params=(S, inputs.WINDOW),
        )
    },
    "/api/v1/sites/{site}/windows/{window}/rating": _rating(
        "rateWindow", "好差评（窗口二维码）：该窗口刚办结的办事，或凭条上号码的那次", inputs.WINDOW, "WindowRating"
    ),
    "/api/v1/sites/{site}/stream": {
        "get": _operation("boardStream", "大屏实时推送（SSE）", _stream(live.BOARD_EVENTS), 404, params=(S,))
    },
    "/api/v1/sites/{site}/summary": {
        "get": _operation(
            "getSummary",
            "管理控制台：排队、窗口、未关闭告警、今日指标、全天曲线",
            _json(
                _ref("ManagerSummary"),
                "summary",
                links=_acknowledge_latest(SAME_SITE),
            ),
            *TOKEN_ERRORS,
            404,
            params=(S,),
            security=MANAGER,
            tag="manager",
        )
    },
    "/api/v1/sites/{site}/windows": {
        "get": _operation(
            "listWindows",
            "各窗口状态、工作人员、今日办结数、今日空岗分钟",
            _json(_object({"site": _str, "windows": _array(_ref("Window"))}), "windows"),
            *TOKEN_ERRORS,
            404,
            params=(S,),
            security=MANAGER,
            tag="manager",
        )
    },
    "/api/v1/sites/{site}/alerts": {
        "get": _operation(
            "listSiteAlerts",
            "本站点告警（state=open 未关闭；all 另含今天已解除的）",
            _json(
                _object({"site": _str, "alerts": _array(_ref("Alert"))}),
                "alerts, latest first",
                links=_acknowledge_latest(SAME_SITE),
            ),
            400,
            *TOKEN_ERRORS,
            404,
            503,
            params=(S, inputs.ALERT_STATE),
            security=MANAGER,
            tag="manager",
        )
    },
    "/api/v1/sites/{site}/alerts/{alert}/acknowledge": {
        "post": _operation(
            "acknowledgeAlert",
            "确认告警（可附处理说明；差评告警必须填写回访情况，否则 422 note_required）",
            _json(
                _object({"alert": _null(_ref("Alert"))}),
                "the alert as acknowledged (committed); resolved at once where acknowledging closes its kind",
            ),
            *MANAGER_ACTION_ERRORS,
            params=(S, inputs.ALERT),
            body="Acknowledgement",
            security=MANAGER,
            tag="manager",
        )
    },
    "/api/v1/sites/{site}/manage/stream": {
        "get": _operation(
            "manageStream",
            "管理控制台实时推送（SSE）",
            _stream(live.MANAGE_EVENTS),
            *TOKEN_ERRORS,
            404,
            params=(S,),
            security=MANAGER,
            tag="manager",
        )
    },
    "/api/v1/sites/{site}/cases": {
        "get": _operation(
            "listSiteCases",
            "本站点在办办件，按到期日排列（mark：未到期、今日到期、已超期）",
            _json(
                _object({"site": _str, "now_ms": _int, "cases": _array(_ref("Case"))}),
                "open cases, soonest due first",
                links={
                    "event": _link(
                        "caseEvent", "the soonest due case", {"site": SAME_SITE, "case": "$response.body#/cases/0/no"}
                    )
                },
            ),
            *TOKEN_ERRORS,
            404,
            params=(S,),
            security=MANAGER,
            tag="manager",
        )
    },
    "/api/v1/sites/{site}/cases/{case}/events": {
        "post": _operation(
            "caseEvent",
            "办件操作：进展、转交、办结、退回、撤回（记录操作人与时间）",
            _json(_object({"case": _null(_ref("Case"))}), "the case as changed (committed)"),
            *MANAGER_ACTION_ERRORS,
            params=(S, inputs.CASE),
            body="CaseEventRequest",
            security=MANAGER,
            tag="manager",
        )
    },
    "/api/v1/cases": {
        "get": _operation(
            "listCases",
            "全部站点的在办办件（state=overdue 只列已超期的，默认；open 全部在办）",
            _json(_object({"now_ms": _int, "cases": _array(_ref("Case"))}), "cases, soonest due first"),
            400,
            *TOKEN_ERRORS,
            params=(inputs.CASE_STATE,),
            security=SUPERVISOR,
            tag="supervisor",
        )
    },
    "/api/v1/alerts": {
        "get": _operation(
            "listAlerts",
            "全部站点的告警（state=open 未关闭；all 另含今天已解除的）",
            _json(
                _object({"alerts": _array(_ref("Alert"))}),
                "alerts, latest first",
                links=_acknowledge_latest("$response.body#/alerts/0/site"),
            ),
            400,
            *TOKEN_ERRORS,
            503,
            params=(inputs.ALERT_STATE,),
            security=SUPERVISOR,
            tag="supervisor",
        )
    },
    "/api/v1/supervise": {
        "get": _operation(
            "getSupervision",
            "电子监察：各站点概况、今日告警、离线设备、空岗时长排名",
            _json(
                _ref("Supervision"),
                "supervision",
                links=_acknowledge_latest("$response.body#/alerts/0/site"),
            ),
            *TOKEN_ERRORS,
            503,
            security=SUPERVISOR,
            tag="supervisor",
        )
    },
    "/api/v1/supervise/stream": {
        "get": _operation(
            "superviseStream",
            "电子监察实时推送（SSE，全部站点）",
            _stream(live.SUPERVISE_EVENTS),
            *TOKEN_ERRORS,
            security=SUPERVISOR,
            tag="supervisor",
        )
    },
}

# Headers some errors carry.
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"required": True, "schema": _str, "description": 'Bearer realm="hallwatch"'}},
    405: {"Allow": {"required": True, "schema": _str, "description": "the methods the path allows"}},
    429: {
        "Retry-After": {
            "required": False,
            "schema": _str,
            "description": "seconds (address_limit, too_many_wrong_tokens)",
        }
    },
}


def _error_response(status: int, codes: tuple[str, ...]) -> dict:
    schema = {
        "allOf": [_ref("Error"), {"properties": {"error": _enum(codes), "status": {"const": status}}}],
    }
    return _json(schema, f"{status}: {', '.join(codes)}", headers=ERROR_HEADERS.get(status))


def openapi_document() -> dict:
    return deepcopy(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "hallwatch API",
                "version": "1",
                "description": "服务大厅排队叫号与电子监察的 JSON 接口。错误一律以 JSON 返回："
                '{"error": 代码, "message": 说明, "status": HTTP 状态}。',
            },
            "servers": [{"url": "/"}],
            "paths": PATHS,
            "components": {
                "schemas": SCHEMAS,
                "responses": {f"E{status}": _error_response(status, codes) for status, codes in ERROR_CODES.items()},
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "站点管理令牌（该站点）或监察令牌（全部站点）",
                    },
                    "managerCookie": {
                        "type": "apiKey",
                        "in": "cookie",
                        "name": "hw_manage_{site}",
                        "description": "set by /manage/{site}?token=… or its login form",
                    },
                    "supervisorCookie": {
                        "type": "apiKey",
                        "in": "cookie",
                        "name": "hw_supervise",
                        "description": "set by /supervise?token=… or its login form",
                    },
                },
            },
        }
    )
