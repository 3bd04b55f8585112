"""The JSON API's OpenAPI 3 description, served at ``/api/v1/openapi.json``.

Written by hand next to the routes (``api.ROUTES``); a test checks that every route under
``/api/v1`` is described here with the same methods, and nothing more.
"""

from __future__ import annotations

from copy import deepcopy

from ..core.model import VACANCY, Staffing

ERROR_CODES = {
    400: "bad_json, missing_field, bad_field, bad_parameter, bad_ticket_number",
    401: "missing_token",
    403: "bad_token, access_not_configured, phone_tickets_disabled",
    404: "unknown_site, unknown_service, unknown_ticket, unknown_alert, not_found (no such route)",
    405: "method_not_allowed",
    409: "service_closed, already_acknowledged",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "note_required",
    429: "phone_limit, address_limit (with Retry-After)",
    500: "internal_error",
    503: "engine_unavailable, store_refused",
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


SITE = {
    "name": "site",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
    "description": "站点标识，如 demo",
}
MANAGER: list[dict[str, list[str]]] = [{"bearer": []}, {"managerCookie": []}, {"supervisorCookie": []}]
SUPERVISOR: list[dict[str, list[str]]] = [{"bearer": []}, {"supervisorCookie": []}]
SSE = {
    "description": "Server-Sent Events (text/event-stream): `hello` first, then the events named in the "
    "description; a comment line every 15 s keeps the connection open.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


def _get(
    summary: str,
    ok: dict,
    *errors: int,
    params: list | None = None,
    security=None,
    tag: str = "public",
    description: str = "",
) -> dict:
    op = {"summary": summary, "tags": [tag], "parameters": params or [], "responses": {"200": ok, **_errors(*errors)}}
    if description:
        op["description"] = description
    op["security"] = security if security is not None else []
    return {"get": op}


PATHS = {
    "/api/v1/openapi.json": _get("本接口的 OpenAPI 描述", _json({"type": "object"}, "OpenAPI 3 document")),
    "/api/v1/vocabulary": _get(
        "产品词表：每个记录值的中文名称（告警类型、状态、办理结果、暂停原因、设备类型、空岗类别……）",
        _json(
            {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}}},
            "table name -> value -> 中文",
        ),
    ),
    "/api/v1/sites": _get(
        "站点列表",
        _json(
            {"type": "object", "properties": {"sites": {"type": "array", "items": _ref("SiteBrief")}}},
            "every site of this engine",
        ),
    ),
    "/api/v1/sites/{site}": _get(
        "站点信息（名称、工作时间、窗口）", _json(_ref("Site"), "the site"), 404, params=[SITE]
    ),
    "/api/v1/sites/{site}/services": _get(
        "服务事项目录及办事指南",
        _json(
            {
                "type": "object",
                "properties": {"site": {"type": "string"}, "services": {"type": "array", "items": _ref("Service")}},
            },
            "the catalogue",
        ),
        404,
        params=[SITE],
    ),
    "/api/v1/sites/{site}/services/{service}": _get(
        "一个服务事项及其办事指南",
        _json(_ref("Service"), "the service"),
        404,
        params=[SITE, {"name": "service", "in": "path", "required": True, "schema": {"type": "string"}}],
    ),
    "/api/v1/sites/{site}/queue": _get(
        "各业务排队情况（与 MQTT queue/state 相同）", _json(_ref("QueueState"), "queue"), 404, params=[SITE]
    ),
    "/api/v1/sites/{site}/board": _get(
        "叫号大屏的初始数据：最近叫号、排队、引擎时间", _json({"type": "object"}, "board snapshot"), 404, params=[SITE]
    ),
    "/api/v1/sites/{site}/tickets": {
        "post": {
            "summary": "手机取号",
            "tags": ["public"],
            "security": [],
            "parameters": [SITE],
            "description": "每个手机号每天、每个客户端地址每小时的取号次数受站点 [web] 配置限制"
            "（phone_tickets_per_day、address_tickets_per_hour）。",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PhoneTicketRequest")}}},
            "responses": {
                "201": _json(
                    {"type": "object", "properties": {"ticket": _ref("IssuedTicket")}},
                    "the ticket, committed; Location names its status URL",
                ),
                **_errors(400, 403, 404, 409, 413, 415, 429, 503),
            },
        }
    },
    "/api/v1/sites/{site}/tickets/{ticket}": _get(
        "查询号码：状态、前面人数、预计等候",
        _json(_ref("TicketPosition"), "the ticket today"),
        400,
        404,
        params=[
            SITE,
            {
                "name": "ticket",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "号码，如 A012",
            },
        ],
    ),
    "/api/v1/sites/{site}/stream": _get("大屏实时推送（SSE）：call、queue", SSE, 404, params=[SITE]),
    "/api/v1/sites/{site}/summary": _get(
        "管理控制台：排队、窗口、未关闭告警、今日指标、全天曲线",
        _json(_ref("ManagerSummary"), "summary"),
        401,
        403,
        404,
        params=[SITE],
        security=MANAGER,
        tag="manager",
    ),
    "/api/v1/sites/{site}/windows": _get(
        "各窗口状态、工作人员、今日办结数、今日空岗分钟",
        _json(
            {
                "type": "object",
                "properties": {"site": {"type": "string"}, "windows": {"type": "array", "items": _ref("WindowState")}},
            },
            "windows",
        ),
        401,
        403,
        404,
        params=[SITE],
        security=MANAGER,
        tag="manager",
    ),
    "/api/v1/sites/{site}/alerts": _get(
        "本站点告警（state=open 未关闭；all 另含今天已解除的）",
        _json(
            {
                "type": "object",
                "properties": {"site": {"type": "string"}, "alerts": {"type": "array", "items": _ref("Alert")}},
            },
            "alerts",
        ),
        400,
        401,
        403,
        404,
        503,
        params=[
            SITE,
            {"name": "state", "in": "query", "required": False, "schema": {"type": "string", "enum": ["open", "all"]}},
        ],
        security=MANAGER,
        tag="manager",
    ),
    "/api/v1/sites/{site}/alerts/{alert}/acknowledge": {
        "post": {
            "summary": "确认告警（可附处理说明；差评告警必须填写回访情况）",
            "tags": ["manager"],
            "security": MANAGER,
            "parameters": [SITE, {"name": "alert", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Acknowledgement")}}},
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"alert": _ref("Alert")}}, "the alert as acknowledged (committed)"
                ),
                **_errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
            },
        }
    },
    "/api/v1/sites/{site}/manage/stream": _get(
        "管理控制台实时推送（SSE）：call、queue、window、alert、device",
        SSE,
        401,
        403,
        404,
        params=[SITE],
        security=MANAGER,
        tag="manager",
    ),
    "/api/v1/alerts": _get(
        "全部站点的告警（state=open 未关闭；all 另含今天已解除的）",
        _json({"type": "object", "properties": {"alerts": {"type": "array", "items": _ref("Alert")}}}, "alerts"),
        400,
        401,
        403,
        503,
        params=[
            {"name": "state", "in": "query", "required": False, "schema": {"type": "string", "enum": ["open", "all"]}}
        ],
        security=SUPERVISOR,
        tag="supervisor",
    ),
    "/api/v1/supervise": _get(
        "电子监察：各站点概况、今日告警、离线设备、空岗时长排名",
        _json(_ref("Supervision"), "supervision"),
        401,
        403,
        503,
        security=SUPERVISOR,
        tag="supervisor",
    ),
    "/api/v1/supervise/stream": _get(
        "电子监察实时推送（SSE）：queue、window、alert、device（全部站点）",
        SSE,
        401,
        403,
        security=SUPERVISOR,
        tag="supervisor",
    ),
}

