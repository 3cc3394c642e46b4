"""Draws the add-on's icon.png (128x128) and logo.png (250x100) at the repository root.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install pillow
    /tmp/v/bin/python addon/make_images.py

Shapes are drawn as signed distance fields at 4x and scaled down (anti-aliased);
the logo's lettering uses DejaVu Sans Bold (Debian: fonts-dejavu-core).
"""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
BLUE_TOP = (0x4F, 0xC3, 0xF7)
BLUE_BOTTOM = (0x03, 0x88, 0xD1)
WHITE = (255, 255, 255)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def seg_dist(px, py, ax, ay, bx, by):
    """Distance from p to the segment a-b."""
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def arc_dist(px, py, cx, cy, r, a0, a1):
    """Distance from p to the arc of radius r around c between angles a0..a1
    (radians, screen coordinates: y down)."""
    ang = math.atan2(py - cy, px - cx)
    span = (a1 - a0) % (2 * math.pi)
    if (ang - a0) % (2 * math.pi) <= span:
        return abs(math.hypot(px - cx, py - cy) - r)
    ends = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (a0, a1)]
    return min(math.hypot(px - ex, py - ey) for ex, ey in ends)


def rounded_square(px, py, half, radius):
    """Signed distance to a square of half-size `half` centred on 0.5, 0.5."""
    qx = abs(px - 0.5) - (half - radius)
    qy = abs(py - 0.5) - (half - radius)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    inside = min(max(qx, qy), 0.0)
    return outside + inside - radius


# The handset: an arc bulging to the lower left, with an earpiece and a
# mouthpiece pointing in toward the arc's centre; two sound waves upper right.
ARC_C = (0.70, 0.30)
ARC_R = 0.42
EAR_A = math.radians(188)
MOUTH_A = math.radians(82)


def handset(px, py):
    d = arc_dist(px, py, ARC_C[0], ARC_C[1], ARC_R, MOUTH_A, EAR_A) - 0.065
    for a in (EAR_A, MOUTH_A):
        ex, ey = ARC_C[0] + ARC_R * math.cos(a), ARC_C[1] + ARC_R * math.sin(a)
        ix, iy = ARC_C[0] + (ARC_R - 0.13) * math.cos(a), ARC_C[1] + (ARC_R - 0.13) * math.sin(a)
        d = min(d, seg_dist(px, py, ex, ey, ix, iy) - 0.085)
    return d


def waves(px, py):
    cx, cy = 0.60, 0.40
    d = 1e9
    for r in (0.17, 0.29):
        d = min(d, arc_dist(px, py, cx, cy, r, math.radians(-80), math.radians(-10)) - 0.035)
    return d


def cover(d, px_size):
    """Coverage of a pixel whose centre is at signed distance d (unit coords)."""
    return max(0.0, min(1.0, 0.5 - d / px_size))


def draw_icon(size: int) -> Image.Image:
    ss = 4
    n = size * ss
    img = Image.new("RGBA", (n, n))
    px = img.load()
    pix = 1.0 / n
    for j in range(n):
        y = (j + 0.5) / n
        t = y
        bg = tuple(round(BLUE_TOP[k] * (1 - t) + BLUE_BOTTOM[k] * t) for k in range(3))
        for i in range(n):
            x = (i + 0.5) / n
            a_bg = cover(rounded_square(x, y, 0.47, 0.16), pix)
            if a_bg == 0.0:
                px[i, j] = (0, 0, 0, 0)
                continue
            # the glyph sits a little inside the tile
            gx, gy = 0.5 + (x - 0.5) / 0.74, 0.5 + (y - 0.5) / 0.74
            a_fg = cover(min(handset(gx, gy), waves(gx, gy)) * 0.74, pix)
            c = tuple(round(bg[k] * (1 - a_fg) + WHITE[k] * a_fg) for k in range(3))
            px[i, j] = (*c, round(255 * a_bg))
    return img.resize((size, size), Image.LANCZOS)


def draw_logo(icon: Image.Image) -> Image.Image:
    w, h = 250, 100
    ss = 4
    img = Image.new("RGBA", (w * ss, h * ss), (0, 0, 0, 0))
    big_icon = icon.resize((88 * ss, 88 * ss), Image.LANCZOS)
    img.alpha_composite(big_icon, (6 * ss, 6 * ss))
    d = ImageDraw.Draw(img)
    # the largest size that fits right of the icon
    size = 44
    while True:
        font = ImageFont.truetype(FONT, size * ss)
        left, _, right, _ = d.textbbox((0, 0), "ha-pbx", font=font)
        if right - left <= (w - 104) * ss or size <= 10:
            break
        size -= 1
    d.text((102 * ss, 50 * ss), "ha-pbx", font=font, fill=(0x03, 0x6D, 0xA8, 255), anchor="lm")
    return img.resize((w, h), Image.LANCZOS)


def main() -> None:
    icon = draw_icon(128)
    icon.save(ROOT / "icon.png", optimize=True)
    big = draw_icon(256)
    draw_logo(big).save(ROOT / "logo.png", optimize=True)
    print("wrote icon.png and logo.png")


if __name__ == "__main__":
    main()
