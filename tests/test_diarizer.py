"""The library entry point: ``diarize.Diarizer`` gives what ``diarize run`` gives, from a
path or a waveform, reports its stages, and reads its settings from the checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from diarize import Diarizer
from diarize.audio import load_audio
from diarize.checkpoint import build_model, load_checkpoint, save_checkpoint
from diarize.cli import main
from diarize.config import ExperimentConfig, InferConfig, LinkConfig, ModelConfig, TrainConfig
from diarize.rttm import read_rttm
from diarize.utils import DiarizeError

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "meeting.flac"
BUNDLED = ROOT / "diarize" / "assets" / "default.pt"
needs_bundled = pytest.mark.skipif(not BUNDLED.exists(), reason="no bundled model")


def turns(annotation) -> list[tuple[float, float, str]]:
    return sorted(
        (round(s.start, 3), round(s.end, 3), str(label))
        for s, _, label in annotation.itertracks(yield_label=True)
    )


@pytest.fixture(scope="module")
def bundled():
    return Diarizer.from_pretrained()


@needs_bundled
def test_library_gives_the_turns_of_diarize_run(bundled, tmp_path):
    result = bundled(str(EXAMPLE))
    assert main(["run", str(EXAMPLE), "-o", str(tmp_path)]) == 0
    (written,) = read_rttm(tmp_path / "meeting.rttm").values()
    assert result.uri == "meeting" and len(result.annotation.labels()) >= 1
    assert turns(result.annotation) == turns(written)
    assert result.frame_shift == pytest.approx(0.1) and result.probs.shape[1] >= 1
    assert abs(len(result.probs) - result.duration / 0.1) < 5  # (frames, speakers)
    assert not result.exclusive.get_overlap()


@needs_bundled
def test_a_44k_stereo_waveform_gives_the_result_of_its_file(bundled, tmp_path):
    mono = load_audio(EXAMPLE, 44100, duration=40.0)  # (samples,) at 44.1 kHz
    stereo = np.stack([0.8 * mono, 0.6 * mono], axis=1)  # (samples, 2): left louder
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    from_file = bundled(path)
    from_numpy = bundled((stereo, 44100), uri="stereo")
    from_torch = bundled({"waveform": torch.from_numpy(stereo.T.copy()), "sample_rate": 44100})
    assert len(from_file.annotation.labels()) >= 1
    assert turns(from_numpy.annotation) == turns(from_file.annotation)
    assert turns(from_torch.annotation) == turns(from_file.annotation)
    assert from_torch.uri == "waveform" and from_torch.audio is None
    assert from_numpy.duration == pytest.approx(40.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random tiny checkpoint (10 s windows) whose infer config is today's defaults, and a
    copy written the way checkpoints were before the linking constants were stored."""
    root = tmp_path_factory.mktemp("tiny")
    config = ExperimentConfig(
        model=ModelConfig(d_model=16, n_layers=1, n_heads=2, ff_dim=32),
        train=TrainConfig(chunk_frames=100),
        infer=InferConfig(link_threshold=0.4),
    )
    torch.manual_seed(0)
    save_checkpoint(root / "tiny.pt", build_model(config), config)
    old = load_checkpoint(root / "tiny.pt")
    for key in ("link", "silence_peak"):
        del old["config"]["infer"][key]
    torch.save(old, root / "old.pt")
    rng = np.random.default_rng(0)
    sf.write(root / "noise.wav", (0.1 * rng.standard_normal(16000 * 25)).astype(np.float32), 16000)
    return root


def test_old_checkpoints_load_with_todays_linking_constants(tiny):
    old = Diarizer.from_pretrained(tiny / "old.pt")
    assert old.config.link == LinkConfig() and old.config.silence_peak == 1e-4
    assert old.config.link_threshold == 0.4  # what the checkpoint stored
    assert old.speaker_encoder is None


