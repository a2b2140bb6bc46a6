"""Training and evaluation of the relation model on MNRE-format files.

Seeded, length-bucketed batches, AdamW with warm-up and linear decay, resumable from `OUT/last/`.
After each epoch the model is calibrated and its thresholds chosen on the dev split (`train/protocol.py`:
never on MNRE val, which only confirms the chosen model once); the best epoch (by the product's end-to-end
F1, or by gold-pair F1, both at the stable thresholds of `train/thresholds.py`) is kept. The training
pairs are MNRE's lines and, on request, the pairs the product forms too (`data/product_pairs.py`).
Images are optional: examples whose `img_id` is found in `--images` use it, the rest are text-only.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mmre_demo.data.mnre import MnreExample
from mmre_demo.data.schema import InputError
from mmre_demo.decoding import relation_decisions
from mmre_demo.device import resolve_device
from mmre_demo.model.batching import ImageCache, Item, batches, predict_logits, prepare_items, run_batch
from mmre_demo.model.relation import RelationModel, build_relation_model, load_relation_model
from mmre_demo.train.config import RelationTrainConfig
from mmre_demo.train.metrics import mnre_scores, stable_gold_threshold
from mmre_demo.train.name_swap import name_pool, swap_names
from mmre_demo.train.protocol import Selection, confirm, selection_of
from mmre_demo.train.thresholds import ThresholdCurve

log = logging.getLogger(__name__)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optimizer(model: RelationModel, args: RelationTrainConfig) -> torch.optim.Optimizer:
    backbone = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("text_encoder.")]
    head = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("text_encoder.")]
    return torch.optim.AdamW(
        [{"params": backbone, "lr": args.lr}, {"params": head, "lr": args.head_lr}],
        weight_decay=args.weight_decay,
    )


def _schedule(optimizer: torch.optim.Optimizer, total: int, warmup: float) -> torch.optim.lr_scheduler.LambdaLR:
    warm = max(1, int(total * warmup))

    def factor(step: int) -> float:
        return step / warm if step < warm else max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _save_last(out: Path, model: RelationModel, optimizer, scheduler, state: dict) -> None:
    last = out / "last"
    model.save_pretrained(last)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, last / "optimizer.pt")
    (last / "trainer_state.json").write_text(json.dumps(state, indent=2))


def epoch_items(gold: list[Item], extra: list[Item], fraction: float, rng: random.Random) -> list[Item]:
    """One epoch's training passes: all that score an MNRE line plus a fresh draw of the passes that score
    only extra (reverse/silver) pairs. A caption-once pass scores a caption's gold and extra pairs
    together, so it always trains on all of them."""
    if fraction >= 1.0 or not extra:
        return gold + extra
    return gold + rng.sample(extra, int(round(len(extra) * fraction)))


def _tag_captions(tagger, examples: list[MnreExample]) -> dict[str, list]:
    captions = sorted({e.caption for e in examples})
    out: dict[str, list] = {}
    for i in range(0, len(captions), 64):
        chunk = captions[i : i + 64]
        out.update(zip(chunk, tagger.tag_batch(chunk)))
    log.info("tagged %d captions", len(captions))
    return out


def _load_model(args: RelationTrainConfig, device: str, resume_dir: Path) -> tuple[RelationModel, dict]:
    fresh = {"epoch": 0, "best_f1": -1.0, "history": [],
             "args": {k: str(v) for k, v in asdict(args).items() if k != "config"}}
    if args.resume and (resume_dir / "trainer_state.json").is_file():
        state = json.loads((resume_dir / "trainer_state.json").read_text())
        log.info("resuming after epoch %d", state["epoch"])
        return load_relation_model(resume_dir, device=device), state
    if args.init_from:
        log.info("starting from %s (its config and weights; backbone and LoRA settings given here are ignored; "
                 "architecture %s)", args.init_from, args.config.architecture)
        saved = load_relation_model(args.init_from, device="cpu")
        saved.config.image_text = saved.config.image_text or args.config.image_text  # a new input can be added
        saved.config.architecture = args.config.architecture  # the same weights may read the text another way
        saved.config.max_rows = args.config.max_rows
        model = build_relation_model(saved.config)
        model.load_state_dict(saved.state_dict(), strict=False)  # parameters the new architecture adds stay new
        return model.to(device), fresh
    return build_relation_model(args.config).to(device), fresh


TRANSFER = "transfer"  # the pair source of the transfer set: learnt from the teachers' distribution alone


def _transfer_pairs(args: RelationTrainConfig, counts: dict) -> list[tuple[str, MnreExample]]:
    """The transfer set's pairs (source `TRANSFER`), counted into `counts`."""
    if not args.transfer_files:
        return []
    if not args.distill_from:
        raise InputError("a transfer set has no relation labels: it needs teachers (distill_from)")
    from mmre_demo.data.transfer import transfer_captions, transfer_pairs

    examples = transfer_pairs(transfer_captions(args.transfer_files))
    counts[TRANSFER] = len(examples)
    log.info("transfer set: %d pairs from %d files", len(examples), len(args.transfer_files))
    return [(TRANSFER, ex) for ex in examples]


