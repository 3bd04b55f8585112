"""Small inline SVG charts: vertical bars (stacked), horizontal bars (stacked), lines.

No library and nothing fetched: the report is one file that opens and prints offline. Every
drawn bar is a ``<rect class="bar">`` and every line point a ``<circle class="point">``, each
with a ``<title>`` tooltip; a value of zero draws nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

BLUE, ORANGE, RED, GREY, GREEN, PURPLE = "#2f6db5", "#e08a1e", "#c0392b", "#9a9a9a", "#2e8b57", "#7d5ba6"
FONT = 11


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: list[float | None]
    color: str | list[str] = BLUE

    def color_at(self, i: int) -> str:
        return self.color[i] if isinstance(self.color, list) else self.color


def nice_max(value: float) -> tuple[float, float]:
    """An axis maximum >= value and its tick step (1, 2 or 5 times a power of ten, 3-6 ticks)."""
    if value <= 0:
        return 1.0, 1.0 if value == 0 else 0.2
    raw = value / 5
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        step = factor * power
        if step >= raw:
            break
    return step * math.ceil(value / step - 1e-9), step


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def _open(name: str, width: int, height: int, label: str) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" font-size="{FONT}">'
    ]


def _legend(parts: list[str], series: list[Series], x_right: float, y: float) -> None:
    if len(series) < 2:
        return
    x = x_right
    for s in reversed(series):
        width = 14 + FONT * len(s.label) + 10
        x -= width
        parts.append(
            f'<rect class="legend" x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{s.color_at(0)}"/>'
        )
        parts.append(f'<text x="{x + 14:.1f}" y="{y:.1f}">{escape(s.label)}</text>')


def _empty(parts: list[str], width: int, height: int) -> None:
    parts.append(
        f'<text class="empty" x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" fill="#777">无数据</text>'
    )


def _y_axis(
    parts: list[str], top: float, bottom: float, left: float, right: float, maximum: float, step: float, unit: str
) -> None:
    ticks = int(round(maximum / step))
    for k in range(ticks + 1):
        value = k * step
        y = bottom - (bottom - top) * value / maximum
        parts.append(f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{left - 4:.1f}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_fmt(value)}</text>')
    if unit:
        parts.append(f'<text x="{left - 4:.1f}" y="{top - 10:.1f}" text-anchor="end" fill="#555">{escape(unit)}</text>')
    parts.append(f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{bottom:.1f}" y2="{bottom:.1f}" stroke="#888"/>')


def bar_chart(
    name: str,
    label: str,
    categories: list[str],
    series: list[Series],
    *,
    unit: str = "",
    width: int = 520,
    height: int = 250,
) -> str:
    """Vertical bars, one band per category, the series stacked."""
    parts = _open(name, width, height, label)
    left, right, top, bottom = 42.0, width - 8.0, 30.0, height - 26.0
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(categories))]
    if not categories or max(totals, default=0) <= 0:
        _empty(parts, width, height)
        return "".join(parts + ["</svg>"])
    maximum, step = nice_max(max(totals))
    _y_axis(parts, top, bottom, left, right, maximum, step, unit)
    band = (right - left) / len(categories)
    bar_width = max(2.0, band * 0.7)
    for i, category in enumerate(categories):
        x = left + band * i + (band - bar_width) / 2
        base = 0.0
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            y0 = bottom - (bottom - top) * base / maximum
            y1 = bottom - (bottom - top) * (base + value) / maximum
            parts.append(
                f'<rect class="bar" data-series="{escape(s.label)}" data-value="{_fmt(value)}" '
                f'x="{x:.1f}" y="{y1:.1f}" width="{bar_width:.1f}" height="{y0 - y1:.1f}" '
                f'fill="{s.color_at(i)}"><title>{escape(category)} {escape(s.label)}：{_fmt(value)}'
                f"{escape(unit)}</title></rect>"
            )
            base += value
        parts.append(
            f'<text x="{left + band * i + band / 2:.1f}" y="{bottom + 15:.1f}" text-anchor="middle" '
            f'fill="#333">{escape(category)}</text>'
        )
    _legend(parts, series, right, 14)
    return "".join(parts + ["</svg>"])


def hbar_chart(
    name: str,
    label: str,
    categories: list[str],
    series: list[Series],
    *,
    unit: str = "",
    width: int = 520,
    row_height: int = 22,
) -> str:
    """Horizontal bars, one row per category (e.g. per window), the series stacked."""
    label_width = min(170.0, 14.0 + FONT * max((len(c) for c in categories), default=4))
    height = int(40 + row_height * max(1, len(categories)) + 20)
    parts = _open(name, width, height, label)
    left, right, top = label_width, width - 12.0, 30.0
    bottom = top + row_height * len(categories)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(categories))]
    maximum, step = nice_max(max(totals, default=0))
    ticks = int(round(maximum / step))
    for k in range(ticks + 1):
        x = left + (right - left) * k * step / maximum
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{bottom:.1f}" stroke="#e3e3e3"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle" fill="#555">{_fmt(k * step)}</text>'
        )
    if unit:
        parts.append(f'<text x="{right:.1f}" y="{bottom + 28:.1f}" text-anchor="end" fill="#555">{escape(unit)}</text>')
    for i, category in enumerate(categories):
        y = top + row_height * i
        parts.append(
            f'<text x="{left - 6:.1f}" y="{y + row_height / 2 + 4:.1f}" text-anchor="end" '
            f'fill="#333">{escape(category)}</text>'
        )
        base = 0.0
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            x0 = left + (right - left) * base / maximum
            x1 = left + (right - left) * (base + value) / maximum
            parts.append(
                f'<rect class="bar" data-series="{escape(s.label)}" data-value="{_fmt(value)}" '
                f'x="{x0:.1f}" y="{y + 4:.1f}" width="{x1 - x0:.1f}" height="{row_height - 8:.1f}" '
                f'fill="{s.color_at(i)}"><title>{escape(category)} {escape(s.label)}：{_fmt(value)}'
                f"{escape(unit)}</title></rect>"
            )
            base += value
    parts.append(f'<line x1="{left:.1f}" x2="{left:.1f}" y1="{top:.1f}" y2="{bottom:.1f}" stroke="#888"/>')
    _legend(parts, series, right, 14)
    return "".join(parts + ["</svg>"])


def line_chart(
    name: str,
    label: str,
    categories: list[str],
    series: list[Series],
    *,
    unit: str = "",
    width: int = 520,
    height: int = 250,
) -> str:
    """Lines over the categories (e.g. hours); a missing value (None) breaks the line."""
    parts = _open(name, width, height, label)
    left, right, top, bottom = 42.0, width - 8.0, 30.0, height - 26.0
    values = [v for s in series for v in s.values if v is not None]
    if not categories or not values:
        _empty(parts, width, height)
        return "".join(parts + ["</svg>"])
    maximum, step = nice_max(max(values))
    _y_axis(parts, top, bottom, left, right, maximum, step, unit)
    band = (right - left) / len(categories)
    xs = [left + band * i + band / 2 for i in range(len(categories))]
    for i, category in enumerate(categories):
        parts.append(
            f'<text x="{xs[i]:.1f}" y="{bottom + 15:.1f}" text-anchor="middle" fill="#333">{escape(category)}</text>'
        )
    for s in series:
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append((xs[i], bottom - (bottom - top) * value / maximum))
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(
                    f'<polyline class="line" points="{points}" fill="none" stroke="{s.color_at(0)}" stroke-width="2"/>'
                )
        for i, value in enumerate(s.values):
            if value is None:
                continue
            y = bottom - (bottom - top) * value / maximum
            parts.append(
                f'<circle class="point" data-series="{escape(s.label)}" data-value="{_fmt(value)}" '
                f'cx="{xs[i]:.1f}" cy="{y:.1f}" r="3.5" fill="{s.color_at(0)}"><title>'
                f"{escape(categories[i])} {escape(s.label)}：{_fmt(value)}{escape(unit)}</title></circle>"
            )
    _legend(parts, series, right, 14)
    return "".join(parts + ["</svg>"])
