"""bench/long_meetings.py's helpers: where a meeting is cut into short files, and the
reference of each piece; the linking settings it sweeps."""

import pytest
from conftest import load_script
from pyannote.core import Annotation, Segment


@pytest.fixture(scope="module")
def bench():
    return load_script("bench/long_meetings.py")


def turns(*spans) -> Annotation:
    ann = Annotation(uri="m")
    for i, (a, b, label) in enumerate(spans):
        ann[Segment(a, b), i] = label
    return ann


def test_cuts_move_to_the_longest_pause_near_each_mark(bench):
    # 1000 s -> 3 pieces, marks at 333.3 and 666.7; pauses 320-322 (short), 340-346 (longest
    # near the first mark), none within 20 s of the second: that cut stays on its mark
    ref = turns((0, 320, "A"), (322, 340, "B"), (346, 1000, "A"))
    cuts = bench.cut_points(ref, 1000.0, piece=300.0, search=20.0)
    assert cuts == pytest.approx([0.0, 343.0, 2000 / 3, 1000.0])


def test_pause_beyond_the_search_window_is_clipped_to_it(bench):
    ref = turns((0, 100, "A"), (400, 600, "B"))  # one pause, 100-400, around the mark 300
    assert bench.cut_points(ref, 600.0, search=20.0) == pytest.approx([0.0, 300.0, 600.0])
    ref = turns((0, 100, "A"), (315, 600, "B"))  # clipped to 280-315
    assert bench.cut_points(ref, 600.0, search=20.0) == pytest.approx([0.0, 297.5, 600.0])


def test_short_recording_is_one_piece(bench):
    assert bench.cut_points(turns((1, 5, "A")), 100.0) == [0.0, 100.0]


def test_crop_keeps_the_turns_within_and_shifts_them(bench):
    ref = turns((0, 10, "A"), (8, 25, "B"), (30, 40, "A"))
    piece = bench.crop(ref, 20.0, 35.0, "m_p1")
    got = [(t.start, t.end, label) for t, _, label in piece.itertracks(yield_label=True)]
    assert piece.uri == "m_p1"
    assert got == [(0.0, 5.0, "B"), (10.0, 15.0, "A")]


def test_settings_grid_puts_link_fields_under_link(bench):
    grid = bench.settings_grid(["spectral_keep=0.05,0.1", "link_threshold=0.3"])
    assert grid == {
        "stored": {},
        "spectral_keep=0.05 link_threshold=0.3": {
            "link": {"spectral_keep": 0.05},
            "link_threshold": 0.3,
        },
        "spectral_keep=0.1 link_threshold=0.3": {
            "link": {"spectral_keep": 0.1},
            "link_threshold": 0.3,
        },
    }
    assert bench.settings_grid([]) == {"stored": {}}
