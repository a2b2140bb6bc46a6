"""What a review queue is built from: an `mmre extract` output folder (its posts classified again with
their stored entities, so every pair comes back with both directions, not only the relations
`triples.jsonl` kept) or the posts a browser tab classified."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mmre_demo.annotations.review import ReviewPost
from mmre_demo.annotations.store import AnnotationStore
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.extract.store import MANIFEST, POSTS
from mmre_demo.prediction import Predictor, PredictRequest

log = logging.getLogger(__name__)

BATCH = 16

ProgressFn = Callable[[int, int], None]


def read_extract_posts(posts_file: str | Path) -> list[dict[str, Any]]:
    """The classified posts of an extract folder's posts.jsonl (errors left out); a bad line says where."""
    path = Path(posts_file)
    if not path.is_file():
        raise InputError(f"{path.name}: no such file (an `mmre extract` output folder has a {POSTS}).")
    posts = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path.name}:{n}: not a JSON line ({exc.msg}).") from None
            if not isinstance(rec, dict) or (rec.get("status") == "ok" and "caption" not in rec):
                raise InputError(f"{path.name}:{n}: not a post record of `mmre extract`.")
            if rec.get("status") == "ok" and rec.get("caption"):
                posts.append(rec)
    if not posts:
        raise InputError(f"{path.name}: no classified posts in it.")
    return posts


def _image_file(rec: dict[str, Any], images: dict[str, Path], images_dir: Path | None) -> Path | None:
    name = rec.get("image")
    if not name:
        return None
    for candidate in (images.get(Path(name).name), images_dir / name if images_dir else None, Path(name)):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def extract_posts(folder_or_posts: str | Path, predictor: Predictor, store: AnnotationStore,
                  image_files: list[str | Path] | None = None, progress: ProgressFn | None = None,
                  ) -> Iterator[ReviewPost]:
    """Classify an extract folder's posts again (their entities as stored; the text read in each image
    kept from the folder) and yield them for the queue. Images are found among `image_files` (by name),
    in the folder's `images` setting or as written; each is copied into the annotation store."""
    path = Path(folder_or_posts)
    posts_file = path / POSTS if path.is_dir() else path
    images_dir = None
    manifest = posts_file.parent / MANIFEST
    if manifest.is_file():
        try:
            images_dir = Path(json.loads(manifest.read_text(encoding="utf-8")).get("images") or "") or None
        except (json.JSONDecodeError, OSError):
            log.warning("unreadable %s next to %s", MANIFEST, posts_file.name)
    named = {Path(p).name: Path(p) for p in (image_files or [])}
    records = read_extract_posts(posts_file)
    for start in range(0, len(records), BATCH):
        chunk = records[start:start + BATCH]
        files = [_image_file(r, named, images_dir) for r in chunk]
        requests = [PredictRequest(r["caption"], str(f) if f else None, [Entity.from_dict(e) for e in r["entities"]],
                                   read_text=False) for r, f in zip(chunk, files)]
        for rec, f, pred in zip(chunk, files, predictor.predict_many(requests)):
            if isinstance(pred, InputError):
                log.warning("post %s left out of the queue: %s", rec.get("id"), pred)
                continue
            yield ReviewPost(str(rec.get("id", rec.get("key"))), pred, store.store_image(f) if f else None,
                             str(f) if f else None, _lines_read(rec))
        if progress:
            progress(min(start + BATCH, len(records)), len(records))


def _lines_read(rec: dict[str, Any]) -> tuple[str, ...]:
    """The lines the extract read in the image (kept: reading again would cost ~0.2 s per image)."""
    it = rec.get("image_text") or {}
    return tuple(str(ln.get("text", "")) for ln in it.get("lines", []) if isinstance(ln, dict))
