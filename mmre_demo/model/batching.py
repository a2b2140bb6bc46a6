"""The relation model's one run path, shared by serving, training and evaluation.

An `Item` is one encoder pass (`packing.EncoderPass`: the pairs it scores) with their labels and the
key of its image; `caption_items` groups pairs by caption and lets the model featurize them;
`ImageCache` runs the frozen vision backbone once per image and keeps its outputs; `run_batch` turns a
list of items into one forward pass (passes of different images in one batch); `predict_logits`
scores a whole list, pair by pair in the caller's order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from mmre_demo.data.images import load_image
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.encoders.vision import VisionOutput
from mmre_demo.model.fusion import VisualTokens
from mmre_demo.model.packing import EncoderPass, collate_passes
from mmre_demo.model.relation import RelationModel, RelationOutput

if TYPE_CHECKING:
    from PIL import Image

    from mmre_demo.data.mnre import MnreExample
    from mmre_demo.encoders.ocr import TextReader


@dataclass
class Item:
    """One encoder pass and, per row (pair), the label, its weight in the loss and the caller's index."""

    features: EncoderPass
    labels: list[int]
    image_key: str | None  # key into ImageCache, None = text only
    weights: list[float]
    indices: list[int]  # per row: the pair's index in the caller's list (`predict_logits` answers in it)

    @property
    def n_rows(self) -> int:
        return self.features.n_rows


@dataclass
class CaptionPairs:
    """One caption's ordered pairs to score, with what the caller knows of each (label, weight, index)."""

    caption: str
    entities: list[Entity]
    pairs: list[tuple[int, int]]
    image_key: str | None = None
    image_text: str | None = None  # the second segment (None: the model does not read one)
    labels: list[int] | None = None
    weights: list[float] | None = None
    indices: list[int] | None = None


def caption_items(model: RelationModel, captions: list[CaptionPairs]) -> list[Item]:
    """The items (encoder passes) that score every pair of every caption, as the model's architecture reads them."""
    items = []
    for c in captions:
        n = len(c.pairs)
        labels, weights = c.labels or [0] * n, c.weights or [1.0] * n
        indices = c.indices or list(range(n))
        for p in model.featurize(c.caption, c.entities, c.pairs, c.image_text):
            items.append(Item(p, [labels[k] for k in p.pair_ids], c.image_key, [weights[k] for k in p.pair_ids],
                              [indices[k] for k in p.pair_ids]))
    return items


class ImageCache:
    """Frozen vision outputs per image (one-row `VisionOutput`s on the CPU), computed once; for a model
    that reads the image text (`config.image_text`), also the text read in each image."""

    def __init__(self, model: RelationModel, text_reader: TextReader | None = None):
        self.model = model
        self.entries: dict[str, VisionOutput] = {}
        self.texts: dict[str, str] = {}
        self._reader = text_reader

    def _read_text(self, images: dict[str, Image.Image]) -> None:
        if self._reader is None:
            from mmre_demo.encoders.ocr import TextReader

            self._reader = TextReader()
        for k, img in images.items():
            if k not in self.texts:
                self.texts[k] = self._reader.read(img).text

    def add_images(self, images: dict[str, Image.Image], batch_size: int = 16) -> None:
        if self.model.config.image_text:
            self._read_text(images)
        keys = [k for k in images if k not in self.entries]
        for i in range(0, len(keys), batch_size):
            chunk = keys[i : i + batch_size]
            pixels = self.model.vision.preprocess([images[k] for k in chunk])
            device = next(self.model.parameters()).device
            out = self.model.encode_images(pixels.to(device)).to("cpu")
            for j, k in enumerate(chunk):
                self.entries[k] = out.rows(slice(j, j + 1))

    def visual_tokens(self, keys: list[str], device: torch.device) -> VisualTokens:
        """Visual tokens of the cached images `keys`, in that order (one row each)."""
        return self.model.visual_tokens(VisionOutput.cat([self.entries[k] for k in keys]).to(device))

    def add_folder(self, folder: str | Path | None, img_ids: set[str]) -> tuple[int, int]:
        """Load the referenced images found in `folder`; returns (found, unreadable)."""
        if folder is None:
            return 0, 0
        folder = Path(folder)
        found, bad, images = 0, 0, {}
        for img_id in sorted(img_ids):
            path = folder / img_id
            if not path.is_file():
                continue
            try:
                images[img_id] = load_image(path)
                found += 1
            except InputError:
                bad += 1
        self.add_images(images)
        return found, bad


