"""Where the confusion is made: in the windows, or in linking them. Every recording of a set
is analysed once (``Diarizer.analyse``), then finished twice: linked as the settings say,
and linked by an oracle that gives each window's local speaker the reference speaker it
overlaps most in that window (one-to-one per window, Hungarian on shared active frames; a
local speaker sharing no frame with any reference speaker is dropped). Aggregation and
scoring are the same for both, so what the oracle takes off is linking's share of the
error, and what it leaves is the windows' own (their posteriors, including local speakers
that mix persons).

    OMP_NUM_THREADS=1 python bench/oracle_linking.py data/dev_real2 data/dev_real3 \
        [--model CKPT] [--embedding none|NAME|PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from link_grid import analyse_all, der_parts, finish_all
from scipy.optimize import linear_sum_assignment

from diarize.scoring import DEFAULT_COLLAR
from diarize.utils import run_tool


def oracle_assignment(windows, reference: np.ndarray) -> list[np.ndarray]:
    """For each window, its local speakers' reference speaker (or -1): reference (frames,
    reference speakers) 0/1 on the recording's frame grid."""
    assignment = []
    for win in windows:
        ref = reference[win.start : win.stop]  # (frames, reference speakers)
        active = win.active[: len(ref)].astype(np.float64)  # (frames, local speakers)
        shared = active.T @ ref  # (local speakers, reference speakers)
        glob = np.full(active.shape[1], -1, dtype=np.int64)
        if shared.size:
            rows, cols = linear_sum_assignment(-shared)
            for r, c in zip(rows, cols, strict=True):
                if shared[r, c] > 0:
                    glob[r] = c
        assignment.append(glob)
    return assignment


def oracle_result(diarizer, analysis, annotation):
    """The analysis aggregated with the oracle's linking."""
    from diarize.data.labels import frame_labels
    from diarize.inference import aggregate

    grid, source = analysis.grid, analysis.source
    reference = frame_labels(annotation, grid.num_frames, grid.frame_shift)
    assignment = oracle_assignment(analysis.windows, reference)
    return aggregate(analysis.windows, assignment, grid.num_frames, grid.frame_shift,
                     diarizer.config, source.uri, source.duration, source.path)  # fmt: skip


def evaluate_set(diarizer, path: str, collar: float) -> dict:
    """{"linked": DER parts, "oracle": DER parts} of one set (analysed once)."""
    from diarize.data.kaldi import load_diarization_set
    from diarize.scoring import score

    data = load_diarization_set(path)
    refs = {rec.id: rec.annotation for rec in data}
    analyses, _ = analyse_all(diarizer, data)
    oracle = {uri: oracle_result(diarizer, a, refs[uri]).annotation for uri, a in analyses.items()}
    return {
        "linked": finish_all(diarizer, analyses, data, collar),
        "oracle": score(refs, oracle, None, collar).total.percentages(),
    }


def main() -> int:
    from diarize import Diarizer

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", nargs="+", help="diarization sets (as diarize evaluate reads)")
    p.add_argument("--model", help="checkpoint (default: the bundled model)")
    p.add_argument("--embedding", help="'none' or NAME|PATH (default: the checkpoint's)")
    p.add_argument("--collar", type=float, default=DEFAULT_COLLAR)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    diarizer = Diarizer.from_pretrained(args.model, embedding=args.embedding)
    results = {}
    for path in args.data:
        results[path] = evaluate_set(diarizer, path, args.collar)
        for name, r in results[path].items():
            print(f"{path} {name:7s} {der_parts(r)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
