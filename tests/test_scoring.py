"""DER as md-eval-22.pl: hand-computed cases (each checked against md-eval by hand), and the
random cross-check of tools/compare_md_eval.py when MD_EVAL points at md-eval-22.pl."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

from diarize.scoring import (
    FileScore,
    default_uem,
    score,
    score_file,
    scored_region,
    speaker_mapping,
)
from diarize.utils import DiarizeError

ROOT = Path(__file__).resolve().parents[1]


def ann(*turns: tuple[float, float, str], uri: str = "f") -> Annotation:
    """Annotation of (onset, offset, speaker) turns; turns of one speaker may overlap."""
    a = Annotation(uri=uri)
    for onset, offset, speaker in turns:
        seg = Segment(onset, offset)
        a[seg, a.new_track(seg)] = speaker
    return a


def uem(*regions: tuple[float, float]) -> Timeline:
    return Timeline([Segment(a, b) for a, b in regions], uri="f")


def components(s: FileScore) -> tuple[float, ...]:
    return tuple(round(x, 9) for x in (s.missed, s.false_alarm, s.confusion, s.scored))


def test_perfect_hypothesis_with_other_labels():
    ref = ann((0, 5, "A"), (5, 10, "B"))
    hyp = ann((0, 5, "B"), (5, 10, "A"))  # same names, swapped: must map, not match by name
    s = score_file(ref, hyp, uem((0, 10)), collar=0.0)
    assert components(s) == (0, 0, 0, 10) and s.der == 0


@pytest.mark.parametrize("collar, scored, missed", [(0.0, 10, 1), (0.25, 9.5, 0.75), (0.5, 9, 0.5)])
def test_collar_is_per_side(collar, scored, missed):
    ref, hyp = ann((0, 10, "A")), ann((1, 10, "x"))
    s = score_file(ref, hyp, uem((0, 10)), collar=collar)
    assert components(s) == (missed, 0, 0, scored)
    # pyannote.metrics' collar is the total width
    pyannote = DiarizationErrorRate(collar=2 * collar)(ref, hyp, uem=uem((0, 10)))
    assert s.der == pytest.approx(100 * pyannote)


def test_collar_region_touching_boundaries():
    region = scored_region(ann((2, 4, "A"), (4, 6, "B")), uem((0, 8)), 0.5, False)
    assert [(s.start, s.end) for s in region] == [(0, 1.5), (2.5, 3.5), (4.5, 5.5), (6.5, 8)]


def test_uem_crops_and_default_uem_is_union_extent():
    ref, hyp = ann((0, 10, "A")), ann((0, 10, "x"), (12, 14, "y"))
    assert components(score_file(ref, hyp, uem((0, 10)), collar=0)) == (0, 0, 0, 10)
    assert default_uem(ref, hyp) == uem((0, 14))
    s = score({"f": ref}, {"f": hyp}, None, collar=0).files["f"]
    assert components(s) == (0, 2, 0, 10) and s.der == 20


def test_overlapping_speech_and_skip_overlap():
    ref = ann((0, 6, "A"), (4, 9, "B"))
    hyp = ann((0, 10, "x"))  # x -> A (6 s against 5 s)
    s = score_file(ref, hyp, uem((0, 10)), collar=0)
    # [4, 6]: two speakers, one found -> 2 s missed; [6, 9]: B as A -> 3 s; [9, 10]: 1 s FA
    assert components(s) == (2, 1, 3, 11)
    s = score_file(ref, hyp, uem((0, 10)), collar=0, skip_overlap=True)
    assert components(s) == (0, 1, 3, 7)


@pytest.mark.parametrize(
    "collar, skip_overlap, scored",
    [(0.0, False, 10), (0.25, False, 8.5), (0.0, True, 8)],
)
def test_overlapping_turns_of_one_speaker(collar, skip_overlap, scored):
    # md-eval: the speaker counts once (merged), but collars go around every turn boundary
    # (0.25 around 0, 4, 6, 10) and -1 drops [4, 6], where two turns overlap
    ref = ann((0, 6, "A"), (4, 10, "A"))
    hyp = ann((0, 6, "x"), (4, 10, "x"))
    s = score_file(ref, hyp, uem((0, 10)), collar=collar, skip_overlap=skip_overlap)
    assert components(s) == (0, 0, 0, scored)
    assert (s.ref_speakers, s.hyp_speakers) == (1, 1)


def test_empty_and_missing_hypothesis_are_all_missed():
    refs = {"a": ann((0, 4, "A"), uri="a"), "b": ann((1, 3, "B"), uri="b")}
    report = score(refs, {"a": Annotation(uri="a")}, None, collar=0)
    assert components(report.files["a"]) == (4, 0, 0, 4)
    assert components(report.files["b"]) == (2, 0, 0, 2)
    assert report.total.der == 100
    assert report.missing_hypotheses == ("b",)


def test_more_hypothesis_than_reference_speakers():
    ref = ann((0, 10, "A"))
    hyp = ann((0, 6, "x"), (6, 10, "y"), (10, 12, "z"))
    s = score_file(ref, hyp, uem((0, 12)), collar=0)
    assert components(s) == (0, 2, 4, 10) and s.der == 60
    assert (s.ref_speakers, s.hyp_speakers) == (1, 3)


def test_mapping_is_made_on_the_uem_before_collars():
    # on the whole UEM x overlaps A 3 s, y 2.5 s: md-eval maps x -> A. Inside the collars
    # y overlaps A more (2 s against 1.5 s), which pyannote's DER would map instead.
    ref = ann((0, 1, "A"), (2, 3, "A"), (4, 5, "A"), (10, 12.5, "A"))
    hyp = ann((0, 1, "x"), (2, 3, "x"), (4, 5, "x"), (10, 12.5, "y"))
    s = score_file(ref, hyp, uem((0, 13)), collar=0.25)
    assert components(s) == (0, 0, 2, 3.5)  # md-eval-22.pl: 57.14 %
    assert s.der == pytest.approx(400 / 7)
    pyannote = DiarizationErrorRate(collar=0.5)(ref, hyp, uem=uem((0, 13)))
    assert 100 * pyannote == pytest.approx(300 / 7)


def test_tied_mappings_break_as_md_eval():
    # x overlaps A 2 s and B 1 s, y overlaps A 1 s: {A: x} and {A: y, B: x} both total 2 s.
    # md-eval takes the one with more pairs, {A: y, B: x}; SciPy's (pyannote) takes {A: x},
    # which would give a confusion of 1.25 s inside the collars.
    ref = ann((0, 3, "A"), (3, 4, "B"))
    hyp = ann((0, 2, "x"), (2, 3, "y"), (3, 4, "x"))
    assert speaker_mapping(ref, hyp, uem((0, 4))) == {"A": "y", "B": "x"}
    s = score_file(ref, hyp, uem((0, 4)), collar=0.25)
    assert components(s) == (0, 0, 1.75, 3)  # md-eval-22.pl -c 0.25: 58.33 %


def test_skip_overlap_abutting_zones_as_md_eval():
    # overlap zones [2, 5] (A+B) and [5, 8] (A+C) touch at 5 s. md-eval-22.pl -1 reopens
    # scoring at 5 s and does not close it for the zone opening at that same instant, so with
    # the UEM ending at 7 s it scores [0, 2] and [5, 7]; with the UEM ending at 9 s the zone's
    # end (8 s) restarts scoring there: [0, 2] and [8, 9].
    ref = ann((0, 10, "A"), (2, 5, "B"), (5, 8, "C"))
    hyp = ann((0, 10, "x"), (6, 10, "y"))
    assert scored_region(ref, uem((0, 7)), 0, True) == uem((0, 2), (5, 7))
    s = score_file(ref, hyp, uem((0, 7)), collar=0, skip_overlap=True)
    assert components(s) == (1, 0, 0, 6)  # md-eval-22.pl -c 0 -1: scored 6 s, missed 1 s
    s = score_file(ref, hyp, uem((0, 9)), collar=0, skip_overlap=True)
    assert components(s) == (0, 1, 0, 3)  # md-eval-22.pl -c 0 -1: scored 3 s, FA 1 s


def test_report_total_json_and_speaker_counts():
    refs = {"a": ann((0, 4, "A"), (4, 8, "B"), uri="a"), "b": ann((0, 2, "C"), uri="b")}
    hyps = {"a": ann((0, 8, "x"), uri="a"), "b": ann((0, 2, "y"), uri="b"), "c": ann(uri="c")}
    report = score(refs, hyps, None, collar=0)
    assert report.unscored_hypotheses == ("c",)
    assert components(report.total) == (0, 0, 4, 10)
    assert report.speaker_count_accuracy == 0.5
    js = report.to_json()
    assert js == {
        "condition": None,
        "collar": 0,
        "skip_overlap": False,
        "files": {
            "a": {
                "der": 50.0,
                "jer": 75.0,
                "missed": 0.0,
                "false_alarm": 0.0,
                "confusion": 4.0,
                "scored": 8.0,
                "ref_speakers": 2,
                "hyp_speakers": 1,
            },
            "b": {
                "der": 0.0,
                "jer": 0.0,
                "missed": 0.0,
                "false_alarm": 0.0,
                "confusion": 0.0,
                "scored": 2.0,
                "ref_speakers": 1,
                "hyp_speakers": 1,
            },
        },
        "total": {
            "der": 40.0,
            "jer": 50.0,
            "missed": 0.0,
            "false_alarm": 0.0,
            "confusion": 4.0,
            "scored": 10.0,
            "ref_speakers": 3,
            "hyp_speakers": 2,
            "speaker_count_accuracy": 0.5,
        },
    }
    table = report.format_table().splitlines()
    assert table[1].startswith("a ") and table[-2].startswith("TOTAL")
    assert "40.00" in table[-2] and "1/2" in table[-1]


def test_nothing_scored_is_zero_or_hundred():
    s = score_file(ann((0, 2, "A")), ann((5, 6, "x")), uem((4, 8)), collar=0)
    assert components(s) == (0, 1, 0, 0) and s.der == 100
    assert score_file(ann((0, 2, "A")), ann(), uem((4, 8)), collar=0).der == 0


def test_uem_must_cover_every_reference_and_collar_be_valid():
    with pytest.raises(DiarizeError, match="'b'"):
        score({"a": ann(uri="a"), "b": ann(uri="b")}, {}, {"a": uem((0, 1))}, collar=0)
    with pytest.raises(ValueError, match="-1"):
        score({}, {}, None, collar=-1)


def test_jer_by_hand_and_without_collar_or_skip_overlap():
    # A 0-10 mapped to x 2-12: union 12, missed 2, false alarm 2 -> 1/3; B 10-14 unmapped -> 1
    ref, hyp = ann((0, 10, "A"), (10, 14, "B")), ann((2, 12, "x"))
    for collar, skip in [(0.0, False), (0.5, False), (0.25, True)]:
        s = score_file(ref, hyp, uem((0, 14)), collar=collar, skip_overlap=skip)
        assert (s.jer_speakers, s.jer_error) == (2, pytest.approx(1 / 3 + 1))
        assert s.jer == pytest.approx(100 * (1 / 3 + 1) / 2)
    # the UEM still crops: over 0-10 A's union is 10, missed 2, false alarm 0 -> 0.2, B unseen
    s = score_file(ref, hyp, uem((0, 10)), collar=0)
    assert (s.jer_speakers, s.jer) == (1, pytest.approx(20.0))


def test_jer_merges_one_speakers_overlapping_turns():
    ref = ann((0, 6, "A"), (4, 10, "A"))  # one speaker, 0-10 once merged
    s = score_file(ref, ann((0, 10, "x")), uem((0, 10)), collar=0)
    assert s.jer == 0 and s.der == 0


def test_jer_total_is_the_mean_over_all_reference_speakers_as_pyannote_accumulates():
    refs = {
        "a": ann((0, 4, "A"), (4, 8, "B"), uri="a"),
        "b": ann((0, 3, "C"), (1, 6, "D"), (6, 9, "E"), uri="b"),
    }
    hyps = {
        "a": ann((0, 5, "x"), (5, 8, "y"), uri="a"),
        "b": ann((0, 2, "u"), (2, 9, "v"), uri="b"),
    }
    report = score(refs, hyps, None, collar=0)
    metric = JaccardErrorRate()
    for uri in refs:
        metric(refs[uri], hyps[uri], uem=default_uem(refs[uri], hyps[uri]))
        assert report.files[uri].jer == pytest.approx(
            100 * metric.results_[-1][1]["speaker error"] / metric.results_[-1][1]["speaker count"]
        )
    assert report.total.jer_speakers == 5
    assert report.total.jer == pytest.approx(100 * abs(metric))


def test_jer_without_reference_speakers_is_zero_or_hundred():
    assert score_file(ann(), ann(), uem((0, 5)), collar=0).jer == 0
    s = score_file(ann(), ann((1, 2, "x")), uem((0, 5)), collar=0)
    assert (s.jer_speakers, s.jer) == (0, 100)
    assert score_file(ann((0, 2, "A")), ann(), uem((0, 5)), collar=0).jer == 100  # all missed
    report = score({"a": ann(uri="a")}, {"a": ann((1, 2, "x"), uri="a")}, None, collar=0)
    assert report.total.jer == 100


@pytest.mark.skipif(
    not (os.environ.get("MD_EVAL") and shutil.which("perl")),
    reason="set MD_EVAL to md-eval-22.pl (and have perl) to cross-check",
)
def test_agrees_with_md_eval_on_random_pairs():
    cmd = [sys.executable, str(ROOT / "tools" / "compare_md_eval.py")]
    cmd += ["--md-eval", os.environ["MD_EVAL"], "--trials", "30", "--seed", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


def test_percentages_are_der_and_its_parts_in_percent_of_the_scored_time():
    total = FileScore(missed=3.0, false_alarm=1.5, confusion=0.5, scored=40.0, ref_speakers=2,
                      hyp_speakers=2)  # fmt: skip
    parts = total.percentages()
    assert parts == {"der": 12.5, "missed": 7.5, "false_alarm": 3.75, "confusion": 1.25}
    assert total.percentages(digits=0)["false_alarm"] == 4.0
