"""NER tagger: raw-caption offsets, BIO decoding, CRF/Viterbi, save/load, a tiny training run, shipped weights."""

from __future__ import annotations

import json

import pytest
import torch

from mmre_demo.data.conll import TAGS
from mmre_demo.data.paths import weights_dir
from mmre_demo.data.schema import InputError
from mmre_demo.model.ner import NerConfig, NerTagger, bio_spans, pre_tokenize, viterbi_bio, word_shape

TRICKY = [
    "RT @JayKenMinaj: Me outside of where George Zimmerman got shot at. http://t.co/Z3neVBQ7vF 🔥🔥",
    "#NBA: Kawhi Leonard wins!!! 👨‍👩‍👧 don't O'Neil… 4.99$ (www.nba.com/awards).",
    "  Café  Zürich—naïve\tcoöperation\n#São_Paulo @a_b 🇫🇷🇫🇷 👍🏽 :) ",
]


# ---- pre-tokenisation and offsets ---------------------------------------------------------
@pytest.mark.parametrize("caption", TRICKY)
def test_words_index_the_original_string(caption):
    words = pre_tokenize(caption)
    assert words
    for w in words:
        assert caption[w.start : w.end] == w.text
    assert all(a.end <= b.start for a, b in zip(words, words[1:]))
    covered = {i for w in words for i in range(w.start, w.end)}
    assert all(caption[i].isspace() for i in range(len(caption)) if i not in covered)


def test_twitter_conventions():
    texts = [w.text for w in pre_tokenize(TRICKY[0])]
    assert texts[:4] == ["RT", "@", "JayKenMinaj", ":"]
    assert "http://t.co/Z3neVBQ7vF" in texts and "." in texts
    texts = [w.text for w in pre_tokenize(TRICKY[1])]
    assert texts[:2] == ["#", "NBA"]
    assert "www.nba.com/awards" in texts  # trailing ')' and '.' stay out of the URL
    assert ["don", "'", "t"] == texts[texts.index("don") : texts.index("don") + 3]


def test_word_shapes_differ_by_casing():
    shapes = {t: word_shape(t) for t in ["obama", "Obama", "OBAMA", "iPhone", "O", "#LFC", "@cnn", "2017", "!", "🔥",
                                         "http://t.co/x"]}
    assert len(set(shapes.values())) == len(shapes)
    assert all(s > 0 for s in shapes.values())  # 0 is padding


# ---- BIO decoding -------------------------------------------------------------------------
def test_bio_spans_edge_cases():
    assert bio_spans([]) == []
    assert bio_spans(["O", "O"]) == []
    assert bio_spans(["I-PER", "I-PER", "O"]) == [(0, 2, "PER")]  # I- without B- starts an entity
    assert bio_spans(["O", "B-LOC"]) == [(1, 2, "LOC")]  # entity at the end
    assert bio_spans(["B-ORG", "I-ORG"]) == [(0, 2, "ORG")]
    assert bio_spans(["B-PER", "I-LOC"]) == [(0, 1, "PER"), (1, 2, "LOC")]  # type change
    assert bio_spans(["B-PER", "B-PER"]) == [(0, 1, "PER"), (1, 2, "PER")]
    assert bio_spans(["O", "I-MISC", "I-MISC"]) == [(1, 3, "MISC")]


def test_bio_spans_agree_with_seqeval():
    from seqeval.metrics.sequence_labeling import get_entities

    seqs = [["I-PER", "I-PER", "O", "B-LOC", "I-ORG", "I-ORG", "B-MISC"], ["B-PER", "I-PER", "B-PER", "I-LOC"]]
    for tags in seqs:
        assert bio_spans(tags) == [(s, e + 1, t) for t, s, e in get_entities(tags)]


def test_viterbi_never_outputs_an_invalid_sequence():
    torch.manual_seed(0)
    tags = list(TAGS)
    for _ in range(20):
        scores = torch.randn(7, len(tags)) * 3
        scores[:, tags.index("I-PER")] += 5  # greedy would emit I-PER everywhere
        path = [tags[i] for i in viterbi_bio(scores, tags)]
        assert not path[0].startswith("I-")
        for a, b in zip(path, path[1:]):
            if b.startswith("I-"):
                assert a in (f"B-{b[2:]}", b)
    assert viterbi_bio(torch.zeros(0, len(tags)), tags) == []


