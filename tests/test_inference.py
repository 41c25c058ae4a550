"""Windows, linking, stitching and post-processing, with a stand-in for the network."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from diarize import inference
from diarize.config import InferConfig, LinkConfig
from diarize.features.voice import N_MELS
from diarize.inference import (
    FrameGrid,
    SpeakerCount,
    WindowOutput,
    constrained_ahc,
    exclusive,
    link,
    postprocess,
    stitch,
    window_frames,
    window_starts,
)
from diarize.pipeline import Diarizer
from diarize.utils import DiarizeError

SR = 16000
SPF = 1600  # samples per frame of the stand-in (0.1 s)
DIM = 16


class StandIn:
    """Fake EEND-EDA. The audio of frame ``f`` holds the value ``(f + 1) / 1024`` (exact in
    float32), so each window knows where it is; its local speakers are the ground truth's
    speakers active there, in a random order, with attractors = speaker vector + noise."""

    frame_shift = 0.1

    def __init__(self, truth: np.ndarray, vectors: np.ndarray, seed: int = 0):
        self.truth, self.vectors = truth, vectors  # (frames, speakers), (speakers, DIM)
        self.rng = np.random.default_rng(seed)
        self.calls: list[int] = []  # batch sizes seen

    def num_frames(self, num_samples: int) -> int:
        return num_samples // SPF

    def infer(self, wave, lengths=None, num_speakers=None, max_speakers=None, threshold=None):
        self.calls.append(len(wave))
        out = []
        for w, n in zip(wave, lengths, strict=True):
            first = round(float(w[0]) * 1024) - 1
            frames = int(n) // SPF
            truth = self.truth[first : first + frames]
            present = np.flatnonzero(truth.sum(0) >= 3)
            order = self.rng.permutation(present)[:max_speakers]
            probs = (
                0.05 + 0.9 * truth[:, order] + self.rng.uniform(-0.04, 0.04, (frames, len(order)))
            )
            att = self.vectors[order] + 0.1 * self.rng.standard_normal((len(order), DIM))
            out.append(
                (torch.tensor(probs, dtype=torch.float32), torch.tensor(att, dtype=torch.float32))
            )
        return out


def turns(frames: int, speakers: int, seed: int) -> np.ndarray:
    """Ground truth (frames, speakers): each speaker talks in random 2-6 s turns."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((frames, speakers), dtype=np.float32)
    for s in range(speakers):
        t = int(rng.integers(0, 40))
        while t < frames:
            length = int(rng.integers(20, 60))
            truth[t : t + length, s] = 1
            t += length + int(rng.integers(30, 150))
    return truth


def position_wave(frames: int) -> np.ndarray:
    return np.repeat((np.arange(frames, dtype=np.float32) + 1) / 1024, SPF)


def diarize_file(model, path, config, chunk_frames=500, hook=None, **counts):
    """The Diarizer on ``model`` (a stand-in) with ``config``, windows of ``chunk_frames``."""
    return Diarizer(model, config, chunk_frames=chunk_frames)(path, hook=hook, **counts)


def same_up_to_relabel(truth: np.ndarray, hyp: np.ndarray) -> float:
    """Fraction of frames x speakers that agree under the best one-to-one column mapping."""
    from itertools import permutations

    if hyp.shape[1] != truth.shape[1]:
        return 0.0
    return max((truth == hyp[:, list(p)]).mean() for p in permutations(range(hyp.shape[1])))


# Windows ------------------------------------------------------------------------------------


def test_window_starts_cover_the_recording_exactly():
    starts = window_starts(1000, 300, 150)
    assert starts == [0, 150, 300, 450, 600, 700]
    assert starts[-1] + 300 == 1000
    assert window_starts(1000, 300, 300) == [0, 300, 600, 700]
    assert window_starts(300, 300, 150) == [0]
    assert window_starts(7, 300, 150) == [0]  # short file: one shorter window


def test_window_frames_defaults_and_errors():
    assert window_frames(InferConfig(), 0.1, 500) == (500, 250)
    assert window_frames(InferConfig(window=20.0, hop=5.0), 0.1, 500) == (200, 50)
    with pytest.raises(DiarizeError, match="hop"):
        window_frames(InferConfig(window=2.0, hop=3.0), 0.1, 500)
    with pytest.raises(DiarizeError, match=r"window must be 0 .* or at least 1 s, got 0.01"):
        InferConfig(window=0.01)  # 0.1 s gave an empty RTTM (issue 15)


