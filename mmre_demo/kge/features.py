"""Fixed entity features for the multimodal representation.

text  = the text backbone's embedding of the entity's name and type ("Bill Cosby, person"), averaged with the
        mean embedding of the captions it appears in (unit vector, 384-d for MiniLM);
image = the vision backbone's pooled feature of the image the entity came from (L2-normalised),
        zeros plus a 0 flag when the entity has no image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from mmre_demo.graph.store import node_name
from mmre_demo.kge.datasets import EntityInfo
from mmre_demo.kge.options import FEATURE_MODES, FeatureMode

TextEncoder = Callable[[list[str]], torch.Tensor]
MAX_CAPTIONS_PER_ENTITY = 8


def load_text_encoder(name: str = "minilm") -> TextEncoder:
    """The project's sentence embedder as a memoised function (loaded once, ~1 s)."""
    from mmre_demo.encoders.text import SentenceEmbedder

    emb = SentenceEmbedder.load(name)
    return CachedEncoder(emb.embed)


TYPE_WORDS = {"PER": "person", "ORG": "organisation", "LOC": "location", "MISC": "thing"}


class CachedEncoder:
    """Memoises a text encoder per text, so repeated refreshes / runs embed only new texts."""

    def __init__(self, encode: TextEncoder):
        self.encode, self.cache = encode, {}

    def __call__(self, texts: list[str]) -> torch.Tensor:
        new = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if new:
            for t, v in zip(new, self.encode(new).float()):
                self.cache[t] = v
        if not texts:
            return self.encode([])
        return torch.stack([self.cache[t] for t in texts])


def entity_text(info: EntityInfo) -> str:
    """What the name embedding reads: the name and its type in words ("Bill Cosby, person")."""
    word = TYPE_WORDS.get(info.type.upper())
    return f"{info.name}, {word}" if word else info.name


def text_features(labels: Sequence[str], info: dict[str, EntityInfo], encode: TextEncoder) -> torch.Tensor:
    """(n, d) unit vectors: mean of name embedding and mean caption embedding (captions deduplicated)."""
    names = [entity_text(info[lab]) if lab in info else node_name(lab) for lab in labels]
    caps_per = [list(dict.fromkeys(info[lab].captions))[:MAX_CAPTIONS_PER_ENTITY] if lab in info else []
                for lab in labels]
    uniq = list(dict.fromkeys([*names, *(c for caps in caps_per for c in caps)]))
    index = {t: i for i, t in enumerate(uniq)}
    vecs = encode(uniq).float()
    out = torch.empty(len(labels), vecs.shape[1])
    for i, (name, caps) in enumerate(zip(names, caps_per)):
        v = vecs[index[name]]
        if caps:
            v = 0.5 * v + 0.5 * vecs[[index[c] for c in caps]].mean(0)
        out[i] = v
    return torch.nn.functional.normalize(out, dim=-1)


def image_features(labels: Sequence[str], info: dict[str, EntityInfo]) -> torch.Tensor | None:
    """(n, d+1): L2-normalised pooled image feature and a has-image flag; None when no entity has one."""
    feats = [info[lab].image_feature if lab in info else None for lab in labels]
    dims = {f.shape[-1] for f in feats if f is not None}
    if not dims:
        return None
    if len(dims) > 1:
        raise ValueError(f"entity image features have different sizes {sorted(dims)}")
    d = dims.pop()
    out = torch.zeros(len(labels), d + 1)
    for i, f in enumerate(feats):
        if f is not None:
            out[i, :d] = torch.nn.functional.normalize(torch.as_tensor(np.asarray(f, dtype=np.float32)), dim=0)
            out[i, d] = 1.0
    return out


def entity_features(mode: FeatureMode, labels: Sequence[str], info: dict[str, EntityInfo],
                    encode: TextEncoder | None = None) -> torch.Tensor | None:
    """The feature matrix for `mode` (None for "none"); text+image falls back to text when no image is known."""
    if mode not in FEATURE_MODES:
        raise ValueError(f"unknown feature mode {mode!r}; choose one of {FEATURE_MODES}")
    if mode == "none":
        return None
    text = text_features(labels, info, encode or load_text_encoder())
    if mode == "text":
        return text
    img = image_features(labels, info)
    return text if img is None else torch.cat([text, img], dim=1)


def mnre_image_features(info: dict[str, EntityInfo], records: list[dict], image_dir: str,
                        train_triples: set[tuple[str, str, str]]) -> int:
    """Attach pooled vision features to entities of training lines whose image is in `image_dir`.

    Returns the number of entities that got one (MNRE ships 34 sample images here, so few do).
    """
    from pathlib import Path

    from PIL import Image

    from mmre_demo.encoders.vision import load_vision_backbone

    folder = Path(image_dir)
    wanted: dict[str, list[str]] = {}
    for rec in records:
        img = rec.get("img_id")
        if img and rec["triple"] in train_triples and (folder / img).is_file():
            wanted.setdefault(img, []).extend([rec["triple"][0], rec["triple"][2]])
    if not wanted:
        return 0
    vb = load_vision_backbone().eval()
    names = sorted(wanted)
    with torch.inference_mode():
        pooled = vb(vb.preprocess([Image.open(folder / n).convert("RGB") for n in names])).pooled
    n = 0
    for name, vec in zip(names, pooled):
        for ent in wanted[name]:
            if info[ent].image_feature is None:
                info[ent].image_feature = vec.float().numpy()
                n += 1
    return n
