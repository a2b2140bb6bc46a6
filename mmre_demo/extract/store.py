"""The output folder of a corpus job: append per finished batch, fsync, resume without duplicates.

Layout (one JSON object per line, UTF-8):

* `triples.jsonl` — one record per relation pair (written first in a batch);
* `errors.jsonl`  — one record per input record that failed (written second);
* `posts.jsonl`   — one record per input record, ok or error (written last: **the commit log**);
* `manifest.json` — format, model name + version, output-affecting settings (written once).

A record is done when its `posts.jsonl` line is complete. After a crash (SIGKILL, power loss after
the last fsync) the files may end in a torn line, and `triples.jsonl` / `errors.jsonl` may hold
records of the batch whose posts were not committed. `--resume` truncates torn lines, drops those
uncommitted records, and skips the done keys: the finished folder equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mmre_demo.data.schema import InputError
from mmre_demo.extract.predictor import ModelInfo
from mmre_demo.extract.records import Records, dumps

log = logging.getLogger(__name__)

FORMAT = "mmre_demo.extract/1"
MANIFEST = "manifest.json"
POSTS, TRIPLES, ERRORS = "posts.jsonl", "triples.jsonl", "errors.jsonl"
COMMIT_ORDER = (TRIPLES, ERRORS, POSTS)  # posts.jsonl last: its line is the commit


@dataclass
class Counts:
    posts: int = 0
    ok: int = 0
    errors: int = 0
    triples: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"posts": self.posts, "posts_ok": self.ok, "posts_error": self.errors, "triples": self.triples}


def _line(record: dict[str, Any]) -> bytes:
    return (dumps(record) + "\n").encode("utf-8")


def _file_mode() -> int:
    """The mode `open()` gives a new file under this process's umask (mkstemp's files are 0600): every
    file of an output folder gets it, the appended `.jsonl` files and the atomically replaced ones."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a whole file so that a crash leaves the old file or the new one, never half of one."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_writable(folder: Path) -> None:
    """Create `folder` and prove we can write in it; a clear InputError otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"--out {folder}: cannot create or write this folder ({exc.strerror or exc}); "
                         "choose a folder you can write to") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(line number, byte offset after the line, record) of a JSONL file; stops at a torn last line."""
    if not path.is_file():
        return
    with path.open("rb") as fh:
        offset = 0
        for n, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return  # torn: not committed
            offset += len(raw)
            try:
                yield n, offset, json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(f"{path}: line {n} is not valid JSON; the folder was edited or damaged "
                                 "(resume cannot trust it: start a new --out folder)") from None


