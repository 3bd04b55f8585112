"""The county service's OpenAPI 3.1 document (``GET /api/v1/openapi.json`` on ``hallwatch county
--http``): its routes, built with the engine's schema helpers and on the engine's components
(the alert, window, queue and device schemas as on MQTT, the errors, the token schemes), so
that the two documents say the same thing of the same messages."""

from __future__ import annotations

from copy import deepcopy
from typing import get_args

from ..config import SiteKind
from ..core.alerts import AlertKind, AlertState
from ..core.model import Staffing
from ..web import inputs
from ..web.openapi import (
    ALERT_PROPERTIES,
    DEVICE_PROPERTIES,
    REFS,
    SUPERVISOR,
    TOKEN_ERRORS,
    _array,
    _bool,
    _enum,
    _int,
    _json,
    _null,
    _num,
    _object,
    _operation,
    _ref,
    _str,
    _str_or_null,
    _stream,
    _v,
    openapi_document,
)
from ..web.openapi import (
    PATHS as ENGINE_PATHS,
)

API = "/api/v1/county"
STREAM_EVENTS = frozenset({"alert", "window", "queue", "device", "link", "acknowledgement", "figures"})
EVENT_DATA = {
    "hello": "Hello",
    "alert": "CountyAlert",
    "window": "WindowState",
    "queue": "QueueState",
    "device": "CountyDeviceState",
    "link": "CountyLink",
    "acknowledgement": "CountyAcknowledgementRecord",
    "figures": "CountyFiguresReceived",
}
_seconds_or_null = _null(_num)
_VACANT = _ref("Vacancy")


def _ranked(subject: str, extra: dict) -> dict:
    return _object(
        {"site": _str, "site_name": _str, subject: _str, f"{subject}_name": _str_or_null, **extra},
        description="空岗 seconds in all and minutes by category",
    )


def _ranking(with_day: bool, extra: dict) -> dict:
    properties = {
        "windows": _array(_ranked("window", extra)),
        "staff": _array(_ranked("staff", {"seconds": _num, "vacant_min": _VACANT})),
    }
    if with_day:
        properties = {"day": _null({"type": "string", "format": "date"}), **properties}
    return _object(properties)


SCHEMAS: dict[str, dict] = {
    "CountyAlert": _object(
        {**ALERT_PROPERTIES, "site_name": _str, "window_name": _str_or_null},
        description="the MQTT alert, with the names of its hall and window",
    ),
    "CountyHall": _object(
        {
            "id": _str,
            "name": _str,
            "kind": _enum([*get_args(SiteKind), ""]),
            "township": _str_or_null,
            "heard": _bool,
            "open": _null(_bool),
            "waiting": _null(_int),
            "windows": _object({s.value: _int for s in Staffing}, description="windows by staffing"),
            "alerts": _object({"firing": _int, "acknowledged": _int}),
            "devices_offline": _int,
            "missing_alerts": _bool,
            "store_changed_at": _null(_num),
        },
        description="a hall live; kind empty and open null for a hall that publishes without being configured",
    ),
    "CountyDeviceState": _object(
        {"v": _v, **{k: v for k, v in DEVICE_PROPERTIES.items() if k not in ("site_name", "window_name")}},
        description="the MQTT device state, with its site",
    ),
    "CountyDevice": _object({"v": _v, **DEVICE_PROPERTIES}),
    "CountyLink": _object({"township": _str, "up": _bool}, description="a township's bridge link"),
    "CountyFiguresReceived": _object({"site": _str, "day": {"type": "string", "format": "date"}}),
    "CountyAcknowledgementRecord": _object(
        {
            "id": _str,
            "site": _str,
            "alert": _str,
            "by": _str,
            "note": _str,
            "asked_at": _num,
            "state": _enum(("sent", "applied", "refused")),
            "error": _str_or_null,
            "message": _str_or_null,
            "answered_at": _seconds_or_null,
        },
        description="an acknowledgement sent to the engine that owns the alert, and its answer",
    ),
    "CountyOverview": _object(
        {
            "now_ms": _int,
            "sites": _array(_ref("CountyHall")),
            "alerts": _array(_ref("CountyAlert")),
            "ranking": _ranking(False, {"staff_name": _str_or_null, "seconds": _num, "vacant_min": _VACANT}),
            "ranking_figures": _ranking(True, {"seconds": _num, "vacant_min": _VACANT}),
            "devices_offline": _array(_ref("CountyDevice")),
            "links": {"type": "object", "additionalProperties": _bool, "description": "township -> link up"},
        }
    ),
    "CountyAcknowledged": _object(
        {
            "acknowledgement": _ref("CountyAcknowledgementRecord"),
            "alert": _null(_ref("CountyAlert")),
            "pending": _bool,
            "message": _str,
        },
        optional=("pending", "message"),
    ),
}

_SITE = inputs.Param("site", "path", "大厅的站点标识", pattern=inputs.ID_PATTERN)
_FILTERS = (
    inputs.Param("site", "query", "只看这个大厅", pattern=inputs.ID_PATTERN),
    inputs.Param("kind", "query", "只看这类告警", enum=tuple(k.value for k in AlertKind)),
    inputs.Param("state", "query", "只看这个状态", enum=tuple(s.value for s in AlertState)),
)
_ACKNOWLEDGE = _operation(
    "acknowledgeCountyAlert",
    "确认告警：由告警所属的引擎确认并保存（其拒绝照引擎的答复返回）",
    _json(_ref("CountyAcknowledged"), "applied by the engine that owns the alert"),
    *TOKEN_ERRORS,
    404,
    409,
    413,
    415,
    422,
    params=(_SITE, inputs.ALERT),
    security=SUPERVISOR,
    tag="county",
    body="CountyAcknowledgement",
)
_ACKNOWLEDGE["responses"]["202"] = _json(
    _ref("CountyAcknowledged"), "sent, not answered yet (the township's link is down): sent again until answered"
)
PATHS = {
    "/api/v1/openapi.json": ENGINE_PATHS["/api/v1/openapi.json"],
    API: {
        "get": _operation(
            "getCounty",
            "全县各大厅实时情况、今日告警、空岗排名、离线设备",
            _json(_ref("CountyOverview"), "every hall live"),
            *TOKEN_ERRORS,
            security=SUPERVISOR,
            tag="county",
        )
    },
    f"{API}/alerts": {
        "get": _operation(
            "listCountyAlerts",
            "全县告警，可按大厅、类别、状态筛选",
            _json(_object({"alerts": _array(_ref("CountyAlert"))}), "alerts, latest first"),
            *TOKEN_ERRORS,
            404,
            params=_FILTERS,
            security=SUPERVISOR,
            tag="county",
        )
    },
    f"{API}/sites/{{site}}/alerts/{{alert}}/acknowledge": {"post": _ACKNOWLEDGE},
    f"{API}/stream": {
        "get": _operation(
            "countyStream",
            "全县实时推送（SSE）",
            _stream(STREAM_EVENTS, EVENT_DATA),
            *TOKEN_ERRORS,
            security=SUPERVISOR,
            tag="county",
        )
    },
}


def county_openapi_document() -> dict:
    """The engine's document with the county's paths instead of the engine's."""
    document = openapi_document()
    document["info"]["title"] = "hallwatch county API"
    document["info"]["description"] = "全县电子监察的 JSON 接口（hallwatch county）。" + document["info"]["description"]
    document["paths"] = deepcopy(PATHS)
    document["components"]["schemas"].update(deepcopy(SCHEMAS))
    document["components"]["schemas"].update(inputs.body_schemas(REFS, inputs.COUNTY_BODIES))
    return document
