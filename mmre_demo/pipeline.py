"""`Pipeline.load()` / `Pipeline.predict(image, caption, entities=None)`: the API of the app and the CLI.

One request: check the inputs, find entities (or take the user's), form the ordered pairs,
encode the image once, classify all pairs of the caption in one batch, and turn attention into
evidence (image heatmaps, word weights).
"""

from __future__ import annotations

import re
import threading
import time
from itertools import permutations
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from mmre_demo.data.images import ImageInput, load_image
from mmre_demo.data.labels import ENTITY_TYPES, NONE_LABEL, relation_types
from mmre_demo.data.paths import weights_dir
from mmre_demo.data.schema import Entity, InputError, check_caption, check_entities
from mmre_demo.device import resolve_device
from mmre_demo.encoders.vision import imagenet_class_names
from mmre_demo.model.inputs import collate, encode_pair
from mmre_demo.model.relation import RelationModel
from mmre_demo.prediction import PairPrediction, Prediction, TokenWeight

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MAX_PAIRS = 30
_WORD = re.compile(r"\S+")


def type_mask(labels: Sequence[str], head_type: str, tail_type: str) -> np.ndarray:
    """1 for labels whose implied (head, tail) types match the pair's types (None always allowed)."""
    out = np.zeros(len(labels), dtype=np.float32)
    for i, lab in enumerate(labels):
        types = relation_types(lab)
        out[i] = 1.0 if types is None or types == (head_type.upper(), tail_type.upper()) else 0.0
    return out


def select_pairs(entities: list[Entity], max_pairs: int) -> tuple[list[tuple[int, int]], str | None]:
    """All ordered pairs, or the `max_pairs` closest in the caption with a message saying so."""
    pairs = list(permutations(range(len(entities)), 2))
    if len(pairs) <= max_pairs:
        return pairs, None

    def gap(p: tuple[int, int]) -> int:
        a, b = entities[p[0]], entities[p[1]]
        return max(a.start, b.start) - min(a.end, b.end)

    kept = sorted(sorted(pairs, key=lambda p: (gap(p), p))[:max_pairs])
    return kept, (f"{len(entities)} entities give {len(pairs)} ordered pairs; only the {max_pairs} pairs "
                  "of entities closest to each other were classified (raise max_pairs for more).")


def word_weights(caption: str, token_spans: list[tuple[int, int]], weights: np.ndarray) -> list[TokenWeight]:
    """Sum word-piece attention into the caption's whitespace words; normalise to 1."""
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(caption)]
    acc = np.zeros(len(words))
    starts = np.array([w[1] for w in words])
    for (s, e), w in zip(token_spans, weights):
        if s < 0 or not len(words):
            continue
        k = int(np.searchsorted(starts, s, side="right") - 1)
        if k >= 0:
            acc[k] += float(w)
    total = acc.sum()
    if total > 0:
        acc = acc / total
    return [TokenWeight(t, s, e, float(a)) for (t, s, e), a in zip(words, acc)]


