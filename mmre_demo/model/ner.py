"""Entity tagger for raw captions: words -> BIO tags (PER, LOC, ORG, MISC) -> character spans.

The text backbone (uncased MiniLM by default) reads the word pieces; each word also gets a
*shape* id (kind x casing, e.g. "Title word", "ALLCAPS hashtag").
The backbone stays frozen (fine-tuning it did not fit the CPU budget): every layer's output is
averaged over each word's pieces, an ELMo-style scalar mix picks the depth, and a small BiLSTM-CRF
head adds the casing the uncased backbone throws away (a word-shape embedding and a cased
character CNN). Decoding is Viterbi, constrained to valid BIO sequences; confidences are CRF
marginals. Only the head is saved (a few MB); features can be cached once for training.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mmre_demo.data.conll import TAGS
from mmre_demo.data.schema import Entity, check_caption

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

# ---- raw caption -> words with character offsets --------------------------------------------
_TRAIL = r"""[.,!?;:)\]}"'”’]"""
_TOKEN_RE = re.compile(
    rf"""
    (?P<url>(?:https?://|www\.)\S+?(?={_TRAIL}*(?:\s|$)))   # URL, trailing punctuation left out
    |(?P<prefix>[@#])(?=[^\W_]|_)                            # '@'/'#' split from the name (Twitter-2017 style)
    |(?P<num>\d+(?:[.,:]\d+)*(?!\w))                          # 3, 4.99, 10:30, 1,000
    |(?P<word>\w+)                                            # letters, digits, underscores
    |(?P<other>\S[\u200d\ufe0e\ufe0f\u20e3\U0001F3FB-\U0001F3FF]*)  # one symbol / emoji (+ modifiers)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int


def pre_tokenize(caption: str) -> list[Word]:
    """Split a raw caption into words whose `[start, end)` index the original string."""
    return [Word(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(caption)]


# ---- word shape (kind x casing) ------------------------------------------------------------
_KINDS = ("pad", "word", "number", "punct", "url", "mention", "hashtag", "symbol")
_CASINGS = ("none", "lower", "title", "upper", "single_upper", "mixed")
NUM_SHAPES = len(_KINDS) * len(_CASINGS)
_URL_RE = re.compile(r"^(?:https?://|www\.)", re.IGNORECASE)


def _kind(token: str) -> str:
    if _URL_RE.match(token):
        return "url"
    if len(token) > 1 and token[0] == "@":
        return "mention"
    if len(token) > 1 and token[0] == "#":
        return "hashtag"
    if any(c.isalpha() for c in token):
        return "word"
    if any(c.isdigit() for c in token):
        return "number"
    if all(unicodedata.category(c).startswith("P") for c in token):
        return "punct"
    return "symbol"


def _casing(token: str) -> str:
    letters = [c for c in token.lstrip("@#") if c.isalpha()]
    if not letters:
        return "none"
    if len(letters) == 1:
        return "single_upper" if letters[0].isupper() else "lower"
    if all(c.islower() for c in letters):
        return "lower"
    if all(c.isupper() for c in letters):
        return "upper"
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return "title"
    return "mixed"


def word_shape(token: str) -> int:
    """Shape id in [1, NUM_SHAPES): kind x casing (0 is padding)."""
    return _KINDS.index(_kind(token)) * len(_CASINGS) + _CASINGS.index(_casing(token))


# ---- BIO decoding -------------------------------------------------------------------------
def bio_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """`[(first_word, end_word_exclusive, type)]` with the seqeval (non-strict) convention:
    an I- that does not continue an entity of its type starts a new one."""
    spans: list[tuple[int, int, str]] = []
    start, etype = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-")
        continues = prefix == "I" and start is not None and t == etype
        if start is not None and not continues:
            spans.append((start, i, etype))
            start, etype = None, None
        if prefix in ("B", "I") and not continues:
            start, etype = i, t
    return spans


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Rewrite an I- that starts an entity as B- (the entities stay those seqeval reads).

    About 4% of Twitter-2015 train tweets have such tags; a CRF that forbids O -> I- could not
    score them otherwise.
    """
    out, prev = [], "O"
    for tag in tags:
        if tag.startswith("I-") and prev not in (f"B-{tag[2:]}", tag):
            tag = f"B-{tag[2:]}"
        out.append(tag)
        prev = tag
    return out


def _allowed_transitions(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(from, to) mask of valid BIO moves and a start mask (no I- first); cached per tag set."""
    trans, start = _allowed_transitions_cached(tuple(tags))
    return trans.clone(), start.clone()


@functools.lru_cache(maxsize=8)
def _allowed_transitions_cached(tags: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(tags)
    trans = torch.ones(n, n, dtype=torch.bool)
    start = torch.ones(n, dtype=torch.bool)
    for j, to in enumerate(tags):
        if to.startswith("I-"):
            start[j] = False
            for i, frm in enumerate(tags):
                trans[i, j] = frm in (f"B-{to[2:]}", to)
    return trans, start


def viterbi_bio(scores: torch.Tensor, tags: Sequence[str], transitions: torch.Tensor | None = None,
                start_scores: torch.Tensor | None = None, end_scores: torch.Tensor | None = None) -> list[int]:
    """Best tag path over (n_words, n_tags) scores under the BIO constraints (+ learned CRF scores).

    NumPy rather than torch: for one caption the per-op overhead of torch dominates (measured).
    """
    n = scores.shape[0]
    if n == 0:
        return []
    allowed, start_ok = _allowed_transitions(tags)
    trans = np.where(allowed.numpy(), 0.0, -np.inf)
    if transitions is not None:
        trans = trans + _np(transitions)
    em = _np(scores)
    score = em[0] + np.where(start_ok.numpy(), 0.0, -np.inf)
    if start_scores is not None:
        score = score + _np(start_scores)
    back = []
    for t in range(1, n):
        cand = score[:, None] + trans  # (from, to)
        idx = cand.argmax(0)  # best previous tag for each tag
        score = cand[idx, np.arange(len(idx))] + em[t]
        back.append(idx)
    if end_scores is not None:
        score = score + _np(end_scores)
    path = [int(score.argmax())]
    for idx in reversed(back):
        path.append(int(idx[path[-1]]))
    return path[::-1]


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy().astype(np.float64)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


# ---- characters ---------------------------------------------------------------------------
CHAR_VOCAB = 512  # ids: 0 pad; Latin-1 code points as themselves (+1); the rest hashed into [257, 512)


def char_ids(token: str, max_chars: int) -> list[int]:
    """Cased character ids of a word (the backbone is uncased; these keep the casing)."""
    return [ord(c) + 1 if ord(c) < 256 else 257 + ord(c) % (CHAR_VOCAB - 257) for c in token[:max_chars]]


# ---- config ---------------------------------------------------------------------------------
@dataclass
class NerConfig:
    text_backbone: str = "minilm"
    tags: list[str] = field(default_factory=lambda: list(TAGS))
    max_length: int = 128  # word pieces per backbone window, [CLS] and [SEP] included
    max_pieces_per_word: int = 8  # long URLs/hashtags are cut
    use_shape: bool = True
    shape_dim: int = 32
    use_chars: bool = True
    char_dim: int = 32
    char_filters: int = 64
    max_chars: int = 20
    lstm_hidden: int = 200  # per direction; 0 = no BiLSTM (linear head on the features)
    use_crf: bool = True
    dropout: float = 0.33
    # Annotation conventions the head learned (one learned embedding each): data sets disagree on what is
    # an entity (MNRE marks handles and names that Twitter-NER leaves out); `tag()` uses `tag_convention`.
    conventions: list[str] = field(default_factory=lambda: ["twitter"])
    tag_convention: str = "twitter"
    convention_dim: int = 16
    int8_scope: str = "all"  # which backbone Linear layers go int8 on CPU: "all" or "attention"
    metrics: dict[str, Any] = field(default_factory=dict)  # measured numbers, for the model card

    @property
    def num_tags(self) -> int:
        return len(self.tags)

    def convention_id(self, name: str | None = None) -> int:
        """Index of a convention (default: the one `tag()` uses); a clear error for an unknown one."""
        name = name or self.tag_convention
        if name not in self.conventions:
            raise ValueError(f"unknown annotation convention {name!r}; this tagger knows {self.conventions}")
        return self.conventions.index(name)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "NerConfig":
        raw = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


# ---- the trained head ---------------------------------------------------------------------
class ScalarMix(nn.Module):
    """Softmax-weighted sum of the backbone's layers (ELMo style): lets the head pick its depth."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(1))

    def forward(self, layers: torch.Tensor) -> torch.Tensor:  # (..., L, D) -> (..., D)
        w = self.weights.softmax(0).to(layers.dtype)
        return self.gamma * (layers * w.unsqueeze(-1)).sum(-2)


class CharCNN(nn.Module):
    def __init__(self, dim: int, filters: int):
        super().__init__()
        self.embed = nn.Embedding(CHAR_VOCAB, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, filters, kernel_size=3, padding=1)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:  # (B, W, C) -> (B, W, F)
        b, w, c = chars.shape
        x = self.embed(chars.view(b * w, c)).transpose(1, 2)
        x = self.conv(x).masked_fill((chars.view(b * w, c) == 0).unsqueeze(1), -1e4)
        return x.max(-1).values.clamp(min=-1.0).view(b, w, -1)


class NerHead(nn.Module):
    """Word features (layer mix of the frozen backbone + shape + chars) -> BiLSTM -> tag scores (+ CRF)."""

    def __init__(self, config: NerConfig, num_layers: int, dim: int):
        super().__init__()
        self.config = config
        self.mix = ScalarMix(num_layers)
        width = dim
        if config.use_shape:
            self.shape = nn.Embedding(NUM_SHAPES, config.shape_dim, padding_idx=0)
            width += config.shape_dim
        if config.use_chars:
            self.chars = CharCNN(config.char_dim, config.char_filters)
            width += config.char_filters
        if len(config.conventions) > 1:
            self.convention = nn.Embedding(len(config.conventions), config.convention_dim)
            width += config.convention_dim
        self.dropout = nn.Dropout(config.dropout)
        if config.lstm_hidden:
            self.lstm = nn.LSTM(width, config.lstm_hidden, batch_first=True, bidirectional=True)
            width = 2 * config.lstm_hidden
        self.out = nn.Linear(width, config.num_tags)
        if config.use_crf:
            self.transitions = nn.Parameter(torch.zeros(config.num_tags, config.num_tags))  # (from, to)
            self.start = nn.Parameter(torch.zeros(config.num_tags))
            self.end = nn.Parameter(torch.zeros(config.num_tags))
        allowed, start_ok = _allowed_transitions(config.tags)
        self.register_buffer("allowed", allowed, persistent=False)
        self.register_buffer("start_ok", start_ok, persistent=False)

    def forward(self, feats: torch.Tensor, shapes: torch.Tensor, chars: torch.Tensor,
                mask: torch.Tensor, convention: torch.Tensor | None = None) -> torch.Tensor:
        """(B, W, L, D) layer features, (B, W) shapes, (B, W, C) chars, (B, W) mask, (B,) convention ids
        -> (B, W, T) scores."""
        x = [self.mix(feats.float())]
        if self.config.use_shape:
            x.append(self.shape(shapes))
        if self.config.use_chars:
            x.append(self.chars(chars))
        if len(self.config.conventions) > 1:
            ids = convention if convention is not None else torch.zeros(feats.shape[0], dtype=torch.long,
                                                                           device=feats.device)
            x.append(self.convention(ids).unsqueeze(1).expand(-1, feats.shape[1], -1))
        h = self.dropout(torch.cat(x, -1))
        if self.config.lstm_hidden:
            lengths = mask.sum(1).clamp(min=1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
            h, _ = self.lstm(packed)
            h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=mask.shape[1])
            h = self.dropout(h)
        return self.out(h)

    # -- CRF (linear chain, BIO-invalid moves forbidden) --
    def _trans(self) -> tuple[torch.Tensor, torch.Tensor]:
        neg = torch.tensor(-1e4, device=self.allowed.device)
        trans = torch.where(self.allowed, self.transitions, neg)
        return trans, torch.where(self.start_ok, self.start, neg)

    def log_partition(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        trans, start = self._trans()
        alpha = start + scores[:, 0]
        for t in range(1, scores.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + scores[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def loss(self, scores: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood (CRF) or token cross-entropy (no CRF) over the batch."""
        if not self.config.use_crf:
            return nn.functional.cross_entropy(scores[mask], tags[mask])
        trans, start = self._trans()
        tags = tags.clamp(min=0)
        emit = scores.gather(2, tags.unsqueeze(2)).squeeze(2)
        gold = start[tags[:, 0]] + (emit * mask).sum(1)
        step = trans[tags[:, :-1], tags[:, 1:]] * mask[:, 1:]
        gold = gold + step.sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        gold = gold + self.end[last]
        return (self.log_partition(scores, mask) - gold).mean()

    def partial_loss(self, scores: torch.Tensor, allowed: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean NLL of the tag paths `allowed` permits (B, W, T): log Z - log Z(allowed paths).

        With one allowed tag per word it is the ordinary CRF loss; with partial labels (some spans
        known, the other words free) it sums over every completion (Tsuboi et al., 2008).
        """
        restricted = scores.masked_fill(~allowed, -1e4)
        return (self.log_partition(scores, mask) - self.log_partition(restricted, mask)).mean()

    def decode_one(self, scores: torch.Tensor) -> tuple[list[int], list[float]]:
        """Best path for one sentence (W, T) and each word's probability of its tag on that path."""
        if scores.shape[0] == 0:
            return [], []
        if not self.config.use_crf:
            logp = scores.log_softmax(-1)
            path = viterbi_bio(logp, self.config.tags)
            return path, [float(logp[t, j].exp()) for t, j in enumerate(path)]
        trans, start = self._trans()
        path = viterbi_bio(scores, self.config.tags, trans, start, self.end)
        marg = self.marginals(scores)
        return path, [float(marg[t, j]) for t, j in enumerate(path)]

    def marginals(self, scores: torch.Tensor) -> torch.Tensor:
        """CRF marginal probabilities P(tag at word t | sentence) of one sentence (W, T), by forward-backward."""
        trans, start = (_np(x) for x in self._trans())
        em, end = _np(scores), _np(self.end)
        n = em.shape[0]
        alpha, beta = np.zeros_like(em), np.zeros_like(em)
        alpha[0] = start + em[0]
        for t in range(1, n):
            alpha[t] = _logsumexp(alpha[t - 1][:, None] + trans, 0) + em[t]
        beta[n - 1] = end
        for t in range(n - 2, -1, -1):
            beta[t] = _logsumexp(trans + (em[t + 1] + beta[t + 1])[None, :], 1)
        log_z = _logsumexp(alpha[n - 1] + end, 0)
        return torch.from_numpy(np.exp(alpha + beta - log_z)).float().clamp(0.0, 1.0)


@dataclass
class WordBatch:
    feats: torch.Tensor  # (B, W, L, D)
    shapes: torch.Tensor  # (B, W)
    chars: torch.Tensor  # (B, W, C)
    mask: torch.Tensor  # (B, W) bool
    tags: torch.Tensor | None = None  # (B, W), -100 on padding
    allowed: torch.Tensor | None = None  # (B, W, T) bool: the tags each word may have (partial labels)
    convention: torch.Tensor | None = None  # (B,) annotation-convention id of each sentence


# ---- the tagger ---------------------------------------------------------------------------
class NerTagger(nn.Module):
    """Frozen text backbone (word features) + trained `NerHead`. Only the head is saved."""

    def __init__(self, config: NerConfig, pretrained_backbone: bool = True):
        super().__init__()
        from mmre_demo.encoders.text import load_text_backbone

        self.config = config
        self.tokenizer, encoder = load_text_backbone(config.text_backbone, pretrained=pretrained_backbone)
        self.encoder = encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        num_layers = int(encoder.config.num_hidden_layers) + 1
        self.head = NerHead(config, num_layers, int(encoder.config.hidden_size))
        self.tag_to_id = {t: i for i, t in enumerate(config.tags)}
        self.backbone_int8 = False

    def train(self, mode: bool = True) -> "NerTagger":
        super().train(mode)
        self.encoder.eval()  # frozen: never dropout in the backbone
        return self

    @property
    def device(self) -> torch.device:
        return self.head.out.weight.device

    # ---- backbone features --------------------------------------------------------------------
    def _word_pieces(self, words: Sequence[str]) -> list[list[int]]:
        """Piece ids of each word (capped); a word the tokenizer drops becomes [UNK]."""
        if not words:
            return []
        ids = self.tokenizer(list(words), add_special_tokens=False)["input_ids"]
        unk = self.tokenizer.unk_token_id
        return [(p or [unk])[: self.config.max_pieces_per_word] for p in ids]

    def _windows(self, pieces: list[list[int]]) -> list[tuple[int, int]]:
        """Split a sentence's words into `[start, end)` runs that fit `max_length` pieces."""
        budget = self.config.max_length - 2
        out, start, used = [], 0, 0
        for i, p in enumerate(pieces):
            if used + len(p) > budget and i > start:
                out.append((start, i))
                start, used = i, 0
            used += len(p)
        out.append((start, len(pieces)))
        return out

    @torch.no_grad()
    def word_features(self, sentences: Sequence[Sequence[str]], batch_size: int = 64,
                      progress: bool = False) -> list[torch.Tensor]:
        """(n_words, layers, dim) per sentence: each word's pieces averaged, every backbone layer kept."""
        cls_id, sep_id, pad_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id
        jobs = []  # (sentence, piece lists of one window)
        for s, words in enumerate(sentences):
            pieces = self._word_pieces(words)
            jobs += [(s, pieces[a:b]) for a, b in self._windows(pieces)] if pieces else []
        order = sorted(range(len(jobs)), key=lambda k: sum(map(len, jobs[k][1])))
        parts: dict[int, torch.Tensor] = {}
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="backbone features", dynamic_ncols=True)
        for chunk in batches:
            rows = [[cls_id] + [i for p in jobs[k][1] for i in p] + [sep_id] for k in chunk]
            width = max(map(len, rows))
            ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], device=self.device)
            mask = (torch.arange(width, device=self.device).unsqueeze(0)
                    < torch.tensor([len(r) for r in rows], device=self.device).unsqueeze(1)).long()
            out = self.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hidden = torch.stack(out.hidden_states, dim=2)  # (B, T, L, D)
            for row, k in enumerate(chunk):
                parts[k] = self._pool_words(hidden[row], [len(p) for p in jobs[k][1]])
        feats: list[list[torch.Tensor]] = [[] for _ in sentences]
        for k, (s, _) in enumerate(jobs):
            feats[s].append(parts[k])
        num_layers, dim = self.head.mix.weights.shape[0], self.head.out.in_features
        return [torch.cat(f) if f else torch.zeros(0, num_layers, self.encoder.config.hidden_size) for f in feats]

    @staticmethod
    def _pool_words(hidden: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """Mean of each word's pieces (position 0 is [CLS]) -> (n_words, L, D)."""
        idx = torch.repeat_interleave(torch.arange(len(lengths), device=hidden.device),
                                      torch.tensor(lengths, device=hidden.device))
        pieces = hidden[1 : 1 + len(idx)]
        sums = torch.zeros(len(lengths), *hidden.shape[1:], device=hidden.device, dtype=hidden.dtype)
        sums.index_add_(0, idx, pieces)
        return (sums / torch.tensor(lengths, device=hidden.device, dtype=hidden.dtype).view(-1, 1, 1)).cpu()

    # ---- batching -----------------------------------------------------------------------------
    def make_batch(self, feats: Sequence[torch.Tensor], sentences: Sequence[Sequence[str]],
                   tags: Sequence[Sequence[str]] | None = None,
                   allowed: Sequence[Sequence[Sequence[str]]] | None = None,
                   conventions: Sequence[int] | None = None) -> WordBatch:
        """Pad word features + shape/char ids (+ tag ids, or the allowed tags of each word) of sentences;
        `conventions` = each sentence's annotation-convention id (default: the one `tag()` uses)."""
        b, w = len(sentences), max(1, max(len(s) for s in sentences))
        num_layers, dim = feats[0].shape[1:] if len(feats[0]) else (self.head.mix.weights.shape[0], 1)
        x = torch.zeros(b, w, num_layers, dim, dtype=feats[0].dtype)
        shapes = torch.zeros(b, w, dtype=torch.long)
        chars = torch.zeros(b, w, self.config.max_chars, dtype=torch.long)
        mask = torch.zeros(b, w, dtype=torch.bool)
        tag_ids = torch.full((b, w), -100, dtype=torch.long)
        for i, words in enumerate(sentences):
            n = len(words)
            x[i, :n] = feats[i]
            mask[i, :n] = True
            for j, word in enumerate(words):
                shapes[i, j] = word_shape(word)
                c = char_ids(word, self.config.max_chars)
                chars[i, j, : len(c)] = torch.tensor(c)
            if tags is not None:
                tag_ids[i, :n] = torch.tensor([self.tag_to_id[t] for t in repair_bio(tags[i])])
        allowed_mask = None
        if allowed is not None:
            allowed_mask = torch.ones(b, w, self.config.num_tags, dtype=torch.bool)
            for i, word_tags in enumerate(allowed):
                for j, options in enumerate(word_tags):
                    allowed_mask[i, j] = False
                    allowed_mask[i, j, [self.tag_to_id[t] for t in options]] = True
        conv = torch.tensor(list(conventions) if conventions is not None else [self.config.convention_id()] * b)
        dev = self.device
        return WordBatch(x.to(dev), shapes.to(dev), chars.to(dev), mask.to(dev),
                         tag_ids.to(dev) if tags is not None else None,
                         allowed_mask.to(dev) if allowed_mask is not None else None, conv.to(dev))

    def scores(self, batch: WordBatch) -> torch.Tensor:
        return self.head(batch.feats, batch.shapes, batch.chars, batch.mask, batch.convention)

    def loss(self, batch: WordBatch) -> torch.Tensor:
        if batch.allowed is not None:
            return self.head.partial_loss(self.scores(batch), batch.allowed, batch.mask)
        return self.head.loss(self.scores(batch), batch.tags, batch.mask)

    # ---- prediction -------------------------------------------------------------------------
    @torch.no_grad()
    def predict_words(self, sentences: Sequence[Sequence[str]], feats: Sequence[torch.Tensor] | None = None,
                      batch_size: int = 64, convention: str | None = None) -> list[tuple[list[str], list[float]]]:
        """Tags and their probabilities for pre-tokenised sentences (`feats` = cached backbone features),
        under one annotation convention (default: the one `tag()` uses)."""
        conv = self.config.convention_id(convention)
        if self.training:
            raise RuntimeError("call .eval() before predicting")
        if feats is None:
            feats = self.word_features(sentences, batch_size=batch_size)
        out: list[tuple[list[str], list[float]]] = []
        for i in range(0, len(sentences), batch_size):
            sents, fts = sentences[i : i + batch_size], feats[i : i + batch_size]
            if not any(len(s) for s in sents):
                out += [([], []) for _ in sents]
                continue
            scores = self.scores(self.make_batch(fts, sents, conventions=[conv] * len(sents))).float().cpu()
            for row, s in enumerate(sents):
                path, conf = self.head.decode_one(scores[row, : len(s)])
                out.append(([self.config.tags[j] for j in path], conf))
        return out

    def tag_batch(self, captions: Sequence[str]) -> list[list[Entity]]:
        """Entities (text, char start/end, type, confidence) of each raw caption."""
        words = [pre_tokenize(check_caption(c)) for c in captions]
        results = self.predict_words([[w.text for w in ws] for ws in words])
        return [self._entities(c, ws, tags, conf) for c, ws, (tags, conf) in zip(captions, words, results)]

    def tag(self, caption: str) -> list[Entity]:
        """Entities of one raw caption, offsets into the original string."""
        return self.tag_batch([caption])[0]

    @staticmethod
    def _entities(caption: str, words: list[Word], tags: list[str], conf: list[float]) -> list[Entity]:
        """Word spans -> char spans; confidence = mean probability of the entity's tags."""
        ents = []
        for a, b, etype in bio_spans(tags):
            start, end = words[a].start, words[b - 1].end
            score = sum(conf[a:b]) / (b - a)
            ents.append(Entity(caption[start:end], start, end, etype, round(min(1.0, max(0.0, score)), 4)))
        return ents

    # ---- save / load ------------------------------------------------------------------------
    def head_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}

    def save_pretrained(self, path: str | Path) -> None:
        """config.json + model.safetensors (the head only; the backbone comes from its package)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.config.save(path / CONFIG_NAME)
        save_file(self.head_state_dict(), str(path / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | torch.device = "cpu",
                        pretrained_backbone: bool = True, int8: bool | None = None) -> "NerTagger":
        """Load a saved tagger (default: the shipped `weights/ner`).

        `int8` (default: on for CPU) quantizes the frozen backbone's Linear layers for inference.
        """
        if path is None:
            from mmre_demo.data.paths import weights_dir

            path = weights_dir() / "ner"
        path = Path(path)
        if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"{path} has no {CONFIG_NAME} + {WEIGHTS_NAME} (a saved NER tagger)")
        model = cls(NerConfig.load(path / CONFIG_NAME), pretrained_backbone=pretrained_backbone)
        state = load_file(str(path / WEIGHTS_NAME))
        expected = set(model.head.state_dict())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(f"{path / WEIGHTS_NAME} does not fit this tagger: missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(unexpected)[:5]}")
        model.head.load_state_dict(state)
        model = model.to(device).eval()
        use_int8 = torch.device(device).type == "cpu" if int8 is None else int8
        if use_int8:
            model.quantize_backbone()
        return model

    def quantize_backbone(self) -> None:
        """Int8 Linear layers in the frozen backbone (CPU inference; the head is unchanged)."""
        from mmre_demo.encoders.text import quantize_int8

        self.encoder = quantize_int8(self.encoder, self.config.int8_scope)
        self.backbone_int8 = True
