"""A local speaker whose parts sound like two persons is cut in two before linking
(diarize.inference.parts), from the part embeddings the pretrained embedder and the
speaker encoder leave in each window."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_linking_embeddings import SPF, SR, OwnerEmbedding, conversation, position_wave, windows_of

from diarize.config import LinkConfig
from diarize.inference import FrameGrid, Window, WindowOutput, window_starts
from diarize.inference.embed import PretrainedEmbedder
from diarize.inference.local import embed_parts, part_starts
from diarize.inference.parts import split_parts, split_window

CUT = LinkConfig(part_split_below=0.5, part_min_seconds=1.0)


def mixed_windows(frames: int = 400, window: int = 200, hop: int = 100):
    """Speakers 0 and 1 take turns of 10 s; each window's local column 0 holds whichever of
    them talks (a network mixing them), column 1 speaker 2, who never talks. Returns the
    truth (frames, 3) and the windows' outputs with their embeddings and parts."""
    truth = np.zeros((frames, 3), dtype=np.float32)
    for t in range(0, frames, 100):
        truth[t : t + 100, (t // 100) % 2] = 1  # 0 then 1, 10 s turns
    grid = FrameGrid(0.1, SR, SPF, frames, window, hop)
    wave = position_wave(frames)
    windows, outputs = [], []
    for start in window_starts(frames, window, hop):
        part = truth[start : start + window]
        probs = np.stack([part[:, 0] + part[:, 1], part[:, 2]], axis=1) * 0.9 + 0.05
        windows.append(Window(start, wave[start * SPF : (start + len(part)) * SPF]))
        outputs.append(WindowOutput(start, probs.astype(np.float32), np.ones((2, 4))))
    model = OwnerEmbedding(truth)
    embedder = PretrainedEmbedder(model, grid)
    embedder.add(windows, outputs)
    return truth, embedder.finish(outputs)


def test_parts_of_a_window_are_cut_where_other_windows_start_or_stop():
    grid = FrameGrid(0.1, SR, SPF, 655, 200, 50)
    assert part_starts(100, 200, grid).tolist() == [0, 50, 100, 150]
    assert part_starts(0, 200, FrameGrid(0.1, SR, SPF, 400, 200, 100)).tolist() == [0, 100]
    assert part_starts(0, 120, FrameGrid(0.1, SR, SPF, 120, 200, 100)).tolist() == [0]


def test_the_embedder_keeps_each_part_of_each_local_speaker():
    truth, done = mixed_windows()
    for out in done:
        assert out.part_starts.tolist() == [0, 100]
        for p, lo in enumerate(out.part_starts):
            speaker = int(truth[out.start + lo, :2].argmax())
            assert out.part_seconds[0, p] == pytest.approx(10.0)
            unit = out.part_sums[0, p] / np.linalg.norm(out.part_sums[0, p])
            assert unit.tolist() == np.eye(3)[speaker].tolist()
        assert not out.part_seconds[1].any()  # speaker 2 never talks


@pytest.mark.parametrize(("frames", "hop"), [(730, 100), (655, 50)])
def test_the_parts_hold_every_piece_each_local_speaker_was_embedded_from(frames, hop):
    truth = conversation(frames, 3, seed=1)
    windows, outputs, _ = windows_of(truth, 200, hop)
    embedder = PretrainedEmbedder(OwnerEmbedding(truth), FrameGrid(0.1, SR, SPF, frames, 200, hop))
    embedder.add(windows, outputs)
    for w, out in enumerate(embedder.finish(outputs)):
        assert out.part_starts[0] == 0 and (np.diff(out.part_starts) > 0).all()
        for k in range(out.probs.shape[1]):
            seconds = embedder.samples.get((w, k), 0) / SR
            assert out.part_seconds[k].sum() == pytest.approx(seconds)
            if seconds:
                np.testing.assert_allclose(
                    out.part_sums[k].sum(0), embedder.sums[(w, k)], rtol=1e-5
                )


def test_a_local_speaker_mixing_two_persons_is_cut_between_them():
    truth, done = mixed_windows()
    assert split_parts(done, LinkConfig()) is done  # off by default
    for out in split_parts(done, CUT):
        assert out.probs.shape[1] == 3  # column 0 in two, column 1 untouched
        for c in range(2):  # each cut-off column: one person, its own embedding
            active = out.probs[:, c] > 0.5
            speakers = np.flatnonzero(truth[out.start : out.stop][active].sum(0))
            assert len(speakers) == 1
            assert out.embeddings[c].tolist() == np.eye(3)[speakers[0]].tolist()
        assert not (out.active[:, 0] & out.active[:, 1]).any()  # never together: may link


def test_agreeing_or_short_parts_are_not_cut():
    out = WindowOutput(0, np.full((200, 1), 0.9, np.float32), np.ones((1, 4)),
                       embeddings=np.ones((1, 2), np.float32), embedded=np.ones(1, bool),
                       part_starts=np.array([0, 100]),
                       part_sums=np.array([[[3.0, 0.0], [2.9, 0.5]]], np.float32),
                       part_seconds=np.array([[3.0, 3.0]], np.float32))  # fmt: skip
    assert split_window(out, 0.5, 1.0) is out  # cosine 0.99
    apart = WindowOutput(**{**out.__dict__, "part_sums": np.array([[[3.0, 0.0], [0.0, 0.5]]], np.float32)})  # fmt: skip
    cut = split_window(apart, 0.5, 1.0)
    assert cut.probs.shape[1] == 2 and cut.embedded.all()
    assert (cut.probs[:100, 1] == 0).all() and (cut.probs[100:, 0] == 0).all()
    short = WindowOutput(**{**apart.__dict__, "part_seconds": np.array([[3.0, 0.5]], np.float32)})  # fmt: skip
    assert split_window(short, 0.5, 1.0) is short  # the second part heard too briefly


def test_the_speaker_encoder_embeds_each_part_over_its_frames_alone():
    class MeanEncoder:  # stands in for diarize.models.speaker: the mean of its input rows
        class config:
            embedding = 2

        @staticmethod
        def parameters():
            yield torch.zeros(1)

        @staticmethod
        def embed(x):
            return x.mean(0)

    frames = np.zeros((200, 3, 2), np.float32)  # (frames, sub-frames, dims)
    frames[:100, :, 0], frames[100:, :, 1] = 1.0, 1.0  # one voice per half
    alone = np.zeros((200, 2), bool)
    alone[10:60, 0], alone[120:190, 0], alone[100:103, 1] = True, True, True
    parts = embed_parts(MeanEncoder(), frames, alone, np.array([0, 100]), 0.1)
    np.testing.assert_allclose(parts["part_seconds"], [[5.0, 7.0], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(parts["part_sums"][0], [[5.0, 0.0], [0.0, 7.0]], rtol=1e-6)
    assert not parts["part_sums"][1].any()  # 3 frames: fewer than a part needs
