"""`mmre ner`, `mmre train-ner`, `mmre eval-ner`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmre_demo.data.paths import shared_data_dir
from mmre_demo.model.ner.config import NerConfig
from mmre_demo.train.config import NerTrainConfig


def register(sub: argparse._SubParsersAction) -> None:
    run, model = NerTrainConfig, NerConfig  # the defaults of `train-ner`
    p = sub.add_parser("ner", help="find the entities (PER, LOC, ORG, MISC) of a raw caption")
    p.add_argument("caption")
    p.add_argument("--weights", help="tagger folder (default: the ner/ of $MMRE_WEIGHTS, else the shipped weights/ner)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON list of entities")
    p.set_defaults(handler=cmd_ner)

    t = sub.add_parser("train-ner", help="train the entity tagger on Twitter CoNLL files")
    t.add_argument("--train", nargs="+", help="training files (default: both years' train.txt)")
    t.add_argument("--val", nargs="+", help="validation files (default: both years' valid.txt)")
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=run.epochs, help="default: %(default)s")
    t.add_argument("--batch-size", type=int, default=run.batch_size, help="default: %(default)s")
    t.add_argument("--lr", type=float, default=run.lr, help="default: %(default)s")
    t.add_argument("--patience", type=int, default=run.patience,
                   help="stop after this many epochs without a better validation score (default: %(default)s)")
    t.add_argument("--seed", type=int, default=run.seed, help="default: %(default)s")
    t.add_argument("--limit", type=int, help="first N sentences of each training file (quick runs)")
    t.add_argument("--cache-dir", help="cache the frozen backbone's features here (reused across runs)")
    t.add_argument("--mnre-train", help="MNRE file whose entity spans are added as partial labels")
    t.add_argument("--mnre-val", help="MNRE file on which the end-to-end recall ceiling is measured each epoch")
    t.add_argument("--text-backbone", default=model.text_backbone, help="default: %(default)s")
    t.add_argument("--no-shape", action="store_true", help="ablation: no word-shape embedding")
    t.add_argument("--no-chars", action="store_true", help="ablation: no character CNN")
    t.add_argument("--no-crf", action="store_true", help="ablation: softmax + constrained Viterbi")
    t.add_argument("--lstm-hidden", type=int, default=model.lstm_hidden,
                   help="per direction; 0 = linear head (default: %(default)s)")
    t.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is fastest for this small head on a shared CPU)")
    t.add_argument("--device", default="cpu")
    t.set_defaults(handler=cmd_train_ner)

    e = sub.add_parser("eval-ner", help="entity-level micro P/R/F1 (seqeval) on a CoNLL file")
    e.add_argument("--data", required=True)
    e.add_argument("--weights", help="tagger folder (default: the ner/ of $MMRE_WEIGHTS, else the shipped weights/ner)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", action="store_true", help="last line only: the JSON scores")
    e.add_argument("--convention", help="annotation convention to tag under (default: twitter when the tagger "
                                        "knows it, as the Twitter CoNLL files follow it; see its config)")
    e.set_defaults(handler=cmd_eval_ner)


def _default_files(split: str) -> list[str]:
    from mmre_demo.data.conll import twitter_ner_files

    files = twitter_ner_files(shared_data_dir(), split)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"default {split} data not found: {', '.join(missing)} (pass the files explicitly)")
    return [str(f) for f in files]


def cmd_ner(args: argparse.Namespace) -> int:
    from mmre_demo.data.schema import check_caption
    from mmre_demo.data.text import clean_caption
    from mmre_demo.model.ner import NerTagger
    from mmre_demo.serving import serving_tagger

    typed = clean_caption(check_caption(args.caption))  # tagged as read, offsets into the caption as typed
    tagger = serving_tagger(NerTagger.from_pretrained(args.weights, device=args.device))
    entities = [typed.to_typed(e) for e in tagger.tag(typed.text)]
    if args.json:
        print(json.dumps([e.to_dict() for e in entities], ensure_ascii=False))
        return 0
    if not entities:
        print("(no entities found)")
    for e in entities:
        print(f"{e.type:<4}  [{e.start:>4}, {e.end:>4})  {e.confidence:.2f}  {e.text}")
    return 0


def cmd_train_ner(args: argparse.Namespace) -> int:
    from mmre_demo.train.ner import train_ner

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = NerConfig(text_backbone=args.text_backbone, use_shape=not args.no_shape,
                       use_chars=not args.no_chars, use_crf=not args.no_crf, lstm_hidden=args.lstm_hidden)
    if args.mnre_train:  # MNRE's spans follow other guidelines: learned as a second convention, used by tag()
        config.conventions, config.tag_convention = ["twitter", "mnre"], "mnre"
    settings = NerTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             patience=args.patience, limit=args.limit, cache_dir=args.cache_dir,
                             mnre_train=args.mnre_train, mnre_val=args.mnre_val)
    train_files = args.train or _default_files("train")
    val_files = args.val or _default_files("valid")
    model = train_ner(config, train_files, val_files, args.out, settings, device=args.device)
    metrics = model.config.metrics
    print(json.dumps({"best_epoch": metrics.get("best_epoch"),
                      **{k: v["f1"] for k, v in metrics.get("valid", {}).items()}, "out": str(Path(args.out))}))
    return 0


def cmd_eval_ner(args: argparse.Namespace) -> int:
    from mmre_demo.data.conll import read_conll
    from mmre_demo.data.schema import InputError
    from mmre_demo.model.ner import NerTagger
    from mmre_demo.serving import serving_tagger
    from mmre_demo.train.ner import evaluate

    data = read_conll(args.data)
    tagger = serving_tagger(NerTagger.from_pretrained(args.weights, device=args.device))
    convention = args.convention or ("twitter" if "twitter" in tagger.config.conventions else None)
    try:
        scores = evaluate(tagger, data, convention=convention)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if not args.json:
        print(f"{args.data}: {scores['n_sentences']} sentences")
    print(json.dumps({"precision": round(scores["precision"], 4), "recall": round(scores["recall"], 4),
                      "f1": round(scores["f1"], 4)}))
    return 0
