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

from diarize.cli import add_inference_options


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
    from diarize import Diarizer
    from diarize.cli import device_of, inference_overrides
    from diarize.inference import SpeakerCount
    from diarize.utils import DiarizeError

    if args.workers < 1:
        raise DiarizeError(f"--workers must be >= 1, got {args.workers}")
    recordings, failures = collect_recordings(args.inputs)
    total = len(recordings) + len(failures)
    for _, message in failures:
        print(f"diarize run: {message}", file=sys.stderr)
    SpeakerCount(args.num_speakers, args.min_speakers, args.max_speakers)  # before any work
    diarizer = Diarizer.from_pretrained(args.model, device_of(args), **inference_overrides(args))
    out = Path(args.output)
    single = out.suffix == ".rttm"
    if not single and out.exists() and not out.is_dir():
        raise DiarizeError(
            f"{out}: exists and is not a directory (give a directory or a .rttm file)"
        )
    results = diarize_all(diarizer, recordings, args, failures, None if single else out)
    if single:
        write_single([results[uri] for uri in sorted(results)], args, out, len(recordings))
    return report(failures, total)


def diarize_all(diarizer, recordings, args, failures: list, out: Path | None) -> dict:
    """{uri: Result} of the recordings that worked, ``--workers`` at a time; failures are
    printed and appended to ``failures``. ``out``: write each one there when done."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from diarize.utils import DiarizeError

    results = {}
    overall = tqdm(total=len(recordings), desc="recordings", unit="rec", disable=None, file=sys.stderr)  # fmt: skip

    def work(index: int, uri: str, path: Path):
        bar = tqdm(desc=uri, unit="win", leave=False, position=1 + index % args.workers,
                   disable=None, file=sys.stderr)  # fmt: skip
        try:
            result = diarizer(path, args.num_speakers, args.min_speakers, args.max_speakers,
                              hook=progress_hook(bar), uri=uri)  # fmt: skip
            if out is not None:
                write_outputs(result, args, out, len(recordings))
            return result
        finally:
            bar.close()

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [(path, pool.submit(work, i, uri, path)) for i, (uri, path) in enumerate(recordings)]  # fmt: skip
        for path, future in futures:
            try:
                result = future.result()
                results[result.uri] = result
            except Exception as e:  # one bad recording must not stop the others
                message = str(e) if isinstance(e, DiarizeError) else f"{path}: {_one_line(e)}"
                failures.append((str(path), message))
                tqdm.write(f"diarize run: {message}", file=sys.stderr)
            overall.update(1)
    overall.close()
    return results


def progress_hook(bar):
    """A Diarizer hook that moves ``bar`` (a tqdm) over the windows of one recording."""

    def hook(stage: str, artefact, completed: int | None = None, total: int | None = None):
        if stage == "local":
            bar.total, bar.n = total, completed
            bar.refresh()

    return hook


def wanted(args) -> list[str]:
    """Writers (diarize.writers) asked for, besides the plot."""
    return ["rttm"] + [name for name in ("exclusive", "json") if getattr(args, name)]


def write_outputs(result, args, out: Path, count: int) -> None:
    """Directory mode: ``<uri>.rttm`` [+ ``.exclusive.rttm``, ``.json``, plot] in ``out``."""
    from diarize.writers import get_writer

    for name in wanted(args):
        writer = get_writer(name)
        writer.write(result, out / f"{result.uri}{writer.suffix}")
    if args.plot:
        get_writer("png").write(
            result, Path(args.plot) if count == 1 else out / f"{result.uri}.png"
        )


def write_single(results: list, args, out: Path, count: int) -> None:
    """Single-file mode: all recordings in ``out`` [+ ``.exclusive.rttm``, ``.json``, plots]."""
    from diarize.writers import get_writer

    for name in wanted(args):
        writer = get_writer(name)
        writer.write(results, out if name == "rttm" else out.with_suffix(writer.suffix))
    if args.plot:
        plot = Path(args.plot)
        for r in results:
            get_writer("png").write(r, plot if count == 1 else plot.parent / f"{r.uri}.png")


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