def prepare_items(model: RelationModel, examples: list[MnreExample], cache: ImageCache | None,
                  weights: list[float] | None = None) -> list[Item]:
    """Encode MNRE-style examples (caption, head, tail, label, img_id) as items, the examples of one caption
    (and image) together; images found in `cache`; row indices are the examples' positions."""
    cfg = model.config
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault((ex.caption, ex.img_id), []).append(i)
    captions = []
    for (caption, img_id), members in groups.items():
        key = img_id if (cache is not None and img_id in cache.entries) else None
        image_text = None  # a model trained without the image text gets no second segment
        if cfg.image_text:
            image_text = cache.texts.get(key, "") if key is not None and cache is not None else ""
        entities: list[Entity] = []
        where: dict[tuple[int, int], int] = {}
        pairs = []
        for i in members:
            ends = []
            for ent in (examples[i].head, examples[i].tail):
                span = (ent.start, ent.end)
                if span not in where:
                    where[span] = len(entities)
                    entities.append(ent)
                ends.append(where[span])
            pairs.append((ends[0], ends[1]))
        captions.append(CaptionPairs(caption, entities, pairs, key, image_text,
                                     [examples[i].label_id for i in members],
                                     [weights[i] for i in members] if weights else None, members))
    return caption_items(model, captions)


def batches(items: list[Item], batch_size: int, rng: random.Random | None) -> list[list[Item]]:
    """Length-bucketed batches (shuffled when rng is given) so padding stays small."""
    order = list(range(len(items)))
    if rng is not None:
        rng.shuffle(order)
    chunk = batch_size * 50
    out = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda k: len(items[k].features.input_ids))
        out += [[items[k] for k in part[j : j + batch_size]] for j in range(0, len(part), batch_size)]
    if rng is not None:
        rng.shuffle(out)
    return out


class VisualSource(Protocol):
    """Where `run_batch` gets the visual tokens of image keys (the training cache, a request's images)."""

    def visual_tokens(self, keys: list[str], device: torch.device) -> VisualTokens: ...


def run_batch(model: RelationModel, batch: list[Item], images: VisualSource | None, explain: bool = False,
              with_text_only: bool = False) -> RelationOutput:
    """One forward pass over `batch`; output rows are the items' rows in order; each sees its own image."""
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in collate_passes([it.features for it in batch],
                                                          model.tokenizer.pad_token_id).items()}
    row_keys = [it.image_key for it in batch for _ in range(it.n_rows)]
    keys = sorted({k for k in row_keys if k is not None})
    visual = image_index = None
    has_image = torch.zeros(len(row_keys), device=device)
    if keys and images is not None:
        visual = images.visual_tokens(keys, device)
        pos = {k: i for i, k in enumerate(keys)}
        image_index = torch.tensor([pos.get(k, 0) for k in row_keys], device=device)
        has_image = torch.tensor([0.0 if k is None else 1.0 for k in row_keys], device=device)
    return model(**inputs, visual=visual, image_index=image_index, has_image=has_image, explain=explain,
                 with_text_only=with_text_only)


def n_pairs(items: list[Item]) -> int:
    return max((i for it in items for i in it.indices), default=-1) + 1


@torch.no_grad()
def predict_logits(model: RelationModel, items: list[Item], cache: VisualSource | None,
                   batch_size: int = 64) -> np.ndarray:
    """(pairs, num_labels) raw logits, row i for the pair of index i (the model is left as it was)."""
    was_training = model.training
    model.eval()
    out = np.zeros((n_pairs(items), model.config.num_labels), dtype=np.float32)
    for batch in batches(items, batch_size, None):
        logits = run_batch(model, batch, cache).logits.float().cpu().numpy()
        rows = [i for it in batch for i in it.indices]
        out[rows] = logits
    model.train(was_training)
    return out
