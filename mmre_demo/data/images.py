"""Safe image loading: every odd file a user can upload becomes an RGB image or a clear InputError."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mmre_demo.data.schema import InputError

MAX_PIXELS = 40_000_000  # 40 MP: larger uploads are refused before decoding (decompression bombs)
MAX_FILE_BYTES = 50 * 1024 * 1024

ImageInput = str | Path | bytes | Image.Image | np.ndarray | None


def _to_rgb(img: Image.Image) -> Image.Image:
    """First frame, EXIF orientation applied, 16-bit / CMYK / palette / alpha flattened to RGB."""
    if getattr(img, "is_animated", False):
        img.seek(0)
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8), mode="L")
    elif img.mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def _open_checked(source: str | Path | bytes, name: str) -> Image.Image:
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.is_file():
            raise InputError(f"Image {name!r}: no such file.")
        if p.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"Image {name!r} is {p.stat().st_size // 2**20} MB; the limit is 50 MB.")
        fh: io.BytesIO | Path = p
    else:
        if len(source) > MAX_FILE_BYTES:
            raise InputError(f"Image {name!r} is over 50 MB.")
        fh = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fh)
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise InputError(
                    f"Image {name!r} is {w} x {h} pixels ({w * h / 1e6:.0f} MP); the limit is "
                    f"{MAX_PIXELS / 1e6:.0f} MP. Resize it and upload again."
                )
            img.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"Image {name!r} is too large to decode safely ({exc}); the limit is {MAX_PIXELS / 1e6:.0f} MP."
        ) from None
    except UnidentifiedImageError:
        raise InputError(f"{name!r} is not an image PIL can read (unknown or corrupt format).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"Image {name!r} is corrupt or truncated ({exc}).") from None
    return img


def load_image(source: ImageInput, name: str | None = None) -> Image.Image | None:
    """Return an RGB PIL image (or None for no image). Raises InputError with the reason otherwise."""
    if source is None:
        return None
    label = name or (str(source) if isinstance(source, (str, Path)) else "upload")
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim not in (2, 3) or arr.size == 0:
            raise InputError(f"Image array has shape {source.shape}; expected H x W or H x W x C.")
        img = Image.fromarray(arr)
    elif isinstance(source, Image.Image):
        w, h = source.size
        if w * h > MAX_PIXELS:
            raise InputError(f"Image is {w} x {h} pixels; the limit is {MAX_PIXELS / 1e6:.0f} MP.")
        img = source
    elif isinstance(source, (str, Path, bytes, bytearray)):
        img = _open_checked(bytes(source) if isinstance(source, bytearray) else source, label)
    else:
        raise InputError(f"Unsupported image input of type {type(source).__name__}.")
    try:
        rgb = _to_rgb(img)
    except (OSError, ValueError) as exc:
        raise InputError(f"Image {label!r} could not be converted to RGB ({exc}).") from None
    if min(rgb.size) < 2:
        raise InputError(f"Image {label!r} is {rgb.size[0]} x {rgb.size[1]} pixels; too small to read.")
    return rgb


def image_id(path: str | Path) -> str:
    """Content-addressed id of an image file: 16 hex digits of its SHA-1 + its suffix (`3f2a…e1.jpg`).

    The one id of an upload: the knowledge graph's image node and the annotation store both use it,
    so the same picture is the same image everywhere, whatever its file name.
    """
    p = Path(path)
    return image_id_of_bytes(p.read_bytes(), p.name)


def image_id_of_bytes(raw: bytes, name: str) -> str:
    """`image_id` of an image already read (`name`: its file name, for the suffix)."""
    return f"{hashlib.sha1(raw).hexdigest()[:16]}{Path(name).suffix.lower() or '.img'}"
