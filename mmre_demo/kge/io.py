"""Save / load a trained KGE run as safetensors + JSON (no pickle anywhere).

A run folder holds:
- `model.safetensors`   the model's state dict (features buffer included when multimodal);
- `triples.safetensors` the mapped training / validation / testing triples (for filtered eval);
- `run.json`            model + training config, entity and relation labels (ordered by id), metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pykeen.models import ERModel
from pykeen.triples import TriplesFactory
from safetensors.torch import load_file, save_file

from mmre_demo.data.schema import InputError
from mmre_demo.kge.models import ModelConfig, build_model

FORMAT_VERSION = 1


@dataclass
class KgeRun:
    """A trained model with everything needed to evaluate it and name its predictions."""

    model: ERModel
    model_config: ModelConfig
    entity_labels: list[str]
    relation_labels: list[str]
    triples: dict[str, torch.Tensor]  # "training" / "validation" / "testing" -> (m, 3) long
    dataset: str = "graph"
    train_config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # train result, metrics, dataset notes

    @property
    def entity_to_id(self) -> dict[str, int]:
        return {e: i for i, e in enumerate(self.entity_labels)}

    @property
    def relation_to_id(self) -> dict[str, int]:
        return {r: i for i, r in enumerate(self.relation_labels)}


def _empty() -> torch.Tensor:
    return torch.zeros(0, 3, dtype=torch.long)


def save_run(run: KgeRun, out_dir: str | Path) -> Path:
    """Write the run folder (created if missing); returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    save_file({k: v.contiguous() for k, v in run.triples.items()}, str(out / "triples.safetensors"))
    meta = {
        "format_version": FORMAT_VERSION, "dataset": run.dataset, "model_config": run.model_config.to_dict(),
        "train_config": run.train_config, "entity_labels": run.entity_labels,
        "relation_labels": run.relation_labels, "info": run.info,
    }
    (out / "run.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    return out


def load_run(run_dir: str | Path) -> KgeRun:
    """Rebuild the model from `run.json` and load its weights from `model.safetensors`."""
    d = Path(run_dir)
    if not (d / "run.json").is_file() or not (d / "model.safetensors").is_file():
        raise InputError(f"{d} is not a KGE run folder (needs run.json and model.safetensors; "
                         "make one with `mmre kge train --out DIR`)")
    meta = json.loads((d / "run.json").read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{d}/run.json has format version {meta.get('format_version')}, expected {FORMAT_VERSION}")
    config = ModelConfig(**meta["model_config"])
    triples = {k: v.long() for k, v in load_file(str(d / "triples.safetensors")).items()}
    ents, rels = meta["entity_labels"], meta["relation_labels"]
    tf = TriplesFactory(
        mapped_triples=triples.get("training", _empty()), entity_to_id={e: i for i, e in enumerate(ents)},
        relation_to_id={r: i for i, r in enumerate(rels)}, create_inverse_triples=True,
    )
    state = load_file(str(d / "model.safetensors"))
    feats = None
    if config.features != "none":
        feats = torch.zeros(len(ents), config.feature_dim)
    model = build_model(config, tf, feats)
    model.load_state_dict(state)
    model.eval()
    return KgeRun(model, config, ents, rels, triples, meta.get("dataset", "graph"), meta.get("train_config", {}),
                  meta.get("info", {}))
