"""Training and evaluation of the relation model on MNRE-format files.

Seeded, length-bucketed batches, AdamW with warm-up and linear decay, resumable from `OUT/last/`.
After each epoch the model is calibrated and its thresholds tuned on validation; the best epoch (by
the product's end-to-end F1, or by gold-pair F1) is kept. The training pairs are MNRE's lines and,
on request, the pairs the product forms too (`data/product_pairs.py`). Images are optional:
examples whose `img_id` is found in `--images` use it, the rest are text-only.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mmre_demo.data.images import load_image
from mmre_demo.data.mnre import MnreExample
from mmre_demo.data.schema import InputError
from mmre_demo.device import resolve_device
from mmre_demo.encoders.vision import VisionOutput
from mmre_demo.model.fusion import VisualTokens
from mmre_demo.model.config import RelationConfig
from mmre_demo.model.inputs import PairFeatures, collate, encode_pair
from mmre_demo.model.relation import RelationModel, RelationOutput
from mmre_demo.decoding import relation_decisions
from mmre_demo.train.metrics import best_gold_threshold, mnre_scores


@dataclass
class Item:
    features: PairFeatures
    label: int
    image_key: str | None  # key into ImageCache, None = text only
    weight: float = 1.0  # the example's weight in the training loss


class ImageCache:
    """Frozen vision outputs per image (one-row `VisionOutput`s on the CPU), computed once."""

    def __init__(self, model: RelationModel):
        self.model = model
        self.entries: dict[str, VisionOutput] = {}

    def add_images(self, images: dict[str, "object"], batch_size: int = 16) -> None:
        keys = [k for k in images if k not in self.entries]
        for i in range(0, len(keys), batch_size):
            chunk = keys[i : i + batch_size]
            pixels = self.model.vision.preprocess([images[k] for k in chunk])
            device = next(self.model.parameters()).device
            out = self.model.encode_images(pixels.to(device)).to("cpu")
            for j, k in enumerate(chunk):
                self.entries[k] = out.rows(slice(j, j + 1))

    def visual_tokens(self, keys: list[str], device: torch.device) -> VisualTokens:
        """Visual tokens of the cached images `keys`, in that order (one row each)."""
        return self.model.visual_tokens(VisionOutput.cat([self.entries[k] for k in keys]).to(device))

    def add_folder(self, folder: str | Path | None, img_ids: set[str]) -> tuple[int, int]:
        """Load the referenced images found in `folder`; returns (found, unreadable)."""
        if folder is None:
            return 0, 0
        folder = Path(folder)
        found, bad, images = 0, 0, {}
        for img_id in sorted(img_ids):
            path = folder / img_id
            if not path.is_file():
                continue
            try:
                images[img_id] = load_image(path)
                found += 1
            except InputError:
                bad += 1
        self.add_images(images)
        return found, bad


def prepare_items(model: RelationModel, examples: list[MnreExample], cache: ImageCache | None) -> list[Item]:
    items = []
    for ex in examples:
        feats = encode_pair(model.tokenizer, ex.caption, ex.head, ex.tail, model.config.max_length)
        key = ex.img_id if (cache is not None and ex.img_id in cache.entries) else None
        items.append(Item(feats, ex.label_id, key))
    return items


def batches(items: list[Item], batch_size: int, rng: random.Random | None) -> list[list[Item]]:
    """Length-bucketed batches (shuffled when rng is given) so padding stays small."""
    order = list(range(len(items)))
    if rng is not None:
        rng.shuffle(order)
    chunk = batch_size * 50
    out = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda k: len(items[k].features.input_ids))
        out += [[items[k] for k in part[j : j + batch_size]] for j in range(0, len(part), batch_size)]
    if rng is not None:
        rng.shuffle(out)
    return out


def run_batch(model: RelationModel, batch: list[Item], cache: ImageCache | None, explain: bool = False) -> RelationOutput:
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in collate([it.features for it in batch], model.tokenizer.pad_token_id).items()}
    keys = sorted({it.image_key for it in batch if it.image_key is not None})
    visual = image_index = None
    has_image = torch.zeros(len(batch), device=device)
    if keys and cache is not None:
        visual = cache.visual_tokens(keys, device)
        pos = {k: i for i, k in enumerate(keys)}
        image_index = torch.tensor([pos.get(it.image_key, 0) for it in batch], device=device)
        has_image = torch.tensor([1.0 if it.image_key else 0.0 for it in batch], device=device)
    return model(**inputs, visual=visual, image_index=image_index, has_image=has_image, explain=explain)


@torch.no_grad()
def predict_logits(model: RelationModel, items: list[Item], cache: ImageCache | None, batch_size: int = 64) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = np.zeros((len(items), model.config.num_labels), dtype=np.float32)
    index = {id(it): i for i, it in enumerate(items)}
    for batch in batches(items, batch_size, None):
        logits = run_batch(model, batch, cache).logits.float().cpu().numpy()
        for it, row in zip(batch, logits):
            out[index[id(it)]] = row
    model.train(was_training)
    return out


@dataclass
class TrainArgs:
    out: Path
    epochs: int = 7
    batch_size: int = 32
    lr: float = 8e-4  # LoRA adapters (or the whole backbone with backbone_training="full": use ~5e-5)
    head_lr: float = 1e-3  # fusion + classifier
    warmup: float = 0.06
    weight_decay: float = 0.01
    seed: int = 13
    tensorboard: bool = False
    resume: bool = False
    device: str = "auto"  # cuda > mps > cpu, or $MMRE_DEVICE (see mmre_demo.device)
    # which pairs of each caption to train on (see mmre_demo.data.product_pairs): MNRE's lines ("gold"),
    # their other direction ("reverse"), and the pairs MNRE left out, with the tagger's entities ("silver")
    pair_sources: tuple[str, ...] = ("gold",)
    extra_fraction: float = 1.0  # share of the reverse + silver pairs drawn afresh for each epoch
    silver_weight: float = 1.0  # loss weight of a silver pair (some are true relations MNRE left out)
    init_from: Path | None = None  # start from a saved model (its config wins over `config`)
    ner_weights: Path | None = None  # tagger for silver pairs and end-to-end selection (default: shipped)
    select_on: str = "end_to_end"  # "end_to_end" (the product's F1 on val) or "gold" (MNRE gold-pair F1)
    config: RelationConfig = field(default_factory=RelationConfig)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optimizer(model: RelationModel, args: TrainArgs) -> torch.optim.Optimizer:
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
    """One epoch's training pairs: all MNRE lines plus a fresh draw of the extra (reverse/silver) pairs."""
    if fraction >= 1.0 or not extra:
        return gold + extra
    return gold + rng.sample(extra, int(round(len(extra) * fraction)))