def test_windows_are_cut_from_blocks_read_lazily():
    audio = np.arange(1000, dtype=np.float32)
    pulled = []

    def blocks(seconds):
        for i in range(0, 1000, 70):
            pulled.append(i)
            yield audio[i : i + 70]

    source = inference.AudioSource("ramp", None, 1000, 1000 / SR, blocks)
    grid = FrameGrid(1 / SR, SR, 1, 1000, 300, 150)  # one sample per frame
    windows = inference.stream_windows(source, grid)
    first = next(windows)
    assert np.array_equal(first.wave, audio[:300]) and len(pulled) == 5  # 350 read, not 1000
    rest = list(windows)
    assert [w.start for w in rest] == [150, 300, 450, 600, 700]
    for w in rest:
        assert np.array_equal(w.wave, audio[w.start : w.start + 300]) and w.features is None


# Linking ------------------------------------------------------------------------------------


def windows_of(truth: np.ndarray, vectors: np.ndarray, window: int, hop: int, seed: int = 0):
    """WindowOutputs of the stand-in plus, per window, the true speaker of each local column."""
    model = StandIn(truth, vectors, seed)
    wave = position_wave(len(truth))
    outs, owners = [], []
    for start in window_starts(len(truth), window, hop):
        seg = torch.from_numpy(wave[start * SPF : (start + window) * SPF])[None]
        model.rng = np.random.default_rng(seed + start)
        present = np.flatnonzero(truth[start : start + window].sum(0) >= 3)
        owners.append(np.random.default_rng(seed + start).permutation(present))
        model.rng = np.random.default_rng(seed + start)
        ((probs, att),) = model.infer(seg, torch.tensor([seg.shape[1]]))
        outs.append(WindowOutput(start, probs.numpy(), att.numpy()))
    return outs, owners


def mapping(assignment, owners) -> dict[int, set[int]]:
    """{true speaker: global speakers it was given}."""
    seen: dict[int, set[int]] = {}
    for glob, own in zip(assignment, owners, strict=True):
        for g, o in zip(glob, own, strict=True):
            seen.setdefault(int(o), set()).add(int(g))
    return seen


def test_link_recovers_speakers_across_permuted_windows(rng):
    truth, vectors = turns(1200, 4, seed=1), rng.standard_normal((4, DIM))
    windows, owners = windows_of(truth, vectors, 200, 100)
    assignment = link(windows, InferConfig(threshold=0.5, link_threshold=0.5))
    seen = mapping(assignment, owners)
    assert all(len(g) == 1 for g in seen.values())  # each true speaker one global speaker
    assert len({g for gs in seen.values() for g in gs}) == 4  # and distinct ones


def test_link_respects_cannot_link():
    vector = np.ones(DIM)  # two speakers with identical attractors, always together
    probs = np.full((50, 2), 0.9, dtype=np.float32)
    windows = [WindowOutput(s, probs, np.stack([vector, vector])) for s in (0, 25, 50)]
    assignment = link(windows, InferConfig(link_threshold=-1.0))
    for glob in assignment:
        assert sorted(glob) == [0, 1]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"num": 2}, {2}),
        ({"num": 6}, {6}),
        ({"max": 3}, {1, 2, 3}),
        ({"min": 5}, {5}),
        ({}, {4}),
    ],
)
def test_link_respects_speaker_counts(rng, kwargs, expected):
    truth, vectors = turns(1200, 4, seed=2), rng.standard_normal((4, DIM))
    windows, _ = windows_of(truth, vectors, 200, 100)
    assignment = link(windows, InferConfig(link_threshold=0.5), SpeakerCount(**kwargs))
    count = max(int(a.max()) for a in assignment if len(a)) + 1
    assert count in expected


def test_link_uses_activity_agreement_on_shared_frames():
    # Attractors say nothing (orthogonal for everyone); only the shared frames link speakers.
    a = np.zeros((40, 2), dtype=np.float32)
    a[:20, 0], a[20:, 1] = 0.9, 0.9  # speaker X then Y
    b = a[20:].copy()[:, ::-1]  # window 2 starts at frame 20, Y first (column 0), then X never
    b = np.concatenate([b, np.zeros((20, 2), dtype=np.float32)])
    b[20:, 1] = 0.9  # X comes back as column 1
    eye = np.eye(4)
    windows = [WindowOutput(0, a, eye[:2]), WindowOutput(20, b, eye[2:])]
    assignment = link(windows, InferConfig(link_threshold=0.2))
    assert assignment[1][0] == assignment[0][1]  # Y in both windows
    assert assignment[1][1] != assignment[1][0]


