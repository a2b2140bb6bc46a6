"""Caption-once packing: what one encoder pass reads, which pairs it scores, and how long captions split."""

from __future__ import annotations

import json
from itertools import permutations
from pathlib import Path

import pytest
import torch

from mmre_demo.data.schema import Entity
from mmre_demo.model.batching import CaptionPairs, caption_items, run_batch
from mmre_demo.model.config import RelationConfig
from mmre_demo.model.packing import collate_passes, encode_caption_pairs, tokenize_caption
from mmre_demo.model.relation import EntityPoolingModel, PairMarkerModel, build_relation_model
from mmre_demo.research.levitated import LevitatedMarkerModel, levitated_passes

CAPTION = "Alice Smith met Bob Jones at the Louvre in Paris with #Macron"


def ent(caption: str, name: str, type_: str = "") -> Entity:
    s = caption.index(name)
    return Entity(name, s, s + len(name), type_)


ENTITIES = [ent(CAPTION, n) for n in ("Alice Smith", "Bob Jones", "Louvre", "Paris", "Macron")]
PAIRS = list(permutations(range(len(ENTITIES)), 2))  # 20 ordered pairs


@pytest.fixture(scope="module")
def tokenizer():
    from mmre_demo.encoders.text import load_text_backbone

    tok, _ = load_text_backbone("minilm", pretrained=False)
    return tok


@pytest.fixture(scope="module")
def levitated() -> LevitatedMarkerModel:
    torch.manual_seed(0)
    model = build_relation_model(RelationConfig(architecture="levitated-markers", lora_r=4, lora_alpha=8))
    with torch.no_grad():  # LoRA's B starts at zero: move it so the adapters take part
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return model.eval()


def test_entities_map_to_their_word_pieces_even_inside_a_hashtag(tokenizer):
    toks = tokenize_caption(tokenizer, CAPTION, ENTITIES)
    pieces = tokenizer.convert_ids_to_tokens(toks.ids)
    assert [pieces[a:b] for a, b in toks.entity_tokens] == [tokenizer.tokenize(e.text) for e in ENTITIES]
    assert pieces[toks.entity_tokens[4][0] - 1] == "#"  # "#Macron": the name without its hashtag
    for (a, b), e in zip(toks.entity_tokens, ENTITIES):  # the pieces' characters are the entity's
        assert toks.spans[a][0] == e.start and toks.spans[b - 1][1] == e.end


def test_levitated_markers_share_the_entities_positions_and_see_only_their_pair(tokenizer):
    (p,) = levitated_passes(tokenizer, CAPTION, ENTITIES, PAIRS, max_rows=32)
    pieces = tokenizer.convert_ids_to_tokens(p.input_ids)
    assert pieces[0] == "[CLS]" and pieces[p.n_text - 1] == "[SEP]"
    assert len(p.input_ids) == p.n_text + 4 * len(PAIRS) and p.pair_ids == list(range(len(PAIRS)))
    for row, (h, t) in enumerate(PAIRS):
        first = p.head_index[row]
        assert pieces[first : first + 4] == ["[", "]", "{", "}"] and p.tail_index[row] == first + 2
        (hs, he), (ts, te) = p.head_tokens[row], p.tail_tokens[row]
        assert p.position_ids[first : first + 4] == [hs, he - 1, ts, te - 1]
        assert pieces[hs] == tokenizer.tokenize(ENTITIES[h].text)[0]
        assert pieces[ts] == tokenizer.tokenize(ENTITIES[t].text)[0]
    mask = collate_passes([p], tokenizer.pad_token_id)["attention"][0]
    n = p.n_text
    assert mask[:n, :n].all() and not mask[:n, n:].any()  # the text never sees a marker
    assert mask[n:, :n].all()  # every marker sees the whole text
    rows = torch.tensor(p.marker_row)
    assert torch.equal(mask[n:, n:], rows[:, None] == rows[None, :])  # ... and only its own pair's markers


