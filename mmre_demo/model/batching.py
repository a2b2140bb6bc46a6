"""The relation model's batching API, shared by inference, training and evaluation.

An `Item` is one encoded pair with its label and the key of its image; `ImageCache` runs the frozen
vision backbone once per image and keeps its outputs; `run_batch` turns a list of items into one
forward pass (pairs of different images in one batch); `predict_logits` scores a whole list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mmre_demo.data.images import load_image
from mmre_demo.data.schema import InputError
from mmre_demo.encoders.vision import VisionOutput
from mmre_demo.model.fusion import VisualTokens
from mmre_demo.model.inputs import PairFeatures, collate, encode_pair
from mmre_demo.model.relation import RelationModel, RelationOutput

if TYPE_CHECKING:
    from PIL import Image

    from mmre_demo.data.mnre import MnreExample
    from mmre_demo.encoders.ocr import TextReader


@dataclass
class Item:
    features: PairFeatures
    label: int
    image_key: str | None  # key into ImageCache, None = text only
    weight: float = 1.0  # the example's weight in the training loss


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


def prepare_items(model: RelationModel, examples: list[MnreExample], cache: ImageCache | None) -> list[Item]:
    """Encode MNRE-style examples (caption, head, tail, label, img_id) as items; images found in `cache`."""
    items = []
    cfg = model.config
    for ex in examples:
        key = ex.img_id if (cache is not None and ex.img_id in cache.entries) else None
        image_text = None  # a model trained without the image text gets no second segment
        if cfg.image_text:
            image_text = cache.texts.get(key, "") if key is not None else ""
        feats = encode_pair(model.tokenizer, ex.caption, ex.head, ex.tail, cfg.max_length, image_text,
                            cfg.image_text_tokens)
        items.append(Item(feats, ex.label_id, key))
    return items


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


def run_batch(model: RelationModel, batch: list[Item], cache: ImageCache | None,
              explain: bool = False) -> RelationOutput:
    """One forward pass over `batch`; each item sees its own cached image (or none)."""
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in collate([it.features for it in batch], model.tokenizer.pad_token_id).items()}
    keys = sorted({it.image_key for it in batch if it.image_key is not None})
    visual = image_index = None
    has_image = torch.zeros(len(batch), device=device)
    if keys and cache is not None:
        visual = cache.visual_tokens(keys, device)
        pos = {k: i for i, k in enumerate(keys)}
        image_index = torch.tensor([pos.get(it.image_key, 0) for it in batch], device=device)
        has_image = torch.tensor([1.0 if it.image_key else 0.0 for it in batch], device=device)
    return model(**inputs, visual=visual, image_index=image_index, has_image=has_image, explain=explain)


@torch.no_grad()
def predict_logits(model: RelationModel, items: list[Item], cache: ImageCache | None,
                   batch_size: int = 64) -> np.ndarray:
    """(len(items), num_labels) raw logits, in the order of `items` (the model is left as it was)."""
    was_training = model.training
    model.eval()
    out = np.zeros((len(items), model.config.num_labels), dtype=np.float32)
    index = {id(it): i for i, it in enumerate(items)}
    for batch in batches(items, batch_size, None):
        logits = run_batch(model, batch, cache).logits.float().cpu().numpy()
        for it, row in zip(batch, logits):
            out[index[id(it)]] = row
    model.train(was_training)
    return out