def test_link_ignores_negligible_local_speakers():
    probs = np.zeros((30, 2), dtype=np.float32)
    probs[:, 0], probs[5, 1] = 0.9, 0.9  # column 1 active in a single frame
    assignment = link([WindowOutput(0, probs, np.eye(2))])
    assert assignment[0].tolist() == [0, -1]


def test_link_settings_come_from_the_config():
    probs = np.zeros((30, 2), dtype=np.float32)
    probs[:, 0], probs[5:8, 1] = 0.9, 0.9  # column 1 active in three frames
    window = WindowOutput(0, probs, np.eye(2))
    assert link([window])[0].tolist() == [0, 1]
    strict = InferConfig(link=LinkConfig(min_active_frames=4))
    assert link([window], strict)[0].tolist() == [0, -1]


def test_speaker_counts_are_checked_once_with_one_message():
    assert SpeakerCount(max=3).cap == 3 and SpeakerCount(num=2).cap == 2
    assert SpeakerCount().cap is None
    with pytest.raises(DiarizeError, match="not both"):
        SpeakerCount(num=2, min=1)
    with pytest.raises(DiarizeError, match="larger than"):
        SpeakerCount(min=3, max=2)
    with pytest.raises(DiarizeError, match="num_speakers must be >= 1"):
        SpeakerCount(num=0)


def test_constrained_ahc_folds_when_cannot_link_blocks_the_count():
    sim = np.zeros((3, 3))
    cannot = ~np.eye(3, dtype=bool)  # three speakers of one window
    labels = constrained_ahc(sim, cannot, 0.5, weight=np.array([5.0, 1.0, 3.0]), num_clusters=2)
    assert len(set(labels)) == 2 and labels[1] in (labels[0], labels[2])


# Stitching and post-processing --------------------------------------------------------------


def test_stitch_averages_over_covering_windows_weighted_by_centrality():
    a = WindowOutput(0, np.full((4, 1), 0.2, dtype=np.float32), np.eye(1))
    b = WindowOutput(2, np.full((4, 2), [0.6, 1.0], dtype=np.float32), np.eye(2))
    probs = stitch([a, b], [np.array([0]), np.array([0, 1])], 6)
    # Window weights over its 4 frames: 1 - |i - 1.5| / 2.5 = 0.4, 0.8, 0.8, 0.4. Frame 2 is
    # a's third frame (0.8) and b's first (0.4); frame 3 is a's last (0.4), b's second (0.8).
    np.testing.assert_allclose(
        probs[:, 0], [0.2, 0.2, (0.16 + 0.24) / 1.2, (0.08 + 0.48) / 1.2, 0.6, 0.6], rtol=1e-6
    )
    np.testing.assert_allclose(
        probs[:, 1], [0, 0, 0.4 / 1.2, 0.8 / 1.2, 1.0, 1.0], rtol=1e-6
    )  # absent from a: 0


def test_postprocess_threshold_median_and_durations():
    p = np.zeros((30, 1), dtype=np.float32)
    p[2:10], p[5], p[14] = 0.9, 0.1, 0.9  # a 1-frame hole and a 1-frame blip
    p[18:20], p[22:28] = 0.9, 0.9
    act = postprocess(p, InferConfig(threshold=0.5, median=1), 0.1)
    assert act[5, 0] == 0 and act[14, 0] == 1
    act = postprocess(p, InferConfig(threshold=0.5, median=3), 0.1)
    assert (act[2:10, 0] == 1).all() and act[14, 0] == 0
    assert (act[18:20, 0] == 1).all() and (act[20:22, 0] == 0).all()
    act = postprocess(p, InferConfig(median=3, min_duration_off=0.3), 0.1)
    assert (act[18:28, 0] == 1).all()  # 2-frame pause filled
    assert (act[10:18, 0] == 0).all() and (act[:2, 0] == 0).all()  # long and leading gaps kept
    act = postprocess(p, InferConfig(median=1, min_duration_on=0.3), 0.1)
    assert act[14, 0] == 0 and (act[18:20, 0] == 0).all() and (act[22:28, 0] == 1).all()
    assert (act[2:5, 0] == 1).all()


