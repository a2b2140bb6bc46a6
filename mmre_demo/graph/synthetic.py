"""A synthetic corpus shaped like `mmre extract`'s output folder, for the graph benchmark and tests.

Why: opening a 10,000-post corpus graph must be measured without running the model over 10,000 posts
(hours on 2 CPU cores), and the browser test needs a corpus of a few hundred posts in seconds. The
posts have entity spans, typed relations only (`data/labels.py`), a few names in many posts and most
in one (a tweet corpus's shape); `extract.exports.write_exports` turns the folder into graph.json.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from mmre_demo.data.labels import RELATIONS, relation_types

TYPED = [r for r in RELATIONS if relation_types(r)]
FIRST = ["Anna", "Ben", "Carla", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jun", "Kemal", "Lena", "Mo", "Nia"]
LAST = ["Ek", "Lopez", "Smith", "Okafor", "Tanaka", "Rossi", "Novak", "Khan", "Berg", "Silva", "Moreau", "Wu"]
ORGS = ["United", "City", "Rovers", "Athletic", "Records", "Labs", "Times", "News", "Party", "Council"]
PLACES = ["Lima", "Oslo", "Accra", "Quebec", "Perth", "Kyoto", "Porto", "Cairo", "Dakar", "Hanoi", "Sydney", "Leeds"]
EVENTS = ["Cup", "Awards", "Open", "Festival", "Summit", "Games", "Marathon", "Expo"]


def _names(rng: random.Random, n: int, make: Callable[[random.Random], str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        name, tries = make(rng), tries + 1
        if tries > 20 * n:  # the name parts are used up: number the rest
            name = f"{name} #{len(out)}"
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _zipf(rng: random.Random, items: list[str], s: float = 1.1) -> str:
    """A few names in many posts, most in one (how entities spread over a tweet corpus)."""
    i = min(len(items) - 1, int(rng.paretovariate(s)) - 1)
    return items[i] if rng.random() < 0.6 else rng.choice(items)


def synthetic_extract(folder: Path, n_posts: int, seed: int = 0, image_share: float = 0.2) -> Path:
    """An `mmre extract`-shaped output folder (posts.jsonl, triples.jsonl) of `n_posts` posts, an
    `image_share` of them with an image (a name only: the folder holds no image files)."""
    rng = random.Random(seed)
    vocab = {
        "PER": _names(rng, max(40, n_posts // 3), lambda r: f"{r.choice(FIRST)} {r.choice(LAST)} {r.randint(1, 99)}"),
        "ORG": _names(rng, max(15, n_posts // 12), lambda r: f"{r.choice(PLACES)} {r.choice(ORGS)} {r.randint(1, 9)}"),
        "LOC": _names(rng, max(12, n_posts // 20), lambda r: f"{r.choice(PLACES)}{r.choice(['', ' North', ' Bay'])}"
                                                             f" {r.randint(1, 40)}"),
        "MISC": _names(rng, max(10, n_posts // 25),
                       lambda r: f"{r.choice(PLACES)} {r.choice(EVENTS)} {r.randint(1, 30)}"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "posts.jsonl").open("w", encoding="utf-8") as posts, \
            (folder / "triples.jsonl").open("w", encoding="utf-8") as triples:
        for i in range(n_posts):
            pid = f"post-{i:06d}"
            types = rng.sample(["PER", "PER", "ORG", "LOC", "MISC"], k=rng.choice([2, 2, 3]))
            names = list(dict.fromkeys(_zipf(rng, vocab[t]) for t in types))
            types = types[:len(names)]
            caption, ents = "", []
            for t, name in zip(types, names):
                joiners = [" and ", " at ", " with "] if caption else ["", "Look: ", "RT ", "With "]
                caption += rng.choice(joiners)
                ents.append({"text": name, "start": len(caption), "end": len(caption) + len(name), "type": t})
                caption += name
            caption += rng.choice([" tonight.", " #news", " in the photo.", "!"])
            image = f"photo_{i:06d}.jpg" if rng.random() < image_share else None
            posts.write(json.dumps({"key": pid, "id": pid, "line": i + 1, "status": "ok", "image": image,
                                    "image_id": image, "caption": caption, "entities": ents,
                                    "has_image": image is not None, "groundings": [], "concepts": [],
                                    "image_size": [640, 480] if image else None}) + "\n")
            for a in range(len(ents)):
                for b in range(len(ents)):
                    fits = [r for r in TYPED if relation_types(r) == (ents[a]["type"], ents[b]["type"])]
                    if a != b and fits and rng.random() < 0.5:
                        triples.write(json.dumps({"post_id": pid, "head": ents[a], "tail": ents[b],
                                                  "relation": rng.choice(fits),
                                                  "probability": round(rng.uniform(0.45, 0.99), 3),
                                                  "top_k": []}) + "\n")
    return folder