def _tag_captions(tagger, examples: list[MnreExample], log) -> dict[str, list]:
    captions = sorted({e.caption for e in examples})
    out: dict[str, list] = {}
    for i in range(0, len(captions), 64):
        chunk = captions[i : i + 64]
        out.update(zip(chunk, tagger.tag_batch(chunk)))
    log(f"tagged {len(captions)} captions")
    return out


def _load_model(args: TrainArgs, device: str, resume_dir: Path, log) -> tuple[RelationModel, dict]:
    fresh = {"epoch": 0, "best_f1": -1.0, "history": [],
             "args": {k: str(v) for k, v in asdict(args).items() if k != "config"}}
    if args.resume and (resume_dir / "trainer_state.json").is_file():
        state = json.loads((resume_dir / "trainer_state.json").read_text())
        log(f"resuming after epoch {state['epoch']}")
        return RelationModel.from_pretrained(resume_dir, device=device), state
    if args.init_from:
        log(f"starting from {args.init_from} (its config; backbone and LoRA settings given here are ignored)")
        return RelationModel.from_pretrained(args.init_from, device=device), fresh
    return RelationModel(args.config).to(device), fresh


@dataclass
class EpochCheck:
    """Validation after an epoch: calibration, the two thresholds and the scores they give."""

    none_bias: float
    temperature: float
    threshold: float  # the product's (end-to-end F1)
    gold_threshold: float  # gold-pair F1
    gold: dict  # MNRE gold-pair scores at `gold_threshold`
    calibration: dict
    end_to_end: dict | None  # the product's scores at `threshold`

    def selection_f1(self, select_on: str) -> float:
        return self.end_to_end["f1"] if select_on == "end_to_end" and self.end_to_end else self.gold["f1"]