_str = {"type": "string"}
_int = {"type": "integer"}
_num = {"type": "number"}
_time = {"type": "string", "format": "date-time", "nullable": True}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error", "message", "status"],
        "properties": {
            "error": {"type": "string", "description": "machine-readable code"},
            "message": {"type": "string", "description": "说明（中文）"},
            "status": _int,
            "field": {"type": "string", "description": "the request field at fault, if any"},
        },
    },
    "Vacancy": {
        "type": "object",
        "description": "空岗 minutes today by category (not_opened, unstaffed, unverified) and their total",
        "properties": {**{c.value: _num for c in VACANCY}, "total": _num},
    },
    "SiteBrief": {
        "type": "object",
        "properties": {
            "id": _str,
            "name": _str,
            "kind": _str,
            "timezone": _str,
            "hours": {"type": "array", "items": _str},
            "open": {"type": "boolean"},
            "now": _time,
        },
    },
    "Site": {
        "allOf": [
            _ref("SiteBrief"),
            {
                "type": "object",
                "properties": {
                    "windows": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"id": _str, "name": _str, "unit": _str, "role": _str},
                        },
                    }
                },
            },
        ]
    },
    "Service": {
        "type": "object",
        "properties": {
            "code": _str,
            "name": _str,
            "prefix": _str,
            "category": _str,
            "theme": {"type": "boolean"},
            "includes": {"type": "array", "items": _str},
            "expected_service_min": _num,
            "target_wait_min": _num,
            "windows": {"type": "array", "items": _str},
            "guide": {
                "type": "object",
                "description": "办事指南",
                "properties": {
                    "basis": _str,
                    "conditions": _str,
                    "materials": {"type": "array", "items": _str},
                    "time_limit": _str,
                    "fee": _str,
                    "item_type": _str,
                },
            },
        },
    },
    "QueueState": {
        "type": "object",
        "properties": {
            "v": _int,
            "at": _time,
            "waiting": _int,
            "services": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "service": _str,
                        "name": _str,
                        "prefix": _str,
                        "waiting": _int,
                        "priority_waiting": _int,
                        "oldest_wait_s": _num,
                        "eta_min": _int,
                        "open_windows": _int,
                    },
                },
            },
        },
    },
    "PhoneTicketRequest": {
        "type": "object",
        "required": ["service", "phone"],
        "properties": {
            "service": {"type": "string", "description": "服务事项 code"},
            "phone": {"type": "string", "pattern": "^1[3-9][0-9]{9}$"},
            "priority": {"type": "string", "enum": ["elderly", "disabled", "pregnant", "veteran", "other"]},
        },
    },
    "IssuedTicket": {
        "type": "object",
        "properties": {
            "no": _str,
            "site": _str,
            "service": _str,
            "service_name": _str,
            "issued_at": _time,
            "ahead": _int,
            "eta_min": _int,
            "phone": {"type": "string", "description": "masked, e.g. 138****0000"},
            "status_url": _str,
        },
    },
    "TicketPosition": {
        "type": "object",
        "properties": {
            "no": _str,
            "site": _str,
            "service": _str,
            "service_name": _str,
            "status": {"type": "string", "enum": ["waiting", "called", "serving", "done", "no_show", "expired"]},
            "status_text": _str,
            "priority": {"type": "boolean"},
            "issued_at": _time,
            "ahead": _int,
            "eta_min": _int,
            "window": {"type": "string", "nullable": True},
            "window_name": {"type": "string", "nullable": True},
            "called_at": _time,
        },
    },
    "WindowState": {
        "type": "object",
        "description": "the MQTT window state, plus unit, whether a camera watches it (camera: without one its "
        "staffing is never verified and it never raises window_unstaffed) and today's 空岗 minutes by category "
        "(vacant_min)",
        "properties": {
            "window": _str,
            "window_name": _str,
            "state": {"type": "string", "enum": ["closed", "idle", "called", "serving", "paused"]},
            "staffing": {"type": "string", "enum": [s.value for s in Staffing]},
            "staff": {"type": "string", "nullable": True},
            "staff_name": {"type": "string", "nullable": True},
            "ticket": {"type": "string", "nullable": True},
            "pause_reason": {"type": "string", "nullable": True},
            "paused_since": _time,
            "served_today": _int,
            "present": {"type": "boolean", "nullable": True},
            "unit": _str,
            "camera": {"type": "boolean"},
            "vacant_min": _ref("Vacancy"),
        },
    },
    "Alert": {
        "type": "object",
        "description": "the MQTT alert object, plus site_name, window_name, subject_name and due_day (a "
        "follow-up's last day: due is its end)",
        "properties": {
            "id": _str,
            "kind": _str,
            "severity": _str,
            "state": {"type": "string", "enum": ["firing", "acknowledged", "resolved"]},
            "site": _str,
            "site_name": _str,
            "window": {"type": "string", "nullable": True},
            "window_name": {"type": "string", "nullable": True},
            "device": {"type": "string", "nullable": True},
            "staff": {"type": "string", "nullable": True},
            "staff_name": {"type": "string", "nullable": True},
            "since": _time,
            "until": _time,
            "duration_s": {"type": "number", "nullable": True},
            "acknowledged_at": _time,
            "acknowledged_by": {"type": "string", "nullable": True},
            "note": {"type": "string", "nullable": True},
            "due": _time,
            "due_day": {"type": "string", "format": "date", "nullable": True},
            "overdue": {"type": "boolean"},
            "detail": {"type": "object"},
        },
    },
    "Acknowledgement": {
        "type": "object",
        "properties": {
            "note": {"type": "string", "maxLength": 500, "description": "处理说明"},
            "by": {"type": "string", "maxLength": 32, "description": "确认人姓名"},
        },
    },
    "Figures": {
        "type": "object",
        "properties": {
            "day": _str,
            "issued": _int,
            "served": _int,
            "no_shows": _int,
            "waiting": _int,
            "in_service": _int,
            "phone_tickets": _int,
            "outcomes": {"type": "object"},
            "wait_avg_min": {"type": "number", "nullable": True},
            "wait_p90_min": {"type": "number", "nullable": True},
            "ratings": {
                "type": "object",
                "properties": {
                    "count": _int,
                    "average": {"type": "number", "nullable": True},
                    "scores": {"type": "object"},
                    "bad": _int,
                    "satisfied_pct": {"type": "number", "nullable": True},
                },
            },
        },
    },
    "ManagerSummary": {
        "type": "object",
        "properties": {
            "site": _ref("Site"),
            "now_ms": _int,
            "role": {"type": "string", "enum": ["manager", "supervisor"]},
            "queue": _ref("QueueState"),
            "windows": {"type": "array", "items": _ref("WindowState")},
            "alerts": {"type": "array", "items": _ref("Alert")},
            "figures": _ref("Figures"),
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "at": _time,
                        "waiting": _int,
                        "wait_avg_min": {"type": "number", "nullable": True},
                        "called": _int,
                    },
                },
            },
            "calls": {"type": "array", "items": {"type": "object"}},
            "devices_offline": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Supervision": {
        "type": "object",
        "properties": {
            "now_ms": _int,
            "sites": {"type": "array", "items": {"type": "object"}},
            "alerts": {"type": "array", "items": _ref("Alert")},
            "ranking": {
                "type": "object",
                "properties": {
                    "windows": {"type": "array", "items": {"type": "object"}},
                    "staff": {"type": "array", "items": {"type": "object"}},
                },
            },
            "devices_offline": {"type": "array", "items": {"type": "object"}},
        },
    },
}


def openapi_document() -> dict:
    responses = {f"E{status}": _json(_ref("Error"), f"{status}: {codes}") for status, codes in ERROR_CODES.items()}
    return deepcopy(
        {
            "openapi": "3.0.3",
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
                "responses": responses,
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
