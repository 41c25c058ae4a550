"""Configuration dataclasses. YAML files in ``configs/`` map onto them section by section.

An experiment is an :class:`ExperimentConfig`; its ``asdict`` travels inside every
checkpoint, so a checkpoint alone rebuilds the model. Unknown keys are an error.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from diarize.utils import DiarizeError


@dataclass(frozen=True)
class FbankConfig:
    n_mels: int = 23  # mel bands (EEND uses 23 at 8 kHz; 80 is common at 16 kHz)
    win_length: int = 400  # samples (25 ms at 16 kHz)
    hop_length: int = 160  # samples (10 ms at 16 kHz)
    n_fft: int = 512  # FFT size
    context: int = 7  # frames spliced on each side (EEND: +-7)
    subsampling: int = 10  # keep one spliced frame in this many (10 ms x 10 = 100 ms)


@dataclass(frozen=True)
class WavLMConfig:
    shape: str = "base"  # tiny | base | base_plus | large (architecture only)
    checkpoint: str = ""  # torchaudio bundle name, HF directory or Microsoft .pt; "" = random init
    layers: int = 0  # keep hidden states up to this layer (0 = all)
    frame_shift: float = 0.08  # seconds per output frame (0.02 x an integer)
    freeze: str = "all"  # all | cnn | none: which part of WavLM stays frozen
    grad_checkpointing: bool = False  # recompute Transformer layers in backward
    quantize: bool = False  # dynamic int8 Linear layers (CPU inference only)


@dataclass(frozen=True)
class CAMPPlusFrontendConfig:
    """Frozen frame-level features of the CAM++ speaker model (diarize.features.campplus).
    The architecture fields must agree with the checkpoint's shapes (3D-Speaker's defaults)."""

    checkpoint: str = ""  # 3D-Speaker CAM++ state dict (campplus_cn_en_common.pt); "" = random
    frame_shift: float = 0.1  # seconds per output frame (0.02 x an integer)
    feat_dim: int = 80  # Kaldi log-mel bands CAM++ takes
    head_channels: int = 32  # channels of its 2-d convolutional front
    init_channels: int = 128  # channels of its first TDNN
    growth_rate: int = 32  # channels each dense layer adds
    bn_size: int = 4  # bottleneck width of a dense layer, in growth rates


@dataclass(frozen=True)
class FeatureConfig:
    kind: str = "fbank"  # fbank | wavlm | campplus: the frontend turning raw audio into frames
    sample_rate: int = 16000  # Hz the frontend expects
    fbank: FbankConfig = field(default_factory=FbankConfig)
    wavlm: WavLMConfig = field(default_factory=WavLMConfig)
    campplus: CAMPPlusFrontendConfig = field(default_factory=CAMPPlusFrontendConfig)


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 256  # Transformer and attractor dimension
    n_layers: int = 4  # Transformer encoder layers
    n_heads: int = 4  # attention heads
    ff_dim: int = 2048  # feed-forward dimension
    dropout: float = 0.1  # dropout in the encoder
    max_speakers: int = 8  # cap on attractors decoded at inference
    attractor_threshold: float = 0.5  # existence probability below which decoding stops
    shuffle_frames: bool = True  # shuffle frames in time before the EDA encoder (training)


@dataclass(frozen=True)
class TrainConfig:
    train_data: str = (
        ""  # diarization directory (wav.scp + rttm) to train on; several: comma-separated
    )
    dev_data: str = ""  # diarization directory for validation loss and DER ("" = none)
    dev_max_chunks: int = 0  # validate on the first N dev chunks only (0 = all)
    out_dir: str = "exp/default"  # checkpoints, log and resolved config go here
    chunk_frames: int = 500  # frames per training example
    batch_size: int = 32  # examples per optimizer step (before accumulation)
    grad_accum: int = 1  # batches accumulated per optimizer step
    epochs: int = 50  # passes over the training chunks
    epoch_chunks: int = 0  # chunks drawn (without replacement) per epoch; 0 = all of them
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1.0  # peak learning rate (a factor of the Noam schedule when scheduler=noam)
    frontend_lr: float = 0.0  # learning rate of a pretrained frontend (0 = same as lr)
    scheduler: str = "noam"  # noam | warmup (linear warm-up then constant) | constant
    warmup_steps: int = 25000  # optimizer steps of warm-up
    weight_decay: float = 0.0  # AdamW weight decay
    grad_clip: float = 5.0  # max gradient norm (0 = off)
    attractor_weight: float = 1.0  # weight of the attractor-existence loss
    max_speakers: int = 4  # examples with more speakers are dropped from training
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    num_workers: int = 0  # DataLoader workers
    seed: int = 777  # seeds data order, initialisation and dropout
    log_interval: int = 50  # optimizer steps between log lines
    keep_checkpoints: int = 0  # keep only the newest N epoch checkpoints (0 = all)
    feature_cache: str = (
        ""  # directory caching a frozen frontend's states ("" = off; campplus, wavlm freeze: all)
    )


@dataclass(frozen=True)
class LinkConfig:
    """Constants of speaker linking and of the voice split (:mod:`diarize.inference.linking`,
    :mod:`diarize.inference.local`), chosen with ``link_threshold`` on three draws of
    ``bench/long_audio.py`` (seeds 1-3, held-out persons) and on ``sim_dev2``. A checkpoint
    written before they were stored loads with these defaults, the values it was tuned with."""

    min_active_frames: int = 2  # a local speaker active in fewer frames of its window is ignored
    overlap_weight: float = 2.0  # activity agreement on shared frames against the voice similarity
    min_voice_frames: int = 20  # frames alone in its window for a local speaker's voice to count
    f0_weight: float = 30.0  # weight of log F0 against the 40 log-mel bands in a voice vector
    voice_floor: float = 20.0  # keeps one voice's profiles similar when nobody contrasts them
    split_cost: float = (
        600.0  # Ward merge cost (frames x squared distance) below which turns are one voice
    )
    min_turn_frames: int = 5  # frames alone a turn needs to take part in the voice split
    # clustering of the local speakers heard alone: "average" linkage, "centroid" linkage
    # then each local speaker re-assigned to its nearest cluster (pyannote 3.x), or
    # "spectral" (speaker count from the eigen-gap); all keep the cannot-link pairs apart
    method: str = "average"
    # clusters of fewer local speakers are dissolved into the nearest larger ones after
    # clustering (pyannote's min_cluster_size; 1 = off)
    min_cluster_size: int = 1
    # spectral: each local speaker keeps this fraction of its most similar others in the
    # affinity (3D-Speaker's p-pruning; 1 = all)
    spectral_keep: float = 0.05
    # spectral: each local speaker keeps this many of its most similar others instead (0 =
    # the fraction above): a count suits short and long recordings alike, where a fraction
    # keeps 6 neighbours (the floor) of 60 local speakers and 40 of 800
    spectral_neighbours: int = 0
    # spectral: with spectral_neighbours, keep at least this fraction of the local speakers
    # as neighbours (0 = exactly spectral_neighbours): a 60-minute meeting has about twice
    # the local speakers per person of a 20-minute one, and needs more to stay connected
    spectral_neighbours_fraction: float = 0.0
    # spectral: the Laplacian whose eigen-gap counts the speakers and whose eigenvectors are
    # clustered: "unnormalised" D - A (3D-Speaker's), or "normalised" I - D^-1/2 A D^-1/2
    # with unit-length rows (Ng, Jordan and Weiss), whose count depends far less on the
    # number of neighbours kept (README, "Linking")
    spectral_laplacian: str = "unnormalised"
    # after clustering, a cluster is cut in two (diarize.inference.linking.split_clusters)
    # while the centroids of its two halves have a cosine below this (0 = never): the
    # eigen-gap tends to merge two persons of a short conversation when an encoder hears
    # them alike
    split_below: float = 0.0
    # before clustering, a local speaker is cut where two consecutive parts of its window
    # (cut where other windows start or stop), each heard alone for part_min_seconds, have
    # embeddings of cosine below this (0 = never; diarize.inference.parts): the network
    # sometimes gives one local speaker the turns of two persons
    part_split_below: float = 0.0
    part_min_seconds: float = 1.0

    def __post_init__(self) -> None:
        _check_at_least(self, min_active_frames=1, min_voice_frames=1, min_turn_frames=1)
        _check_at_least(self, min_cluster_size=1, spectral_keep=0.0, spectral_neighbours=0)
        _check_at_least(self, split_below=0.0, spectral_neighbours_fraction=0.0)
        _check_at_least(self, part_split_below=0.0, part_min_seconds=0.0)
        for name in ("spectral_keep", "spectral_neighbours_fraction"):
            if getattr(self, name) > 1:
                raise DiarizeError(f"link.{name} must be at most 1, got {getattr(self, name)}")
        _check_at_least(self, overlap_weight=0.0, f0_weight=0.0, voice_floor=0.0, split_cost=0.0)
        if self.spectral_laplacian not in SPECTRAL_LAPLACIANS:
            raise DiarizeError(
                f"link.spectral_laplacian must be one of {', '.join(SPECTRAL_LAPLACIANS)}, "
                f"got {self.spectral_laplacian!r}"
            )
        if self.method not in LINK_METHODS:
            raise DiarizeError(
                f"link.method must be one of {', '.join(LINK_METHODS)}, got {self.method!r}"
            )


LINK_METHODS = ("average", "centroid", "spectral")  # LinkConfig.method
SPECTRAL_LAPLACIANS = ("unnormalised", "normalised")  # LinkConfig.spectral_laplacian


@dataclass(frozen=True)
class InferConfig:
    threshold: float = 0.5  # speech activity threshold on each speaker's posterior
    # existence probability above which a window decodes another attractor (local speaker);
    # 0 = the model's own (model.attractor_threshold)
    attractor_threshold: float = 0.0
    median: int = 11  # median filter width in frames (1 = off)
    min_duration_on: float = 0.0  # seconds: drop shorter turns
    min_duration_off: float = 0.0  # seconds: fill shorter pauses within a speaker
    window: float = 0.0  # seconds per window (0 = the training chunk length)
    hop: float = 0.0  # seconds between windows (0 = half a window)
    batch_size: int = 8  # windows per forward pass
    # seconds of audio a frozen frontend (CAM++, WavLM with freeze: all) sees at once: its
    # features are computed once per block, blocks cut at multiples of it as training chunks
    # are, and each window takes its frames from them (0: computed for each window alone)
    frontend_block: float = 0.0
    # similarity (speaker embeddings or voices, attractors, activity agreement; see
    # diarize.inference.linking) above which the local speakers of two windows are one
    # speaker, when their number is unknown (0.3 suits voice profiles; the bundled model,
    # which links by speaker embeddings, stores 0.55)
    link_threshold: float = 0.3
    # split a local speaker whose turns sound like several persons (diarize.inference.local)
    split_voices: bool = True
    # frames whose peak amplitude stays below this (-80 dBFS: digital or dithered silence)
    # are nobody's speech, whatever the network says about them
    silence_peak: float = 1e-4
    link: LinkConfig = field(default_factory=LinkConfig)  # linking and voice-split constants

    def __post_init__(self) -> None:
        _check_at_least(self, median=1, batch_size=1)
        _check_at_least(self, window=0.0, hop=0.0, min_duration_on=0.0, min_duration_off=0.0)
        _check_at_least(self, silence_peak=0.0, frontend_block=0.0)
        _check_finite(self, "window", "hop", "min_duration_on", "min_duration_off", "silence_peak",
                      "frontend_block")  # fmt: skip
        for name in ("window", "hop", "min_duration_on", "min_duration_off", "frontend_block"):
            if getattr(self, name) > MAX_SECONDS:
                raise DiarizeError(
                    f"{name} must be at most {MAX_SECONDS:g} s, got {getattr(self, name)}"
                )
        if not 0 < self.threshold < 1:
            raise DiarizeError(
                f"threshold must be between 0 and 1 (exclusive), got {self.threshold}"
            )
        if not 0 <= self.attractor_threshold < 1:
            raise DiarizeError(
                "attractor_threshold must be 0 (the model's own) or between 0 and 1, got "
                f"{self.attractor_threshold}"
            )
        if not -1 <= self.link_threshold <= 1:
            raise DiarizeError(
                f"link_threshold must be between -1 and 1 (a similarity), got {self.link_threshold}"
            )
        if 0 < self.frontend_block < MIN_WINDOW:
            raise DiarizeError(
                f"frontend_block must be 0 (per window) or at least {MIN_WINDOW:g} s, got "
                f"{self.frontend_block}"
            )
        if 0 < self.window < MIN_WINDOW:
            raise DiarizeError(
                f"window must be 0 (the training chunk) or at least {MIN_WINDOW:g} s, got "
                f"{self.window}: a shorter window holds too little context to tell speakers apart"
            )


# Shortest inference window (seconds). The bundled model, trained on 20 s chunks, gives
# DER 55-80 % on the example with 0.5-5 s windows; below about a second of context the
# output is empty or noise (0.1 s gave an empty RTTM).
MIN_WINDOW = 1.0
MAX_SECONDS = 1e9  # longest time setting (about 31 years): frame counts stay exact integers


def _check_at_least(config: Any, **floors: float) -> None:
    """A DiarizeError naming the first field of ``config`` below its floor (NaN included)."""
    for name, floor in floors.items():
        value = getattr(config, name)
        if not value >= floor:
            raise DiarizeError(f"{name} must be >= {floor:g}, got {value}")


def _check_finite(config: Any, *names: str) -> None:
    """A DiarizeError naming the first field of ``config`` that is NaN or infinite."""
    for name in names:
        value = getattr(config, name)
        if not math.isfinite(value):
            raise DiarizeError(f"{name} must be a finite number, got {value}")


@dataclass(frozen=True)
class ExperimentConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)


def from_dict(cls: type, data: dict[str, Any] | None, where: str = "") -> Any:
    """Build dataclass ``cls`` from a (nested) dict; unknown keys and wrong types raise."""
    data = data or {}
    if not isinstance(data, dict):
        raise DiarizeError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(map(_shown, set(data) - names))  # YAML keys may be numbers or null
    if unknown:
        raise DiarizeError(
            f"{where or cls.__name__}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except DiarizeError as e:  # a range check of __post_init__: say where the value came from
        raise DiarizeError(f"{where}: {e}" if where else str(e)) from None


def _shown(key: Any) -> str:
    """A key as an error message shows it: as written, or quoted when it is not plain text
    (a newline inside would break the one-line message)."""
    text = str(key)
    return text if text and text.isprintable() and text.strip() == text else repr(key)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 2**1023:  # float() would overflow
            raise DiarizeError(f"{where}: {value} is too large for a float")
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 2e-5 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise DiarizeError(f"{where}: expected float, got {value!r}") from None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise DiarizeError(f"{where}: expected a list, got {value!r}")
        return tp.__origin__(value)
    if (
        isinstance(tp, type)
        and not isinstance(value, tp)
        or (tp is int and isinstance(value, bool))
    ):
        raise DiarizeError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def load_config(
    path: str | os.PathLike | None, overrides: dict[str, Any] | None = None
) -> ExperimentConfig:
    """Read a YAML experiment config (sections ``features``, ``model``, ``train``, ``infer``)
    on top of the defaults, then apply ``overrides`` (same nesting)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise DiarizeError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError) as e:
            raise DiarizeError(f"{path}: cannot read ({type(e).__name__})") from None
        except yaml.YAMLError as e:
            raise DiarizeError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise DiarizeError(
                f"{path}: expected sections (features, model, train, infer), got {type(data).__name__} {str(data)[:60]!r}"
            )
    data = merge_overrides(data, overrides or {})
    return from_dict(ExperimentConfig, data, where=str(path) if path else "")


