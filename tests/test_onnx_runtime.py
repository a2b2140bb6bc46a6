"""onnxruntime copies of the frozen networks (mmre_demo/encoders/onnx_runtime.py, mmre_demo/serving): the same
outputs as PyTorch, exported once into the cache; the serving models built from PyTorch's, which stay whole."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmre_demo.encoders import onnx_runtime
from mmre_demo.encoders.onnx_runtime import OnnxRunner
from mmre_demo.serving import one_shared_copy


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMRE_CACHE_DIR", str(tmp_path))
    return tmp_path


def small_module(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 3)).eval()


def runner(module: nn.Module) -> OnnxRunner | None:
    return OnnxRunner.for_module(module, (torch.zeros(1, 4),), "small", ["x"],
                                 {"x": {0: "batch"}, "output": {0: "batch"}})


def test_a_module_is_exported_once_and_gives_pytorchs_outputs(cache, monkeypatch):
    module = small_module()
    first = runner(module)
    assert first is not None and first.path.is_file() and first.path.is_relative_to(cache)
    x = torch.randn(5, 4)  # another batch size than the export's
    torch.testing.assert_close(first(x), module(x).detach(), atol=1e-5, rtol=1e-5)

    exports = []
    real_export = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: (exports.append(1), real_export(*a, **k)))
    assert runner(module).path == first.path and not exports  # same weights: the cached file
    other = runner(small_module(seed=1))
    assert exports == [1] and other.path != first.path  # other weights: exported to another file


def test_the_cache_keeps_a_few_exports_per_name(cache):
    paths = [runner(small_module(seed=k)).path for k in range(onnx_runtime.KEEP_PER_NAME + 2)]
    kept = sorted(cache.rglob("small-*.onnx"))
    assert len(kept) == onnx_runtime.KEEP_PER_NAME and paths[-1] in kept and paths[0] not in kept


def test_onnx_off_makes_pytorch_the_default_and_a_failed_export_gives_no_runner(cache, monkeypatch):
    from mmre_demo.serving import default_engine

    assert default_engine("cpu") == "onnxruntime"
    monkeypatch.setenv("MMRE_ONNX", "0")
    assert default_engine("cpu") == "torch"
    monkeypatch.delenv("MMRE_ONNX")

    def broken(*args, **kwargs):
        raise RuntimeError("Module onnx is not installed!")

    monkeypatch.setattr(torch.onnx, "export", broken)
    assert runner(small_module()) is None and not list(cache.rglob("*.onnx*"))  # nothing half-written left


def test_the_serving_vision_backbone_gives_pytorchs_features(cache):
    from mmre_demo.encoders.vision import load_vision_backbone
    from mmre_demo.serving import ServingVision
    from mmre_demo.serving.export import vision_features_runner

    vb = load_vision_backbone()
    served = ServingVision(vb, vision_features_runner(vb.model, vb.name, vb.image_size))
    pixels = torch.randn(3, 3, vb.image_size, vb.image_size)
    with torch.no_grad():
        torch.testing.assert_close(served.features(pixels), vb.features(pixels), atol=1e-4, rtol=1e-4)
        alone = served.features(pixels[1:2])
        torch.testing.assert_close(alone, served.features(pixels)[1:2], atol=1e-5, rtol=1e-5)  # batch-independent
        a, b = served(pixels), vb(pixels)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-3, rtol=1e-4)
    assert not hasattr(served, "model") and vb.model.extract_features  # the PyTorch backbone stays whole


def test_the_serving_tagger_reads_its_layers_from_onnxruntime_as_from_pytorch(cache):
    from mmre_demo.model.ner import NerTagger
    from mmre_demo.serving import ServingNerTagger
    from mmre_demo.serving.export import tagger_layers_runner

    tagger = NerTagger.from_pretrained()
    served = ServingNerTagger(tagger, tagger_layers_runner(tagger.encoder, str(tagger.config.text_backbone)))
    ids = torch.randint(1000, 20000, (3, 17))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded row
    with torch.no_grad():
        expected = tagger.hidden_states(ids, mask)
        got = served.hidden_states(ids, mask)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
        alone = served.hidden_states(ids[1:2, :9], mask[1:2, :9])
        torch.testing.assert_close(alone, got[1:2, :9], atol=1e-5, rtol=1e-5)  # padding changes nothing
    with pytest.raises(TypeError, match="does not train"):
        served.train()


def test_a_serving_relation_model_reads_its_passes_through_onnxruntime_as_through_pytorch(cache):
    from mmre_demo.data.paths import WeightsLayout
    from mmre_demo.data.schema import Entity
    from mmre_demo.model.packing import collate_passes
    from mmre_demo.model.relation import load_relation_model
    from mmre_demo.serving import EngineUnavailable, ServingModels, ServingRelationModel

    shipped = WeightsLayout.find().relation
    model = load_relation_model(shipped, device="cpu", for_inference=True)
    served = ServingModels.from_trained(model).relation
    assert isinstance(served, ServingRelationModel) and isinstance(served, type(model))
    caption = "Kim Jong Un met Donald Trump in Singapore on Tuesday."
    ents = [Entity("Kim Jong Un", 0, 11, "PER"), Entity("Donald Trump", 16, 28, "PER"),
            Entity("Singapore", 32, 41, "LOC")]
    passes = served.featurize(caption, ents, [(0, 1), (1, 0), (0, 2), (2, 1)])
    batch = collate_passes(passes, model.tokenizer.pad_token_id)
    ids, positions = batch["input_ids"], batch["position_ids"]
    mask = torch.zeros(batch["attention"].shape).masked_fill(~batch["attention"], torch.finfo(torch.float32).min)
    mask = mask[:, None]
    with torch.no_grad():
        hidden, attention = served.encode_text(ids, mask, positions, want_attention=True)
        expected_hidden, expected_attention = model.encode_text(ids, mask, positions, want_attention=True)
    torch.testing.assert_close(hidden, expected_hidden, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(attention, expected_attention, atol=1e-5, rtol=1e-4)
    assert all(p.numel() > 0 for p in model.text_encoder.parameters())  # the trained model is left whole
    trainable = load_relation_model(shipped, device="cpu")  # adapters not folded: it trains, so PyTorch
    with pytest.raises(EngineUnavailable):
        ServingModels.from_trained(trainable)


def test_one_session_per_thread_count(cache):
    r = runner(small_module())
    assert r.session(1) is r.session(1) and r.session(2) is not r.session(1)
    assert onnx_runtime.ort_options(1).intra_op_num_threads == 1


def test_a_session_reads_a_shared_table_in_place(cache):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Embedding(50, 8), nn.Linear(8, 3)).eval()
    ids = torch.randint(0, 50, (2, 5))
    expected = module(ids).detach()
    assert one_shared_copy([module[0].weight, torch.zeros(50, 8)]) is None  # unequal tables are not shared
    table = one_shared_copy([module[0].weight, module[0].weight.detach().clone()])
    assert table is not None and table.data_ptr() != module[0].weight.data_ptr()
    r = OnnxRunner.for_module(module, (ids,), "shared", ["ids"], {"ids": {0: "b", 1: "t"}, "output": {0: "b", 1: "t"}},
                              shared={"0.weight": table})
    bias = module[1].bias.detach().clone()
    torch.testing.assert_close(r(ids), expected, atol=1e-6, rtol=1e-6)
    table.zero_()  # the session reads the shared table, not a copy: only the Linear's bias is left
    torch.testing.assert_close(r(ids), bias.expand(2, 5, 3), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(module(ids).detach(), expected)  # the module itself is untouched
