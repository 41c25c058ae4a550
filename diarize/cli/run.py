"""``diarize run``: who spoke when, in audio files of any length.

Inputs are audio files, directories of audio files (searched recursively) or Kaldi
``wav.scp`` files; the recording id (uri) is the file's stem or the ``wav.scp`` key. The
output is a directory (``<uri>.rttm`` per recording, plus ``<uri>.exclusive.rttm``,
``<uri>.json`` and ``<uri>.png`` on request) or one ``.rttm`` file for all recordings (then
``OUT.exclusive.rttm`` and ``OUT.json`` beside it). Every file is written atomically, right
after its recording in directory mode, at the end in single-file mode.

A recording that fails is reported on one line and skipped; the others go on, the failures
are listed at the end and the exit status is 1. So is a bad line of a ``wav.scp``
(``file:line: why``). Inputs, options and the output location are checked before the model
is loaded. ``--workers N`` diarizes N recordings at once in threads sharing one model:
decoding and resampling of one overlap the forward passes of another (worth it on a GPU, or
on a CPU with spare cores).

Ctrl-C stops within about a second (the recordings being diarized stop at their next batch
of windows, queued ones never start): the recordings already written stay, no temporary is
left, and the exit status is 130. A recording id with whitespace (RTTM fields cannot hold
any) is written with ``_`` instead, said once; ``--json`` keeps each recording's audio path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diarize.cli import add_inference_options, add_linking_options


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
    add_linking_options(p)
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


def collect_recordings(
    inputs: list[str],
) -> tuple[list[tuple[str, Path, float]], list[tuple[str, str]]]:
    """``([(uri, audio path, seconds)], [(input, error)])`` from files, directories and
    wav.scp files, every audio header read (a missing or unreadable file fails here, before
    any model is loaded); a bad wav.scp line is a failure of its own (``file:line``)."""
    from diarize.audio import audio_info
    from diarize.utils import DiarizeError

    found, failures = [], []
    for item in inputs:
        try:
            entries, errors = _expand(Path(item))
        except DiarizeError as e:
            entries, errors = [], [(item, str(e))]
        found += entries
        failures += errors
    recordings = []
    for uri, path in found:
        try:
            recordings.append((uri, path, audio_info(path).duration))
        except DiarizeError as e:
            failures.append((str(path), str(e)))
    return _safe_uris(recordings), failures


def _expand(path: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(uri, audio path) of one input, and ``("file:line", message)`` of each wav.scp line
    skipped."""
    from diarize.audio import is_audio_file
    from diarize.data.kaldi import scan_wav_scp
    from diarize.utils import DiarizeError

    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_file(p))
        if not found:
            raise DiarizeError(f"{path}: directory holds no audio file")
        return [(p.stem, p) for p in found], []
    if path.suffix == ".scp" and path.is_file():
        entries, errors = scan_wav_scp(path)
        skipped = [(f"{path}:{lineno}", message) for lineno, message in errors]
        return [(uri, audio) for uri, (_, audio) in entries.items()], skipped
    return [(path.stem, path)], []


def _safe_uris(recordings: list[tuple[str, Path, float]]) -> list[tuple[str, Path, float]]:
    """Recording ids fit for RTTM (whitespace becomes ``_``, said once); two recordings
    with one id are an error (their outputs would collide)."""
    from diarize.rttm import rttm_name
    from diarize.utils import DiarizeError

    renamed = [(uri, rttm_name(uri)) for uri, _, _ in recordings if rttm_name(uri) != uri]
    if renamed:
        shown = ", ".join(f"{a!r} -> {b!r}" for a, b in renamed[:3])
        more = f" and {len(renamed) - 3} more" if len(renamed) > 3 else ""
        print(
            f"diarize run: warning: RTTM fields cannot hold whitespace; recording id(s) "
            f"written as {shown}{more}",
            file=sys.stderr,
        )
    out, seen = [], {}
    for uri, path, seconds in recordings:
        uri = rttm_name(uri)
        if uri in seen:
            raise DiarizeError(
                f"recording id {uri!r} names both {seen[uri]} and {path}; outputs would collide"
            )
        seen[uri] = path
        out.append((uri, path, seconds))
    return out


def check_outputs(args: argparse.Namespace, out: Path, single: bool, count: int) -> None:
    """Every output location of ``count`` recordings writable, before any work (one
    DiarizeError line if not)."""
    from diarize.utils import DiarizeError, check_writable

    if not single and out.exists() and not out.is_dir():
        raise DiarizeError(
            f"{out}: exists and is not a directory (give a directory or a .rttm file)"
        )
    check_writable(out, directory=not single)
    if single:
        for name in wanted(args)[1:]:
            check_writable(out.with_suffix(".exclusive.rttm" if name == "exclusive" else ".json"))
    if args.plot and count == 1:
        check_writable(args.plot)
    elif args.plot and single:  # <uri>.png beside PLOT
        check_writable(Path(args.plot).parent, directory=True)