def check_on_validation(model: RelationModel, val_items: list[Item], cache: ImageCache,
                        val_examples: list[MnreExample], tagger, images_dir, end_to_end: bool) -> EpochCheck:
    """Calibrate (None offset + temperature, likelihood on the gold pairs), then tune the gold-pair
    threshold (gold-pair F1) and the product's threshold (end-to-end F1).

    Sets them on `model.config`, so the end-to-end run sees the model exactly as it would be saved.
    """
    from mmre_demo.train.calibration import calibrated, calibration_report, fit_calibration

    none_id = model.config.labels.index("None")
    gold = [it.label for it in val_items]
    logits = predict_logits(model, val_items, cache)
    offset, temperature = fit_calibration(logits, gold, none_id)
    gold_threshold, _ = best_gold_threshold(calibrated(logits, none_id, offset, temperature), gold, none_id)
    cfg = model.config
    cfg.none_bias, cfg.temperature, cfg.gold_threshold = offset, temperature, gold_threshold
    probs = calibrated(logits, none_id, offset, temperature)
    gold_scores = mnre_scores(gold, relation_decisions(probs, gold_threshold, none_id).tolist(), none_id)
    e2e, threshold = None, cfg.threshold
    if end_to_end and tagger is not None:
        from mmre_demo.pipeline import Pipeline
        from mmre_demo.train.end_to_end import best_threshold, predict_captions

        was_training = model.training
        model.eval()
        device = str(next(model.parameters()).device)
        runs = predict_captions(Pipeline(model, tagger, device), val_examples, images_dir)
        model.train(was_training)
        threshold, e2e = best_threshold(runs)
        cfg.threshold = threshold
    report = calibration_report(logits, gold, none_id, offset, temperature)
    return EpochCheck(offset, temperature, threshold, gold_threshold, gold_scores, report, e2e)


