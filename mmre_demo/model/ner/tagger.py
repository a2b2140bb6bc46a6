"""NerTagger: the frozen text backbone's word features + the trained `NerHead` -> entities of a caption."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from mmre_demo.data.schema import Entity, check_caption
from mmre_demo.model.base import PretrainedModel
from mmre_demo.model.ner.bio import bio_spans, repair_bio
from mmre_demo.model.ner.config import NerConfig
from mmre_demo.model.ner.modules import NerHead, WordBatch
from mmre_demo.model.ner.nonentities import drop_non_entities
from mmre_demo.model.ner.shapes import char_ids, word_shape
from mmre_demo.model.ner.tokenizer import Word, pre_tokenize

_LEADING_MARKS = frozenset({"RT", "@", "#"})  # a span never starts with these (RT only before more words)
_TRAILING_MARKS = frozenset({"@", "#", ":"})  # nor ends with these; one of them alone is no entity


def entities_from_tags(caption: str, words: list[Word], tags: list[str], conf: list[float]) -> list[Entity]:
    """Word spans -> char spans; confidence = mean probability of the entity's tags. A span's edges
    are trimmed of what is never part of a name: the retweet marker "RT" before a handle
    ("RT @AroundTheNFL" -> "AroundTheNFL") and the `@` / `#` / `:` marks (the MNRE convention)."""
    ents = []
    for a, b, etype in bio_spans(tags):
        while b - a > 1 and words[a].text in _LEADING_MARKS:
            a += 1
        while b - a > 1 and words[b - 1].text in _TRAILING_MARKS:
            b -= 1
        if words[a].text in _TRAILING_MARKS:
            continue  # nothing but a mark ("RT" alone may be the network: kept)
        start, end = words[a].start, words[b - 1].end
        score = sum(conf[a:b]) / (b - a)
        ents.append(Entity(caption[start:end], start, end, etype, round(min(1.0, max(0.0, score)), 4)))
    return ents


class NerTagger(PretrainedModel):
    """Frozen text backbone (word features) + trained `NerHead`. Only the head is saved (`model.base`)."""

    config_class = NerConfig
    saved_kind = "NER tagger"

    def __init__(self, config: NerConfig, pretrained_backbone: bool = True):
        super().__init__()
        from mmre_demo.encoders.text import frozen_text_backbone, load_text_backbone

        self.config = config
        if pretrained_backbone:  # frozen: one copy per process, shared with the other frozen users
            self.tokenizer, encoder = frozen_text_backbone(config.text_backbone)
        else:
            self.tokenizer, encoder = load_text_backbone(config.text_backbone, pretrained=False)
        self.encoder = encoder.eval().requires_grad_(False)
        num_layers = int(encoder.config.num_hidden_layers) + 1
        self.hidden_size = int(encoder.config.hidden_size)
        self.head = NerHead(config, num_layers, self.hidden_size)
        self.tag_to_id = {t: i for i, t in enumerate(config.tags)}

    def train(self, mode: bool = True) -> NerTagger:
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
            hidden = self.hidden_states(ids, mask)  # (B, T, L, D)
            for row, k in enumerate(chunk):
                parts[k] = self._pool_words(hidden[row], [len(p) for p in jobs[k][1]])
        feats: list[list[torch.Tensor]] = [[] for _ in sentences]
        for k, (s, _) in enumerate(jobs):
            feats[s].append(parts[k])
        num_layers = self.head.mix.weights.shape[0]
        return [torch.cat(f) if f else torch.zeros(0, num_layers, self.hidden_size) for f in feats]

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, L, D): every layer of the frozen backbone, on PyTorch (the serving tagger reads them from
        onnxruntime: `mmre_demo.serving.ServingNerTagger`)."""
        out = self.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return torch.stack(out.hidden_states, dim=2)

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
                tags = [self.config.tags[j] for j in path]
                out.append((drop_non_entities(s, tags) if self.config.drop_non_entities else tags, conf))
        return out

    def tag_batch(self, captions: Sequence[str]) -> list[list[Entity]]:
        """Entities (text, char start/end, type, confidence) of each raw caption."""
        words = [pre_tokenize(check_caption(c)) for c in captions]
        results = self.predict_words([[w.text for w in ws] for ws in words])
        return [entities_from_tags(c, ws, tags, conf) for c, ws, (tags, conf) in zip(captions, words, results)]

    def tag(self, caption: str) -> list[Entity]:
        """Entities of one raw caption, offsets into the original string."""
        return self.tag_batch([caption])[0]

    # ---- save / load (PretrainedModel) --------------------------------------------------------
    def saved_state_dict(self) -> dict[str, torch.Tensor]:
        """The head only; the backbone comes from its package."""
        return {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        self.head.load_state_dict(state)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | torch.device = "cpu",
                        pretrained_backbone: bool = True) -> NerTagger:
        """Load a saved tagger (default: the tagger of the default weights folder, `WeightsLayout`).

        """
        if path is None:
            from mmre_demo.data.paths import WeightsLayout

            path = WeightsLayout.find().tagger
            if path is None:
                raise FileNotFoundError("no tagger in the default weights folder (its ner/ is missing)")
        return super().from_pretrained(path, device, pretrained_backbone=pretrained_backbone)
