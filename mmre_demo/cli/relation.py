"""`mmre predict`, `mmre train`, `mmre calibrate`, `mmre eval`, `mmre dev-split`.

Every choice (epochs, calibration, thresholds) is made on a dev split carved from the training file by
caption (or `--dev FILE`); `--val` is scored once on the chosen model and reported (docs/evaluation.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from mmre_demo.data.splits import DEV_FRACTION, DEV_SEED
from mmre_demo.model.config import ARCHITECTURES, BACKBONE_TRAININGS, RelationConfig
from mmre_demo.prediction import DEFAULT_TOP_K, MAX_PAIRS
from mmre_demo.research import RESEARCH_ARCHITECTURES, RESEARCH_BACKBONE_TRAININGS
from mmre_demo.train.bootstrap import N_BOOT
from mmre_demo.train.config import SELECT_ON, RelationTrainConfig

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    _add_predict(sub)
    _add_train(sub)
    _add_calibrate(sub)
    _add_gate_image(sub)
    _add_eval(sub)
    _add_dev_split(sub)


def _add_predict(sub: argparse._SubParsersAction) -> None:
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


def _add_train(sub: argparse._SubParsersAction) -> None:
    run, model = RelationTrainConfig, RelationConfig  # the defaults of `train`
    t = sub.add_parser("train", help="train the relation model on MNRE-format files (or annotators' decisions)")
    t.add_argument("--train", help="MNRE-format training file (optional with --annotations)")
    t.add_argument("--annotations", metavar="DB",
                   help="also train on the standing decisions of this annotation store (accept/relabel: that "
                        "relation, reject: None); starts from the shipped model unless --init-from says otherwise "
                        "(docs/annotations.md: the settings that keep the end-to-end F1)")
    t.add_argument("--annotator", help="with --annotations: only this annotator's decisions")
    t.add_argument("--dev", help="MNRE-format file every choice is made on (epoch, calibration, thresholds); "
                                 "default: a dev split carved from --train by caption (--dev-fraction, --dev-seed; "
                                 "`mmre dev-split` writes the same one), else from the decisions")
    t.add_argument("--dev-fraction", type=float, default=run.dev_fraction, help="default: %(default)s")
    t.add_argument("--dev-seed", type=int, default=run.dev_seed, help="default: %(default)s")
    t.add_argument("--val", help="confirmation set (MNRE val): the chosen model is scored on it once and reported; "
                                 "never used to choose")
    t.add_argument("--images", help="folder of images named by img_id (optional)")
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=run.epochs, help="default: %(default)s")
    t.add_argument("--batch-size", type=int, default=run.batch_size, help="default: %(default)s")
    t.add_argument("--lr", type=float, default=run.lr, help="backbone (LoRA) learning rate (default: %(default)s)")
    t.add_argument("--head-lr", type=float, default=run.head_lr, help="default: %(default)s")
    t.add_argument("--seed", type=int, default=run.seed, help="default: %(default)s")
    t.add_argument("--architecture", choices=ARCHITECTURES + RESEARCH_ARCHITECTURES, default=model.architecture,
                   help="how the text is read: one pass per pair (pair-markers) or per caption (default: "
                        "%(default)s); levitated-markers: research, not shipped")
    t.add_argument("--max-rows", type=int, default=model.max_rows,
                   help="pairs per caption-once pass (default: %(default)s)")
    t.add_argument("--text-backbone", default=model.text_backbone, help="default: %(default)s")
    t.add_argument("--text-layers", type=int, default=model.text_layers,
                   help="read with the backbone's first N layers only (default: all)")
    t.add_argument("--vision-backbone", default=model.vision_backbone, help="default: %(default)s")
    t.add_argument("--backbone-training", choices=BACKBONE_TRAININGS + RESEARCH_BACKBONE_TRAININGS,
                   default=model.backbone_training, help="lora (default, shipped); full and frozen: research")
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
    t.add_argument("--transfer-set", nargs="+", metavar="CONLL",
                   help="Twitter NER train/valid files (CoNLL) whose tweets' entity pairs the student learns from the "
                        "teachers alone (needs --distill-from; test files are refused)")
    t.add_argument("--name-swap", type=float, default=run.name_swap, metavar="RATE",
                   help="rename each typed entity of a training caption with this probability (another training "
                        "name of its type, afresh each epoch): context over names (default: %(default)s)")
    t.add_argument("--select-on", choices=SELECT_ON, default=run.select_on,
                   help="best epoch by the product's end-to-end F1 on dev (default) or by gold-pair F1")
    t.set_defaults(handler=cmd_train)


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    run = RelationTrainConfig  # the dev split as `train` carves it
    c = sub.add_parser("calibrate", help="fit a saved model's calibration and thresholds on dev data")
    c.add_argument("--weights", required=True, help="saved relation model folder")
    c.add_argument("--dev", help="MNRE-format file to fit on (e.g. the dev.txt of `mmre dev-split`)")
    c.add_argument("--train", help="without --dev: the training file whose dev split (carved by caption, as "
                                   "`mmre train` carves it) is fitted on")
    c.add_argument("--dev-fraction", type=float, default=run.dev_fraction, help="default: %(default)s")
    c.add_argument("--dev-seed", type=int, default=run.dev_seed, help="default: %(default)s")
    c.add_argument("--val", help="confirmation set (MNRE val): scored once after fitting and reported")
    c.add_argument("--out", required=True, help="where to save the calibrated model (may be --weights itself)")
    c.add_argument("--images", default=None, help="folder of images named by img_id")
    c.add_argument("--ner-weights", help="tagger for the end-to-end threshold "
                   "(default: the weights folder's ner/, else the shipped tagger)")
    c.add_argument("--device", default="auto")
    c.add_argument("--json", action="store_true", help="the last stdout line is the JSON summary")
    c.set_defaults(handler=cmd_calibrate)


def _add_gate_image(sub: argparse._SubParsersAction) -> None:
    from mmre_demo.train.config import MIN_IMAGE_LINES

    run = RelationTrainConfig
    g = sub.add_parser("gate-image", help="choose on dev how much of the image a saved model uses (its image gate)")
    g.add_argument("--weights", required=True, help="saved relation model folder (its config.json is updated)")
    g.add_argument("--dev", help="MNRE-format file to choose on (e.g. the dev.txt of `mmre dev-split`)")
    g.add_argument("--train", help="without --dev: the training file whose dev split is chosen on")
    g.add_argument("--dev-fraction", type=float, default=run.dev_fraction, help="default: %(default)s")
    g.add_argument("--dev-seed", type=int, default=run.dev_seed, help="default: %(default)s")
    g.add_argument("--images", required=True, help="folder of images named by img_id")
    g.add_argument("--min-lines", type=int, default=MIN_IMAGE_LINES,
                   help="dev lines with an image needed as evidence; fewer close the gate (default: %(default)s)")
    g.set_defaults(handler=cmd_gate_image)


def cmd_gate_image(args: argparse.Namespace) -> int:
    """Choose and save a model's image gate on dev (train/image_gate.py)."""
    from mmre_demo.data.mnre import read_mnre
    from mmre_demo.data.paths import WeightsLayout
    from mmre_demo.data.schema import InputError
    from mmre_demo.train.image_gate import gate_saved_model
    from mmre_demo.train.protocol import choose_dev

    if not args.dev and not args.train:
        raise InputError("the gate is chosen on a dev split, never on --val: give --dev FILE or --train FILE")
    train_ex = read_mnre(args.train)[0] if args.train else []
    dev = choose_dev(train_ex, "end_to_end", args.dev, args.train, args.dev_fraction, args.dev_seed).dev
    gate = gate_saved_model(WeightsLayout.find(args.weights, None).relation, dev, args.images, args.min_lines)
    print(json.dumps(gate.to_dict()))
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
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
    e.add_argument("--curve", action="store_true",
                   help="also F1 over the thresholds 0.20-0.70 (end to end with --detect-entities, else gold pairs), "
                        "with the stable threshold of that curve (train/thresholds.py)")
    e.add_argument("--compare-to", metavar="WEIGHTS",
                   help="paired bootstrap over captions against this model (e.g. the shipped weights/): gold pairs, "
                        "and end to end with --detect-entities; each model at its own thresholds")
    e.add_argument("--n-boot", type=int, default=N_BOOT, help="resamples of --compare-to (default: %(default)s)")
    e.add_argument("--skip-bad", action="store_true")
    e.add_argument("--json", action="store_true", help="the last stdout line is the JSON summary")
    e.set_defaults(handler=cmd_eval)