def test_exclusive_keeps_the_most_probable_active_speaker():
    probs = np.array([[0.9, 0.7], [0.6, 0.8], [0.2, 0.1], [0.3, 0.9]], dtype=np.float32)
    active = probs > 0.5
    assert exclusive(probs, active).tolist() == [[1, 0], [0, 1], [0, 0], [0, 1]]


# Whole files -----------------------------------------------------------------------------


def no_voices(monkeypatch) -> None:
    """Link by attractors alone: the stand-in's audio (a ramp) has no voice to compare."""

    def silent(features, active):
        n = active.shape[1]
        return np.full((n, features.shape[1]), np.nan), np.zeros(n, dtype=int)

    monkeypatch.setattr(inference.local, "voice_profiles", silent)


def test_diarize_file_recovers_the_truth_streaming(tmp_path, rng, monkeypatch):
    no_voices(monkeypatch)
    frames = 1500  # 150 s
    truth, vectors = turns(frames, 3, seed=3), rng.standard_normal((3, DIM))
    wave = position_wave(frames)
    wave[310 * SPF : 330 * SPF] = 0  # digital silence: nobody speaks there
    path = tmp_path / "long.wav"
    sf.write(path, wave, SR, subtype="FLOAT")

    def no_whole_read(*args, **kwargs):
        raise AssertionError("the whole file must not be read at once")

    monkeypatch.setattr("diarize.audio.load_audio", no_whole_read)
    monkeypatch.setattr(sf, "read", no_whole_read)
    blocks = []
    real_iter_blocks = inference.windows.iter_blocks

    def counting_iter_blocks(*args, **kwargs):
        for block in real_iter_blocks(*args, **kwargs):
            blocks.append(len(block))
            yield block

    monkeypatch.setattr(inference.windows, "iter_blocks", counting_iter_blocks)
    model = StandIn(truth, vectors)
    progress = []
    config = InferConfig(median=1, batch_size=4)
    result = diarize_file(
        model, path, config, chunk_frames=200,
        hook=lambda stage, _, completed=None, total=None: progress.append((stage, completed, total)),
    )  # fmt: skip

    assert max(blocks) == 100 * SPF and sum(blocks) == len(wave)  # hop-sized blocks, once
    assert max(model.calls) == 4 and progress[-3] == ("local", 14, 14)
    assert [stage for stage, _, _ in progress] == ["windows"] + ["local"] * 4 + [
        "linking",
        "aggregation",
    ]
    assert result.probs.shape == (frames, 3) and result.labels == [
        "SPEAKER_00",
        "SPEAKER_01",
        "SPEAKER_02",
    ]
    expected = truth.astype(bool)
    expected[310:330] = False
    assert same_up_to_relabel(expected, result.probs > 0.5) > 0.995
    assert result.annotation.uri == "long" and len(result.annotation.labels()) == 3
    assert result.duration == pytest.approx(150.0)
    assert not result.exclusive.get_overlap()  # one speaker at a time


def test_diarize_file_short_and_forced_counts(tmp_path, rng, monkeypatch):
    no_voices(monkeypatch)
    truth, vectors = np.zeros((30, 2), dtype=np.float32), rng.standard_normal((2, DIM))
    truth[:20, 0], truth[10:, 1] = 1, 1
    path = tmp_path / "short.wav"
    sf.write(path, position_wave(30)[: 30 * SPF - 100], SR, subtype="FLOAT")  # 29.9 frames
    model = StandIn(truth, vectors)
    result = diarize_file(model, path, InferConfig(median=1), chunk_frames=500)
    assert model.calls == [1] and result.probs.shape == (29, 2)
    result = diarize_file(model, path, InferConfig(median=1), num_speakers=1, chunk_frames=500)
    assert result.probs.shape[1] == 1
    with pytest.raises(DiarizeError, match="not both"):
        diarize_file(model, path, InferConfig(), num_speakers=2, max_speakers=3)


# Linking by voice ------------------------------------------------------------------------------


class OrderedStandIn(StandIn):
    """Like :class:`StandIn`, for real audio: it learns where each window starts from the
    list of window starts (windows come in time order) instead of from the samples."""

    def __init__(self, truth, vectors, starts, seed=0):
        super().__init__(truth, vectors, seed)
        self.starts = list(starts)

    def infer(self, wave, lengths=None, num_speakers=None, max_speakers=None, threshold=None):
        marked = wave.clone()
        for row in range(len(wave)):  # StandIn reads the start from the first sample
            marked[row, 0] = (self.starts.pop(0) + 1) / 1024
        return super().infer(marked, lengths, num_speakers, max_speakers, threshold)


