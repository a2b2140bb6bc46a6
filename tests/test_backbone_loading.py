"""Loading the backbones: the frozen MiniLM is built once per process and shared by its frozen users, and the
expected transformers "LOAD REPORT" (MiniLM's pooler, left out on purpose) goes to our debug log, not stderr,
while a report of missing keys still warns."""

from __future__ import annotations

import logging

import pytest
from transformers.utils import logging as hf_logging

from mmre_demo.data.paths import SHIPPED_WEIGHTS
from mmre_demo.encoders.text import SentenceEmbedder, expected_load_report_at_debug, load_text_backbone
from mmre_demo.model.ner import NerTagger


@pytest.fixture
def transformers_warns():
    """transformers at its default verbosity (WARNING), as a library user has it."""
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    yield
    hf_logging.set_verbosity(before)


def test_loading_minilm_warns_no_load_report_and_logs_it_at_debug(transformers_warns, caplog):
    with caplog.at_level(logging.DEBUG, logger="mmre_demo.encoders.text"):
        load_text_backbone("minilm")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "LOAD REPORT" in r.getMessage()]
    debug = [r.getMessage() for r in caplog.records if r.name == "mmre_demo.encoders.text"]
    assert any("LOAD REPORT" in m and "pooler.dense" in m for m in debug), debug


def test_a_report_of_missing_keys_still_warns(transformers_warns, caplog):
    with expected_load_report_at_debug():
        hf_logging.get_logger("transformers.modeling_utils").warning("BertModel LOAD REPORT\nencoder.x | MISSING")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == ["BertModel LOAD REPORT\nencoder.x | MISSING"]


def test_the_frozen_users_share_one_backbone_and_get_their_own_tokenizers():
    a = NerTagger.from_pretrained(SHIPPED_WEIGHTS / "ner")
    b = NerTagger.from_pretrained(SHIPPED_WEIGHTS / "ner")
    embedder = SentenceEmbedder.load("minilm")
    assert a.encoder is b.encoder is embedder.model
    assert a.tokenizer is not b.tokenizer
    assert not any(p.requires_grad for p in a.encoder.parameters()) and not a.encoder.training
    caption = "Eileen Collins of NASA poses in Houston"
    assert a.tag(caption) == b.tag(caption) and len(a.tag(caption)) == 3


def test_the_command_line_parser_imports_neither_torch_nor_transformers():
    """`mmre --help` and the option defaults read the configs and the option types only (torch-free)."""
    import subprocess
    import sys

    code = ("import sys; from mmre_demo.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
