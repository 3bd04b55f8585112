"""`hallwatch posters` for the demo site, read back: every PNG's QR code decodes (zxing-cpp) to
the window's or the hall's link, every PDF is the right page size and holds its Chinese text."""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib

import pypdf
import pytest
import zxingcpp
from conftest import DEMO_SITE, ROOT
from PIL import Image

from queue_engine.config import load_site, parse_site
from queue_engine.posters import hall_poster, posters, window_poster
from queue_engine.tickettoken import entrance_key

SITE = load_site(DEMO_SITE)
BASE = "https://chimei-hall.example.cn"
A4_PT, A5_PT = (595.3, 841.9), (419.5, 595.3)


def hallwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "queue_engine.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("posters") / "out"
    done = hallwatch("posters", "--config", str(DEMO_SITE), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def expected() -> dict[str, tuple[str, str]]:
    """File stem -> (QR link, page size)."""
    pages = {"poster-demo-hall": (f"{BASE}/s/demo", "A4")}
    pages.update({f"poster-demo-{w.id}": (f"{BASE}/w/demo/{w.id}", "A5") for w in SITE.windows})
    return pages


def test_one_poster_for_the_hall_and_one_per_window_in_pdf_and_png(written):
    names = sorted(p.name for p in written.iterdir())
    assert names == sorted(f"{stem}.{fmt}" for stem in expected() for fmt in ("pdf", "png"))
    for path in written.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_every_pngs_qr_code_decodes_to_its_link(written):
    for stem, (url, size) in expected().items():
        image = Image.open(written / f"{stem}.png")
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        assert image.size == {"A4": (2480, 3508), "A5": (1748, 2480)}[size]
        codes = zxingcpp.read_barcodes(image)
        assert [(c.format, c.text) for c in codes] == [(zxingcpp.BarcodeFormat.QRCode, url)], stem


def test_every_pdf_is_its_page_with_its_chinese_text(written):
    complaints = ["县投诉电话：0377-65532345", "乡镇投诉电话：0377-65761234"]
    for stem, (_, size) in expected().items():
        (page,) = pypdf.PdfReader(written / f"{stem}.pdf").pages
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(
            A4_PT if size == "A4" else A5_PT, abs=0.5
        )
        text = page.extract_text()
        for line in complaints + ["政务服务“好差评”", SITE.name]:
            assert line in text, (stem, line)
        if size == "A5":
            window = SITE.window(stem.rsplit("-", 1)[1])
            for line in (window.name, window.unit, "当班工作人员：", "评价刚刚为您办理的服务"):
                assert line in text, (stem, line)


def test_the_layouts_fit_the_page():
    for poster in posters(SITE):
        width, height = poster.page_mm
        last = max(getattr(item, "baseline_mm", 0) or item.top_mm + item.side_mm for item in poster.items)
        assert last < height - 5, poster.name
        for item in poster.items:
            if hasattr(item, "size_pt"):
                ems = sum(1.0 if ord(c) > 0x2E80 else 0.6 for c in item.text)
                assert ems * item.size_pt * 25.4 / 72 <= width - 20, (poster.name, item.text)
    long_unit = SITE.windows[0].model_copy(
        update={"unit": "内乡县赤眉镇人力资源和社会保障所暨退役军人服务站便民服务窗口"}
    )
    unit_line = next(i for i in window_poster(SITE, long_unit).items if getattr(i, "text", "") == long_unit.unit)
    assert unit_line.size_pt < 18  # shrunk to fit
    assert [i.data for i in hall_poster(SITE).items if hasattr(i, "data")] == [f"{BASE}/s/demo"]


def test_a_site_without_public_url_or_font_is_refused(tmp_path):
    data = tomllib.loads(DEMO_SITE.read_text(encoding="utf-8"))
    del data["web"]
    with pytest.raises(ValueError, match=r"site demo has no \[web\] public_url"):
        posters(parse_site(data))
    config = tmp_path / "no-url.toml"
    config.write_text(
        DEMO_SITE.read_text(encoding="utf-8").replace('public_url = "https://chimei-hall.example.cn"', "")
    )
    refused = hallwatch("posters", "--config", str(config), "--out", str(tmp_path / "out"))
    assert refused.returncode == 2 and "site demo has no [web] public_url" in refused.stderr
    no_font = hallwatch("posters", "--config", str(DEMO_SITE), "--out", str(tmp_path / "out"), "--font", "/no/font.ttc")
    assert no_font.returncode == 2 and "--font /no/font.ttc: no such font file" in no_font.stderr
    assert not (tmp_path / "out").exists()


def test_with_the_ticket_secret_the_entrance_poster_checks_phones_in(tmp_path):
    """到厅签到: its code is the entrance link with the site's key, which only the secret makes."""
    secret = tmp_path / "secret"
    secret.write_text("a-ticket-secret-for-the-posters\n")
    out = tmp_path / "out"
    done = hallwatch(
        "posters",
        "--config",
        str(DEMO_SITE),
        "--out",
        str(out),
        "--format",
        "both",
        "--ticket-secret-file",
        str(secret),
    )
    assert done.returncode == 0, done.stderr
    key = entrance_key(b"a-ticket-secret-for-the-posters", "demo")
    codes = zxingcpp.read_barcodes(Image.open(out / "poster-demo-entrance.png"))
    assert [c.text for c in codes] == [f"{BASE}/c/demo?k={key}"]
    (page,) = pypdf.PdfReader(out / "poster-demo-entrance.pdf").pages
    text = page.extract_text()
    for line in ("手机取号 到厅签到", "签到后才会叫号", "县投诉电话：0377-65532345", SITE.name):
        assert line in text, line
