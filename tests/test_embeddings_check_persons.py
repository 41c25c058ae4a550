"""tools/check_persons.py: segmenting a person's clips and flagging persons, on hand-made
inputs (the real-voice run is in test_embeddings_pretrained.py)."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch
from conftest import load_script

from diarize.data.kaldi import Utterance

check_persons = load_script("tools/check_persons.py")


def test_segments_cut_the_joined_clips(tmp_path):
    utts = []
    for i, seconds in enumerate([1.0, 2.5, 0.4]):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, np.full(int(seconds * 16000), 0.1 * (i + 1), np.float32), 16000)
        utts.append(Utterance(f"u{i}", str(path), 0.0, seconds, "s"))
    # joined: 1.0 + 0.1 + 2.5 + 0.1 + 0.4 + 0.1 = 4.2 s -> four 1 s segments, 0.2 s dropped
    segments = check_persons.segments_of(utts, seconds=1.0, max_segments=8)
    assert [len(s) for s in segments] == [16000] * 4
    assert abs(segments[0][0] - 0.1) < 1e-3  # clip 0 (16-bit wav)
    assert segments[1][0] == 0.0 and abs(segments[1][1600] - 0.2) < 1e-3  # pause, clip 1
    assert len(check_persons.segments_of(utts, seconds=1.0, max_segments=2)) == 2
    only = check_persons.segments_of(utts[2:], seconds=3.0, max_segments=8)
    assert [len(s) for s in only] == [int(0.5 * 16000)]  # all there is: kept


def test_report_flags_mixed_and_duplicate_persons():
    basis = torch.eye(4)
    embeddings = {
        "one": basis[[0, 0, 0]],  # one voice
        "twin": torch.nn.functional.normalize(basis[[0, 0]] + 0.1 * basis[[1, 1]], dim=1),
        "mixed": basis[[2, 3]],  # two voices under one name
    }
    rows = {r.person: r for r in check_persons.report(embeddings, low=0.5, like=0.7)}
    assert rows["one"].flags == ("LIKE twin",) and rows["twin"].flags == ("LIKE one",)
    assert rows["one"].within == 1.0 and rows["one"].segments == 3
    assert rows["mixed"].flags == ("LOW",) and rows["mixed"].within == 0.0
    assert abs(rows["mixed"].self_min - 2**-0.5) < 1e-6
