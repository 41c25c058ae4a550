"""Find, recognise and load pretrained speaker-embedding models.

:func:`load_embedding` takes what a user types: a path (a file, or a directory holding one)
or a hub name from :data:`HUB` (``campplus-zh-en``...). A path always works offline. A name
is looked up in the caches its hub's own tools fill (Hugging Face, ModelScope), then in
diarize's cache, then downloaded there; where the hub cannot be reached it is one
:class:`~diarize.utils.DiarizeError` line saying which file to fetch by hand.

Formats are recognised by their keys, not their names:

| format | file | keys |
|---|---|---|
| 3D-Speaker CAM++ | ``campplus_cn_en_common.pt``, ``campplus_voxceleb.bin`` | ``head.*``, ``xvector.*`` |
| WeSpeaker ResNet | ``avg_model.pt`` | ``conv1.weight``, ``layer1.*``, ``seg_1.*`` |
| pyannote WeSpeaker | ``pytorch_model.bin`` | ``state_dict`` of ``resnet.*``, ``hyper_parameters`` |
| SpeechBrain ECAPA | ``embedding_model.ckpt`` (+ ``hyperparams.yaml``) | ``blocks.0.conv.conv.*``, ``asp.*`` |
| diarize | a diarization checkpoint's ``"embedding"`` entry | ``kind``, ``config``, ``model`` |

Nothing is unpickled beyond tensors and plain values (``torch.load(weights_only=True)``);
pyannote's checkpoints name a few of its classes (task specifications, the torch version),
which load as inert placeholders.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from diarize.embeddings.base import SpeakerEmbedding, config_from_dict
from diarize.embeddings.campplus import CAMPPlus, CAMPPlusConfig, campplus_config
from diarize.embeddings.ecapa import ECAPA, ECAPAConfig, ecapa_config, read_hyperparams
from diarize.embeddings.fbank import KaldiFbankConfig
from diarize.embeddings.resnet import PYANNOTE_FBANK, ResNet, ResNetConfig, resnet_config
from diarize.utils import DiarizeError, atomic_path

KINDS = {
    "campplus": (CAMPPlus, CAMPPlusConfig),
    "resnet": (ResNet, ResNetConfig),
    "ecapa": (ECAPA, ECAPAConfig),
}
DOWNLOAD_TIMEOUT = 30.0  # seconds without an answer before a download gives up


@dataclass(frozen=True)
class HubModel:
    hub: str  # "modelscope" | "huggingface"
    repo: str  # the hub's model id
    files: tuple[str, ...]  # files to fetch; the last one holds the weights
    about: str  # one line for --help and the README


HUB = {
    "campplus-zh-en": HubModel(
        "modelscope",
        "iic/speech_campplus_sv_zh_en_16k-common_advanced",
        ("campplus_cn_en_common.pt",),
        "CAM++ 192-d, 3D-Speaker, Mandarin + English (~200k speakers)",
    ),
    "campplus-zh": HubModel(
        "modelscope",
        "iic/speech_campplus_sv_zh-cn_16k-common",
        ("campplus_cn_common.bin",),
        "CAM++ 192-d, 3D-Speaker, Mandarin (~200k speakers)",
    ),
    "campplus-voxceleb": HubModel(
        "modelscope",
        "iic/speech_campplus_sv_en_voxceleb_16k",
        ("campplus_voxceleb.bin",),
        "CAM++ 512-d, 3D-Speaker, VoxCeleb2",
    ),
    "wespeaker-resnet34": HubModel(
        "huggingface",
        "pyannote/wespeaker-voxceleb-resnet34-LM",
        ("pytorch_model.bin",),
        "WeSpeaker ResNet34 256-d (pyannote 3.x's embedding), VoxCeleb2",
    ),
    "ecapa-voxceleb": HubModel(
        "huggingface",
        "speechbrain/spkrec-ecapa-voxceleb",
        ("hyperparams.yaml", "embedding_model.ckpt"),
        "SpeechBrain ECAPA-TDNN 192-d, VoxCeleb1+2",
    ),
}
HUB_URLS = {
    "huggingface": "https://huggingface.co/{repo}/resolve/main/{file}",
    "modelscope": "https://modelscope.cn/models/{repo}/resolve/master/{file}",
}
PYANNOTE_CLASSES = (
    "pyannote.audio.core.task.Specifications",
    "pyannote.audio.core.task.Problem",
    "pyannote.audio.core.task.Resolution",
)


def load_embedding(spec: str | os.PathLike, device: str | torch.device = "cpu") -> SpeakerEmbedding:
    """A path or a hub name (:data:`HUB`) -> the model, in eval mode on ``device``."""
    return load_path(resolve(spec)).to(device).eval()


def resolve(spec: str | os.PathLike) -> Path:
    """An existing path as it is; a hub name -> its weights file, cached or downloaded."""
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if str(spec) not in HUB:
        raise DiarizeError(f"{spec}: no such file, and not an embedding name ({', '.join(HUB)})")
    entry = HUB[str(spec)]
    return [cached(str(spec), entry, f) or download(str(spec), entry, f) for f in entry.files][-1]


def cache_dir() -> Path:
    """Where downloaded models go: ``$DIARIZE_CACHE/embeddings`` (default ``~/.cache/diarize``)."""
    return Path(os.environ.get("DIARIZE_CACHE", "~/.cache/diarize")).expanduser() / "embeddings"


def cached(name: str, entry: HubModel, file: str) -> Path | None:
    """The file from the hub tools' own caches or diarize's, if one has it."""
    candidates = [cache_dir() / name / file]
    if entry.hub == "huggingface":
        hf_home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
        hf_cache = Path(os.environ.get("HF_HUB_CACHE", hf_home / "hub")).expanduser()
        folder = hf_cache / f"models--{entry.repo.replace('/', '--')}" / "snapshots"
        candidates += sorted(folder.glob(f"*/{file}"))
    else:
        ms_cache = Path(os.environ.get("MODELSCOPE_CACHE", "~/.cache/modelscope/hub"))
        org, model = entry.repo.split("/")
        for base in (ms_cache.expanduser(), ms_cache.expanduser() / "models"):
            candidates += [base / o / model / file for o in (org, "damo")]
    return next((p for p in candidates if p.is_file()), None)


def download(name: str, entry: HubModel, file: str) -> Path:
    """Fetch one file of a hub model into :func:`cache_dir`; one error line where it fails."""
    url = HUB_URLS[entry.hub].format(repo=entry.repo, file=file)
    dest = cache_dir() / name / file
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as answer:
            with atomic_path(dest) as tmp, open(tmp, "wb") as out:
                while chunk := answer.read(1 << 20):
                    out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise DiarizeError(
            f"cannot download {name} from {entry.hub} ({reason}); "
            f"fetch {url} yourself and pass the file's path"
        ) from None
    return dest


def load_path(path: Path) -> SpeakerEmbedding:
    """A weights file, or a directory holding one, -> the model it describes."""
    if path.is_dir():
        path = weights_in(path)
    return from_object(torch_load(path), path)


def weights_in(folder: Path) -> Path:
    """The weights file of a model directory (a hub snapshot, a WeSpeaker model folder)."""
    for name in ("embedding_model.ckpt", "pytorch_model.bin", "avg_model.pt"):
        if (folder / name).is_file():
            return folder / name
    found = sorted(p for ext in ("pt", "bin", "ckpt") for p in folder.glob(f"*.{ext}"))
    if len(found) != 1:
        raise DiarizeError(
            f"{folder}: expected one weights file (.pt, .bin, .ckpt), found {len(found)}"
        )
    return found[0]


class _Placeholder:
    """Stands in for a class named in a checkpoint that is not needed to use it."""

    def __init__(self, *args, **kwargs) -> None:
        self.args = args

    def __setstate__(self, state: object) -> None:
        self.state = state


def torch_load(path: Path) -> object:
    """``torch.load(weights_only=True)``, pyannote's class names as placeholders."""
    from torch.torch_version import TorchVersion

    allowed = [TorchVersion, *((_Placeholder, name) for name in PYANNOTE_CLASSES)]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds (pickle, zip, EOF, runtime)
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise DiarizeError(f"{path}: not a checkpoint torch can load safely ({first})") from None


