"""The report opened in a real headless browser (Debian's ``chromium``): every photo decodes, every
heatmap and chart is laid out and painted, nothing is fetched or blocked, and the screenshot shows
the photos' own colours where the photos are and coloured cells where the heatmaps are.

Runs in the plain virtualenv: the report is built from synthetic data (stdlib PNGs). Skipped only when
no chromium binary is found (``apt-get install chromium``; or set NYANOPS_CHROMIUM to a binary)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from nyanops import report

from .synthetic import COLOURS, experiment

WIDTH = 1400

# Test-only probe, added to the page (and to its CSP by hash): after load it writes what it measured
# into the DOM, which --dump-dom prints.
PROBE = """
window.addEventListener('load', function () {
  function box(el) {
    var r = el.getBoundingClientRect();
    return {x: r.left + window.scrollX, y: r.top + window.scrollY, w: r.width, h: r.height};
  }
  var out = {
    tables: document.querySelectorAll('table.compare tbody tr').length,
    images: Array.prototype.map.call(document.images, function (img) {
      return {alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, box: box(img)};
    }),
    heatmaps: Array.prototype.map.call(document.querySelectorAll('svg.heatmap'), function (s) {
      return {box: box(s), cells: s.querySelectorAll('rect.cell').length};
    }),
    charts: Array.prototype.map.call(document.querySelectorAll('svg.chart'), function (s) { return box(s); }),
    resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
    height: document.documentElement.scrollHeight
  };
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
""".strip()


def chromium() -> str | None:
    for name in (os.environ.get("NYANOPS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and (path := shutil.which(name)):
            return path
    return None


def run_browser(binary: str, tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    args = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
        "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", *extra, url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, bytes per pixel, raw pixels) of an 8-bit, non-interlaced RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out += line
        prev = line
    return width, height, bpp, bytes(out)


class Screenshot:
    def __init__(self, data: bytes) -> None:
        self.width, self.height, self.bpp, self.pixels = decode_png(data)

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = (y * self.width + x) * self.bpp
        return self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]

    def region(self, box: dict[str, float]) -> list[tuple[int, int, int]]:
        x0, y0 = int(box["x"]) + 1, int(box["y"]) + 1
        x1, y1 = min(self.width, int(box["x"] + box["w"]) - 1), min(self.height, int(box["y"] + box["h"]) - 1)
        return [self.pixel(x, y) for y in range(y0, y1, 2) for x in range(x0, x1, 2)]


def close(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def browser() -> str:
    binary = chromium()
    if binary is None:
        pytest.skip("no chromium binary found (apt-get install chromium, or set NYANOPS_CHROMIUM)")
    return binary


def test_report_renders_in_a_real_browser(browser: str, tmp_path: Path) -> None:
    exp = experiment()
    colour_of = {path: COLOURS[i] for i, path in enumerate(
        p for t in exp.trials for p in t.thumbnails)}
    page = report.build_report([exp])
    probe_hash = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    page = page.replace("script-src ", f"script-src 'sha256-{probe_hash}' ", 1)
    page = page.replace("</body>", f"<script>{PROBE}</script></body>", 1)
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    url = path.as_uri()

    dumped = run_browser(browser, tmp_path, url, f"--window-size={WIDTH},1200", "--virtual-time-budget=5000",
                         "--dump-dom")
    match = re.search(r'<pre id="probe">(.*?)</pre>', dumped.stdout, re.S)
    assert match, f"the probe did not run; stderr:\n{dumped.stderr[-3000:]}"
    probe: dict[str, Any] = json.loads(html.unescape(match.group(1)))

    assert probe["tables"] == 3  # the comparison table, one row per trial
    assert probe["resources"] == []  # nothing fetched: everything is inline
    assert len(probe["images"]) == 3
    for img in probe["images"]:
        assert img["complete"] and img["naturalWidth"] > 0, img
        assert img["box"]["w"] > 20 and img["box"]["h"] > 20, img
    assert len(probe["heatmaps"]) == 2
    for heat in probe["heatmaps"]:
        assert heat["cells"] == 9 and heat["box"]["w"] > 100 and heat["box"]["h"] > 100
    assert len(probe["charts"]) >= 2 * 2 + 3 + 1  # curves, timelines, the metric bars
    log = dumped.stderr
    for bad in ("Failed to load resource", "net::ERR_", "Refused to", "Content Security Policy", "Uncaught"):
        assert bad not in log, f"{bad!r} in the browser log:\n{log[-3000:]}"

    height = min(12000, int(probe["height"]) + 20)
    shot_file = tmp_path / "shot.png"
    shot = run_browser(browser, tmp_path, url, f"--window-size={WIDTH},{height}", "--virtual-time-budget=5000",
                       f"--screenshot={shot_file}")
    assert shot_file.is_file(), shot.stderr[-3000:]
    for bad in ("Failed to load resource", "net::ERR_", "Refused to"):
        assert bad not in shot.stderr, shot.stderr[-3000:]
    image = Screenshot(shot_file.read_bytes())
    assert image.width == WIDTH and image.height >= probe["height"] - 40

    white = (255, 255, 255)
    everywhere = image.region({"x": 0, "y": 0, "w": image.width, "h": image.height})
    assert sum(not close(p, white, 10) for p in everywhere) > len(everywhere) // 50  # not a blank page
    for img in probe["images"]:
        pixels = image.region(img["box"])
        expected = colour_of[img["alt"]]
        share = sum(close(p, expected) for p in pixels) / len(pixels)
        assert share > 0.8, (img["alt"], expected, share)
    for heat in probe["heatmaps"]:
        pixels = image.region(heat["box"])
        blue = sum(close(p, report.BLUE, 60) for p in pixels)  # the diagonal (4 of 4-5 photos right)
        red = sum(p[0] > 180 and p[1] < 200 and p[2] < 190 for p in pixels)  # the confusions
        assert blue > len(pixels) // 40 and red > 0, (heat, blue, red, len(pixels))