class OutputStore:
    """Open with `OutputStore.open(...)`; `commit(records)` per finished batch; `close()` at the end."""

    def __init__(self, folder: Path, manifest: dict[str, Any], done: set[str], counts: Counts):
        self.folder, self.manifest, self.counts = folder, manifest, counts
        self._done = done
        self.resumed_from = counts.posts
        self._fh: dict[str, BinaryIO] = {name: (folder / name).open("ab") for name in COMMIT_ORDER}

    # ---- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path, model: ModelInfo, settings: dict[str, Any], resume: bool = False,
             extra: dict[str, Any] | None = None) -> OutputStore:
        """A fresh folder, or (with `resume`) the same job's folder repaired; refuses anything else."""
        folder = Path(folder)
        ensure_writable(folder)
        mpath = folder / MANIFEST
        if not mpath.is_file():
            leftovers = [n for n in COMMIT_ORDER if (folder / n).is_file() and (folder / n).stat().st_size]
            if leftovers:
                raise InputError(f"--out {folder}: holds {', '.join(leftovers)} but no {MANIFEST}; it is not a "
                                 "folder this command can continue. Choose another --out folder.")
            if resume:
                log.info("%s: nothing to resume, starting a new extraction", folder)
            manifest = {"format": FORMAT, "model": {"name": model.name, "version": model.version,
                                                    "threshold": model.threshold},
                        "settings": settings, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra or {})}
            atomic_write(mpath, json.dumps(manifest, indent=1, ensure_ascii=False))
            return cls(folder, manifest, set(), Counts())
        manifest = cls._read_manifest(mpath)
        if not resume:
            n = sum(1 for _ in iter_jsonl(folder / POSTS))
            raise InputError(f"--out {folder}: already holds an extraction ({n} posts, model "
                             f"{manifest['model'].get('version')}); pass --resume to continue it, or choose "
                             "another --out folder (nothing was overwritten)")
        cls._check_same_job(folder, manifest, model, settings)
        done, counts = repair(folder)
        log.info("%s: resuming after %d posts (%d triples)", folder, counts.posts, counts.triples)
        return cls(folder, manifest, done, counts)

    @staticmethod
    def _read_manifest(path: Path) -> dict[str, Any]:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: unreadable manifest ({exc}); choose another --out folder") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise InputError(f"{path}: not a manifest of `mmre extract` (format {FORMAT!r} expected)")
        return manifest

    @staticmethod
    def _check_same_job(folder: Path, manifest: dict[str, Any], model: ModelInfo, settings: dict[str, Any]) -> None:
        """Resume only the same model and settings: mixing two models' triples would be silent garbage."""
        old = manifest.get("model", {})
        if old.get("version") != model.version:
            raise InputError(
                f"--resume: {folder} was written by model {old.get('name')!r} version {old.get('version')}, but "
                f"this run loads version {model.version} ({model.name}). Resuming would mix two models' triples: "
                "use a new --out folder, or the weights that wrote this one (--weights).")
        old_settings = manifest.get("settings", {})
        diff = sorted(k for k in set(old_settings) | set(settings) if old_settings.get(k) != settings.get(k))
        if diff:
            was = ", ".join(f"{k}={old_settings.get(k)!r}" for k in diff)
            now = ", ".join(f"{k}={settings.get(k)!r}" for k in diff)
            raise InputError(f"--resume: {folder} was written with {was}; this run has {now}. Use the same "
                             "settings or a new --out folder.")

    # ---- writing ------------------------------------------------------------------------------
    def is_done(self, key: str) -> bool:
        return key in self._done

    def commit(self, records: Sequence[Records]) -> int:
        """Append one finished batch (triples, errors, then posts), flushed and fsynced. Returns posts added."""
        fresh, keys = [], set()
        for r in records:
            if r.key in self._done or r.key in keys:
                log.warning("record %r is already written; not writing it twice", r.key)
                continue
            keys.add(r.key)
            fresh.append(r)
        if not fresh:
            return 0
        chunks = {TRIPLES: b"".join(_line(t) for r in fresh for t in r.triples),
                  ERRORS: b"".join(_line(r.error) for r in fresh if r.error is not None),
                  POSTS: b"".join(_line(r.post) for r in fresh)}
        try:
            for name in COMMIT_ORDER:
                if chunks[name]:
                    fh = self._fh[name]
                    fh.write(chunks[name])
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise InputError(f"writing {self.folder} failed ({exc.strerror or exc}); everything committed before "
                             "is kept: free the space / fix the folder and run again with --resume") from None
        self._done |= keys
        for r in fresh:
            self.counts.posts += 1
            self.counts.triples += len(r.triples)
            if r.error is not None:
                self.counts.errors += 1
            else:
                self.counts.ok += 1
        return len(fresh)

    def close(self) -> None:
        for fh in self._fh.values():
            fh.close()

    def __enter__(self) -> OutputStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- repair on resume ---------------------------------------------------------------------------

def _truncate(path: Path, size: int) -> None:
    with path.open("rb+") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def _keep_only(path: Path, keep: Any, key_field: str) -> int:
    """Drop records whose key is not committed (and a torn last line); returns how many were dropped."""
    if not path.is_file():
        path.touch()
        return 0
    size = path.stat().st_size
    decisions = [bool(keep(rec.get(key_field))) for _, _, rec in iter_jsonl(path)]  # keep() runs once per line
    good_end, dropped, in_prefix, scattered = 0, 0, True, False
    for (_, end, _), kept in zip(iter_jsonl(path), decisions):
        if kept and in_prefix:
            good_end = end
        elif kept:
            scattered = True  # a kept record after a dropped one: not a plain tail, rewrite the file
        else:
            dropped += 1
            in_prefix = False
    if not scattered:
        if good_end != size:
            _truncate(path, good_end)
        return dropped
    with path.open("rb") as fh:
        kept_lines = [raw for raw, kept in zip(fh, decisions) if kept]
    atomic_write(path, b"".join(kept_lines))
    return dropped


def repair(folder: Path) -> tuple[set[str], Counts]:
    """Make the folder consistent with its commit log; return the done keys and the counts."""
    posts = folder / POSTS
    done: set[str] = set()
    counts = Counts()
    duplicate = False
    for _, _, rec in iter_jsonl(posts):
        key = rec.get("key")
        if key in done:
            duplicate = True
            continue
        done.add(key)
        counts.posts += 1
        counts.ok += rec.get("status") == "ok"
    seen: set[str] = set()

    def first_time(key: str) -> bool:
        if key in seen:
            return False
        seen.add(key)
        return True

    _keep_only(posts, first_time, "key") if duplicate else _keep_only(posts, lambda k: True, "key")
    dropped_t = _keep_only(folder / TRIPLES, lambda k: k in done, "post_id")
    dropped_e = _keep_only(folder / ERRORS, lambda k: k in done, "key")
    counts.errors = counts.posts - counts.ok
    counts.triples = sum(1 for _ in iter_jsonl(folder / TRIPLES))
    if dropped_t or dropped_e:
        log.info("resume: dropped %d triples and %d error records of a batch that was not committed",
                 dropped_t, dropped_e)
    return done, counts