# ---- the model (random backbone: fast, no trained weights needed) --------------------------
@pytest.fixture(scope="module")
def tiny_tagger():
    torch.manual_seed(0)
    return NerTagger(NerConfig(lstm_hidden=16, char_filters=8, char_dim=8, shape_dim=4),
                     pretrained_backbone=False)


SENTS = [(["Kawhi", "Leonard", "wins", "in", "Toronto"], ["B-PER", "I-PER", "O", "O", "B-LOC"]),
         (["#", "NBA", ":", "great", "game"], ["O", "B-ORG", "O", "O", "O"]),
         (["Obama", "visits", "Paris", "Hilton"], ["B-PER", "O", "B-LOC", "B-ORG"])]


def test_features_and_long_captions_are_windowed(tiny_tagger):
    tiny_tagger.config.max_length = 16
    try:
        words = [f"word{i}" for i in range(40)]
        feats = tiny_tagger.word_features([words, [], ["a"]])
    finally:
        tiny_tagger.config.max_length = 128
    layers = tiny_tagger.encoder.config.num_hidden_layers + 1
    assert feats[0].shape == (40, layers, tiny_tagger.encoder.config.hidden_size)
    assert feats[1].shape[0] == 0 and feats[2].shape[0] == 1


def test_tag_returns_valid_entities(tiny_tagger):
    tiny_tagger.eval()
    for caption in TRICKY:
        for e in tiny_tagger.tag(caption):
            assert caption[e.start : e.end] == e.text
            assert e.type in {"PER", "LOC", "ORG", "MISC"}
            assert 0.0 <= e.confidence <= 1.0
    assert len(tiny_tagger.tag_batch(TRICKY)) == len(TRICKY)
    assert tiny_tagger.tag("🔥🔥🔥") is not None
    with pytest.raises(InputError):
        tiny_tagger.tag("   ")


def test_crf_marginals_are_distributions(tiny_tagger):
    scores = torch.randn(6, len(TAGS))
    marg = tiny_tagger.head.marginals(scores)
    assert torch.allclose(marg.sum(-1), torch.ones(6), atol=1e-4)


def test_crf_marginals_match_the_gradient_of_the_training_log_partition(tiny_tagger):
    """The NumPy forward-backward used at inference = d log Z / d scores of the torch CRF used in training."""
    torch.manual_seed(1)
    head = tiny_tagger.head
    with torch.no_grad():
        head.transitions.normal_()
        head.start.normal_()
        head.end.normal_()
    scores = torch.randn(1, 7, len(TAGS), requires_grad=True)
    log_z = head.log_partition(scores, torch.ones(1, 7, dtype=torch.bool))
    (grad,) = torch.autograd.grad(log_z.sum(), scores)
    assert torch.allclose(head.marginals(scores[0].detach()), grad[0], atol=1e-5)


def test_training_smoke_loss_goes_down():
    from mmre_demo.train.ner import entity_scores

    torch.manual_seed(0)
    tagger = NerTagger(NerConfig(lstm_hidden=32, dropout=0.0), pretrained_backbone=False)
    words, tags = [w for w, _ in SENTS], [t for _, t in SENTS]
    feats = tagger.word_features(words)
    opt = torch.optim.Adam([p for p in tagger.parameters() if p.requires_grad], lr=1e-2)
    tagger.train()
    batch = tagger.make_batch(feats, words, tags)
    losses = []
    for _ in range(40):
        loss = tagger.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    tagger.eval()
    pred = [p for p, _ in tagger.predict_words(words, feats=feats)]
    assert entity_scores(tags, pred)["f1"] == 1.0


