"""From (caption, head span, tail span) to the text model's input: entity markers, word pieces,
the positions of the marker tokens, and a map back to caption characters for word weights.

Markers are plain punctuation that every BERT-like vocabulary has (`[ head ]`, `{ tail }`), so no
new embeddings are needed and any hub encoder works unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from transformers import PreTrainedTokenizerBase

from mmre_demo.data.schema import Entity

if TYPE_CHECKING:
    import torch

HEAD_MARKERS = ("[", "]")
TAIL_MARKERS = ("{", "}")


@dataclass
class MarkedText:
    text: str
    head_char: int  # index in `text` of the head's opening marker
    tail_char: int
    char_map: list[int]  # for each char of `text`: its index in the caption, or -1 for marker chars


def mark_pair(caption: str, head: Entity, tail: Entity,
              head_markers: tuple[str, str] = HEAD_MARKERS,
              tail_markers: tuple[str, str] = TAIL_MARKERS) -> MarkedText:
    """Insert ` [ ` / ` ] ` around the head and ` { ` / ` } ` around the tail.

    Works for adjacent, nested and reversed spans: at one position closing markers come before
    opening ones, an inner span closes before an outer one, and an outer one opens first.
    """
    # (position, order, role, marker); order sorts markers that share a position
    events = [
        (head.end, (0, -head.start), "h_end", head_markers[1]),
        (tail.end, (0, -tail.start), "t_end", tail_markers[1]),
        (head.start, (1, -head.end), "h_start", head_markers[0]),
        (tail.start, (1, -tail.end), "t_start", tail_markers[0]),
    ]
    events.sort(key=lambda e: (e[0], e[1]))
    out: list[str] = []
    char_map: list[int] = []
    where: dict[str, int] = {}
    prev = 0
    for pos, _, role, marker in events:
        out.append(caption[prev:pos])
        char_map.extend(range(prev, pos))
        piece = f" {marker} "
        where[role] = len(char_map) + 1
        out.append(piece)
        char_map.extend([-1] * len(piece))
        prev = pos
    out.append(caption[prev:])
    char_map.extend(range(prev, len(caption)))
    return MarkedText("".join(out), where["h_start"], where["t_start"], char_map)


def _window(n: int, h: int, t: int, budget: int) -> list[int]:
    """Token indices to keep: all if they fit; else one window around both markers, or, when the
    entities are too far apart, half the budget around each (the middle of a long caption is dropped)."""
    if n <= budget:
        return list(range(n))
    lo_need, hi_need = min(h, t), max(h, t) + 1
    if hi_need - lo_need <= budget:
        lo = max(0, min((lo_need + hi_need) // 2 - budget // 2, n - budget))
        lo = min(lo, lo_need)
        return list(range(lo, lo + budget))
    half = budget // 2
    first = range(max(0, lo_need - half // 4), max(0, lo_need - half // 4) + half)
    second_start = min(n - (budget - half), max(first.stop, hi_need - 1 - (budget - half) // 4))
    return list(first) + list(range(second_start, second_start + budget - half))


@dataclass
class PairFeatures:
    input_ids: list[int]
    head_index: int  # token index of the head's opening marker
    tail_index: int
    token_spans: list[tuple[int, int]]  # caption char span of each token ((-1, -1) for markers/specials)


def _special_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special ids the tokenizer puts before and after a text ([CLS] / [SEP] for BERT)."""
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    i = next(k for k in range(len(full)) if full[k : k + len(bare)] == bare)
    return full[:i], full[i + len(bare) :]


def segments(tokenizer: PreTrainedTokenizerBase, max_length: int, image_text: str | None,
             image_text_tokens: int) -> tuple[list[int], list[int], list[int], int]:
    """The special ids before and after the caption, the image-text segment (its word pieces + the closing
    special; empty without `image_text`) and the word pieces left for the caption within `max_length`."""
    before, after = _special_tokens(tokenizer)
    second: list[int] = []
    if image_text is not None:
        second = tokenizer(" ".join(image_text.split()), add_special_tokens=False)["input_ids"][:image_text_tokens]
        second = second + after
    return before, after, second, max_length - len(before) - len(after) - len(second)


def encode_pair(tokenizer: PreTrainedTokenizerBase, caption: str, head: Entity, tail: Entity,
                max_length: int = 128, image_text: str | None = None, image_text_tokens: int = 32) -> PairFeatures:
    """Word pieces of the marked caption, cropped to a window around both entities if too long; with
    `image_text` (the text read in the image; "" when none was read), that text as a second segment
    after the caption (at most `image_text_tokens` word pieces; [CLS] caption [SEP] image text [SEP])."""
    marked = mark_pair(caption, head, tail)
    enc = tokenizer(marked.text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    offsets: list[tuple[int, int]] = enc["offset_mapping"]
    h_tok = enc.char_to_token(marked.head_char)
    t_tok = enc.char_to_token(marked.tail_char)
    if h_tok is None or t_tok is None:
        raise ValueError(f"entity markers vanished in tokenisation of {marked.text!r}")
    before, after, second, budget = segments(tokenizer, max_length, image_text, image_text_tokens)
    keep = _window(len(ids), h_tok, t_tok, budget)
    prefix = len(before)
    full = before + [ids[i] for i in keep] + after + second
    spans: list[tuple[int, int]] = [(-1, -1)] * len(full)  # the image text has no caption span
    for k, i in enumerate(keep):
        s, e = offsets[i]
        cs = [marked.char_map[c] for c in range(s, e) if marked.char_map[c] >= 0]
        spans[prefix + k] = (cs[0], cs[-1] + 1) if cs else (-1, -1)
    head_index = prefix + keep.index(h_tok)
    tail_index = prefix + keep.index(t_tok)
    return PairFeatures(full, head_index, tail_index, spans)


def collate(features: list[PairFeatures], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of pairs into one batch (input_ids, attention_mask, head_index, tail_index)."""
    import torch

    width = max(len(f.input_ids) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for i, f in enumerate(features):
        ids[i, : len(f.input_ids)] = torch.tensor(f.input_ids)
        mask[i, : len(f.input_ids)] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "head_index": torch.tensor([f.head_index for f in features]),
        "tail_index": torch.tensor([f.tail_index for f in features]),
    }
