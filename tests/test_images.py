import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmre_demo.data.images import load_image
from mmre_demo.data.schema import InputError


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def huge_png_header(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims width x height pixels (a decompression bomb's shape)."""
    data = png_bytes(Image.new("L", (4, 4)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    new = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return data[:8] + new + data[8 + 25 :]


def test_none_means_no_image():
    assert load_image(None) is None


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "LA", "I;16", "1", "F"])
def test_modes_become_rgb(mode: str):
    img = Image.new(mode, (20, 10))
    out = load_image(img)
    assert out.mode == "RGB" and out.size == (20, 10)


def test_sixteen_bit_png_keeps_contrast():
    arr = (np.arange(100, dtype=np.uint16).reshape(10, 10) * 600).astype(np.uint16)
    img = Image.fromarray(arr)
    out = np.asarray(load_image(png_bytes(img)))
    assert out.min() == 0 and out.max() == 255


def test_cmyk_jpeg_and_animated_gif(tmp_path: Path):
    cmyk = tmp_path / "c.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 0, 0)).save(cmyk)
    assert load_image(cmyk).mode == "RGB"
    gif = tmp_path / "a.gif"
    frames = [Image.new("P", (8, 8), i) for i in range(3)]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    assert load_image(gif).size == (8, 8)


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(InputError, match="too large|20000 x 20000"):
        load_image(huge_png_header(20000, 20000))


def test_corrupt_truncated_and_non_image(tmp_path: Path):
    with pytest.raises(InputError, match="not an image"):
        load_image(b"hello, I am a text file")
    data = png_bytes(Image.new("RGB", (64, 64), (255, 0, 0)))
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "missing.png")


def test_numpy_arrays():
    assert load_image(np.zeros((5, 6, 3), dtype=np.uint8)).size == (6, 5)
    with pytest.raises(InputError):
        load_image(np.zeros((0,), dtype=np.uint8))
