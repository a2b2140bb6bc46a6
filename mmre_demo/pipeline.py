"""`Pipeline.load()` / `Pipeline.predict(image, caption, entities=None)`: the API of the app and the CLI.

One request: check the inputs, find entities (or take the user's), form both directions of each
entity pair, encode the image once, classify all pairs of the caption in one batch (with and without
the image, from one text pass), keep one direction per pair (`decoding`), and turn attention into
evidence (image heatmaps, word weights). Probabilities are calibrated (`RelationModel.decide`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mmre_demo.data.images import ImageInput, load_image
from mmre_demo.data.labels import NONE_LABEL, constrain_to_types
from mmre_demo.data.paths import weights_dir
from mmre_demo.data.schema import Entity, InputError, check_caption, check_entities
from mmre_demo.decoding import MAX_PAIRS, best_relations, decode_directions, select_pairs
from mmre_demo.device import resolve_device
from mmre_demo.encoders.vision import imagenet_class_names
from mmre_demo.explain.evidence import pair_evidence
from mmre_demo.model.fusion import VisualTokens
from mmre_demo.model.inputs import PairFeatures, collate, encode_pair
from mmre_demo.model.relation import RelationModel, RelationOutput
from mmre_demo.prediction import PairPrediction, Prediction

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class EncodedImage:
    """One request's image, encoded once: visual tokens, recognised concepts, pooled feature."""

    visual: VisualTokens
    concepts: list[tuple[str, float]]
    feature: np.ndarray  # pooled vision feature (the knowledge graph's image feature)


@dataclass
class PairBatch:
    """The ordered entity pairs of one caption, encoded for the text model (row k = pairs[k])."""

    caption: str
    pairs: list[tuple[Entity, Entity]]
    features: list[PairFeatures]