def _add_dev_split(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("dev-split", help="carve a dev split from an MNRE training file by caption")
    d.add_argument("--train", required=True, help="MNRE-format training file")
    d.add_argument("--out", required=True, help="folder for train.txt (train minus dev), dev.txt and split.json")
    d.add_argument("--fraction", type=float, default=DEV_FRACTION, help="share of the captions (default: %(default)s)")
    d.add_argument("--seed", type=int, default=DEV_SEED, help="default: %(default)s")
    d.set_defaults(handler=cmd_dev_split)


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
    from mmre_demo.train.protocol import choose_dev
    from mmre_demo.train.relation import train

    sources = tuple(s.strip() for s in args.pairs.split(",") if s.strip())
    if not sources or set(sources) - set(PAIR_SOURCES):
        raise InputError(f"--pairs {args.pairs!r}: choose a comma-separated subset of {', '.join(PAIR_SOURCES)}")
    if not 0 < args.extra_fraction <= 1:
        raise InputError(f"--extra-fraction must be in (0, 1], got {args.extra_fraction}")
    if args.silver_weight <= 0:
        raise InputError(f"--silver-weight must be positive, got {args.silver_weight}")
    if not 0 <= args.name_swap <= 1:
        raise InputError(f"--name-swap is a probability in [0, 1], got {args.name_swap}")
    if not args.train and not args.annotations:
        raise InputError("give the training data: --train FILE (MNRE lines) and/or --annotations DB")
    if args.transfer_set and not args.distill_from:
        raise InputError("--transfer-set has no relation labels: the student learns it from --distill-from teachers")
    train_ex, bad_t = read_mnre(args.train, skip_bad=args.skip_bad) if args.train else ([], 0)
    val_ex, bad_v = read_mnre(args.val, skip_bad=args.skip_bad) if args.val else ([], 0)
    if bad_t or bad_v:
        print(f"skipped malformed lines: {bad_t} in {args.train}, {bad_v} in {args.val}")
    decisions = _annotation_examples(args) if args.annotations else []
    # the dev split comes from the MNRE lines when there are any (the same dev for every run on that file),
    # else from the decisions; --limit and the decisions only ever shorten or extend the training side
    choice = choose_dev(train_ex if args.train else decisions, args.select_on, args.dev,
                        args.train, args.dev_fraction, args.dev_seed, args.skip_bad)
    train_ex = list(choice.train[: args.limit] if args.limit else choice.train)
    if args.train:
        train_ex += decisions
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
                      distill_weight=args.distill_weight, distill_temperature=args.distill_temperature,
                      transfer_files=tuple(Path(f) for f in args.transfer_set or ()),
                      name_swap=args.name_swap, dev_fraction=args.dev_fraction, dev_seed=args.dev_seed)
    state = train(targs, train_ex, choice.dev, images_dir=args.images, confirm_examples=val_ex or None,
                  selection=choice.selection, confirm_file=Path(args.val).name if args.val else "")
    summary = {"best_epoch": state.get("best_epoch"), "best_dev_f1": state["best_f1"], "selected_on": "dev",
               "select_metric": args.select_on, "dev_ids_sha256": choice.selection.dev_ids_sha256,
               "saved": str(Path(args.out) / "best")}
    if "confirmation" in state:
        summary["confirmation"] = _confirmation_summary(state["confirmation"])
    print(json.dumps(summary))
    return 0


