"""The unit of a corpus job: one post read from the input, and what became of it.

A `Post` is a valid input record; an `InputProblem` is a record that cannot become a post (a
malformed line, a duplicate id, an empty caption). Both carry a `key`: the id that resume uses to
know the record is done. Plain data, no torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from PIL import Image

    from mmre_demo.prediction import Prediction


# where a post failed: decoding its image, or the model refusing it (an InputError)
PostStage = Literal["image", "model"]
# why an input record is no post: a bad line or duplicate id, an unusable caption, an unusable image reference
ProblemStage = Literal["input", "caption", "image"]


def problem_key(line: int) -> str:
    """Key of a record with no usable id of its own (bad line, duplicate id): its line number."""
    return f"line:{line}"


@dataclass(frozen=True)
class Post:
    """One post: `id` as written in the input (as text), `line` = 1-based line or record number."""

    id: str
    line: int
    caption: str
    image: str | None = None  # as written in the input
    image_path: str | None = None  # resolved against --images (None: text only)

    @property
    def key(self) -> str:
        return self.id

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "post", **asdict(self)}


@dataclass(frozen=True)
class InputProblem:
    """An input record that is not a post; becomes one `errors.jsonl` record."""

    key: str
    line: int
    reason: str
    id: str | None = None
    stage: ProblemStage = "input"
    raw: str | None = None  # the start of the offending line, to find it

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "problem", **asdict(self)}


Item = Post | InputProblem


def item_from_dict(d: dict[str, Any]) -> Item:
    """Inverse of `Post.to_dict` / `InputProblem.to_dict` (the Ray engine ships items as JSON)."""
    fields = {k: v for k, v in d.items() if k != "kind"}
    return Post(**fields) if d.get("kind") == "post" else InputProblem(**fields)


@dataclass
class PostInput:
    """A post ready for the model: its decoded image (or None) and the image's id in the graph."""

    post: Post
    image: Image.Image | None = None
    image_id: str | None = None


@dataclass
class PostResult:
    """What became of one post: a `Prediction`, or an error with the stage that failed."""

    post: Post
    prediction: Prediction | None = None
    error: str | None = None
    stage: PostStage = "model"
    image_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None