def teacher_logits(args: RelationTrainConfig, examples: list[MnreExample], images_dir, out: Path) -> np.ndarray:
    """What the student learns from on every training pair: one teacher's raw logits, or for several (an
    ensemble) the mean of their log-probabilities. Each teacher's logits are computed once and kept in
    OUT/teacher_logits[_N].npy for `--resume`, beside a stamp naming the teacher, so another teacher's file is
    never read back."""
    per_teacher = [_one_teacher(teacher, examples, images_dir, out, i, args.device)
                   for i, teacher in enumerate(args.distill_from)]
    if len(per_teacher) == 1:
        return per_teacher[0]
    log_probs = [torch.log_softmax(torch.from_numpy(x).double(), dim=-1) for x in per_teacher]
    return torch.stack(log_probs).mean(0).float().numpy()


def _one_teacher(teacher_dir: Path, examples: list[MnreExample], images_dir, out: Path, index: int,
                 device: str) -> np.ndarray:
    suffix = f"_{index + 1}" if index else ""
    path, stamp = out / f"teacher_logits{suffix}.npy", out / f"teacher{suffix}.json"
    wanted = {"teacher": str(teacher_dir), "pairs": len(examples)}
    if path.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return np.load(path)
    teacher = load_relation_model(teacher_dir, device=resolve_device(device), for_inference=True)  # adapters folded
    cache = ImageCache(teacher)
    cache.add_folder(images_dir, {e.img_id for e in examples if e.img_id})
    log.info("teacher %s (%s) scores %d training pairs", teacher_dir, teacher.config.architecture, len(examples))
    logits = predict_logits(teacher, prepare_items(teacher, examples, cache), cache)
    np.save(path, logits)
    stamp.write_text(json.dumps(wanted))
    return logits


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-row KL(teacher || student) of the temperature-softened distributions, times T^2 (Hinton et al.)."""
    t = temperature
    log_p = torch.log_softmax(student / t, dim=-1)
    log_q = torch.log_softmax(teacher / t, dim=-1)
    return torch.nn.functional.kl_div(log_p, log_q, reduction="none", log_target=True).sum(-1) * t * t


@dataclass
class EpochCheck:
    """The check on dev after an epoch: calibration, the two thresholds, the scores they give and the
    threshold curves they were read from."""

    label_bias: list[float]
    temperature: float
    threshold: float  # the product's (end-to-end F1)
    gold_threshold: float  # gold-pair F1
    gold: dict  # MNRE gold-pair scores at `gold_threshold`
    calibration: dict
    end_to_end: dict | None  # the product's scores at `threshold`
    curves: dict[str, ThresholdCurve] = field(default_factory=dict)  # "gold", "end_to_end"

    def selection_f1(self, select_on: str) -> float:
        return self.end_to_end["f1"] if select_on == "end_to_end" and self.end_to_end else self.gold["f1"]


def check_on_dev(model: RelationModel, dev_items: list[Item], cache: ImageCache, dev_examples: list[MnreExample],
                 tagger, images_dir, end_to_end: bool) -> EpochCheck:
    """Calibrate (per-label offsets + temperature, likelihood on the gold pairs), then choose the gold-pair
    threshold (gold-pair F1) and the product's threshold (end-to-end F1), each the stable threshold of its
    curve (`thresholds.stable_threshold`), all on the dev examples.

    Sets them on `model.config`, so the end-to-end run sees the model exactly as it would be saved.
    """
    from mmre_demo.train.calibration import calibrated, calibration_report, fit_calibration
    from mmre_demo.train.end_to_end import caption_index

    none_id = model.config.labels.index("None")
    gold = [ex.label_id for ex in dev_examples]
    logits = predict_logits(model, dev_items, cache)
    offsets, temperature = fit_calibration(logits, gold, none_id)
    probs = calibrated(logits, offsets, temperature)
    curves = {"gold": stable_gold_threshold(probs, gold, caption_index(dev_examples), none_id)}
    gold_threshold = curves["gold"].chosen
    cfg = model.config
    cfg.label_bias, cfg.temperature, cfg.gold_threshold = [float(b) for b in offsets], temperature, gold_threshold
    gold_scores = mnre_scores(gold, relation_decisions(probs, gold_threshold, none_id).tolist(), none_id)
    e2e, threshold = None, cfg.threshold
    if end_to_end and tagger is not None:
        from mmre_demo.pipeline import Pipeline
        from mmre_demo.train.end_to_end import predict_captions, stable_end_to_end_threshold

        was_training = model.training
        model.eval()
        device = str(next(model.parameters()).device)
        runs = predict_captions(Pipeline(model, tagger, device), dev_examples, images_dir)
        model.train(was_training)
        curves["end_to_end"], e2e = stable_end_to_end_threshold(runs)
        threshold = cfg.threshold = curves["end_to_end"].chosen
    report = calibration_report(logits, gold, none_id, offsets, temperature)
    return EpochCheck(cfg.label_bias, temperature, threshold, gold_threshold, gold_scores, report, e2e, curves)


@dataclass
class TrainingData:
    """What the epochs read: the training pairs (source, example) and their encoder passes, split into those
    that score an MNRE line and the extra ones, the teachers' logits per pair, the dev passes."""

    pairs: list[tuple[str, MnreExample]]
    gold_items: list[Item]
    extra_items: list[Item]
    teacher: torch.Tensor | None
    dev_items: list[Item]
    name_pool: dict[str, list[str]] = field(default_factory=dict)  # names by type for --name-swap


