"""diarize prepare dihard3 on a fake release in LDC's layout: data/flac, data/rttm, data/sad,
data/uem, data/uem_scoring/{core,full} (all.uem + one per domain), docs/recordings.tbl."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from diarize.cli import main
from diarize.data import load_diarization_set

SR = 16000
# uri: (domain, in core, flac present)
RECORDINGS = {
    "DH_DEV_0001": ("audiobooks", True, True),
    "DH_DEV_0002": ("clinical", True, True),
    "DH_DEV_0003": ("meeting", False, True),
    "DH_DEV_0004": ("meeting", False, False),
}
# the recordings table: columns as lhotse's DIHARD III recipe reads them, and four more
HEADER = "uri\tin_core\tlang\tdomain\tsource\tsample_rate\tnum_channels\tduration\tmd5\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def release(root: Path, recordings: dict) -> Path:
    table = [HEADER]
    full, core = [], []
    for i, (uri, (domain, in_core, present)) in enumerate(recordings.items()):
        if present:
            (root / "data" / "flac").mkdir(parents=True, exist_ok=True)
            noise = 0.05 * np.random.default_rng(i).standard_normal(4 * SR)
            sf.write(str(root / "data" / "flac" / f"{uri}.flac"), noise.astype(np.float32), SR)
        write(
            root / "data" / "rttm" / f"{uri}.rttm",
            f"SPEAKER {uri} 1 0.120 1.500 <NA> <NA> speaker1 <NA> <NA>\n"
            f"SPEAKER {uri} 1 1.400 2.100 <NA> <NA> speaker2 <NA> <NA>\n",
        )
        write(root / "data" / "sad" / f"{uri}.lab", "0.120 3.500 speech\n")
        write(root / "data" / "uem" / f"{uri}.uem", f"{uri} 1 0.000 4.000\n")
        full.append(f"{uri} 1 0.000 4.000\n")
        if in_core:
            core.append(f"{uri} 1 0.000 3.000\n")  # core scoring regions may be shorter
        table.append(f"{uri}\t{in_core}\teng\t{domain}\tLDC\t16000\t1\t4.0\t0\n")
    for scoring, lines in (("full", full), ("core", core)):
        write(root / "data" / "uem_scoring" / scoring / "all.uem", "".join(lines))
        for domain in {d for d, *_ in recordings.values()}:
            mine = [line for line in lines if recordings[line.split()[0]][0] == domain]
            write(root / "data" / "uem_scoring" / scoring / f"{domain}.uem", "".join(mine))
    write(root / "docs" / "recordings.tbl", "".join(table))
    write(root / "docs" / "file.tbl", "")
    return root


def test_prepare_dihard3_full_core_and_domains(tmp_path: Path, capsys):
    src, out = release(tmp_path / "LDC2020E12", RECORDINGS), tmp_path / "data"
    assert main(["prepare", "dihard3", str(src), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dev_core", "dev_full"]
    full, core = out / "dev_full", out / "dev_core"
    assert (full / "reco2dur").read_text() == "DH_DEV_0001 4\nDH_DEV_0002 4\nDH_DEV_0003 4\n"
    assert (full / "skipped").read_text().startswith("DH_DEV_0004 audio file missing (")
    assert (core / "uem").read_text() == "DH_DEV_0001 1 0 3\nDH_DEV_0002 1 0 3\n"
    assert (full / "uem").read_text().splitlines()[0] == "DH_DEV_0001 1 0 4"
    assert (full / "reco2domain").read_text() == (
        "DH_DEV_0001 audiobooks\nDH_DEV_0002 clinical\nDH_DEV_0003 meeting\n"  # not 0004: skipped
    )
    assert (full / "domains" / "meeting.list").read_text() == "DH_DEV_0003\n"
    assert sorted(p.name for p in (core / "domains").iterdir()) == [
        "audiobooks.list",
        "clinical.list",
    ]
    assert (core / "rttm").read_text().splitlines()[0] == (
        "SPEAKER DH_DEV_0001 1 0.12 1.5 <NA> <NA> speaker1 <NA> <NA>"
    )
    data = load_diarization_set(core)
    assert [s.end for s in data["DH_DEV_0001"].uem] == [3.0]
    assert "dev_full: skipped DH_DEV_0004" in capsys.readouterr().err


def test_release_name_from_ids_or_given(tmp_path: Path, capsys):
    mixed = dict(RECORDINGS)
    mixed["DH_EVAL_0001"] = ("meeting", False, True)
    src = release(tmp_path / "mixed", mixed)
    assert main(["prepare", "dihard3", str(src), str(tmp_path / "o")]) == 1
    assert "pass --name dev|eval" in capsys.readouterr().err
    assert main(["prepare", "dihard3", str(src), str(tmp_path / "o"), "--name", "eval"]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["eval_core", "eval_full"]
    assert main(["prepare", "dihard3", str(tmp_path), str(tmp_path / "o2")]) == 1
    assert "not a DIHARD III release" in capsys.readouterr().err


@pytest.mark.parametrize("with_header", [True, False])
def test_recordings_table_with_or_without_header(tmp_path: Path, with_header: bool):
    from diarize.data.corpora.dihard3 import read_domains

    rows = "DH_EVAL_0001\tTrue\teng\tcts\tMIXER6\t16000\t1\t600.0\tx\n"
    table = tmp_path / "recordings.tbl"
    table.write_text((HEADER if with_header else "header\tline\n") + rows)
    assert read_domains(table) == {"DH_EVAL_0001": "cts"}
