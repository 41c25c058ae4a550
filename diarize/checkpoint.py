"""Self-describing checkpoints: config + weights (+ training state), loaded safely.

A checkpoint is a plain dict::

    {"format": "diarize-eend-eda", "version": 1, "versions": {...},
     "config": asdict(ExperimentConfig), "model": state_dict,
     # optional: a speaker encoder for linking (tools/export_model.py --speaker):
     "speaker": {"config": asdict(SpeakerConfig), "model": state_dict},
     # optional: a pretrained speaker-embedding model to link with instead, and the
     # InferConfig fields tuned for it (tools/export_model.py --embedding):
     "embedding": {"kind": "campplus", "config": {...}, "model": state_dict, "infer": {...}},
     # training checkpoints only:
     "epoch": int, "step": int, "optimizer": ..., "scheduler": ..., "rng": ..., "history": [...]}

It is always read with ``torch.load(..., weights_only=True)``: a checkpoint is untrusted input.
"""

from __future__ import annotations

import os
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import diarize
from diarize.config import ExperimentConfig, from_dict, to_dict, with_fields
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
        raise DiarizeError(
            f"{path}: not a loadable diarize checkpoint ({_load_failure(e)})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != kind:
        what = "EEND-EDA" if kind == FORMAT else "speaker encoder"
        raise DiarizeError(f"{path}: not a diarize {what} checkpoint (no '{kind}' format tag)")
    if not isinstance(ckpt.get("version", 0), int) or ckpt.get("version", 0) > VERSION:
        raise DiarizeError(
            f"{path}: checkpoint format version {ckpt['version']!r} is not one this diarize reads ({VERSION})"
        )
    missing = [key for key in ("config", "model") if not isinstance(ckpt.get(key), dict)]
    if missing:
        raise DiarizeError(f"{path}: incomplete checkpoint: no {' or '.join(missing)} entry")
    return ckpt


def _load_failure(e: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words. PyTorch's own
    message advises retrying with ``weights_only=False``: never for a file we did not write."""
    text = str(e).strip()
    if "Weights only load failed" in text:
        detail = text.split("WeightsUnpickler error:")[-1].strip().splitlines()
        what = detail[0].strip() if detail and "WeightsUnpickler" in text else ""
        return "it holds something other than tensors and plain data, which is never unpickled" + (
            f": {what[:120]}" if what else ""
        )
    if isinstance(e, EOFError) or not text:
        return "empty or truncated file"
    return text.splitlines()[0].split(". ")[0][:200]


def config_of(ckpt: dict[str, Any], where: str = "checkpoint") -> ExperimentConfig:
    return from_dict(ExperimentConfig, ckpt["config"], where=f"{where} config")


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
    config = config_of(ckpt, where)
    model = build_model(_without_pretrained_source(config))
    _load_weights(
        model, ckpt["model"], f"{where}: weights do not match the model its config describes"
    )
    _check_finite_weights(model, where)
    return model.to(device).eval(), config


def _check_finite_weights(module: torch.nn.Module, where: str) -> None:
    """A DiarizeError naming the first parameter or buffer holding NaN or inf (a training
    run that diverged, or a damaged file): such a model outputs nothing but NaN."""
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise DiarizeError(
                f"{where}: weight {name} holds {bad} NaN/inf value(s) of {tensor.numel()}: "
                "the training run diverged or the file is damaged"
            )


def load_speaker_encoder(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """The speaker encoder a diarization checkpoint carries (key ``"speaker"``), in eval mode
    on ``device``, or None when it has none (linking then compares voice profiles)."""
    return speaker_encoder_in(load_checkpoint(path), str(path), device)


def speaker_encoder_in(ckpt: dict[str, Any], where: str, device: str | torch.device = "cpu"):
    """The speaker encoder of a loaded diarization checkpoint on ``device``, or None."""
    if "speaker" not in ckpt:
        return None
    return speaker_encoder_of(ckpt["speaker"], where).to(device)


def embedding_in(
    ckpt: dict[str, Any], where: str, device: str | torch.device = "cpu"
) -> tuple[Any, dict[str, Any]]:
    """The pretrained speaker-embedding model a loaded diarization checkpoint carries (key
    ``"embedding"``) in eval mode on ``device``, and the InferConfig fields stored for
    linking with it; ``(None, {})`` when it carries none."""
    from diarize.embeddings import from_checkpoint

    if "embedding" not in ckpt:
        return None, {}
    entry = ckpt["embedding"]
    if not isinstance(entry, dict) or not {"kind", "config", "model"} <= entry.keys():
        raise DiarizeError(f"{where}: malformed embedding entry (no kind, config and model)")
    if not isinstance(entry.get("infer", {}), dict):
        raise DiarizeError(f"{where}: malformed embedding entry (infer is not a mapping)")
    model = from_checkpoint(
        {k: entry[k] for k in ("kind", "config", "model")}, f"{where} embedding"
    )
    _check_finite_weights(model, f"{where} embedding")
    return model.to(device).eval(), dict(entry.get("infer", {}))


def speaker_encoder_of(entry: Any, where: str):
    """Rebuild a speaker encoder from ``{"config": ..., "model": state_dict}``."""
    from diarize.models.speaker import SpeakerConfig, SpeakerEncoder

    if not isinstance(entry, dict) or not isinstance(entry.get("model"), dict):
        raise DiarizeError(f"{where}: malformed speaker encoder entry")
    encoder = SpeakerEncoder(from_dict(SpeakerConfig, entry.get("config"), f"{where} speaker"))
    _load_weights(
        encoder, entry["model"], f"{where}: speaker encoder weights do not match its config"
    )
    _check_finite_weights(encoder, f"{where} speaker encoder")
    return encoder.eval()


def _load_weights(module: torch.nn.Module, state: dict, mismatch: str) -> None:
    """``module.load_state_dict(state)``; a mismatch is one DiarizeError line: ``mismatch (why)``."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise DiarizeError(f"{mismatch} ({str(e).splitlines()[0]})") from None


def _without_pretrained_source(config: ExperimentConfig) -> ExperimentConfig:
    """The config to rebuild a trained model with: the weights come from the checkpoint,
    so a pretrained WavLM or CAM++ file named in the config is not read (it may not exist
    here)."""
    wavlm = replace(config.features.wavlm, checkpoint="")
    campplus = replace(config.features.campplus, checkpoint="")
    return replace(config, features=replace(config.features, wavlm=wavlm, campplus=campplus))


def export_model(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    max_mb: float = 25.0,
    infer: dict[str, Any] | None = None,
    speaker: str | os.PathLike | None = None,
    embedding: str | os.PathLike | None = None,
    embedding_infer: dict[str, Any] | None = None,
) -> tuple[float, str]:
    """Write a model to ship from checkpoint ``src``: weights + config only (no optimiser
    or RNG state), float16 storage when float32 would exceed ``max_mb`` (weights are cast
    back to float32 on load), inference settings ``infer`` (InferConfig fields, nested
    ``link``) replacing the stored ones, and the speaker encoder of ``speaker`` (a file of
    :func:`save_speaker_encoder`). ``embedding``: a pretrained speaker-embedding model (a
    path or a name, :func:`diarize.embeddings.load_embedding`) to link with by default,
    stored float32 with its linking settings: those tuned for its kind
    (:data:`~diarize.inference.linking.PRETRAINED_LINKING`) with ``embedding_infer`` over
    them. -> (size in MB, first 16 hex digits of its sha256)."""
    import hashlib

    ckpt = load_checkpoint(src)
    out = {k: ckpt[k] for k in _SHIPPED if k in ckpt}
    if speaker is not None:
        entry = load_checkpoint(speaker, kind=SPEAKER_FORMAT)
        speaker_encoder_of(entry, str(speaker))  # fails here, not at inference, if broken
        out["speaker"] = {"config": entry["config"], "model": entry["model"]}
    if embedding is not None:
        out["embedding"] = _embedding_entry(embedding, embedding_infer or {})
    if infer:
        config = config_of(ckpt)
        tuned = with_fields(config.infer, infer, "inference settings")
        out["config"] = to_dict(replace(config, infer=tuned))
    size = sum(v.numel() * v.element_size() for v in out["model"].values()) / 2**20
    if size > max_mb:
        out["model"] = {k: v.half() if v.is_floating_point() else v for k, v in out["model"].items()}  # fmt: skip
    with atomic_path(dst) as tmp:
        torch.save(out, tmp)
    return Path(dst).stat().st_size / 2**20, hashlib.sha256(Path(dst).read_bytes()).hexdigest()[:16]


_SHIPPED = ("format", "version", "versions", "config", "model", "epoch", "step", "averaged", "speaker", "embedding")  # fmt: skip


def _embedding_entry(spec: str | os.PathLike, overrides: dict[str, Any]) -> dict[str, Any]:
    """The ``"embedding"`` entry of a checkpoint: the model of ``spec`` and its linking
    settings (tuned for its kind, ``overrides`` over them; checked here)."""
    from diarize.config import InferConfig, merge_overrides
    from diarize.embeddings import load_embedding
    from diarize.inference.linking import PRETRAINED_LINKING

    model = load_embedding(spec)
    infer = merge_overrides(dict(PRETRAINED_LINKING.get(model.kind, {})), overrides)
    with_fields(InferConfig(), infer, "embedding inference settings")  # fails now, not later
    return {**model.checkpoint(), "infer": infer}


def save_speaker_encoder(path: str | os.PathLike, encoder: torch.nn.Module, **extra: Any) -> None:
    """Write a speaker encoder on its own (:data:`SPEAKER_FORMAT`: config, weights and
    ``extra``, e.g. its class names), atomically; ``export_model(speaker=path)`` puts it
    into a diarization checkpoint."""
    from dataclasses import asdict

    payload = {
        "format": SPEAKER_FORMAT,
        "version": VERSION,
        "config": asdict(encoder.config),
        "model": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


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
