"""``diarize run``: who spoke when, in audio files of any length.

Inputs are audio files, directories of audio files (searched recursively) or Kaldi
``wav.scp`` files; the recording id (uri) is the file's stem or the ``wav.scp`` key. The
output is a directory (``<uri>.rttm`` per recording, plus ``<uri>.exclusive.rttm``,
``<uri>.json`` and ``<uri>.png`` on request) or one ``.rttm`` file for all recordings (then
``OUT.exclusive.rttm`` and ``OUT.json`` beside it). Every file is written atomically, right
after its recording in directory mode, at the end in single-file mode.

A recording that fails is reported on one line and skipped; the others go on, the failures
are listed at the end and the exit status is 1. ``--workers N`` diarizes N recordings at once
in threads sharing one model: decoding and resampling of one overlap the forward passes of
another (worth it on a GPU, or on a CPU with spare cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "default.pt"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="diarize audio files (any length) into RTTM",
        description="Diarize audio files of any length: sliding windows, speakers linked "
        "across windows, overlap-aware RTTM output. Options not given take the checkpoint's "
        "inference settings.",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio file, directory of audio files, or wav.scp",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output directory, or a single .rttm file",
    )
    p.add_argument(
        "--model",
        metavar="CKPT",
        help="checkpoint (default: the bundled model, diarize/assets/default.pt)",
    )
    add_inference_options(p)
    p.add_argument(
        "--exclusive",
        action="store_true",
        help="also write one-speaker-at-a-time RTTM (<uri>.exclusive.rttm)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="also write turns and talk time per speaker as JSON (<uri>.json)",
    )
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="timeline plot; with several recordings, <uri>.png in OUT (or beside PNG)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="recordings diarized at once, in threads (default 1)"
    )
    p.set_defaults(func=run)


def add_inference_options(p: argparse.ArgumentParser) -> None:
    """Options shared with ``diarize evaluate``; ``None`` = the checkpoint's setting."""
    g = p.add_argument_group("inference (default: the checkpoint's settings)")
    g.add_argument(
        "--num-speakers", type=int, metavar="N", help="exact number of speakers per recording"
    )
    g.add_argument("--min-speakers", type=int, metavar="N", help="at least N speakers")
    g.add_argument("--max-speakers", type=int, metavar="N", help="at most N speakers")
    g.add_argument(
        "--threshold", type=float, metavar="P", help="speech activity threshold on posteriors"
    )
    g.add_argument(
        "--median", type=int, metavar="FRAMES", help="median filter width in frames (1 = off)"
    )
    g.add_argument(
        "--min-duration-on", type=float, metavar="SEC", help="drop turns shorter than this"
    )
    g.add_argument(
        "--min-duration-off", type=float, metavar="SEC", help="fill pauses shorter than this"
    )
    g.add_argument(
        "--window", type=float, metavar="SEC", help="window length (default: the training chunk)"
    )
    g.add_argument(
        "--hop", type=float, metavar="SEC", help="hop between windows (default: half a window)"
    )
    g.add_argument(
        "--link-threshold",
        type=float,
        metavar="SIM",
        help="similarity above which speakers of different windows are one (speaker "
        "embeddings or voices, activity agreement; lower: fewer speakers; unknown count only)",
    )
    g.add_argument(
        "--no-split-voices",
        dest="split_voices",
        action="store_false",
        default=None,
        help="keep each local speaker of a window whole even when its turns sound like "
        "several persons (e.g. for recordings of two speakers who overlap a lot)",
    )
    g.add_argument("--batch-size", type=int, metavar="N", help="windows per forward pass")
    g.add_argument("--device", help="torch device (default: cuda when available, else cpu)")


_INFER_FIELDS = ("threshold", "median", "min_duration_on", "min_duration_off", "window", "hop",
                 "link_threshold", "split_voices", "batch_size")  # fmt: skip


def infer_config(args: argparse.Namespace, base):
    """``base`` (an InferConfig) with the options given on the command line."""
    import dataclasses

    given = {f: getattr(args, f) for f in _INFER_FIELDS if getattr(args, f, None) is not None}
    return dataclasses.replace(base, **given)