def _confirmation_summary(result: dict) -> dict:
    e2e = result.get("end_to_end") or {}
    return {"file": result["file"], "gold_f1": round(result["gold"]["f1"], 4),
            **({"e2e_f1": round(e2e["f1"], 4), "e2e_precision": round(e2e["precision"], 4),
                "e2e_recall": round(e2e["recall"], 4)} if e2e else {})}


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
    """Refit a saved model's calibration and thresholds on dev (e.g. after a tagger change); --val reported."""
    from mmre_demo.data.mnre import read_mnre
    from mmre_demo.data.paths import WeightsLayout
    from mmre_demo.data.schema import InputError
    from mmre_demo.device import resolve_device
    from mmre_demo.model.batching import ImageCache, prepare_items
    from mmre_demo.model.ner import NerTagger
    from mmre_demo.model.relation import RelationModel
    from mmre_demo.serving import serving_tagger
    from mmre_demo.train.protocol import Selection, choose_dev, confirm
    from mmre_demo.train.relation import check_on_dev

    if not args.dev and not args.train:
        raise InputError("calibration is fitted on a dev split, never on --val: give --dev FILE (e.g. the dev.txt "
                         "of `mmre dev-split`) or --train FILE (its dev split is carved as `mmre train` carves it); "
                         "see docs/evaluation.md")
    train_ex = read_mnre(args.train)[0] if args.train else []
    choice = choose_dev(train_ex, "end_to_end", args.dev, args.train, args.dev_fraction, args.dev_seed)
    examples = choice.dev
    layout = WeightsLayout.find(args.weights, args.ner_weights)
    model = RelationModel.from_pretrained(layout.relation, device=resolve_device(args.device))
    chosen_before = Selection.from_metrics(model.config.metrics)
    if chosen_before.dev_ids_sha256 and chosen_before.dev_ids_sha256 != choice.selection.dev_ids_sha256:
        log.warning("this model's epoch was chosen on another dev split (%s...) than the one fitted on now (%s...)",
                    chosen_before.dev_ids_sha256[:12], (choice.selection.dev_ids_sha256 or "")[:12])
    cache = ImageCache(model)
    cache.add_folder(args.images, {e.img_id for e in examples if e.img_id})
    tagger = serving_tagger(NerTagger.from_pretrained(layout.tagger))
    check = check_on_dev(model, prepare_items(model, examples, cache), cache, examples, tagger, args.images,
                         end_to_end=True)
    kept = {k: v for k, v in model.config.metrics.items() if k not in ("val", "confirmation")}  # of the old fit
    model.config.metrics = {**kept, "dev": check.gold, "calibration": check.calibration,
                            "end_to_end": check.end_to_end, "calibrated_on": choice.selection.file,
                            "selected_on": "dev", "selection": choice.selection.to_dict(),
                            "threshold_curves": {k: c.to_dict() for k, c in check.curves.items()}}
    confirmation = None
    if args.val:
        val_ex, _ = read_mnre(args.val)
        confirmation = confirm(model, val_ex, args.images, tagger, Path(args.val).name)
        model.config.metrics["confirmation"] = confirmation
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
               "calibrated_on": choice.selection.file, "dev_ids_sha256": choice.selection.dev_ids_sha256,
               "saved": str(args.out)}
    if confirmation is not None:
        summary["confirmation"] = _confirmation_summary(confirmation)
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
        from mmre_demo.serving import serving_tagger
        from mmre_demo.train.evaluate import tagged_types

        entity_types = tagged_types(serving_tagger(NerTagger.from_pretrained(layout.tagger)), examples)
    result = evaluate_gold_entities(model, examples, args.images, entity_types=entity_types)
    print(format_report(result["report"]))
    report_dir = Path(args.report_dir) if args.report_dir else Path("runs") / "eval" / Path(args.data).stem
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.txt").write_text(format_report(result["report"]) + "\n")
    png = save_confusion_png(result["confusion"], model.config.labels, report_dir / "confusion.png",
                             title=f"{Path(args.data).name}: F1 {result['scores']['f1']:.3f}")
    print(f"report: {report_dir / 'report.txt'}  confusion matrix: {png}")
    summary = summary_line(result["scores"])
    if not args.json:
        print(" ".join(f"{k}={v}" for k, v in summary.items()))
    if args.curve:
        from mmre_demo.train.end_to_end import caption_index
        from mmre_demo.train.metrics import stable_gold_threshold

        none_id = model.config.labels.index("None")
        curve = stable_gold_threshold(result["probs"], result["gold"], caption_index(examples), none_id)
        print(f"gold-pair F1 over thresholds on {Path(args.data).name} (the model's gold threshold: "
              f"{model.config.gold_threshold:.3f}):\n{curve.table()}")
        summary["curve"] = curve.to_dict()
    if args.compare_to:
        from mmre_demo.train.bootstrap import paired_bootstrap

        other = _gold_counts(args.compare_to, examples, args, entity_types)
        compared = paired_bootstrap(other, _counts_of_gold_result(model, examples, result), n_boot=args.n_boot)
        print(compared.line("gold pairs", "reference", "candidate"))
        summary["compare"] = {"to": args.compare_to, "gold": compared.to_dict()}
    if args.json:
        print(json.dumps(summary))
    sys.stdout.flush()
    return 0