def voices_wave(truth: np.ndarray, pitches: list[float], seed: int = 0) -> np.ndarray:
    """Audio of ``truth (frames, speakers)``: speaker s hums at ``pitches[s]`` with its own
    spectral tilt, in syllables, whenever it is active."""
    rng = np.random.default_rng(seed)
    n = len(truth) * SPF
    t = np.arange(n) / SR
    wave = 0.002 * rng.standard_normal(n)
    for s, f0 in enumerate(pitches):
        voice = sum(
            np.sin(2 * np.pi * h * f0 * t) / h ** (0.7 + 0.5 * s) for h in range(1, int(7000 / f0))
        )
        syllables = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t + s)
        gate = np.repeat(truth[:, s], SPF)
        wave += 0.05 * voice / np.sqrt(np.mean(voice**2)) * syllables * gate
    return wave.astype(np.float32)


def test_voices_link_speakers_whose_attractors_say_nothing(tmp_path, monkeypatch):
    frames = 1500  # 150 s, three speakers in turns, windows of 20 s every 10 s
    truth = turns(frames, 3, seed=4)
    vectors = np.ones((3, DIM))  # every attractor alike: only the voices tell who is who
    path = tmp_path / "voices.wav"
    sf.write(path, voices_wave(truth, [110.0, 175.0, 260.0]), SR, subtype="FLOAT")
    starts = window_starts(frames, 200, 100)

    model = OrderedStandIn(truth, vectors, starts, seed=1)
    result = diarize_file(model, path, InferConfig(median=1), chunk_frames=200)
    assert result.probs.shape[1] == 3
    assert same_up_to_relabel(truth.astype(bool), result.probs > 0.5) > 0.97

    no_voices(monkeypatch)  # the same windows without voices: speakers get mixed up
    model = OrderedStandIn(truth, vectors, starts, seed=1)
    result = diarize_file(model, path, InferConfig(median=1), chunk_frames=200)
    assert same_up_to_relabel(truth.astype(bool), result.probs > 0.5) < 0.9


def test_one_voice_stays_one_speaker(tmp_path):
    frames = 1500
    truth = turns(frames, 1, seed=5)
    path = tmp_path / "one.wav"
    sf.write(path, voices_wave(truth, [140.0]), SR, subtype="FLOAT")
    starts = window_starts(frames, 200, 100)
    model = OrderedStandIn(truth, np.ones((1, DIM)), starts)
    result = diarize_file(model, path, InferConfig(median=1), chunk_frames=200)
    assert result.probs.shape[1] == 1
    assert same_up_to_relabel(truth.astype(bool), result.probs > 0.5) > 0.97