def test_save_load_round_trip(tmp_path, tiny_tagger):
    tiny_tagger.eval()
    tiny_tagger.config.metrics = {"note": "test"}
    tiny_tagger.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["lstm_hidden"] == 16
    loaded = NerTagger.from_pretrained(tmp_path, pretrained_backbone=False)
    for k, v in tiny_tagger.head.state_dict().items():
        assert torch.equal(v, loaded.head.state_dict()[k]), k
    assert not any(k.startswith("encoder") for k in tiny_tagger.saved_state_dict())
    words = [w for w, _ in SENTS]
    feats = tiny_tagger.word_features(words)  # same features: the backbones differ (random)
    assert tiny_tagger.predict_words(words, feats=feats) == loaded.predict_words(words, feats=feats)
    assert loaded.config.metrics == {"note": "test"}


def test_load_refuses_missing_or_mismatched(tmp_path, tiny_tagger):
    with pytest.raises(FileNotFoundError):
        NerTagger.from_pretrained(tmp_path / "nothing")
    tiny_tagger.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["lstm_hidden"] = 8
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises((ValueError, RuntimeError)):
        NerTagger.from_pretrained(tmp_path, pretrained_backbone=False)


# ---- the shipped weights ------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped_tagger():
    d = weights_dir() / "ner"
    if not (d / "model.safetensors").is_file():
        pytest.fail(f"shipped NER weights missing at {d}")
    return NerTagger.from_pretrained(d)


def test_shipped_weights_are_small():
    d = weights_dir() / "ner"
    size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
    assert size < 8 * 2**20
    card = (d / "README.md").read_text(encoding="utf-8")
    assert "mmre eval-ner" in card and "0.7375" in card  # the card says how it was measured, and what


def test_shipped_tagger_tags_an_example(shipped_tagger):
    caption = "Kawhi Leonard wins the fan vote in Toronto ! #NBAAwards @NBA http://t.co/x 🏀"
    ents = shipped_tagger.tag(caption)
    found = {(e.text, e.type) for e in ents}
    assert ("Kawhi Leonard", "PER") in found, found
    assert ("Toronto", "LOC") in found, found
    for e in ents:
        assert caption[e.start : e.end] == e.text and 0 <= e.confidence <= 1


def test_shipped_tagger_on_valid_sample(shipped_tagger):
    from mmre_demo.data.conll import read_conll
    from mmre_demo.data.paths import shared_data_dir
    from mmre_demo.train.ner import evaluate

    f = shared_data_dir() / "twitter_ner" / "twitter2015" / "valid.txt"
    if not f.is_file():
        pytest.skip(f"Twitter NER data not found at {f.parent} (set MMRE_DATA_DIR)")
    # Twitter's own span convention, as `mmre eval-ner` scores it; measured 0.7375 on these 100 sentences
    f1 = evaluate(shipped_tagger, read_conll(f)[:100], convention="twitter")["f1"]
    assert f1 >= 0.71, f"entity F1 {f1:.4f} (measured 0.7375)"


def test_partial_loss_with_one_allowed_tag_per_word_is_the_crf_loss():
    from mmre_demo.model.ner import NerConfig, NerHead

    torch.manual_seed(0)
    head = NerHead(NerConfig(), num_layers=2, dim=4)
    with torch.no_grad():
        head.transitions.normal_()
    scores = torch.randn(2, 5, 9)
    tags = torch.tensor([[1, 2, 0, 3, 4], [0, 5, 6, 0, 0]])
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    allowed = torch.nn.functional.one_hot(tags, 9).bool()
    assert torch.allclose(head.partial_loss(scores, allowed, mask), head.loss(scores, tags, mask), atol=1e-4)
    free = torch.ones_like(allowed)
    assert head.partial_loss(scores, free, mask).item() == pytest.approx(0.0, abs=1e-4)  # no label: no loss