def merge_overrides(base: dict, extra: dict) -> dict:
    """``base`` with the (nested) values of ``extra``; a nested mapping of ``extra``
    replaces a value of ``base`` that is not one."""
    out = dict(base)
    for k, v in extra.items():
        inner = out.get(k) if isinstance(out.get(k), dict) else {}
        out[k] = merge_overrides(inner, v) if isinstance(v, dict) else v
    return out


def parse_value(text: str) -> Any:
    """A command-line value: a number if it reads as one (YAML 1.1 would leave ``2e-5`` a
    string), else YAML (``true``, ``[1, 2]``, plain strings)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DiarizeError(f"cannot read {text[:60]!r} as a value ({reason})") from None


def parse_sweeps(items: list[str]) -> list[dict[str, Any]]:
    """``["a=1,2", "b=x"]`` -> every combination ``[{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]``
    (values read by :func:`parse_value`), in order; ``[{}]`` for no items."""
    import itertools

    keys = [item.partition("=")[0] for item in items]
    values = [[parse_value(v) for v in item.partition("=")[2].split(",")] for item in items]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def parse_overrides(items: list[str], option: str = "--set") -> dict[str, Any]:
    """``["a.b=1", "a.c=x"]`` -> ``{"a": {"b": 1, "c": "x"}}``, for :func:`load_config` and
    :func:`with_fields`; ``option`` names the command-line option in errors."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DiarizeError(f"{option} expects [SECTION.]KEY=VALUE, got {item!r}")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise DiarizeError(f"{option} {item!r}: {part} was given a value, not keys")
        try:
            node[leaf] = parse_value(value)
        except DiarizeError as e:
            raise DiarizeError(f"{option} {item!r}: {e}") from None
    return out


def with_fields(config: Any, overrides: dict[str, Any], where: str = "") -> Any:
    """``config`` (a config dataclass) with some (nested) fields replaced, checked as a
    config file's would be: unknown names and wrong types are a DiarizeError. A nested
    value may be a dict or a dataclass."""
    if not overrides:
        return config
    plain = {k: to_dict(v) if dataclasses.is_dataclass(v) else v for k, v in overrides.items()}
    return from_dict(type(config), merge_overrides(to_dict(config), plain), where)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
