"""Models: the fused relation model and the NER tagger, each a `SavedConfig` dataclass + a `PretrainedModel`
module with `save_pretrained` / `from_pretrained` (`base`).

`config`, `relation`, `fusion`, `inputs`: the relation model; `batching`: how items, cached images and
batches reach it (training, evaluation and inference alike); `ner/`: the tagger.
"""