def _training_data(args: RelationTrainConfig, model: RelationModel, cache: ImageCache, tagger,
                   train_examples: list[MnreExample], dev_examples: list[MnreExample], images_dir,
                   out: Path) -> TrainingData:
    from mmre_demo.data.product_pairs import build_product_pairs

    detected = _tag_captions(tagger, train_examples) if "silver" in args.pair_sources else {}
    pairs, counts = build_product_pairs(train_examples, detected, args.pair_sources)
    pairs += _transfer_pairs(args, counts)
    log.info("training pairs: %s", json.dumps(counts))
    teacher = None
    if args.distill_from:  # the teachers read the captions as written, also when the student reads renamed ones
        teacher = torch.from_numpy(teacher_logits(args, [ex for _, ex in pairs], images_dir, out))
    pool = name_pool([ex for source, ex in pairs if source != "silver"]) if args.name_swap > 0 else {}
    data = TrainingData(pairs, [], [], teacher, prepare_items(model, dev_examples, cache), pool)
    epoch_passes(args, model, cache, data, epoch=0)
    log.info("%d encoder passes per epoch score %d pairs (%s)", len(data.gold_items) + len(data.extra_items),
             len(pairs), model.config.architecture)
    return data


def epoch_passes(args: RelationTrainConfig, model: RelationModel, cache: ImageCache, data: TrainingData,
                 epoch: int) -> None:
    """The training pairs as encoder passes (`data.gold_items`: those that score an MNRE line), their entity
    names substituted afresh for this epoch with `--name-swap` (`name_swap.py`; its own seeded draw, so the
    batch order does not depend on it)."""
    examples = [ex for _, ex in data.pairs]
    if args.name_swap > 0:
        examples = swap_names(examples, data.name_pool, args.name_swap, random.Random(args.seed * 1009 + epoch))
    items = prepare_items(model, examples, cache,
                          weights=[args.silver_weight if source == "silver" else 1.0 for source, _ in data.pairs])
    scores_gold = [any(data.pairs[i][0] == "gold" for i in it.indices) for it in items]
    data.gold_items = [it for it, g in zip(items, scores_gold) if g]
    data.extra_items = [it for it, g in zip(items, scores_gold) if not g]


