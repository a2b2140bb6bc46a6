"""onnxruntime for the frozen networks: the OCR sessions, and the export, cache and runner of the serving
models' networks (the vision backbone's feature extractor, the tagger's MiniLM, the relation encoder).

Why: on the reference CPU onnxruntime runs the frozen EfficientNet-Lite0 feature extractor 3.5x and the
frozen MiniLM 2x faster than eager PyTorch, the same outputs to 1e-4 (`mmre_demo.tuning.ONNX_RUNTIME`).
Each ONNX file is exported from the PyTorch module on first use and cached, keyed by a digest of its
weights (`export_cached`): the packaged weights stay the one source; nothing is downloaded. Where the
export cannot be made (no `onnx` package) no runner is made and PyTorch serves (`serving.load_models`);
$MMRE_ONNX=0 makes PyTorch the default engine (`serving.default_engine`).

Which engine runs a model is chosen once, when it is loaded (`mmre_demo.serving`): the serving models
are their own classes around these runners; a PyTorch model never switches to a session by itself.
A weight two sessions hold alike (the tagger's and the relation encoder's word embeddings) is one tensor
that both read in place (`OnnxRunner.for_module(shared=...)`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmre_demo import tuning

if TYPE_CHECKING:  # torch is imported where a module is exported or run: the OCR and the CLI parser need none
    import torch
    from torch import nn

log = logging.getLogger(__name__)

ONNX_OPSET = 17
KEEP_PER_NAME = 3  # cached exports kept per module name (each retrained relation model has its own)
SPIN_THREADS = False  # spinning pools of several sessions fight for the cores (mmre_demo.tuning.OCR_THREADS)
_EXPORT_LOCK = threading.Lock()


def ort_options(threads: int) -> Any:
    """onnxruntime session options: all graph optimisations, the memory arena on, `threads` intra-op
    threads that do not spin (RapidOCR's own sessions turn the arena off)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = True
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if SPIN_THREADS else "0")
    return opts


def cpu_session(model: str | bytes, threads: int, initializers: Mapping[str, Any] | None = None) -> Any:
    """An InferenceSession on the CPU of an ONNX file (path) or its bytes. `initializers`: name -> OrtValue
    the session reads in place of its own copy of that initializer (the caller keeps the OrtValue alive;
    a name the graph lacks is ignored)."""
    import onnxruntime as ort

    opts = ort_options(threads)
    for name, value in (initializers or {}).items():
        opts.add_initializer(name, value)
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def cache_dir() -> Path:
    """$MMRE_CACHE_DIR, else ~/.cache/mmre_demo (the Docker image and CI point it at their own folder)."""
    return Path(os.environ.get("MMRE_CACHE_DIR") or Path.home() / ".cache" / "mmre_demo")


def weights_digest(module: nn.Module) -> str:
    """sha256 of the module's parameters and buffers (names, shapes, bytes): the ONNX file's cache key."""
    import torch

    h = hashlib.sha256(f"torch {torch.__version__} opset {ONNX_OPSET}".encode())
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def export_cached(module: nn.Module, example: tuple[torch.Tensor, ...], name: str, input_names: list[str],
                  dynamic_axes: dict[str, dict[int, str]], output_names: tuple[str, ...] = ("output",)) -> Path:
    """`module` (inputs like `example`; the `dynamic_axes` may change) as an ONNX file in the cache, made
    once. Raises what the export raises (e.g. an error without the `onnx` package)."""
    import torch

    def export(tmp: str) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), example, tmp, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=input_names, output_names=list(output_names), dynamic_axes=dynamic_axes)

    return write_cached(name, weights_digest(module), export)


def write_cached(name: str, key: str, write: Callable[[str], None]) -> Path:
    """The cached ONNX file `name`-`key`, written once by `write(temporary path)`; the KEEP_PER_NAME newest
    of a name are kept. Raises what `write` raises (nothing is left behind then)."""
    path = cache_dir() / "onnx" / f"{name}-{key}.onnx"
    with _EXPORT_LOCK:
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.part")
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, path)  # atomic: another process sees the whole file or none
        finally:
            Path(tmp).unlink(missing_ok=True)
        log.info("wrote %s to %s", name, path)
        _prune(path.parent, name)
        return path


def _prune(folder: Path, name: str) -> None:
    """Keep the KEEP_PER_NAME newest exports of `name` (one per set of weights): the cache stays bounded."""
    exports = sorted(folder.glob(f"{name}-*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in exports[KEEP_PER_NAME:]:
        old.unlink(missing_ok=True)


def enabled() -> bool:
    """$MMRE_ONNX: 0 makes PyTorch the default engine on a CPU too; unset, the measured default
    (mmre_demo.tuning)."""
    raw = os.environ.get("MMRE_ONNX", "").strip().lower()
    return tuning.ONNX_RUNTIME.value if not raw else raw not in ("0", "false", "no", "off")


class OnnxRunner:
    """A frozen module exported to ONNX and run by onnxruntime on the CPU: tensors in, a tensor out (a tuple
    of them for a module with several outputs). One session per thread count (the caller's torch thread
    count when called: the pipeline's `threads`). `shared`: initializer name -> a tensor whose memory the
    sessions read in place of their own copy."""

    def __init__(self, path: Path, input_names: list[str], n_outputs: int = 1,
                 shared: Mapping[str, torch.Tensor] | None = None):
        self.path, self.input_names, self.n_outputs = path, input_names, n_outputs
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._shared = dict(shared or {})  # kept alive: the sessions read their memory
        self._shared_values: dict[str, Any] = {}
        if self._shared:
            import onnxruntime as ort

            self._shared_values = {n: ort.OrtValue.ortvalue_from_numpy(t.detach().numpy())
                                   for n, t in self._shared.items()}

    @classmethod
    def for_module(cls, module: nn.Module, example: tuple[torch.Tensor, ...], name: str, input_names: list[str],
                   dynamic_axes: dict[str, dict[int, str]], output_names: tuple[str, ...] = ("output",),
                   shared: Mapping[str, torch.Tensor] | None = None) -> OnnxRunner | None:
        """The runner of `module` (exported and cached on first use), or None where it cannot be made (no
        onnxruntime or no `onnx` package: logged). `shared`: names in `module.state_dict()` -> tensors its
        sessions read in place of their own copy of that weight (an embedding table: used as it is, never
        repacked; the caller's tensor must equal the module's)."""
        import torch

        try:
            import onnxruntime  # noqa: F401

            runner = cls(export_cached(module, example, name, input_names, dynamic_axes, output_names), input_names,
                         len(output_names), shared)
            runner.session(torch.get_num_threads())  # opened now, while the cached file is surely there
            return runner
        except Exception as exc:  # noqa: BLE001 - the caller chooses PyTorch then
            log.info("%s: no onnxruntime session (%s: %s)", name, type(exc).__name__, exc)
            return None

    def session(self, threads: int) -> Any:
        with self._lock:
            if threads not in self._sessions:
                self._sessions[threads] = cpu_session(str(self.path), threads, self._shared_values)
            return self._sessions[threads]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        import torch

        feed = {n: x.detach().contiguous().numpy() for n, x in zip(self.input_names, inputs)}
        outputs = [torch.from_numpy(y) for y in self.session(torch.get_num_threads()).run(None, feed)]
        return outputs[0] if self.n_outputs == 1 else tuple(outputs)
