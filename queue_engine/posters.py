"""二维码海报: the hall's poster (A4) and one per window (A5), printed and put up as the policy
asks (大厅要摆放"好差评"评价二维码, 各服务窗口要张贴或者摆放"好差评"评价二维码).

``posters(site)`` lays each page out, a pure function from the site's configuration to text
and a QR code placed in millimetres; ``render_png`` (Pillow, 300 dpi) and ``render_pdf``
(reportlab, the font embedded, so the text stays text) draw the same layout. Both need a font
with the Chinese characters: Debian's fonts-wqy-microhei by default.

The codes: a window's opens ``{public_url}/w/{site}/{window}`` (rate the visit just finished
at that window), the hall's ``{public_url}/s/{site}`` (the site's page: queues, services and
their 办事指南, taking a number), the entrance's ``{public_url}/c/{site}?k={key}`` (check in the
numbers taken with the phone that scans it; made only with the engine's ticket secret).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import segno

from .config import Site, Window
from .files import write_file
from .tickettoken import check_in_url, entrance_key

DEFAULT_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
DPI = 300
MM_PER_PT = 25.4 / 72
PAGE_MM = {"A4": (210.0, 297.0), "A5": (148.0, 210.0)}
MARGIN_MM = 12.0
QR_QUIET_MODULES = 4  # the white border a reader needs around the code


def hall_url(site: Site) -> str:
    return f"{site.web.public_url}/s/{site.id}"


def window_url(site: Site, window: Window) -> str:
    return f"{site.web.public_url}/w/{site.id}/{window.id}"


@dataclass(frozen=True, slots=True)
class Text:
    """A line centred on the page; ``baseline_mm`` from the top edge."""

    text: str
    baseline_mm: float
    size_pt: float


@dataclass(frozen=True, slots=True)
class Qr:
    """A QR code centred on the page, its top ``top_mm`` from the top edge, ``side_mm`` wide
    with its quiet zone."""

    data: str
    top_mm: float
    side_mm: float


@dataclass(frozen=True, slots=True)
class Poster:
    name: str  # the file name's stem
    size: str  # A4 or A5
    items: tuple[Text | Qr, ...]

    @property
    def page_mm(self) -> tuple[float, float]:
        return PAGE_MM[self.size]


def _fitted(text: str, size_pt: float, width_mm: float) -> float:
    """The font size at most ``size_pt`` at which ``text`` fits ``width_mm`` (a Chinese
    character is one em wide, a Latin one a little more than half)."""
    ems = sum(1.0 if ord(c) > 0x2E80 else 0.6 for c in text)
    return min(size_pt, width_mm / MM_PER_PT / max(ems, 1.0))


class _Column:
    """Lines and a code stacked down the page, each centred."""

    def __init__(self, size: str):
        self.width_mm = PAGE_MM[size][0] - 2 * MARGIN_MM
        self.y = MARGIN_MM
        self.items: list[Text | Qr] = []

    def text(self, text: str, size_pt: float, space_after_mm: float = 3.0) -> None:
        size = _fitted(text, size_pt, self.width_mm)
        self.y += size * MM_PER_PT
        self.items.append(Text(text, self.y, size))
        self.y += space_after_mm + size * MM_PER_PT * 0.3

    def qr(self, data: str, side_mm: float) -> None:
        self.items.append(Qr(data, self.y, side_mm))
        self.y += side_mm + 2.0


def hall_poster(site: Site) -> Poster:
    page = _Column("A4")
    page.text(site.name, 30, 6)
    page.text("政务服务“好差评”", 40, 2)
    page.text("扫码评价 · 查看排队 · 办事指南 · 网上取号", 18, 4)
    page.qr(hall_url(site), 120)
    page.text("请用微信或手机浏览器扫描二维码", 16, 8)
    page.text("非常满意 · 满意 · 基本满意 · 不满意 · 非常不满意", 16, 8)
    for line in site.complaints.labelled():
        page.text(line, 20)
    return Poster(f"poster-{site.id}-hall", "A4", tuple(page.items))


def window_poster(site: Site, window: Window) -> Poster:
    page = _Column("A5")
    page.text(window.name, 40, 2)
    if window.unit:
        page.text(window.unit, 18, 2)
    page.text("当班工作人员：____________", 16, 4)
    page.text("政务服务“好差评” 扫码评价本窗口", 18, 2)
    page.qr(window_url(site, window), 78)
    page.text("办事结束后扫码，评价刚刚为您办理的服务", 12, 4)
    for line in site.complaints.labelled():
        page.text(line, 13, 1.5)
    page.text(site.name, 11)
    return Poster(f"poster-{site.id}-{window.id}", "A5", tuple(page.items))


def entrance_poster(site: Site, key: str) -> Poster:
    """到厅签到 (A4, at the hall's entrance): a number taken with a phone is called only once its
    citizen has scanned this code at the hall (``tickettoken.entrance_key``: the key in the link)."""
    page = _Column("A4")
    page.text(site.name, 30, 6)
    page.text("手机取号 到厅签到", 44, 2)
    page.text("用手机取号的群众，到大厅后请扫码签到，签到后才会叫号", 18, 4)
    page.qr(check_in_url(site.web.public_url, site.id, key), 120)
    page.text("请用取号时的手机扫描；也可以在取号机输入签到码", 16, 8)
    for line in site.complaints.labelled():
        page.text(line, 20)
    return Poster(f"poster-{site.id}-entrance", "A4", tuple(page.items))


def posters(site: Site, secret: bytes | None = None) -> list[Poster]:
    """The hall's poster and one per window; with the engine's ticket secret, the entrance's
    check-in poster too. The site needs ``[web] public_url``."""
    if not site.web.public_url:
        raise ValueError(f"site {site.id} has no [web] public_url: the posters' codes are links under it")
    entrance = [entrance_poster(site, entrance_key(secret, site.id))] if secret is not None else []
    return [hall_poster(site), *entrance] + [window_poster(site, window) for window in site.windows]


def _modules(data: str) -> tuple[int, list[tuple[int, int, int]]]:
    """The code's size in modules (quiet zone included) and its dark runs (row, first column,
    length): a row's neighbouring dark modules drawn as one rectangle."""
    code = segno.make(data, error="m", micro=False)
    matrix = [list(row) for row in code.matrix_iter(scale=1, border=QR_QUIET_MODULES)]
    runs = []
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                runs.append((r, start, c - start))
            else:
                c += 1
    return len(matrix), runs