def _optimization(args: RelationTrainConfig, model: RelationModel, data: TrainingData, state: dict,
                  resume_dir: Path, device: str, rng: random.Random):
    """The optimizer and schedule, restored from OUT/last on --resume (with the epochs' draws replayed)."""
    per_epoch = len(data.gold_items) + (len(data.extra_items) if args.extra_fraction >= 1 else
                                        int(round(len(data.extra_items) * args.extra_fraction)))
    optimizer = _optimizer(model, args)
    scheduler = _schedule(optimizer, math.ceil(per_epoch / args.batch_size) * args.epochs, args.warmup)
    if args.resume and (resume_dir / "optimizer.pt").is_file():
        # Our own resume file; weights_only=True refuses anything but tensors and plain containers.
        opt_state = torch.load(resume_dir / "optimizer.pt", map_location=device, weights_only=True)
        optimizer.load_state_dict(opt_state["optimizer"])
        scheduler.load_state_dict(opt_state["scheduler"])
        for _ in range(state["epoch"]):  # replay the draws and shuffles so the batch order matches a fresh run
            batches(epoch_items(data.gold_items, data.extra_items, args.extra_fraction, rng), args.batch_size, rng)
    return optimizer, scheduler


def _writer(args: RelationTrainConfig, out: Path):
    if not args.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))


def _batch_loss(args: RelationTrainConfig, model: RelationModel, batch: list[Item], cache: ImageCache,
                data: TrainingData, loss_fn) -> tuple[torch.Tensor, int]:
    """The batch's weighted loss: cross-entropy, mixed with the teachers' KL where there are teachers; a
    transfer-set pair (no label) learns from the teachers alone. Also the number of rows."""
    output = run_batch(model, batch, cache)
    labels = torch.tensor([y for it in batch for y in it.labels], device=output.logits.device)
    weights = torch.tensor([w for it in batch for w in it.weights], device=output.logits.device)
    per_row = loss_fn(output.logits, labels)
    if data.teacher is not None:
        rows = torch.tensor([i for it in batch for i in it.indices])
        kd = distillation_loss(output.logits, data.teacher[rows].to(output.logits.device), args.distill_temperature)
        labelled = torch.tensor([data.pairs[i][0] != TRANSFER for i in rows.tolist()], device=kd.device)
        per_row = torch.where(labelled, (1 - args.distill_weight) * per_row + args.distill_weight * kd, kd)
    return (per_row * weights).sum() / weights.sum(), len(labels)


def _train_epoch(args: RelationTrainConfig, model: RelationModel, data: TrainingData, cache: ImageCache,
                 optimizer, scheduler, rng: random.Random, epoch: int) -> float:
    """One epoch of optimizer steps; the mean training loss."""
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    total, seen = 0.0, 0
    epoch_batches = batches(epoch_items(data.gold_items, data.extra_items, args.extra_fraction, rng),
                            args.batch_size, rng)
    bar = tqdm(epoch_batches, desc=f"epoch {epoch}/{args.epochs}", leave=False, mininterval=5.0)
    for batch in bar:
        loss, n = _batch_loss(args, model, batch, cache, data, loss_fn)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        total += loss.item() * n
        seen += n
        bar.set_postfix(loss=f"{total / seen:.4f}")
    return total / max(seen, 1)


def _history_row(epoch: int, train_loss: float, check: EpochCheck, train_seconds: float, seconds: float) -> dict:
    e2e = check.end_to_end or {}
    return {"epoch": epoch, "train_loss": train_loss, "dev_f1": check.gold["f1"],
            "dev_precision": check.gold["precision"], "dev_recall": check.gold["recall"],
            "dev_accuracy": check.gold["accuracy"], "gold_threshold": check.gold_threshold,
            "none_bias": check.calibration["none_offset"], "temperature": round(check.temperature, 4),
            "ece_before": round(check.calibration["ece_before"], 4),
            "ece_after": round(check.calibration["ece_after"], 4),
            "ece_held_out": round(check.calibration["ece_held_out"], 4), "threshold": check.threshold,
            "e2e_f1": e2e.get("f1"), "e2e_precision": e2e.get("precision"), "e2e_recall": e2e.get("recall"),
            "train_seconds": round(train_seconds, 1), "seconds": round(seconds, 1)}


def _keep_if_best(args: RelationTrainConfig, model: RelationModel, check: EpochCheck, state: dict, epoch: int,
                  selection: Selection, out: Path) -> None:
    """Save the epoch's model in OUT/best with its dev metrics when it is the best so far on dev."""
    if check.selection_f1(args.select_on) <= state["best_f1"]:
        return
    state["best_f1"] = check.selection_f1(args.select_on)
    state["best_epoch"] = epoch
    model.config.metrics = {"dev": check.gold, "epoch": epoch,
                            "calibration": check.calibration, "end_to_end": check.end_to_end or None,
                            "pair_sources": list(args.pair_sources), "selected_on": "dev",
                            "select_metric": args.select_on, "selection": selection.to_dict(),
                            "threshold_curves": {k: c.to_dict() for k, c in check.curves.items()}}
    model.save_pretrained(out / "best")


