"""Encoder passes: what one text-encoder pass reads and which ordered entity pairs (rows) it scores.

Every architecture turns a caption, its entities and the ordered pairs to score into `EncoderPass`es:

- `pair-markers`: one pass per pair, the caption with that pair's markers written into it (`inputs.encode_pair`);
- `levitated-markers` (research, `mmre_demo/research/levitated.py`; PURE's approximation model, Zhong &
  Chen 2021): one pass per caption; the caption is read once and every pair appends four *levitated*
  markers (`[ ] { }`) that share the position ids of the head's and tail's first and last word pieces.
  Markers see the caption and their own pair's markers; the caption sees neither, so a pair's score does
  not depend on the pairs packed beside it;
- `entity-pooling` (ATLOP-style, Zhou et al. 2021): one pass per caption with no markers; each entity is
  its word pieces pooled, each pair adds the caption context both entities attend to.

A caption whose pairs need more word pieces or markers than one pass holds is split into several passes
(`split_rows`), never truncated: every pair asked for is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from transformers import PreTrainedTokenizerBase

from mmre_demo.data.schema import Entity
from mmre_demo.model.inputs import PairFeatures, _window, segments

if TYPE_CHECKING:
    import torch

TokenRange = tuple[int, int]  # [first, last + 1) word pieces of an entity in a pass


@dataclass
class EncoderPass:
    """One encoder pass and the pairs (rows) it scores; token indices are into `input_ids`."""

    input_ids: list[int]
    position_ids: list[int]
    n_text: int  # tokens [0, n_text) are the text (specials included); the rest are markers (research)
    marker_row: list[int]  # per marker after the text (token n_text + k): the row it belongs to
    head_index: list[int]  # per row: the token whose hidden state is the head (its opening marker)
    tail_index: list[int]
    head_tokens: list[TokenRange]  # per row: the head's word pieces in the text (pooling, attention)
    tail_tokens: list[TokenRange]
    token_spans: list[tuple[int, int]]  # per token: its caption characters ((-1, -1): specials, markers)
    pair_ids: list[int]  # per row: the index of the pair in the caller's list

    @property
    def n_rows(self) -> int:
        return len(self.pair_ids)

    @classmethod
    def from_pair(cls, f: PairFeatures, pair_id: int) -> EncoderPass:
        """A `pair-markers` pass: one pair, markers written into the caption."""
        n = len(f.input_ids)
        return cls(f.input_ids, list(range(n)), n, [], [f.head_index], [f.tail_index],
                   [(f.head_index, f.head_index + 1)], [(f.tail_index, f.tail_index + 1)], f.token_spans, [pair_id])


@dataclass
class CaptionTokens:
    """A caption tokenised once: word-piece ids, their caption characters, and each entity's word pieces."""

    ids: list[int]
    spans: list[tuple[int, int]]
    entity_tokens: list[TokenRange]


