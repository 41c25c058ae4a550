"""Linking settings on a diarization set without running the network again for each: every
recording is analysed once per embedding model (``Diarizer.analyse``: windows, local
speakers, embeddings), then linked, aggregated and scored for each linking method x link
threshold x each combination of ``--sweep`` values of other linking constants
(``Diarizer.finish``), as ``diarize evaluate`` would with ``--embedding E --link method=M
--link-threshold T [--link KEY=VALUE]`` (same DER, the same code after the analysis).

Prints one line per setting: DER (md-eval, collar 0.25 s by default), its parts, the
speaker count found against the reference per recording, and the analysis time (one
thread when OMP_NUM_THREADS=1); ``--json`` writes them.

    OMP_NUM_THREADS=1 python bench/link_grid.py data/dev_real_long --model CKPT \
        --embedding none data/pretrained/campplus_cn_en_common.pt \
        --methods average centroid spectral --thresholds 0.3 0.4 0.5 0.6 0.7
    OMP_NUM_THREADS=1 python bench/link_grid.py data/dev_real_long --model CKPT \
        --methods centroid --thresholds 0.7 0.75 0.8 --sweep min_cluster_size=1,5,12
    OMP_NUM_THREADS=1 python bench/link_grid.py data/dev_real2 --infer window=6 hop=3 \
        --methods spectral --thresholds 0.3 0.4 0.5 --sweep spectral_keep=0.05,0.1,0.2
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from diarize.scoring import DEFAULT_COLLAR
from diarize.utils import run_tool


def analyse_all(diarizer, data) -> tuple[dict, float]:
    """{recording id: Analysis} and the seconds they took."""
    from diarize.data.kaldi import recording_audio

    analyses, start = {}, time.perf_counter()
    for rec in data:
        with recording_audio(rec) as path:
            analyses[rec.id] = diarizer.analyse(path, uri=rec.id)
    return analyses, time.perf_counter() - start


def finish_all(diarizer, analyses: dict, data, collar: float) -> dict:
    """DER and speaker counts of ``diarizer``'s settings on the analysed recordings."""
    from diarize.scoring import score

    hypotheses = {uri: diarizer.finish(a).annotation for uri, a in analyses.items()}
    report = score({rec.id: rec.annotation for rec in data}, hypotheses, None, collar)
    speakers = {uri: [f.hyp_speakers, f.ref_speakers] for uri, f in report.files.items()}
    return report.total.percentages() | {"speakers": speakers}


def der_parts(row: dict) -> str:
    """``DER 21.14  (miss 8.19 fa 3.91 conf 9.03)`` of a row of DER parts (percentages)."""
    return (f"DER {row['der']:6.2f}  (miss {row['missed']:.2f} fa {row['false_alarm']:.2f} "
            f"conf {row['confusion']:.2f})")  # fmt: skip


def main() -> int:
    from diarize import Diarizer
    from diarize.config import parse_overrides, parse_sweeps
    from diarize.data.kaldi import load_diarization_set

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="diarization set (as diarize evaluate reads)")
    p.add_argument("--model", help="checkpoint (default: the bundled model)")
    p.add_argument("--embedding", nargs="+", default=["none"], help="'none' or NAME|PATH each")
    p.add_argument("--methods", nargs="+", default=["average", "centroid", "spectral"])
    p.add_argument("--thresholds", nargs="+", type=float, default=[0.3, 0.4, 0.5, 0.6, 0.7])
    p.add_argument("--sweep", nargs="*", default=[], metavar="KEY=V1,V2",
                   help="LinkConfig fields to sweep too, every combination")  # fmt: skip
    p.add_argument("--infer", nargs="*", default=[], metavar="KEY=VALUE",
                   help="inference settings of the analysis (window=6 hop=3 ...)")  # fmt: skip
    p.add_argument("--collar", type=float, default=DEFAULT_COLLAR)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    data = load_diarization_set(args.data)
    audio = sum(rec.duration for rec in data)
    rows, infer = [], parse_overrides(args.infer, "--infer")
    for embedding in args.embedding:
        diarizer = Diarizer.from_pretrained(args.model, embedding=embedding, **infer)
        analyses, seconds = analyse_all(diarizer, data)
        print(
            f"{embedding}: analysis {seconds:.1f} s for {audio:.0f} s (RTF {seconds / audio:.4f})"
        )
        grid = itertools.product(args.methods, args.thresholds, parse_sweeps(args.sweep))
        for method, threshold, link in grid:
            overrides = {"link_threshold": threshold, "link": {"method": method, **link}}
            settings = diarizer.with_settings(overrides, "link_grid settings")
            row = finish_all(settings, analyses, data, args.collar)
            row |= {"embedding": embedding, "method": method, "threshold": threshold,
                    "link": link, "analysis_rtf": round(seconds / audio, 4)}  # fmt: skip
            rows.append(row)
            counts = " ".join(f"{h}/{r}" for h, r in row["speakers"].values())
            extra = " ".join(f"{k}={v}" for k, v in link.items())
            print(f"  {method:9s} {threshold:5.2f} {extra:24s} {der_parts(row)}  speakers {counts}",
                  flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