def test_overrides_replace_the_stored_settings_and_are_checked(tiny):
    d = Diarizer.from_pretrained(tiny / "tiny.pt", threshold=0.7, link={"split_cost": 100})
    assert d.config.threshold == 0.7 and d.config.link.split_cost == 100.0
    assert d.config.link.min_voice_frames == LinkConfig().min_voice_frames
    with pytest.raises(DiarizeError, match="unknown key"):
        Diarizer.from_pretrained(tiny / "tiny.pt", treshold=0.7)
    with pytest.raises(DiarizeError, match="median must be >= 1"):
        Diarizer.from_pretrained(tiny / "tiny.pt", median=0)
    with pytest.raises(DiarizeError, match="hop"):
        Diarizer.from_pretrained(tiny / "tiny.pt", window=2.0, hop=3.0)


def test_with_settings_is_a_copy_sharing_the_model(tiny):
    d = Diarizer.from_pretrained(tiny / "tiny.pt")
    other = d.with_settings({"link_threshold": 0.6, "link": {"method": "spectral"}})
    assert other.model is d.model and other.config.link_threshold == 0.6
    assert other.config.link.method == "spectral" and d.config.link.method == "average"
    with pytest.raises(DiarizeError, match="grid: .*median must be >= 1"):
        d.with_settings({"median": 0}, "grid")


def test_the_hook_sees_every_stage_in_order(tiny):
    seen = []

    def hook(stage, artefact, completed=None, total=None):
        seen.append((stage, completed, total))

    result = Diarizer.from_pretrained(tiny / "tiny.pt", batch_size=2)(
        tiny / "noise.wav", max_speakers=2, hook=hook
    )
    # 25 s in 10 s windows every 5 s: starts 0, 5, 10, 15 -> two batches of two
    assert seen == [("windows", None, None), ("local", 2, 4), ("local", 4, 4),
                    ("linking", None, None), ("aggregation", None, None)]  # fmt: skip
    assert len(result.annotation.labels()) <= 2


def test_bad_audio_and_counts_are_one_clear_error(tiny):
    d = Diarizer.from_pretrained(tiny / "tiny.pt")
    with pytest.raises(DiarizeError, match="no such file"):
        d(tiny / "missing.wav")
    with pytest.raises(DiarizeError, match="not both"):
        d(tiny / "noise.wav", num_speakers=2, max_speakers=3)
    with pytest.raises(DiarizeError, match="sample rate"):
        d((np.zeros(16000, dtype=np.float32), 0))
    with pytest.raises(DiarizeError, match="path or"):
        d(42)


def test_exported_settings_reach_the_diarizer(tiny, tmp_path):
    from diarize.checkpoint import export_model

    infer = {"threshold": 0.6, "link": {"split_cost": 450.0}}
    mb, digest = export_model(tiny / "old.pt", tmp_path / "ship.pt", infer=infer)
    assert mb < 1 and len(digest) == 16
    d = Diarizer.from_pretrained(tmp_path / "ship.pt")
    assert d.config.threshold == 0.6 and d.config.link_threshold == 0.4
    assert d.config.link == LinkConfig(split_cost=450.0)
    with pytest.raises(DiarizeError, match="unknown key"):
        export_model(tiny / "old.pt", tmp_path / "bad.pt", infer={"link": {"cost": 1}})
    assert not (tmp_path / "bad.pt").exists()


@needs_bundled
def test_attractor_threshold_sets_how_many_local_speakers_windows_decode(bundled):
    rate = 16000
    wave = load_audio(EXAMPLE, rate, duration=30.0)

    def local(**settings) -> list[int]:
        windows = bundled.with_settings(settings).analyse((wave, rate)).windows
        return [w.probs.shape[1] for w in windows]

    own = local()
    assert local(attractor_threshold=bundled.model.config.attractor_threshold) == own
    fewer, more = local(attractor_threshold=0.99), local(attractor_threshold=1e-6)
    assert all(f <= o <= m for f, o, m in zip(fewer, own, more, strict=True))
    assert sum(fewer) < sum(own) < sum(more)
    assert set(more) == {bundled.model.config.max_speakers}
    with pytest.raises(DiarizeError, match="attractor_threshold"):
        InferConfig(attractor_threshold=1.0)
