"""Training loop for EEND-EDA: simulated or real diarization sets, exact resume, DDP.

:func:`train` reads top to bottom: (1) processes and run directory, (2) model, then data,
(3) state -- model, optimiser, schedule, scaler, epoch, step, history -- fresh or restored
from the newest checkpoint (:class:`TrainState`), (4) epochs: :func:`train_epoch` (PIT
training, gradient accumulation as an inner loop of micro-steps), then :func:`end_epoch`
(validate, save, prune, history, plot). :func:`validate` decodes the dev chunks with the
post-processing of ``diarize evaluate`` (threshold, median filter, minimum durations), so
"dev DER" means one thing everywhere.
Run it with ``diarize train --config configs/X.yaml`` or under ``torchrun`` for several
processes (DistributedDataParallel; ``gloo`` on CPU, ``nccl`` on GPUs).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from diarize.checkpoint import build_model, config_of, load_checkpoint, save_checkpoint
from diarize.config import ExperimentConfig, to_dict, to_yaml
from diarize.losses import attractor_existence_loss, pit_bce_loss
from diarize.utils import DiarizeError, atomic_write, set_seed

log = logging.getLogger("diarize.train")
CKPT_RE = re.compile(r"^checkpoint_epoch(\d+)\.pt$")


# ----------------------------------------------------------------------------- helpers
def noam_factor(step: int, d_model: int, warmup: int) -> float:
    """Noam schedule (Vaswani et al.): d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)."""
    step = max(step, 1)
    return d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


def lr_lambda(config: ExperimentConfig):
    t = config.train
    if t.scheduler == "noam":
        return lambda step: noam_factor(step + 1, config.model.d_model, t.warmup_steps)
    if t.scheduler == "warmup":
        return lambda step: min(1.0, (step + 1) / max(1, t.warmup_steps))
    if t.scheduler == "constant":
        return lambda step: 1.0
    raise DiarizeError(f"train.scheduler must be noam, warmup or constant, got {t.scheduler!r}")


def epoch_checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """``[(epoch, path)]`` of the epoch checkpoints in ``out_dir``, oldest first."""
    found = [
        (int(m.group(1)), p)
        for p in out_dir.glob("checkpoint_epoch*.pt")
        if (m := CKPT_RE.match(p.name))
    ]
    return sorted(found)


def rng_state() -> dict[str, Any]:
    """Every RNG the loop draws from, in a form ``weights_only`` loading accepts."""
    np_state = np.random.get_state()
    state = {
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(
        ("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def setup_logging(out_dir: Path, is_main: bool) -> None:
    log.setLevel(logging.INFO)
    log.handlers.clear()
    log.propagate = False
    if not is_main:
        return
    fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
    file = logging.FileHandler(out_dir / "train.log")
    file.setFormatter(fmt)

    class TqdmHandler(logging.Handler):
        def emit(self, record):
            tqdm.write(self.format(record))

    console = TqdmHandler()
    console.setFormatter(fmt)
    log.addHandler(file)
    log.addHandler(console)


# ----------------------------------------------------------------------------- distributed
def init_distributed() -> tuple[int, int, torch.device]:
    """(rank, world_size, device); world_size 1 when not started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank, local = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


# ----------------------------------------------------------------------------- data
def make_dataset(paths: str, config: ExperimentConfig, model: torch.nn.Module):
    """Chunks of one diarization directory, or of several separated by commas."""
    from torch.utils.data import ConcatDataset

    from diarize.data.dataset import ChunkDataset
    from diarize.data.kaldi import load_diarization_set

    t = config.train
    sets = [
        ChunkDataset(
            load_diarization_set(path.strip()),
            model,  # its frame_shift and num_frames set the label rate
            chunk_frames=t.chunk_frames,
            sample_rate=config.features.sample_rate,
            max_speakers=t.max_speakers,
        )
        for path in paths.split(",")
    ]
    if t.feature_cache:  # a frozen frontend's states (WavLM, CAM++), computed once per set
        from diarize.features.cache import cached_dataset

        sets = [cached_dataset(s, model.frontend, t.feature_cache, t.batch_size) for s in sets]
        log.info("frozen frontend states cached in %s", ", ".join(str(s.path) for s in sets))
    return sets[0] if len(sets) == 1 else ConcatDataset(sets)