def _heatmap(weights: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """Attention over the grid cells, rescaled to [0, 1] (relative: 1 = where the entity looked most)."""
    m = weights.detach().float().cpu().numpy().reshape(hw)
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


class Pipeline:
    """Relation model (+ NER tagger when its weights exist) on one device. Thread-safe `predict`.

    With `type_constraint`, a pair whose two entity types are known (PER/ORG/LOC/MISC, from the
    tagger or the user) only gets relations whose name allows those types (`/per/org/*` needs a
    person and an organisation); unknown types ("") are not constrained.
    """

    def __init__(self, model: RelationModel, tagger: Any | None, device: str, type_constraint: bool = True):
        self.model, self.tagger, self.device = model, tagger, device
        self.type_constraint = type_constraint
        self._lock = threading.Lock()
        self._concept_names = imagenet_class_names() if model.vision.has_concepts else []

    @classmethod
    def load(cls, weights: str | Path | None = None, device: str = "auto", with_ner: bool = True,
             type_constraint: bool = True) -> "Pipeline":
        """Load `weights/relation` (and `weights/ner` if present) from `weights` (default: shipped)."""
        root = Path(weights) if weights else weights_dir()
        rel_dir = root / "relation" if (root / "relation").is_dir() else root
        dev = resolve_device(device)
        model = RelationModel.from_pretrained(rel_dir, device=dev)
        tagger = None
        ner_dir = root / "ner"
        if with_ner and ner_dir.is_dir():
            from mmre_demo.model.ner import NerTagger

            tagger = NerTagger.from_pretrained(ner_dir, device=dev)
        return cls(model, tagger, dev, type_constraint)

    # ---- parts --------------------------------------------------------------------------------
    def detect_entities(self, caption: str) -> list[Entity]:
        check_caption(caption)
        if self.tagger is None:
            raise InputError("No entity tagger is installed (weights/ner missing): give the entities yourself.")
        with self._lock:
            return list(self.tagger.tag(caption))

    def image_feature(self, image: ImageInput) -> np.ndarray | None:
        """Pooled vision feature (e.g. 1280-d) of an image, for knowledge-graph entity features."""
        img = load_image(image)
        if img is None:
            return None
        with self._lock, torch.no_grad():
            return self._encode_image(img)[3][0].float().cpu().numpy()

    def _encode_image(self, img: Image.Image) -> tuple:
        """Frozen vision backbone on one image: (grid, grid_hw, ImageNet logits, pooled), as `encode_images`."""
        return self.model.encode_images(self.model.vision.preprocess([img]).to(self.device))

    def _coerce_entities(self, caption: str, entities: Sequence[Entity | dict]) -> list[Entity]:
        ents = [e if isinstance(e, Entity) else Entity.from_dict(e) for e in entities]
        return check_entities(caption, ents)

    # ---- one request ----------------------------------------------------------------------------
    def predict(self, image: ImageInput, caption: str, entities: Sequence[Entity | dict] | None = None,
                max_pairs: int = DEFAULT_MAX_PAIRS, top_k: int = 3) -> Prediction:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        messages: list[str] = []
        caption = check_caption(caption)
        img = load_image(image)
        if img is None:
            messages.append("No image: the relations are predicted from the caption alone.")
        detected = entities is None
        if detected:
            ents = self.detect_entities(caption)
            timings["ner_ms"] = (time.perf_counter() - t0) * 1000
        else:
            ents = self._coerce_entities(caption, entities)
        with self._lock, torch.no_grad():
            return self._predict_locked(img, caption, ents, detected, max_pairs, top_k, messages, timings, t0)

    def _predict_locked(self, img, caption, ents, detected, max_pairs, top_k, messages, timings, t0) -> Prediction:
        model = self.model
        concepts: list[tuple[str, float]] = []
        visual, image_feature = None, None
        if img is not None:
            t = time.perf_counter()
            grid, hw, logits, pooled = self._encode_image(img)
            image_feature = pooled[0].float().cpu().numpy()
            visual = model.visual_tokens(grid, hw, logits)
            if visual.concept_ids is not None:
                concepts = [(self._concept_names[int(i)], float(p))
                            for i, p in zip(visual.concept_ids[0], visual.concept_probs[0])]
            timings["image_ms"] = (time.perf_counter() - t) * 1000
        pairs, cap_message = select_pairs(ents, max_pairs)
        if cap_message:
            messages.append(cap_message)
        if len(ents) < 2:
            messages.append(f"{len(ents)} entit{'y' if len(ents) == 1 else 'ies'} found in the caption: a relation "
                            "needs two. Add entities by hand to classify a pair.")
        results: list[PairPrediction] = []
        if pairs:
            t = time.perf_counter()
            feats = [encode_pair(model.tokenizer, caption, ents[i], ents[j], model.config.max_length) for i, j in pairs]
            batch = {k: v.to(self.device) for k, v in collate(feats, model.tokenizer.pad_token_id).items()}
            n = len(pairs)
            has_image = torch.full((n,), 1.0 if visual is not None else 0.0, device=self.device)
            image_index = torch.zeros(n, dtype=torch.long, device=self.device)
            out = model(**batch, visual=visual, image_index=image_index, has_image=has_image, explain=True)
            probs = model.decide(out.logits).float().cpu().numpy()
            timings["relation_ms"] = (time.perf_counter() - t) * 1000
            for k, (i, j) in enumerate(pairs):
                results.append(self._pair_result(caption, ents[i], ents[j], probs[k], feats[k], out, k, visual, top_k))
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        return Prediction(caption, ents, results, concepts, img is not None, img.size if img is not None else None,
                          self.device, messages, timings, detected, image_feature)

    def _pair_result(self, caption, head, tail, p, feats, out, k, visual, top_k) -> PairPrediction:
        labels = self.model.config.labels
        constrained = False
        if self.type_constraint and head.type in ENTITY_TYPES and tail.type in ENTITY_TYPES:
            masked = p * type_mask(labels, head.type, tail.type)
            if masked.sum() > 0:
                constrained = int(masked.argmax()) != int(p.argmax())
                p = masked / masked.sum()
        order = np.argsort(-p)
        best = int(order[0])
        pair = PairPrediction(head, tail, labels[best], float(p[best]),
                              [(labels[int(i)], float(p[int(i)])) for i in order[: max(top_k, 1)]],
                              visual_gate=float(out.visual_share[k]), type_constrained=constrained)
        if out.token_attention is not None:
            pair.token_weights = word_weights(caption, feats.token_spans, out.token_attention[k].cpu().numpy())
        if visual is not None and out.entity_attention is not None:
            n, hw = visual.n_spatial, visual.grid_hw
            pair.head_heatmap = _heatmap(out.entity_attention[k, 0, :n], hw)
            pair.tail_heatmap = _heatmap(out.entity_attention[k, 1, :n], hw)
            pair.image_heatmap = _heatmap(out.entity_attention[k, :, :n].mean(0), hw)
        return pair
