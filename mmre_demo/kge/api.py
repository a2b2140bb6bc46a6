"""The small end-to-end API: dataset -> trained `KgeRun` -> metrics / predictions.

    ds = load_dataset("umls")                       # or load_dataset("mnre", mnre_train=path)
    run = fit(ds, "complex")                        # features="text" / "text+image" for multimodal
    evaluate_run(run, "test")                       # {"mrr", "hits@1", "hits@3", "hits@10", ...}
    save_run(run, "runs/kge/umls-complex"); run = load_run(...)
    KgePredictor(run).predict_tails("TYPE:name", "relation", k=5)
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from mmre_demo.data.paths import shared_data_dir
from mmre_demo.data.schema import InputError
from mmre_demo.kge.datasets import BUILTIN_DATASETS, KgDataset, load_builtin, load_graph_file, load_mnre, mapped
from mmre_demo.kge.evaluation import evaluate
from mmre_demo.kge.features import TextEncoder, entity_features, mnre_image_features
from mmre_demo.kge.io import KgeRun
from mmre_demo.kge.models import ModelConfig, build_model, default_dim
from mmre_demo.kge.options import FeatureMode
from mmre_demo.kge.training import KgeTrainConfig, default_train_config, train_model

DATASETS = (*BUILTIN_DATASETS, "mnre")
GRAPH_PREFIX = "graph:"  # "graph:PATH": an exported graph.json / graph.graphml


def default_mnre_train() -> Path:
    return shared_data_dir() / "mnre" / "mnre_train.txt"


def default_mnre_images() -> Path | None:
    """The 34 MNRE sample images (the full image set is not available here)."""
    d = shared_data_dir() / "mnre_images_sample"
    return d if d.is_dir() else None


def load_dataset(name: str, mnre_train: str | Path | None = None, seed: int = 0,
                 images_dir: str | Path | None = None) -> KgDataset:
    """A named dataset. MNRE: gold triples of `mnre_train`, seeded 80/10/10 split, captions, and pooled
    image features of training lines whose image is in `images_dir` (when given). "graph:PATH": an exported
    graph file (the app's or `mmre extract`'s graph.json / graph.graphml)."""
    if name.startswith(GRAPH_PREFIX):
        path = name[len(GRAPH_PREFIX):]
        if not path:
            raise InputError("--dataset graph:PATH needs the path of a graph.json or graph.graphml")
        return load_graph_file(path, seed=seed)
    if name in BUILTIN_DATASETS:
        return load_builtin(name)
    if name != "mnre":
        raise InputError(f"unknown dataset {name!r}; choose one of {DATASETS} or graph:PATH")
    path = Path(mnre_train) if mnre_train else default_mnre_train()
    if not path.is_file():
        raise InputError(f"MNRE file {path} not found (pass --mnre-train FILE or set MMRE_DATA_DIR)")
    ds, records = load_mnre(path, seed=seed)
    if images_dir is not None:  # only needed for features="text+image"
        train = set(map(tuple, ds.training.triples.tolist()))
        ds.notes["entities_with_image"] = mnre_image_features(ds.entity_info, records, str(images_dir), train)
    return ds


def fit(ds: KgDataset, model: str = "complex", features: FeatureMode = "none", *, embedding_dim: int | None = None,
        train_config: KgeTrainConfig | None = None, text_encoder: TextEncoder | None = None,
        cancel: threading.Event | None = None) -> KgeRun:
    """Build and train a model on `ds` (early stopping when it has a validation split)."""
    config = ModelConfig(model=model, embedding_dim=embedding_dim or default_dim(model), features=features)
    tcfg = train_config or default_train_config(model)
    labels = [e for e, _ in sorted(ds.entity_to_id.items(), key=lambda kv: kv[1])]
    if features != "none" and not ds.entity_info:
        raise InputError(f"dataset {ds.name!r} has no entity names/captions: features={features!r} "
                         "is for MNRE or graph datasets")
    feats = entity_features(features, labels, ds.entity_info, text_encoder)
    torch.manual_seed(tcfg.seed)
    net = build_model(config, ds.training, feats, random_seed=tcfg.seed, loss=tcfg.loss)
    result = train_model(net, ds.training, tcfg, ds.validation, cancel=cancel)
    net.eval()
    rels = [r for r, _ in sorted(ds.relation_to_id.items(), key=lambda kv: kv[1])]
    triples = {"training": mapped(ds.training), "validation": mapped(ds.validation), "testing": mapped(ds.testing)}
    return KgeRun(net, config, labels, rels, triples, ds.name, tcfg.to_dict(),
                  {"train": result.to_dict(), "dataset": ds.notes})


def evaluate_run(run: KgeRun, split: str = "test") -> dict[str, float]:
    """Filtered MRR / Hits@k on a split (all known triples of every split are filtered)."""
    key = {"test": "testing", "testing": "testing", "valid": "validation", "validation": "validation",
           "train": "training", "training": "training"}.get(split)
    if key is None:
        raise InputError(f"unknown split {split!r}; choose test, validation or train")
    triples = run.triples.get(key)
    if triples is None or triples.shape[0] == 0:
        raise InputError(f"the run has no {split!r} triples to evaluate (trained on the whole graph?)")
    # the standard filtered setting: every other known true triple (train, validation, test) is filtered
    filt = [v for k, v in run.triples.items() if k != key]
    return evaluate(run.model, triples, filt)