def epoch_indices(num_items: int, config: ExperimentConfig, epoch: int, shuffle: bool) -> list[int]:
    """The chunks of epoch ``epoch``, in order: a permutation drawn from (seed, epoch) only,
    cut to ``train.epoch_chunks`` when set, so a resumed run sees exactly the batches the
    uninterrupted run would have seen."""
    if not shuffle:
        return list(range(num_items))
    generator = torch.Generator().manual_seed(config.train.seed * 1000 + epoch)
    order = torch.randperm(num_items, generator=generator).tolist()
    return order[: config.train.epoch_chunks] if config.train.epoch_chunks > 0 else order


def make_loader(
    dataset, config: ExperimentConfig, epoch: int, rank: int, world: int, shuffle: bool
) -> DataLoader:
    """Batches of this process: every ``world``-th chunk of the epoch's order."""
    from diarize.data.dataset import collate

    t = config.train
    indices = epoch_indices(len(dataset), config, epoch, shuffle)
    if world > 1:
        indices = indices[: len(indices) // world * world][rank::world]  # equal share per process
    return DataLoader(
        dataset, t.batch_size, sampler=indices, collate_fn=collate, num_workers=t.num_workers
    )


# ----------------------------------------------------------------------------- run directory
def prepare_run(config: ExperimentConfig, resume: bool, is_main: bool) -> tuple[Path, list]:
    """Create ``train.out_dir`` with its log; -> (the directory, its epoch checkpoints).
    Checkpoints there need ``resume``. (``config.yaml`` is written once the run has
    started as configured: after a resume has taken or refused the changed settings.)"""
    out_dir = Path(config.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(out_dir, is_main)
    existing = epoch_checkpoints(out_dir)
    if existing and not resume:
        raise DiarizeError(
            f"{out_dir} already holds checkpoints; pass --resume to continue or choose another train.out_dir"
        )
    return out_dir, existing


def make_datasets(config: ExperimentConfig, model: torch.nn.Module):
    """(train chunks, dev chunks or None), checked and logged."""
    t = config.train
    train_set = make_dataset(t.train_data, config, model)
    dev_set = make_dataset(t.dev_data, config, model) if t.dev_data else None
    if dev_set is not None and 0 < t.dev_max_chunks < len(dev_set):
        dev_set = torch.utils.data.Subset(dev_set, range(t.dev_max_chunks))
    if len(train_set) == 0:
        raise DiarizeError(
            f"{t.train_data}: no training chunk of at most {t.max_speakers} speakers"
        )
    log.info("train: %d chunks of %d frames (%.0f ms) from %s", len(train_set), t.chunk_frames,
             model.frame_shift * 1000, t.train_data)  # fmt: skip
    if dev_set is not None:
        log.info("dev: %d chunks from %s", len(dev_set), t.dev_data)
    return train_set, dev_set


# ----------------------------------------------------------------------------- state
@dataclass
class TrainState:
    """Everything an interrupted run needs to continue exactly."""

    model: torch.nn.Module  # what is trained: the model, or its DistributedDataParallel wrapper
    core: torch.nn.Module  # the model itself (what checkpoints hold)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    epoch: int = 0  # epochs done
    step: int = 0  # optimizer steps done
    history: list[dict] = field(default_factory=list)  # one record per epoch

    @classmethod
    def fresh(cls, model: torch.nn.Module, config: ExperimentConfig, device) -> TrainState:
        """Adam(W) with its schedule (a pretrained frontend may get its own learning rate),
        a gradient scaler for AMP on CUDA, nothing done yet."""
        optimizer = make_optimizer(model, config)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, [lr_lambda(config)] * len(optimizer.param_groups)
        )
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp(config, device))
        return cls(model, model, optimizer, scheduler, scaler)

    def save(self, path: Path, config: ExperimentConfig) -> None:
        save_checkpoint(
            path, self.core, config, epoch=self.epoch, step=self.step,
            optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(), rng=rng_state(), history=self.history,
        )  # fmt: skip

    def restore(self, path: Path, config: ExperimentConfig) -> None:
        """Weights, optimiser, schedule, scaler, RNGs and counters of checkpoint ``path``.
        Settings changed since it was written are applied and logged; a change the run
        cannot take (the model, the optimizer) is refused (:func:`resume_changes`)."""
        ckpt = load_checkpoint(path)
        changes = resume_changes(config_of(ckpt, str(path)), config, path)
        self.core.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        self.epoch, self.step, self.history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
        log.info("resumed from %s (epoch %d, step %d)", path, self.epoch, self.step)
        if changes:
            self.apply_settings(config)
        for change in changes:
            log.info("resume: %s (applied)", change)

    def apply_settings(self, config: ExperimentConfig) -> None:
        """The learning rates and weight decay of ``config`` in place of those the restored
        optimiser and schedule carry (the schedule's factor at the current step kept)."""
        t = config.train
        lrs = [t.lr, t.frontend_lr or t.lr][: len(self.optimizer.param_groups)]
        self.scheduler.base_lrs = list(lrs)
        factor = self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["initial_lr"], group["lr"] = lr, lr * factor
            if t.optimizer == "adamw":
                group["weight_decay"] = t.weight_decay


