"""Training loop for EEND-EDA: simulated or real diarization sets, exact resume, DDP.

Reads top to bottom: (1) set-up, (2) data, (3) model and optimiser, (4) resume,
(5) epochs of PIT training, (6) validation loss and DER, (7) checkpoint.
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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from diarize.checkpoint import build_model, config_of, load_checkpoint, save_checkpoint
from diarize.config import ExperimentConfig, to_yaml
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
    if t.feature_cache:  # a frozen WavLM's layer states, computed once per set
        from diarize.features.cache import cached_dataset

        sets = [cached_dataset(s, model.frontend, t.feature_cache, t.batch_size) for s in sets]
        log.info("WavLM layer states cached in %s", ", ".join(str(s.path) for s in sets))
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
    labels, nspk = batch["labels"].to(device), batch["num_speakers"].to(device)
    with cached_frontend(model, batch, device):
        out = model(wave, lengths, nspk)
    frames = out["logits"].shape[1]
    labels = _fit_frames(labels, frames)  # (batch, frames, speakers)
    pit, perms = pit_bce_loss(out["logits"].float(), labels, out["frame_lengths"], nspk)
    exist = attractor_existence_loss(out["existence_logits"].float(), nspk)
    loss = pit + config.train.attractor_weight * exist
    return loss, {"pit": pit.item(), "attractor": exist.item(), "out": out, "perms": perms}


def _fit_frames(labels: torch.Tensor, frames: int) -> torch.Tensor:
    if labels.shape[1] >= frames:
        return labels[:, :frames]
    return torch.nn.functional.pad(labels, (0, 0, 0, frames - labels.shape[1]))


@torch.no_grad()
def validate(model, dataset, config: ExperimentConfig, device) -> dict[str, float]:
    """Validation loss, and DER (collar 0.25 per side, md-eval semantics) of the dev
    chunks decoded with the inference path (speaker count estimated by the EDA)."""
    from pyannote.core import Segment, Timeline

    from diarize.data.labels import labels_to_annotation
    from diarize.scoring import score

    core = model.module if isinstance(model, DistributedDataParallel) else model
    core.eval()
    totals, count = {"loss": 0.0, "pit": 0.0, "attractor": 0.0}, 0
    refs, hyps, uems = {}, {}, {}
    loader = make_loader(dataset, config, 0, 0, 1, shuffle=False)
    for batch in loader:
        loss, parts = compute_loss(core, batch, config, device)
        n = len(batch["lengths"])
        totals["loss"] += loss.item() * n
        totals["pit"] += parts["pit"] * n
        totals["attractor"] += parts["attractor"] * n
        count += n
        with cached_frontend(core, batch, device):
            results = core.infer(batch["wave"].to(device), batch["lengths"].to(device))
        for i, (probs, _) in enumerate(results):
            uri = f"chunk{len(refs):06d}"
            nf, ns = int(batch["frame_lengths"][i]), int(batch["num_speakers"][i])
            ref = batch["labels"][i, :nf, :ns].numpy() > 0.5
            hyp = probs[:nf].cpu().numpy() > config.infer.threshold
            names = [f"s{k}" for k in range(max(ref.shape[1], hyp.shape[1]))]
            refs[uri] = labels_to_annotation(ref, core.frame_shift, uri, names[: ref.shape[1]])
            hyps[uri] = labels_to_annotation(hyp, core.frame_shift, uri, names[: hyp.shape[1]])
            uems[uri] = Timeline([Segment(0.0, nf * core.frame_shift)], uri=uri)
    metrics = {k: v / max(count, 1) for k, v in totals.items()}
    report = score(refs, hyps, uems, collar=0.25, skip_overlap=False)
    metrics["der"] = report.total.der
    metrics["speaker_count_accuracy"] = report.speaker_count_accuracy
    core.train()
    return metrics


# ----------------------------------------------------------------------------- main loop
def train(config: ExperimentConfig, init: str | None = None, resume: bool = False) -> Path:
    """Train (or adapt, with ``init``) a model; returns the output directory."""
    t = config.train
    if not t.train_data:
        raise DiarizeError("train.train_data is empty: give a diarization directory in the config")
    # 1. set-up: processes, output directory, log, seeds
    rank, world, device = init_distributed()
    is_main = rank == 0
    out_dir = Path(t.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(out_dir, is_main)
    existing = epoch_checkpoints(out_dir)
    if existing and not resume:
        raise DiarizeError(
            f"{out_dir} already holds checkpoints; pass --resume to continue or choose another train.out_dir"
        )
    if is_main:
        with atomic_write(out_dir / "config.yaml") as f:
            f.write(to_yaml(config))
    set_seed(t.seed)

    # 2. model (built first: the dataset needs its frame rate), optionally from a checkpoint
    model = build_model(config).to(device)
    if init:
        _load_init(model, init, config)
    # 3. data
    train_set = make_dataset(t.train_data, config, model)
    dev_set = make_dataset(t.dev_data, config, model) if t.dev_data else None
    if dev_set is not None and 0 < t.dev_max_chunks < len(dev_set):
        dev_set = torch.utils.data.Subset(dev_set, range(t.dev_max_chunks))
    if len(train_set) == 0:
        raise DiarizeError(
            f"{t.train_data}: no training chunk of at most {t.max_speakers} speakers"
        )
    log.info(
        "train: %d chunks of %d frames (%.0f ms) from %s",
        len(train_set),
        t.chunk_frames,
        model.frame_shift * 1000,
        t.train_data,
    )
    if dev_set is not None:
        log.info("dev: %d chunks from %s", len(dev_set), t.dev_data)

    # 4. optimiser and schedule; a pretrained frontend may get its own learning rate
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, [lr_lambda(config)] * len(optimizer.param_groups)
    )
    use_amp = t.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, step, history = 0, 0, []

    # 5. resume from the newest epoch checkpoint: weights, optimiser, schedule, RNGs
    if resume and existing:
        ckpt = load_checkpoint(existing[-1][1])
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start_epoch, step, history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
        log.info("resumed from %s (epoch %d, step %d)", existing[-1][1], start_epoch, step)
    if world > 1:
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    core = model.module if world > 1 else model

    # 6. epochs
    for epoch in range(start_epoch, t.epochs):
        model.train()
        loader = make_loader(train_set, config, epoch, rank, world, shuffle=True)
        sums, seen, t0 = {"loss": 0.0, "pit": 0.0, "attractor": 0.0}, 0, time.time()
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{t.epochs}",
            disable=not is_main,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.1 if sys.stderr.isatty() else 30.0,  # sparse in log files
        )
        optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(bar):
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss, parts = compute_loss(model, batch, config, device)
            scaler.scale(loss / t.grad_accum).backward()
            last = i + 1 == len(loader)
            if (i + 1) % t.grad_accum == 0 or last:
                scaler.unscale_(optimizer)
                if t.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
            n = len(batch["lengths"])
            sums["loss"] += loss.item() * n
            sums["pit"] += parts["pit"] * n
            sums["attractor"] += parts["attractor"] * n
            seen += n
            bar.set_postfix(
                loss=f"{sums['loss'] / seen:.4f}", lr=f"{scheduler.get_last_lr()[-1]:.2e}"
            )
            if (
                is_main
                and t.log_interval
                and step % t.log_interval == 0
                and ((i + 1) % t.grad_accum == 0)
            ):
                log.info(
                    "epoch %d step %d loss %.4f lr %.3e",
                    epoch + 1,
                    step,
                    sums["loss"] / seen,
                    scheduler.get_last_lr()[-1],
                )
        bar.close()
        record = {"epoch": epoch + 1, "step": step, "seconds": round(time.time() - t0, 1)}
        record.update({f"train_{k}": v / max(seen, 1) for k, v in sums.items()})
        # 7. validation (main process only) and the epoch checkpoint
        if is_main and dev_set is not None:
            record.update(
                {f"dev_{k}": v for k, v in validate(core, dev_set, config, device).items()}
            )
        history.append(record)
        if is_main:
            log.info(
                "epoch %d: %s",
                epoch + 1,
                json.dumps(
                    {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}
                ),
            )
            save_checkpoint(
                out_dir / f"checkpoint_epoch{epoch + 1}.pt",
                core,
                config,
                epoch=epoch + 1,
                step=step,
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
                scaler=scaler.state_dict(),
                rng=rng_state(),
                history=history,
            )
            _prune(out_dir, t.keep_checkpoints)
            with atomic_write(out_dir / "history.json") as f:
                json.dump(history, f, indent=1)
        if world > 1:
            dist.barrier()
    if is_main:
        report_layer_weights(core)
        plot_history(history, out_dir / "curve.png")
    if world > 1:
        dist.destroy_process_group()
    return out_dir


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
    if src.model != config.model or _architecture(src.features) != _architecture(config.features):
        raise DiarizeError(
            f"{path}: its model/features config differs from this experiment's; adaptation needs the same architecture"
        )
    model.load_state_dict(ckpt["model"])
    log.info("initialised from %s", path)


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
    ax[1].set(xlabel="epoch", ylabel="DER % (collar 0.25)", title="dev DER (chunks)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def with_overrides(config: ExperimentConfig, **train_fields: Any) -> ExperimentConfig:
    """``config`` with some ``train`` fields replaced (CLI options)."""
    return replace(config, train=replace(config.train, **train_fields))
