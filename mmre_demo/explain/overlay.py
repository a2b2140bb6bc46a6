"""Overlay an attention grid (e.g. 7 x 7 in [0, 1]) on the image, with a colour bar and panel titles.

PIL + a matplotlib colormap only (no pyplot figure: fast and thread-safe)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

CMAP = "inferno"
PANEL = 360  # longest side of one panel, pixels


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def fit(image: Image.Image, longest: int = PANEL) -> Image.Image:
    w, h = image.size
    s = longest / max(w, h)
    return image.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)


def overlay(image: Image.Image, grid: np.ndarray | None, alpha: float = 0.55, cmap: str = CMAP) -> Image.Image:
    """The image with `grid` upsampled (bicubic) and colour-mapped on top; `grid` None -> the image."""
    base = image.convert("RGB")
    if grid is None:
        return base
    g = np.clip(np.nan_to_num(np.asarray(grid, dtype=np.float32)), 0.0, 1.0)
    up = Image.fromarray(g, mode="F").resize(base.size, Image.BICUBIC)
    arr = np.clip(np.asarray(up), 0.0, 1.0)
    rgba = (colormaps[cmap](arr) * 255).astype(np.uint8)
    heat = Image.fromarray(rgba[..., :3], mode="RGB")
    # stronger overlay where attention is high so the photo stays readable elsewhere
    a = (alpha * (0.35 + 0.65 * arr) * 255).astype(np.uint8)
    return Image.composite(heat, base, Image.fromarray(a, mode="L"))


def colour_bar(height: int, label: str = "weight", cmap: str = CMAP) -> Image.Image:
    """A vertical colour scale from 0 to 1 with ticks, `label` written above it (keep it short: 62 px wide)."""
    bar_w, pad = 16, 6
    font = _font(13)
    width = bar_w + 46
    img = Image.new("RGB", (width, height), "white")
    top, bottom = 22, height - 22
    ramp = np.linspace(1.0, 0.0, max(bottom - top, 2))[:, None].repeat(bar_w, axis=1)
    strip = Image.fromarray((colormaps[cmap](ramp)[..., :3] * 255).astype(np.uint8))
    img.paste(strip, (pad, top))
    d = ImageDraw.Draw(img)
    d.rectangle([pad, top, pad + bar_w - 1, bottom - 1], outline="#333")
    for v in (1.0, 0.5, 0.0):
        y = top + (1 - v) * (bottom - top - 1)
        d.line([pad + bar_w, y, pad + bar_w + 4, y], fill="#333")
        d.text((pad + bar_w + 6, y - 7), f"{v:.1f}", fill="#111", font=font)
    d.text((2, 4), label, fill="#111", font=font)
    return img


def evidence_panels(image: Image.Image, panels: Sequence[tuple[str, np.ndarray | None]],
                    caption: str | None = None) -> Image.Image:
    """Side-by-side overlays (title, grid) with one colour bar at the right and an optional footer."""
    small = fit(image.convert("RGB"))
    title_h, foot_h = 28, 22 if caption else 0
    w, h = small.size
    bar = colour_bar(h + title_h)
    out = Image.new("RGB", (len(panels) * (w + 8) + bar.size[0], h + title_h + foot_h), "white")
    d = ImageDraw.Draw(out)
    font = _font(17)
    for i, (title, grid) in enumerate(panels):
        x = i * (w + 8)
        out.paste(overlay(small, grid), (x, title_h))
        text = title if len(title) <= 34 else title[:33] + "…"
        d.text((x + 4, 4), text, fill="#111", font=font)
    out.paste(bar, (len(panels) * (w + 8), 0))
    if caption:
        d.text((4, h + title_h + 4), caption[:140], fill="#444", font=_font(12))
    return out
