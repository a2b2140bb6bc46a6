"""Streaming readers of a corpus: JSON Lines, CSV, MNRE. Every record becomes a `Post` or an `InputProblem`.

Records are yielded one at a time (100k posts never sit in memory; only the set of ids seen, to
refuse duplicates). A bad record never stops the run: it becomes an `InputProblem` with the
reason. A file that cannot be read at all (unknown format, a CSV without a caption column) is an
`InputError` before anything runs.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmre_demo.data.schema import InputError, check_caption
from mmre_demo.extract.posts import InputProblem, Item, Post, problem_key

FORMATS = ("jsonl", "csv", "mnre")
_BY_EXTENSION = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "mnre"}
RAW_CHARS = 200  # how much of a bad line an error record keeps
CSV_FIELD_LIMIT = 1 << 20  # a 20,000-character caption is read (and then refused by check_caption)


def sniff_format(path: str | Path, fmt: str = "auto") -> str:
    """The input format from `fmt`, or from the file's extension when `fmt` is "auto"."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise InputError(f"unknown input format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    ext = Path(path).suffix.lower()
    if ext not in _BY_EXTENSION:
        raise InputError(f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; use .jsonl "
                         "(JSON Lines), .csv, or .txt (MNRE lines), or pass --format jsonl|csv|mnre")
    return _BY_EXTENSION[ext]


def resolve_image(image: str | None, images_dir: str | Path | None, base_dir: str | Path) -> str | None:
    """Absolute path of a post's image: absolute as given, else relative to `images_dir` (or the input's folder)."""
    if image is None or not str(image).strip():
        return None
    p = Path(str(image))
    if not p.is_absolute():
        p = Path(images_dir if images_dir is not None else base_dir) / p
    return os.path.abspath(p)


class _Claims:
    """Ids already used in this input (first appearance wins; later duplicates become problems)."""

    def __init__(self) -> None:
        self.first_line: dict[str, int] = {}

    def claim(self, pid: str, line: int) -> InputProblem | None:
        first = self.first_line.setdefault(pid, line)
        if first == line:
            return None
        return InputProblem(problem_key(line), line, f"duplicate id {pid!r} (first used on line {first}); "
                                                     "this record is skipped", id=pid)


def _id_text(value: Any) -> str | None:
    """Ids are kept as text; ints and non-empty strings are accepted, anything else is not an id."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def make_item(record: dict[str, Any], line: int, claims: _Claims, images_dir: str | Path | None,
              base_dir: str | Path, raw: str | None = None) -> Item:
    """One JSONL/CSV record -> Post or InputProblem (missing id, duplicate id, bad caption, bad image field)."""
    pid = _id_text(record.get("id"))
    if pid is None:
        return InputProblem(problem_key(line), line, f"no usable 'id' (got {record.get('id')!r}); ids are "
                                                     "integers or non-empty strings", raw=raw)
    dup = claims.claim(pid, line)
    if dup is not None:
        return dup
    caption, image = record.get("caption"), record.get("image")
    if not isinstance(caption, str):
        return InputProblem(pid, line, f"'caption' must be a string, got {type(caption).__name__}", id=pid,
                            stage="caption")
    try:
        check_caption(caption)
    except InputError as exc:
        return InputProblem(pid, line, str(exc), id=pid, stage="caption")
    if image is not None and not isinstance(image, str):
        return InputProblem(pid, line, f"'image' must be a path or null, got {type(image).__name__}", id=pid,
                            stage="image")
    image = image if image and image.strip() else None
    return Post(pid, line, caption, image, resolve_image(image, images_dir, base_dir))


def _read_jsonl(path: Path, images_dir: str | Path | None) -> Iterator[Item]:
    claims = _Claims()
    with path.open("rb") as fh:
        for line_no, raw_bytes in enumerate(fh, start=1):
            if not raw_bytes.strip():
                continue
            try:
                text = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield InputProblem(problem_key(line_no), line_no, f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            raw = text.strip()[:RAW_CHARS]
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield InputProblem(problem_key(line_no), line_no, f"malformed JSON ({exc.msg} at column {exc.colno})",
                                   raw=raw)
                continue
            if not isinstance(record, dict):
                yield InputProblem(problem_key(line_no), line_no,
                                   f"a line must be a JSON object, got {type(record).__name__}", raw=raw)
                continue
            yield make_item(record, line_no, claims, images_dir, path.parent, raw)


def _read_csv(path: Path, images_dir: str | Path | None) -> Iterator[Item]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    claims = _Claims()
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        header = _csv_header(path, reader)
        last = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = last + 1
                last = reader.line_num
                yield InputProblem(problem_key(line), line, f"unreadable CSV row ({exc})")
                continue
            line, last = last + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield InputProblem(problem_key(line), line, f"the row has {len(row)} fields, the header has "
                                                            f"{len(header)}", raw=",".join(row)[:RAW_CHARS])
                continue
            record = dict(zip(header, row))
            record["image"] = record.get("image") or None
            yield make_item(record, line, claims, images_dir, path.parent, ",".join(row)[:RAW_CHARS])


def _csv_header(path: Path, reader: Any) -> list[str]:
    """The header row, checked: an `id` and a `caption` column are required (else nothing can run)."""
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{path}: the CSV file is empty (expected a header: id,caption,image)") from None
    except csv.Error as exc:
        raise InputError(f"{path}: unreadable CSV header ({exc})") from None
    missing = [c for c in ("id", "caption") if c not in header]
    if missing:
        raise InputError(f"{path}: the CSV has no {' or '.join(repr(m) for m in missing)} column "
                         f"(columns: {', '.join(header) or 'none'}); expected id,caption[,image]")
    return header


def _read_mnre(path: Path, images_dir: str | Path | None) -> Iterator[Item]:
    """One post per unique (caption, image); id = line number of its first appearance.

    Without `images_dir` the posts are text only (MNRE's images are usually not at hand).
    """
    from mmre_demo.data.mnre import parse_mnre_line

    seen: set[tuple[str, str | None]] = set()
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                ex = parse_mnre_line(line, line_no)
            except ValueError as exc:
                yield InputProblem(problem_key(line_no), line_no, f"bad MNRE line: {exc}", raw=line.strip()[:RAW_CHARS])
                continue
            if (ex.caption, ex.img_id) in seen:
                continue
            seen.add((ex.caption, ex.img_id))
            image = ex.img_id if images_dir is not None else None
            yield Post(str(line_no), line_no, ex.caption, image, resolve_image(image, images_dir, path.parent))


_READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "mnre": _read_mnre}


def read_items(path: str | Path, fmt: str = "auto", images_dir: str | Path | None = None) -> Iterator[Item]:
    """Stream the input's records in order. Format errors of the whole file raise InputError at once."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such input file")
    if images_dir is not None and not Path(images_dir).is_dir():
        raise InputError(f"--images {images_dir}: no such folder")
    items = _READERS[sniff_format(p, fmt)](p, images_dir)
    first = next(items, None)  # runs the header checks now, not on first use
    return _chain(first, items)


def _chain(first: Item | None, rest: Iterator[Item]) -> Iterator[Item]:
    if first is not None:
        yield first
        yield from rest


def count_items(path: str | Path, fmt: str = "auto") -> int:
    """Number of records `read_items` will yield (one cheap pass; for the progress bar's total)."""
    return sum(1 for _ in read_items(path, fmt, None))
