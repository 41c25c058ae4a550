"""diarize stats: hand-built sets whose figures are worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pyannote.core import Annotation, Segment, Timeline

from diarize.cli import main
from diarize.data.kaldi import DiarizationSet, Recording
from diarize.data.stats import coverage, set_stats


def ann(uri: str, *turns: tuple[float, float, str]) -> Annotation:
    a = Annotation(uri=uri)
    for onset, offset, speaker in turns:
        a[Segment(onset, offset), a.new_track(Segment(onset, offset))] = speaker
    return a


# a: A 0-2, 3-5 and 4.5-5.5 (merged: 3-5.5); B 4-6, 8-9; whole 10 s recording
# b: C 0-2, 3-5 inside a UEM of 1-4 s: 1-2, 3-4
TURNS_A = [(0, 2, "A"), (3, 5, "A"), (4.5, 5.5, "A"), (4, 6, "B"), (8, 9, "B")]
TURNS_B = [(0, 2, "C"), (3, 5, "C")]


def two_recordings() -> DiarizationSet:
    a = Recording("a", "a.wav", ann("a", *TURNS_A), None, 10.0)
    b = Recording("b", "b.wav", ann("b", *TURNS_B), Timeline([Segment(1, 4)], uri="b"), 5.0)
    return DiarizationSet("x", (a, b))


def test_figures_by_hand():
    s = set_stats(two_recordings())
    assert (s.recordings, s.duration, s.speakers) == (2, 13.0, {2: 1, 1: 1})
    # speech: a 0-2, 3-6, 8-9 (6 s) + b 2 s; overlap: a 4-5.5
    assert (s.speech, s.overlap) == (8.0, 1.5)
    assert s.speech_fraction == pytest.approx(8 / 13) and s.overlap_fraction == 1.5 / 8
    assert (s.turns.count, s.turns.total, s.turns.max) == (6, 9.5, 2.5)
    assert s.turns.median == 1.5 and s.turns.mean == pytest.approx(9.5 / 6)
    assert (s.pauses.count, s.pauses.total, s.pauses.max) == (3, 4.0, 2.0)  # 1 (A), 2 (B), 1 (C)
    assert (s.silences.count, s.silences.total) == (3, 4.0)  # a: 2-3, 6-8; b: 2-3
    assert "2 recordings, 0.00 h, 1-2 speakers per recording (mean 1.5)" in s.summary_line()
    assert "overlap 18.8 % of speech" in s.summary_line()


def test_touching_turns_of_two_speakers_leave_no_silence_and_no_overlap():
    union, overlapped = coverage([[(0.0, 2.0)], [(2.0, 4.0)], [(1.0, 1.5), (3.0, 3.5)]])
    assert union == [(0.0, 4.0)] and overlapped == [(1.0, 1.5), (3.0, 3.5)]
    empty = set_stats(DiarizationSet("x", (Recording("s", "s.wav", ann("s"), None, 3.0),)))
    assert (empty.speakers, empty.speech, empty.turns.count) == ({0: 1}, 0.0, 0)
    assert empty.overlap_fraction == 0.0


def test_cli_on_a_kaldi_directory(tmp_path: Path, capsys):
    root = tmp_path / "set"
    root.mkdir()
    for uri, seconds in (("a", 10.0), ("b", 5.0)):
        sf.write(str(root / f"{uri}.wav"), np.zeros(int(seconds * 8000), np.float32), 8000)
    (root / "wav.scp").write_text("a a.wav\nb b.wav\n")
    rttm = [
        f"SPEAKER {uri} 1 {on} {off - on} <NA> <NA> {spk} <NA> <NA>\n"
        for uri, turns in (("a", TURNS_A), ("b", TURNS_B))
        for on, off, spk in turns
    ]
    (root / "rttm").write_text("".join(rttm))
    (root / "uem").write_text("b 1 1 4\n")
    out = tmp_path / "stats.json"
    assert main(["stats", str(root), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "recordings        2" in printed and "overlap           18.8 % of speech" in printed
    figures = json.loads(out.read_text())
    assert figures["speakers"] == {"1": 1, "2": 1} and figures["overlap"] == 1.5
    assert figures["turns"]["count"] == 6 and figures["pauses"]["total"] == 4.0
