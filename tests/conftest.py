"""Shared fixtures. Tests build their own tiny inputs (tones, noise, bursts)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_teardown(item):
    if "speechbrain" in sys.modules:
        drop_unloaded_speechbrain_proxies()


def drop_unloaded_speechbrain_proxies() -> list[str]:
    """Remove from ``sys.modules`` the lazy proxies of speechbrain (a test-only reference, in
    the dev extra) that were never loaded; -> their names.

    speechbrain 1.x registers proxies for deprecated paths and optional integrations
    (``speechbrain.k2_integration``, ``speechbrain.lobes.models.flair``...) in ``sys.modules``.
    Reading any attribute of one imports its target, and where the optional package is
    missing (k2, flair, spacy) even ``getattr(proxy, "__file__", None)`` raises ImportError
    (speechbrain only spares callers in ``inspect.py``). Every later walk over ``sys.modules``
    then fails: hypothesis scans it for constants before each ``@given`` example, so
    tests/test_fuzz.py failed with "Please install k2 to use k2" (then FlakyFailure) after any
    test that had imported speechbrain. No test uses those paths."""
    from speechbrain.utils.importutils import LazyModule

    names = [
        name
        for name, module in sys.modules.items()
        if isinstance(module, LazyModule) and module.lazy_module is None
    ]
    for name in names:
        del sys.modules[name]
    return names


@pytest.fixture
def one_thread():
    """Run the test on one torch thread (training tests are small; threads only contend)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


REPOSITORY = Path(__file__).resolve().parents[1]


def load_script(relative: str):
    """The module of a script outside the package (``tools/NAME.py``, ``bench/NAME.py``),
    by its path from the repository root; registered in ``sys.modules`` under its stem
    before it runs, since dataclasses look their module up."""
    path = REPOSITORY / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = sys.modules[path.stem] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_synthetic_set(root, num_recordings: int = 4, seconds: float = 12.0, seed: int = 0):
    """A Kaldi-style diarization directory of 2-speaker "conversations": each speaker is a
    harmonic tone of its own pitch, switched on and off in random turns (some overlap).
    Returns the directory path."""
    from pathlib import Path

    import soundfile as sf

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sr = 16000
    scp, rttm = [], []
    for r in range(num_recordings):
        uri = f"rec{r}"
        wave = np.zeros(int(seconds * sr), np.float32)
        t = np.arange(len(wave)) / sr
        for spk, f0 in enumerate((140.0, 320.0)):
            voice = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3)).astype(np.float32)
            start = rng.uniform(0, 1.5)
            while start < seconds - 0.5:
                end = min(seconds, start + rng.uniform(1.0, 3.0))
                a, b = int(start * sr), int(end * sr)
                wave[a:b] += 0.2 * voice[a:b]
                rttm.append(
                    f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> spk{spk} <NA> <NA>"
                )
                start = end + rng.uniform(0.5, 3.0)
        wave += 0.003 * rng.standard_normal(len(wave)).astype(np.float32)
        sf.write(root / f"{uri}.wav", wave, sr)
        scp.append(f"{uri} {uri}.wav")
    (root / "wav.scp").write_text("\n".join(scp) + "\n")
    (root / "rttm").write_text("\n".join(rttm) + "\n")
    return root


TINY_MODEL = {"d_model": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32}


def tiny_experiment(tmp_path, data, out: str = "exp", features: dict | None = None, **train):
    """An ExperimentConfig small enough to train in seconds on ``data``, writing to
    ``tmp_path / out``; ``train`` overrides TrainConfig fields."""
    from diarize.config import load_config

    fields = dict(
        train_data=str(data), dev_data=str(data), out_dir=str(tmp_path / out), chunk_frames=40,
        batch_size=4, epochs=2, lr=3e-3, scheduler="warmup", warmup_steps=5, log_interval=0,
        seed=3,
    )  # fmt: skip
    fields.update(train)
    features = features or {"fbank": {"n_mels": 16, "context": 2}}
    return load_config(None, {"features": features, "model": TINY_MODEL, "train": fields})
