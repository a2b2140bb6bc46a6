"""`Pipeline.load()` / `Pipeline.predict_many([PredictRequest, ...])`: the `Predictor` of the app, the CLI,
corpus extraction and the end-to-end evaluation.

One request: clean and check the inputs (`data.text`: NFC, no invisible characters), find entities
(or take the user's), form both directions of each entity pair, encode the image once, classify all
pairs of the caption (with and without the image, from one text pass), keep one direction per pair
(`decoding`), turn attention into evidence (image heatmaps, word weights) and move every span back
onto the caption as typed. Probabilities are calibrated (`RelationModel.probabilities`). Requests of one
call, and of concurrent callers arriving together (`microbatch`), share the models' batches.

Three named stages, each with its own result type (as transformers' pipelines name them):
`preprocess` (the caller's thread: checked inputs, OCR started) -> `Prepared`; `run_models` (the batcher's
thread, a batch of requests at once: tagger, vision beside it, relation model) -> `ModelsRun`;
`postprocess` (the caller's thread: one direction per pair, the image's text, spans on the typed caption)
-> `Prediction`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mmre_demo import tuning
from mmre_demo.data.images import ImageInput, load_image
from mmre_demo.data.labels import NONE_LABEL, constrain_to_types
from mmre_demo.data.paths import WeightsLayout
from mmre_demo.data.schema import Entity, InputError, check_caption, check_entities
from mmre_demo.data.text import CleanCaption, clean_caption, unread_script
from mmre_demo.decoding import best_relations, decode_directions, select_pairs
from mmre_demo.device import resolve_device
from mmre_demo.encoders.ocr import ImageText, TextReader
from mmre_demo.encoders.vision import imagenet_class_names
from mmre_demo.explain.evidence import pair_evidence
from mmre_demo.grounding import Grounding, ImageEntity, Tagger, also_in_image, ground_entities
from mmre_demo.microbatch import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAITING, DEFAULT_WINDOW_MS, Busy, MicroBatcher
from mmre_demo.model.batching import CaptionPairs, batches, caption_items, run_batch
from mmre_demo.model.fusion import VisualTokens
from mmre_demo.model.relation import RelationModel, RelationOutput, load_relation_model
from mmre_demo.prediction import (
    DEFAULT_TOP_K,
    MAX_PAIRS,
    PairPrediction,
    Prediction,
    PredictRequest,
    TokenWeight,
    predict_one,
)
from mmre_demo.serving import Engine, ServingModels, check_engine, default_engine, engine_of, load_models

if TYPE_CHECKING:
    from PIL import Image


BATCH_PASSES = tuning.BATCH_PASSES.value  # encoder passes per forward pass (measured: mmre_demo.tuning)
WARM_UP_CAPTION = "Alice Smith of Acme Corp met Bob Jones in Paris."  # the tagger finds entities in it

log = logging.getLogger(__name__)


def warm_up_image() -> Image.Image:
    """A small picture with printed words: the OCR's detector, classifier and recogniser all run on it."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 160), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for row, words in enumerate(("OPEN DAILY", "ACME CORP", "PARIS 2024")):
        draw.text((20, 20 + 45 * row), words, fill=(0, 0, 0), font_size=30)
    return img


@dataclass
class EncodedImage:
    """One request's image, encoded once: visual tokens, recognised concepts, pooled feature."""

    visual: VisualTokens
    concepts: list[tuple[str, float]]
    feature: np.ndarray  # pooled vision feature (the knowledge graph's image feature)


@dataclass(frozen=True)
class Prepared:
    """Stage 1, preprocess (on the caller's thread): one request's checked inputs. The caption as typed and
    as the models read it (clean), the image, the entities given (on the clean caption; None: the tagger
    finds them), the text in the image being read beside the models, and the notes on the inputs."""

    request: PredictRequest
    typed: CleanCaption
    image: Image.Image | None
    started: float  # perf_counter when the request came in
    given: list[Entity] | None = None
    text_read: Future[ImageText] | None = None  # OCR running beside the models
    messages: tuple[str, ...] = ()

    @property
    def caption(self) -> str:
        """What the models read: the typed caption in NFC, without invisible characters."""
        return self.typed.text


