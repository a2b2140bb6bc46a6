"""RapidOCR's models rewritten for onnxruntime's CPU kernels (mmre_demo.encoders.onnx_rewrite): each rewrite on
a small graph built here, the three shipped OCR models computing what they computed, the cache, the fallback,
and the 34 sample images read exactly as before."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mmre_demo import tuning  # noqa: E402
from mmre_demo.encoders import onnx_rewrite  # noqa: E402
from mmre_demo.encoders.onnx_runtime import ort_options  # noqa: E402


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMRE_CACHE_DIR", str(tmp_path))


def _const(name: str, value: float | np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, np.float32), name))


def paddle_like_block(channels: int = 4) -> onnx.ModelProto:
    """Conv -> scale / shift -> hard-swish (as paddle2onnx writes it) -> scale / shift -> Conv, as in PP-LCNet."""
    rng = np.random.default_rng(0)
    nodes = [
        _const("w1", rng.standard_normal((channels, 3, 3, 3))), _const("b1", rng.standard_normal(channels)),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        _const("s1", 1.7), helper.make_node("Mul", ["s1", "c1"], ["m1"]),
        _const("t1", 0.3), helper.make_node("Add", ["m1", "t1"], ["a1"]),
        _const("three", 3.0), helper.make_node("Add", ["a1", "three"], ["h1"]),
        _const("zero", 0.0), _const("six", 6.0), helper.make_node("Clip", ["h1", "zero", "six"], ["h2"]),
        helper.make_node("Mul", ["a1", "h2"], ["h3"]),
        _const("six_b", 6.0), helper.make_node("Div", ["h3", "six_b"], ["act"]),
        _const("s2", 0.6), helper.make_node("Mul", ["act", "s2"], ["m2"]),
        _const("t2", -0.2), helper.make_node("Add", ["m2", "t2"], ["a2"]),
        _const("w2", rng.standard_normal((channels, channels, 1, 1))),
        helper.make_node("Conv", ["a2", "w2"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 16, 16])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])


def run(model: onnx.ModelProto | str, x: np.ndarray) -> np.ndarray:
    source = model if isinstance(model, str) else model.SerializeToString()
    session = ort.InferenceSession(source, sess_options=ort_options(1), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_each_rewrite_finds_its_pattern_and_the_block_computes_the_same():
    model = paddle_like_block()
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    before = run(model, x)
    counts = onnx_rewrite.rewrite(model)
    assert counts == {"fuse_hard_swish": 1, "fold_scale_shift_into_conv": 1, "scale_shift_as_depthwise_conv": 1,
                      "drop_unused_constants": counts["drop_unused_constants"]}
    assert counts["drop_unused_constants"] >= 6  # the replaced weights, scalars and hard-swish constants
    ops = [n.op_type for n in model.graph.node if n.op_type != "Constant"]
    assert ops == ["Conv", "HardSigmoid", "Mul", "Conv", "Conv"]
    np.testing.assert_allclose(run(model, x), before, rtol=1e-5, atol=1e-5)


def test_a_graph_without_the_patterns_comes_out_unchanged():
    model = paddle_like_block()
    for node in model.graph.node:  # a scale that is not a scalar: no longer the affine block
        if node.output[0] == "s1":
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.full((1, 4, 1, 1), 1.7, np.float32), "s1"))
        if node.output[0] == "three":  # hard-swish with another offset is not hard-swish
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.asarray(2.0, np.float32), "three"))
    counts = onnx_rewrite.rewrite(model)
    assert counts["fuse_hard_swish"] == counts["fold_scale_shift_into_conv"] == 0
    assert counts["scale_shift_as_depthwise_conv"] == 1  # only the second, scalar scale / shift


def _ocr_models() -> dict[str, str]:
    pytest.importorskip("rapidocr_onnxruntime")
    from mmre_demo.encoders.ocr import _model_paths

    return _model_paths()


@pytest.mark.parametrize("stage, shape, tolerance", [
    ("Det", (1, 3, 480, 640), 1e-5), ("Cls", (6, 3, 48, 192), 1e-5), ("Rec", (6, 3, 48, 320), 1e-4)])
def test_the_ocr_models_compute_what_they_computed(stage, shape, tolerance):
    original = _ocr_models()[stage]
    rewritten = onnx_rewrite.cpu_friendly(original)
    assert rewritten != original
    x = np.random.default_rng(2).uniform(-1, 1, shape).astype(np.float32)
    np.testing.assert_allclose(run(rewritten, x), run(original, x), atol=tolerance)


def test_the_detector_loses_its_elementwise_chains():
    model = onnx.load(onnx_rewrite.cpu_friendly(_ocr_models()["Det"]))
    ops = [n.op_type for n in model.graph.node]
    assert "Clip" not in ops and "Div" not in ops
    assert ops.count("HardSigmoid") >= 24


def test_the_rewrite_is_made_once_and_read_back(tmp_path):
    original = _ocr_models()["Det"]
    first = Path(onnx_rewrite.cpu_friendly(original))
    assert first.is_relative_to(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert Path(onnx_rewrite.cpu_friendly(original)) == first
    assert first.stat().st_mtime_ns == stamp


def test_without_the_onnx_package_or_switched_off_the_shipped_model_is_used(monkeypatch):
    original = _ocr_models()["Det"]
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    assert onnx_rewrite.cpu_friendly(original) == original
    monkeypatch.delitem(sys.modules, "onnx")
    monkeypatch.setattr(tuning, "OCR_GRAPH_REWRITE", dataclasses.replace(tuning.OCR_GRAPH_REWRITE, value=False))
    assert onnx_rewrite.cpu_friendly(original) == original


def test_the_sample_images_are_read_exactly_as_before(shared_data, monkeypatch):
    from PIL import Image

    from mmre_demo.encoders.ocr import TextReader

    def read_all(rewrite: bool) -> dict[str, list[tuple[str, float]]]:
        monkeypatch.setattr(tuning, "OCR_GRAPH_REWRITE", dataclasses.replace(tuning.OCR_GRAPH_REWRITE, value=rewrite))
        reader = TextReader(threads=1)
        assert reader.load()
        return {p.name: [(line.text, round(line.confidence, 3)) for line in reader.read(Image.open(p)).lines]
                for p in sorted((shared_data / "mnre_images_sample").iterdir())}

    before, after = read_all(False), read_all(True)
    assert len(before) == 34 and sum(map(len, before.values())) > 30
    assert after == before