def resume_changes(old: ExperimentConfig, new: ExperimentConfig, path: Path) -> list[str]:
    """``"section.field: old -> new"`` for each setting of ``new`` that differs from the
    checkpoint's ``old``, all of which a resumed run applies (learning rates, schedule,
    epochs, data...); a DiarizeError for a different model or optimizer, which the saved
    weights and optimiser state cannot continue."""
    changed = _differences(to_dict(old), to_dict(new))
    fixed = [k for k in changed if _is_fixed(k)]
    if fixed:
        first = fixed[0]
        raise DiarizeError(
            f"{path}: --resume continues the run of this checkpoint, but {first} changed "
            f"({changed[first][0]!r} -> {changed[first][1]!r}); keep it, or train into "
            "another train.out_dir (--init CKPT to start from these weights)"
        )
    return [f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items() if k != "train.out_dir"]


# The weights and the optimiser state fix these; wavlm.checkpoint (where the weights first
# came from) and the compute-only switches may change.
_FREE_FEATURES = ("features.wavlm.checkpoint", "features.wavlm.grad_checkpointing",
                  "features.wavlm.quantize")  # fmt: skip


def _is_fixed(key: str) -> bool:
    if key.startswith("model.") or key == "train.optimizer":
        return True
    return key.startswith("features.") and key not in _FREE_FEATURES


