"""The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched),
in Chinese, printable on A4 (landscape, so that the wide tables fit).

Every table carries ``data-table`` (the CSV file's name) and ``data-site``; every cell
``data-key`` (the column), and shows exactly the text of the CSV's cell.
"""

from __future__ import annotations

from html import escape

from ..core.model import Staffing
from ..core.vocabulary import SITE_KIND, STAFFING
from .charts import BLUE, GREEN, GREY, ORANGE, RED, Series, bar_chart, hbar_chart, line_chart
from .model import SATISFIED_NOTE, TABLES, Report, SiteReport, format_value

NUMERIC = {"int", "min", "pct", "days"}

CSS = """
@page { size: A4 landscape; margin: 10mm 9mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Microsoft YaHei",
       "PingFang SC", sans-serif; color: #222; margin: 0 auto; max-width: 1240px; padding: 16px;
       font-size: 13px; line-height: 1.45; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 6px; padding-bottom: 4px; border-bottom: 2px solid #2f6db5; }
h3 { font-size: 14px; margin: 18px 0 6px; }
.meta { color: #555; margin: 0 0 4px; }
.kpis { display: grid; grid-template-columns: repeat(6, 1fr); gap: 6px; margin: 10px 0; }
.kpi { border: 1px solid #d5dbe5; border-radius: 4px; padding: 6px 8px; background: #f6f8fb; }
.kpi b { display: block; font-size: 17px; }
.kpi span { color: #555; font-size: 12px; }
.kpi.bad b { color: #c0392b; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 10px 18px; }
figure { margin: 0; break-inside: avoid; }
figcaption { font-weight: bold; margin-bottom: 2px; }
svg.chart { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 12px; margin-bottom: 4px; }
th, td { border: 1px solid #c9ced6; padding: 2px 4px; vertical-align: top; }
th { background: #eef2f7; font-weight: 600; }
td { white-space: nowrap; }
td[data-key="note"], td[data-key="service_name"], td[data-key="unit"] { white-space: normal; min-width: 9em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.overdue td { color: #c0392b; }
p.none { color: #777; margin: 2px 0 8px; }
.notes { color: #555; font-size: 12px; margin-top: 24px; border-top: 1px solid #ccc; padding-top: 6px; }
@media print {
  body { max-width: none; padding: 0; font-size: 9pt; }
  table { font-size: 7.5pt; }
  h2 { margin-top: 0; }
  section.site + section.site { break-before: page; }
  tr, .kpi { break-inside: avoid; }
  thead { display: table-header-group; }
  h3 { break-after: avoid; }
}
"""

NOTES = [
    "等候时间：从取号到第一次叫号；90%等候为 90% 的号不超过的等候时间；目标时限为各事项的目标等候时间。",
    "取号数、转办数和等候按取号时的事项统计；办理数、办理结果、过号和办理时间按最终办理的事项统计（转办后以接办窗口为准）。",
    "在岗、空岗、暂停、未开窗和无法核实时间只计工作日的办公时段；“无法核实”指窗口摄像头离线、被关闭或遮挡时的开窗时间。",
    "设备在线、离线时间按各设备的应在线时段计：24小时自助终端（及配置为全天在线的设备）计全天，其他设备只计工作日的办公时段。",
    "空岗·无人在座：已登录窗口而摄像头未见人员；未开窗：应在岗窗口无人登录。" + SATISFIED_NOTE,
    "差评整改期限按本站点工作日历（含国家法定节假日、调休和本站点补充的日期）计算；到期日结束仍未确认整改说明的为逾期。",
    "办件按受理（登记）日期计入统计期间，按受理事项、受理窗口和责任人（帮办代办员、主办人）分列；承诺期限按本站点工作日历计算，"
    "到期日结束前办结的为按时办结，到期日结束后办结或至生成时间仍未办结的为超期；平均办结天数从受理到办结按自然日计。",
    "即办件当场办结率：即办件中当场办结的占办结与受理之和的比例（即办件以受理结束的须说明原因）。"
    "重复告知：同一事项第二次一次性告知，违反一次性告知制。办不成事件为“办不成事”窗口兜底登记的事项。",
]