def tokenize_caption(tokenizer: PreTrainedTokenizerBase, caption: str, entities: list[Entity]) -> CaptionTokens:
    """Word pieces of the caption (no specials) and the word-piece range of every entity.

    An entity inside a word piece (a name in a hashtag that the vocabulary keeps whole) gets that piece.
    """
    enc = tokenizer(caption, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    spans = [(int(s), int(e)) for s, e in enc["offset_mapping"]]
    ranges = []
    for ent in entities:
        inside = [k for k, (s, e) in enumerate(spans) if s < ent.end and ent.start < e]
        if not inside:
            raise ValueError(f"entity {ent.text!r} at {ent.start}-{ent.end} has no word piece in {caption!r}")
        ranges.append((inside[0], inside[-1] + 1))
    return CaptionTokens(ids, spans, ranges)


def split_rows(n_rows: int, max_rows: int) -> list[range]:
    """Rows of one text window in chunks of at most `max_rows` (one pass each)."""
    step = max(1, max_rows)
    return [range(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def encode_caption_pairs(tokenizer: PreTrainedTokenizerBase, caption: str, entities: list[Entity],
                         pairs: list[tuple[int, int]], *, max_length: int = 128, max_rows: int | None = None,
                         image_text: str | None = None, image_text_tokens: int = 32) -> list[EncoderPass]:
    """The passes that score `pairs` (ordered entity indices) of one caption, in as few passes as fit.

    The text part holds at most `max_length` word pieces: a longer caption is read in windows, each pair in
    the window around its two entities (`inputs._window`), pairs sharing a window sharing a pass (at most
    `max_rows` of them; None: all). A pair's head and tail are its entities' first word pieces. With
    `image_text`, the text read in the image follows the caption as a second segment.
    """
    if not pairs:
        return []
    toks = tokenize_caption(tokenizer, caption, entities)
    before, after, second, budget = segments(tokenizer, max_length, image_text, image_text_tokens)
    windows: dict[tuple[int, ...], list[int]] = {}
    for k, (h, t) in enumerate(pairs):
        (hs, he), (ts, te) = toks.entity_tokens[h], toks.entity_tokens[t]
        keep = _window(len(toks.ids), min(hs, ts), max(he, te) - 1, budget)
        windows.setdefault(tuple(keep), []).append(k)
    passes = []
    for keep, pair_ks in windows.items():
        for chunk in split_rows(len(pair_ks), max_rows or len(pair_ks)):
            passes.append(_pack(toks, list(keep), [pair_ks[i] for i in chunk], pairs, before, after, second))
    return passes


def _pack(toks: CaptionTokens, keep: list[int], pair_ks: list[int], pairs: list[tuple[int, int]],
          before: list[int], after: list[int], second: list[int]) -> EncoderPass:
    """One pass: [CLS] window [SEP] (image text [SEP]), and where each pair's entities are in it."""
    prefix = len(before)
    where = {old: prefix + new for new, old in enumerate(keep)}  # caption word piece -> token in the pass
    ids = before + [toks.ids[i] for i in keep] + after + second
    spans = [(-1, -1)] * prefix + [toks.spans[i] for i in keep] + [(-1, -1)] * (len(after) + len(second))
    head_tokens = [_in_pass(toks.entity_tokens[pairs[k][0]], where) for k in pair_ks]
    tail_tokens = [_in_pass(toks.entity_tokens[pairs[k][1]], where) for k in pair_ks]
    return EncoderPass(ids, list(range(len(ids))), len(ids), [], [r[0] for r in head_tokens],
                       [r[0] for r in tail_tokens], head_tokens, tail_tokens, spans, pair_ks)


def _in_pass(entity: TokenRange, where: dict[int, int]) -> TokenRange:
    """An entity's word pieces as tokens of the pass (the part inside the window; a window always holds
    at least the first and last piece of both entities of its pairs, see `_window`)."""
    inside = [where[i] for i in range(*entity) if i in where]
    if not inside:  # an entity longer than half the window: its nearest kept piece stands for it
        nearest = min(where, key=lambda i: abs(i - entity[0]))
        return where[nearest], where[nearest] + 1
    return inside[0], inside[-1] + 1


def collate_passes(passes: list[EncoderPass], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad passes into one batch. `attention` (S, T, T) says which token may attend to which: text to text,
    a marker to the text and its own pair's markers, padding to nothing. Row tensors are (R,) / (R, T)."""
    import torch

    width = max(len(p.input_ids) for p in passes)
    s = len(passes)
    ids = torch.full((s, width), pad_id, dtype=torch.long)
    positions = torch.zeros((s, width), dtype=torch.long)
    attention = torch.zeros((s, width, width), dtype=torch.bool)
    row_pass, head_index, tail_index = [], [], []
    head_mask = torch.zeros((sum(p.n_rows for p in passes), width))
    tail_mask = torch.zeros_like(head_mask)
    r = 0
    for i, p in enumerate(passes):
        n = len(p.input_ids)
        ids[i, :n] = torch.tensor(p.input_ids)
        positions[i, :n] = torch.tensor(p.position_ids)
        attention[i, : p.n_text, : p.n_text] = True
        if p.marker_row:
            rows = torch.tensor(p.marker_row)
            attention[i, p.n_text : n, : p.n_text] = True
            attention[i, p.n_text : n, p.n_text : n] = rows[:, None] == rows[None, :]
        for k in range(p.n_rows):
            row_pass.append(i)
            head_index.append(p.head_index[k])
            tail_index.append(p.tail_index[k])
            head_mask[r, slice(*p.head_tokens[k])] = 1.0
            tail_mask[r, slice(*p.tail_tokens[k])] = 1.0
            r += 1
    return {"input_ids": ids, "position_ids": positions, "attention": attention,
            "row_pass": torch.tensor(row_pass, dtype=torch.long), "head_index": torch.tensor(head_index),
            "tail_index": torch.tensor(tail_index), "head_mask": head_mask, "tail_mask": tail_mask}