def _differences(a: dict, b: dict, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (a's value, b's value)}`` where two nested dicts differ."""
    out = {}
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out.update(_differences(x, y, f"{prefix}{key}."))
        elif x != y:
            out[f"{prefix}{key}"] = (x, y)
    return out


def use_amp(config: ExperimentConfig, device) -> bool:
    return config.train.amp and torch.device(device).type == "cuda"


# ----------------------------------------------------------------------------- main loop
def train(config: ExperimentConfig, init: str | None = None, resume: bool = False) -> Path:
    """Train (or adapt, with ``init``) a model; returns the output directory."""
    if not config.train.train_data:
        raise DiarizeError("train.train_data is empty: give a diarization directory in the config")
    # 1. processes, run directory (log), seeds
    rank, world, device = init_distributed()
    out_dir, existing = prepare_run(config, resume, rank == 0)
    set_seed(config.train.seed)
    # 2. model (built first: the dataset needs its frame rate), optionally from a checkpoint
    model = build_model(config).to(device)
    if init:
        _load_init(model, init, config)
    train_set, dev_set = make_datasets(config, model)
    # 3. state, restored from the newest epoch checkpoint on --resume
    state = TrainState.fresh(model, config, device)
    if resume and existing:
        state.restore(existing[-1][1], config)
    if rank == 0:  # the resolved config, now that it is the one the run follows
        with atomic_write(out_dir / "config.yaml") as f:
            f.write(to_yaml(config))
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        state.model = DistributedDataParallel(model, device_ids=ids)
    # 4. epochs: train, then validate, save, prune, log the history, plot
    for _ in range(state.epoch, config.train.epochs):
        record = train_epoch(state, train_set, config, device, rank, world)
        end_epoch(state, record, dev_set, config, out_dir, device, rank == 0)
        if world > 1:
            dist.barrier()
    if rank == 0:
        report_layer_weights(state.core)
    if world > 1:
        dist.destroy_process_group()
    return out_dir


def train_epoch(
    state: TrainState, dataset, config: ExperimentConfig, device, rank: int, world: int
) -> dict:
    """One pass over this process's share of the epoch's chunks: per optimizer step, an
    inner loop over ``train.grad_accum`` micro-batches. -> the epoch's record (so far)."""
    t = config.train
    state.model.train()
    loader = make_loader(dataset, config, state.epoch, rank, world, shuffle=True)
    sums, seen, t0 = {"loss": 0.0, "pit": 0.0, "attractor": 0.0}, 0, time.time()
    bar = tqdm(
        loader,
        desc=f"epoch {state.epoch + 1}/{t.epochs}",
        disable=rank != 0,
        leave=False,
        dynamic_ncols=True,
        mininterval=0.1 if sys.stderr.isatty() else 30.0,  # sparse in log files
    )
    state.optimizer.zero_grad(set_to_none=True)
    for micro_batches in groups(bar, t.grad_accum):
        for batch in micro_batches:  # gradients add up over the micro-batches
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp(config, device)):
                loss, parts = compute_loss(state.model, batch, config, device)
            state.scaler.scale(loss / t.grad_accum).backward()
            seen += accumulate(sums, loss, parts, len(batch["lengths"]))
            bar.set_postfix(loss=f"{sums['loss'] / seen:.4f}", lr=f"{last_lr(state):.2e}")
        optimizer_step(state, t.grad_clip)
        full = len(micro_batches) == t.grad_accum
        if rank == 0 and full and t.log_interval and state.step % t.log_interval == 0:
            log.info("epoch %d step %d loss %.4f lr %.3e", state.epoch + 1, state.step,
                     sums["loss"] / seen, last_lr(state))  # fmt: skip
    bar.close()
    record = {"epoch": state.epoch + 1, "step": state.step, "seconds": round(time.time() - t0, 1)}
    return record | {f"train_{k}": v / max(seen, 1) for k, v in sums.items()}


def accumulate(sums: dict[str, float], loss: torch.Tensor, parts: dict, n: int) -> int:
    """Add a batch's losses, weighted by its ``n`` chunks, to ``sums``; -> ``n``."""
    sums["loss"] += loss.item() * n
    sums["pit"] += parts["pit"] * n
    sums["attractor"] += parts["attractor"] * n
    return n


def last_lr(state: TrainState) -> float:
    return state.scheduler.get_last_lr()[-1]


def groups(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    group: list = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def optimizer_step(state: TrainState, grad_clip: float) -> None:
    """Unscale, clip, step the optimiser, the scaler and the schedule; zero the gradients."""
    state.scaler.unscale_(state.optimizer)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.scheduler.step()
    state.optimizer.zero_grad(set_to_none=True)
    state.step += 1


def end_epoch(
    state: TrainState,
    record: dict,
    dev_set,
    config: ExperimentConfig,
    out_dir: Path,
    device,
    is_main: bool,
) -> None:
    """Validate (main process), append the record, then save the epoch checkpoint, prune
    old ones, write ``history.json`` and ``curve.png``."""
    if is_main and dev_set is not None:
        dev = validate(state.core, dev_set, config, device)
        record.update({f"dev_{k}": v for k, v in dev.items()})
    state.history.append(record)
    state.epoch += 1
    if not is_main:
        return
    rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}
    log.info("epoch %d: %s", state.epoch, json.dumps(rounded))
    state.save(out_dir / f"checkpoint_epoch{state.epoch}.pt", config)
    _prune(out_dir, config.train.keep_checkpoints)
    with atomic_write(out_dir / "history.json") as f:
        json.dump(state.history, f, indent=1)
    plot_history(state.history, out_dir / "curve.png")


# ----------------------------------------------------------------------------- steps
def cached_frontend(
    model, batch: dict[str, torch.Tensor], device
) -> contextlib.AbstractContextManager:
    """Context in which the frontend takes the batch's cached WavLM states (``train.feature_cache``)
    instead of running WavLM; does nothing for a batch without them."""
    if "wavlm_states" not in batch:
        return contextlib.nullcontext()
    core = model.module if isinstance(model, DistributedDataParallel) else model
    return core.frontend.precomputed(batch["wavlm_states"].to(device))


