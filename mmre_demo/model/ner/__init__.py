"""Entity tagger for raw captions: words -> BIO tags (PER, LOC, ORG, MISC) -> character spans.

The text backbone (uncased MiniLM by default) reads the word pieces; each word also gets a
*shape* id (kind x casing, e.g. "Title word", "ALLCAPS hashtag").
The backbone stays frozen (fine-tuning it did not fit the CPU budget): every layer's output is
averaged over each word's pieces, an ELMo-style scalar mix picks the depth, and a small BiLSTM-CRF
head adds the casing the uncased backbone throws away (a word-shape embedding and a cased
character CNN). Decoding is Viterbi, constrained to valid BIO sequences; confidences are CRF
marginals. Only the head is saved (a few MB); features can be cached once for training.

One file per concern: `tokenizer` (caption -> words), `shapes` (word shape, cased characters),
`bio` (BIO rules), `crf` (NumPy Viterbi and marginals), `config` (NerConfig), `modules` (the trained
head), `tagger` (NerTagger: load, tag captions).
"""

from __future__ import annotations

from mmre_demo.lazy import lazy_exports

# Public names and the file that holds each. Imported on first use, so that reading `NerConfig`
# (e.g. `mmre --help`'s defaults) does not import torch.
_HOME = {
    "bio_spans": "bio", "repair_bio": "bio", "NerConfig": "config", "viterbi_bio": "crf",
    "CharCNN": "modules", "NerHead": "modules", "ScalarMix": "modules", "WordBatch": "modules",
    "NUM_SHAPES": "shapes", "char_ids": "shapes", "word_shape": "shapes", "NerTagger": "tagger",
    "Word": "tokenizer", "pre_tokenize": "tokenizer",
}
__all__ = sorted(_HOME)


__getattr__, __dir__ = lazy_exports(__name__, _HOME)