def render_png(poster: Poster, font: Path = DEFAULT_FONT) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    def px(mm: float) -> float:
        return mm / 25.4 * DPI

    width_mm, height_mm = poster.page_mm
    image = Image.new("L", (round(px(width_mm)), round(px(height_mm))), 255)
    draw = ImageDraw.Draw(image)
    for item in poster.items:
        if isinstance(item, Text):
            face = ImageFont.truetype(str(font), round(item.size_pt / 72 * DPI))
            draw.text((px(width_mm / 2), px(item.baseline_mm)), item.text, font=face, fill=0, anchor="ms")
        else:
            count, runs = _modules(item.data)
            module = px(item.side_mm) / count
            left, top = px((width_mm - item.side_mm) / 2), px(item.top_mm)
            for r, c, n in runs:
                draw.rectangle(
                    (left + c * module, top + r * module, left + (c + n) * module - 1, top + (r + 1) * module - 1),
                    fill=0,
                )
    out = io.BytesIO()
    image.save(out, "PNG", dpi=(DPI, DPI))
    return out.getvalue()


def render_pdf(poster: Poster, font: Path = DEFAULT_FONT) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    face = "hallwatch-poster"
    pdfmetrics.registerFont(TTFont(face, str(font), subfontIndex=0))
    width_mm, height_mm = poster.page_mm
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=(width_mm * mm, height_mm * mm), pageCompression=1)
    pdf.setTitle(poster.name)
    for item in poster.items:
        if isinstance(item, Text):
            pdf.setFont(face, item.size_pt)
            pdf.drawCentredString(width_mm / 2 * mm, (height_mm - item.baseline_mm) * mm, item.text)
        else:
            count, runs = _modules(item.data)
            module = item.side_mm / count
            left, top = (width_mm - item.side_mm) / 2, height_mm - item.top_mm
            for r, c, n in runs:
                pdf.rect((left + c * module) * mm, (top - (r + 1) * module) * mm, n * module * mm, module * mm, 0, 1)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


RENDERERS: dict[str, Callable[[Poster, Path], bytes]] = {"png": render_png, "pdf": render_pdf}


PUBLIC = 0o644  # posters are public: hung in the hall, printed by anyone


def write_posters(
    site: Site,
    out: Path,
    formats: tuple[str, ...] = ("pdf", "png"),
    font: Path = DEFAULT_FONT,
    secret: bytes | None = None,
) -> list[Path]:
    """Every poster of the site in every format, in ``out`` (created if need be)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for poster in posters(site, secret):
        for fmt in formats:
            path = out / f"{poster.name}.{fmt}"
            write_file(path, RENDERERS[fmt](poster, font), mode=PUBLIC)
            written.append(path)
    return written