def test_voice_features_are_made_once_per_frame_as_on_the_whole_recording(tmp_path):
    from diarize.features.voice import voice_frames
    from diarize.inference import feature_stream, open_audio, stream_windows

    frames = 450  # 45 s: windows of 20 s every 10 s start at 0, 100, 200, 250
    wave = voices_wave(turns(frames, 2, seed=8), [120.0, 210.0])
    path = tmp_path / "two.wav"
    sf.write(path, np.concatenate([wave, wave[:700]]), SR, subtype="FLOAT")  # + part of a frame
    grid = FrameGrid(0.1, SR, SPF, frames, 200, 100)
    compute, lookahead = feature_stream(grid)
    computed = []

    def counting(chunk):
        computed.append(len(chunk) // SPF)
        return compute(chunk)

    windows = list(stream_windows(open_audio(path, SR), grid, counting, lookahead))
    assert [w.start for w in windows] == [0, 100, 200, 250] and lookahead == SPF
    # New frames 0-200, 200-300, 300-400, 400-450, each with one frame of lookahead but the
    # last (the recording ends there): every frame computed once.
    assert computed == [201, 101, 101, 50]
    whole = voice_frames(wave, SPF)  # (frames, N_MELS + 1) of the recording in one piece
    for w in windows:
        assert len(w.wave) == 200 * SPF and w.features[0].shape == (200, N_MELS + 1)
        np.testing.assert_allclose(w.features[0], whole[w.start : w.start + 200], atol=1e-4)


def test_frames_of_no_whole_10_ms_link_by_attractors(rng):
    truth = turns(300, 2, seed=6)
    model = StandIn(truth, rng.standard_normal((2, DIM)))
    wave = position_wave(300)
    grid = FrameGrid(1000 / SR, SR, 1000, 320, 320, 320)  # 62.5 ms frames
    outs = inference.analyse_windows(
        model, [inference.Window(0, wave[: 200 * SPF])], grid, InferConfig(batch_size=1)
    )
    assert outs[0].voice is None and outs[0].voice_frames is None  # 62.5 ms: no voice
    assignment = link(outs)  # falls back to the attractors
    assert sorted(assignment[0].tolist()) == [0, 1]


class MergingStandIn(OrderedStandIn):
    """A model that hears two voices but decodes one local speaker for both (as EEND-EDA does
    when a window holds more persons than it decodes)."""

    def __init__(self, truth, vectors, starts, seed=0):
        super().__init__(truth.max(axis=1, keepdims=True), vectors[:1], starts, seed)


def test_a_local_speaker_of_two_voices_is_split(tmp_path):
    frames = 1500
    truth = turns(frames, 2, seed=7)
    truth[:, 1] *= 1 - truth[:, 0]  # the two voices never speak at once
    path = tmp_path / "two.wav"
    sf.write(path, voices_wave(truth, [110.0, 230.0]), SR, subtype="FLOAT")
    starts = window_starts(frames, 200, 100)

    model = MergingStandIn(truth, np.ones((2, DIM)), starts, seed=1)
    result = diarize_file(model, path, InferConfig(median=1), chunk_frames=200)
    assert result.probs.shape[1] == 2
    # Both voices in one column and nothing in the other would agree on 0.75 of the cells;
    # turns where one voice follows the other without a pause cannot be split (one run).
    assert same_up_to_relabel(truth.astype(bool), result.probs > 0.5) > 0.85

    model = MergingStandIn(truth, np.ones((2, DIM)), starts, seed=1)  # not split: one speaker
    result = diarize_file(model, path, InferConfig(median=1, split_voices=False), chunk_frames=200)
    assert result.probs.shape[1] == 1


def test_split_voices_gives_each_voice_a_column():
    rng = np.random.default_rng(0)
    frames = 200
    probs = np.zeros((frames, 2), dtype=np.float32)
    probs[0:30, 0] = probs[60:90, 0] = 0.9  # column 0: voice A, then voice B ...
    probs[120:150, 0] = 0.9  # ... then A again
    probs[95:115, 1] = probs[160:190, 1] = 0.8  # column 1: voice C alone
    features = rng.normal(0, 0.3, (frames, N_MELS + 1))
    features[60:90, :N_MELS] += 2.0  # B is louder in every band than A
    features[95:115, :N_MELS] -= 2.0
    features[160:190, :N_MELS] -= 2.0
    split, source = inference.split_voices(probs, features, threshold=0.5)
    assert source.tolist() == [0, 0, 1]
    a, b = (0, 1) if split[0, 0] > 0 else (1, 0)
    np.testing.assert_array_equal(split[:, a] + split[:, b], probs[:, 0])  # nothing lost
    assert (split[0:30, a] == 0.9).all() and (split[120:150, a] == 0.9).all()
    assert (split[60:90, b] == 0.9).all() and (split[:, b] > 0).sum() == 30
    np.testing.assert_array_equal(split[:, 2], probs[:, 1])

    features[60:90, :N_MELS] -= 2.0  # B now sounds like A: one voice, no split
    split, source = inference.split_voices(probs, features, threshold=0.5)
    assert source.tolist() == [0, 1]
    np.testing.assert_array_equal(split, probs)


def test_columns_never_active_together_may_link():
    # One window, two columns that never speak at once, and the same voice: one person.
    probs = np.zeros((100, 2), dtype=np.float32)
    probs[:40, 0], probs[60:, 1] = 0.9, 0.9
    voice = np.tile(np.r_[np.zeros(N_MELS), np.log(120.0)], (2, 1))
    window = WindowOutput(0, probs, np.eye(2), voice, np.array([40, 40]))
    assert link([window], InferConfig(link_threshold=0.3))[0].tolist() == [0, 0]
    probs[50:60, :] = 0.9  # once they speak together they are two persons
    window = WindowOutput(0, probs, np.eye(2), voice, np.array([40, 40]))
    assert sorted(link([window], InferConfig(link_threshold=0.3))[0].tolist()) == [0, 1]
