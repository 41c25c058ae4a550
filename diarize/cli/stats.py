"""``diarize stats``: what a diarization set holds (recordings, duration, speakers, speech,
overlap, turn/pause/silence lengths); see :mod:`diarize.data.stats`."""

from __future__ import annotations

import argparse

from diarize.cli import add_data_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="statistics of a diarization set (speakers, speech, overlap, turns, pauses)",
        description="Print what a diarization set holds: recordings, scored duration, "
        "recordings per speaker count, speech (share of the duration) and overlapped speech "
        "(share of speech), and the distributions of turn, pause (between one speaker's "
        "turns) and silence (between anyone's speech) lengths. Measured inside each "
        "recording's UEM (else the whole recording), one speaker's touching turns merged.",
    )
    add_data_options(p)
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from diarize.data.kaldi import load_diarization_set
    from diarize.data.stats import set_stats
    from diarize.utils import atomic_write

    data = load_diarization_set(
        args.data, allow_pipes=args.allow_pipes, subset=args.subset, database=args.database
    )
    stats = set_stats(data)
    print(stats.format())
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(stats.to_json(), f, indent=2, allow_nan=False)
            f.write("\n")
    return 0
