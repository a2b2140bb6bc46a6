"""Models: the fused relation model and the NER tagger (config + module + save/from_pretrained)."""
