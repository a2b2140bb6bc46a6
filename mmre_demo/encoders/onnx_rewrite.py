"""RapidOCR's ONNX models rewritten into the ops onnxruntime's CPU kernels fuse, once, into the cache.

Why: PaddleOCR's PP-LCNet models (the PP-OCRv4 detector and recogniser, the mobile angle classifier) come out
of paddle2onnx with every hard-swish spelled as four elementwise ops (x * clip(x + 3, 0, 6) / 6) and every
"learnable affine block" as a scalar Mul + Add after a convolution. onnxruntime fuses neither, and each of them
takes the tensor out of its blocked NCHWc layout and back (ReorderOutput / ReorderInput), so on the reference
CPU a third of the detector's time went to elementwise passes and reorders (`benchmarks/bench_ocr.py
--stages`; `mmre_demo.tuning.OCR_GRAPH_REWRITE`). Three exact rewrites fix that:

1. hard-swish as HardSigmoid(alpha=1/6, beta=0.5) * x, which onnxruntime folds into the convolution before it
   as a fused HardSwish activation;
2. a convolution followed by a scalar scale and shift becomes one convolution (weights * s, bias * s + t);
3. any other scalar scale and shift of a 4-d tensor becomes a 1 x 1 depthwise convolution, which stays in the
   NCHWc layout.

The same function, to float rounding (tests compare the outputs). No library does these (onnxoptimizer and
onnx-simplifier fold BatchNorm and biases into convolutions, not scalar Mul / Add chains), so they are here,
each guarded by its exact pattern; a model without the patterns comes out unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmre_demo import tuning
from mmre_demo.encoders.onnx_runtime import write_cached

log = logging.getLogger(__name__)

REWRITE_VERSION = "1"  # part of the cache key: a changed rewrite never reads an old file back


@dataclass
class _Graph:
    """An ONNX graph with its scalar constants, producers and consumers indexed (rebuilt after each pass)."""

    model: Any
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    producers: dict[str, Any] = field(default_factory=dict)
    consumers: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from onnx import numpy_helper

        g = self.model.graph
        for node in g.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
            self.producers.update({name: node for name in node.output})
        self.constants.update({t.name: numpy_helper.to_array(t) for t in g.initializer})

    def scalar(self, name: str) -> float | None:
        value = self.constants.get(name)
        return float(value.ravel()[0]) if value is not None and value.size == 1 else None

    def only_consumer(self, name: str, op_type: str) -> Any | None:
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    def other_input(self, node: Any, known: str) -> str | None:
        rest = [name for name in node.input if name != known]
        return rest[0] if len(rest) == 1 else None

    def scale_shift_after(self, name: str) -> tuple[Any, Any, float, float] | None:
        """`name` -> Mul(scalar s) -> Add(scalar t), each the only user of its input: (mul, add, s, t)."""
        mul = self.only_consumer(name, "Mul")
        s = self.scalar(self.other_input(mul, name) or "") if mul is not None else None
        add = self.only_consumer(mul.output[0], "Add") if s is not None else None
        t = self.scalar(self.other_input(add, mul.output[0]) or "") if add is not None else None
        return (mul, add, s, t) if t is not None else None

    def add_initializer(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def replace_nodes(self, drop: set[int], replace: dict[int, list[Any]]) -> None:
        nodes = []
        for node in self.model.graph.node:
            if id(node) in replace:
                nodes.extend(replace[id(node)])
            elif id(node) not in drop:
                nodes.append(node)
        del self.model.graph.node[:]
        self.model.graph.node.extend(nodes)


def fuse_hard_swish(model: Any) -> int:
    """Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6) -> Mul(x, HardSigmoid(x; 1/6, 0.5)); returns how many."""
    from onnx import helper

    g = _Graph(model)
    drop, replace = set(), {}
    for clip in [n for n in model.graph.node if n.op_type == "Clip"]:
        add = g.producers.get(clip.input[0])
        if add is None or add.op_type != "Add" or len(g.consumers[clip.input[0]]) != 1:
            continue
        x = [name for name in add.input if g.scalar(name) is None]
        if len(x) != 1 or sorted(g.scalar(n) for n in add.input if n != x[0]) != [3.0]:
            continue
        if [g.scalar(name) for name in clip.input[1:]] != [0.0, 6.0]:
            continue
        mul = g.only_consumer(clip.output[0], "Mul")
        if mul is None or set(mul.input) != {x[0], clip.output[0]}:
            continue
        div = g.only_consumer(mul.output[0], "Div")
        if div is None or div.input[0] != mul.output[0] or g.scalar(div.input[1]) != 6.0:
            continue
        gate = f"{div.output[0]}/hard_sigmoid"
        replace[id(div)] = [helper.make_node("HardSigmoid", [x[0]], [gate], alpha=1 / 6, beta=0.5),
                            helper.make_node("Mul", [x[0], gate], [div.output[0]])]
        drop.update({id(add), id(clip), id(mul)})
    g.replace_nodes(drop, replace)
    return len(replace)


def fold_scale_shift_into_conv(model: Any) -> int:
    """Conv(x; W, b) -> Mul(s) -> Add(t) -> one Conv(x; W s, b s + t); returns how many."""
    g = _Graph(model)
    drop = set()
    count = 0
    for conv in [n for n in model.graph.node if n.op_type == "Conv"]:
        if len(conv.input) < 2 or conv.input[1] not in g.constants:
            continue
        found = g.scale_shift_after(conv.output[0])
        if found is None:
            continue
        mul, add, s, t = found
        weight = g.constants[conv.input[1]].astype(np.float32)
        bias = (g.constants[conv.input[2]].astype(np.float32) if len(conv.input) > 2
                else np.zeros(weight.shape[0], np.float32))
        x = conv.input[0]
        w_name = g.add_initializer(f"{add.output[0]}/folded_weight", weight * np.float32(s))
        b_name = g.add_initializer(f"{add.output[0]}/folded_bias", bias * np.float32(s) + np.float32(t))
        del conv.input[:]
        conv.input.extend([x, w_name, b_name])
        conv.output[0] = add.output[0]
        drop.update({id(mul), id(add)})
        count += 1
    g.replace_nodes(drop, {})
    return count


def scale_shift_as_depthwise_conv(model: Any) -> int:
    """Any other x -> Mul(s) -> Add(t) on an N x C x H x W tensor -> a 1 x 1 depthwise Conv; returns how many."""
    from onnx import helper, shape_inference

    inferred = shape_inference.infer_shapes(model).graph
    channels = {}
    for value in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            channels[value.name] = dims[1].dim_value
    g = _Graph(model)
    drop, replace = set(), {}
    for mul in [n for n in model.graph.node if n.op_type == "Mul"]:
        x = [name for name in mul.input if g.scalar(name) is None]
        if len(x) != 1 or x[0] not in channels:
            continue
        found = g.scale_shift_after(x[0]) if g.only_consumer(x[0], "Mul") is mul else None
        if found is None:
            continue
        _, add, s, t = found
        c = channels[x[0]]
        w_name = g.add_initializer(f"{add.output[0]}/affine_weight", np.full((c, 1, 1, 1), s, np.float32))
        b_name = g.add_initializer(f"{add.output[0]}/affine_bias", np.full((c,), t, np.float32))
        replace[id(add)] = [helper.make_node("Conv", [x[0], w_name, b_name], [add.output[0]], group=c,
                                             kernel_shape=[1, 1])]
        drop.add(id(mul))
    g.replace_nodes(drop, replace)
    return len(replace)


def drop_unused_constants(model: Any) -> int:
    """Constant nodes nothing reads any more (the weights the folds replaced); returns how many."""
    g = _Graph(model)
    outputs = {value.name for value in model.graph.output}
    unused = {id(n) for n in model.graph.node
              if n.op_type == "Constant" and n.output[0] not in g.consumers and n.output[0] not in outputs}
    g.replace_nodes(unused, {})
    return len(unused)


PASSES = (fuse_hard_swish, fold_scale_shift_into_conv, scale_shift_as_depthwise_conv, drop_unused_constants)


def rewrite(model: Any) -> dict[str, int]:
    """Every pass in order, in place; how many patterns each rewrote."""
    import onnx

    counts = {rule.__name__: rule(model) for rule in PASSES}
    onnx.checker.check_model(model)
    return counts


@functools.lru_cache(maxsize=16)
def source_digest(path: str | Path) -> str:
    """The cache key of a shipped model file: read and hashed once per process, not once per OCR engine."""
    h = hashlib.sha256(f"rewrite {REWRITE_VERSION}".encode())
    h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def cpu_friendly(model_path: str | Path) -> str:
    """The rewritten copy of `model_path` (made once, kept in the ONNX cache), or `model_path` itself where
    the rewrite is off (`tuning.OCR_GRAPH_REWRITE`) or cannot be made (no `onnx` package, a model it cannot
    check): the original computes the same, a little slower."""
    if not tuning.OCR_GRAPH_REWRITE.value:
        return str(model_path)
    try:
        import onnx

        stem = Path(model_path).stem

        def write(tmp: str) -> None:
            model = onnx.load(str(model_path))
            counts = rewrite(model)
            onnx.save(model, tmp)
            log.info("rewrote %s for the CPU: %s", stem, counts)

        return str(write_cached(f"{stem}-cpu", source_digest(model_path), write))
    except Exception as exc:  # noqa: BLE001 - the original model always works
        log.info("%s as shipped (no rewrite: %s: %s)", Path(model_path).name, type(exc).__name__, exc)
        return str(model_path)
