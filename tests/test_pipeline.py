"""Pipeline.predict as the app and the CLI use it (shipped relation weights, gold or given entities)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmre_demo.data.schema import Entity, InputError
from mmre_demo.pipeline import select_pairs, type_mask, word_weights

CAPTION = "Astronaut Eileen Collins of NASA poses at Johnson Space Center in Houston"


def spans(*items: tuple[str, str]) -> list[dict]:
    return [{"text": t, "start": CAPTION.index(t), "end": CAPTION.index(t) + len(t), "type": ty} for t, ty in items]


ENTS = spans(("Eileen Collins", "PER"), ("NASA", "ORG"), ("Houston", "LOC"))


def test_predict_gives_all_ordered_pairs_with_evidence(pipeline):
    img = Image.new("RGB", (320, 240), (30, 60, 200))
    pred = pipeline.predict(img, CAPTION, ENTS)
    assert len(pred.pairs) == 6 and pred.has_image and pred.image_size == (320, 240)
    for p in pred.pairs:
        assert p.label == p.top_k[0][0] and 0 <= p.probability <= 1
        assert len(p.top_k) == 3 and p.top_k[0][1] >= p.top_k[1][1] >= p.top_k[2][1]
        assert p.image_heatmap.shape == (7, 7) and 0 <= p.image_heatmap.min() and p.image_heatmap.max() <= 1
        assert sum(w.weight for w in p.token_weights) == pytest.approx(1.0, abs=1e-5)
        assert all(CAPTION[w.start : w.end] == w.text for w in p.token_weights)
    assert len(pred.concepts) == 5 and all(0 <= s <= 1 for _, s in pred.concepts)
    assert np.allclose(pred.image_feature, pipeline.image_feature(img), atol=1e-5)  # same pooled feature
    json.dumps(pred.to_dict(with_arrays=True))


def test_predict_is_deterministic(pipeline):
    a = pipeline.predict(None, CAPTION, ENTS)
    b = pipeline.predict(None, CAPTION, ENTS)
    assert [(p.label, p.probability) for p in a.pairs] == [(p.label, p.probability) for p in b.pairs]
    assert any("caption alone" in m for m in a.messages) and a.image_feature is None


def test_type_constraint_only_allows_matching_relations():
    from mmre_demo.data.labels import RELATIONS

    m = type_mask(RELATIONS, "PER", "ORG")
    allowed = {RELATIONS[i] for i in np.flatnonzero(m)}
    assert allowed == {"None", "/per/org/member_of"}


def test_predict_with_type_constraint_never_breaks_types(pipeline):
    pred = pipeline.predict(None, CAPTION, ENTS)
    from mmre_demo.data.labels import relation_types

    for p in pred.relations():
        assert relation_types(p.label) == (p.head.type, p.tail.type)


def test_pairs_are_capped_with_a_message():
    ents = [Entity(f"e{i}", 3 * i, 3 * i + 2) for i in range(30)]
    pairs, msg = select_pairs(ents, 30)
    assert len(pairs) == 30 and "870" in msg
    assert all(abs(i - j) <= 2 for i, j in pairs)  # the closest pairs are kept


def test_word_weights_sum_tokens_into_words():
    caption = "Bill Cosby visits"
    out = word_weights(caption, [(-1, -1), (0, 4), (5, 7), (7, 10), (11, 17)], np.array([5, 1, 1, 1, 1.0]))
    assert [w.text for w in out] == ["Bill", "Cosby", "visits"]
    assert [round(w.weight, 2) for w in out] == [0.25, 0.5, 0.25]


@pytest.mark.parametrize(
    "caption, entities, message",
    [
        ("", ENTS, "caption is empty"),
        ("x" * 5000, [], "5000 characters"),
        (CAPTION, [{"text": "NASA", "start": 200, "end": 204}], "outside the caption"),
        (CAPTION, [{"text": "", "start": 10, "end": 20}, {"text": "", "start": 15, "end": 24}], "overlap"),
        (CAPTION, [{"text": "Eileen", "start": "a", "end": 3}], "integer"),
    ],
)
def test_bad_input_is_a_clear_input_error(pipeline, caption, entities, message):
    with pytest.raises(InputError, match=message):
        pipeline.predict(None, caption, entities)


def test_bad_image_is_a_clear_input_error(pipeline):
    with pytest.raises(InputError, match="not an image"):
        pipeline.predict(b"GIF89a but not really", CAPTION, ENTS)


def test_one_entity_explains_why_no_pairs(pipeline):
    pred = pipeline.predict(None, CAPTION, ENTS[:1])
    assert pred.pairs == [] and any("needs two" in m for m in pred.messages)


def test_cli_predict_json_and_error_exit_code():
    cmd = [sys.executable, "-m", "mmre_demo", "predict", "--caption", CAPTION, "--entities", json.dumps(ENTS), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    pred = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(pred["pairs"]) == 6
    bad = subprocess.run([sys.executable, "-m", "mmre_demo", "predict", "--caption", CAPTION, "--entities", "[{"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr and "Traceback" not in bad.stderr
