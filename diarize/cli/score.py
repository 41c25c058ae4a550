"""``diarize score``: DER of hypothesis RTTMs against reference RTTMs (md-eval-22.pl exact)."""

from __future__ import annotations

import argparse
import json
import sys

from diarize.cli import collar
from diarize.conditions import CONDITION_NAMES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="diarization error rate of hypothesis RTTMs (as NIST md-eval-22.pl)",
        description="Score hypothesis RTTMs against reference RTTMs: per recording and in "
        "total, the DER and its missed, false-alarm and confusion times (seconds and % of "
        "the scored speaker time), the scored speaker time, the reference and hypothesis "
        "speaker counts, and the share of recordings whose speaker count is exact. The "
        "numbers are those of NIST md-eval-22.pl given the same UEM. A reference recording "
        "with no hypothesis counts as all missed; a hypothesis recording with no reference "
        "is a warning and is not scored. JER (Jaccard error rate, DIHARD's second metric) is "
        "printed beside DER, computed as dscore does (over the UEM, never with a collar or "
        "skip-overlap).",
    )
    p.add_argument("--ref", required=True, help="reference RTTM file, or a directory of them")
    p.add_argument("--hyp", required=True, help="hypothesis RTTM file, or a directory of them")
    p.add_argument(
        "--uem",
        help="UEM file of the regions to score; every reference recording must be in it. "
        "Without it a recording is scored from the first onset to the last offset of its "
        "reference and hypothesis turns together (the union of their extents; md-eval "
        "would use the reference extent alone)",
    )
    p.add_argument(
        "--collar",
        type=collar,
        default=None,
        help="seconds not scored on EACH side of every reference turn boundary, as md-eval's "
        "-c (default 0.25, i.e. 0.5 s around a boundary; pyannote.metrics' collar is the "
        "total width: its collar=0.5 is our --collar 0.25)",
    )
    p.add_argument(
        "--condition",
        metavar="NAME",
        help="a benchmark's standard scoring condition, which sets the collar and the "
        f"overlap handling: {CONDITION_NAMES} (see the README's Benchmarks section); "
        "without --uem each recording is then scored over its reference extent, as md-eval",
    )
    p.add_argument(
        "--skip-overlap",
        action="store_true",
        help="do not score regions where reference turns overlap (md-eval's -1)",
    )
    p.add_argument("--json", metavar="OUT", help="also write the scores as JSON to OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from diarize.conditions import resolve_setting
    from diarize.rttm import load_rttms, read_uem
    from diarize.utils import DiarizeError, atomic_write, check_writable

    args.collar, args.skip_overlap = resolve_setting(args.condition, args.collar, args.skip_overlap)
    if args.json:
        check_writable(args.json)
    references, hypotheses = load_rttms(args.ref), load_rttms(args.hyp)
    if not references:
        raise DiarizeError(f"{args.ref}: no SPEAKER line: there is no reference to score against")
    uems = read_uem(args.uem) if args.uem else None
    absent = sorted(set(references) - set(uems)) if uems is not None else []
    if absent:
        raise DiarizeError(f"{args.uem}: no region for reference recording(s) {', '.join(absent)}")
    from diarize.scoring import score, score_condition  # slow import (pyannote.metrics): late

    if args.condition:
        report = score_condition(references, hypotheses, uems, args.condition)
    else:
        report = score(references, hypotheses, uems, args.collar, args.skip_overlap)
    report.check_scored(args.ref)
    for uri in report.unscored_hypotheses:
        print(
            f"diarize score: warning: hypothesis recording {uri!r} has no reference; not scored",
            file=sys.stderr,
        )
    for uri in report.missing_hypotheses:
        print(
            f"diarize score: warning: reference recording {uri!r} has no hypothesis; "
            "counted as all missed",
            file=sys.stderr,
        )
    print(report.format_table())
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(report.to_json(), f, indent=2, allow_nan=False)  # strict JSON
            f.write("\n")
    return 0