@dataclass(frozen=True)
class ModelsRun:
    """Stage 2, run models (on the batcher's thread, for a batch of requests): one request's entities and
    pairs (on the clean caption), its encoded image, its classified pairs (both directions), the notes on
    the entities and pairs, and each model's share of the time."""

    entities: list[Entity]
    detected: bool
    pairs: list[tuple[int, int]]
    encoded: EncodedImage | None
    classified: list[PairPrediction]
    messages: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Job:
    """A request handed to the batcher: its `Prepared` in, its `ModelsRun` out (written once, by the
    batcher's worker, before the caller reads it)."""

    prepared: Prepared
    run: ModelsRun | None = None


@dataclass
class _Found:
    """Inside stage 2: a request's entities and pairs, before the relation model classifies them."""

    entities: list[Entity]
    detected: bool
    pairs: list[tuple[int, int]]
    messages: list[str]
    ner_ms: float | None = None


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


def on_typed_caption(pred: Prediction, typed: CleanCaption) -> Prediction:
    """`pred` (spans of the clean caption) with every span moved onto the caption as typed: entities,
    the pairs' heads and tails, word weights and groundings. Entity texts stay as the models read them.
    A new `Prediction` (the given one is left as it is)."""
    if not typed.changed:
        return pred
    moved = {e: typed.to_typed(e) for e in pred.entities}

    def entity(e: Entity) -> Entity:
        return moved.get(e) or typed.to_typed(e)

    def grounding(g: Grounding | None) -> Grounding | None:
        return None if g is None else replace(g, entity=entity(g.entity))

    pairs = [replace(pair, head=entity(pair.head), tail=entity(pair.tail),
                     token_weights=[TokenWeight(w.text, *typed.typed_span(w.start, w.end), w.weight)
                                    for w in pair.token_weights],
                     head_grounding=grounding(pair.head_grounding), tail_grounding=grounding(pair.tail_grounding))
             for pair in pred.pairs]
    return replace(pred, caption=typed.typed, entities=[moved[e] for e in pred.entities], pairs=pairs,
                   groundings=[replace(g, entity=entity(g.entity)) for g in pred.groundings])


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
    """Relation model (+ NER tagger when its weights exist) on one device: a thread-safe `Predictor`.

    Requests from concurrent callers that arrive within `batch_window_ms` of each other share one
    tagger, vision and relation batch (`MicroBatcher`; 0: each call runs alone); each gets what it
    would get alone. With `type_constraint`, a pair whose two entity types are known (PER/ORG/LOC/MISC,
    from the tagger or the user) only gets relations whose name allows those types (`/per/org/*` needs
    a person and an organisation); unknown types ("") are not constrained.
    """

    def __init__(self, model: RelationModel, tagger: Tagger | None, device: str, type_constraint: bool = True,
                 text_reader: TextReader | None = None, batch_window_ms: float = DEFAULT_WINDOW_MS,
                 max_batch: int = DEFAULT_MAX_BATCH, max_waiting: int = DEFAULT_MAX_WAITING):
        self.model, self.tagger, self.device = model, tagger, device
        self.type_constraint = type_constraint
        self.text_reader = text_reader  # reads the text in images (None: never)
        self._lock = threading.Lock()  # one model call at a time (the batcher's worker, `detect_entities`)
        self._none_id = model.config.labels.index(NONE_LABEL)
        self._concept_names = imagenet_class_names() if model.vision.has_concepts else []
        # the vision backbone reads a batch's images while the tagger reads its captions (neither needs the
        # other; onnxruntime and PIL release the GIL): measured in mmre_demo.tuning.VISION_BESIDE_TAGGER
        self._vision_thread = (ThreadPoolExecutor(1, thread_name_prefix="pipeline-vision")
                               if tuning.VISION_BESIDE_TAGGER.value else None)
        self.batcher: MicroBatcher[_Job] = MicroBatcher(self._run_jobs, batch_window_ms, max_batch, max_waiting,
                                                        name="pipeline")

    @classmethod
    def load(cls, weights: str | Path | None = None, device: str = "auto", with_ner: bool = True,
             type_constraint: bool = True, ner_weights: str | Path | None = None, read_text: bool = True,
             batch_window_ms: float = DEFAULT_WINDOW_MS, threads: int | None = None,
             ocr_workers: int = 1, engine: Engine | None = None, warm_up: bool = False) -> Pipeline:
        """Load the relation model and the tagger of `weights` (`WeightsLayout.find(weights, ner_weights)`:
        default `$MMRE_WEIGHTS`, else the shipped `weights/`) and, with `read_text`,
        the reader of text in images (loaded on its first image; `ocr_workers` images read side by side).
        `threads`: CPU threads of each model call and each read (torch's setting is the process's);
        None keeps the libraries' defaults (all cores for one request). `engine`: what runs the models,
        chosen here once (`pipe.engine`): "onnxruntime" (the serving models of `mmre_demo.serving`; the
        default on a CPU) or "torch" (the whole PyTorch models, trainable; the default on an accelerator).
        `warm_up`: pay the first-run costs now (`warm_up()`), as a server does before its first visitor."""
        if threads:
            torch.set_num_threads(threads)
        layout = WeightsLayout.find(weights, ner_weights)
        dev = resolve_device(device)
        engine = check_engine(engine or default_engine(dev), dev)
        model = load_relation_model(layout.relation, device=dev, for_inference=True)  # adapters folded in
        tagger = None
        if with_ner and layout.tagger is not None:
            from mmre_demo.model.ner import NerTagger

            tagger = NerTagger.from_pretrained(layout.tagger, device=dev)
        reader = TextReader(threads=threads, workers=ocr_workers) if read_text else None
        model, tagger, engine = load_models(model, tagger, engine)  # the PyTorch models let go when served
        if engine == "onnxruntime":
            ServingModels.hand_back_memory()
        pipe = cls(model, tagger, dev, type_constraint, reader, batch_window_ms=batch_window_ms)
        if warm_up:
            pipe.warm_up()
        return pipe

    def warm_up(self) -> float:
        """Pay the first-run costs before the first request, not on it: the OCR engines load (RapidOCR's
        sessions, ~1.9 s) and one request with a picture of printed words runs every model and stage once
        (the first onnxruntime runs, the tokenizers, the lazily imported parts). Returns the seconds taken."""
        t = time.perf_counter()
        if self.text_reader is not None:
            self.text_reader.load()
        entities = None if self.tagger is not None else [
            Entity("Alice Smith", 0, 11, "PER"), Entity("Acme Corp", 15, 24, "ORG")]
        self.predict(warm_up_image(), WARM_UP_CAPTION, entities, read_text=self.text_reader is not None)
        seconds = time.perf_counter() - t
        log.info("warmed up in %.1f s", seconds)
        return seconds

    # ---- what the model is ------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """What runs the models: "onnxruntime" (serving models) or "torch" (the PyTorch models, whole)."""
        return engine_of(self.model)

    @property
    def threshold(self) -> float:
        """The model's own probability threshold (max end-to-end F1 on validation)."""
        return float(self.model.config.threshold)

    @property
    def labels(self) -> list[str]:
        return list(self.model.config.labels)

    # ---- parts --------------------------------------------------------------------------------
    def detect_entities(self, caption: str) -> list[Entity]:
        """The tagger's entities of `caption`, offsets into the caption as typed."""
        typed = clean_caption(check_caption(caption))
        self._require_tagger()
        with self._lock:
            return [typed.to_typed(e) for e in self.tagger.tag(typed.text)]

    def _require_tagger(self) -> None:
        if self.tagger is None:
            raise InputError("No entity tagger is installed (weights/ner missing): give the entities yourself.")

    # ---- requests -------------------------------------------------------------------------------
    def predict(self, image: ImageInput, caption: str, entities: Sequence[Entity | dict] | None = None,
                max_pairs: int = MAX_PAIRS, top_k: int = DEFAULT_TOP_K, read_text: bool = True) -> Prediction:
        """One request (see `predict_many`); a bad one raises its `InputError`."""
        return predict_one(self, PredictRequest(caption, image, entities, read_text, top_k, max_pairs))

    def predict_many(self, requests: Sequence[PredictRequest]) -> list[Prediction | InputError]:
        """Entities (detected unless given) -> both directions of each entity pair -> one decoded relation
        per pair, with calibrated probabilities, the image's measured influence and evidence; with
        `read_text` (and a reader), the text in the image and the entities it grounds. The requests share
        one tagger batch, one vision batch and relation batches (with other callers' requests when they
        arrive together); each result equals that request's alone (the models are batch-invariant: float,
        padding masked). A bad request gets its `InputError`, the others are answered.

        Three stages, each with its own result: `preprocess` (caller's thread) -> `Prepared`; `run_models`
        (the batcher's thread, a batch at a time) -> `ModelsRun`; `postprocess` (caller's thread) -> `Prediction`."""
        with self.batcher.expecting(len(requests)):  # a batch being gathered waits for these, not for nobody
            prepared = [self.preprocess(r) for r in requests]
            jobs = [_Job(p) for p in prepared if isinstance(p, Prepared)]
            try:
                self.batcher.run(jobs)
            except Busy as busy:
                return [busy if isinstance(p, Prepared) else p for p in prepared]
        runs = iter(jobs)
        return [self.postprocess(p, next(runs).run) if isinstance(p, Prepared) else p for p in prepared]

    # ---- stage 1: preprocess ------------------------------------------------------------------------
    def preprocess(self, request: PredictRequest) -> Prepared | InputError:
        """Check one request's inputs (on the caller's thread), start reading its image's text, and move
        entities given on the typed caption onto the clean one."""
        try:
            typed = clean_caption(check_caption(request.caption))
            image = load_image(request.image)
            given = None
            if request.entities is None:
                self._require_tagger()
            else:
                given = self._coerce_entities(typed, request.entities)
        except InputError as exc:
            return exc
        started, messages, text_read = time.perf_counter(), (), None
        if image is None:
            messages = ("No image: the relations are predicted from the caption alone.",)
        elif request.read_text and self.text_reader is not None:
            text_read = self.text_reader.submit(image)
        return Prepared(request, typed, image, started, given, text_read, messages)

    @staticmethod
    def _coerce_entities(typed: CleanCaption, entities: Sequence[Entity | dict]) -> list[Entity]:
        """Entities on the typed caption, checked there (a name given without the invisible characters
        of its span still names it), then moved onto the clean caption."""
        ents = [e if isinstance(e, Entity) else Entity.from_dict(e) for e in entities]
        if typed.changed:
            ents = [replace(e, text="") if e.text and clean_caption(e.text).text ==
                    clean_caption(typed.typed[e.start : e.end]).text else e for e in ents]
        checked = check_entities(typed.typed, ents)
        return check_entities(typed.text, [typed.to_clean(e) for e in checked])

    # ---- stage 2: run models ------------------------------------------------------------------------
    def run_models(self, batch: Sequence[Prepared]) -> list[ModelsRun]:
        """Tag the requests that need it, select their pairs, encode their images and classify their pairs,
        each model once for the whole batch."""
        with self._lock, torch.no_grad():
            pictures = [p.image for p in batch]
            vision = self._vision_thread
            images_read = vision.submit(self._encode_images_timed, pictures) if vision else None
            found = [self._select_pairs(p, entities, detected, ner_ms)
                     for p, (entities, detected, ner_ms) in zip(batch, self._tag(batch), strict=True)]
            images, image_ms = images_read.result() if images_read else self._encode_images_timed(pictures)
            t = time.perf_counter()
            classified = self._classify(batch, found, images)
            relation_ms = (time.perf_counter() - t) * 1000
        with_image = sum(1 for p in batch if p.image is not None)
        with_pairs = sum(1 for f in found if f.pairs)
        runs = []
        for f, image, pairs in zip(found, images, classified, strict=True):
            timings = {"ner_ms": f.ner_ms} if f.ner_ms is not None else {}
            if image is not None:
                timings["image_ms"] = image_ms / with_image
            if f.pairs:
                timings["relation_ms"] = relation_ms / with_pairs
            runs.append(ModelsRun(f.entities, f.detected, f.pairs, image, pairs, tuple(f.messages), timings))
        return runs

    def _run_jobs(self, jobs: list[_Job]) -> None:
        """The batcher's work: stage 2 for a batch of jobs, each job's `ModelsRun` written into it."""
        for job, run in zip(jobs, self.run_models([j.prepared for j in jobs]), strict=True):
            job.run = run

    def _tag(self, batch: Sequence[Prepared]) -> list[tuple[list[Entity], bool, float | None]]:
        """Each request's entities, whether the tagger found them, and its share of the tagger's time: the
        given ones, or the tagger's, in one batch for the requests that gave none."""
        todo = [p for p in batch if p.given is None]
        found: dict[int, list[Entity]] = {}
        share = None
        if todo:
            t = time.perf_counter()
            found = {id(p): list(e) for p, e in zip(todo, self.tagger.tag_batch([p.caption for p in todo]),
                                                    strict=True)}
            share = (time.perf_counter() - t) * 1000 / len(todo)
        return [(list(p.given), False, None) if p.given is not None else (found[id(p)], True, share) for p in batch]

    @staticmethod
    def _select_pairs(prepared: Prepared, entities: list[Entity], detected: bool, ner_ms: float | None) -> _Found:
        pairs, cap_message = select_pairs(entities, prepared.request.max_pairs)
        messages = [cap_message] if cap_message else []
        n = len(entities)
        unread = unread_script(prepared.caption)  # e.g. Chinese: the tagger finds nothing it can read
        says_why = unread is not None and detected and n < 2
        if unread is not None:
            messages.append(f"This caption is in a script the model does not read ({unread}): " + (
                "it cannot find the caption's entities. Add them by hand, or give the caption in English." if says_why
                else "its entities and relations are unreliable."))
        if n < 2:
            if not says_why:
                messages.append(f"{n} entit{'y' if n == 1 else 'ies'} found in the caption: a relation "
                                "needs two. Add entities by hand to classify a pair.")
        elif not pairs:
            messages.append("Every entity has the same name: a relation needs two different entities.")
        return _Found(entities, detected, pairs, messages, ner_ms)

    # ---- stage 3: postprocess -----------------------------------------------------------------------
    def postprocess(self, prepared: Prepared, run: ModelsRun) -> Prediction:
        """On the caller's thread: one direction per pair, the text read in the image and what it
        grounds, and every span moved back onto the caption as typed."""
        image = run.encoded
        image_text, groundings, only_in_image = self._text_evidence(prepared, run.entities)
        by_span = {(g.entity.start, g.entity.end): g for g in groundings}  # a pair's names read in the image
        decoded = [replace(p, head_grounding=by_span.get((p.head.start, p.head.end)),
                           tail_grounding=by_span.get((p.tail.start, p.tail.end)))
                   for p in decode_directions(run.classified)]
        messages = [*prepared.messages, *run.messages]
        timings = dict(run.timings)
        if image_text is not None:
            timings["ocr_ms"] = image_text.seconds * 1000
            messages += [f"Text in the image: {image_text.note}"] if image_text.note else []
        timings["total_ms"] = (time.perf_counter() - prepared.started) * 1000
        pred = Prediction(
            caption=prepared.caption, entities=run.entities, pairs=decoded,
            concepts=image.concepts if image else [], has_image=prepared.image is not None,
            image_size=prepared.image.size if prepared.image is not None else None, device=self.device,
            messages=messages, timings_ms=timings, entities_detected=run.detected,
            image_feature=image.feature if image else None, threshold=self.threshold,
            image_weight=float(self.model.config.image_weight),
            image_text=image_text, groundings=groundings, also_in_image=only_in_image)
        return on_typed_caption(pred, prepared.typed)

    def _text_evidence(self, prepared: Prepared, entities: list[Entity]
                       ) -> tuple[ImageText | None, list[Grounding], list[ImageEntity]]:
        """The text read in the request's image, the entities whose names it shows (their boxes go on the
        pairs as grounded evidence), and the names the tagger finds only in the image."""
        if prepared.text_read is None:
            return None, [], []
        image_text = prepared.text_read.result()
        groundings = ground_entities(entities, image_text)
        only_in_image: list[ImageEntity] = []
        if self.tagger is not None and image_text.lines:
            with self._lock:
                only_in_image = also_in_image(self.tagger, image_text, entities, prepared.caption)
        return image_text, groundings, only_in_image

    @torch.no_grad()
    def _encode_images_timed(self, images: Sequence[Image.Image | None]) -> tuple[list[EncodedImage | None], float]:
        t = time.perf_counter()
        return self._encode_images(images), (time.perf_counter() - t) * 1000

    def _encode_images(self, images: Sequence[Image.Image | None]) -> list[EncodedImage | None]:
        """The images of several requests through the frozen vision backbone in one batch (None stays None)."""
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

    def _classify(self, batch: Sequence[Prepared], found: list[_Found], images: list[EncodedImage | None],
                  batch_passes: int = BATCH_PASSES) -> list[list[PairPrediction]]:
        """Every ordered pair of every request, through the model's own encoder passes (`featurize`: one per
        pair or one per caption, by architecture), at most `batch_passes` passes per forward pass across
        requests, passes of similar length together (little padding); each request's pairs come back in its
        own order. Rows with an image are also classified without it, from the same text pass. An item's
        `indices` are the places of its pairs in `slots`: (request, pair) across the whole batch."""
        captions, slots = [], []
        for r, (prepared, f) in enumerate(zip(batch, found, strict=True)):
            indices = list(range(len(slots), len(slots) + len(f.pairs)))
            slots += [(r, k) for k in range(len(f.pairs))]
            key = str(r) if images[r] is not None else None
            captions.append(CaptionPairs(prepared.caption, f.entities, f.pairs, key,
                                         self._image_text_segment(prepared), indices=indices))
        source = _RequestImages({str(r): im.visual for r, im in enumerate(images) if im is not None})
        results: list[list[PairPrediction | None]] = [[None] * len(f.pairs) for f in found]
        for items in batches(caption_items(self.model, captions), batch_passes, None):
            out = run_batch(self.model, items, source, explain=True, with_text_only=True)
            result = ClassifiedBatch(out, self.model.probabilities(out.logits).float().cpu().numpy(),
                                     None if out.text_only_logits is None else
                                     self.model.probabilities(out.text_only_logits).float().cpu().numpy())
            row = 0
            for it in items:
                for index in it.indices:
                    r, k = slots[index]
                    head, tail = (found[r].entities[i] for i in found[r].pairs[k])
                    results[r][k] = self._pair_result(head, tail, batch[r].caption, it.features.token_spans,
                                                      row, result, images[r], batch[r].request.top_k)
                    row += 1
        return results  # type: ignore[return-value] - every slot is filled

    def _image_text_segment(self, prepared: Prepared) -> str | None:
        """The image text the model reads as its second segment: None for a model trained without it;
        "" when nothing was read (no image, reading off), as in training."""
        if not self.model.config.image_text:
            return None
        return prepared.text_read.result().text if prepared.text_read is not None else ""

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
