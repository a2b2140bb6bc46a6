"""`LinkSuggester`: the app's "suggested links" — trains on the app's graph in the background.

Usage from the UI (no call here ever blocks on training)::

    suggester = LinkSuggester()                      # ComplEx + text (+ image, where known) features
    suggester.refresh(graph)                         # snapshot the graph, train in a daemon thread, return at once
    rows, message = suggester.suggest_with_message("PER:Bill Cosby", k=5)
    # rows: [Suggestion(head=node_id, relation=str, tail=node_id, score=float, rank=1), ...]
    #       (kge/predict.py) best first; triples already in the graph, self-loops and triples that
    #       break the relation's type rule are left out. `score` orders, it is no probability:
    #       the app shows the rank and the held-out quality (`status().mrr`, `.hits_at_10`).
    # message: "" when rows come from a model trained on the current graph, otherwise why there
    #          are none / why they may be stale ("training on 12 triples…", "no model yet", ...).
    suggester.suggest(node_id, k=5)                  # the same rows without the message
    suggester.status()                               # SuggesterStatus(state="empty"|"small"|"training"|
                                                     #   "ready"|"error", message, elapsed_s, budget_s, mrr, ...)
    suggester.wait(timeout=30)                       # tests / CLI: block until the current refresh ends

A suggested edge should go into the graph with `source="suggested"` (drawn dashed); such edges are
ignored by `refresh` so suggestions never train on themselves. While a refresh is running the
model trained before keeps answering; a newer `refresh` cancels an older one that has not finished.

Quality: a graph of at least `MIN_TRIPLES_TO_MEASURE` relations is split like `mmre kge train`'s
(80/10/10, whole entity pairs per split): the model trains on 80 %, stops early on 10 % and its
filtered MRR / Hits@10 on the last 10 % is what the app shows beside the ranks. Fewer relations than
`MIN_TRIPLES_TO_EMBED`: nothing is trained and the status says the graph is too small.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from mmre_demo.data.schema import InputError
from mmre_demo.graph.store import ENTITY_KIND, SUGGESTED
from mmre_demo.kge.datasets import dataset_from_triples, triples_from_parts
from mmre_demo.kge.features import TextEncoder
from mmre_demo.kge.options import FeatureMode
from mmre_demo.kge.predict import KgePredictor, Suggestion
from mmre_demo.kge.training import default_train_config

MIN_TRIPLES_TO_EMBED = 5  # fewer relations than this: nothing to learn from, the status says so
MIN_TRIPLES_TO_MEASURE = 10  # from here on a held-out tenth measures the embedding (dataset_from_triples)

SuggesterState = Literal["empty", "small", "training", "ready", "error"]
_DICT_KEYS = {"hits_at_10": "hits@10"}  # field -> its key in `to_dict` (the metric's usual name)


@dataclass(frozen=True)
class SuggesterStatus:
    """What `LinkSuggester.status()` reports: the state and its message ("" when all is well); once a
    model was trained, what it learnt from and its held-out quality (None: not measured, the graph was
    too small to hold some out); while training, the seconds spent of the time budget."""

    state: SuggesterState
    message: str = ""
    ready: bool = False  # a model answers (also while a newer graph trains)
    triples: int | None = None  # the last trained model's: its triples, entities, epochs, training seconds
    entities: int | None = None
    epochs: int | None = None
    seconds: float | None = None
    stopped_by: str | None = None
    features: FeatureMode | None = None
    mrr: float | None = None  # filtered, on the held-out relations
    hits_at_10: float | None = None
    held_out: int | None = None
    elapsed_s: float | None = None  # while training
    budget_s: float | None = None
    relations: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, as a JSON object ("hits@10" for `hits_at_10`)."""
        return {_DICT_KEYS.get(k, k): v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SuggesterStatus:
        keys = {_DICT_KEYS.get(f.name, f.name): f.name for f in fields(cls)}
        return cls(**{keys[k]: v for k, v in d.items() if k in keys})


@dataclass
class _Snapshot:
    nodes: dict[Any, dict]
    edges: list[tuple[Any, Any, dict]]
    key: int


class LinkSuggester:
    """Background-trained KGE over the app's graph; see the module docstring for the API."""

    def __init__(self, model: str = "complex", features: FeatureMode = "text+image", *, embedding_dim: int = 64,
                 batch_size: int = 512, max_epochs: int = 30, time_budget_s: float = 20.0, seed: int = 0,
                 text_encoder: TextEncoder | None = None):
        self.model, self.features, self.embedding_dim, self.batch_size = model, features, embedding_dim, batch_size
        self.max_epochs, self.time_budget_s, self.seed = max_epochs, time_budget_s, seed
        self._encoder: TextEncoder | None = text_encoder  # None: load the project's MiniLM on first use
        self._lock = threading.Lock()
        self._predictor: KgePredictor | None = None
        self._trained_key: int | None = None
        self._pending_key: int | None = None
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._state: SuggesterState = "empty"
        self._message = "No suggestions yet: the graph has not been embedded."
        self._info: dict[str, Any] = {}  # the last model's SuggesterStatus fields (triples, epochs, mrr, ...)
        self._started, self._n_relations = 0.0, 0

    # ------------------------------------------------------------------ training
    def refresh(self, graph: Any) -> bool:
        """Start (re)training on a snapshot of `graph` in the background; returns at once.

        Returns False (and does nothing) when the graph's triples are unchanged since the last
        model or the refresh already running. An empty graph clears the model with a message.
        """
        # in the request thread only a reference snapshot and a cheap key; parsing happens in the thread
        nodes, edges = dict(graph.nodes(data=True)), list(graph.edges(data=True))
        key = hash((self.features, len(nodes), tuple(
            (u, v, d.get("relation"), d.get("source")) for u, v, d in edges if d.get("source") != SUGGESTED)))
        snap = _Snapshot(nodes, edges, key)
        with self._lock:
            if snap.key in (self._trained_key, self._pending_key):
                return False
            if self._cancel is not None:
                self._cancel.set()  # a newer graph supersedes an unfinished refresh
            n_rel = sum(1 for u, v, d in edges if nodes.get(u, {}).get("kind") == ENTITY_KIND
                        and nodes.get(v, {}).get("kind") == ENTITY_KIND and d.get("relation")
                        and d.get("source") != SUGGESTED)
            if n_rel < MIN_TRIPLES_TO_EMBED:
                self._predictor, self._trained_key, self._pending_key = None, snap.key, None
                self._state, self._info = ("empty" if n_rel == 0 else "small"), {}
                self._message = ("No suggestions: the graph has no relations between entities yet." if n_rel == 0
                                 else f"The graph is too small to embed: {n_rel} relation{'s' if n_rel != 1 else ''}"
                                      f" between entities; link suggestions need at least {MIN_TRIPLES_TO_EMBED}.")
                return False
            cancel = threading.Event()
            self._cancel, self._pending_key = cancel, snap.key
            self._state, self._started, self._n_relations = "training", time.monotonic(), n_rel
            self._message = f"Embedding the graph ({n_rel} relations)…"
            self._thread = threading.Thread(target=self._train, args=(snap, cancel), daemon=True,
                                            name="kge-refresh")
            self._thread.start()
        return True

    def _text_encoder(self) -> TextEncoder:
        if self._encoder is None:
            from mmre_demo.kge.features import load_text_encoder

            self._encoder = load_text_encoder()
        return self._encoder

    def _train(self, snap: _Snapshot, cancel: threading.Event) -> None:
        from mmre_demo.kge.api import evaluate_run, fit

        start = time.monotonic()
        try:
            triples, info = triples_from_parts(snap.nodes, snap.edges)
            ds = dataset_from_triples("graph", triples, info, holdout=len(triples) >= MIN_TRIPLES_TO_MEASURE,
                                      seed=self.seed)
            features: FeatureMode = self.features
            if features != "none" and not any(i.captions or i.name for i in info.values()):
                features = "none"
            tcfg = default_train_config(self.model, sparse=True, max_epochs=self.max_epochs, seed=self.seed,
                                        batch_size=self.batch_size, time_budget_s=self.time_budget_s)
            run = fit(ds, self.model, features, embedding_dim=self.embedding_dim, train_config=tcfg,
                      text_encoder=self._text_encoder() if features != "none" else None, cancel=cancel)
            quality = {}
            if run.triples["testing"].shape[0]:
                m = evaluate_run(run, "test")
                quality = {"mrr": round(m["mrr"], 3), "hits_at_10": round(m["hits@10"], 3),
                           "held_out": int(m["num_triples"])}
            predictor = KgePredictor(run)
        except Exception as exc:  # noqa: BLE001 - reported through status(), never raised into the UI
            with self._lock:
                if self._cancel is cancel:
                    self._state, self._message = "error", f"Could not embed the graph: {exc}"
                    self._pending_key = None
            return
        with self._lock:
            if cancel.is_set() or self._cancel is not cancel:
                return  # superseded
            self._predictor, self._trained_key, self._pending_key = predictor, snap.key, None
            self._state, self._message = "ready", ""
            tr = run.info["train"]
            self._info = {"triples": len(triples), "entities": len(run.entity_labels),
                          "epochs": tr["epochs"], "seconds": round(time.monotonic() - start, 2),
                          "stopped_by": tr["stopped_by"], "features": run.model_config.features, **quality}

    # ------------------------------------------------------------------ queries
    def suggest_with_message(self, node_id: str, k: int = 5) -> tuple[list[Suggestion], str]:
        """Top-k new links touching `node_id`, and a message ("" when all is well)."""
        with self._lock:
            predictor, state, message = self._predictor, self._state, self._message
        if predictor is None:
            return [], message or "No suggestions yet."
        try:
            rows = predictor.suggest_links(node_id, max(0, int(k)))
        except InputError:
            extra = " (the graph is being re-embedded)" if state == "training" else ""
            return [], f"{node_id!r} is not in the embedded graph yet{extra}; refresh after adding its relations."
        note = "Suggestions come from the previous graph; re-embedding now." if state == "training" else ""
        return rows, note

    def suggest(self, node_id: str, k: int = 5) -> list[Suggestion]:
        """Top-k new links touching `node_id`; [] when no model is ready or the node is unknown."""
        return self.suggest_with_message(node_id, k)[0]

    def status(self) -> SuggesterStatus:
        """The state, its message and, while training, the seconds spent of the time budget."""
        with self._lock:
            training = {}
            if self._state == "training":
                training = dict(elapsed_s=round(time.monotonic() - self._started, 1), budget_s=self.time_budget_s,
                                relations=self._n_relations)
            return SuggesterStatus(state=self._state, message=self._message, ready=self._predictor is not None,
                                   **self._info, **training)

    def quality_text(self) -> str:
        """The embedding's held-out quality in words, for beside the ranks ("" before a model is ready)."""
        st = self.status()
        if not st.ready:
            return ""
        if st.mrr is None:
            return (f"quality not measured: {st.triples} relations are too few to hold some out "
                    f"(from {MIN_TRIPLES_TO_MEASURE})")
        return f"held-out MRR {st.mrr:.2f} · Hits@10 {st.hits_at_10:.2f} ({st.held_out} relations held out)"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running refresh ends (for tests and scripts); True if none is running."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        return t is None or not t.is_alive()
