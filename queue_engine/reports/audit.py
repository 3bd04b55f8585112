"""The county standard's checklist (督导考核) of one site, from its declared facts.

The standard is 内放办〔2022〕9号《关于推进基层政务服务体系标准化规范化便利化建设的指导意见》.
Each line is ``pass``, ``fail``, ``unknown`` (a fact the site has not declared in ``[facts]``)
or ``n/a`` (the standard sets no figure for this kind of site: it sets none for county halls'
area, staff and agent points, and asks for the 办不成事 window of township centres only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.vocabulary import AUDIT_STATUS, GUIDE_FIELD

if TYPE_CHECKING:
    from ..config import Site

PASS, FAIL, UNKNOWN, NA = "pass", "fail", "unknown", "n/a"
STATUS_LABELS = AUDIT_STATUS  # (keyed by PASS, FAIL, UNKNOWN, NA)

AREA_MIN = {"township": 1000.0, "village": 30.0}
AGENT_POINTS_MIN = {"township": 5, "village": 3}
RESIDENTS_PER_STAFF = 10_000
TOWNSHIP_STAFF_MIN = 3
VILLAGE_STAFF_MIN = 1


@dataclass(frozen=True, slots=True)
class AuditLine:
    site: str
    check: str  # area, staff, agent_points, comprehensive_window, fallback_window, cameras, rating_pads, service_guides
    status: str  # pass, fail, unknown, n/a
    item: str  # the standard's item, in Chinese
    detail: str  # what the site declares, against what is required
    basis: str  # where the standard says it


KIND_NAMES = {"county": "县级中心", "township": "乡镇中心", "village": "村（社区）便民服务站"}


def _kind_name(site: Site) -> str:
    return KIND_NAMES.get(site.kind, site.kind)


def _area(site: Site) -> AuditLine:
    basis = "二（一）1：乡镇中心面积不得低于1000平方米，村（社区）不得低于30平方米"
    minimum = AREA_MIN.get(site.kind)
    area = site.facts.area_m2
    if minimum is None:
        return AuditLine(site.id, "area", NA, "场所面积", f"标准未规定{_kind_name(site)}的面积", basis)
    if area is None:
        return AuditLine(
            site.id, "area", UNKNOWN, "场所面积", f"未申报面积（[facts] area_m2），要求不低于 {minimum:g} 平方米", basis
        )
    status = PASS if area >= minimum else FAIL
    return AuditLine(site.id, "area", status, "场所面积", f"{area:g} 平方米，要求不低于 {minimum:g} 平方米", basis)


def _staff(site: Site) -> AuditLine:
    basis = "二（一）3：乡镇每万人至少配备1名中心正式工作人员（最少3名），村级1名"
    facts = site.facts
    declared = facts.staff_count is not None
    count = facts.staff_count if facts.staff_count is not None else len(site.staff)
    source = "申报" if declared else "按登记的工作人员计"
    if site.kind == "village":
        status = PASS if count >= VILLAGE_STAFF_MIN else FAIL
        return AuditLine(
            site.id,
            "staff",
            status,
            "工作人员",
            f"{count} 名（{source}），要求至少 {VILLAGE_STAFF_MIN} 名帮办代办员",
            basis,
        )
    if site.kind != "township":
        return AuditLine(site.id, "staff", NA, "工作人员", f"标准未规定{_kind_name(site)}的人员数", basis)
    if facts.residents is None:
        if count < TOWNSHIP_STAFF_MIN:
            return AuditLine(
                site.id, "staff", FAIL, "工作人员", f"{count} 名（{source}），少于最低 {TOWNSHIP_STAFF_MIN} 名", basis
            )
        return AuditLine(
            site.id,
            "staff",
            UNKNOWN,
            "工作人员",
            f"{count} 名（{source}）；未申报服务人口（[facts] residents），无法核定每万人1名",
            basis,
        )
    required = max(TOWNSHIP_STAFF_MIN, math.ceil(facts.residents / RESIDENTS_PER_STAFF))
    status = PASS if count >= required else FAIL
    return AuditLine(
        site.id,
        "staff",
        status,
        "工作人员",
        f"{count} 名（{source}），服务人口 {facts.residents} 人，要求至少 {required} 名",
        basis,
    )


def _agent_points(site: Site) -> AuditLine:
    basis = "二（三）2：每个乡镇设置乡级便民服务代办点不少于5个，村级便民服务代办点不得少于3个"
    minimum = AGENT_POINTS_MIN.get(site.kind)
    points = site.facts.agent_points
    if minimum is None:
        return AuditLine(
            site.id, "agent_points", NA, "便民服务代办点", f"标准未规定{_kind_name(site)}的代办点数", basis
        )
    if points is None:
        return AuditLine(
            site.id,
            "agent_points",
            UNKNOWN,
            "便民服务代办点",
            f"未申报代办点数（[facts] agent_points），要求不少于 {minimum} 个",
            basis,
        )
    status = PASS if points >= minimum else FAIL
    return AuditLine(site.id, "agent_points", status, "便民服务代办点", f"{points} 个，要求不少于 {minimum} 个", basis)


def _window_role(site: Site, role: str, check: str, item: str, basis: str) -> AuditLine:
    found = [w for w in site.windows if w.role.value == role]
    if found:
        return AuditLine(site.id, check, PASS, item, "、".join(w.name for w in found), basis)
    return AuditLine(site.id, check, FAIL, item, f'没有 role = "{role}" 的窗口', basis)


def _comprehensive(site: Site) -> AuditLine:
    return _window_role(
        site,
        "comprehensive",
        "comprehensive_window",
        "无差别综合受理窗口",
        "二（二）3：设置“无差别综合受理窗口”，实行一窗受理、集成服务",
    )


def _fallback(site: Site) -> AuditLine:
    basis = "二（一）2、二（四）1：乡镇中心要设置“办不成事”反映窗口，提供兜底服务"
    if site.kind == "village":
        return AuditLine(site.id, "fallback_window", NA, "“办不成事”反映窗口", "标准只对乡镇中心作此要求", basis)
    return _window_role(site, "fallback", "fallback_window", "“办不成事”反映窗口", basis)


def _devices_at_windows(site: Site, kind: str, check: str, item: str, basis: str) -> AuditLine:
    having = {d.window for d in site.devices if d.kind.value == kind and d.window}
    missing = [w.name for w in site.windows if w.id not in having]
    if missing:
        return AuditLine(site.id, check, FAIL, item, f"{'、'.join(missing)}没有", basis)
    return AuditLine(site.id, check, PASS, item, f"{len(site.windows)} 个窗口都有", basis)


def _cameras(site: Site) -> AuditLine:
    return _devices_at_windows(
        site,
        "camera",
        "cameras",
        "每个窗口有电子监察摄像头",
        "二（四）2：保障电子监察系统正常运行，负责摄像头等设备的日常维护管理",
    )


def _pads(site: Site) -> AuditLine:
    return _devices_at_windows(
        site, "pad", "rating_pads", "每个窗口有好差评评价器", "二（四）1：各服务窗口要张贴或者摆放“好差评”评价二维码"
    )


def _guides(site: Site) -> AuditLine:
    basis = "二（二）2：逐项编制办事指南，明确办事依据、办理条件、申请材料、办理时限、收费情况、办件类型"
    gaps = []
    for service in site.services:
        missing = service.guide.missing_fields()
        if missing:
            gaps.append(f"{service.name}缺{'、'.join(GUIDE_FIELD[m] for m in missing)}")
    if gaps:
        return AuditLine(site.id, "service_guides", FAIL, "办事指南完整", "；".join(gaps), basis)
    return AuditLine(
        site.id, "service_guides", PASS, "办事指南完整", f"{len(site.services)} 个事项的办事指南齐全", basis
    )


CHECKS = (_area, _staff, _agent_points, _comprehensive, _fallback, _cameras, _pads, _guides)


def audit_site(site: Site) -> list[AuditLine]:
    return [check(site) for check in CHECKS]


def format_audit(site: Site, lines: list[AuditLine]) -> str:
    """The checklist as text: a heading, one line per check, and a count."""
    out = [f"{site.id}: {site.name}（{_kind_name(site)}）"]
    width = max(len(line.check) for line in lines)
    for line in lines:
        out.append(f"{site.id}: {line.status:<7} {line.check:<{width}}  {line.item}：{line.detail}")
    counts = {status: sum(1 for line in lines if line.status == status) for status in STATUS_LABELS}
    out.append(f"{site.id}: " + ", ".join(f"{counts[s]} {s}" for s in STATUS_LABELS))
    return "\n".join(out)
