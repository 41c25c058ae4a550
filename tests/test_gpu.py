"""On a CUDA device the bundled model diarizes as on the CPU. Marked ``gpu``: skipped where
CUDA is absent (``conftest.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "meeting.flac"


def diarize_on(device: str, out: Path) -> Path:
    cmd = [sys.executable, "-m", "diarize", "run", str(EXAMPLE), "-o", str(out)]
    proc = subprocess.run([*cmd, "--device", device], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out / "meeting.rttm"


@pytest.mark.gpu
def test_cuda_diarization_matches_cpu(tmp_path):
    from diarize.rttm import read_rttm
    from diarize.scoring import score

    cpu = read_rttm(diarize_on("cpu", tmp_path / "cpu"))
    cuda = read_rttm(diarize_on("cuda", tmp_path / "cuda"))
    assert len(cpu["meeting"].labels()) == len(cuda["meeting"].labels())
    # kernels round differently: a few frames at the threshold may flip, no more
    report = score(cpu, cuda, collar=0.0)
    assert report.total.scored > 30 and report.total.der < 2.0