def test_a_pairs_score_does_not_depend_on_the_pairs_packed_beside_it(levitated):
    alone = caption_items(levitated, [CaptionPairs(CAPTION, ENTITIES, [PAIRS[7]])])
    packed = caption_items(levitated, [CaptionPairs(CAPTION, ENTITIES, PAIRS)])
    assert len(alone) == len(packed) == 1  # one pass each
    with torch.no_grad():
        a = run_batch(levitated, alone, None, explain=True)
        b = run_batch(levitated, packed, None, explain=True)
    assert torch.allclose(a.logits[0], b.logits[7], atol=1e-5)
    n_text = alone[0].features.n_text
    assert torch.allclose(a.token_attention[0, :n_text], b.token_attention[7, :n_text], atol=1e-5)


def test_too_many_pairs_for_one_pass_are_split_never_dropped(tokenizer):
    passes = levitated_passes(tokenizer, CAPTION, ENTITIES, PAIRS, max_rows=6)
    assert [p.n_rows for p in passes] == [6, 6, 6, 2]
    assert sorted(k for p in passes for k in p.pair_ids) == list(range(len(PAIRS)))
    assert all(len(p.input_ids) == p.n_text + 4 * p.n_rows for p in passes)


def test_a_long_caption_is_read_in_windows_around_each_pair(tokenizer):
    caption = "Alice met Bob today . " + "filler words here . " * 100 + "Later Carol flew to Paris ."
    ents = [ent(caption, n) for n in ("Alice", "Bob", "Carol", "Paris")]
    pairs = list(permutations(range(4), 2))
    passes = levitated_passes(tokenizer, caption, ents, pairs, max_length=64)
    assert len(passes) > 1 and sorted(k for p in passes for k in p.pair_ids) == list(range(len(pairs)))
    for p in passes:
        assert p.n_text <= 64
        pieces = tokenizer.convert_ids_to_tokens(p.input_ids)
        for row, k in enumerate(p.pair_ids):
            h, t = pairs[k]
            assert pieces[p.head_tokens[row][0]] == ents[h].text.lower()
            assert pieces[p.tail_tokens[row][0]] == ents[t].text.lower()
            # the word pieces' characters are the caption's (word weights land on the right words)
            s, e = p.token_spans[p.head_tokens[row][0]]
            assert caption[s:e] == ents[h].text


def test_two_thousand_character_caption_with_thirty_pairs_is_scored(levitated):
    words = [f"Name{i}" for i in range(16)]
    caption = " and ".join(words) + " . " + "x " * 800
    caption = caption[:2000]
    ents = [ent(caption, w) for w in words]
    pairs = [(i, j) for i in range(16) for j in range(16) if i != j][:30]
    items = caption_items(levitated, [CaptionPairs(caption, ents, pairs)])
    with torch.no_grad():
        out = run_batch(levitated, items, None)
    assert out.logits.shape[0] == 30 and sorted(i for it in items for i in it.indices) == list(range(30))


def test_entity_pooling_reads_the_caption_once_without_markers(tokenizer):
    (p,) = encode_caption_pairs(tokenizer, CAPTION, ENTITIES, PAIRS)
    assert len(p.input_ids) == p.n_text and p.n_rows == len(PAIRS) and not p.marker_row
    assert p.head_index[0] == p.head_tokens[0][0]


def test_one_entity_gives_no_pass(tokenizer):
    assert levitated_passes(tokenizer, CAPTION, ENTITIES[:1], []) == []


def test_each_architecture_name_builds_its_class():
    for name, cls in [("pair-markers", PairMarkerModel), ("levitated-markers", LevitatedMarkerModel),
                      ("entity-pooling", EntityPoolingModel)]:
        assert type(build_relation_model(RelationConfig(architecture=name, lora_r=2, lora_alpha=4),
                                         pretrained_backbones=False)) is cls
    with pytest.raises(ValueError, match="unknown relation architecture"):
        build_relation_model(RelationConfig(architecture="nope"), pretrained_backbones=False)


def test_a_config_saved_before_architectures_had_names_is_pair_markers(tmp_path: Path):
    raw = RelationConfig().to_dict()
    del raw["architecture"]
    (tmp_path / "config.json").write_text(json.dumps(raw))
    assert RelationConfig.load(tmp_path / "config.json").architecture == "pair-markers"
