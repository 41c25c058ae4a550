"""diarize.utils: atomic writes (what a killed writer leaves, targets that cannot be written)
and the up-front writability check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from diarize.utils import DiarizeError, atomic_path, atomic_write, check_writable

ROOT = Path(__file__).resolve().parents[1]

# A writer killed with SIGKILL inside the atomic block: nothing can clean up after it.
KILLED_WRITER = """
import os, signal, sys
from diarize.utils import atomic_path, atomic_write
target = sys.argv[1]
if target.endswith(".png"):
    with atomic_path(target) as tmp:
        os.kill(os.getpid(), signal.SIGKILL)
with atomic_write(target) as f:
    f.write("half")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def kill_a_writer(target: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], cwd=ROOT)
    assert proc.returncode == -9


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    kill_a_writer(tmp_path / "a.rttm")
    first = hidden(tmp_path)
    assert len(first) == 1 and first[0].startswith(".a.rttm.")
    assert not (tmp_path / "a.rttm").exists()
    kill_a_writer(tmp_path / "clip03.png")  # a rerun, killed again: the first one is gone
    second = hidden(tmp_path)
    assert len(second) == 1 and second[0].startswith(".clip03.png.")
    assert second[0].endswith(".png")  # atomic_path keeps the suffix writers may look at
    with atomic_write(tmp_path / "b.rttm") as f:  # any later write into the folder
        f.write("x\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.rttm"]


def test_temporary_of_a_live_writer_is_kept(tmp_path):
    from diarize.utils import _process_tag

    live = tmp_path / f".a.rttm.abcd1234.{os.getpid()}-{_process_tag()}.tmp"
    other_machine = tmp_path / ".a.rttm.abcd1234.1-00000000.tmp"  # pid 1 elsewhere: unknown
    not_ours = tmp_path / ".notes.txt"
    for path in (live, other_machine, not_ours):
        path.write_text("")
    with atomic_write(tmp_path / "a.rttm") as f:
        f.write("x\n")
    assert hidden(tmp_path) == sorted(p.name for p in (live, other_machine, not_ours))


@pytest.mark.parametrize("writer", [atomic_write, atomic_path])
def test_target_that_cannot_be_written_is_one_line(tmp_path, writer):
    (tmp_path / "dir.rttm").mkdir()
    with pytest.raises(DiarizeError, match=r"dir.rttm: cannot write \(Is a directory\)"):
        with writer(tmp_path / "dir.rttm"):
            pass
    (tmp_path / "file").write_text("")
    with pytest.raises(DiarizeError, match=r"file/x.rttm: cannot write \(a file stands in the way"):
        with writer(tmp_path / "file" / "x.rttm"):
            pass
    assert hidden(tmp_path) == []


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "x.json")  # will be created when written
    check_writable(tmp_path / "out", directory=True)
    assert list(tmp_path.iterdir()) == []  # the check creates nothing
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("")
    with pytest.raises(DiarizeError, match="d: is a directory"):
        check_writable(tmp_path / "d")
    with pytest.raises(DiarizeError, match="f: exists and is not a directory"):
        check_writable(tmp_path / "f", directory=True)
    with pytest.raises(DiarizeError, match=r"x.json: cannot write there \(.*f is not a directory"):
        check_writable(tmp_path / "f" / "sub" / "x.json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_check_writable_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(DiarizeError, match=r"cannot write there \(Permission denied\)"):
            check_writable(ro / "out" / "x.rttm")
    finally:
        ro.chmod(0o755)
