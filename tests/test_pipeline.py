"""Pipeline.predict as the app and the CLI use it (shipped relation weights, gold or given entities)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from mmre_demo.data.labels import type_mask
from mmre_demo.data.schema import Entity, InputError
from mmre_demo.decoding import select_pairs
from mmre_demo.explain.evidence import word_weights
from mmre_demo.microbatch import Busy
from mmre_demo.pipeline import Pipeline
from mmre_demo.prediction import Prediction, PredictRequest

CAPTION = "Astronaut Eileen Collins of NASA poses at Johnson Space Center in Houston"
ZW_CAPTION = "President Tr\u200bump met Kim Jong\u200b Un in Singapore"


def spans(*items: tuple[str, str]) -> list[dict]:
    return [{"text": t, "start": CAPTION.index(t), "end": CAPTION.index(t) + len(t), "type": ty} for t, ty in items]


ENTS = spans(("Eileen Collins", "PER"), ("NASA", "ORG"), ("Houston", "LOC"))


def test_predict_gives_one_decoded_pair_per_entity_pair_with_evidence(pipeline):
    img = Image.new("RGB", (320, 240), (30, 60, 200))
    pred = pipeline.predict(img, CAPTION, ENTS)
    assert len(pred.pairs) == 3 and pred.has_image and pred.image_size == (320, 240)
    assert len({frozenset((p.head.text, p.tail.text)) for p in pred.pairs}) == 3
    for p in pred.pairs:
        assert p.label == next(lab for lab, _ in p.top_k if lab != "None") and 0 <= p.probability <= 1
        assert p.none_probability is not None and p.probability + p.none_probability <= 1 + 1e-6
        assert p.reverse is not None and 0 <= p.reverse[1] <= 1  # the other direction was classified too
        assert isinstance(p.image_influence, float) and -1 <= p.image_influence <= 1
        assert len(p.top_k) == 3 and p.top_k[0][1] >= p.top_k[1][1] >= p.top_k[2][1]
        assert p.image_heatmap.shape == (7, 7) and 0 <= p.image_heatmap.min() and p.image_heatmap.max() <= 1
        assert sum(w.weight for w in p.token_weights) == pytest.approx(1.0, abs=1e-5)
        assert all(CAPTION[w.start : w.end] == w.text for w in p.token_weights)
    assert len(pred.concepts) == 5 and all(0 <= s <= 1 for _, s in pred.concepts)
    with torch.no_grad():  # the knowledge graph's image feature: the vision backbone's pooled output
        pooled = pipeline.model.encode_images(pipeline.model.vision.preprocess([img])).pooled[0].numpy()
    assert pred.image_feature.shape == (1280,) and np.allclose(pred.image_feature, pooled, atol=1e-5)
    json.dumps(pred.to_dict(with_arrays=True))


def test_serving_keeps_one_copy_of_the_frozen_weights_and_predicts_as_pytorch(pipeline):
    """On the CPU onnxruntime serves by default: serving models whose sessions hold the frozen weights (no
    PyTorch copy left), the word embeddings of the tagger and the relation encoder one tensor both sessions
    read. The predictions are those of the whole PyTorch models (`engine="torch"`) to 1e-4, and the shared
    frozen backbone loads afresh for its other users (sentence embeddings)."""
    from mmre_demo.encoders.text import SentenceEmbedder
    from mmre_demo.serving import ServingNerTagger, ServingRelationModel, ServingVision

    model, tagger = pipeline.model, pipeline.tagger
    assert pipeline.engine == "onnxruntime"
    assert isinstance(model, ServingRelationModel) and isinstance(tagger, ServingNerTagger)
    assert isinstance(model.vision, ServingVision) and not hasattr(model, "text_encoder")
    assert not hasattr(tagger, "encoder") and not hasattr(model.vision, "model")
    (table,) = model.text_session._shared.values()
    assert [t.data_ptr() for t in tagger.session._shared.values()] == [table.data_ptr()]
    assert model.vision.classifier.weight.numel() > 0  # the classifier reads the grid cells: kept

    whole = Pipeline.load(device="cpu", read_text=False, engine="torch")
    assert whole.engine == "torch" and not isinstance(whole.model, ServingRelationModel)
    img = Image.new("RGB", (320, 240), (30, 60, 200))
    served, reference = pipeline.predict(img, CAPTION), whole.predict(img, CAPTION)
    assert [(e.text, e.type) for e in served.entities] == [(e.text, e.type) for e in reference.entities]
    assert len(served.pairs) == len(reference.pairs) > 0
    for a, b in zip(served.pairs, reference.pairs):
        assert (a.head.text, a.tail.text, a.label) == (b.head.text, b.tail.text, b.label)
        assert a.probability == pytest.approx(b.probability, abs=1e-4)
        assert dict(a.top_k) == pytest.approx(dict(b.top_k), abs=1e-4)
    assert np.allclose(served.image_feature, reference.image_feature, atol=1e-4)
    vectors = SentenceEmbedder.load().embed(["NASA", "Houston"])
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)


def test_the_torch_engine_gives_whole_models_that_train(shipped_relation_dir):
    """`engine="torch"`: the PyTorch models, whole; one optimizer step on a batch lowers its loss."""
    from mmre_demo.model.batching import CaptionPairs, caption_items, run_batch

    pipe = Pipeline.load(device="cpu", read_text=False, engine="torch")
    model = pipe.model
    assert all(p.numel() > 0 for p in model.parameters()) and pipe.tagger.encoder is not None
    ents = [Entity.from_dict(e) for e in ENTS]
    items = caption_items(model, [CaptionPairs(CAPTION, ents, [(0, 1), (1, 2)], None, None)])
    target = torch.tensor([model.config.labels.index("/per/org/member_of"), 0])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.05)
    model.train()

    def loss() -> torch.Tensor:
        torch.manual_seed(0)
        return torch.nn.functional.cross_entropy(run_batch(model, items, None).logits, target)

    before = loss()
    before.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        after = loss()
    assert params and float(after) < float(before.detach())


def test_no_grad_mode_picks_an_engine():
    """The engine is chosen once at load; nothing in the library asks torch's grad mode which to run."""
    from pathlib import Path

    import mmre_demo

    root = Path(mmre_demo.__file__).parent
    assert not [p for p in root.rglob("*.py") if "is_grad_enabled" in p.read_text()]


