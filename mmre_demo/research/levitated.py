"""`levitated-markers` (PURE's approximation model, Zhong & Chen 2021): not shipped, measured in the model
card's ablation (weights/relation/README.md: gold-pair F1 0.517 / 0.514 against entity-pooling's 0.524, at
2.5x its training cost). The passes are `model.packing.encode_caption_pairs(levitated=True)`."""

from __future__ import annotations

from mmre_demo.data.schema import Entity
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
        return encode_caption_pairs(self.tokenizer, caption, entities, pairs, levitated=True,
                                    max_length=cfg.max_length, max_rows=cfg.max_rows, image_text=image_text,
                                    image_text_tokens=cfg.image_text_tokens)
