"""What the JSON API accepts, declared once: each request body a msgspec ``Struct``, each path
and query parameter a ``Param``. The handlers decode and check requests with these
(``decode_body``, ``Param.accepts``) and ``openapi.py`` describes these very objects, so the
document cannot promise what a handler refuses, nor leave out what it requires.

Patterns are checked with ``re.fullmatch``: JSON Schema (ECMA-262) anchors ``$`` at the very
end of the string, where Python's ``$`` also matches before a final newline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from ..config import ID_PATTERN
from ..core import events as ev
from .errors import ApiError

MAX_BODY = 16 * 1024  # above the largest body a request schema admits (tests/test_api_contract.py)


# -- parameters --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query"]
    description: str
    pattern: str | None = None
    enum: tuple[str, ...] = ()
    default: str | None = None

    def schema(self) -> dict:
        schema: dict = {"type": "string"}
        if self.pattern:
            schema["pattern"] = self.pattern
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.default is not None:
            schema["default"] = self.default
        return schema

    def openapi(self) -> dict:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.where == "path",
            "description": self.description,
            "schema": self.schema(),
        }

    def accepts(self, value: str) -> bool:
        if self.enum and value not in self.enum:
            return False
        return self.pattern is None or re.fullmatch(self.pattern, value) is not None


# Sites and services are the site configuration's identifiers; one the engine does not know is
# answered 404 (unknown_site, unknown_service), whatever its spelling.
SITE = Param("site", "path", "站点标识（/api/v1/sites 中的 id），如 demo", pattern=ID_PATTERN)
SERVICE = Param("service", "path", "服务事项代码（该站点 /services 中的 code），如 shebao", pattern=ID_PATTERN)
TICKET = Param("ticket", "path", "号码（字母前缀加数字，不分大小写），如 A012", pattern=r"^[A-Za-z]{1,2}[0-9]{1,6}$")
ALERT = Param("alert", "path", "告警标识（告警列表中的 id），如 demo-000001", pattern=r"^[a-z0-9][a-z0-9_-]{0,79}$")
WINDOW = Param("window", "path", "窗口标识（站点 /sites/{site} 中 windows 的 id），如 w01", pattern=ID_PATTERN)
# A slip's token (tickettoken.py): its day, its number and a MAC; one the engine did not make
# for this site is answered 404 unknown_ticket, like a ticket that does not exist.
SLIP_TOKEN = Param(
    "token",
    "path",
    "凭条令牌（取号答复中的 token，凭条二维码链接的最后一段），如 20261125-A012-k3v…",
    pattern=r"^[0-9]{8}-[A-Z]{1,2}[0-9]{1,6}-[a-z2-7]{24}$",
)
# A case's token (tickettoken.case_token): its number and a MAC; one the engine did not make for
# this site is answered 404 unknown_case, like a case it does not keep.
CASE_TOKEN = Param(
    "token",
    "path",
    "办件令牌（受理答复中的 case_token，办件凭条二维码链接的最后一段），如 J20261125001-k3v…",
    pattern=r"^J[0-9]{11,14}-[a-z2-7]{24}$",
)
CASE = Param("case", "path", "办件编号（办件列表中的 no），如 J20261125001", pattern=r"^J[0-9]{11,14}$")
CASE_STATE = Param(
    "state", "query", "overdue：已超过到期日的在办办件；open：全部在办办件", enum=("overdue", "open"), default="overdue"
)
ALERT_STATE = Param("state", "query", "open：未关闭的告警；all：另含今天已解除的", enum=("open", "all"), default="open")


# -- bodies ------------------------------------------------------------------------------------------
class PhoneTicketRequest(Struct, forbid_unknown_fields=True):
    """手机取号：服务事项、手机号、可选的优先类别。"""

    service: Annotated[
        str,
        Meta(
            max_length=64,
            pattern=ID_PATTERN,
            description="服务事项代码（该站点 /services 中的 code；站点没有这项业务时答 404 unknown_service）",
            examples=["shebao"],
        ),
    ]
    phone: Annotated[
        str, Meta(max_length=11, pattern=r"^1[3-9][0-9]{9}$", description="手机号（11 位）", examples=["13800000000"])
    ]
    priority: ev.Priority | None = None
    code: (
        Annotated[
            str,
            Meta(
                max_length=8,
                pattern=r"^[0-9]{4,8}$",
                description="短信验证码（本中心启用短信验证时必填：先 POST /phone-codes）",
                examples=["123456"],
            ),
        ]
        | None
    ) = None


class PhoneCodeRequest(Struct, forbid_unknown_fields=True):
    """发送短信验证码（本中心启用短信验证时）。"""

    phone: Annotated[
        str, Meta(max_length=11, pattern=r"^1[3-9][0-9]{9}$", description="手机号（11 位）", examples=["13800000000"])
    ]


class CheckIn(Struct, forbid_unknown_fields=True):
    """到厅签到：大厅入口签到二维码链接中的 k。"""

    key: Annotated[
        str,
        Meta(
            max_length=16,
            pattern=r"^[a-z2-7]{16}$",
            description="大厅入口签到二维码的密钥（链接 /c/{site}?k=… 中的 k）",
            examples=["abcdefghijklmnop"],
        ),
    ]


class Acknowledgement(Struct, forbid_unknown_fields=True):
    """确认告警：处理说明与确认人。差评告警（bad_rating）必须填写处理说明，否则答 422 note_required。"""

    note: Annotated[str, Meta(max_length=500, description="处理说明", examples=["已电话联系，马上回岗"])] | None = None
    by: Annotated[str, Meta(max_length=32, description="确认人姓名", examples=["张科长"])] | None = None


# A number, not an integer type: JSON (and its schema) does not tell 2 from 2.0.
Score = Annotated[
    float, Meta(ge=1, le=5, multiple_of=1, description="5 非常满意、4 满意、3 基本满意、2 不满意、1 非常不满意")
]
Reasons = Annotated[
    list[ev.RatingReason],
    Meta(max_length=10, description="差评原因（仅“不满意”“非常不满意”可选；全国好差评分类，见词表 rating_reason）"),
]
Comment = Annotated[str, Meta(max_length=200, description="意见和建议", examples=["等了很久，窗口没人"])]


class SlipRating(Struct, forbid_unknown_fields=True):
    """好差评：凭条上的这次办事。每次办事只能评价一次（手机或窗口评价器，先评为准）。"""

    score: Score
    reasons: Reasons = []
    comment: Comment = ""


class WindowRating(Struct, forbid_unknown_fields=True):
    """好差评（窗口二维码）：该窗口刚办结的那次办事，或凭条上号码的那次。"""

    score: Score
    reasons: Reasons = []
    comment: Comment = ""
    ticket: (
        Annotated[
            str,
            Meta(
                max_length=8,
                pattern=r"^[A-Za-z]{1,2}[0-9]{1,6}$",
                description="凭条上的号码（不填：该窗口刚办结的那次）",
                examples=["A012"],
            ),
        ]
        | None
    ) = None


class CaseEventRequest(Struct, forbid_unknown_fields=True):
    """办件操作：进展（note，须写进展）、转交（pass_on，须写 to）、办结（complete，须写 result）、
    退回（return，须写原因 note）、撤回（withdraw）。缺少该操作须填写的内容答 422 field_required；
    已办结、退回或撤回的办件答 409 case_closed。"""

    action: Annotated[
        Literal["note", "pass_on", "complete", "return", "withdraw"],
        Meta(description="进展 note、转交 pass_on、办结 complete、退回 return、撤回 withdraw"),
    ]
    note: Annotated[str, Meta(max_length=500, description="进展或原因", examples=["已催办"])] | None = None
    to: Annotated[str, Meta(max_length=100, description="转往的部门或上级", examples=["县自然资源局"])] | None = None
    result: Annotated[str, Meta(max_length=500, description="办理结果", examples=["已登记发证"])] | None = None
    by: Annotated[str, Meta(max_length=32, description="操作人姓名", examples=["张科长"])] | None = None


class CountyAcknowledgement(Acknowledgement, forbid_unknown_fields=True):
    """县级确认告警：送到告警所属乡镇引擎确认，答复之前不算确认。

    ``id`` 命名这一次确认：同一 id 再次提交是重发，引擎照原样答复，不会重复确认。"""

    id: (
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$",
                description="这次确认的标识（缺省由县级服务生成）",
                examples=["county-ack-1f2e3d4c"],
            ),
        ]
        | None
    ) = None


BODIES: tuple[type[Struct], ...] = (
    PhoneTicketRequest,
    PhoneCodeRequest,
    CheckIn,
    Acknowledgement,
    SlipRating,
    WindowRating,
    CaseEventRequest,
)
COUNTY_BODIES: tuple[type[Struct], ...] = (CountyAcknowledgement,)


def body_schemas(ref_template: str, bodies: tuple[type[Struct], ...] = BODIES) -> dict[str, dict]:
    """The JSON Schema of every request body, by name, referring to each other through ``ref_template``."""
    _, components = msgspec.json.schema_components(bodies, ref_template=ref_template)
    return components


def _patterns(body: type[Struct]) -> dict[str, str]:
    """The pattern of each text field of ``body`` that has one (optional fields included)."""
    patterns = {}
    info = msgspec.inspect.type_info(body)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        kinds = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        for kind in kinds:
            if isinstance(kind, msgspec.inspect.Metadata):
                kind = kind.type
            if isinstance(kind, msgspec.inspect.StrType) and kind.pattern is not None:
                patterns[field.name] = kind.pattern
    return patterns


_PATTERNS = {body: _patterns(body) for body in BODIES + COUNTY_BODIES}
_MISSING = re.compile(r"missing required field `(\w+)`")
_UNKNOWN = re.compile(r"unknown field `(.*)`")
_AT_FIELD = re.compile(r"- at `\$\.(\w+)`")
B = TypeVar("B", bound=Struct)


def decode_body(raw: bytes, body: type[B]) -> B:
    """``raw`` as a ``body``, or the ApiError that names the field at fault."""
    try:
        value = msgspec.json.decode(raw, type=body)
    except msgspec.ValidationError as exc:  # (a DecodeError too: caught first)
        raise _refusal(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "bad_json", f"请求体不是有效的 JSON：{exc}", malformed=True) from None
    for name, pattern in _PATTERNS[body].items():
        text = getattr(value, name)
        if text is not None and re.fullmatch(pattern, text) is None:
            raise ApiError(400, "bad_field", f"字段 {name} 须符合 {pattern}", field=name)
    return value


def _refusal(problem: str) -> ApiError:
    if found := _MISSING.search(problem):
        return ApiError(400, "missing_field", f"缺少字段 {found[1]}", field=found[1])
    if found := _UNKNOWN.search(problem):
        return ApiError(400, "bad_field", f"没有这个字段：{found[1]}", field=found[1])
    if found := _AT_FIELD.search(problem):
        return ApiError(400, "bad_field", f"字段 {found[1]} 不符合要求：{problem}", field=found[1])
    return ApiError(400, "bad_json", f"请求体须为 JSON 对象：{problem}", malformed=True)