def test_an_unknown_engine_is_refused_before_anything_loads():
    with pytest.raises(InputError, match="engine 'tensorrt'"):
        Pipeline.load(device="cpu", engine="tensorrt")  # type: ignore[arg-type]


def test_a_caption_the_model_cannot_read_says_so_instead_of_no_entities(pipeline):
    pred = pipeline.predict(None, "特朗普在新加坡会见了金正恩。")
    assert any("script the model does not read (Chinese): it cannot find the caption's entities" in m
               for m in pred.messages)
    assert not any("entities found in the caption" in m for m in pred.messages)
    names = [{"text": "特朗普", "start": 0, "end": 3, "type": "PER"},
             {"text": "金正恩", "start": 10, "end": 13, "type": "PER"}]
    given = pipeline.predict(None, "特朗普在新加坡会见了金正恩。", names)
    assert any("(Chinese): its entities and relations are unreliable" in m for m in given.messages)
    assert len(given.pairs) == 1
    assert not any("does not read" in m for m in pipeline.predict(None, CAPTION).messages)


def test_warm_up_loads_the_ocr_and_runs_every_stage_once(pipeline):
    """`Pipeline.load(warm_up=True)` (the app) pays the first-run costs before the first click: the OCR
    engines load and one request with a picture of printed words goes through every model."""
    from mmre_demo.encoders.ocr import TextReader

    read: list[tuple[int, int]] = []

    class Engine:
        warmed = False

        def warm_up(self):
            Engine.warmed = True

        def __call__(self, rgb, max_boxes, max_units):
            read.append(rgb.shape[:2])
            return [], 0

    reader = TextReader(engine_factory=lambda **kw: Engine())
    pipe = Pipeline(pipeline.model, pipeline.tagger, "cpu", text_reader=reader)
    assert pipe.warm_up() > 0
    assert Engine.warmed and len(read) == 1 and pipe.text_reader.engine is not None


def test_a_prediction_read_back_from_its_dict_is_the_same_prediction(pipeline):
    img = Image.new("RGB", (320, 240), (30, 60, 200))
    d = pipeline.predict(img, CAPTION, ENTS).to_dict(with_arrays=True)
    back = Prediction.from_dict(json.loads(json.dumps(d)))
    assert back.to_dict(with_arrays=True) == d and len(back.pairs) == 3
    assert back.pairs[0].image_heatmap.shape == (7, 7) and back.pairs[0].reverse is not None


def test_predict_is_deterministic(pipeline):
    a = pipeline.predict(None, CAPTION, ENTS)
    b = pipeline.predict(None, CAPTION, ENTS)
    assert [(p.label, p.probability) for p in a.pairs] == [(p.label, p.probability) for p in b.pairs]
    assert any("caption alone" in m for m in a.messages) and a.image_feature is None
    assert all(p.image_influence is None and p.influence_text() == "no image" for p in a.pairs)