def run(args: argparse.Namespace) -> int:
    from diarize import Diarizer
    from diarize.cli import device_of, inference_overrides
    from diarize.config import parse_overrides
    from diarize.inference import SpeakerCount
    from diarize.utils import DiarizeError

    if args.workers < 1:
        raise DiarizeError(f"--workers must be >= 1, got {args.workers}")
    out = Path(args.output)
    single = out.suffix == ".rttm"
    SpeakerCount(args.num_speakers, args.min_speakers, args.max_speakers)  # before any work
    device = device_of(args)
    link = parse_overrides([f"link.{item}" for item in args.link], "--link")
    recordings, failures = collect_recordings(args.inputs)
    check_outputs(args, out, single, len(recordings))
    total = len(recordings) + len(failures)
    for _, message in failures:
        print(f"diarize run: {message}", file=sys.stderr)
    if not recordings:
        return report(failures, total)  # nothing to diarize: no model to load
    overrides = {**inference_overrides(args), **link}
    diarizer = Diarizer.from_pretrained(args.model, device, args.embedding, **overrides)
    results = diarize_all(diarizer, recordings, args, failures, None if single else out)
    if single:
        write_single([results[uri] for uri in sorted(results)], args, out, len(recordings))
    return report(failures, total)


class Interrupted(Exception):
    """Raised inside a worker at its next batch of windows once Ctrl-C was pressed."""


def diarize_all(diarizer, recordings, args, failures: list, out: Path | None) -> dict:
    """{uri: Result} of the recordings that worked, ``--workers`` at a time; failures are
    printed and appended to ``failures``. ``out``: write each one there when done. On
    Ctrl-C, queued recordings are cancelled, running ones stop at their next batch of
    windows, and KeyboardInterrupt is raised again once they have."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from diarize.cli import ProgressLog

    overall = tqdm(total=len(recordings), desc="recordings", unit="rec", disable=None, file=sys.stderr)  # fmt: skip
    log = ProgressLog("run", len(recordings), sum(seconds for _, _, seconds in recordings))
    stop = threading.Event()

    def work(index: int, uri: str, path: Path, seconds: float):
        bar = tqdm(desc=uri, unit="win", leave=False, position=1 + index % args.workers,
                   disable=None, file=sys.stderr)  # fmt: skip
        try:
            hook = progress_hook(bar, log, uri, seconds, stop)
            result = diarizer(path, args.num_speakers, args.min_speakers, args.max_speakers,
                              hook=hook, uri=uri)  # fmt: skip
            if out is not None:
                write_outputs(result, args, out, len(recordings))
            return result
        finally:
            bar.close()

    pool = ThreadPoolExecutor(max_workers=args.workers)
    try:
        futures = [(uri, path, seconds, pool.submit(work, i, uri, path, seconds))
                   for i, (uri, path, seconds) in enumerate(recordings)]  # fmt: skip
        results = _collect(futures, failures, log, overall)
    except KeyboardInterrupt:
        stop.set()  # running recordings stop at their next batch, queued ones never start
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    overall.close()
    log.close()
    return results


def _collect(futures: list, failures: list, log, overall) -> dict:
    """{uri: Result} of the futures that worked, in submission order; the failures printed
    and appended to ``failures``."""
    from tqdm import tqdm

    from diarize.utils import DiarizeError

    results = {}
    for uri, path, seconds, future in futures:
        try:
            result = future.result()
            results[result.uri] = result
        except Exception as e:  # one bad recording must not stop the others
            message = str(e) if isinstance(e, DiarizeError) else f"{path}: {_one_line(e)}"
            failures.append((str(path), message))
            tqdm.write(f"diarize run: {message}", file=sys.stderr)
        log.finish(uri, seconds)
        overall.update(1)
    return results


def progress_hook(bar, log=None, key=None, seconds: float = 0.0, stop=None):
    """A Diarizer hook that moves ``bar`` (a tqdm) over the windows of one recording, tells
    ``log`` (a ProgressLog) how far into its ``seconds`` of audio it is, and raises
    :class:`Interrupted` once ``stop`` (a threading.Event) is set."""

    def hook(stage: str, artefact, completed: int | None = None, total: int | None = None):
        if stop is not None and stop.is_set():
            raise Interrupted
        if stage == "local":
            bar.total, bar.n = total, completed
            bar.refresh()
            if log is not None and total:
                log.advance(key, seconds * completed / total)

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
