"""`mmre kge train`, `mmre kge eval`, `mmre kge suggest`."""

from __future__ import annotations

import argparse
import json
import os
import time

from mmre_demo.kge.options import FEATURE_MODES


def register(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("kge", help="knowledge-graph embedding: train, evaluate, suggest links")
    ksub = k.add_subparsers(dest="kge_command", required=True)

    t = ksub.add_parser("train", help="train TransE / DistMult / ComplEx (PyKEEN, 1-vs-all, early stopping)")
    t.add_argument("--dataset", type=_dataset, default="umls", metavar="{umls,kinships,nations,mnre,graph:PATH}",
                   help="a bundled dataset, MNRE, or graph:PATH = a graph.json / graph.graphml exported by the app "
                        "or by `mmre extract`")
    t.add_argument("--model", choices=["transe", "distmult", "complex"], default="complex")
    t.add_argument("--features", choices=FEATURE_MODES, default="none",
                   help="multimodal entity features (MNRE; text also for graph:PATH)")
    t.add_argument("--mnre-train", help="MNRE-format file (default: ../shared/data/mnre/mnre_train.txt)")
    t.add_argument("--images", help="folder of MNRE images by img_id (default: ../shared/data/mnre_images_sample)")
    t.add_argument("--out", required=True, help="run folder to write (safetensors + JSON)")
    t.add_argument("--dim", type=int, help="embedding dimension (default: per model; 64 on MNRE)")
    t.add_argument("--epochs", type=int,
                   help="maximum epochs (default 100, MNRE 60; early stopping usually ends sooner)")
    t.add_argument("--lr", type=float)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    t.add_argument("--json", action="store_true", help="last stdout line: JSON summary with test metrics")
    t.set_defaults(handler=cmd_train)

    e = ksub.add_parser("eval", help="filtered MRR / Hits@1,3,10 of a run on its dataset's split")
    e.add_argument("--run", required=True, help="run folder written by `mmre kge train`")
    e.add_argument("--split", choices=["test", "validation", "train"], default="test")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--json", action="store_true", help='last stdout line: {"mrr", "hits@1", "hits@3", "hits@10"}')
    e.set_defaults(handler=cmd_eval)

    s = ksub.add_parser("suggest", help="top-k predicted links for an entity (or tails/heads/relations)")
    s.add_argument("--run", required=True)
    s.add_argument("--entity", required=True, help="entity label, e.g. 'PER:Bill Cosby' (UMLS: a plain name)")
    s.add_argument("--relation", help="with --as head|tail: predict the other side for this relation")
    s.add_argument("--other", help="predict relations between --entity (head) and this tail")
    s.add_argument("--as", dest="role", choices=["head", "tail"], default="head")
    s.add_argument("-k", type=int, default=5)
    s.add_argument("--ignore-types", action="store_true",
                   help="also suggest triples that break the relation's type rule (/per/org/member_of: PER -> ORG)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=cmd_suggest)


def _dataset(value: str) -> str:
    """argparse type: a dataset name, or graph:PATH (the file is checked when it is loaded)."""
    if value in ("umls", "kinships", "nations", "mnre") or (value.startswith("graph:") and len(value) > 6):
        return value
    raise argparse.ArgumentTypeError(f"invalid choice {value!r} (choose umls, kinships, nations, mnre or graph:PATH)")


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))
    os.environ.setdefault("OMP_NUM_THREADS", str(n))


def cmd_train(args: argparse.Namespace) -> int:
    _threads(args.threads)
    from mmre_demo.data.schema import InputError
    from mmre_demo.kge.api import default_mnre_images, evaluate_run, fit, load_dataset
    from mmre_demo.kge.io import save_run
    from mmre_demo.kge.training import default_train_config

    is_graph = args.dataset.startswith("graph:")
    if args.features == "text+image" and is_graph:
        raise InputError("--features text+image: an exported graph carries no image features; use --features text")
    if args.features != "none" and args.dataset != "mnre" and not is_graph:
        raise InputError(f"--features {args.features} needs --dataset mnre or graph:PATH "
                         "(UMLS/Kinships/Nations have no text or images)")
    t0 = time.monotonic()
    images = None
    if args.features == "text+image":
        images = args.images or default_mnre_images()
    ds = load_dataset(args.dataset, mnre_train=args.mnre_train, seed=args.seed, images_dir=images)
    sparse = args.dataset == "mnre" or is_graph  # thousands of entities, few triples: smaller, faster model
    tcfg = default_train_config(args.model, sparse=sparse, lr=args.lr, batch_size=args.batch_size,
                                max_epochs=args.epochs, seed=args.seed)
    run = fit(ds, args.model, args.features, embedding_dim=args.dim or (64 if sparse else None), train_config=tcfg)
    tr = run.info["train"]
    summary = {"dataset": args.dataset, "model": args.model, "features": args.features,
               "entities": len(run.entity_labels), "relations": len(run.relation_labels),
               "train_triples": int(run.triples["training"].shape[0]), "epochs": tr["epochs"],
               "train_seconds": round(tr["seconds"], 2), "stopped_by": tr["stopped_by"],
               "best_validation_mrr": tr["best_validation_mrr"]}
    if run.triples["testing"].shape[0]:
        summary["test"] = {k: round(v, 4) for k, v in evaluate_run(run, "test").items()}
    run.info["test"] = summary.get("test")
    save_run(run, args.out)
    summary["total_seconds"] = round(time.monotonic() - t0, 2)
    print(f"saved {args.out}: {summary['epochs']} epochs in {summary['train_seconds']} s ({summary['stopped_by']})")
    if "test" in summary:
        print("test: " + ", ".join(f"{k}={v}" for k, v in summary["test"].items()))
    if args.json:
        print(json.dumps(summary))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    _threads(args.threads)
    from mmre_demo.kge.api import evaluate_run
    from mmre_demo.kge.io import load_run

    run = load_run(args.run)
    m = evaluate_run(run, args.split)
    out = {k: round(m[k], 4) for k in ("mrr", "hits@1", "hits@3", "hits@10")}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{run.dataset} {run.model_config.model} ({run.model_config.features}) {args.split} "
              f"[{m['num_triples']} triples, filtered, both sides]: "
              + ", ".join(f"{k}={v}" for k, v in out.items()))
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    _threads(1)
    from mmre_demo.kge.io import load_run
    from mmre_demo.kge.predict import KgePredictor

    run = load_run(args.run)
    p = KgePredictor(run, respect_types=not args.ignore_types)
    if args.other:
        rows = p.predict_relations(args.entity, args.other, args.k)
    elif args.relation:
        rows = (p.predict_tails(args.entity, args.relation, args.k) if args.role == "head"
                else p.predict_heads(args.relation, args.entity, args.k))
    else:
        rows = p.suggest_links(args.entity, args.k)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], ensure_ascii=False))
    else:
        test = run.info.get("test") or {}
        print("held-out quality of this run: " + (f"MRR {test['mrr']:.3f}, Hits@10 {test['hits@10']:.3f}"
                                                   if test else "not measured (no test split)")
              + "; the score orders the candidates, it is not a probability")
        for i, r in enumerate(rows, start=1):
            print(f"#{i}  {r.head}  --{r.relation}-->  {r.tail}  (score {r.score:.3f})")
    return 0