@pytest.mark.parametrize("gate", [1.0, 0.0])
def test_image_influence_is_measured_against_the_same_pairs_without_the_image(pipeline, gate):
    """P(label | image + caption) - influence = P(label | caption alone), as `predict(None, ...)` gives it, with
    the image gate open (the image moves probabilities) and closed (influence 0, and the app is told)."""
    img = Image.new("RGB", (320, 240), (200, 60, 30))
    shipped_gate = pipeline.model.config.image_weight
    pipeline.model.config.image_weight = gate
    try:
        with_image = pipeline.predict(img, CAPTION, ENTS)
        without = {(p.head.text, p.tail.text, p.label): p for p in pipeline.predict(None, CAPTION, ENTS).pairs}
    finally:
        pipeline.model.config.image_weight = shipped_gate
    shown = {(p.head.text, p.tail.text, p.label): p for p in with_image.pairs}
    same = set(shown) & set(without)
    assert same, "no pair kept the same direction and label with and without the image"
    for key in same:
        p = shown[key]
        assert p.probability - p.image_influence == pytest.approx(without[key].probability, abs=1e-5)
    moved = max(abs(p.image_influence) for p in with_image.pairs)
    assert (moved > 1e-4) if gate else (moved == 0.0)
    assert with_image.image_weight == gate


def test_calibrated_probabilities_use_the_stored_temperature(pipeline):
    logits = torch.tensor([[2.0, 0.5, -1.0] + [0.0] * (pipeline.model.config.num_labels - 3)])
    cfg = pipeline.model.config
    saved = cfg.temperature, cfg.label_bias
    offsets = [0.5 * i for i in range(cfg.num_labels)]
    try:
        cfg.label_bias, cfg.temperature = [], 1.0
        sharp = pipeline.model.probabilities(logits)
        cfg.temperature = 2.0
        soft = pipeline.model.probabilities(logits)
        cfg.label_bias = offsets
        shifted = pipeline.model.probabilities(logits)
    finally:
        cfg.temperature, cfg.label_bias = saved
    assert int(sharp.argmax()) == int(soft.argmax()) and float(soft.max()) < float(sharp.max())
    assert torch.allclose(soft, (logits / 2.0).softmax(-1))
    assert torch.allclose(shifted, ((logits + torch.tensor(offsets)) / 2.0).softmax(-1))


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


def test_pairs_are_capped_with_a_message_and_keep_both_directions():
    ents = [Entity(f"e{i:02d}", 4 * i, 4 * i + 3) for i in range(30)]
    pairs, msg = select_pairs(ents, 30)
    assert len(pairs) == 30 and "435 entity pairs" in msg and "15 pairs" in msg
    assert all((j, i) in pairs for i, j in pairs)  # both directions of every kept pair
    assert all(abs(i - j) <= 2 for i, j in pairs)  # the closest pairs are kept


def test_two_mentions_of_one_name_are_not_paired():
    caption = "Paris loves Paris and Rome"
    ents = [Entity("Paris", 0, 5), Entity("Paris", 12, 17), Entity("Rome", 22, 26)]
    pairs, msg = select_pairs(ents, 30)
    assert msg is None and (0, 1) not in pairs and (1, 0) not in pairs
    assert sorted(pairs) == [(0, 2), (1, 2), (2, 0), (2, 1)]
    assert caption[12:17] == "Paris"


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


def test_relations_default_to_the_models_threshold(pipeline):
    pred = pipeline.predict(None, CAPTION, ENTS)
    assert pred.threshold == pipeline.model.config.threshold
    for p in pred.pairs:
        p.label, p.probability = "/per/org/member_of", pred.threshold - 0.01
    assert pred.relations() == [] and len(pred.relations(threshold=0.0)) == 3


