"""The output records of one post, built from `Prediction.to_dict()` / `PairPrediction.to_dict()`.

Fields are not listed by hand: whatever the prediction types serialise (a new evidence field, an
image-influence score) flows into `posts.jsonl` / `triples.jsonl`. Only the run-dependent fields
(timings, device) are dropped so that two runs of the same job write the same bytes.
Both engines call these functions, so their files are identical.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mmre_demo.data.schema import plain_value
from mmre_demo.extract.posts import InputProblem, PostResult
from mmre_demo.extract.predictor import ModelInfo

if TYPE_CHECKING:
    from mmre_demo.prediction import Prediction

RUN_DEPENDENT = ("pairs", "timings_ms", "device")  # pairs go to triples.jsonl


def _json_default(value: Any) -> Any:
    """`json.dumps`'s hook for what is not JSON already: numpy values a predictor may leave (`plain_value`)."""
    plain = plain_value(value)
    if plain is value:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return plain


def dumps(record: Any) -> str:
    """The one JSON encoding of every output line (both engines): UTF-8 text, numpy values as numbers."""
    return json.dumps(record, ensure_ascii=False, default=_json_default)


@dataclass
class Records:
    """Everything one input record adds to the output folder; `key` marks it done."""

    key: str
    post: dict[str, Any]
    triples: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def to_json(self) -> str:
        return dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Records:
        return cls(**json.loads(text))


def triple_record(post_id: str, pair_dict: dict[str, Any], info: ModelInfo) -> dict[str, Any]:
    """A pair's `to_dict()` with `label` named `relation`, the post id first and the model last."""
    out: dict[str, Any] = {"post_id": post_id}
    for k, v in pair_dict.items():
        out["relation" if k == "label" else k] = v
    out["model"], out["model_version"] = info.name, info.version
    return out


def records_for_result(result: PostResult, info: ModelInfo) -> Records:
    post = result.post
    head = {"key": post.key, "id": post.id, "line": post.line}
    if result.prediction is None:
        reason = result.error or "unknown error"
        error = {**head, "stage": result.stage, "reason": reason, "image": post.image}
        return Records(post.key, {**head, "status": "error", "stage": result.stage, "reason": reason}, [], error)
    pred = result.prediction
    body = {k: v for k, v in pred.to_dict().items() if k not in RUN_DEPENDENT}
    relations = pred.relations()  # the relations as the product shows them (the model's threshold)
    record = {**head, "status": "ok", "image": post.image, "image_id": result.image_id, **body,
              "n_pairs": len(pred.pairs), "n_relations": len(relations)}
    return Records(post.key, record, [triple_record(post.id, p.to_dict(), info) for p in relations])


def records_for_problem(problem: InputProblem) -> Records:
    head = {"key": problem.key, "id": problem.id, "line": problem.line}
    error = {**head, "stage": problem.stage, "reason": problem.reason}
    if problem.raw is not None:
        error["raw"] = problem.raw
    return Records(problem.key, {**head, "status": "error", "stage": problem.stage, "reason": problem.reason},
                   [], error)


def prediction_from_records(post: dict[str, Any], triples: list[dict[str, Any]]) -> Prediction:
    """The `Prediction` a post's records stand for (`Prediction.from_dict`), for `graph.add_prediction`: its
    pairs are the recorded triples, which are the relations already (at the model's threshold), so all of
    them enter the graph (threshold 0)."""
    from mmre_demo.prediction import Prediction

    pairs = [{("label" if k == "relation" else k): v for k, v in t.items()} for t in triples]
    return Prediction.from_dict({**post, "pairs": pairs, "threshold": 0.0})
