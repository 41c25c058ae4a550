"""Linking with a pretrained speaker-embedding model (``--embedding``): each local speaker
embedded once from the audio where it is heard alone, no sample embedded twice although
windows overlap, batched; the model carried in a checkpoint (``tools/export_model.py
--embedding``) with its linking settings; one-line errors for bad names and files. A
tiny random-weight CAM++ is written as 3D-Speaker ships it (a plain state dict)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from diarize import Diarizer
from diarize.checkpoint import build_model, export_model, load_checkpoint, save_checkpoint
from diarize.cli import main
from diarize.config import ExperimentConfig, InferConfig, ModelConfig, TrainConfig
from diarize.embeddings import load_embedding
from diarize.embeddings.campplus import CAMPPlus, CAMPPlusConfig
from diarize.inference import FrameGrid, Window, WindowOutput, window_starts
from diarize.inference.embed import PretrainedEmbedder
from diarize.inference.linking import PRETRAINED_LINKING
from diarize.utils import DiarizeError

ROOT = Path(__file__).parents[1]
SR, SPF = 16000, 1600  # 0.1 s frames
TINY_CAMPPLUS = CAMPPlusConfig(
    growth_rate=4, bn_size=2, init_channels=16, head_channels=4, embedding_size=8
)


def position_wave(frames: int) -> np.ndarray:
    """Frame ``f`` holds the value ``(f + 1) / 4096`` (exact in float32): a piece of audio
    says which frames it was cut from."""
    return np.repeat((np.arange(frames, dtype=np.float32) + 1) / 4096, SPF)


def frames_of(wave) -> np.ndarray:
    """The recording frames a piece of :func:`position_wave` audio was cut from."""
    return np.round(np.asarray(wave).reshape(-1, SPF)[:, 0] * 4096).astype(int) - 1


def conversation(frames: int, speakers: int, seed: int) -> np.ndarray:
    """(frames, speakers) 0/1: turns of 1-4 s in random order, some overlapping a little."""
    rng = np.random.default_rng(seed)
    truth, t = np.zeros((frames, speakers), dtype=np.float32), 0
    while t < frames:
        s, length = int(rng.integers(speakers)), int(rng.integers(10, 40))
        truth[t : t + length, s] = 1
        t += length - int(rng.integers(0, 4))  # the next turn may start 0-0.3 s early
    return truth


class OwnerEmbedding:
    """Stands in for a SpeakerEmbedding on :func:`position_wave` audio: the embedding of a
    piece is the one-hot of the true speaker of its frames, and every piece is recorded."""

    kind, sample_rate, min_samples = "campplus", SR, 2400

    def __init__(self, truth: np.ndarray, min_duration: float = 1.5):
        self.truth, self.min_duration, self.dim = truth, min_duration, truth.shape[1]
        self.calls: list[list[np.ndarray]] = []  # per call of embed: the frames of each piece

    def embed(self, waves) -> torch.Tensor:
        pieces = [frames_of(w.numpy()) for w in waves]
        self.calls.append(pieces)
        owners = [self.truth[f].argmax(1) for f in pieces]
        assert all((o == o[0]).all() for o in owners)  # a piece is one voice alone
        return torch.eye(self.dim)[[int(o[0]) for o in owners]]


def windows_of(truth: np.ndarray, window: int, hop: int, seed: int = 0):
    """Windows (position audio) and WindowOutputs whose local speakers are the true ones
    present, in a random order, and the true speaker of each local column."""
    rng = np.random.default_rng(seed)
    wave = position_wave(len(truth))
    windows, outputs, owners = [], [], []
    for start in window_starts(len(truth), window, hop):
        part = truth[start : start + window]
        present = rng.permutation(np.flatnonzero(part.sum(0) > 0))
        probs = (0.05 + 0.9 * part[:, present]).astype(np.float32)
        windows.append(Window(start, wave[start * SPF : (start + len(part)) * SPF]))
        outputs.append(WindowOutput(start, probs, np.ones((len(present), 4))))
        owners.append(present)
    return windows, outputs, owners


@pytest.mark.parametrize(("frames", "hop"), [(730, 100), (655, 50)])
def test_each_local_speaker_embedded_once_and_no_frame_twice(frames, hop):
    truth = conversation(frames, 3, seed=1)
    windows, outputs, owners = windows_of(truth, 200, hop)
    model = OwnerEmbedding(truth)
    embedder = PretrainedEmbedder(model, FrameGrid(0.1, SR, SPF, frames, 200, hop), batch_size=4)
    for i in range(0, len(windows), 3):  # batches of three windows, as analyse_windows gives
        embedder.add(windows[i : i + 3], outputs[i : i + 3])
    done = embedder.finish(outputs)
    pieces = [p for call in model.calls for p in call]
    seen = np.concatenate(pieces)
    assert len(seen) == len(set(seen.tolist()))  # no frame embedded twice
    assert len(model.calls) == -(-len(pieces) // 4)  # in batches of 4
    alone = truth.sum(1) == 1
    assert set(seen.tolist()) <= set(np.flatnonzero(alone).tolist())
    for out, own in zip(done, owners, strict=True):
        for k, speaker in enumerate(own):
            heard = alone[out.start : out.stop] & (truth[out.start : out.stop, speaker] > 0)
            assert out.embedded[k] == (heard.sum() >= 15)  # 1.5 s: the model's min_duration
            if out.embedded[k]:  # the one-hot of its own true speaker, exactly
                assert out.embeddings[k].tolist() == np.eye(3)[speaker].tolist()
            else:
                assert not out.embeddings[k].any()


def test_frames_heard_alone_by_one_window_only_still_count():
    # Window 0 holds speaker 0 alone on frames 0-99; window 1 (from frame 100) never hears it:
    # the frames only window 0 covers make its piece; shared frames are pieces of both.
    truth = np.zeros((300, 2), dtype=np.float32)
    truth[:150, 0], truth[150:, 1] = 1, 1
    windows, outputs, owners = windows_of(truth, 200, 100)
    model = OwnerEmbedding(truth)
    embedder = PretrainedEmbedder(model, FrameGrid(0.1, SR, SPF, 300, 200, 100))
    embedder.add(windows, outputs)
    done = embedder.finish(outputs)
    pieces = sorted((int(p[0]), int(p[-1])) for call in model.calls for p in call)
    assert pieces == [(0, 99), (100, 149), (150, 199), (200, 299)]
    assert all(out.embedded.all() for out in done)


def stand_in_diarizer(truth: np.ndarray, embedding, attractors=None) -> Diarizer:
    """A Diarizer whose network is a stand-in reading the true speakers of each window
    from the position audio (local speakers in a random order, attractors alike)."""

    class StandIn:
        frame_shift = 0.1

        def __init__(self):
            self.rng = np.random.default_rng(0)

        def num_frames(self, num_samples: int) -> int:
            return num_samples // SPF

        def infer(self, wave, lengths=None, max_speakers=None, **kwargs):
            out = []
            for w, n in zip(wave, lengths, strict=True):
                first = int(frames_of(w[:SPF].numpy())[0])
                part = truth[first : first + int(n) // SPF]
                present = self.rng.permutation(np.flatnonzero(part.sum(0) > 0))
                probs = 0.05 + 0.9 * part[:, present]
                att = np.ones((len(present), 4)) if attractors is None else attractors[present]
                out.append((torch.tensor(probs), torch.tensor(att, dtype=torch.float32)))
            return out

    return Diarizer(StandIn(), InferConfig(median=1, split_voices=False, link_threshold=0.5),
                    chunk_frames=200, embedding=embedding)  # fmt: skip


def test_linking_follows_the_embeddings(tmp_path):
    truth = conversation(900, 3, seed=2)  # 90 s, three speakers; the attractors all alike
    model = OwnerEmbedding(truth)
    result = stand_in_diarizer(truth, model)((position_wave(900), SR))
    hyp = result.probs > 0.5  # (frames, speakers)
    assert hyp.shape[1] == 3
    agree = max(
        (hyp[:, list(p)] == truth.astype(bool)).mean()
        for p in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
    )
    assert agree > 0.99


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny random EEND-EDA checkpoint (10 s windows), a tiny random CAM++ saved as
    3D-Speaker ships its models, a wrong file, and 14 s of noise."""
    root = tmp_path_factory.mktemp("embedding")
    config = ExperimentConfig(
        model=ModelConfig(d_model=16, n_layers=1, n_heads=2, ff_dim=32),
        train=TrainConfig(chunk_frames=100),
    )
    torch.manual_seed(0)
    save_checkpoint(root / "tiny.pt", build_model(config), config)
    torch.save(CAMPPlus(TINY_CAMPPLUS).eval().state_dict(), root / "campplus_tiny.pt")
    torch.save({"lstm.weight": torch.zeros(3)}, root / "other.pt")
    rng = np.random.default_rng(0)
    sf.write(root / "a.wav", (0.1 * rng.standard_normal(SR * 14)).astype(np.float32), SR)
    return root


