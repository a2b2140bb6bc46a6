"""`mmre predict`, `mmre train`, `mmre calibrate`, `mmre eval`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmre_demo.model.config import ARCHITECTURES, BACKBONE_TRAININGS, RelationConfig
from mmre_demo.prediction import DEFAULT_TOP_K, MAX_PAIRS
from mmre_demo.train.config import RelationTrainConfig


def register(sub: argparse._SubParsersAction) -> None:
    run, model = RelationTrainConfig, RelationConfig  # the defaults of `train`
    p = sub.add_parser("predict", help="relations between the entities of one caption (+ image)")
    p.add_argument("--image", help="image file (omit for caption only)")
    p.add_argument("--caption", required=True)
    p.add_argument("--entities", help='JSON list of {"text","start","end","type"}; omit to detect them')
    p.add_argument("--weights", help="weights folder (default: $MMRE_WEIGHTS, else the shipped weights/)")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-pairs", type=int, default=MAX_PAIRS)
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="alternatives per pair (default %(default)s)")
    p.add_argument("--no-read-text", action="store_true", help="do not read the text in the image (OCR)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_predict)

    t = sub.add_parser("train", help="train the relation model on MNRE-format files (or annotators' decisions)")
    t.add_argument("--train", help="MNRE-format training file (optional with --annotations)")
    t.add_argument("--annotations", metavar="DB",
                   help="also train on the standing decisions of this annotation store (accept/relabel: that "
                        "relation, reject: None); starts from the shipped model unless --init-from says otherwise "
                        "(docs/annotations.md: the settings that keep the end-to-end F1)")
    t.add_argument("--annotator", help="with --annotations: only this annotator's decisions")
    t.add_argument("--val", required=True)
    t.add_argument("--images", help="folder of images named by img_id (optional)")
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=run.epochs, help="default: %(default)s")
    t.add_argument("--batch-size", type=int, default=run.batch_size, help="default: %(default)s")
    t.add_argument("--lr", type=float, default=run.lr, help="backbone (LoRA) learning rate (default: %(default)s)")
    t.add_argument("--head-lr", type=float, default=run.head_lr, help="default: %(default)s")
    t.add_argument("--seed", type=int, default=run.seed, help="default: %(default)s")
    t.add_argument("--architecture", choices=ARCHITECTURES, default=model.architecture,
                   help="how the text is read: one pass per pair (pair-markers) or per caption (default: %(default)s)")
    t.add_argument("--max-rows", type=int, default=model.max_rows,
                   help="pairs per caption-once pass (default: %(default)s)")
    t.add_argument("--text-backbone", default=model.text_backbone, help="default: %(default)s")
    t.add_argument("--text-layers", type=int, default=model.text_layers,
                   help="read with the backbone's first N layers only (default: all)")
    t.add_argument("--vision-backbone", default=model.vision_backbone, help="default: %(default)s")
    t.add_argument("--backbone-training", choices=BACKBONE_TRAININGS, default=model.backbone_training)
    t.add_argument("--lora-r", type=int, default=model.lora_r, help="LoRA rank; alpha = 2 r (default: %(default)s)")
    t.add_argument("--limit", type=int, help="use only the first N training lines (quick runs)")
    t.add_argument("--skip-bad", action="store_true", help="skip malformed lines (counted) instead of failing")
    t.add_argument("--tensorboard", action="store_true")
    t.add_argument("--device", default=run.device, help="auto (cuda > mps > cpu), cpu, cuda or mps")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last")
    t.add_argument("--pairs", default=",".join(run.pair_sources),
                   help="comma-separated pair sources: gold (MNRE's lines), reverse (their other direction), "
                        "silver (pairs MNRE left out, with the tagger's entities); e.g. gold,reverse,silver")
    t.add_argument("--extra-fraction", type=float, default=run.extra_fraction,
                   help="share of the reverse + silver pairs drawn afresh each epoch (1 = all)")
    t.add_argument("--silver-weight", type=float, default=1.0,
                   help="loss weight of a silver pair (MNRE left it out: usually no relation, sometimes one)")
    t.add_argument("--init-from", help="start from a saved model folder (e.g. weights/relation)")
    t.add_argument("--ner-weights", help="tagger for silver pairs and end-to-end selection (default: shipped)")
    t.add_argument("--image-text", action="store_true",
                   help="give the model the text read in each image (OCR) as a second segment after the caption "
                        "(needs --images; the shipped model is trained without it)")
    t.add_argument("--distill-from", nargs="+", metavar="MODEL",
                   help="saved teacher model(s) whose distributions the student also learns (several: their ensemble)")
    t.add_argument("--distill-weight", type=float, default=run.distill_weight,
                   help="share of the distillation term in the loss (default: %(default)s)")
    t.add_argument("--distill-temperature", type=float, default=run.distill_temperature,
                   help="softening of both distributions (default: %(default)s)")
    t.add_argument("--select-on", choices=["end_to_end", "gold"], default=run.select_on,
                   help="best epoch by the product's end-to-end F1 on val (default) or by gold-pair F1")
    t.set_defaults(handler=cmd_train)

    c = sub.add_parser("calibrate", help="fit a saved model's calibration and thresholds on validation data")
    c.add_argument("--weights", required=True, help="saved relation model folder")
    c.add_argument("--val", required=True, help="MNRE-format validation file")
    c.add_argument("--out", required=True, help="where to save the calibrated model (may be --weights itself)")
    c.add_argument("--images", default=None, help="folder of images named by img_id")
    c.add_argument("--ner-weights", help="tagger for the end-to-end threshold "
                   "(default: the weights folder's ner/, else the shipped tagger)")
    c.add_argument("--device", default="auto")
    c.add_argument("--json", action="store_true", help="the last stdout line is the JSON summary")
    c.set_defaults(handler=cmd_calibrate)

    e = sub.add_parser("eval", help="MNRE micro P/R/F1 of a model on a data file")
    e.add_argument("--data", required=True)
    e.add_argument("--images", default=None, help="folder of images named by img_id")
    e.add_argument("--weights", help="weights folder (default: $MMRE_WEIGHTS, else the shipped weights/)")
    e.add_argument("--device", default="auto")
    e.add_argument("--detect-entities", action="store_true",
                   help="end to end: find entities with the tagger instead of using the gold ones")
    e.add_argument("--no-type-constraint", action="store_true", help="with --detect-entities: no type constraint")
    e.add_argument("--threshold", type=float, default=None,
                   help="with --detect-entities: probability threshold (default: the model's own)")
    e.add_argument("--records", help="with --detect-entities: write each caption's gold and shown triples here (JSONL)")
    e.add_argument("--ner-weights", help="tagger folder (default: the weights folder's ner/, else the shipped tagger)")
    e.add_argument("--types-from-tagger", action="store_true",
                   help="gold spans: take entity types from the NER tagger and apply the type constraint")
    e.add_argument("--image-ablation", action="store_true",
                   help="score the lines whose image is in --images twice: with and without the images")
    e.add_argument("--report-dir", help="where to write report.txt and confusion.png "
                                        "(default: runs/eval/<data file name without extension>)")
    e.add_argument("--skip-bad", action="store_true")
    e.add_argument("--json", action="store_true", help="the last stdout line is the JSON summary")
    e.set_defaults(handler=cmd_eval)


def cmd_predict(args: argparse.Namespace) -> int:
    from mmre_demo.data.schema import InputError
    from mmre_demo.pipeline import Pipeline

    entities = None
    if args.entities:
        try:
            entities = json.loads(args.entities)
        except json.JSONDecodeError as exc:
            raise InputError(f"--entities is not valid JSON ({exc.msg} at char {exc.pos})") from None
        if not isinstance(entities, list):
            raise InputError("--entities must be a JSON list of objects")
    pipe = Pipeline.load(args.weights, device=args.device, read_text=not args.no_read_text, batch_window_ms=0)
    pred = pipe.predict(args.image, args.caption, entities, max_pairs=args.max_pairs, top_k=args.top_k)
    if args.json:
        print(json.dumps(pred.to_dict()))
        return 0
    for m in pred.messages:
        print(f"note: {m}")
    print("entities: " + ", ".join(f"{e.text} ({e.type}) [{e.start}:{e.end}]" for e in pred.entities))
    if pred.concepts:
        print("visual concepts: " + ", ".join(f"{c} {p:.2f}" for c, p in pred.concepts))
    if pred.image_text is not None and pred.image_text.lines:
        lines = pred.image_text.lines
        print("text read in the image: " + " | ".join(f"{ln.text} ({ln.confidence:.2f})" for ln in lines))
    for g in pred.groundings:
        print(f"grounded: {g.entity.text} read in the image as {g.matched_text!r} at {list(g.box)} "
              f"(OCR confidence {g.ocr_confidence:.2f}, {g.how})")
    if pred.also_in_image:
        print("also in the image: " + ", ".join(f"{e.text} ({e.type})" for e in pred.also_in_image))
    print(f"relations at >= {pred.threshold:.2f} "
          "(the model's threshold; one per entity pair, more probable direction):")
    for pair in pred.pairs:
        visible = pair.is_shown(pred.threshold)
        note = "" if visible else "  [below the threshold: no relation]"
        alts = "; ".join(f"{lab} {p:.2f}" for lab, p in pair.top_k[1:])
        reverse = f"; reverse: {pair.reverse[0]} {pair.reverse[1]:.2f}" if pair.reverse else ""
        print(f"  {pair.head.text} -> {pair.tail.text}: {pair.label} ({pair.probability:.2f}; image influence "
              f"{pair.influence_text()}){note}  alternatives: {alts}{reverse}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from mmre_demo.data.mnre import read_mnre
    from mmre_demo.data.product_pairs import PAIR_SOURCES
    from mmre_demo.data.schema import InputError
    from mmre_demo.train.relation import train

    sources = tuple(s.strip() for s in args.pairs.split(",") if s.strip())
    if not sources or set(sources) - set(PAIR_SOURCES):
        raise InputError(f"--pairs {args.pairs!r}: choose a comma-separated subset of {', '.join(PAIR_SOURCES)}")
    if not 0 < args.extra_fraction <= 1:
        raise InputError(f"--extra-fraction must be in (0, 1], got {args.extra_fraction}")
    if args.silver_weight <= 0:
        raise InputError(f"--silver-weight must be positive, got {args.silver_weight}")
    if not args.train and not args.annotations:
        raise InputError("give the training data: --train FILE (MNRE lines) and/or --annotations DB")
    train_ex, bad_t = read_mnre(args.train, skip_bad=args.skip_bad) if args.train else ([], 0)
    val_ex, bad_v = read_mnre(args.val, skip_bad=args.skip_bad)
    if bad_t or bad_v:
        print(f"skipped malformed lines: {bad_t} in {args.train}, {bad_v} in {args.val}")
    if args.limit:
        train_ex = train_ex[: args.limit]
    if args.annotations:
        train_ex += _annotation_examples(args)
    if args.image_text and not args.images:
        raise InputError("--image-text reads the text in the training images: give them with --images DIR")
    config = RelationConfig(architecture=args.architecture, max_rows=args.max_rows,
                            text_backbone=args.text_backbone, text_layers=args.text_layers,
                            vision_backbone=args.vision_backbone,
                            backbone_training=args.backbone_training, lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
                            image_text=args.image_text)
    targs = RelationTrainConfig(out=Path(args.out), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      head_lr=args.head_lr, seed=args.seed, tensorboard=args.tensorboard, resume=args.resume,
                      device=args.device, config=config,
                      pair_sources=sources,
                      extra_fraction=args.extra_fraction, silver_weight=args.silver_weight,
                      init_from=Path(args.init_from) if args.init_from else None,
                      ner_weights=Path(args.ner_weights) if args.ner_weights else None, select_on=args.select_on,
                      distill_from=tuple(Path(t) for t in args.distill_from or ()),
                      distill_weight=args.distill_weight, distill_temperature=args.distill_temperature)
    state = train(targs, train_ex, val_ex, images_dir=args.images)
    print(json.dumps({"best_epoch": state.get("best_epoch"), "best_val_f1": state["best_f1"],
                      "saved": str(Path(args.out) / "best")}))
    return 0


def _annotation_examples(args: argparse.Namespace) -> list:
    """`--annotations DB`: the decisions as examples; fine-tuning starts from the shipped model (set as
    `args.init_from` when not given) and never writes into the shipped weights folder."""
    from mmre_demo.annotations.training import load_decision_examples
    from mmre_demo.data.paths import WeightsLayout, weights_dir
    from mmre_demo.data.schema import InputError

    shipped = weights_dir().resolve()
    if Path(args.out).resolve().is_relative_to(shipped):
        raise InputError(f"--out {args.out} is inside the shipped weights ({shipped}): choose a new folder")
    if not args.init_from:
        args.init_from = str(WeightsLayout.find().relation)
    return load_decision_examples(args.annotations, args.annotator)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Refit a saved model's calibration and thresholds (e.g. after a tagger change)."""
    from mmre_demo.data.mnre import read_mnre
    from mmre_demo.data.paths import WeightsLayout
    from mmre_demo.device import resolve_device
    from mmre_demo.model.batching import ImageCache, prepare_items
    from mmre_demo.model.ner import NerTagger
    from mmre_demo.model.relation import RelationModel
    from mmre_demo.train.relation import check_on_validation

    examples, _ = read_mnre(args.val)
    layout = WeightsLayout.find(args.weights, args.ner_weights)
    model = RelationModel.from_pretrained(layout.relation, device=resolve_device(args.device))
    cache = ImageCache(model)
    cache.add_folder(args.images, {e.img_id for e in examples if e.img_id})
    check = check_on_validation(model, prepare_items(model, examples, cache), cache, examples,
                                NerTagger.from_pretrained(layout.tagger), args.images, end_to_end=True)
    model.config.metrics = {**model.config.metrics, "val": check.gold, "calibration": check.calibration,
                            "end_to_end": check.end_to_end, "calibrated_on": Path(args.val).name}
    model.save_pretrained(args.out)
    e2e = check.end_to_end or {}
    summary = {"none_bias": check.calibration["none_offset"], "label_bias": check.label_bias,
               "temperature": round(check.temperature, 4), "threshold": check.threshold,
               "gold_threshold": check.gold_threshold, "gold_f1": round(check.gold["f1"], 4),
               "ece_before": round(check.calibration["ece_before"], 4),
               "ece_after": round(check.calibration["ece_after"], 4),
               "ece_noise_floor": round(check.calibration["ece_noise_floor"], 4),
               "ece_held_out": round(check.calibration["ece_held_out"], 4),
               "ece_held_out_noise_floor": round(check.calibration["ece_held_out_noise_floor"], 4),
               "e2e_f1": round(e2e.get("f1", 0.0), 4),
               "e2e_precision": round(e2e.get("precision", 0.0), 4), "e2e_recall": round(e2e.get("recall", 0.0), 4),
               "saved": str(args.out)}
    print(json.dumps(summary))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from mmre_demo.data.mnre import read_mnre
    from mmre_demo.data.paths import WeightsLayout
    from mmre_demo.train.evaluate import evaluate_gold_entities, summary_line
    from mmre_demo.train.metrics import format_report, save_confusion_png

    examples, bad = read_mnre(args.data, skip_bad=args.skip_bad)
    if bad:
        print(f"skipped {bad} malformed lines in {args.data}")
    if args.detect_entities:
        return _eval_end_to_end(args, examples)
    from mmre_demo.device import resolve_device
    from mmre_demo.model.relation import RelationModel

    layout = WeightsLayout.find(args.weights)
    model = RelationModel.from_pretrained(layout.relation, device=resolve_device(args.device))
    if args.image_ablation:
        from mmre_demo.data.schema import InputError
        from mmre_demo.train.evaluate import image_ablation

        if not args.images:
            raise InputError("--image-ablation needs --images DIR")
        ab = image_ablation(model, examples, args.images)
        print(json.dumps({"n": ab["n"], "with_images": summary_line(ab["with_images"]),
                          "without_images": summary_line(ab["without_images"])}))
        return 0
    entity_types = None
    if args.types_from_tagger:
        from mmre_demo.model.ner import NerTagger
        from mmre_demo.train.evaluate import tagged_types

        entity_types = tagged_types(NerTagger.from_pretrained(layout.tagger), examples)
    result = evaluate_gold_entities(model, examples, args.images, entity_types=entity_types)
    print(format_report(result["report"]))
    report_dir = Path(args.report_dir) if args.report_dir else Path("runs") / "eval" / Path(args.data).stem
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.txt").write_text(format_report(result["report"]) + "\n")
    png = save_confusion_png(result["confusion"], model.config.labels, report_dir / "confusion.png",
                             title=f"{Path(args.data).name}: F1 {result['scores']['f1']:.3f}")
    print(f"report: {report_dir / 'report.txt'}  confusion matrix: {png}")
    summary = summary_line(result["scores"])
    if args.json:
        print(json.dumps(summary))
    else:
        print(" ".join(f"{k}={v}" for k, v in summary.items()))
    sys.stdout.flush()
    return 0


