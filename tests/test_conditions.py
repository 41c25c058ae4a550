"""Standard scoring conditions: the settings each benchmark's literature reports, and how
score_condition applies them (collar, skip-overlap, md-eval's reference-extent UEM)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyannote.core import Annotation, Segment, Timeline

from diarize.cli import main
from diarize.conditions import resolve_setting
from diarize.scoring import (
    CONDITIONS,
    get_condition,
    reference_extent,
    score,
    score_condition,
)
from diarize.utils import DiarizeError

ROOT = Path(__file__).resolve().parents[1]

# (collar per side, skip overlap) as the sources cited in diarize/scoring.py report them
EXPECTED = {
    "callhome": (0.25, False),  # EEND recipes: md-eval.pl -c 0.25
    "callhome-kaldi": (0.25, True),  # Kaldi callhome_diarization v2: md-eval.pl -1 -c 0.25
    "dihard3": (0.0, False),  # DIHARD III evaluation plan
    "ami": (0.0, False),  # pyannote benchmarks = VBx "Full"
    "ami-fair": (0.25, False),  # VBx "Fair"
    "ami-forgiving": (0.25, True),  # VBx "Forgiving"
    "voxconverse": (0.25, False),  # VoxSRC
    "voxconverse-full": (0.0, False),  # pyannote benchmarks
}


def ann(*turns: tuple[float, float, str], uri: str = "f") -> Annotation:
    a = Annotation(uri=uri)
    for onset, offset, speaker in turns:
        a[Segment(onset, offset), a.new_track(Segment(onset, offset))] = speaker
    return a


def test_each_condition_has_its_published_setting_and_a_source():
    assert {n: (c.collar, c.skip_overlap) for n, c in CONDITIONS.items()} == EXPECTED
    assert all(c.source and c.uem for c in CONDITIONS.values())


def test_cli_help_lists_every_name_and_readme_cites_each(capsys):
    for command in ("score", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(name in text for name in CONDITIONS), command
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    for name in CONDITIONS:
        assert f"`{name}`" in section, name


def test_score_condition_is_score_with_its_setting_over_the_reference_extent():
    refs = {
        "a": ann((2, 9, "A"), (6, 12, "B"), uri="a"),
        "b": ann((1, 4, "C"), uri="b"),
    }
    hyps = {"a": ann((0, 7, "x"), (7, 14, "y"), uri="a"), "b": ann((0, 6, "z"), uri="b")}
    extents = {"a": Timeline([Segment(2, 12)], uri="a"), "b": Timeline([Segment(1, 4)], uri="b")}
    assert {u: reference_extent(r) for u, r in refs.items()} == extents
    for name, (collar, skip) in EXPECTED.items():
        got = score_condition(refs, hyps, None, name)
        want = score(refs, hyps, extents, collar, skip)
        assert got.condition == name and got.to_json()["condition"] == name
        assert (got.collar, got.skip_overlap) == (collar, skip)
        assert got.files == want.files and got.total == want.total


def test_given_uem_wins_over_the_reference_extent():
    refs, hyps = {"a": ann((2, 4, "A"), uri="a")}, {"a": ann((0, 4, "x"), uri="a")}
    whole = {"a": Timeline([Segment(0, 6)], uri="a")}
    assert score_condition(refs, hyps, None, "dihard3").total.false_alarm == 0
    assert score_condition(refs, hyps, whole, "dihard3").total.false_alarm == 2


def test_empty_reference_scores_nothing_and_unknown_name_is_an_error():
    report = score_condition({"a": ann(uri="a")}, {"a": ann((0, 1, "x"), uri="a")}, None, "ami")
    assert report.total.scored == 0 and report.total.der == 0 and report.total.jer == 0
    with pytest.raises(DiarizeError, match="unknown scoring condition 'amy'.*ami-fair"):
        get_condition("amy")


def test_resolve_setting():
    assert resolve_setting(None, None, False) == (0.25, False)
    assert resolve_setting(None, 0.0, True) == (0.0, True)
    assert resolve_setting("callhome-kaldi", None, False) == (0.25, True)
    with pytest.raises(DiarizeError, match="leave out --collar and --skip-overlap"):
        resolve_setting("ami", 0.25, False)
    with pytest.raises(DiarizeError, match="unknown scoring condition 'x'"):
        resolve_setting("x", None, False)
