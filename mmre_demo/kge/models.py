"""Model configuration and construction: PyKEEN TransE / DistMult / ComplEx, optionally multimodal.

The plain models are exactly `pykeen.models.<Name>(**model_kwargs(config))` (so a `pipeline(...)`
with the same kwargs is comparable). The multimodal variant swaps the entity representation for a
`MultimodalEntityRepresentation`: structural embedding + a learned projection of fixed features.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import torch
from pykeen.models import ERModel, model_resolver
from pykeen.nn import Representation
from pykeen.triples import CoreTriplesFactory

from mmre_demo.kge.options import FeatureMode

MODELS = ("transe", "distmult", "complex")


@dataclass
class ModelConfig:
    """What is needed to rebuild a model before loading its weights."""

    model: str = "complex"
    embedding_dim: int = 128  # ComplEx: complex dimensions (2x real numbers)
    init_std: float = 0.1  # DistMult/ComplEx: small normal init (PyKEEN's std=1 default trains badly)
    features: FeatureMode = "none"
    feature_dim: int = 0
    # multiplies the fixed features. Adam's step is scale-free per parameter, so this is W's learning
    # rate relative to the embeddings' (PyKEEN's loop rebuilds the optimiser with one parameter group).
    # MNRE KG validation MRR: 0.129 at 1, 0.169 at 10, 0.175 at 30 (docs/kge.md).
    feature_scale: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_dim(model: str) -> int:
    return {"transe": 128, "distmult": 256, "complex": 128}[model]


def model_kwargs(config: ModelConfig) -> dict[str, Any]:
    """Keyword arguments for `pykeen.models.<model>` (also used for the plain-pipeline comparison)."""
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; choose one of {MODELS}")
    kw: dict[str, Any] = {"embedding_dim": config.embedding_dim}
    if config.model in ("distmult", "complex"):
        init = partial(torch.nn.init.normal_, std=config.init_std)
        kw.update(entity_initializer=init, relation_initializer=init, regularizer=None)
    if config.model == "distmult":
        kw.update(entity_constrainer=None)  # unit-norm entities cap DistMult's scores; 1-vs-all wants them free
    return kw


class _ZeroInitLinear(torch.nn.Linear):
    """A bias-free Linear that PyKEEN's `reset_parameters_()` (run when training starts) sets back to zero."""

    def reset_parameters(self) -> None:
        torch.nn.init.zeros_(self.weight)


class MultimodalEntityRepresentation(Representation):
    """entity(i) = seen(i) · structural(i) + W · (feature_scale · feature(i)).

    `feature` is a fixed (n, f) tensor (text [+ image] features, not trained); `feature_scale` comes
    from `ModelConfig` (W's relative learning rate, see there); W starts at zero, so
    training starts from the plain model and learns how much the features help. Entities that are
    not in the training triples (`seen` = 0) are represented by their features alone. For complex-valued
    models (ComplEx) W maps to 2·d real numbers viewed as d complex ones. Entities never seen in
    training still get a meaningful embedding through their features.
    """

    def __init__(self, base: Representation, features: torch.Tensor, seen: torch.Tensor | None,
                 feature_scale: float):
        if features.shape[0] != base.max_id:
            raise ValueError(f"{features.shape[0]} feature rows for {base.max_id} entities")
        super().__init__(max_id=base.max_id, shape=base.shape)
        self.base = base
        # entities absent from training keep their random init forever: use their features alone
        seen = torch.ones(base.max_id, dtype=torch.bool) if seen is None else seen.bool()
        self.register_buffer("seen", seen.float().view(-1, *([1] * len(base.shape))))
        self.is_complex = getattr(base, "is_complex", False)
        out = int(torch.Size(base.shape).numel()) * (2 if self.is_complex else 1)
        self.register_buffer("features", features.float().contiguous())
        self.projection = _ZeroInitLinear(features.shape[1], out, bias=False)
        self.feature_scale = float(feature_scale)

    def _plain_forward(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        structural = self.base._plain_forward(indices=indices)
        structural = structural * (self.seen if indices is None else self.seen[indices])
        feats = self.features if indices is None else self.features[indices]
        extra = self.projection(feats * self.feature_scale)
        if self.is_complex:
            extra = torch.view_as_complex(extra.view(*extra.shape[:-1], -1, 2))
        return structural + extra.view(structural.shape)

    def post_parameter_update(self) -> None:
        self.base.post_parameter_update()


def build_model(config: ModelConfig, triples_factory: CoreTriplesFactory, features: torch.Tensor | None = None,
                random_seed: int | None = None, loss: str | None = None) -> ERModel:
    """A PyKEEN model for the factory; with `features` the entity representation becomes multimodal.

    `loss` lives on the model in PyKEEN (the training loop reads `model.loss`).
    """
    extra = {} if loss is None else {"loss": loss}
    model = model_resolver.make(config.model, triples_factory=triples_factory, random_seed=random_seed,
                                **model_kwargs(config), **extra)
    if features is not None:
        config.feature_dim = int(features.shape[1])
        base = model.entity_representations[0]
        seen = torch.zeros(base.max_id, dtype=torch.bool)
        seen[triples_factory.mapped_triples[:, [0, 2]].flatten()] = True
        model.entity_representations[0] = MultimodalEntityRepresentation(base, features, seen, config.feature_scale)
    elif config.features != "none":
        raise ValueError(f"features={config.features!r} needs a feature tensor")
    return model