def _rounded(d: dict) -> dict:
    return {k: _rounded(v) if isinstance(v, dict) else round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def _eval_end_to_end(args: argparse.Namespace, examples: list) -> int:
    """The product's metric: entities detected, pairs decoded, `relations()` as a user sees them."""
    from mmre_demo.pipeline import Pipeline
    from mmre_demo.train.end_to_end import predict_captions, score_runs

    pipe = Pipeline.load(args.weights, device=args.device, type_constraint=not args.no_type_constraint,
                         ner_weights=args.ner_weights)
    threshold = pipe.threshold if args.threshold is None else args.threshold
    runs = predict_captions(pipe, examples, args.images, progress=not args.json and sys.stderr.isatty())
    scores = score_runs(runs, threshold)
    if args.records:
        Path(args.records).parent.mkdir(parents=True, exist_ok=True)
        Path(args.records).write_text("".join(json.dumps(r.record(threshold), ensure_ascii=False) + "\n"
                                              for r in runs))
    if not args.json:
        s = scores
        print(f"end to end ({s['n_captions']} captions, threshold {s['threshold']:.2f}): "
              f"P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}   "
              f"(strict: P {s['strict']['precision']:.3f} R {s['strict']['recall']:.3f} F1 {s['strict']['f1']:.3f})")
        print(f"recall ceiling set by the tagger: {s['recall_ceiling']:.3f}")
        print("false positives: " + ", ".join(f"{k} {v}" for k, v in s["false_positives"].items()))
        print("misses: " + ", ".join(f"{k} {v}" for k, v in s["misses"].items()))
    print(json.dumps(_rounded(scores)))
    return 0