def resolve_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def load_for_inference(args: argparse.Namespace):
    """(model, ExperimentConfig, InferConfig, speaker encoder or None) from ``--model`` and
    the inference options, all checked before any recording is touched."""
    from diarize.checkpoint import load_model, load_speaker_encoder
    from diarize.inference import check_speaker_counts, window_frames
    from diarize.utils import DiarizeError

    ckpt = args.model or DEFAULT_MODEL
    if not args.model and not DEFAULT_MODEL.exists():
        raise DiarizeError(
            f"no bundled model at {DEFAULT_MODEL}; pass --model CKPT (a trained checkpoint)"
        )
    model, exp = load_model(ckpt, resolve_device(args.device))
    speaker = load_speaker_encoder(ckpt, resolve_device(args.device))
    config = infer_config(args, exp.infer)
    window_frames(config, model.frame_shift, exp.train.chunk_frames)
    check_speaker_counts(args.num_speakers, args.min_speakers, args.max_speakers)
    if config.median < 1 or config.batch_size < 1:
        raise DiarizeError(
            f"--median and --batch-size must be >= 1, got {config.median} and {config.batch_size}"
        )
    return model, exp, config, speaker


def collect_recordings(inputs: list[str]) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """``([(uri, audio path)], [(input, error)])`` from files, directories and wav.scp files.
    A file given by name is kept even if it looks wrong: reading it will say why."""
    from diarize.audio import is_audio_file
    from diarize.data.kaldi import read_wav_scp
    from diarize.utils import DiarizeError

    recordings, failures = [], []
    for item in inputs:
        path = Path(item)
        try:
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_file(p))
                if not found:
                    raise DiarizeError(f"{path}: directory holds no audio file")
                recordings += [(p.stem, p) for p in found]
            elif path.suffix == ".scp" and path.is_file():
                recordings += [(uri, audio) for uri, (_, audio) in read_wav_scp(path).items()]
            else:
                recordings.append((path.stem, path))
        except DiarizeError as e:
            failures.append((item, str(e)))
    seen: dict[str, Path] = {}
    for uri, path in recordings:
        if uri in seen:
            raise DiarizeError(
                f"recording id {uri!r} names both {seen[uri]} and {path}; outputs would collide"
            )
        seen[uri] = path
    return recordings, failures


