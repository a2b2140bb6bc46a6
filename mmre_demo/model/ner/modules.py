"""The trained head: layer mix of the frozen backbone + word shape + character CNN -> BiLSTM -> CRF."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmre_demo.model.ner.bio import allowed_transitions
from mmre_demo.model.ner.config import NerConfig
from mmre_demo.model.ner.crf import as_float64, crf_marginals, viterbi_bio
from mmre_demo.model.ner.shapes import CHAR_VOCAB, NUM_SHAPES


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
        allowed, start_ok = allowed_transitions(config.tags)
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
        trans, start = (as_float64(x) for x in self._trans())
        marg = crf_marginals(as_float64(scores), trans, start, as_float64(self.end))
        return torch.from_numpy(marg).float().clamp(0.0, 1.0)


@dataclass
class WordBatch:
    feats: torch.Tensor  # (B, W, L, D)
    shapes: torch.Tensor  # (B, W)
    chars: torch.Tensor  # (B, W, C)
    mask: torch.Tensor  # (B, W) bool
    tags: torch.Tensor | None = None  # (B, W), -100 on padding
    allowed: torch.Tensor | None = None  # (B, W, T) bool: the tags each word may have (partial labels)
    convention: torch.Tensor | None = None  # (B,) annotation-convention id of each sentence
