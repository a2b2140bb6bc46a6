"""The image gate (train/image_gate.py): closed without evidence, open when the image helps on dev, closed
when it hurts; a closed gate gives exactly the text-only decisions and an influence of 0."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mmre_demo.data.labels import RELATIONS
from mmre_demo.data.mnre import MnreExample
from mmre_demo.model.batching import ImageCache, predict_logits, prepare_items, run_batch
from mmre_demo.model.config import RelationConfig
from mmre_demo.model.relation import RelationModel, build_relation_model
from mmre_demo.train.image_gate import choose_image_weight
from tests.test_relation_model import CAPTION, _train_head, ents, skimage_photos

A, B = ents("Alice Smith", "Bob Jones")
PRESENT_IN, MEMBER_OF = RELATIONS.index("/per/misc/present_in"), RELATIONS.index("/per/org/member_of")


def _examples(labels: dict[str, int]) -> list[MnreExample]:
    return [MnreExample(CAPTION, A, B, RELATIONS[y], key, tuple(CAPTION.split(" ")), i)
            for i, (key, y) in enumerate(sorted(labels.items()))]


@pytest.fixture(scope="module")
def image_model() -> tuple[RelationModel, ImageCache, dict[str, int]]:
    """A model whose label depends only on the picture (the text is the same for every line)."""
    photos = skimage_photos(12)
    keys = sorted(photos)
    random.Random(3).shuffle(keys)
    labels = {k: (PRESENT_IN if i % 2 else MEMBER_OF) for i, k in enumerate(keys)}
    torch.manual_seed(0)
    model = build_relation_model(RelationConfig(backbone_training="frozen", modality_dropout=0.0))
    cache = ImageCache(model)
    cache.add_images(photos)
    _train_head(model, prepare_items(model, _examples(labels), cache), cache, steps=120)
    model.config.gold_threshold = 0.0
    return model, cache, labels


def test_few_lines_with_an_image_close_the_gate(image_model) -> None:
    model, cache, labels = image_model
    gate = choose_image_weight(model, _examples(labels)[:5], cache, min_lines=20)
    assert gate.weight == 0.0 and gate.n_lines == 5 and "no evidence" in gate.reason


def test_the_gate_opens_when_the_image_helps_on_dev(image_model) -> None:
    model, cache, labels = image_model
    gate = choose_image_weight(model, _examples(labels), cache, min_lines=10)
    assert gate.weight == 1.0
    assert gate.scores["1.0"]["f1"] > gate.scores["0.0"]["f1"]


def test_the_gate_closes_when_the_image_hurts_on_dev(image_model) -> None:
    model, cache, labels = image_model
    swapped = {k: (MEMBER_OF if y == PRESENT_IN else PRESENT_IN) for k, y in labels.items()}
    gate = choose_image_weight(model, _examples(swapped), cache, min_lines=10)
    assert gate.weight < 1.0
    chosen = gate.scores[str(gate.weight)]
    assert chosen["f1"] >= gate.scores["0.0"]["f1"] and chosen["accuracy"] >= gate.scores["0.0"]["accuracy"]


def test_a_closed_gate_reads_the_text_alone_and_reports_no_influence(image_model) -> None:
    model, cache, labels = image_model
    items = prepare_items(model, _examples(labels), cache)
    try:
        model.config.image_weight = 0.0
        gated = predict_logits(model, items, cache)
        out = run_batch(model, items, cache, with_text_only=True)
    finally:
        model.config.image_weight = 1.0
    text_only = predict_logits(model, prepare_items(model, _examples(labels), None), None)
    np.testing.assert_allclose(gated, text_only, atol=1e-5)
    assert out.text_only_logits is not None
    torch.testing.assert_close(out.logits, out.text_only_logits)  # the influence is 0
