"""Training chunks: chunk spans, per-chunk labels, dropping crowded chunks, collation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from pyannote.core import Annotation, Segment
from torch.utils.data import DataLoader

from diarize.audio import load_audio
from diarize.data.dataset import ChunkDataset, chunk_spans, collate, samples_per_frame
from diarize.data.kaldi import DiarizationSet, Recording

SR = 8000
SHIFT = 0.1  # seconds per frame: 800 samples
CHUNK = 10  # frames (1 s)


class Geometry:
    """Stand-in frontend: one frame per 800 samples."""

    frame_shift = SHIFT

    def num_frames(self, num_samples: int) -> int:
        return num_samples // 800


def _recording(tmp_path: Path, uri: str, seconds: float, turns) -> Recording:
    path = tmp_path / f"{uri}.wav"
    ramp = (np.arange(int(seconds * SR)) % 997 / 997).astype(np.float32)  # recognisable offsets
    sf.write(str(path), ramp, SR, subtype="FLOAT")
    ann = Annotation(uri=uri)
    for start, end, speaker in turns:
        ann[Segment(start, end), ann.new_track(Segment(start, end))] = speaker
    return Recording(uri, str(path), ann, None, seconds)


@pytest.fixture
def data(tmp_path: Path) -> DiarizationSet:
    a = _recording(
        tmp_path, "a", 3.0, [(0.0, 0.45, "zed"), (0.3, 1.5, "amy"), (1.2, 3.0, "bob")]
    )  # 30 frames -> chunks at 0, 10, 20
    crowd = [(0.1 * k, 0.9, f"p{k}") for k in range(1, 6)]  # five speakers in chunk 0
    b = _recording(tmp_path, "b", 2.5, [*crowd, (2.0, 2.5, "p1")])  # 25 frames: 0, 10, tail 20+5
    c = _recording(tmp_path, "c", 1.2, [])  # 12 frames: chunk 0; a 2-frame tail is dropped
    d = _recording(tmp_path, "d", 0.4, [(0.0, 0.4, "x")])  # 4 frames: shorter than half a chunk
    return DiarizationSet(str(tmp_path), (a, b, c, d))


def test_chunk_spans():
    assert chunk_spans(30, 10, 10) == [(0, 10), (10, 10), (20, 10)]
    assert chunk_spans(25, 10, 10) == [(0, 10), (10, 10), (20, 5)]  # half a chunk: kept
    assert chunk_spans(24, 10, 10) == [(0, 10), (10, 10)]  # less than half: dropped
    assert chunk_spans(4, 10, 10) == []
    assert chunk_spans(5, 10, 10) == [(0, 5)]
    assert chunk_spans(25, 10, 5) == [(0, 10), (5, 10), (10, 10), (15, 10)]  # no redundant tail
    assert chunk_spans(23, 10, 5) == [(0, 10), (5, 10), (10, 10), (15, 8)]


def test_chunk_index_and_dropping(data):
    ds = ChunkDataset(data, Geometry(), CHUNK, sample_rate=SR, max_speakers=4)
    assert ds.samples_per_frame == 800
    spans = [(data.recordings[c.recording].id, c.start_frame, c.num_frames) for c in ds.chunks]
    assert spans == [
        ("a", 0, 10),
        ("a", 10, 10),
        ("a", 20, 10),
        ("b", 10, 10),
        ("b", 20, 5),
        ("c", 0, 10),
    ]
    assert [c.num_speakers for c in ds.chunks] == [2, 2, 1, 0, 1, 0]
    assert ds.num_dropped == 1 and len(ds) == 6
    kept = ChunkDataset(data, Geometry(), CHUNK, sample_rate=SR, drop_more_speakers=False)
    assert len(kept) == 7 and kept.num_dropped == 0 and kept.chunks[3].num_speakers == 5
    assert len(kept[3]["labels"][0]) == 5


def test_items_waves_and_labels(data):
    ds = ChunkDataset(data, Geometry(), CHUNK, sample_rate=SR, max_speakers=4)
    first = ds[0]
    assert first["uri"] == "a" and first["start"] == 0.0 and first["num_speakers"] == 2
    assert first["wave"].dtype == torch.float32 and first["wave"].shape == (8000,)
    assert Geometry().num_frames(len(first["wave"])) == CHUNK
    lab = first["labels"].numpy()  # columns by first activity: zed (frame 0), amy (frame 3)
    assert lab.shape == (10, 2) and lab.dtype == np.float32
    assert (lab[0:4, 0] == 1).all() and lab[4:, 0].sum() == 0  # zed [0, 0.45): centres .05-.35
    assert (lab[3:10, 1] == 1).all() and lab[:3, 1].sum() == 0  # amy from 0.3
    second = ds[1]["labels"].numpy()  # [1.0, 2.0): amy, bob; zed absent
    assert second.shape == (10, 2)
    assert (second[0:5, 0] == 1).all() and second[5:, 0].sum() == 0
    assert (second[2:10, 1] == 1).all() and second[:2, 1].sum() == 0
    assert (ds[2]["labels"].numpy() == 1).all() and ds[2]["labels"].shape == (10, 1)


def test_wave_is_the_right_excerpt(data):
    ds = ChunkDataset(data, Geometry(), CHUNK, sample_rate=SR)
    whole = load_audio(data.recordings[0].path, SR)
    np.testing.assert_array_equal(ds[1]["wave"].numpy(), whole[8000:16000])
    tail = ds[4]  # b, frames [20, 25)
    assert (tail["uri"], tail["start"], tail["wave"].shape) == ("b", 2.0, (4000,))
    assert tail["labels"].shape == (5, 1) and (tail["labels"] == 1).all()
    assert ds[3]["labels"].shape == (10, 0) and ds[3]["num_speakers"] == 0


def test_counts_agree_with_items(data):
    ds = ChunkDataset(data, Geometry(), 7, sample_rate=SR, shift=3)
    for i, chunk in enumerate(ds.chunks):
        assert ds[i]["num_speakers"] == chunk.num_speakers == ds[i]["labels"].shape[1]


def test_collate_pads(data):
    ds = ChunkDataset(data, Geometry(), CHUNK, sample_rate=SR)
    items = [ds[0], ds[4], ds[3]]  # (10 frames, 2 spk), (5, 1), (10, 0)
    batch = collate(items)
    assert batch["wave"].shape == (3, 8000) and batch["labels"].shape == (3, 10, 2)
    assert batch["lengths"].tolist() == [8000, 4000, 8000]
    assert batch["frame_lengths"].tolist() == [10, 5, 10]
    assert batch["num_speakers"].tolist() == [2, 1, 0]
    assert (batch["wave"][1, 4000:] == 0).all()
    torch.testing.assert_close(batch["wave"][1, :4000], items[1]["wave"])
    torch.testing.assert_close(batch["labels"][0], items[0]["labels"])
    assert (batch["labels"][1, :5, 0] == 1).all() and batch["labels"][1, 5:].sum() == 0
    assert batch["labels"][1, :, 1].sum() == 0 and batch["labels"][2].sum() == 0


def test_dataloader_is_deterministic(data):
    ds = ChunkDataset(data, Geometry(), CHUNK, sample_rate=SR)

    def order(seed: int) -> list[tuple]:
        loader = DataLoader(
            ds,
            batch_size=2,
            shuffle=True,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(seed),
        )
        return [tuple(b["lengths"].tolist() + b["num_speakers"].tolist()) for b in loader]

    assert order(3) == order(3)


def test_geometry_errors(data):
    with pytest.raises(ValueError, match="987.2"):
        samples_per_frame(0.1234, 8000)

    class Bad(Geometry):
        def num_frames(self, num_samples: int) -> int:
            return num_samples // 800 - 1

    with pytest.raises(ValueError, match="makes 9 frames of 8000 samples, expected 10"):
        ChunkDataset(data, Bad(), CHUNK, sample_rate=SR)