def train(args: RelationTrainConfig, train_examples: list[MnreExample], dev_examples: list[MnreExample],
          images_dir: str | Path | None = None, confirm_examples: list[MnreExample] | None = None,
          selection: Selection | None = None, confirm_file: str = "") -> dict:
    """Train on `train_examples`; keep the best epoch on `dev_examples` (end-to-end F1 at its stable threshold,
    or gold-pair F1) in OUT/best with its calibration and thresholds, all chosen on dev; then score the chosen
    model once on `confirm_examples` (MNRE val), reported in its metrics as `confirmation`, never chosen on.
    `selection`: the record of the dev data (`protocol.choose_dev`; default: `dev_examples`, unnamed).
    Returns the state (history, best epoch, best dev F1, confirmation)."""
    _seed_everything(args.seed)
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    resume_dir = out / "last"
    model, state = _load_model(args, device, resume_dir)
    model.train()
    if selection is None:
        selection = selection_of(dev_examples, train_examples, args.select_on)
    tagger = None
    if "silver" in args.pair_sources or args.select_on == "end_to_end":
        from mmre_demo.model.ner import NerTagger

        tagger = NerTagger.from_pretrained(args.ner_weights)
    cache = ImageCache(model)
    found, bad = cache.add_folder(images_dir, {e.img_id for e in train_examples + dev_examples if e.img_id})
    if images_dir:
        log.info("images: %d found in %s (%d unreadable); the other examples are text-only", found, images_dir, bad)
    data = _training_data(args, model, cache, tagger, train_examples, dev_examples, images_dir, out)
    rng = random.Random(args.seed)
    optimizer, scheduler = _optimization(args, model, data, state, resume_dir, device, rng)
    writer = _writer(args, out)
    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        started = time.time()
        if args.name_swap > 0 and epoch > 1:
            epoch_passes(args, model, cache, data, epoch)
        train_loss = _train_epoch(args, model, data, cache, optimizer, scheduler, rng, epoch)
        train_seconds = time.time() - started
        check = check_on_dev(model, data.dev_items, cache, dev_examples, tagger, images_dir,
                             args.select_on == "end_to_end")
        row = _history_row(epoch, train_loss, check, train_seconds, time.time() - started)
        state["history"].append(row)
        log.info("%s", json.dumps(row))
        if writer is not None:
            for k, v in row.items():
                if k != "epoch" and v is not None:
                    writer.add_scalar(k, v, epoch)
        _keep_if_best(args, model, check, state, epoch, selection, out)
        state["epoch"] = epoch
        _save_last(out, model, optimizer, scheduler, state)
    if writer is not None:
        writer.close()
    (out / "history.json").write_text(json.dumps(state["history"], indent=2))
    if images_dir and (out / "best").is_dir():
        from mmre_demo.train.image_gate import gate_saved_model

        state["image_gate"] = gate_saved_model(out / "best", dev_examples, images_dir).to_dict()
        log.info("image gate (chosen on dev): %s", json.dumps(state["image_gate"]))
    if confirm_examples and (out / "best").is_dir():
        # end to end only when the product's threshold was chosen (on dev): with --select-on gold it was not
        state["confirmation"] = _confirm_best(out / "best", confirm_examples, images_dir,
                                              tagger if args.select_on == "end_to_end" else None, device, confirm_file)
    return state


def _confirm_best(best: Path, examples: list[MnreExample], images_dir, tagger, device: str, file: str) -> dict:
    """Score the chosen model once on the confirmation set; saved as its `metrics["confirmation"]`."""
    model = load_relation_model(best, device=device)
    result = confirm(model, examples, images_dir, tagger, file)
    model.config.metrics = {**model.config.metrics, "confirmation": result}
    model.save_pretrained(best)
    e2e = result.get("end_to_end") or {}
    log.info("confirmation on %s (reported, never chosen on): gold-pair F1 %.4f%s. Against the shipped model: "
             "mmre eval --data VAL --detect-entities --weights %s --compare-to weights (docs/evaluation.md)",
             file or "the confirmation set", result["gold"]["f1"],
             f", end-to-end F1 {e2e['f1']:.4f}" if e2e else "", best)
    return result
