import zipfile
from pathlib import Path

import pytest

from mmre_demo.encoders.mpnet import join_and_extract


def test_split_zip_pieces_are_joined_in_order(tmp_path: Path):
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        zf.writestr("all-mpnet-base-v2/model.safetensors", b"x" * 5000)
    data = archive.read_bytes()
    pieces = []
    for i, k in enumerate(range(0, len(data), 1500), start=1):
        p = tmp_path / f"piece.zip.{i:03d}"
        p.write_bytes(data[k : k + 1500])
        pieces.append(p)
    folder = join_and_extract(pieces, tmp_path / "out")
    assert (folder / "config.json").read_text() == '{"model_type": "mpnet"}'
    with pytest.raises((zipfile.BadZipFile, OSError)):
        join_and_extract(list(reversed(pieces)), tmp_path / "out2")
