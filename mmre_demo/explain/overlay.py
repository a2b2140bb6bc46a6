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


# ---- text read in the image ----------------------------------------------------------------------
READ_COLOUR = "#1f77b4"  # a line read in the image
GROUNDED_COLOUR = "#e377c2"  # a caption entity read in the image (the graph's "shows text of" colour)


def boxes_panel(image: Image.Image, boxes: Sequence[tuple[Sequence[float], str, str]],
                source_size: tuple[int, int], title: str | None = None, longest: int = PANEL) -> Image.Image:
    """The image with labelled boxes drawn on it: (box (x0, y0, x1, y1) in `source_size` pixels, label,
    colour). Used for the text read in the image, which is grounded evidence, unlike the heatmaps."""
    small = fit(image.convert("RGB"), longest)
    sx, sy = small.size[0] / max(1, source_size[0]), small.size[1] / max(1, source_size[1])
    title_h = 28 if title else 0
    out = Image.new("RGB", (small.size[0], small.size[1] + title_h), "white")
    out.paste(small, (0, title_h))
    d = ImageDraw.Draw(out)
    font = _font(13)
    for box, label, colour in boxes:
        x0, y0, x1, y1 = box[0] * sx, box[1] * sy + title_h, box[2] * sx, box[3] * sy + title_h
        d.rectangle((x0, y0, x1, y1), outline=colour, width=3 if colour == GROUNDED_COLOUR else 2)
        if label:
            text = label if len(label) <= 30 else label[:29] + "…"
            tx, ty = x0, max(title_h, y0 - 15)
            d.rectangle(d.textbbox((tx, ty), text, font=font), fill=colour)
            d.text((tx, ty), text, fill="white", font=font)
    if title:
        d.text((4, 4), title, fill="#111", font=_font(17))
    return out


def side_by_side(*images: Image.Image | None, gap: int = 8) -> Image.Image | None:
    """Images next to each other, top-aligned (None skipped; None when all are None)."""
    present = [im for im in images if im is not None]
    if not present:
        return None
    out = Image.new("RGB", (sum(im.size[0] for im in present) + gap * (len(present) - 1),
                            max(im.size[1] for im in present)), "white")
    x = 0
    for im in present:
        out.paste(im, (x, 0))
        x += im.size[0] + gap
    return out