def _counts_of_gold_result(model, examples: list, result: dict):
    """Each caption's (found, predicted, gold) gold pairs at the model's gold threshold."""
    from mmre_demo.train.end_to_end import caption_index
    from mmre_demo.train.metrics import gold_pair_counts

    return gold_pair_counts(result["probs"], result["gold"], caption_index(examples), model.config.gold_threshold,
                            model.config.labels.index("None"))


def _gold_counts(weights: str, examples: list, args: argparse.Namespace, entity_types=None):
    """Gold-pair counts per caption of the model in `weights` (at its own gold threshold)."""
    from mmre_demo.data.paths import WeightsLayout
    from mmre_demo.device import resolve_device
    from mmre_demo.model.relation import RelationModel
    from mmre_demo.train.evaluate import evaluate_gold_entities

    model = RelationModel.from_pretrained(WeightsLayout.find(weights).relation, device=resolve_device(args.device))
    result = evaluate_gold_entities(model, examples, args.images, entity_types=entity_types)
    return _counts_of_gold_result(model, examples, result)


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
    del pipe
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
    summary = _rounded(scores)
    if args.curve:
        from mmre_demo.train.end_to_end import stable_end_to_end_threshold

        curve, _ = stable_end_to_end_threshold(runs)
        print(f"end-to-end F1 over thresholds on {Path(args.data).name} (scored at {threshold:.3f}):\n"
              f"{curve.table()}")
        summary["curve"] = curve.to_dict()
    if args.compare_to:
        summary["compare"] = _compare_end_to_end(args, examples, runs, threshold)
    print(json.dumps(summary))
    return 0


