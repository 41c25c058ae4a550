"""Frame labels from turns (centre sampling) and turns from frame labels."""

from __future__ import annotations

import numpy as np
import pytest
from pyannote.core import Annotation, Segment

from diarize.data.labels import frame_labels, labels_to_annotation


def _annotation(turns: list[tuple[float, float, str]], uri: str = "rec") -> Annotation:
    ann = Annotation(uri=uri)
    for start, end, speaker in turns:
        seg = Segment(start, end)
        ann[seg, ann.new_track(seg)] = speaker
    return ann


def test_centre_sampling_exact_slices():
    # shift 0.1 s: frame i is active when its centre (i + 0.5) * 0.1 lies in the turn
    ann = _annotation([(0.2, 0.6, "A"), (0.25, 0.64, "B")])
    lab = frame_labels(ann, 10, 0.1)
    assert lab.shape == (10, 2) and lab.dtype == np.float32
    assert (lab[2:6, 0] == 1).all() and lab[:2, 0].sum() == 0 and lab[6:, 0].sum() == 0
    # B: centres 0.25 (frame 2, start is inclusive) ... 0.55 (frame 5); 0.65 > 0.64
    assert (lab[2:6, 1] == 1).all() and lab[:2, 1].sum() == 0 and lab[6:, 1].sum() == 0


def test_turn_between_centres_gives_no_frame():
    ann = _annotation([(0.16, 0.24, "A")])  # centres 0.15 and 0.25 both outside
    assert frame_labels(ann, 5, 0.1).sum() == 0


def test_overlap_and_speaker_order():
    ann = _annotation([(0.0, 0.5, "zed"), (0.3, 0.8, "amy")])
    lab = frame_labels(ann, 10, 0.1)  # columns sorted by label: amy, zed
    assert (lab[3:8, 0] == 1).all() and lab[:3, 0].sum() == 0 and lab[8:, 0].sum() == 0
    assert (lab[0:5, 1] == 1).all() and lab[5:, 1].sum() == 0
    assert (lab[3:5].sum(axis=1) == 2).all()  # overlap frames
    given = frame_labels(ann, 10, 0.1, speakers=["zed", "amy", "bob"])
    assert given.shape == (10, 3)
    np.testing.assert_array_equal(given[:, 0], lab[:, 1])
    np.testing.assert_array_equal(given[:, 1], lab[:, 0])
    assert given[:, 2].sum() == 0


def test_offset_and_clipping():
    ann = _annotation([(0.9, 1.35, "A"), (3.0, 4.0, "B")])
    lab = frame_labels(ann, 4, 0.1, offset=1.0)  # frames cover [1.0, 1.4)
    assert lab.shape == (4, 2)
    assert (lab[0:3, 0] == 1).all() and lab[3, 0] == 0  # centres 1.05 1.15 1.25 | 1.35 out
    assert lab[:, 1].sum() == 0  # B is after the window


def test_unknown_speaker_is_error():
    with pytest.raises(ValueError, match="'B'"):
        frame_labels(_annotation([(0.0, 1.0, "B")]), 10, 0.1, speakers=["A"])


def test_labels_to_annotation_turns():
    act = np.zeros((10, 2), dtype=bool)
    act[2:5, 0] = True
    act[7:10, 0] = True
    act[0:3, 1] = True
    ann = labels_to_annotation(act, 0.1, "rec", ["A", "B"], offset=2.0)
    turns = sorted((round(s.start, 6), round(s.end, 6), lab) for s, _, lab in ann.itertracks(True))
    assert turns == [(2.0, 2.3, "B"), (2.2, 2.5, "A"), (2.7, 3.0, "A")]
    assert ann.uri == "rec"


@pytest.mark.parametrize("offset", [0.0, 3.3])
def test_round_trip(rng, offset):
    act = rng.random((200, 3)) < 0.4  # (frames, speakers)
    ann = labels_to_annotation(act, 0.08, "r", ["s0", "s1", "s2"], offset=offset)
    back = frame_labels(ann, 200, 0.08, speakers=["s0", "s1", "s2"], offset=offset)
    np.testing.assert_array_equal(back > 0, act)


def test_shape_mismatch_is_error():
    with pytest.raises(ValueError, match=r"\(frames, 2 speakers\)"):
        labels_to_annotation(np.zeros((5, 3), dtype=bool), 0.1, "r", ["a", "b"])