def run(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from diarize.utils import DiarizeError

    if args.workers < 1:
        raise DiarizeError(f"--workers must be >= 1, got {args.workers}")
    recordings, failures = collect_recordings(args.inputs)
    total = len(recordings) + len(failures)
    for _, message in failures:
        print(f"diarize run: {message}", file=sys.stderr)
    model, exp, config, speaker = load_for_inference(args)
    out = Path(args.output)
    single = out.suffix == ".rttm"
    if not single and out.exists() and not out.is_dir():
        raise DiarizeError(
            f"{out}: exists and is not a directory (give a directory or a .rttm file)"
        )
    results = {}
    overall = tqdm(
        total=len(recordings), desc="recordings", unit="rec", disable=None, file=sys.stderr
    )

    def work(index: int, uri: str, path: Path):
        bar = tqdm(
            desc=uri,
            unit="win",
            leave=False,
            position=1 + index % args.workers,
            disable=None,
            file=sys.stderr,
        )

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            result = diarize_one(model, exp, config, args, uri, path, progress, speaker)
            if not single:
                write_outputs(result, path, args, out, len(recordings))
            return result
        finally:
            bar.close()

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [
            (uri, path, pool.submit(work, i, uri, path)) for i, (uri, path) in enumerate(recordings)
        ]
        for uri, path, future in futures:
            try:
                results[uri] = (future.result(), path)
            except Exception as e:  # one bad recording must not stop the others
                message = str(e) if isinstance(e, DiarizeError) else f"{path}: {_one_line(e)}"
                failures.append((str(path), message))
                tqdm.write(f"diarize run: {message}", file=sys.stderr)
            overall.update(1)
    overall.close()
    if single:
        write_single(results, args, out, len(recordings))
    return report(failures, total)


def diarize_one(model, exp, config, args, uri, path, progress, speaker=None):
    from diarize.inference import diarize_file

    return diarize_file(
        model,
        path,
        config,
        num_speakers=args.num_speakers,
        min_speakers=args.min_speakers,
        max_speakers=args.max_speakers,
        device=resolve_device(args.device),
        uri=uri,
        chunk_frames=exp.train.chunk_frames,
        sample_rate=exp.features.sample_rate,
        progress=progress,
        speaker_encoder=speaker,
    )


def write_outputs(result, path: Path, args, out: Path, count: int) -> None:
    """Directory mode: ``<uri>.rttm`` [+ ``.exclusive.rttm``, ``.json``, plot] in ``out``."""
    from diarize.rttm import write_rttm
    from diarize.utils import atomic_write

    write_rttm(out / f"{result.uri}.rttm", result.annotation)
    if args.exclusive:
        write_rttm(out / f"{result.uri}.exclusive.rttm", result.exclusive)
    if args.json:
        import json

        with atomic_write(out / f"{result.uri}.json") as f:
            json.dump(summary(result, path), f, indent=2)
    if args.plot:
        plot_timeline(result, Path(args.plot) if count == 1 else out / f"{result.uri}.png")


def write_single(results: dict, args, out: Path, count: int) -> None:
    """Single-file mode: all recordings in ``out`` [+ ``.exclusive.rttm``, ``.json``, plots]."""
    from diarize.rttm import write_rttm
    from diarize.utils import atomic_write

    ordered = [results[uri] for uri in sorted(results)]
    write_rttm(out, [r.annotation for r, _ in ordered])
    if args.exclusive:
        write_rttm(out.with_suffix(".exclusive.rttm"), [r.exclusive for r, _ in ordered])
    if args.json:
        import json

        with atomic_write(out.with_suffix(".json")) as f:
            json.dump({"recordings": [summary(r, p) for r, p in ordered]}, f, indent=2)
    if args.plot:
        plot = Path(args.plot)
        for r, _ in ordered:
            plot_timeline(r, plot if count == 1 else plot.parent / f"{r.uri}.png")


def summary(result, path: Path) -> dict:
    """JSON-ready turns and talk time of one recording."""
    from diarize.inference import talk_time

    turns = [
        {"start": round(seg.start, 3), "end": round(seg.end, 3), "speaker": str(label)}
        for seg, _, label in result.annotation.itertracks(yield_label=True)
    ]
    return {
        "uri": result.uri,
        "audio": str(path),
        "duration": round(result.duration, 3),
        "num_speakers": len(result.annotation.labels()),
        "talk_time": {k: round(v, 3) for k, v in talk_time(result.annotation).items()},
        "turns": sorted(turns, key=lambda t: (t["start"], t["end"], t["speaker"])),
    }


def plot_timeline(result, png: Path) -> None:
    """One row per speaker, turns as bars, time axis in m:ss (h:mm:ss past an hour)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    from diarize.utils import atomic_path

    labels = sorted(result.annotation.labels())
    fig = Figure(figsize=(12, 1.2 + 0.45 * max(len(labels), 1)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for row, label in enumerate(labels):
        spans = [(s.start, s.duration) for s in result.annotation.label_timeline(label)]
        ax.broken_barh(spans, (row - 0.35, 0.7), color=f"C{row % 10}")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.6, max(len(labels), 1) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(0, max(result.duration, 1e-3))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: _clock(t)))
    ax.set_xlabel("time (m:ss)" if result.duration < 3600 else "time (h:mm:ss)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{result.uri}: {len(labels)} speaker(s), {_clock(result.duration)}")
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _clock(seconds: float) -> str:
    s = int(round(max(seconds, 0)))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _one_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def report(failures: list[tuple[str, str]], total: int) -> int:
    if not failures:
        return 0
    print(f"diarize run: {len(failures)} of {total} input(s) failed:", file=sys.stderr)
    for item, _ in failures:
        print(f"  {item}", file=sys.stderr)
    return 1