def _compare_end_to_end(args: argparse.Namespace, examples: list, runs: list, threshold: float) -> dict:
    """`--compare-to`: the paired bootstrap of this model against the other, end to end (each with its own
    threshold and tagger: `--ner-weights` and `--threshold` are this model's) and on gold pairs."""
    from mmre_demo.pipeline import Pipeline
    from mmre_demo.train.bootstrap import paired_bootstrap
    from mmre_demo.train.end_to_end import caption_counts, predict_captions

    other = Pipeline.load(args.compare_to, device=args.device, type_constraint=not args.no_type_constraint)
    other_threshold = other.threshold
    other_runs = predict_captions(other, examples, args.images, progress=not args.json and sys.stderr.isatty())
    del other
    e2e = paired_bootstrap(caption_counts(other_runs, other_threshold), caption_counts(runs, threshold),
                           n_boot=args.n_boot)
    gold = paired_bootstrap(_gold_counts(args.compare_to, examples, args), _gold_counts(args.weights, examples, args),
                            n_boot=args.n_boot)
    print(gold.line("gold pairs", "reference", "candidate"))
    print(e2e.line(f"end to end (thresholds {other_threshold:.3f} / {threshold:.3f})", "reference", "candidate"))
    print("ships only when the end-to-end interval's lower bound is above 0 (docs/evaluation.md): "
          + ("yes" if e2e.verdict == "better" else "no"))
    return {"to": args.compare_to, "gold": gold.to_dict(), "end_to_end": e2e.to_dict(),
            "thresholds": {"reference": other_threshold, "candidate": threshold}}


def cmd_dev_split(args: argparse.Namespace) -> int:
    """Write OUT/train.txt, OUT/dev.txt and OUT/split.json (data/splits.py)."""
    from mmre_demo.data.splits import write_dev_split

    info = write_dev_split(args.train, args.out, args.fraction, args.seed)
    print(json.dumps(info.to_dict()))
    return 0