def test_cli_predict_json_and_error_exit_code():
    cmd = [sys.executable, "-m", "mmre_demo", "predict", "--caption", CAPTION, "--entities", json.dumps(ENTS), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    pred = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(pred["pairs"]) == 3 and all(p["image_influence"] is None for p in pred["pairs"])
    assert "LOAD REPORT" not in out.stderr, out.stderr  # no library chatter on the user's terminal
    bad = subprocess.run([sys.executable, "-m", "mmre_demo", "predict", "--caption", CAPTION, "--entities", "[{"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_predict_and_ner_read_past_zero_width_characters():
    """The issue's command: `mmre predict --caption "President Tr<U+200B>ump met Kim Jong<U+200B> Un ..."`."""
    out = subprocess.run([sys.executable, "-m", "mmre_demo", "predict", "--caption", ZW_CAPTION, "--json",
                          "--no-read-text"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    pred = json.loads(out.stdout.strip().splitlines()[-1])
    spans = {e["text"]: (e["start"], e["end"]) for e in pred["entities"]}
    assert spans["Trump"] == (10, 16) and spans["Kim Jong Un"] == (21, 33)
    ner = subprocess.run([sys.executable, "-m", "mmre_demo", "ner", ZW_CAPTION, "--json"],
                         capture_output=True, text=True, timeout=600)
    assert ner.returncode == 0, ner.stderr
    assert {(e["text"], e["start"], e["end"]) for e in json.loads(ner.stdout.strip().splitlines()[-1])} >= {
        ("Trump", 10, 16), ("Kim Jong Un", 21, 33)}


def test_entities_inside_a_hashtag_and_a_handle_are_classified(pipeline):
    caption = "RT @NASAJohnson : #EileenCollins flew again"
    ents = [{"text": "NASA", "start": caption.index("NASA"), "end": caption.index("NASA") + 4, "type": "ORG"},
            {"text": "Eileen", "start": caption.index("Eileen"), "end": caption.index("Eileen") + 6, "type": "PER"}]
    pred = pipeline.predict(None, caption, ents)
    (pair,) = pred.pairs
    assert {pair.head.text, pair.tail.text} == {"NASA", "Eileen"} and pair.reverse is not None
    assert all(caption[w.start : w.end] == w.text for w in pair.token_weights)


def assert_same_prediction(got, want) -> None:
    """Two answers to the same request agree: entities, notes, concepts, pairs, probabilities (1e-5)."""
    assert got.entities == want.entities and got.messages == want.messages
    assert [c for c, _ in got.concepts] == [c for c, _ in want.concepts]
    assert [p for _, p in got.concepts] == pytest.approx([p for _, p in want.concepts], abs=1e-5)
    assert [(p.head, p.tail, p.label, p.reverse[0] if p.reverse else None, len(p.top_k)) for p in got.pairs] == \
           [(p.head, p.tail, p.label, p.reverse[0] if p.reverse else None, len(p.top_k)) for p in want.pairs]
    for g, w in zip(got.pairs, want.pairs, strict=True):
        assert g.probability == pytest.approx(w.probability, abs=1e-5)
        assert (g.image_influence is None) == (w.image_influence is None)
        assert g.image_influence is None or g.image_influence == pytest.approx(w.image_influence, abs=1e-5)


RED, BLUE = Image.new("RGB", (300, 200), (220, 30, 30)), Image.new("RGB", (64, 64), (20, 40, 200))
MIXED = [PredictRequest(CAPTION, RED),
         PredictRequest("RT @SportsCenter : Jimmer went OFF for 41 against Harden and the Rockets .", top_k=5),
         PredictRequest(CAPTION, BLUE, ENTS, max_pairs=2),
         PredictRequest("just one word: Paris"),
         PredictRequest("Barack Obama met Angela Merkel and Emmanuel Macron in Berlin with Olaf Scholz .", RED,
                        max_pairs=4)]


def test_predict_many_equals_predict_on_each_request(pipeline):
    """Shared tagger, vision and relation batches across requests (detected and given entities, their own
    top_k and pair caps) change nothing a request gets."""
    many = pipeline.predict_many(MIXED)
    for request, got in zip(MIXED, many, strict=True):
        want = pipeline.predict(request.image, request.caption, request.entities, request.max_pairs, request.top_k)
        assert_same_prediction(got, want)
    assert [len(p.top_k) for p in many[1].pairs] == [5] * len(many[1].pairs)
    assert not many[2].entities_detected and many[0].entities_detected
    assert len(many[2].pairs) == 1 and any("closest" in m for m in many[4].messages)  # caps apply per request


def test_predict_many_a_bad_request_fails_alone(pipeline):
    bad = [PredictRequest(CAPTION), PredictRequest("  "), PredictRequest(CAPTION, b"not an image"),
           PredictRequest(CAPTION, None, [{"text": "Mars", "start": 0, "end": 4}])]
    got = pipeline.predict_many(bad)
    assert got[0].pairs and [type(g) for g in got[1:]] == [InputError] * 3
    assert "caption is empty" in str(got[1]) and "Mars" in str(got[3])
    with pytest.raises(InputError, match="caption is empty"):
        pipeline.predict(None, "  ")


def test_concurrent_requests_share_a_batch_and_each_gets_what_it_gets_alone(pipeline):
    """Requests from different threads arriving within the window are classified in one batch."""
    alone = [pipeline.predict_many([r])[0] for r in MIXED]
    batched = Pipeline(pipeline.model, pipeline.tagger, pipeline.device, batch_window_ms=200)
    barrier = threading.Barrier(len(MIXED))

    def ask(request):
        barrier.wait()
        return batched.predict_many([request])[0]

    # announced as on their way (as a server says it of the requests it is preparing): a batch waits for
    # them within its window, instead of starting before the other threads reach `predict_many`
    with batched.batcher.expecting(len(MIXED)), ThreadPoolExecutor(len(MIXED)) as pool:
        together = list(pool.map(ask, MIXED))
    assert max(batched.batcher.batch_sizes) >= 3  # at least three requests shared one model batch
    for got, want in zip(together, alone, strict=True):
        assert_same_prediction(got, want)


def test_a_full_queue_answers_busy_at_once(pipeline):
    """Past `max_waiting` queued requests a request is refused with a clear message, not queued."""
    busy = Pipeline(pipeline.model, pipeline.tagger, pipeline.device, batch_window_ms=10_000, max_batch=100,
                    max_waiting=2)
    first = threading.Thread(target=busy.predict_many, args=([PredictRequest(CAPTION), PredictRequest(CAPTION)],))
    # another request announced as on its way: the first batch waits for it, so its two requests stay queued
    with busy.batcher.expecting(1):
        first.start()
        deadline = time.monotonic() + 5
        while not busy.batcher._queue and time.monotonic() < deadline:
            time.sleep(0.01)
        t = time.perf_counter()
        (answer,) = busy.predict_many([PredictRequest(CAPTION)])
        assert isinstance(answer, Busy) and "busy" in str(answer) and "try again" in str(answer)
        assert time.perf_counter() - t < 1.0
    busy.batcher.window_s = 0.0  # let the first call finish
    with busy.batcher._cond:
        busy.batcher._cond.notify_all()
    first.join(30)
    assert not first.is_alive()



def test_invisible_characters_do_not_split_names_and_offsets_index_the_typed_caption(pipeline):
    pred = pipeline.predict(None, ZW_CAPTION)
    assert pred.caption == ZW_CAPTION
    names = {e.text: (e.start, e.end) for e in pred.entities}
    assert {"Trump", "Kim Jong Un"} <= set(names), names
    assert names["Trump"] == (ZW_CAPTION.index("Tr"), ZW_CAPTION.index("ump") + 3)
    assert names["Kim Jong Un"] == (ZW_CAPTION.index("Kim"), ZW_CAPTION.index(" Un") + 3)
    fragments = {"Tr", "ump", "Kim Jong", "Un", "Jong Un"}
    assert not any(p.head.text in fragments or p.tail.text in fragments for p in pred.pairs)
    for p in pred.pairs:  # word weights are spans of the typed caption too
        assert all(ZW_CAPTION[w.start:w.end].replace("\u200b", "") == w.text for w in p.token_weights)
    clean = pipeline.predict(None, ZW_CAPTION.replace("\u200b", ""))
    assert [(p.head.text, p.label, p.tail.text) for p in pred.pairs] == \
           [(p.head.text, p.label, p.tail.text) for p in clean.pairs]


def test_given_entities_on_a_caption_with_invisible_characters(pipeline):
    start, end = ZW_CAPTION.index("Tr"), ZW_CAPTION.index("ump") + 3
    ents = [{"text": "Trump", "start": start, "end": end, "type": "PER"},
            {"text": "Singapore", "start": ZW_CAPTION.index("Singapore"), "end": len(ZW_CAPTION), "type": "LOC"}]
    pred = pipeline.predict(None, ZW_CAPTION, ents)
    assert [(e.text, e.start, e.end) for e in pred.entities] == [("Trump", start, end),
                                                                ("Singapore", ZW_CAPTION.index("Singapore"),
                                                                 len(ZW_CAPTION))]
    with pytest.raises(InputError, match="does not match"):
        pipeline.predict(None, ZW_CAPTION, [{"text": "Obama", "start": start, "end": end}, ents[1]])


def test_an_invisible_only_caption_is_refused_like_an_empty_one(pipeline):
    for caption in ("\u200b\u200b", "\u200e\u202e \u2066", "\ufeff\u00ad\n"):
        with pytest.raises(InputError, match="no visible text"):
            pipeline.predict(None, caption)