def from_object(obj: object, path: Path) -> SpeakerEmbedding:
    """A loaded checkpoint -> the model, whichever of the formats above it is in."""
    if not isinstance(obj, dict):
        raise DiarizeError(f"{path}: not a speaker-embedding checkpoint (a {type(obj).__name__})")
    if {"kind", "config", "model"} <= obj.keys():
        return from_checkpoint(obj, path)
    if isinstance(obj.get("state_dict"), dict):
        return from_pyannote(obj, path)
    state = obj
    if "xvector.tdnn.linear.weight" in state:
        return build(CAMPPlus, lambda: campplus_config(state), state, path)
    if "seg_1.weight" in state and "conv1.weight" in state:
        state = {k: v for k, v in state.items() if not k.startswith("projection.")}
        return build(ResNet, lambda: resnet_config(state), state, path)
    if "asp.tdnn.conv.conv.weight" in state:
        yaml_path = path.parent / "hyperparams.yaml"
        hp = read_hyperparams(yaml_path) if yaml_path.is_file() else None
        return build(ECAPA, lambda: ecapa_config(state, hp), state, path)
    keys = ", ".join(list(map(str, state))[:4])
    raise DiarizeError(
        f"{path}: not a CAM++, WeSpeaker ResNet, pyannote or SpeechBrain ECAPA checkpoint "
        f"(keys: {keys}...)"
    )