def test_a_real_format_campplus_embeds_each_sample_once_in_the_diarizer(files):
    truth = conversation(600, 3, seed=3)
    model = load_embedding(files / "campplus_tiny.pt")
    seen: list[np.ndarray] = []
    forward = model.forward

    def counting(wave):  # (batch, samples)
        seen.extend(frames_of(w) for w in wave.numpy())
        return forward(wave)

    model.forward = counting
    analysis = stand_in_diarizer(truth, model).analyse((position_wave(600), SR))
    frames = np.concatenate(seen)
    assert len(frames) == len(set(frames.tolist()))  # every sample at most once
    alone = np.flatnonzero(truth.sum(1) == 1)
    assert 0.9 * len(alone) <= len(frames) <= len(alone)  # nearly all frames heard alone
    heard = sum(int(w.embedded.sum()) for w in analysis.windows)
    assert heard >= 0.8 * sum(w.probs.shape[1] for w in analysis.windows)
    emb = np.concatenate([w.embeddings[w.embedded] for w in analysis.windows])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_run_with_embedding_end_to_end_and_one_line_errors(files, tmp_path, capsys):
    base = ["run", str(files / "a.wav"), "--model", str(files / "tiny.pt")]
    out = tmp_path / "out"
    assert main([*base, "-o", str(out), "--embedding", str(files / "campplus_tiny.pt"),
                 "--link", "method=centroid"]) == 0  # fmt: skip
    assert (out / "a.rttm").exists()
    for option, message in [
        (["--embedding", str(tmp_path / "nosuch.pt")], "no such file, and not an embedding name"),
        (["--embedding", "campplus-martian"], "not an embedding name (campplus-zh-en"),
        (["--embedding", str(files / "other.pt")], "not a CAM++, WeSpeaker ResNet"),
        (["--link", "method=ward"], "link.method must be one of average, centroid, spectral"),
    ]:
        capsys.readouterr()
        assert main([*base, "-o", str(tmp_path / "bad"), *option]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("diarize run: error: ") and message in err[0]
        assert not (tmp_path / "bad" / "a.rttm").exists()


def test_evaluate_takes_the_embedding_option(files, tmp_path):
    data = tmp_path / "set"
    (data / "wav").mkdir(parents=True)
    sf.write(data / "wav" / "r1.wav", sf.read(files / "a.wav")[0], SR)
    (data / "wav.scp").write_text(f"r1 {data / 'wav' / 'r1.wav'}\n")
    (data / "rttm").write_text("SPEAKER r1 1 1.00 3.00 <NA> <NA> A <NA> <NA>\n")
    out = tmp_path / "eval"
    args = ["evaluate", str(data), "--model", str(files / "tiny.pt"), "-o", str(out)]
    assert main([*args, "--embedding", str(files / "campplus_tiny.pt"), "--link", "method=spectral"]) == 0  # fmt: skip
    assert (out / "der.json").exists()


def test_checkpoint_carries_the_embedding_and_its_linking(files, tmp_path):
    dst = tmp_path / "with_campplus.pt"
    export_model(files / "tiny.pt", dst, embedding=files / "campplus_tiny.pt",
                 embedding_infer={"link_threshold": 0.42})  # fmt: skip
    raw = torch.load(dst, weights_only=True)  # plain values and tensors only
    assert raw["embedding"]["kind"] == "campplus"
    assert raw["embedding"]["infer"]["link_threshold"] == 0.42
    load_checkpoint(dst)
    carried = Diarizer.from_pretrained(dst)
    assert isinstance(carried.embedding, CAMPPlus) and carried.embedding.config == TINY_CAMPPLUS
    x = torch.randn(2, SR * 2)
    with torch.no_grad():
        assert torch.equal(carried.embedding(x), load_embedding(files / "campplus_tiny.pt")(x))
    assert carried.config.link_threshold == 0.42  # stored with the model: used by default
    assert carried.config.link.method == PRETRAINED_LINKING["campplus"]["link"]["method"]
    assert Diarizer.from_pretrained(dst, link_threshold=0.6).config.link_threshold == 0.6
    own = Diarizer.from_pretrained(dst, embedding="none")  # the checkpoint's own linking
    assert own.embedding is None and own.config.link_threshold == InferConfig().link_threshold
    given = Diarizer.from_pretrained(files / "tiny.pt", embedding=files / "campplus_tiny.pt")
    assert given.config.link_threshold == PRETRAINED_LINKING["campplus"]["link_threshold"]
    assert Diarizer.from_pretrained(files / "tiny.pt").embedding is None


def test_a_malformed_embedding_entry_is_one_line(files, tmp_path):
    ckpt = load_checkpoint(files / "tiny.pt")
    for entry, message in [
        ({"kind": "campplus"}, "malformed embedding entry"),
        ({"kind": "lstm", "config": {}, "model": {}}, "unknown embedding kind 'lstm'"),
        ({**CAMPPlus(TINY_CAMPPLUS).checkpoint(), "infer": 3}, "infer is not a mapping"),
    ]:
        torch.save({**ckpt, "embedding": entry}, tmp_path / "bad.pt")
        with pytest.raises(DiarizeError, match=message):
            Diarizer.from_pretrained(tmp_path / "bad.pt")


def export_tool(monkeypatch, *args: str) -> int:
    """tools/export_model.py with ``args``, in this process; its exit status."""
    import runpy

    monkeypatch.setattr(sys, "argv", ["export_model.py", *args])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / "tools" / "export_model.py"), run_name="__main__")
    code = exit_.value.code
    if isinstance(code, str):  # run_tool's one-line error
        print(code, file=sys.stderr)
        return 1
    return code or 0


def test_export_tool_stores_the_embedding_or_says_why_not(files, tmp_path, monkeypatch, capsys):
    src, cam = str(files / "tiny.pt"), str(files / "campplus_tiny.pt")
    args = [src, str(tmp_path / "m.pt"), "--embedding", cam, "--embedding-infer", "link.method=spectral"]  # fmt: skip
    assert export_tool(monkeypatch, *args) == 0
    entry = torch.load(tmp_path / "m.pt", weights_only=True)["embedding"]
    assert entry["infer"]["link"]["method"] == "spectral"
    for bad in (["--embedding", str(tmp_path / "none.pt")],
                ["--embedding", cam, "--embedding-infer", "link.method=ward"],
                ["--embedding-infer", "link_threshold=0.4"]):  # fmt: skip
        capsys.readouterr()
        assert export_tool(monkeypatch, src, str(tmp_path / "n.pt"), *bad) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("export_model.py: error: "), err
        assert not (tmp_path / "n.pt").exists()
