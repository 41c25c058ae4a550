"""Self-describing checkpoints: config + weights (+ training state), loaded safely.

A checkpoint is a plain dict::

    {"format": "diarize-eend-eda", "version": 1, "versions": {...},
     "config": asdict(ExperimentConfig), "model": state_dict,
     # optional: a speaker encoder for linking (tools/export_model.py --speaker):
     "speaker": {"config": asdict(SpeakerConfig), "model": state_dict},
     # training checkpoints only:
     "epoch": int, "step": int, "optimizer": ..., "scheduler": ..., "rng": ..., "history": [...]}

It is always read with ``torch.load(..., weights_only=True)``: a checkpoint is untrusted input.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

import diarize
from diarize.config import ExperimentConfig, from_dict, to_dict
from diarize.utils import DiarizeError, atomic_path

FORMAT = "diarize-eend-eda"
SPEAKER_FORMAT = "diarize-speaker"  # tools/train_speaker_encoder.py
VERSION = 1


def save_checkpoint(
    path: str | os.PathLike, model: torch.nn.Module, config: ExperimentConfig, **state: Any
) -> None:
    """Write ``model``'s weights, the full ``config`` and any extra training ``state`` atomically."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "versions": {
            "diarize": diarize.__version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        },
        "config": to_dict(config),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", kind: str = FORMAT
) -> dict[str, Any]:
    """Read and validate a diarize checkpoint (never unpickles arbitrary objects); ``kind``:
    the format tag expected (:data:`FORMAT`, or :data:`SPEAKER_FORMAT` for a speaker encoder
    on its own)."""
    path = Path(path)
    if not path.is_file():
        raise DiarizeError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DiarizeError(f"{path}: not a loadable diarize checkpoint ({reason[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != kind:
        what = "EEND-EDA" if kind == FORMAT else "speaker encoder"
        raise DiarizeError(f"{path}: not a diarize {what} checkpoint (no '{kind}' format tag)")
    if ckpt.get("version", 0) > VERSION:
        raise DiarizeError(
            f"{path}: checkpoint format version {ckpt['version']} is newer than this diarize ({VERSION})"
        )
    return ckpt


def config_of(ckpt: dict[str, Any]) -> ExperimentConfig:
    return from_dict(ExperimentConfig, ckpt["config"], where="checkpoint config")


def build_model(config: ExperimentConfig) -> torch.nn.Module:
    from diarize.models import EendEda

    return EendEda(config.features, config.model)


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, ExperimentConfig]:
    """Rebuild the model of a checkpoint from its own config, in eval mode on ``device``."""
    return model_of(load_checkpoint(path), str(path), device)


def model_of(
    ckpt: dict[str, Any], where: str, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, ExperimentConfig]:
    """The EEND-EDA model of a loaded checkpoint (eval mode, on ``device``) and its config."""
    config = config_of(ckpt)
    model = build_model(_without_pretrained_source(config))
    _load_weights(
        model, ckpt["model"], f"{where}: weights do not match the model its config describes"
    )
    return model.to(device).eval(), config


def load_speaker_encoder(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """The speaker encoder a diarization checkpoint carries (key ``"speaker"``), in eval mode
    on ``device``, or None when it has none (linking then compares voice profiles)."""
    return speaker_encoder_in(load_checkpoint(path), str(path), device)


def speaker_encoder_in(ckpt: dict[str, Any], where: str, device: str | torch.device = "cpu"):
    """The speaker encoder of a loaded diarization checkpoint on ``device``, or None."""
    if "speaker" not in ckpt:
        return None
    return speaker_encoder_of(ckpt["speaker"], where).to(device)


def speaker_encoder_of(entry: Any, where: str):
    """Rebuild a speaker encoder from ``{"config": ..., "model": state_dict}``."""
    from diarize.models.speaker import SpeakerConfig, SpeakerEncoder

    if not isinstance(entry, dict) or not isinstance(entry.get("model"), dict):
        raise DiarizeError(f"{where}: malformed speaker encoder entry")
    encoder = SpeakerEncoder(from_dict(SpeakerConfig, entry.get("config"), f"{where} speaker"))
    _load_weights(
        encoder, entry["model"], f"{where}: speaker encoder weights do not match its config"
    )
    return encoder.eval()


def _load_weights(module: torch.nn.Module, state: dict, mismatch: str) -> None:
    """``module.load_state_dict(state)``; a mismatch is one DiarizeError line: ``mismatch (why)``."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise DiarizeError(f"{mismatch} ({str(e).splitlines()[0]})") from None


def _without_pretrained_source(config: ExperimentConfig) -> ExperimentConfig:
    """The config to rebuild a trained model with: the weights come from the checkpoint,
    so a pretrained WavLM file named in the config is not read (it may not exist here)."""
    from dataclasses import replace

    wavlm = replace(config.features.wavlm, checkpoint="")
    return replace(config, features=replace(config.features, wavlm=wavlm))


def average_checkpoints(paths: list[str | os.PathLike], out: str | os.PathLike) -> None:
    """Average the model weights of ``paths`` (same config) into a model-only checkpoint."""
    if not paths:
        raise DiarizeError("no checkpoint to average")
    ckpts = [load_checkpoint(p) for p in paths]
    config = ckpts[0]["config"]
    for p, c in zip(paths[1:], ckpts[1:], strict=True):
        if c["config"]["model"] != config["model"] or c["config"]["features"] != config["features"]:
            raise DiarizeError(f"{p}: model config differs from {paths[0]}; cannot average")
    avg = {}
    for key, value in ckpts[0]["model"].items():
        if value.is_floating_point():
            avg[key] = sum(c["model"][key].double() for c in ckpts).div(len(ckpts)).to(value.dtype)
        else:
            avg[key] = value
    payload = {
        k: v
        for k, v in ckpts[-1].items()
        if k in ("format", "version", "versions", "config", "epoch", "step")
    }
    payload["model"] = avg
    payload["averaged"] = [str(p) for p in paths]
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
