#!/usr/bin/env python
"""Copy the one recording of a simulated diarization directory to ``examples/`` as
``NAME.flac`` + ``NAME.rttm`` (the RTTM's recording id renamed to NAME, the file's stem, so
that ``diarize run NAME.flac`` and ``diarize score`` agree on it).

    python tools/export_example.py data/example examples/meeting
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pyannote.core import Annotation

from diarize.audio import load_audio, write_audio
from diarize.data.kaldi import load_diarization_set
from diarize.rttm import write_rttm
from diarize.utils import DiarizeError, run_tool


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="diarization directory holding one recording")
    p.add_argument("out", type=Path, help="output path without extension, e.g. examples/meeting")
    args = p.parse_args()
    recordings = list(load_diarization_set(args.data))
    if len(recordings) != 1:
        raise DiarizeError(f"{args.data} holds {len(recordings)} recordings, expected 1")
    rec = recordings[0]
    name = args.out.name
    write_audio(args.out.with_suffix(".flac"), load_audio(rec.path))
    renamed = Annotation(uri=name)
    for segment, track, label in rec.annotation.itertracks(yield_label=True):
        renamed[segment, track] = label
    write_rttm(args.out.with_suffix(".rttm"), renamed)
    speakers = sorted(renamed.labels())
    print(f"{args.out}.flac: {rec.duration:.1f} s, speakers {' '.join(speakers)}")
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
