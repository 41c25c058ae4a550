"""Tune the post-processing of a model on dev sets without re-running the network.

Diarizes every recording of each DATA set once (the stitched posteriors are cached as
``<cache>/<set>/<uri>.npz``), then re-thresholds and re-filters them for every combination
of ``--thresholds`` x ``--medians`` x ``--min-on`` x ``--min-off`` and prints the DER
(md-eval semantics, ``--collar``) per set and their mean, best last. The linking was done at
the checkpoint's own threshold, so a chosen setting is to be confirmed with
``diarize evaluate`` (the README quotes only confirmed figures).

    OMP_NUM_THREADS=1 python bench/sweep_postprocessing.py data/dev_real2 data/dev_real3 \
        --model exp/real/conv/avg.pt --cache exp/sweep --thresholds 0.3 0.4 0.5 --medians 1 5 11
    (--infer window=6 hop=3: other inference settings for the cached run; a new cache for each)
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

from diarize import Diarizer
from diarize.config import parse_overrides
from diarize.data.kaldi import load_diarization_set
from diarize.data.labels import labels_to_annotation
from diarize.inference.aggregation import postprocess
from diarize.scoring import score


def cached_posteriors(diarizer: Diarizer, data, cache: Path) -> dict[str, tuple]:
    """{uri: (probs (frames, speakers), frame_shift)} of every recording, cached."""
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for rec in data:
        path = cache / f"{rec.id}.npz"
        if not path.exists():
            result = diarizer(rec.path, uri=rec.id)
            np.savez(path, probs=result.probs, frame_shift=result.frame_shift)
        saved = np.load(path)
        out[rec.id] = (saved["probs"], float(saved["frame_shift"]))
    return out


def set_der(data, posteriors: dict, infer, collar: float) -> float:
    """Total DER % of one set with the post-processing of ``infer``."""
    hyps = {}
    for uri, (probs, shift) in posteriors.items():
        active = postprocess(probs, infer, shift)
        labels = [f"SPEAKER_{g:02d}" for g in range(probs.shape[1])]
        hyps[uri] = labels_to_annotation(active, shift, uri, labels)
    refs = {rec.id: rec.annotation for rec in data}
    uems = {rec.id: rec.uem for rec in data if rec.uem is not None} or None
    return score(refs, hyps, uems, collar=collar).total.der


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", nargs="+", help="diarization sets")
    p.add_argument("--model", help="checkpoint (default: the bundled model)")
    p.add_argument("--cache", type=Path, required=True, help="folder for the posteriors")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    p.add_argument("--medians", type=int, nargs="+", default=[1, 5, 11])
    p.add_argument("--min-on", type=float, nargs="+", default=[0.0])
    p.add_argument("--min-off", type=float, nargs="+", default=[0.0])
    p.add_argument("--collar", type=float, default=0.25)
    p.add_argument("--infer", nargs="*", default=[], metavar="KEY=VALUE",
                   help="inference settings of the cached run (window=6 hop=3 ...)")  # fmt: skip
    args = p.parse_args()
    diarizer = Diarizer.from_pretrained(args.model, **parse_overrides(args.infer, "--infer"))
    sets = {d: load_diarization_set(d) for d in args.data}
    posteriors = {
        d: cached_posteriors(diarizer, s, args.cache / Path(d).name) for d, s in sets.items()
    }
    rows = []
    grid = itertools.product(args.thresholds, args.medians, args.min_on, args.min_off)
    for th, med, on, off in grid:
        infer = replace(
            diarizer.config, threshold=th, median=med, min_duration_on=on, min_duration_off=off
        )
        ders = [set_der(sets[d], posteriors[d], infer, args.collar) for d in args.data]
        rows.append((float(np.mean(ders)), th, med, on, off, ders))
    names = " ".join(f"{Path(d).name:>12}" for d in args.data)
    print(f"{'threshold':>9} {'median':>6} {'min_on':>6} {'min_off':>7} {names} {'mean':>7}")
    for mean, th, med, on, off, ders in sorted(rows, reverse=True):
        cells = " ".join(f"{x:>12.2f}" for x in ders)
        print(f"{th:>9.2f} {med:>6d} {on:>6.2f} {off:>7.2f} {cells} {mean:>7.2f}")


if __name__ == "__main__":
    main()
