"""``diarize evaluate``: diarize a whole diarization set and score it (md-eval-exact DER).

Writes to OUTDIR (default ``eval_<DATA name>`` in the current directory):
``rttm/<uri>.rttm`` per recording, ``all.rttm`` with every recording, and ``der.json`` (the
scorer's JSON; per-recording files sit in ``rttm/`` so that ``diarize score`` can read the
folder or ``all.rttm`` alike). Prints the scorer's per-file table and total.
A recording that fails is reported, scored as all missed, and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diarize.cli import add_data_options, add_inference_options, add_linking_options, collar
from diarize.conditions import CONDITION_NAMES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="diarize a data set and score it (DER)",
        description="Diarize every recording of a diarization set (Kaldi wav.scp + rttm "
        "[+ uem], a folder of audio + RTTM, lhotse manifests or a pyannote.database "
        "protocol) with a checkpoint, write the hypotheses and score them as md-eval-22.pl "
        "does (DER, and JER as dscore does), under --collar/--skip-overlap or a benchmark's "
        "standard --condition.",
    )
    add_data_options(p)
    p.add_argument(
        "--model",
        metavar="CKPT",
        help="checkpoint to evaluate (default: the bundled model, diarize/assets/default.pt)",
    )
    p.add_argument(
        "--collar",
        type=collar,
        default=None,
        help="seconds not scored on each side of a boundary (default 0.25)",
    )
    p.add_argument(
        "--condition",
        metavar="NAME",
        help=f"a benchmark's standard scoring condition ({CONDITION_NAMES}): sets the "
        "collar and the overlap handling, recorded in der.json; without a UEM each "
        "recording is scored over its reference extent, as md-eval",
    )
    p.add_argument("--skip-overlap", action="store_true", help="do not score overlapped speech")
    p.add_argument("--uem", help="UEM file (default: the set's own uem, else each whole recording)")
    p.add_argument(
        "--oracle-num-speakers",
        action="store_true",
        help="give each recording its reference speaker count",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUTDIR",
        help="where hypotheses and der.json go (default: eval_<DATA name>)",
    )
    add_inference_options(p)
    add_linking_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from diarize import Diarizer
    from diarize.cli import ProgressLog, device_of, inference_overrides
    from diarize.conditions import resolve_setting
    from diarize.config import parse_overrides
    from diarize.data.kaldi import is_protocol_name, load_diarization_set, recording_audio
    from diarize.inference import SpeakerCount
    from diarize.rttm import read_uem, write_rttm
    from diarize.utils import DiarizeError, check_writable

    counts = (args.num_speakers, args.min_speakers, args.max_speakers)
    if args.oracle_num_speakers and any(n is not None for n in counts):
        raise DiarizeError("--oracle-num-speakers excludes --num/min/max-speakers")
    SpeakerCount(*counts)  # before any work
    args.collar, args.skip_overlap = resolve_setting(args.condition, args.collar, args.skip_overlap)
    device = device_of(args)
    data = load_diarization_set(
        args.data, allow_pipes=args.allow_pipes, subset=args.subset, database=args.database
    )
    uems = read_uem(args.uem) if args.uem else set_uems(data)
    name = (
        f"{args.data}.{args.subset}"
        if is_protocol_name(args.data)
        else Path(args.data).resolve().name
    )
    out = Path(args.output or f"eval_{name}")
    check_writable(out, directory=True)
    link = parse_overrides([f"link.{item}" for item in args.link], "--link")
    overrides = {**inference_overrides(args), **link}
    diarizer = Diarizer.from_pretrained(args.model, device, args.embedding, **overrides)
    hypotheses, failures = {}, []
    log = ProgressLog("evaluate", len(data), sum(rec.duration for rec in data))
    for rec in tqdm(data, desc="recordings", unit="rec", disable=None, file=sys.stderr):
        if args.oracle_num_speakers:  # the reference's speaker count, this recording only
            counts = (len(rec.annotation.labels()) or None, None, None)
        try:
            with recording_audio(rec) as path:  # a piped entry's output, else its file
                result = diarizer(path, *counts, uri=rec.id)
        except Exception as e:  # one bad recording must not stop the others
            failures.append(rec.id)
            tqdm.write(f"diarize evaluate: {rec.id}: {_one_line(e)}", file=sys.stderr)
            log.finish(rec.id, rec.duration)
            continue
        hypotheses[rec.id] = result.annotation
        write_rttm(out / "rttm" / f"{rec.id}.rttm", result.annotation)
        log.finish(rec.id, rec.duration)
    log.close()
    return write_report(data, hypotheses, uems, args, out, failures)


def write_report(data, hypotheses: dict, uems, args, out: Path, failures: list[str]) -> int:
    """Score, write ``all.rttm`` and ``der.json``, print the table; 1 if any recording failed."""
    import json

    from diarize.rttm import write_rttm
    from diarize.scoring import score, score_condition
    from diarize.utils import atomic_write

    write_rttm(out / "all.rttm", list(hypotheses.values()))
    references = {rec.id: rec.annotation for rec in data}
    if args.condition:
        report = score_condition(references, hypotheses, uems, args.condition)
    else:
        report = score(references, hypotheses, uems, args.collar, args.skip_overlap)
    with atomic_write(out / "der.json") as f:
        json.dump(report.to_json(), f, indent=2, allow_nan=False)  # strict JSON
    print(report.format_table())
    print(f"hypotheses: {out / 'all.rttm'}, report: {out / 'der.json'}", file=sys.stderr)
    if failures:
        print(
            f"diarize evaluate: {len(failures)} recording(s) failed (scored as missed): {' '.join(failures)}",
            file=sys.stderr,
        )
    return 1 if failures else 0


def set_uems(data):
    """The set's own UEM regions, the whole recording where one has none; ``None`` (the
    scorer's default region) when no recording has any."""
    from pyannote.core import Segment, Timeline

    if all(rec.uem is None for rec in data):
        return None
    whole = lambda rec: Timeline([Segment(0, rec.duration)], uri=rec.id)  # noqa: E731
    return {rec.id: rec.uem if rec.uem is not None else whole(rec) for rec in data}


def _one_line(e: Exception) -> str:
    from diarize.utils import DiarizeError

    if isinstance(e, DiarizeError):
        return str(e)
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
