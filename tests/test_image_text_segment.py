"""Issue 16, item 4: the text read in the image as the relation model's second segment.

On a small synthetic set the relation is written only in the image ("MARRIED" or "SIBLINGS" drawn with
PIL; the captions are the same template for both labels): a model trained with `image_text` on learns
it, the captions alone stay at chance. (The image pathway can tell the two fixed pictures apart too, since
the frozen backbone reads them in training as in serving; hence the captions-only baseline.) The shipped
model is trained without it."""

from __future__ import annotations

import random

import pytest
from PIL import Image, ImageDraw, ImageFont

from mmre_demo.data.mnre import MnreExample
from mmre_demo.data.schema import Entity
from mmre_demo.model.config import RelationConfig
from mmre_demo.model.inputs import encode_pair

pytestmark = pytest.mark.slow

NAMES = ["Alice Moore", "Bob Stone", "Carla Diaz", "Dan Wu", "Eve Park", "Frank Lee", "Gina Rossi", "Hugo Klein",
         "Ivy Chen", "Jack Hill", "Kara Singh", "Liam Ford", "Mia Costa", "Noah Brandt", "Olga Ivanova", "Paul Reed"]
LABELS = {"married.png": ("MARRIED", "/per/per/couple"), "siblings.png": ("SIBLINGS", "/per/per/siblings")}


def _examples(n: int, seed: int) -> list[MnreExample]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        a, b = rng.sample(NAMES, 2)
        caption = f"{a} and {b} at the party tonight"
        head, tail = Entity(a, 0, len(a), "PER"), Entity(b, len(a) + 5, len(a) + 5 + len(b), "PER")
        img_id = sorted(LABELS)[k % 2]
        out.append(MnreExample(caption, head, tail, LABELS[img_id][1], img_id, tuple(caption.split())))
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    pytest.importorskip("rapidocr_onnxruntime", reason="RapidOCR is not installed: no text in the image")
    from tests.test_ocr import FONT

    folder = tmp_path_factory.mktemp("image_text")
    for name, (word, _) in LABELS.items():
        img = Image.new("RGB", (480, 240), (250, 245, 235))
        ImageDraw.Draw(img).text((40, 80), word, fill="black", font=ImageFont.truetype(str(FONT), 56))
        img.save(folder / name)
    return folder


def _accuracy_after_training(tmp_path, images, image_text: bool, with_images: bool = True) -> float:
    from mmre_demo.model.batching import ImageCache, predict_logits, prepare_items
    from mmre_demo.model.relation import RelationModel
    from mmre_demo.train.config import RelationTrainConfig
    from mmre_demo.train.relation import train

    train_ex, val_ex = _examples(64, 1), _examples(24, 2)
    # levitated markers: on this 64-example set the entity-pooling architecture reaches 0.71 in 4 epochs
    # (its role projections start untrained), the markers 1.0; the segment itself is the same for both
    config = RelationConfig(architecture="levitated-markers", image_text=image_text, modality_dropout=0.0)
    args = RelationTrainConfig(out=tmp_path / f"run_{image_text}", epochs=4, batch_size=8, lr=1e-3, head_lr=3e-3,
                               device="cpu", select_on="gold", config=config)
    train(args, train_ex, val_ex, images_dir=images if with_images else None)
    model = RelationModel.from_pretrained(tmp_path / f"run_{image_text}" / "best", device="cpu")
    assert model.config.image_text is image_text  # saved with the weights
    cache = ImageCache(model)
    if with_images:
        cache.add_folder(images, {e.img_id for e in val_ex})
    logits = predict_logits(model, prepare_items(model, val_ex, cache), cache)
    return sum(int(row.argmax()) == ex.label_id for row, ex in zip(logits, val_ex)) / len(val_ex)


def test_the_model_learns_a_relation_written_only_in_the_image(tmp_path, images):
    with_text = _accuracy_after_training(tmp_path, images, image_text=True)
    captions_only = _accuracy_after_training(tmp_path, images, image_text=False, with_images=False)
    assert with_text >= 0.9, with_text
    assert captions_only <= 0.7, captions_only  # the captions alone cannot tell the two labels apart


def test_the_image_text_is_a_second_segment_and_the_caption_keeps_its_spans():
    from transformers import AutoTokenizer

    from mmre_demo.encoders.text import resolve_text_backbone

    tok = AutoTokenizer.from_pretrained(resolve_text_backbone("minilm"))
    ex = _examples(1, 3)[0]
    plain = encode_pair(tok, ex.caption, ex.head, ex.tail, 128)
    both = encode_pair(tok, ex.caption, ex.head, ex.tail, 128, image_text="MARRIED\nJUST", image_text_tokens=32)
    assert both.input_ids[: len(plain.input_ids)] == plain.input_ids
    assert tok.decode(both.input_ids[len(plain.input_ids):]) == "married just [SEP]"
    assert both.token_spans[len(plain.input_ids):] == [(-1, -1)] * (len(both.input_ids) - len(plain.input_ids))
    capped = encode_pair(tok, ex.caption, ex.head, ex.tail, 128, image_text="word " * 100, image_text_tokens=5)
    assert len(capped.input_ids) == len(plain.input_ids) + 6
