"""Images of a corpus: read the bytes, name them as the app does, decode them safely in a thread pool.

Reading and decoding are separate steps so the Ray engine can read on the driver's node (no shared
file system needed) and decode on the workers; both engines call the same functions, so a bad
image gives the same error record whichever engine ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from mmre_demo.data.images import MAX_FILE_BYTES, image_id_of_bytes, load_image
from mmre_demo.data.schema import InputError
from mmre_demo.extract.posts import Item, Post, PostInput, PostResult

if TYPE_CHECKING:
    from PIL import Image


def read_image_bytes(post: Post) -> bytes | None:
    """The raw file of a post's image (None: no image). InputError: missing, not a file, too big."""
    if post.image_path is None:
        return None
    p = Path(post.image_path)
    if not p.is_file():
        raise InputError(f"Image {post.image!r}: no such file ({p}).")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(f"Image {post.image!r} is {size // 2**20} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    return p.read_bytes()


def decode(post: Post, raw: bytes | None) -> PostInput | PostResult:
    """Bytes -> RGB image (size and format checked by `load_image`); a bad image -> an error result."""
    if raw is None:
        return PostInput(post)
    try:
        img: Image.Image | None = load_image(raw, name=post.image)
    except InputError as exc:
        return PostResult(post, error=str(exc), stage="image")
    return PostInput(post, img, image_id_of_bytes(raw, post.image or ""))


def read_checked(post: Post) -> tuple[bytes | None, str | None]:
    """(bytes, None), or (None, reason) when the image cannot be read; both engines use this message."""
    try:
        return read_image_bytes(post), None
    except InputError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"Image {post.image!r} could not be read ({exc.strerror or exc})."


def decode_or_error(post: Post, raw: bytes | None, error: str | None) -> PostInput | PostResult:
    """`decode`, or the read error as an image-stage error result."""
    if error is not None:
        return PostResult(post, error=error, stage="image")
    return decode(post, raw)


def read_and_decode(post: Post) -> PostInput | PostResult:
    """Both steps for one post (the local engine's unit of work in the thread pool)."""
    return decode_or_error(post, *read_checked(post))


def submit_batch(pool: Executor, items: Sequence[Item]) -> list[Future | Item]:
    """Start decoding the posts of a batch; input problems pass through as they are."""
    return [pool.submit(read_and_decode, it) if isinstance(it, Post) else it for it in items]


def prefetched(batches: Iterable[list[Item]], workers: int = 2
               ) -> Iterator[list[PostInput | PostResult | Item]]:
    """Yield each batch with its images decoded, decoding the next batch while the caller predicts.

    Holds at most two batches of decoded images in memory.
    """
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="mmre-decode") as pool:
        pending: list[Future | Item] | None = None
        try:
            for batch in batches:
                nxt = submit_batch(pool, batch)
                if pending is not None:
                    yield _resolve(pending)
                pending = nxt
            if pending is not None:
                yield _resolve(pending)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _resolve(batch: list[Future | Item]) -> list[PostInput | PostResult | Item]:
    return [x.result() if isinstance(x, Future) else x for x in batch]
