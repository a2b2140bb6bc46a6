"""`Pipeline.load()` / `Pipeline.predict(image, caption, entities=None)`: the API of the app and the CLI.

One request: check the inputs, find entities (or take the user's), form both directions of each
entity pair, encode the image once, classify all pairs of the caption in one batch (with and without
the image, from one text pass), keep one direction per pair (`decoding`), and turn attention into
evidence (image heatmaps, word weights). Probabilities are calibrated (`RelationModel.probabilities`).
`predict_many` does the same for many posts with shared batches (corpus extraction).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mmre_demo.data.images import ImageInput, load_image
from mmre_demo.data.labels import NONE_LABEL, constrain_to_types
from mmre_demo.data.paths import relation_weights_dir, weights_dir
from mmre_demo.data.schema import Entity, InputError, check_caption, check_entities
from mmre_demo.decoding import MAX_PAIRS, best_relations, decode_directions, select_pairs
from mmre_demo.device import resolve_device
from mmre_demo.encoders.ocr import ImageText, TextReader
from mmre_demo.encoders.vision import imagenet_class_names
from mmre_demo.explain.evidence import pair_evidence
from mmre_demo.grounding import Grounding, ImageEntity, also_in_image, ground_entities
from mmre_demo.model.batching import CaptionPairs, batches, caption_items, run_batch
from mmre_demo.model.fusion import VisualTokens
from mmre_demo.model.relation import RelationModel, RelationOutput, load_relation_model
from mmre_demo.prediction import PairPrediction, Prediction

if TYPE_CHECKING:
    from PIL import Image

# encoder passes per forward pass (passes of similar length together): measured on MNRE val captions,
# 2 threads, with one pass per pair: 32 beat 128 (large batches of a 6-layer model gain nothing on 2
# cores, padding costs)
BATCH_PASSES = 32


@dataclass
class EncodedImage:
    """One request's image, encoded once: visual tokens, recognised concepts, pooled feature."""

    visual: VisualTokens
    concepts: list[tuple[str, float]]
    feature: np.ndarray  # pooled vision feature (the knowledge graph's image feature)


@dataclass
class _Post:
    """One post on its way through `Pipeline`: its checked inputs, entities, pairs and notes."""

    caption: str
    image: Image.Image | None
    detected: bool
    entities: list[Entity] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    text_read: Future[ImageText] | None = None  # OCR running beside the models


def _visual_row(visual: VisualTokens, row: int) -> VisualTokens:
    """One image's visual tokens out of a batch (batch dimension kept)."""
    pick = slice(row, row + 1)
    return VisualTokens(visual.tokens[pick], visual.mask[pick], visual.n_spatial, visual.grid_hw,
                        None if visual.concept_ids is None else visual.concept_ids[pick],
                        None if visual.concept_probs is None else visual.concept_probs[pick])


def _stack_visual(parts: list[VisualTokens]) -> VisualTokens:
    """Several images' visual tokens as one batch (same backbone: same shapes)."""
    first = parts[0]
    ids = None if first.concept_ids is None else torch.cat([p.concept_ids for p in parts])
    probs = None if first.concept_probs is None else torch.cat([p.concept_probs for p in parts])
    return VisualTokens(torch.cat([p.tokens for p in parts]), torch.cat([p.mask for p in parts]), first.n_spatial,
                        first.grid_hw, ids, probs)


