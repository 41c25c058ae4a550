"""The ``diarize`` command. Each subcommand lives in its own module of this package with
``add_parser(subparsers)`` and ``run(args) -> int``; the library does the work, the CLI
only parses arguments, calls it, writes files and prints. No subcommand module imports
another: what several share (the inference and linking options, the collar type, the DATA
options) is here. Heavy
imports (torch) happen inside ``run`` so ``--help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import threading
import time
import warnings

import diarize
from diarize.utils import DiarizeError, DiarizeWarning

COMMANDS = ["run", "evaluate", "score", "simulate", "train", "average", "prepare", "stats"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diarize", description="Speaker diarization: who spoke when (EEND-EDA)."
    )
    parser.add_argument("--version", action="version", version=f"diarize {diarize.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if importlib.util.find_spec(f"diarize.cli.{name}") is None:
            continue  # not built yet
        importlib.import_module(f"diarize.cli.{name}").add_parser(sub)
    return parser


def add_inference_options(p: argparse.ArgumentParser) -> None:
    """Options of ``diarize run`` and ``diarize evaluate``; ``None`` = the checkpoint's setting."""
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
        "--attractor-threshold",
        type=float,
        metavar="P",
        help="existence probability above which a window decodes one more local speaker "
        "(default: the checkpoint's, else the model's)",
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
        "--frontend-block",
        type=float,
        metavar="SEC",
        help="run a frozen frontend (CAM++, WavLM freeze: all) once per block of SEC seconds "
        "and slice the windows' frames from it (0: once per window)",
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


def add_linking_options(p: argparse.ArgumentParser) -> None:
    """``--embedding`` and ``--link`` of ``diarize run`` and ``diarize evaluate``: the
    speaker-embedding model and the LinkConfig constants that link speakers across windows."""
    p.add_argument(
        "--embedding",
        metavar="NAME|PATH",
        help="pretrained speaker-embedding model to link speakers with (CAM++, WeSpeaker "
        "ResNet, ECAPA: a file or a name such as campplus-zh-en; default: the one the "
        "checkpoint carries, if any; 'none': the checkpoint's own speaker encoder)",
    )
    p.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a linking constant (LinkConfig), e.g. method=average|centroid|spectral; repeatable",
    )


INFER_OPTIONS = ("threshold", "attractor_threshold", "median", "min_duration_on",
                 "min_duration_off", "window", "hop", "frontend_block", "link_threshold",
                 "split_voices", "batch_size")  # fmt: skip


def inference_overrides(args: argparse.Namespace) -> dict:
    """The InferConfig fields given on the command line, for ``Diarizer.from_pretrained``."""
    return {f: getattr(args, f) for f in INFER_OPTIONS if getattr(args, f, None) is not None}


def device_of(args: argparse.Namespace) -> str:
    """``--device``, or cuda when there is one, else cpu; a device this machine does not
    have is a DiarizeError now, before any model is loaded."""
    import torch

    if args.device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError):
        raise DiarizeError(
            f"--device {args.device!r}: not a torch device (cpu, cuda, cuda:1...)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DiarizeError(f"--device {args.device}: no CUDA device here (use --device cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DiarizeError(
            f"--device {args.device}: only {torch.cuda.device_count()} CUDA device(s) here"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DiarizeError(f"--device {args.device}: MPS is not available here (use --device cpu)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise DiarizeError(f"--device {args.device}: diarize runs on cpu, cuda or mps")
    return args.device


DATA_HELP = (
    "diarization set: a Kaldi-style directory (wav.scp + rttm [+ uem, reco2dur]), a folder "
    "of audio + RTTM, lhotse manifests (a directory with one *recordings*.jsonl[.gz] and "
    "its *supervisions* twin, or that recordings file), or a pyannote.database protocol "
    "name such as AMI.SpeakerDiarization.only_words (with --subset)"
)


def add_data_options(p: argparse.ArgumentParser) -> None:
    """DATA and its options (``diarize evaluate``, ``diarize stats``): what
    :func:`diarize.data.kaldi.load_diarization_set` takes."""
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument(
        "--subset",
        help="the subset of a pyannote.database protocol: train, development (dev) or test",
    )
    p.add_argument(
        "--database",
        metavar="YML",
        help="the pyannote.database YAML defining the protocol (default: those "
        "pyannote.database finds: $PYANNOTE_DATABASE_CONFIG, ~/.pyannote/database.yml, "
        "./database.yml)",
    )
    p.add_argument(
        "--allow-pipes",
        action="store_true",
        help="run the shell commands of piped wav.scp entries ('uri sph2pipe -f wav -p "
        "x.sph |') and lhotse command sources; off by default, since it executes what the "
        "data files say",
    )


def collar(text: str) -> float:
    """argparse type of ``--collar``: seconds per side, a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


# Progress of run/evaluate for logs: when stderr is not a terminal (redirected to a file, a
# batch system's log) tqdm's bars are off, so a line like
#   diarize run: 3/10 recordings, 0:25:12 of 1:18:00 audio (32%), 0:02:05 elapsed, RTF 0.083
# is printed every PROGRESS_EVERY seconds instead, and once at the end.
PROGRESS_EVERY = 5.0  # seconds between two lines


class ProgressLog:
    """Counts recordings and audio seconds done, from any thread; prints when due."""

    def __init__(self, command: str, recordings: int, audio_seconds: float, stream=None):
        self.command, self.recordings, self.total = command, recordings, audio_seconds
        self.stream = stream or sys.stderr
        self.enabled = not self.stream.isatty()
        self.done, self.seconds, self.partial = 0, 0.0, {}  # partial: key -> seconds so far
        self.start = self.last = time.monotonic()
        self.lock = threading.Lock()

    def advance(self, key: object, seconds: float) -> None:
        """``key`` (a recording being diarized) is ``seconds`` into its audio."""
        with self.lock:
            self.partial[key] = seconds
        self._maybe_print()

    def finish(self, key: object, seconds: float) -> None:
        """``key`` is done (or failed): ``seconds`` of its audio count as processed."""
        with self.lock:
            self.partial.pop(key, None)
            self.done += 1
            self.seconds += seconds
        self._maybe_print()

    def close(self) -> None:
        if self.enabled and self.done:
            self._print()

    def line(self) -> str:
        with self.lock:
            seconds = self.seconds + sum(self.partial.values())
        elapsed = time.monotonic() - self.start
        share = f" ({100 * seconds / self.total:.0f}%)" if self.total > 0 else ""
        rtf = f", RTF {elapsed / seconds:.3f}" if seconds > 0 else ""
        return (
            f"diarize {self.command}: {self.done}/{self.recordings} recordings, "
            f"{_clock(seconds)} of {_clock(self.total)} audio{share}, "
            f"{_clock(elapsed)} elapsed{rtf}"
        )

    def _maybe_print(self) -> None:
        if not self.enabled:
            return
        with self.lock:  # one line per period, whichever thread gets here first
            if time.monotonic() - self.last < PROGRESS_EVERY:
                return
            self.last = time.monotonic()
        self._print()

    def _print(self) -> None:
        print(self.line(), file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _one_line_warnings(args.command, warnings.showwarning)
    try:
        return int(args.func(args) or 0)
    except DiarizeError as e:
        print(f"diarize {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"diarize {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line_warnings(command: str, default):
    """A ``warnings.showwarning`` printing DiarizeWarnings as ``diarize <cmd>: warning: ...``
    (others as ``default`` does)."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DiarizeWarning):
            print(f"diarize {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show
