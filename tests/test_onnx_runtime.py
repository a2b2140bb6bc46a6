"""onnxruntime copies of the frozen networks (mmre_demo/encoders/onnx_runtime.py): the same outputs as
PyTorch, exported once into the cache, and PyTorch when they are turned off."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmre_demo.encoders import onnx_runtime
from mmre_demo.encoders.onnx_runtime import OnnxRunner, one_shared_copy, release_weights, weights_released


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


def test_onnx_off_or_unavailable_means_pytorch(cache, monkeypatch):
    monkeypatch.setenv("MMRE_ONNX", "0")
    assert runner(small_module()) is None
    monkeypatch.delenv("MMRE_ONNX")

    def broken(*args, **kwargs):
        raise RuntimeError("Module onnx is not installed!")

    monkeypatch.setattr(torch.onnx, "export", broken)
    assert runner(small_module()) is None and not list(cache.rglob("*.onnx*"))  # nothing half-written left


def test_the_vision_backbone_runs_on_onnxruntime_with_pytorchs_features(cache):
    from mmre_demo.encoders.vision import load_vision_backbone

    vb = load_vision_backbone()
    assert isinstance(vb.onnx_runner(), OnnxRunner)
    pixels = torch.randn(3, 3, vb.image_size, vb.image_size)
    with torch.no_grad():
        torch.testing.assert_close(vb.features(pixels), vb.model.extract_features(pixels), atol=1e-4, rtol=1e-4)
        alone = vb.features(pixels[1:2])
        torch.testing.assert_close(alone, vb.features(pixels)[1:2], atol=1e-5, rtol=1e-5)  # batch-independent


def test_the_tagger_reads_its_layers_from_onnxruntime_as_from_pytorch(cache):
    from mmre_demo.model.ner import NerTagger

    tagger = NerTagger.from_pretrained()
    assert isinstance(tagger.onnx_runner(), OnnxRunner)
    ids = torch.randint(1000, 20000, (3, 17))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded row
    with torch.no_grad():
        expected = torch.stack(tagger.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                               .hidden_states, dim=2)
        got = tagger.hidden_states(ids, mask)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
        alone = tagger.hidden_states(ids[1:2, :9], mask[1:2, :9])
        torch.testing.assert_close(alone, got[1:2, :9], atol=1e-5, rtol=1e-5)  # padding changes nothing


def test_a_serving_relation_model_reads_its_passes_through_onnxruntime_as_through_pytorch(cache):
    from mmre_demo.data.paths import WeightsLayout
    from mmre_demo.data.schema import Entity
    from mmre_demo.model.packing import collate_passes
    from mmre_demo.model.relation import load_relation_model

    shipped = WeightsLayout.find().relation
    model = load_relation_model(shipped, device="cpu", for_inference=True)
    assert isinstance(model.onnx_runner(), OnnxRunner)
    caption = "Kim Jong Un met Donald Trump in Singapore on Tuesday."
    ents = [Entity("Kim Jong Un", 0, 11, "PER"), Entity("Donald Trump", 16, 28, "PER"),
            Entity("Singapore", 32, 41, "LOC")]
    passes = model.featurize(caption, ents, [(0, 1), (1, 0), (0, 2), (2, 1)])
    batch = collate_passes(passes, model.tokenizer.pad_token_id)
    ids, positions = batch["input_ids"], batch["position_ids"]
    mask = torch.zeros(batch["attention"].shape).masked_fill(~batch["attention"], torch.finfo(torch.float32).min)
    mask = mask[:, None]
    with torch.no_grad():
        hidden, attention = model.encode_text(ids, mask, positions, want_attention=True)
        out = model.text_encoder(input_ids=ids, attention_mask=mask, position_ids=positions, output_attentions=True)
    torch.testing.assert_close(hidden, out.last_hidden_state, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(attention, out.attentions[-1].mean(1), atol=1e-5, rtol=1e-4)
    trainable = load_relation_model(shipped, device="cpu")  # adapters not folded: it may be trained, so PyTorch
    assert trainable.onnx_runner() is None


def test_one_session_per_thread_count(cache):
    r = runner(small_module())
    assert r.session(1) is r.session(1) and r.session(2) is not r.session(1)
    assert onnx_runtime.ort_options(1).intra_op_num_threads == 1


def test_a_released_module_runs_on_its_session_which_reads_a_shared_table_in_place(cache):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Embedding(50, 8), nn.Linear(8, 3)).eval()
    ids = torch.randint(0, 50, (2, 5))
    expected = module(ids).detach()
    assert one_shared_copy([module[0].weight, torch.zeros(50, 8)]) is None  # unequal tables are not shared
    table = one_shared_copy([module[0].weight, module[0].weight.detach().clone()])
    assert table is not None and table.data_ptr() != module[0].weight.data_ptr()
    module[0].weight.data = table
    r = OnnxRunner.for_module(module, (ids,), "shared", ["ids"], {"ids": {0: "b", 1: "t"}, "output": {0: "b", 1: "t"}},
                              share=[table])
    bias = module[1].bias.detach().clone()
    release_weights(module, keep=[table])
    assert weights_released(module) and not weights_released(small_module())
    assert module[1].weight.numel() == 0 and module[0].weight.data_ptr() == table.data_ptr()
    torch.testing.assert_close(r(ids), expected, atol=1e-6, rtol=1e-6)  # the session kept its own Linear
    table.zero_()  # the session reads the shared table, not a copy: only the Linear's bias is left
    torch.testing.assert_close(r(ids), bias.expand(2, 5, 3), atol=1e-6, rtol=1e-6)