class _RequestImages:
    """The visual tokens of the images of one `predict_many` call, by key (a `batching.VisualSource`)."""

    def __init__(self, visual: dict[str, VisualTokens]):
        self.visual = visual

    def visual_tokens(self, keys: list[str], device: torch.device) -> VisualTokens:
        return _stack_visual([self.visual[k] for k in keys])


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

    def __init__(self, model: RelationModel, tagger: Any | None, device: str, type_constraint: bool = True,
                 text_reader: TextReader | None = None):
        self.model, self.tagger, self.device = model, tagger, device
        self.type_constraint = type_constraint
        self.text_reader = text_reader  # reads the text in images (None: never)
        self._lock = threading.Lock()
        self._none_id = model.config.labels.index(NONE_LABEL)
        self._concept_names = imagenet_class_names() if model.vision.has_concepts else []

    @classmethod
    def load(cls, weights: str | Path | None = None, device: str = "auto", with_ner: bool = True,
             type_constraint: bool = True, ner_weights: str | Path | None = None, read_text: bool = True) -> Pipeline:
        """Load the relation model from `weights` (default: shipped `weights/relation`), the tagger from
        `ner_weights` (default: `weights/ner` beside it, else the shipped tagger) and, with `read_text`,
        the reader of text in images (loaded on its first image)."""
        root = Path(weights) if weights else weights_dir()
        rel_dir = relation_weights_dir(root)
        dev = resolve_device(device)
        model = load_relation_model(rel_dir, device=dev)
        model.merge_adapters()  # this model only serves requests
        tagger = None
        if ner_weights:
            ner_dir = Path(ner_weights)
        else:
            ner_dir = root / "ner" if (root / "ner").is_dir() else weights_dir() / "ner"
        if with_ner and ner_dir.is_dir():
            from mmre_demo.model.ner import NerTagger

            tagger = NerTagger.from_pretrained(ner_dir, device=dev)
        return cls(model, tagger, dev, type_constraint, TextReader() if read_text else None)

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

    # ---- requests -------------------------------------------------------------------------------
    def predict(self, image: ImageInput, caption: str, entities: Sequence[Entity | dict] | None = None,
                max_pairs: int = MAX_PAIRS, top_k: int = 3, read_text: bool = True) -> Prediction:
        """Entities (detected unless given) -> both directions of each entity pair -> one decoded
        relation per pair, with calibrated probabilities, the image's measured influence and evidence;
        with `read_text` (and a reader), the text in the image and the entities it grounds."""
        t0 = time.perf_counter()
        post = self._prepare(image, caption, entities, read_text=read_text)
        return self._predict_posts([post], max_pairs, top_k, t0)[0]

    def predict_many(self, requests: Sequence[tuple[ImageInput, str]], max_pairs: int = MAX_PAIRS,
                     top_k: int = 3, read_text: bool = True) -> list[Prediction]:
        """`predict(image, caption)` for many posts at once: one tagger batch, one vision batch, and the
        pairs of all posts in shared relation batches. Each result equals `predict` on that post (the
        models are batch-invariant: float, padding masked); a bad post raises its `InputError`."""
        t0 = time.perf_counter()
        posts = [self._prepare(image, caption, None, tag=False, read_text=read_text) for image, caption in requests]
        if posts:
            if self.tagger is None:
                raise InputError("No entity tagger is installed (weights/ner missing): give the entities yourself.")
            t = time.perf_counter()
            with self._lock:
                found = self.tagger.tag_batch([p.caption for p in posts])
            share = (time.perf_counter() - t) * 1000 / len(posts)
            for post, ents in zip(posts, found, strict=True):
                post.entities, post.timings["ner_ms"] = list(ents), share
        return self._predict_posts(posts, max_pairs, top_k, t0)

    def _prepare(self, image: ImageInput, caption: str, entities: Sequence[Entity | dict] | None,
                 tag: bool = True, read_text: bool = True) -> _Post:
        """Check one post's inputs, start reading its image's text, and (unless `tag` is off or
        entities are given) find its entities."""
        t0 = time.perf_counter()
        caption = check_caption(caption)
        post = _Post(caption, load_image(image), detected=entities is None)
        if post.image is None:
            post.messages.append("No image: the relations are predicted from the caption alone.")
        elif read_text and self.text_reader is not None:
            post.text_read = self.text_reader.submit(post.image)
        if entities is not None:
            post.entities = self._coerce_entities(caption, entities)
        elif tag:
            post.entities = self.detect_entities(caption)
            post.timings["ner_ms"] = (time.perf_counter() - t0) * 1000
        return post

    def _predict_posts(self, posts: list[_Post], max_pairs: int, top_k: int, t0: float) -> list[Prediction]:
        for post in posts:
            post.pairs, cap_message = select_pairs(post.entities, max_pairs)
            post.messages += [cap_message] if cap_message else []
            n = len(post.entities)
            if n < 2:
                post.messages.append(f"{n} entit{'y' if n == 1 else 'ies'} found in the caption: a relation "
                                     "needs two. Add entities by hand to classify a pair.")
            elif not post.pairs:
                post.messages.append("Every entity has the same name: a relation needs two different entities.")
        with self._lock, torch.no_grad():
            t = time.perf_counter()
            images = self._encode_images([p.image for p in posts])
            image_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            classified = self._classify(posts, images, top_k)
            relation_ms = (time.perf_counter() - t) * 1000
        with_image = sum(1 for p in posts if p.image is not None)
        with_pairs = sum(1 for p in posts if p.pairs)
        out = []
        for post, image, pairs in zip(posts, images, classified, strict=True):
            if image is not None:
                post.timings["image_ms"] = image_ms / with_image
            if post.pairs:
                post.timings["relation_ms"] = relation_ms / with_pairs
            post.timings["total_ms"] = (time.perf_counter() - t0) * 1000 / len(posts)
            decoded = decode_directions(pairs)
            image_text, groundings, only_in_image = self._text_evidence(post, decoded)
            out.append(Prediction(
                caption=post.caption, entities=post.entities, pairs=decoded,
                concepts=image.concepts if image else [], has_image=post.image is not None,
                image_size=post.image.size if post.image is not None else None, device=self.device,
                messages=post.messages, timings_ms=post.timings, entities_detected=post.detected,
                image_feature=image.feature if image else None, threshold=self.model.config.threshold,
                image_text=image_text, groundings=groundings, also_in_image=only_in_image))
        return out

    def _text_evidence(self, post: _Post, pairs: list[PairPrediction]
                       ) -> tuple[ImageText | None, list[Grounding], list[ImageEntity]]:
        """The text read in the post's image, the entities whose names it shows (their boxes go on the
        pairs as grounded evidence), and the names the tagger finds only in the image."""
        if post.text_read is None:
            return None, [], []
        image_text = post.text_read.result()
        post.timings["ocr_ms"] = image_text.seconds * 1000
        if image_text.note:
            post.messages.append(f"Text in the image: {image_text.note}")
        groundings = ground_entities(post.entities, image_text)
        by_span = {(g.entity.start, g.entity.end): g for g in groundings}
        for p in pairs:
            p.head_grounding = by_span.get((p.head.start, p.head.end))
            p.tail_grounding = by_span.get((p.tail.start, p.tail.end))
        only_in_image: list[ImageEntity] = []
        if self.tagger is not None and image_text.lines:
            with self._lock:
                only_in_image = also_in_image(self.tagger, image_text, post.entities, post.caption)
        return image_text, groundings, only_in_image

    def _encode_image(self, img: Image.Image) -> EncodedImage:
        return self._encode_images([img])[0]

    def _encode_images(self, images: Sequence[Image.Image | None]) -> list[EncodedImage | None]:
        """The images of several posts through the frozen vision backbone in one batch (None stays None)."""
        present = [i for i, img in enumerate(images) if img is not None]
        out: list[EncodedImage | None] = [None] * len(images)
        if not present:
            return out
        model = self.model
        vision = model.encode_images(model.vision.preprocess([images[i] for i in present]).to(self.device))
        visual = model.visual_tokens(vision)
        for row, i in enumerate(present):
            concepts = []
            if visual.concept_ids is not None:
                concepts = [(self._concept_names[int(c)], float(p))
                            for c, p in zip(visual.concept_ids[row], visual.concept_probs[row], strict=True)]
            out[i] = EncodedImage(_visual_row(visual, row), concepts, vision.pooled[row].float().cpu().numpy())
        return out

    def _classify(self, posts: list[_Post], images: list[EncodedImage | None], top_k: int,
                  batch_passes: int = BATCH_PASSES) -> list[list[PairPrediction]]:
        """Every ordered pair of every post, through the model's own encoder passes (`featurize`: one per
        pair or one per caption, by architecture), at most `batch_passes` passes per forward pass across
        posts, passes of similar length together (little padding); each post's pairs come back in its own
        order. Rows with an image are also classified without it, from the same text pass."""
        items, post_of = [], {}  # post_of: id(item) -> its post (batches() reorders the items)
        for p, post in enumerate(posts):
            key = str(p) if images[p] is not None else None
            for it in caption_items(self.model, [CaptionPairs(post.caption, post.entities, post.pairs, key,
                                                              self._image_text_segment(post))]):
                items.append(it)
                post_of[id(it)] = p
        source = _RequestImages({str(p): im.visual for p, im in enumerate(images) if im is not None})
        results: list[list[PairPrediction | None]] = [[None] * len(post.pairs) for post in posts]
        for batch in batches(items, batch_passes, None):
            out = run_batch(self.model, batch, source, explain=True, with_text_only=True)
            result = ClassifiedBatch(out, self.model.probabilities(out.logits).float().cpu().numpy(),
                                     None if out.text_only_logits is None else
                                     self.model.probabilities(out.text_only_logits).float().cpu().numpy())
            row = 0
            for it in batch:
                p = post_of[id(it)]
                for index in it.indices:
                    head, tail = (posts[p].entities[i] for i in posts[p].pairs[index])
                    results[p][index] = self._pair_result(head, tail, posts[p].caption, it.features.token_spans,
                                                          row, result, images[p], top_k)
                    row += 1
        return results  # type: ignore[return-value] - every slot is filled

    def _image_text_segment(self, post: _Post) -> str | None:
        """The image text the model reads as its second segment: None for a model trained without it;
        "" when nothing was read (no image, reading off), as in training."""
        if not self.model.config.image_text:
            return None
        return post.text_read.result().text if post.text_read is not None else ""

    def _pair_result(self, head: Entity, tail: Entity, caption: str, token_spans: list[tuple[int, int]], k: int,
                     result: ClassifiedBatch, image: EncodedImage | None, top_k: int) -> PairPrediction:
        """Row `k`: the pair's most probable relation (shown when it reaches the threshold), its calibrated
        probability, the alternatives (`None` among them), the image's influence and the evidence."""
        labels = self.model.config.labels
        p = result.probs[k]
        p_text = None if result.text_only_probs is None or image is None else result.text_only_probs[k]
        if self.type_constraint:
            p = constrain_to_types(p, labels, head.type, tail.type)
            if p_text is not None:
                p_text = constrain_to_types(p_text, labels, head.type, tail.type)
        raw_best = int(best_relations(result.probs[k : k + 1], self._none_id)[0][0])
        best = int(best_relations(p[None], self._none_id)[0][0])
        if p[best] <= 0:  # the types allow no relation at all
            best = self._none_id
        order = np.argsort(-p)
        ev = pair_evidence(result.output, k, caption, token_spans, image.visual if image is not None else None)
        return PairPrediction(head, tail, labels[best], float(p[best]),
                              [(labels[int(i)], float(p[int(i)])) for i in order[: max(top_k, 1)]],
                              image_heatmap=ev.image_heatmap, head_heatmap=ev.head_heatmap,
                              tail_heatmap=ev.tail_heatmap, token_weights=ev.token_weights,
                              type_constrained=best != raw_best,
                              image_influence=None if p_text is None else float(p[best] - p_text[best]),
                              none_probability=float(p[self._none_id]))