def test_mnre_spans_become_partial_labels_on_the_taggers_words():
    from mmre_demo.data.mnre import MnreExample
    from mmre_demo.data.schema import Entity
    from mmre_demo.train.ner import mnre_partial_sentences

    cap = "RT @Titans : Marcus Mariota beats Houston"

    def e(t: str) -> Entity:
        return Entity(t, cap.index(t), cap.index(t) + len(t))

    lines = [MnreExample(cap, e("Marcus Mariota"), e("@Titans"), "/per/org/member_of", None, tuple(cap.split())),
             MnreExample(cap, e("Marcus Mariota"), e("Houston"), "None", None, tuple(cap.split()))]
    (sent,) = mnre_partial_sentences(lines)
    assert sent.tokens == ("RT", "@", "Titans", ":", "Marcus", "Mariota", "beats", "Houston")
    allowed = dict(enumerate(sent.allowed))
    assert allowed[2] == ("B-ORG",) and allowed[4] == ("B-PER",) and allowed[5] == ("I-PER",)
    assert set(allowed[7]) == {"B-PER", "B-LOC", "B-ORG", "B-MISC"}  # only a None line: any type
    assert "I-PER" not in allowed[6] and len(allowed[0]) == 9  # after a span: no I-; elsewhere free
    assert len(allowed[1]) == 9  # the '@' stays outside the entity


def test_a_tagger_with_two_conventions_tags_under_the_one_asked_for(tmp_path):
    torch.manual_seed(0)
    config = NerConfig(lstm_hidden=16, char_filters=8, char_dim=8, shape_dim=4, conventions=["twitter", "mnre"],
                       tag_convention="mnre")
    tagger = NerTagger(config, pretrained_backbone=False).eval()
    with torch.no_grad():
        tagger.head.convention.weight.copy_(torch.tensor([[0.0] * 16, [50.0] * 16]))  # conventions far apart
    words = [w for w, _ in SENTS]
    feats = tagger.word_features(words)
    default = tagger.predict_words(words, feats=feats)
    assert default == tagger.predict_words(words, feats=feats, convention="mnre")  # tag() uses tag_convention
    assert default != tagger.predict_words(words, feats=feats, convention="twitter")
    with pytest.raises(ValueError, match="unknown annotation convention 'conll'"):
        tagger.predict_words(words, feats=feats, convention="conll")
    tagger.save_pretrained(tmp_path)
    loaded = NerTagger.from_pretrained(tmp_path, pretrained_backbone=False)
    assert loaded.config.conventions == ["twitter", "mnre"] and loaded.config.tag_convention == "mnre"


@pytest.mark.parametrize("tags, words, expected", [
    (["B-ORG", "I-ORG", "I-ORG", "O"], ["RT", "@", "AroundTheNFL", ":"], ["AroundTheNFL"]),  # RT and @ trimmed
    (["B-ORG", "I-ORG", "O"], ["#", "NBAAwards", "tonight"], ["NBAAwards"]),
    (["B-ORG", "O", "O"], ["RT", "is", "here"], ["RT"]),  # RT alone may be the network: kept
    (["B-ORG", "I-ORG", "O"], ["Titans", ":", "win"], ["Titans"]),
    (["B-ORG", "O"], ["@", "x"], []),  # a mark alone is no entity
])
def test_entity_spans_are_trimmed_of_marks_that_are_never_part_of_a_name(tags, words, expected):
    from mmre_demo.model.ner.tagger import entities_from_tags
    from mmre_demo.model.ner.tokenizer import Word

    caption, ws, pos = "", [], 0
    for w in words:
        ws.append(Word(w, pos, pos + len(w)))
        caption += w + " "
        pos += len(w) + 1
    ents = entities_from_tags(caption, ws, tags, [0.9] * len(tags))
    assert [e.text for e in ents] == expected
    assert all(caption[e.start:e.end] == e.text for e in ents)


def test_a_tagger_config_from_before_keeps_loading_without_its_int8_scope(tmp_path):
    """The int8 path went (the shipped tagger served float32 through it): a saved config's `int8_scope` is
    an unknown key now, ignored as loading ignores every key it does not know."""
    from mmre_demo.model.ner.config import NerConfig

    cfg = NerConfig.from_dict({**NerConfig().to_dict(), "int8_scope": "none"})
    assert not hasattr(cfg, "int8_scope") and cfg == NerConfig()
