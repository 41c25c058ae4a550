import pytest
from pyannote.core import Annotation, Segment, Timeline

from diarize.rttm import load_rttms, read_rttm, read_uem, write_rttm, write_uem
from diarize.utils import DiarizeError

RTTM = """\
;; a comment
SPEAKER rec1 1 0.00 2.50 <NA> <NA> alice <NA> <NA>

SPEAKER rec1 1 2.00 1.00 <NA> <NA> bob <NA> <NA>
SPKR-INFO rec1 1 <NA> <NA> <NA> unknown alice <NA> <NA>
SPEAKER rec2 1 1.5 0.5 <NA> <NA> carol <NA> <NA>
"""


def test_read_rttm(tmp_path):
    (tmp_path / "a.rttm").write_text(RTTM)
    anns = read_rttm(tmp_path / "a.rttm")
    assert sorted(anns) == ["rec1", "rec2"]
    assert sorted(anns["rec1"].labels()) == ["alice", "bob"]
    assert anns["rec1"].label_timeline("bob") == Timeline([Segment(2.0, 3.0)])
    assert anns["rec2"].get_timeline().extent() == Segment(1.5, 2.0)


def test_same_speaker_overlapping_turns_are_kept(tmp_path):
    (tmp_path / "a.rttm").write_text(
        "SPEAKER r 1 0 2 <NA> <NA> a <NA> <NA>\nSPEAKER r 1 1 2 <NA> <NA> a <NA> <NA>\n"
    )
    ann = read_rttm(tmp_path / "a.rttm")["r"]
    assert len(list(ann.itertracks())) == 2


@pytest.mark.parametrize(
    "line, message",
    [
        ("SPEAKER r 1 0.0 1.0 a", "expected 9 or 10 fields .*got 6"),
        # a recording id with a space: 11 fields, not recording "my" at onset 1
        (
            "SPEAKER my meeting 1 0.5 1.0 <NA> <NA> a <NA> <NA>",
            "got 11; a recording id .*cannot contain spaces",
        ),
        # the same from a 9-field writer: 10 fields, but the speaker would be <NA>
        ("SPEAKER my meeting 1 0.5 1.0 <NA> <NA> a <NA>", "speaker\\) is <NA>"),
        ("SPEAKER r 1 1e308 1e308 <NA> <NA> a <NA> <NA>", "at most 1e\\+09 s"),
        ("SPEAKER r 1 1e20 1 <NA> <NA> a <NA> <NA>", "at most 1e\\+09 s"),
        ("SPEAKER r 1 abc 1.0 <NA> <NA> a <NA> <NA>", "must be numbers"),
        ("SPEAKER r 1 1.0 -1.0 <NA> <NA> a <NA> <NA>", "finite and >= 0"),
        ("SPEAKER r 1 nan 1.0 <NA> <NA> a <NA> <NA>", "finite and >= 0"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.rttm"
    path.write_text("SPEAKER r 1 0 1 <NA> <NA> a <NA> <NA>\n\n" + line + "\n")
    with pytest.raises(DiarizeError, match=rf"bad.rttm:3: .*{message}"):
        read_rttm(path)


def test_nine_field_lines_are_read(tmp_path):
    (tmp_path / "a.rttm").write_text("SPEAKER r 1 0.5 1.0 <NA> <NA> a <NA>\n")
    assert read_rttm(tmp_path / "a.rttm")["r"].label_timeline("a") == Timeline([Segment(0.5, 1.5)])


def test_names_with_whitespace_are_written_so_they_read_back(tmp_path):
    ann = Annotation(uri="my  meeting\t1")
    ann[Segment(0.0, 1.0)] = "spk a"
    write_rttm(tmp_path / "o.rttm", ann)
    assert (tmp_path / "o.rttm").read_text() == (
        "SPEAKER my_meeting_1 1 0.000 1.000 <NA> <NA> spk_a <NA> <NA>\n"
    )
    back = read_rttm(tmp_path / "o.rttm")
    assert list(back) == ["my_meeting_1"] and back["my_meeting_1"].labels() == ["spk_a"]
    write_uem(tmp_path / "o.uem", {"my meeting": Timeline([Segment(0, 2)])})
    assert list(read_uem(tmp_path / "o.uem")) == ["my_meeting"]


def test_write_is_sorted_stable_and_rounded(tmp_path):
    ann = Annotation(uri="r")
    ann[Segment(5.0, 6.0)] = "b"
    ann[Segment(1.0, 2.123456)] = "a"
    ann[Segment(1.0, 1.5)] = "c"
    out = tmp_path / "o.rttm"
    write_rttm(out, ann)
    assert out.read_text().splitlines() == [
        "SPEAKER r 1 1.000 0.500 <NA> <NA> c <NA> <NA>",
        "SPEAKER r 1 1.000 1.123 <NA> <NA> a <NA> <NA>",
        "SPEAKER r 1 5.000 1.000 <NA> <NA> b <NA> <NA>",
    ]
    first = out.read_text()
    write_rttm(out, read_rttm(out)["r"])
    assert out.read_text() == first


def test_write_is_atomic(tmp_path):
    out = tmp_path / "o.rttm"
    out.write_text("old\n")

    def broken():
        yield Annotation(uri="r")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_rttm(out, broken())
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["o.rttm"]


def test_uem_round_trip_and_errors(tmp_path):
    path = tmp_path / "a.uem"
    path.write_text("r 1 0.0 10.0\nr 1 5.0 12.0\ns 1 1 2\n")
    uems = read_uem(path)
    assert list(uems["r"]) == [Segment(0.0, 12.0)]
    write_uem(tmp_path / "b.uem", uems)
    assert read_uem(tmp_path / "b.uem") == uems
    path.write_text("r 1 3.0 2.0\n")
    with pytest.raises(DiarizeError, match="a.uem:1: offset 2.0 is before onset 3.0"):
        read_uem(path)
    path.write_text("my meeting 1 0 10\n")  # would read as "my" from 1 to 0 s
    with pytest.raises(DiarizeError, match="a.uem:1: expected 4 fields .*got 5"):
        read_uem(path)


def test_directory_of_rttms(tmp_path):
    (tmp_path / "x.rttm").write_text("SPEAKER r1 1 0 1 <NA> <NA> a <NA> <NA>\n")
    (tmp_path / "y.rttm").write_text("SPEAKER r2 1 0 1 <NA> <NA> a <NA> <NA>\n")
    assert sorted(load_rttms(tmp_path)) == ["r1", "r2"]
    (tmp_path / "z.rttm").write_text("SPEAKER r2 1 3 1 <NA> <NA> a <NA> <NA>\n")
    with pytest.raises(DiarizeError, match="r2"):
        load_rttms(tmp_path)
    with pytest.raises(DiarizeError, match="no such file"):
        load_rttms(tmp_path / "missing.rttm")


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        write_rttm(tmp_path / "p.rttm", Annotation(uri="r"))
    finally:
        os.umask(umask)
    assert (tmp_path / "p.rttm").stat().st_mode & 0o777 == 0o644
