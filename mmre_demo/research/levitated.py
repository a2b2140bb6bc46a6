"""`levitated-markers` (PURE's approximation model, Zhong & Chen 2021): not shipped, measured in the model
card's ablation (weights/relation/README.md: gold-pair F1 0.517 / 0.514 against entity-pooling's 0.524, at
2.5x its training cost). The caption's passes are `model.packing.encode_caption_pairs`' with the markers
added (`levitate`); `model.packing.collate_passes` lets each marker see the text and its own pair's markers."""

from __future__ import annotations

from dataclasses import replace

from transformers import PreTrainedTokenizerBase

from mmre_demo.data.schema import Entity
from mmre_demo.model.inputs import HEAD_MARKERS, TAIL_MARKERS
from mmre_demo.model.packing import EncoderPass, encode_caption_pairs
from mmre_demo.model.relation import PairMarkerModel


class LevitatedMarkerModel(PairMarkerModel):
    """One pass per caption: the caption once, four levitated markers per pair that share the position ids
    of the head's and tail's first and last word pieces (PURE's approximation model). The pair is the
    hidden states of its two opening markers, as in `pair-markers`, so that model's weights start it."""

    architecture = "levitated-markers"

    def featurize(self, caption: str, entities: list[Entity], pairs: list[tuple[int, int]],
                  image_text: str | None = None) -> list[EncoderPass]:
        cfg = self.config
        return levitated_passes(self.tokenizer, caption, entities, pairs, max_length=cfg.max_length,
                                max_rows=cfg.max_rows, image_text=image_text, image_text_tokens=cfg.image_text_tokens)


def levitated_passes(tokenizer: PreTrainedTokenizerBase, caption: str, entities: list[Entity],
                     pairs: list[tuple[int, int]], *, max_length: int = 128, max_rows: int = 32,
                     image_text: str | None = None, image_text_tokens: int = 32) -> list[EncoderPass]:
    """The caption's passes (`encode_caption_pairs`, at most `max_rows` pairs each), markers added."""
    marker_ids = [tokenizer.convert_tokens_to_ids(m) for m in (*HEAD_MARKERS, *TAIL_MARKERS)]
    passes = encode_caption_pairs(tokenizer, caption, entities, pairs, max_length=max_length, max_rows=max_rows,
                                  image_text=image_text, image_text_tokens=image_text_tokens)
    return [levitate(p, marker_ids) for p in passes]


def levitate(p: EncoderPass, marker_ids: list[int]) -> EncoderPass:
    """The pass with four markers per row after its text, at the position ids of the head's and tail's first
    and last word pieces; a row's head and tail are its two opening markers."""
    ids, positions, spans = list(p.input_ids), list(p.position_ids), list(p.token_spans)
    marker_row: list[int] = []
    head_index, tail_index = [], []
    for row, (hr, tr) in enumerate(zip(p.head_tokens, p.tail_tokens)):
        head_index.append(len(ids))
        tail_index.append(len(ids) + 2)
        ids += marker_ids
        positions += [hr[0], hr[1] - 1, tr[0], tr[1] - 1]
        spans += [(-1, -1)] * 4
        marker_row += [row] * 4
    return replace(p, input_ids=ids, position_ids=positions, marker_row=marker_row, head_index=head_index,
                   tail_index=tail_index, token_spans=spans)