def compute_loss(
    model, batch: dict[str, torch.Tensor], config: ExperimentConfig, device
) -> tuple[torch.Tensor, dict]:
    """PIT BCE + weighted attractor-existence loss of one batch."""
    wave, lengths = batch["wave"].to(device), batch["lengths"].to(device)
    nspk = batch["num_speakers"].to(device)
    with cached_frontend(model, batch, device):
        out = model(wave, lengths, nspk)
    return _losses(
        out["logits"], out["existence_logits"], out["frame_lengths"], batch, config, device
    )


def _losses(logits, existence_logits, frame_lengths, batch, config, device):
    """(loss, parts) from the model's outputs on ``batch``: logits (batch, frames, speakers),
    existence_logits (batch, speakers + 1)."""
    labels = _fit_frames(batch["labels"].to(device), logits.shape[1])  # (batch, frames, speakers)
    nspk = batch["num_speakers"].to(device)
    pit, perms = pit_bce_loss(logits.float(), labels, frame_lengths, nspk)
    exist = attractor_existence_loss(existence_logits.float(), nspk)
    loss = pit + config.train.attractor_weight * exist
    return loss, {"pit": pit.item(), "attractor": exist.item(), "perms": perms}


def _fit_frames(labels: torch.Tensor, frames: int) -> torch.Tensor:
    if labels.shape[1] >= frames:
        return labels[:, :frames]
    return torch.nn.functional.pad(labels, (0, 0, 0, frames - labels.shape[1]))


@torch.no_grad()
def dev_step(core, batch: dict[str, torch.Tensor], config: ExperimentConfig, device):
    """One forward pass of a dev batch (eval mode) -> (loss, parts, posteriors per item
    ``(frames_i, speakers_i)`` decoded as ``model.infer`` does: speakers counted by the
    attractors' existence, at most ``model.max_speakers``). The EDA decodes attractors one
    by one from the same state, so the first ones serve the loss and the decoding alike."""
    from diarize.models.eend_eda import count_speakers

    wave, lengths = batch["wave"].to(device), batch["lengths"].to(device)
    speakers, cap = int(batch["num_speakers"].max()), config.model.max_speakers
    with cached_frontend(core, batch, device):
        emb, frame_lengths = core.encode(wave, lengths)  # (batch, frames, d_model)
    attractors, existence = core.eda(emb, frame_lengths, max(speakers, cap) + 1, shuffle=False)
    logits = emb @ attractors[:, :speakers].transpose(1, 2)  # (batch, frames, speakers)
    scored = existence[:, : speakers + 1]  # the loss scores one attractor past the speakers
    loss, parts = _losses(logits, scored, frame_lengths, batch, config, device)
    counts = count_speakers(existence[:, : cap + 1], None, cap, config.model.attractor_threshold)
    probs = [
        torch.sigmoid(emb[i, : frame_lengths[i]] @ attractors[i, :n].T)  # (frames_i, speakers_i)
        for i, n in enumerate(counts.tolist())
    ]
    return loss, parts, probs


@torch.no_grad()
def validate(model, dataset, config: ExperimentConfig, device) -> dict[str, float]:
    """Validation loss, and DER (collar 0.25 per side, md-eval semantics) of the dev chunks
    decoded as ``diarize evaluate`` decodes a window: speaker count from the attractors,
    then :func:`diarize.inference.postprocess` (threshold, median filter, minimum durations
    of ``config.infer``)."""
    from pyannote.core import Segment, Timeline

    from diarize.data.labels import labels_to_annotation
    from diarize.inference import postprocess
    from diarize.scoring import DEFAULT_COLLAR, score

    core = model.module if isinstance(model, DistributedDataParallel) else model
    core.eval()
    totals, count = {"loss": 0.0, "pit": 0.0, "attractor": 0.0}, 0
    refs, hyps, uems = {}, {}, {}
    for batch in make_loader(dataset, config, 0, 0, 1, shuffle=False):
        loss, parts, probs = dev_step(core, batch, config, device)
        count += accumulate(totals, loss, parts, len(batch["lengths"]))
        for i, p in enumerate(probs):
            uri = f"chunk{len(refs):06d}"
            nf, ns = int(batch["frame_lengths"][i]), int(batch["num_speakers"][i])
            ref = batch["labels"][i, :nf, :ns].numpy() > 0.5
            hyp = postprocess(p[:nf].float().cpu().numpy(), config.infer, core.frame_shift)
            names = [f"s{k}" for k in range(max(ref.shape[1], hyp.shape[1]))]
            refs[uri] = labels_to_annotation(ref, core.frame_shift, uri, names[: ref.shape[1]])
            hyps[uri] = labels_to_annotation(hyp, core.frame_shift, uri, names[: hyp.shape[1]])
            uems[uri] = Timeline([Segment(0.0, nf * core.frame_shift)], uri=uri)
    report = score(refs, hyps, uems, collar=DEFAULT_COLLAR, skip_overlap=False)
    core.train()
    return {k: v / max(count, 1) for k, v in totals.items()} | {
        "der": report.total.der, "speaker_count_accuracy": report.speaker_count_accuracy,
    }  # fmt: skip