@dataclass
class ClassifiedBatch:
    """The relation model's output for a batch of ordered pairs, as calibrated probabilities."""

    output: RelationOutput
    probs: np.ndarray  # (B, L) with the image (or text only when there is none)
    text_only_probs: np.ndarray | None  # (B, L) the same pairs without the image; None without an image


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
        self._none_id = model.config.labels.index(NONE_LABEL)
        self._concept_names = imagenet_class_names() if model.vision.has_concepts else []

    @classmethod
    def load(cls, weights: str | Path | None = None, device: str = "auto", with_ner: bool = True,
             type_constraint: bool = True, ner_weights: str | Path | None = None) -> Pipeline:
        """Load the relation model from `weights` (default: shipped `weights/relation`) and the tagger
        from `ner_weights` (default: `weights/ner` beside it, else the shipped tagger)."""
        root = Path(weights) if weights else weights_dir()
        rel_dir = root / "relation" if (root / "relation").is_dir() else root
        dev = resolve_device(device)
        model = RelationModel.from_pretrained(rel_dir, device=dev)
        tagger = None
        if ner_weights:
            ner_dir = Path(ner_weights)
        else:
            ner_dir = root / "ner" if (root / "ner").is_dir() else weights_dir() / "ner"
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
            return self._encode_image(img).feature

    def _coerce_entities(self, caption: str, entities: Sequence[Entity | dict]) -> list[Entity]:
        ents = [e if isinstance(e, Entity) else Entity.from_dict(e) for e in entities]
        return check_entities(caption, ents)

    # ---- one request ----------------------------------------------------------------------------
    def predict(self, image: ImageInput, caption: str, entities: Sequence[Entity | dict] | None = None,
                max_pairs: int = MAX_PAIRS, top_k: int = 3) -> Prediction:
        """Entities (detected unless given) -> both directions of each entity pair -> one decoded
        relation per pair, with calibrated probabilities, the image's measured influence and evidence."""
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
        pairs, cap_message = select_pairs(ents, max_pairs)
        if cap_message:
            messages.append(cap_message)
        if len(ents) < 2:
            messages.append(f"{len(ents)} entit{'y' if len(ents) == 1 else 'ies'} found in the caption: a relation "
                            "needs two. Add entities by hand to classify a pair.")
        elif not pairs:
            messages.append("Every entity has the same name: a relation needs two different entities.")
        with self._lock, torch.no_grad():
            encoded = None
            if img is not None:
                t = time.perf_counter()
                encoded = self._encode_image(img)
                timings["image_ms"] = (time.perf_counter() - t) * 1000
            decoded: list[PairPrediction] = []
            if pairs:
                t = time.perf_counter()
                decoded = decode_directions(self._classify(caption, ents, pairs, encoded, top_k))
                timings["relation_ms"] = (time.perf_counter() - t) * 1000
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        return Prediction(caption=caption, entities=ents, pairs=decoded, concepts=encoded.concepts if encoded else [],
                          has_image=img is not None, image_size=img.size if img is not None else None,
                          device=self.device, messages=messages, timings_ms=timings, entities_detected=detected,
                          image_feature=encoded.feature if encoded else None, threshold=self.model.config.threshold)

    def _encode_image(self, img: Image.Image) -> EncodedImage:
        model = self.model
        out = model.encode_images(model.vision.preprocess([img]).to(self.device))
        visual = model.visual_tokens(out)
        concepts = []
        if visual.concept_ids is not None:
            concepts = [(self._concept_names[int(i)], float(p))
                        for i, p in zip(visual.concept_ids[0], visual.concept_probs[0])]
        return EncodedImage(visual, concepts, out.pooled[0].float().cpu().numpy())

    def _run_model(self, feats: list[PairFeatures], image: EncodedImage | None) -> ClassifiedBatch:
        """All ordered pairs of one caption in one batch; with an image, also without it (same text pass)."""
        model = self.model
        batch = {k: v.to(self.device) for k, v in collate(feats, model.tokenizer.pad_token_id).items()}
        n = len(feats)
        has_image = torch.full((n,), 1.0 if image is not None else 0.0, device=self.device)
        out = model(**batch, visual=image.visual if image else None, image_index=torch.zeros(n, dtype=torch.long,
                    device=self.device), has_image=has_image, explain=True, with_text_only=True)
        text_only = None
        if out.text_only_logits is not None:
            text_only = model.probabilities(out.text_only_logits).float().cpu().numpy()
        return ClassifiedBatch(out, model.probabilities(out.logits).float().cpu().numpy(), text_only)

    def _classify(self, caption: str, ents: list[Entity], pairs: list[tuple[int, int]],
                  image: EncodedImage | None, top_k: int) -> list[PairPrediction]:
        tokenizer, max_length = self.model.tokenizer, self.model.config.max_length
        pair_entities = [(ents[i], ents[j]) for i, j in pairs]
        batch = PairBatch(caption, pair_entities,
                          [encode_pair(tokenizer, caption, h, t, max_length) for h, t in pair_entities])
        result = self._run_model(batch.features, image)
        visual = image.visual if image is not None else None
        return [self._pair_result(batch, k, result, visual, top_k) for k in range(len(batch.pairs))]

    def _pair_result(self, batch: PairBatch, k: int, result: ClassifiedBatch, visual: VisualTokens | None,
                     top_k: int) -> PairPrediction:
        """Row `k`: the pair's most probable relation (shown when it reaches the threshold), its calibrated
        probability, the alternatives (`None` among them), the image's influence and the evidence."""
        head, tail = batch.pairs[k]
        labels = self.model.config.labels
        p, p_text = result.probs[k], None if result.text_only_probs is None else result.text_only_probs[k]
        if self.type_constraint:
            p = constrain_to_types(p, labels, head.type, tail.type)
            if p_text is not None:
                p_text = constrain_to_types(p_text, labels, head.type, tail.type)
        raw_best = int(best_relations(result.probs[k : k + 1], self._none_id)[0][0])
        best = int(best_relations(p[None], self._none_id)[0][0])
        if p[best] <= 0:  # the types allow no relation at all
            best = self._none_id
        order = np.argsort(-p)
        ev = pair_evidence(result.output, k, batch.caption, batch.features[k].token_spans, visual)
        return PairPrediction(head, tail, labels[best], float(p[best]),
                              [(labels[int(i)], float(p[int(i)])) for i in order[: max(top_k, 1)]],
                              image_heatmap=ev.image_heatmap, head_heatmap=ev.head_heatmap,
                              tail_heatmap=ev.tail_heatmap, token_weights=ev.token_weights,
                              type_constrained=best != raw_best,
                              image_influence=None if p_text is None else float(p[best] - p_text[best]),
                              none_probability=float(p[self._none_id]))
