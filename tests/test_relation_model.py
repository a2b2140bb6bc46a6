"""The fused relation model: round trip, determinism, the image pathway learns, other backbones plug in."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmre_demo.data.labels import RELATIONS
from mmre_demo.data.schema import Entity
from mmre_demo.model.batching import CaptionPairs, ImageCache, Item, caption_items, predict_logits, run_batch
from mmre_demo.model.config import ARCHITECTURES, RelationConfig
from mmre_demo.model.relation import RelationModel, build_relation_model, load_relation_model
from mmre_demo.research import RESEARCH_ARCHITECTURES

CAPTION = "Alice Smith met Bob Jones at the museum in Paris"


def ents(*names: str) -> list[Entity]:
    out = []
    for n in names:
        s = CAPTION.index(n)
        out.append(Entity(n, s, s + len(n), "PER"))
    return out


def pair_item(model: RelationModel, head: Entity, tail: Entity, label: int = 0, image_key: str | None = None,
              index: int = 0) -> Item:
    """The one pass that scores the ordered pair (head, tail) of CAPTION."""
    (item,) = caption_items(model, [CaptionPairs(CAPTION, [head, tail], [(0, 1)], image_key, labels=[label],
                                                 indices=[index])])
    return item


@pytest.fixture(scope="module", params=ARCHITECTURES + RESEARCH_ARCHITECTURES)  # research stays working
def small_model(request) -> RelationModel:
    torch.manual_seed(0)
    return build_relation_model(RelationConfig(architecture=request.param, lora_r=4, lora_alpha=8)).eval()


def skimage_photos(n: int) -> dict[str, Image.Image]:
    data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the test photographs")
    names = ["astronaut", "camera", "coffee", "chelsea", "rocket", "hubble_deep_field",
             "immunohistochemistry", "coins", "moon", "page", "retina", "brick"][:n]
    return {k: Image.fromarray(np.asarray(getattr(data, k)())) for k in names}


def test_save_load_round_trip_gives_identical_outputs(small_model: RelationModel, tmp_path: Path):
    # move some trained-only parameters away from their init so the test can see a bad load
    with torch.no_grad():
        for p in small_model.classifier.parameters():
            p.add_(0.01 * torch.randn_like(p))
    small_model.save_pretrained(tmp_path / "m")
    loaded = load_relation_model(tmp_path / "m")
    assert type(loaded) is type(small_model) and loaded.config.architecture == small_model.config.architecture
    a, b = ents("Alice Smith", "Bob Jones")
    items = [pair_item(small_model, a, b)]
    assert np.array_equal(predict_logits(small_model, items, None), predict_logits(loaded, items, None))
    assert RelationConfig.load(tmp_path / "m" / "config.json") == small_model.config  # every setting saved
    # the saved file holds only what training changes: no backbone matrices
    from safetensors.torch import load_file

    keys = load_file(str(tmp_path / "m" / "model.safetensors")).keys()
    assert not any("vision." in k for k in keys)
    assert not any(k.endswith("attention.self.query.base_layer.weight") for k in keys)


def test_from_pretrained_refuses_foreign_files(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        RelationModel.from_pretrained(tmp_path)


def test_predictions_are_deterministic(small_model: RelationModel):
    photos = skimage_photos(1)
    cache = ImageCache(small_model)
    cache.add_images(photos)
    a, b = ents("Alice Smith", "Paris")
    items = [pair_item(small_model, a, b, image_key="astronaut")]
    out1 = run_batch(small_model, items, cache, explain=True)
    out2 = run_batch(small_model, items, cache, explain=True)
    assert torch.equal(out1.logits, out2.logits)
    assert torch.equal(out1.entity_attention, out2.entity_attention)
    assert out1.entity_attention.shape == (1, 2, 49 + small_model.config.num_concepts)
    assert torch.allclose(out1.entity_attention.sum(-1), torch.ones(1, 2))


def _train_head(model: RelationModel, items: list[Item], cache: ImageCache, steps: int) -> float:
    """Train the trainable (non-backbone) parts on `items`; return training accuracy."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-3)
    model.train()
    for _ in range(steps):
        out = run_batch(model, items, cache)
        loss = torch.nn.functional.cross_entropy(out.logits, torch.tensor([y for it in items for y in it.labels]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    pred = predict_logits(model, items, cache).argmax(1)
    return float(np.mean(pred == np.array([y for it in items for y in it.labels])))


def test_image_pathway_learns_a_label_only_the_image_carries():
    """Identical caption and entities; the label depends only on the picture."""
    photos = skimage_photos(12)
    keys = sorted(photos)
    random.Random(3).shuffle(keys)
    labels = {k: (16 if i % 2 else 9) for i, k in enumerate(keys)}  # present_in vs member_of
    a, b = ents("Alice Smith", "Bob Jones")

    def run(with_image: bool) -> float:
        torch.manual_seed(0)
        model = build_relation_model(RelationConfig(backbone_training="frozen", modality_dropout=0.0))
        cache = ImageCache(model)
        cache.add_images(photos)
        items = [pair_item(model, a, b, labels[k], k if with_image else None, i) for i, k in enumerate(keys)]
        return _train_head(model, items, cache, steps=120)

    acc_with = run(True)
    acc_without = run(False)
    assert acc_with >= 0.9, f"image branch did not learn: train accuracy {acc_with:.2f}"
    assert acc_without <= 0.5 + 1e-9, f"text alone should not separate the labels: {acc_without:.2f}"


def _save_with_minilm_tokenizer(text_model, folder: Path) -> Path:
    """Save a (tiny, random) text model as a local Hugging Face folder with MiniLM's tokenizer files."""
    from mmre_demo.encoders.text import resolve_text_backbone

    text_model.save_pretrained(folder)
    src = Path(resolve_text_backbone("minilm"))
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / f, folder / f)
    return folder


def _tiny_hub_models(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A tiny BERT and a tiny ViT and CLIP saved as local Hugging Face folders (random weights)."""
    from transformers import BertConfig, BertModel, CLIPConfig, CLIPModel, ViTConfig, ViTModel

    bert_dir = _save_with_minilm_tokenizer(
        BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)),
        tmp_path / "tiny-bert")
    vit_dir = tmp_path / "tiny-vit"
    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64), add_pooling_layer=False).save_pretrained(vit_dir)
    clip_dir = tmp_path / "tiny-clip"
    CLIPModel(CLIPConfig(
        text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 24, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "intermediate_size": 48},
        projection_dim=16)).save_pretrained(clip_dir)
    return bert_dir, vit_dir, clip_dir


def test_hub_style_text_and_vision_backbones_plug_in(tmp_path: Path):
    bert_dir, vit_dir, clip_dir = _tiny_hub_models(tmp_path)
    photo = Image.new("RGB", (40, 30), (200, 30, 30))
    for vision in (vit_dir, clip_dir):
        config = RelationConfig(text_backbone=str(bert_dir), vision_backbone=str(vision), lora_r=2, lora_alpha=4)
        model = build_relation_model(config).eval()
        assert not model.vision.has_concepts
        cache = ImageCache(model)
        cache.add_images({"p": photo})
        a, b = ents("Alice Smith", "Paris")
        items = [pair_item(model, a, b, image_key="p")]
        out = run_batch(model, items, cache, explain=True)
        assert out.logits.shape == (1, len(RELATIONS))
        assert out.entity_attention.shape == (1, 2, 16)  # a 4 x 4 patch grid, no concept tokens
        model.save_pretrained(tmp_path / f"saved-{vision.name}")
        again = load_relation_model(tmp_path / f"saved-{vision.name}")
        assert torch.allclose(run_batch(again, items, cache).logits, out.logits, atol=1e-6)


def test_half_precision_text_checkpoint_loads_as_float32(tmp_path: Path):
    """An fp16 upload (a common hub format) must not make training run in fp16."""
    from transformers import BertConfig, BertModel

    from mmre_demo.encoders.text import load_text_backbone

    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    folder = _save_with_minilm_tokenizer(bert.half(), tmp_path / "tiny-bert-fp16")
    _, model = load_text_backbone(str(folder))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_half_precision_vision_checkpoint_loads_as_float32(tmp_path: Path):
    from transformers import ViTConfig, ViTModel

    from mmre_demo.encoders.vision import load_vision_backbone

    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64), add_pooling_layer=False).half().save_pretrained(tmp_path / "vit16")
    vision = load_vision_backbone(str(tmp_path / "vit16"))
    assert {p.dtype for p in vision.parameters()} == {torch.float32}


def test_packaged_backbone_integrity_is_checked(tmp_path: Path):
    from mmre_demo.encoders.integrity import IntegrityError, verify

    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"not the real weights")
    with pytest.raises(IntegrityError, match="does not match"):
        verify(fake, "minilm/model.safetensors")


def test_lora_adapts_attention_of_mpnet_style_backbones(tmp_path: Path):
    """MPNet names its attention projections q/k/v/o (BERT: query/key/value/dense); both get adapters."""
    from transformers import MPNetConfig, MPNetModel

    mpnet_dir = _save_with_minilm_tokenizer(
        MPNetModel(MPNetConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
                   add_pooling_layer=False),
        tmp_path / "tiny-mpnet")
    model = build_relation_model(RelationConfig(text_backbone=str(mpnet_dir), lora_r=2, lora_alpha=4))
    adapted = {n.rsplit(".lora_A", 1)[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if ".lora_A" in n}
    assert {"q", "k", "v", "o", "dense"} <= adapted
    a, b = ents("Alice Smith", "Paris")
    out = run_batch(model.eval(), [pair_item(model, a, b)], None, explain=True)
    assert out.logits.shape == (1, len(RELATIONS)) and out.token_attention is not None


def test_cross_attention_projects_each_image_once_with_the_same_result_as_per_pair_keys():
    from mmre_demo.model.fusion import CrossModalAttention

    torch.manual_seed(0)
    attn = CrossModalAttention(16).eval()
    with torch.no_grad():
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
            proj.weight.add_(0.1 * torch.randn_like(proj.weight))
    queries, keys = torch.randn(5, 2, 16), torch.randn(2, 7, 16)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 5:] = False  # the second image has fewer tokens
    index = torch.tensor([0, 1, 1, 0, 1])  # which image each pair reads
    with torch.no_grad():
        once, w_once = attn(queries, keys, mask, index)
        per_pair, w_pair = attn(queries, keys[index], mask[index])
    torch.testing.assert_close(once, per_pair, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(w_once, w_pair, atol=1e-6, rtol=1e-6)
    assert float(w_once[1, :, 5:].max()) < 1e-6  # masked tokens get no weight


def test_a_model_reads_with_the_backbones_first_layers_and_saves_that(tmp_path: Path):
    from mmre_demo.data.schema import InputError

    torch.manual_seed(0)
    model = build_relation_model(RelationConfig(text_layers=2, lora_r=4, lora_alpha=8)).eval()
    assert model.text_encoder.config.num_hidden_layers == 2
    assert not any(".layer.2." in n for n, _ in model.text_encoder.named_parameters())
    model.save_pretrained(tmp_path / "m")
    loaded = load_relation_model(tmp_path / "m", for_inference=True)
    assert loaded.config.text_layers == 2 and loaded.text_encoder.config.num_hidden_layers == 2
    a, b = ents("Alice Smith", "Bob Jones")
    items = [pair_item(model, a, b), pair_item(model, b, a)]
    np.testing.assert_allclose(predict_logits(model, items, None), predict_logits(loaded, items, None), atol=1e-4)
    with pytest.raises(InputError, match="has 6 layers"):
        build_relation_model(RelationConfig(text_layers=7))


def test_the_d29df61_teachers_config_loads_as_pair_markers_with_its_offset():
    """An old model folder's config (no `architecture`, one `none_bias`) maps to today's keys; keys no
    version uses are ignored."""
    old = {"backbone_training": "lora", "none_bias": 0.2, "lora_targets": ["query", "key", "value", "dense"],
           "labels": list(RELATIONS), "no_longer_a_key": 1}
    cfg = RelationConfig.from_dict(old)
    assert cfg.architecture == "pair-markers" and cfg.label_bias[0] == 0.2 and not any(cfg.label_bias[1:])


def test_research_backbone_trainings_are_found_by_name_and_an_unknown_one_is_refused():
    from torch import nn

    from mmre_demo.research.backbone_training import adapt_backbone

    assert not any(p.requires_grad for p in adapt_backbone(nn.Linear(2, 2), "frozen").parameters())
    assert all(p.requires_grad for p in adapt_backbone(nn.Linear(2, 2), "full").parameters())
    with pytest.raises(ValueError, match="unknown backbone training"):
        adapt_backbone(nn.Linear(2, 2), "nope")