def from_pyannote(obj: dict, path: Path) -> SpeakerEmbedding:
    """pyannote's WeSpeaker checkpoint: ``resnet.*`` weights, fbank in ``hyper_parameters``."""
    prefix = "resnet."
    state = {k[len(prefix) :]: v for k, v in obj["state_dict"].items() if k.startswith(prefix)}
    if "seg_1.weight" not in state:
        arch = obj.get("pyannote.audio", {}).get("architecture", {}).get("class", "unknown")
        raise DiarizeError(f"{path}: a pyannote checkpoint of {arch}, not a WeSpeaker embedding")
    hp = obj.get("hyper_parameters") or {}
    if hp.get("use_energy") or not hp.get("snip_edges", True) or hp.get("num_channels", 1) != 1:
        raise DiarizeError(f"{path}: unsupported pyannote fbank settings {hp}")
    fbank = KaldiFbankConfig(
        sample_rate=int(hp.get("sample_rate", PYANNOTE_FBANK.sample_rate)),
        num_mel_bins=int(hp.get("num_mel_bins", PYANNOTE_FBANK.num_mel_bins)),
        frame_length=float(hp.get("frame_length", PYANNOTE_FBANK.frame_length)),
        frame_shift=float(hp.get("frame_shift", PYANNOTE_FBANK.frame_shift)),
        window_type=str(hp.get("window_type", PYANNOTE_FBANK.window_type)),
        round_to_power_of_two=bool(hp.get("round_to_power_of_two", True)),
        scale=PYANNOTE_FBANK.scale,
    )
    return build(ResNet, lambda: resnet_config(state, std_eps=0.0, fbank=fbank), state, path)


def from_checkpoint(entry: dict, path: Path | str = "checkpoint") -> SpeakerEmbedding:
    """The ``{"kind", "config", "model"}`` of :meth:`SpeakerEmbedding.checkpoint` -> the model."""
    if entry["kind"] not in KINDS:
        raise DiarizeError(f"{path}: unknown embedding kind {entry['kind']!r} ({', '.join(KINDS)})")
    cls, config_cls = KINDS[entry["kind"]]
    return build(cls, lambda: config_from_dict(config_cls, entry["config"]), entry["model"], path)


def build(cls: type, config, state: dict, path: Path | str) -> SpeakerEmbedding:
    """cls(config()) with ``state`` loaded strictly; any mismatch is one error line."""
    try:
        model = cls(config())
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise DiarizeError(f"{path}: cannot read a {cls.kind} configuration ({e})") from None
    missing, unexpected = (
        model.state_dict().keys() - state.keys(),
        state.keys() - model.state_dict().keys(),
    )
    if missing or unexpected:
        raise DiarizeError(
            f"{path}: {cls.kind} weights do not match: missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        shape = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), e)
        raise DiarizeError(f"{path}: {cls.kind} weights do not match ({shape})") from None
    return model.eval()