def train(args: TrainArgs, train_examples: list[MnreExample], val_examples: list[MnreExample],
          images_dir: str | Path | None = None, log=print) -> dict:
    """Train; keep the best epoch on validation (end-to-end F1 at its tuned threshold, or gold-pair F1)
    in OUT/best with its calibration and thresholds; returns the history."""
    from mmre_demo.data.product_pairs import build_product_pairs

    _seed_everything(args.seed)
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    resume_dir = out / "last"
    model, state = _load_model(args, device, resume_dir, log)
    model.train()
    tagger = None
    if "silver" in args.pair_sources or args.select_on == "end_to_end":
        from mmre_demo.model.ner import NerTagger

        tagger = NerTagger.from_pretrained(args.ner_weights)
    cache = ImageCache(model)
    found, bad = cache.add_folder(images_dir, {e.img_id for e in train_examples + val_examples if e.img_id})
    if images_dir:
        log(f"images: {found} found in {images_dir} ({bad} unreadable); the other examples are text-only")
    detected = _tag_captions(tagger, train_examples, log) if "silver" in args.pair_sources else {}
    pairs, counts = build_product_pairs(train_examples, detected, args.pair_sources)
    log(f"training pairs: {json.dumps(counts)}")
    items = prepare_items(model, [ex for _, ex in pairs], cache)
    for (source, _), item in zip(pairs, items):
        item.weight = args.silver_weight if source == "silver" else 1.0
    gold_items = [it for (source, _), it in zip(pairs, items) if source == "gold"]
    extra_items = [it for (source, _), it in zip(pairs, items) if source != "gold"]
    val_items = prepare_items(model, val_examples, cache)
    rng = random.Random(args.seed)
    per_epoch = len(gold_items) + (len(extra_items) if args.extra_fraction >= 1 else
                                   int(round(len(extra_items) * args.extra_fraction)))
    steps_per_epoch = math.ceil(per_epoch / args.batch_size)
    optimizer = _optimizer(model, args)
    scheduler = _schedule(optimizer, steps_per_epoch * args.epochs, args.warmup)
    if args.resume and (resume_dir / "optimizer.pt").is_file():
        # Our own resume file; weights_only=True refuses anything but tensors and plain containers.
        opt_state = torch.load(resume_dir / "optimizer.pt", map_location=device, weights_only=True)
        optimizer.load_state_dict(opt_state["optimizer"])
        scheduler.load_state_dict(opt_state["scheduler"])
        for _ in range(state["epoch"]):  # replay the draws and shuffles so the batch order matches a fresh run
            batches(epoch_items(gold_items, extra_items, args.extra_fraction, rng), args.batch_size, rng)
    writer = None
    if args.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise InputError("--tensorboard needs the tensorboard package: pip install tensorboard") from None

        writer = SummaryWriter(str(out / "tensorboard"))
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        started = time.time()
        total, seen = 0.0, 0
        epoch_batches = batches(epoch_items(gold_items, extra_items, args.extra_fraction, rng), args.batch_size, rng)
        bar = tqdm(epoch_batches, desc=f"epoch {epoch}/{args.epochs}", leave=False, mininterval=5.0)
        for batch in bar:
            output = run_batch(model, batch, cache)
            labels = torch.tensor([it.label for it in batch], device=output.logits.device)
            weights = torch.tensor([it.weight for it in batch], device=output.logits.device)
            loss = (loss_fn(output.logits, labels) * weights).sum() / weights.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(batch)
            seen += len(batch)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        train_seconds = time.time() - started
        check = check_on_validation(model, val_items, cache, val_examples, tagger, images_dir,
                                    args.select_on == "end_to_end")
        e2e = check.end_to_end or {}
        row = {"epoch": epoch, "train_loss": total / max(seen, 1), "val_f1": check.gold["f1"],
               "val_precision": check.gold["precision"], "val_recall": check.gold["recall"],
               "val_accuracy": check.gold["accuracy"], "gold_threshold": check.gold_threshold,
               "none_bias": check.none_bias, "temperature": round(check.temperature, 4),
               "ece_before": round(check.calibration["ece_before"], 4),
               "ece_after": round(check.calibration["ece_after"], 4),
               "ece_held_out": round(check.calibration["ece_held_out"], 4), "threshold": check.threshold,
               "e2e_f1": e2e.get("f1"), "e2e_precision": e2e.get("precision"), "e2e_recall": e2e.get("recall"),
               "train_seconds": round(train_seconds, 1), "seconds": round(time.time() - started, 1)}
        state["history"].append(row)
        log(json.dumps(row))
        if writer is not None:
            for k, v in row.items():
                if k != "epoch" and v is not None:
                    writer.add_scalar(k, v, epoch)
        if check.selection_f1(args.select_on) > state["best_f1"]:
            state["best_f1"] = check.selection_f1(args.select_on)
            state["best_epoch"] = epoch
            model.config.metrics = {"val": check.gold, "epoch": epoch,
                                    "calibration": check.calibration, "end_to_end": e2e or None,
                                    "pair_sources": list(args.pair_sources), "selected_on": args.select_on}
            model.save_pretrained(out / "best")
        state["epoch"] = epoch
        _save_last(out, model, optimizer, scheduler, state)
    if writer is not None:
        writer.close()
    (out / "history.json").write_text(json.dumps(state["history"], indent=2))
    return state
