"""KGE benchmarks (CPU). Run: .venv/bin/python benchmarks/bench_kge.py PART [PART ...] [--threads N]

--threads: torch CPU threads (default 1, as `mmre kge train`).

PART: sidebyside  - UMLS and Nations: our wrapper (`mmre_demo.kge.fit`) vs a plain PyKEEN `pipeline(...)`
                    with the same model kwargs, loss, optimiser, epochs, early stopping and seed.
      mnre        - MNRE-train KG (80/10/10, no inverse leakage): ComplEx features none / text / text+image.
      app         - LinkSuggester: refresh time on a session-sized graph, suggestion latency,
                    and a synthetic 100k-triple graph (time budget, peak memory).
Prints one JSON line per measurement.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time

import torch

ARGS = sys.argv[1:]  # PART names, with "--threads N" taken out below
THREADS = 1
if "--threads" in ARGS:
    _i = ARGS.index("--threads")
    THREADS = int(ARGS[_i + 1])
    del ARGS[_i : _i + 2]
torch.set_num_threads(THREADS)  # before the imports below start any work

from mmre_demo.kge import evaluate_run, fit, load_dataset  # noqa: E402
from mmre_demo.kge.models import ModelConfig, default_dim, model_kwargs  # noqa: E402
from mmre_demo.kge.training import default_train_config  # noqa: E402
from mmre_demo.logs import setup_logging  # noqa: E402

setup_logging()  # PyKEEN's per-run notices off, as in `mmre kge`


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def plain_pipeline(dataset: str, model: str, seed: int) -> tuple[dict, float]:
    """The same configuration written directly as a PyKEEN pipeline call."""
    from pykeen.pipeline import pipeline

    ds = load_dataset(dataset)
    tc = default_train_config(model, seed=seed)
    t0 = time.perf_counter()
    res = pipeline(
        training=ds.training, validation=ds.validation, testing=ds.testing, model=model,
        model_kwargs=model_kwargs(ModelConfig(model=model, embedding_dim=default_dim(model))),
        loss=tc.loss, training_loop="lcwa", optimizer="adam", optimizer_kwargs=dict(lr=tc.lr),
        training_kwargs=dict(num_epochs=tc.max_epochs, batch_size=tc.batch_size, label_smoothing=tc.label_smoothing),
        stopper="early", stopper_kwargs=dict(frequency=tc.eval_every, patience=tc.patience,
                                             metric="inverse_harmonic_mean_rank", relative_delta=tc.relative_delta),
        evaluation_kwargs=dict(batch_size=256), random_seed=seed, use_tqdm=False,
    )
    seconds = time.perf_counter() - t0
    m = res.metric_results
    keys = {"mrr": "inverse_harmonic_mean_rank", "hits@1": "hits_at_1", "hits@3": "hits_at_3", "hits@10": "hits_at_10"}
    return {k: round(float(m.get_metric(f"both.realistic.{v}")), 4) for k, v in keys.items()}, seconds


def sidebyside(seed: int = 0) -> None:
    for dataset in ("umls", "nations"):
        for model in ("complex", "distmult", "transe"):
            t0 = time.perf_counter()
            run = fit(load_dataset(dataset), model, train_config=default_train_config(model, seed=seed))
            ours = {k: round(v, 4) for k, v in evaluate_run(run).items() if k != "num_triples"}
            emit(part="sidebyside", dataset=dataset, model=model, impl="mmre_demo.kge",
                 seconds=round(time.perf_counter() - t0, 1), epochs=run.info["train"]["epochs"], **ours)
            plain, s = plain_pipeline(dataset, model, seed)
            emit(part="sidebyside", dataset=dataset, model=model, impl="pykeen.pipeline", seconds=round(s, 1), **plain)


def mnre(max_epochs: int = 60) -> None:
    from mmre_demo.kge.api import default_mnre_images
    from mmre_demo.kge.features import load_text_encoder

    ds = load_dataset("mnre", images_dir=default_mnre_images())
    emit(part="mnre", dataset_notes=ds.notes, entities=ds.training.num_entities, train=ds.training.num_triples,
         valid=ds.validation.num_triples, test=ds.testing.num_triples)
    enc = load_text_encoder()
    for features in ("none", "text", "text+image"):
        tc = default_train_config("complex", sparse=True, max_epochs=max_epochs)
        t0 = time.perf_counter()
        run = fit(ds, "complex", features, embedding_dim=64, train_config=tc, text_encoder=enc)
        total = time.perf_counter() - t0
        m = evaluate_run(run)
        emit(part="mnre", features=features, threads=torch.get_num_threads(),
             train_seconds=round(run.info["train"]["seconds"], 1),
             fit_seconds_incl_features=round(total, 1), epochs=run.info["train"]["epochs"],
             **{k: round(v, 4) for k, v in m.items()})


def synthetic_graph(n_triples: int, n_entities: int, n_relations: int = 20, seed: int = 0):
    import networkx as nx

    rng = random.Random(seed)
    g = nx.MultiDiGraph()
    for i in range(n_entities):
        g.add_node(f"PER:e{i}", kind="entity", name=f"entity {i}", type="PER")
    for _ in range(n_triples):
        a, b = rng.randrange(n_entities), rng.randrange(n_entities)
        g.add_edge(f"PER:e{a}", f"PER:e{b}", relation=f"rel {rng.randrange(n_relations)} ü", score=1.0,
                   source="predicted")
    return g


def app() -> None:
    from mmre_demo.kge.features import load_text_encoder
    from mmre_demo.kge.suggest import LinkSuggester

    enc = load_text_encoder()
    # a session graph: MNRE-val gold triples as the app would hold them
    import networkx as nx

    from mmre_demo.data.paths import shared_data_dir
    from mmre_demo.kge.datasets import mnre_triples

    triples, info, records = mnre_triples(shared_data_dir() / "mnre" / "mnre_val.txt")
    g = nx.MultiDiGraph()
    for e, i in info.items():
        captions = [r["caption"] for r in records if e in (r["triple"][0], r["triple"][2])]
        g.add_node(e, kind="entity", name=i.name, type=i.type, captions=captions)
    for h, r, t in triples:
        g.add_edge(h, t, relation=r, score=1.0, source="annotated")
    s = LinkSuggester(features="text", text_encoder=enc)
    t0 = time.perf_counter()
    s.refresh(g)
    refresh_call = time.perf_counter() - t0
    s.wait()
    st = s.status()
    nodes = [n for n in g.nodes][:200]
    lat = []
    for n in nodes:
        t1 = time.perf_counter()
        s.suggest(n, k=5)
        lat.append(time.perf_counter() - t1)
    lat.sort()
    emit(part="app", graph="mnre_val", triples=len(triples), refresh_call_ms=round(refresh_call * 1000, 1),
         train_seconds=st.seconds, epochs=st.epochs, stopped_by=st.stopped_by,
         suggest_ms_median=round(lat[len(lat) // 2] * 1000, 1),
         suggest_ms_p95=round(lat[int(len(lat) * 0.95)] * 1000, 1))

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    big = synthetic_graph(100_000, 20_000)
    build = time.perf_counter() - t0
    s = LinkSuggester(features="none", time_budget_s=60)
    t0 = time.perf_counter()
    s.refresh(big)
    refresh_call = time.perf_counter() - t0
    s.wait()
    st = s.status()
    lat = []
    for i in range(50):
        t1 = time.perf_counter()
        s.suggest(f"PER:e{i}", k=5)
        lat.append(time.perf_counter() - t1)
    lat.sort()
    emit(part="app", graph="synthetic", triples=100_000, entities=20_000, build_graph_s=round(build, 1),
         refresh_call_ms=round(refresh_call * 1000, 1), state=st.state, train_seconds=st.seconds,
         epochs=st.epochs, stopped_by=st.stopped_by,
         suggest_ms_median=round(lat[len(lat) // 2] * 1000, 1),
         peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), rss_before_mb=round(rss0))


if __name__ == "__main__":
    parts = ARGS or ["sidebyside", "mnre", "app"]
    for p in parts:
        {"sidebyside": sidebyside, "mnre": mnre, "app": app}[p]()
