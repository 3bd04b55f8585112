"""The county standard's checklist (督导考核) of one site, from its declared facts.

The standard is 内放办〔2022〕9号《关于推进基层政务服务体系标准化规范化便利化建设的指导意见》
(its text: docs/standard/neifangban-2022-9.txt). Each check asks what the standard's own words
ask, of the kinds of site they name, and every line cites those words. The standard is about
township centres (乡镇中心) and village stations (村（社区）便民服务站): it sets nothing for the
county centre, and some things for township centres only (a 无差别综合受理 window, a 办不成事
window, 24-hour self-service, the supervision cameras). Each line is ``pass``, ``fail``,
``unknown`` (a fact the site has not declared in ``[facts]``) or ``n/a`` (the standard does not
ask it of this kind of site).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.kinds import DeviceKind
from ..core.vocabulary import AUDIT_STATUS, DEVICE_KIND, GUIDE_FIELD, SITE_KIND

if TYPE_CHECKING:
    from ..config import Site

PASS, FAIL, UNKNOWN, NA = "pass", "fail", "unknown", "n/a"
STATUS_LABELS = AUDIT_STATUS  # (keyed by PASS, FAIL, UNKNOWN, NA)

AREA_MIN = {"township": 1000.0, "village": 30.0}
AGENT_POINTS_MIN = {"township": 5, "village": 3}
RESIDENTS_PER_STAFF = 10_000
TOWNSHIP_STAFF_MIN = 3
VILLAGE_STAFF_MIN = 1
TERMINAL, CAMERA, PAD = (DEVICE_KIND[k.value] for k in (DeviceKind.SELFSERVICE, DeviceKind.CAMERA, DeviceKind.PAD))


@dataclass(frozen=True, slots=True)
class Citation:
    """Where the standard says it: its section and its own words, verbatim."""

    section: str
    words: str

    def __str__(self) -> str:
        return f"内放办〔2022〕9号 {self.section}：「{self.words}」"


@dataclass(frozen=True, slots=True)
class AuditLine:
    site: str
    check: str  # a Rule's check
    status: str  # pass, fail, unknown, n/a
    item: str  # the standard's item, in Chinese
    detail: str  # what the site declares, against what is required
    basis: Citation  # where the standard says it


Verdict = tuple[str, str]  # status, detail


def _area(site: Site) -> Verdict:
    minimum = AREA_MIN[site.kind]
    area = site.facts.area_m2
    if area is None:
        return UNKNOWN, f"未申报面积（[facts] area_m2），要求不低于 {minimum:g} 平方米"
    return (PASS if area >= minimum else FAIL), f"{area:g} 平方米，要求不低于 {minimum:g} 平方米"


def _staff(site: Site) -> Verdict:
    facts = site.facts
    count = facts.staff_count if facts.staff_count is not None else len(site.staff)
    source = "申报" if facts.staff_count is not None else "按登记的工作人员计"
    if site.kind == "village":
        status = PASS if count >= VILLAGE_STAFF_MIN else FAIL
        return status, f"{count} 名（{source}），要求至少 {VILLAGE_STAFF_MIN} 名帮办代办员"
    if facts.residents is None:
        if count < TOWNSHIP_STAFF_MIN:
            return FAIL, f"{count} 名（{source}），少于最低 {TOWNSHIP_STAFF_MIN} 名"
        return UNKNOWN, f"{count} 名（{source}）；未申报服务人口（[facts] residents），无法核定每万人1名"
    required = max(TOWNSHIP_STAFF_MIN, math.ceil(facts.residents / RESIDENTS_PER_STAFF))
    status = PASS if count >= required else FAIL
    return status, f"{count} 名（{source}），服务人口 {facts.residents} 人，要求至少 {required} 名"


def _agent_points(site: Site) -> Verdict:
    minimum = AGENT_POINTS_MIN[site.kind]
    points = site.facts.agent_points
    if points is None:
        return UNKNOWN, f"未申报代办点数（[facts] agent_points），要求不少于 {minimum} 个"
    return (PASS if points >= minimum else FAIL), f"{points} 个，要求不少于 {minimum} 个"


def _window_role(role: str) -> Callable[[Site], Verdict]:
    def judge(site: Site) -> Verdict:
        found = [w.name for w in site.windows if w.role.value == role]
        return (PASS, "、".join(found)) if found else (FAIL, f'没有 role = "{role}" 的窗口')

    return judge


def _devices(site: Site, kind: DeviceKind) -> list[str]:
    return [d.id for d in site.devices if d.kind is kind]


def _selfservice(site: Site) -> Verdict:
    terminals = _devices(site, DeviceKind.SELFSERVICE)
    if terminals:
        return PASS, f"{len(terminals)} 台{TERMINAL}（{'、'.join(terminals)}）"
    return FAIL, f'没有{TERMINAL}（kind = "selfservice" 的设备）'


def _cameras(site: Site) -> Verdict:
    # The standard asks the centre to run its supervision system and cameras, not for a camera
    # at each window; a window without one is named, since its staffing cannot be verified.
    cameras = _devices(site, DeviceKind.CAMERA)
    if not cameras:
        return FAIL, f"没有{CAMERA}"
    watched = {d.window for d in site.devices if d.kind is DeviceKind.CAMERA}
    unwatched = [w.name for w in site.windows if w.id not in watched]
    note = f"；{'、'.join(unwatched)}没有，在岗无法核实" if unwatched else "，每个窗口都有"
    return PASS, f"{len(cameras)} 个{CAMERA}{note}"


def _rating(site: Site) -> Verdict:
    # The standard asks for a 好差评 QR code at every window; a rating pad does that job too.
    with_pad = {d.window for d in site.devices if d.kind is DeviceKind.PAD}
    without = "、".join(w.name for w in site.windows if w.id not in with_pad)
    if not without:
        return PASS, f"{len(site.windows)} 个窗口都有{PAD}"
    codes = site.facts.rating_qr_codes
    if codes is None:
        return UNKNOWN, f"{without}没有{PAD}；未申报各窗口是否摆放好差评二维码（[facts] rating_qr_codes）"
    if codes:
        return PASS, f"{without}没有{PAD}，已申报各窗口摆放好差评二维码"
    return FAIL, f"{without}既没有{PAD}，也未摆放好差评二维码"


def _guides(site: Site) -> Verdict:
    gaps = []
    for service in site.services:
        missing = service.guide.missing_fields()
        if missing:
            gaps.append(f"{service.name}缺{'、'.join(GUIDE_FIELD[m] for m in missing)}")
    if gaps:
        return FAIL, "；".join(gaps)
    return PASS, f"{len(site.services)} 个事项的办事指南齐全"


@dataclass(frozen=True, slots=True)
class Rule:
    check: str
    item: str  # the standard's item, in Chinese
    asked_of: frozenset[str]  # the kinds of site the standard's words name
    basis: Citation
    judge: Callable[[Site], Verdict]  # for a site of those kinds


BOTH, TOWNSHIP = frozenset({"township", "village"}), frozenset({"township"})
RULES = (
    Rule(
        "area",
        "场所面积",
        BOTH,
        Citation("二（一）1", "原则上乡镇中心面积不得低于 1000 平方米，村（社区）不得低于 30 平方米"),
        _area,
    ),
    Rule(
        "staff",
        "工作人员",
        BOTH,
        Citation("二（一）3", "按照乡镇每万人至少配备1名中心正式工作人员（最少3名），村级1名的要求人员配备到位"),
        _staff,
    ),
    Rule(
        "agent_points",
        "便民服务代办点",
        BOTH,
        Citation("二（三）2", "每个乡镇设置乡级便民服务代办点不少于 5 个，村级便民服务代办点不得少于 3 个"),
        _agent_points,
    ),
    Rule(
        "comprehensive_window",
        "无差别综合受理窗口",
        TOWNSHIP,
        Citation("二（二）3", "将乡镇中心分设的办事窗口进行整合，设置“无差别综合受理窗口”"),
        _window_role("comprehensive"),
    ),
    Rule(
        "fallback_window",
        "“办不成事”反映窗口",
        TOWNSHIP,
        Citation("二（一）2、二（四）1", "乡镇中心要设置“办不成事”反映窗口，提供兜底服务"),
        _window_role("fallback"),
    ),
    Rule(
        "selfservice_24h",
        "24小时自助服务",
        TOWNSHIP,
        Citation("二（三）2", "在乡镇中心推广 24 小时自助服务，推动集成式自助终端向村（社区）便民服务站延伸"),
        _selfservice,
    ),
    Rule(
        "cameras",
        "电子监察摄像头",
        TOWNSHIP,
        Citation(
            "二（四）2",
            "各乡镇中心是电子监察系统的具体使用者，负责本乡镇中心电子监察系统网络设备、摄像头、网线的日常维护管理",
        ),
        _cameras,
    ),
    Rule(
        "rating",
        "每个窗口有好差评评价",
        BOTH,
        Citation(
            "二（四）1",
            "在乡村两级中心全面开展“好差评”工作，大厅要摆放“好差评”评价和基层站所评议二维码、海报或易拉宝，"
            "各服务窗口要张贴或者摆放“好差评”评价和基层站所评议二维码",
        ),
        _rating,
    ),
    Rule(
        "service_guides",
        "办事指南完整",
        BOTH,
        Citation(
            "二（二）2",
            "梳理出的政务服务事项要逐项编制办事指南，明确事项名称、办事依据、办理条件、申请材料、办理时限、"
            "收费情况、办件类型等基本内容",
        ),
        _guides,
    ),
)


# What the standard asks that only the running hall shows (the live audit, the county report).
VACANCY_BASIS = Citation("二（一）3", "确保工作日窗口不空岗")
CAMERAS_BASIS = next(rule.basis for rule in RULES if rule.check == "cameras")
FOLLOW_UP_BASIS = Citation("二（四）1", "畅通投诉渠道，确保问题不出中心")


def audit_site(site: Site) -> list[AuditLine]:
    lines = []
    for rule in RULES:
        if site.kind in rule.asked_of:
            status, detail = rule.judge(site)
        else:
            status, detail = NA, f"标准未对{SITE_KIND[site.kind]}作此要求"
        lines.append(AuditLine(site.id, rule.check, status, rule.item, detail, rule.basis))
    return lines


def format_audit(site: Site, lines: list[AuditLine], *, lang: str = "zh", heading: str | None = None) -> str:
    """The checklist as text: a heading (default: the site's name and kind), per check its line
    and the standard's words, and a count. Chinese (达标/未达标/未知/不适用, each check by its
    item's name), or ``lang="en"``: the status and the check's id in English, as scripts read it."""
    out = [f"{site.id}: {heading or f'{site.name}（{SITE_KIND[site.kind]}）'}"]
    counts = {status: sum(1 for line in lines if line.status == status) for status in STATUS_LABELS}
    if lang == "en":
        width = max((len(line.check) for line in lines), default=0)
        for line in lines:
            out.append(f"{site.id}: {line.status:<7} {line.check:<{width}}  {line.item}：{line.detail}")
            out.append(f"{site.id}: {'':<7} {'':<{width}}  依据 {line.basis}")
        out.append(f"{site.id}: " + ", ".join(f"{counts[s]} {s}" for s in STATUS_LABELS))
        return "\n".join(out)
    for line in lines:
        out.append(f"{site.id}: {STATUS_LABELS[line.status]:\u3000<3} {line.item}：{line.detail}")
        out.append(f"{site.id}: {'':\u3000<3} 依据 {line.basis}")
    out.append(f"{site.id}: " + "，".join(f"{label} {counts[s]} 项" for s, label in STATUS_LABELS.items()))
    return "\n".join(out)