def _table(name: str, site: SiteReport) -> str:
    spec = TABLES[name]
    rows = getattr(site, name)
    parts = [f"<h3>{escape(spec.title)}</h3>"]
    if not rows:
        parts.append('<p class="none">无记录</p>')
    parts.append(f'<table data-table="{name}" data-site="{escape(site.site)}"><thead><tr>')
    parts += [f'<th data-key="{c.key}">{escape(c.label)}</th>' for c in spec.columns if c.key != "site"]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        # (a bad rating's follow-up overdue, an alert past its due time, a count of cases overdue)
        css = ' class="overdue"' if getattr(row, "status", None) == "overdue" or getattr(row, "overdue", False) else ""
        parts.append(f"<tr{css}>")
        for c in spec.columns:
            if c.key == "site":
                continue
            num = ' class="num"' if c.kind in NUMERIC else ""
            parts.append(f'<td data-key="{c.key}"{num}>{escape(c.text(row))}</td>')
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _kpis(site: SiteReport) -> str:
    total = site.total
    assert total is not None  # compute sets it on every site's report
    empty = sum(w.vacant_min for w in site.windows)
    cameras_off = sum(d.offline_min for d in site.devices if d.kind == "camera")
    overdue = sum(1 for r in site.bad_ratings if r.status == "overdue")
    waiting = sum(1 for r in site.bad_ratings if r.status == "open")
    cases = site.cases[0]  # the site's own row comes first
    items = [
        ("取号", format_value(total.issued, "int"), False),
        ("办理", format_value(total.served, "int"), False),
        ("过号", format_value(total.no_shows, "int"), False),
        ("平均等候(分钟)", format_value(total.wait_mean_min, "min") or "—", False),
        ("90%等候(分钟)", format_value(total.wait_p90_min, "min") or "—", False),
        ("目标时限内叫号(%)", format_value(total.within_target_pct, "pct") or "—", False),
        ("平均办理(分钟)", format_value(total.service_mean_min, "min") or "—", False),
        ("满意率(%)", format_value(site.satisfied_pct, "pct") or "—", False),
        ("评价数", format_value(site.rating_count, "int"), False),
        ("空岗(分钟)", format_value(empty, "min"), empty > 0),
        ("摄像头离线(分钟)", format_value(cameras_off, "min"), cameras_off > 0),
        ("告警", format_value(len(site.alerts), "int"), False),
        ("差评待整改", format_value(waiting, "int"), False),
        ("差评逾期", format_value(overdue, "int"), overdue > 0),
        ("办件", format_value(cases.opened, "int"), False),
        ("办件超期", format_value(cases.overdue, "int"), cases.overdue > 0),
        ("重复告知", format_value(cases.breaches, "int"), cases.breaches > 0),
        ("即办件当场办结率(%)", format_value(cases.on_the_spot_pct, "pct") or "—", False),
    ]
    cells = "".join(
        f'<div class="kpi{" bad" if bad else ""}" data-kpi="{escape(label)}"><b>{escape(value)}</b>'
        f"<span>{escape(label)}</span></div>"
        for label, value, bad in items
    )
    return f'<div class="kpis">{cells}</div>'


def _charts(site: SiteReport) -> str:
    first, last = site.hours_shown
    by_hour = {h.hour: h for h in site.hours}
    hours = list(range(min([first, *by_hour]), max([last, *by_hour]) + 1))
    labels = [f"{h}时" for h in hours]
    waits = line_chart(
        "waits_by_hour",
        "各时段等候时间",
        labels,
        [
            Series("平均等候", [by_hour[h].wait_mean_min if h in by_hour else None for h in hours], BLUE),
            Series("90%等候", [by_hour[h].wait_p90_min if h in by_hour else None for h in hours], ORANGE),
        ],
        unit="分钟",
    )
    issued = bar_chart(
        "tickets_by_hour",
        "各时段取号量",
        labels,
        [Series("取号数", [by_hour[h].issued if h in by_hour else 0 for h in hours], BLUE)],
        unit="个",
    )
    windows = site.windows
    empty = hbar_chart(
        "unstaffed_by_window",
        "各窗口空岗时间",
        [w.name or w.id for w in windows],
        [
            Series(f"空岗·{STAFFING[Staffing.UNSTAFFED]}", [w.unstaffed_min for w in windows], RED),
            Series(f"空岗·{STAFFING[Staffing.NOT_OPENED]}", [w.not_opened_min for w in windows], ORANGE),
            Series(f"空岗·{STAFFING[Staffing.UNVERIFIED]}", [w.unverified_min for w in windows], GREY),
        ],
        unit="分钟",
    )
    scores = (5, 4, 3, 2, 1)
    ratings = bar_chart(
        "ratings",
        "好差评",
        [f"{s}分" for s in scores],
        [Series("评价数", [site.ratings.get(s, 0) for s in scores], [GREEN, GREEN, GREY, RED, RED])],
        unit="个",
    )
    good = format_value(site.satisfied_pct, "pct")
    figures = [
        ("各时段等候时间（按取号时刻）", waits),
        ("各时段取号量", issued),
        ("各窗口空岗时间：未开窗、无人在座、无法核实（工作时间内）", empty),
        (f"好差评分布（满意率 {good}%）" if good else "好差评分布", ratings),
    ]
    return (
        '<div class="charts">'
        + "".join(f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>" for caption, svg in figures)
        + "</div>"
    )


def _site(site: SiteReport) -> str:
    kind = SITE_KIND.get(site.kind, site.kind)
    parts = [
        f'<section class="site" id="site-{escape(site.site)}" data-site="{escape(site.site)}">',
        f"<h2>{escape(site.name)}</h2>",
        f'<p class="meta">{escape(kind)} · 站点代码 {escape(site.site)} · 时区 {escape(site.timezone)}</p>',
        _kpis(site),
        _charts(site),
    ]
    parts += [_table(name, site) for name in TABLES]
    parts.append("</section>")
    return "".join(parts)


def render_html(report: Report) -> str:
    period = (
        report.start.isoformat()
        if report.start == report.end
        else f"{report.start.isoformat()} 至 {report.end.isoformat()}"
    )
    names = "、".join(s.name for s in report.sites)
    title = f"政务服务大厅运行报告 {period}"
    body = "".join(_site(site) for site in report.sites)
    notes = "".join(f"<li>{escape(n)}</li>" for n in NOTES)
    return (
        f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>政务服务大厅运行报告</h1>"
        f'<p class="meta">统计期间：{escape(period)}（含首尾两日，各站点当地时间）</p>'
        f'<p class="meta">站点：{escape(names)}</p>'
        f'<p class="meta">生成时间：{escape(format_value(report.generated_at, "time"))}（差评整改状态以此时为准）</p>'
        f"</header>{body}"
        f'<div class="notes"><b>口径说明</b><ul>{notes}</ul></div>'
        f"</body></html>\n"
    )