def make_optimizer(model: torch.nn.Module, config: ExperimentConfig) -> torch.optim.Optimizer:
    """Adam(W) over two groups: the pretrained frontend (``frontend_lr``) and the rest (``lr``)."""
    t = config.train
    pretrained = list(getattr(model.frontend, "pretrained_parameters", lambda: [])())
    ids = {id(p) for p in pretrained}
    rest = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    groups = [{"params": rest, "lr": t.lr}]
    trainable = [p for p in pretrained if p.requires_grad]
    if trainable:
        groups.append({"params": trainable, "lr": t.frontend_lr or t.lr})
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, betas=(0.9, 0.98), eps=1e-9)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-9, weight_decay=t.weight_decay)
    raise DiarizeError(f"train.optimizer must be adam or adamw, got {t.optimizer!r}")


def _load_init(model: torch.nn.Module, path: str, config: ExperimentConfig) -> None:
    """Start from another checkpoint's weights (adaptation); architectures must match."""
    ckpt = load_checkpoint(path)
    src = config_of(ckpt)
    if _shape(src.model) != _shape(config.model) or _architecture(src.features) != _architecture(
        config.features
    ):
        raise DiarizeError(
            f"{path}: its model/features config differs from this experiment's; adaptation needs the same architecture"
        )
    model.load_state_dict(ckpt["model"])
    log.info("initialised from %s", path)


def _shape(model):
    """``model`` without the settings that do not shape its weights (dropout, frame
    shuffling, and the inference-time attractor cap and threshold): an adaptation may
    change them."""
    return replace(model, dropout=0.0, shuffle_frames=True, max_speakers=1, attractor_threshold=0.5)


def _architecture(features):
    """``features`` without the WavLM settings that only say how it trains or where its
    weights first came from (a frozen run's checkpoint may start a fine-tuned one)."""
    wavlm = replace(
        features.wavlm, checkpoint="", freeze="", grad_checkpointing=False, quantize=False
    )
    return replace(features, wavlm=wavlm)


def _prune(out_dir: Path, keep: int) -> None:
    if keep <= 0:
        return
    for _, path in epoch_checkpoints(out_dir)[:-keep]:
        path.unlink(missing_ok=True)


def report_layer_weights(model: torch.nn.Module) -> None:
    weights = getattr(model.frontend, "layer_weights", None)
    if weights is not None:
        w = weights().detach().cpu().tolist()
        log.info("WavLM layer weights: %s", " ".join(f"{i}:{v:.3f}" for i, v in enumerate(w)))


def plot_history(history: list[dict], path: Path) -> None:
    """Loss (and DER when validated) per epoch, for people to look at."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diarize.utils import atomic_path

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot(epochs, [h["train_loss"] for h in history], label="train")
    if "dev_loss" in history[0]:
        ax[0].plot(epochs, [h["dev_loss"] for h in history], label="dev")
        ax[1].plot(epochs, [h["dev_der"] for h in history], marker="o")
    ax[0].set(xlabel="epoch", ylabel="loss (PIT BCE + attractor)", title="loss")
    ax[0].legend()
    ax[1].set(xlabel="epoch", ylabel="DER % (collar 0.25)", title="dev DER (chunks, as evaluate)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
