"""Before/after check of a refactoring: the same audio through two checkouts of diarize.

1. ``--make-long OUT.wav``: a ~10-minute recording (+ ``OUT.rttm``) made of the bundled
   example played at six speeds (1.0, 0.92, 1.1, 0.85, 1.2, 0.96: pitch and tempo shift
   together, each copy's persons labelled as speakers of their own), for when no source
   corpus is at hand for ``bench/long_audio.py``.
2. ``--tree DIR --out OUT AUDIO...``: diarize each file ``--runs`` times with the diarize
   package of checkout ``DIR`` (a ``git worktree`` of the old commit, or ``.``), each run in
   a fresh subprocess on one thread; writes ``OUT/<stem>.rttm`` and ``OUT/timing.json``
   (inference seconds per run, model loading excluded) and prints the median RTF.
3. ``--compare BEFORE AFTER [--ref-dir DIR]``: byte-identity of the RTTMs of two ``--out``
   folders, the median RTFs, and where RTTMs differ the DER (collar 0.25) of each against
   the reference ``DIR/<stem>.rttm`` when there is one.

    git worktree add /tmp/before_tree <old commit>
    python bench/compare_refactor.py --make-long /tmp/long/meeting_x6.wav
    python bench/compare_refactor.py --tree /tmp/before_tree --out /tmp/before \
        examples/meeting.flac /tmp/long/meeting_x6.wav
    python bench/compare_refactor.py --tree . --out /tmp/after examples/meeting.flac \
        /tmp/long/meeting_x6.wav
    python bench/compare_refactor.py --compare /tmp/before /tmp/after --ref-dir /tmp/long
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEEDS = (1.0, 0.92, 1.1, 0.85, 1.2, 0.96)


# 1. A long recording from the bundled example ----------------------------------------------


def make_long(out: Path, source: Path = ROOT / "examples" / "meeting.flac") -> None:
    """``out`` (wav) and ``out.with_suffix('.rttm')``: ``source`` at each of SPEEDS in turn."""
    import numpy as np
    import soundfile as sf
    from pyannote.core import Annotation, Segment

    from diarize.audio import SAMPLE_RATE, load_audio, resample
    from diarize.rttm import read_rttm, write_rttm

    (reference,) = read_rttm(source.with_suffix(".rttm")).values()
    wave, pieces, long, offset = load_audio(source), [], Annotation(uri=out.stem), 0.0
    for speed in SPEEDS:
        pieces.append(resample(wave, round(SAMPLE_RATE * speed), SAMPLE_RATE) * (0.6 + 0.4 * speed))
        for seg, track, label in reference.itertracks(yield_label=True):
            turn = Segment(offset + seg.start / speed, offset + seg.end / speed)
            long[turn, (speed, track)] = f"{label}_x{speed:g}"
        offset += len(pieces[-1]) / SAMPLE_RATE
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, np.concatenate(pieces).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    write_rttm(out.with_suffix(".rttm"), long)
    print(f"{out}: {offset:.1f} s, {len(SPEEDS)} copies of {source.name}")


# 2. Diarize with one checkout ---------------------------------------------------------------


def measure(audio: str, rttm: str, model: str | None) -> None:
    """(In the subprocess.) Diarize ``audio`` with whatever API this checkout has; print
    one JSON line: inference seconds and audio seconds."""
    from diarize.rttm import write_rttm

    try:
        from diarize import Diarizer
    except ImportError:  # before the refactoring: checkpoint + diarize_file
        run, duration = _old_api(model)
    else:
        diarizer = Diarizer.from_pretrained(model)
        run, duration = diarizer, None
    start = time.perf_counter()
    result = run(audio)
    seconds = time.perf_counter() - start
    write_rttm(rttm, result.annotation)
    print(json.dumps({"seconds": seconds, "audio_seconds": duration or result.duration}))


def _old_api(model: str | None):
    from diarize.checkpoint import load_model, load_speaker_encoder
    from diarize.inference import diarize_file

    path = model or str(ROOT / "diarize" / "assets" / "default.pt")
    net, exp = load_model(path)
    speaker = load_speaker_encoder(path)

    def run(audio: str):
        return diarize_file(
            net, audio, exp.infer, chunk_frames=exp.train.chunk_frames,
            sample_rate=exp.features.sample_rate, speaker_encoder=speaker,
        )  # fmt: skip

    return run, None


def run_tree(tree: Path, out: Path, audios: list[Path], runs: int, model: str | None) -> None:
    """Diarize every file ``runs`` times with checkout ``tree``; write RTTMs and timings."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve()), "OMP_NUM_THREADS": "1"}
    out.mkdir(parents=True, exist_ok=True)
    timing = {}
    for audio in audios:
        rows = [_one_run(audio, out / f"{audio.stem}.rttm", model, env) for _ in range(runs)]
        seconds = [r["seconds"] for r in rows]
        timing[audio.stem] = {"audio_seconds": rows[0]["audio_seconds"], "seconds": seconds}
        rtf = statistics.median(seconds) / rows[0]["audio_seconds"]
        print(f"{audio.stem}: {rows[0]['audio_seconds']:.0f} s audio, inference "
              f"{' '.join(f'{s:.2f}' for s in seconds)} s, median RTF {rtf:.4f}")  # fmt: skip
    (out / "timing.json").write_text(json.dumps({"tree": str(tree.resolve()), **timing}, indent=1))


def _one_run(audio: Path, rttm: Path, model: str | None, env: dict) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--measure",
        str(audio),
        "--rttm",
        str(rttm),
    ]
    cmd += ["--model", model] if model else []
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/")
    if proc.returncode:
        sys.exit(f"diarizing {audio} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# 3. Compare ---------------------------------------------------------------------------------


def compare(before: Path, after: Path, ref_dir: Path | None) -> int:
    """Print identity, RTF and (where they differ) DER per recording; 1 if any differs."""
    times = [json.loads((d / "timing.json").read_text()) for d in (before, after)]
    differ = 0
    for stem in sorted(k for k in times[0] if k != "tree" and k in times[1]):
        a, b = (d / f"{stem}.rttm" for d in (before, after))
        same = b.exists() and a.read_bytes() == b.read_bytes()
        rtf = [statistics.median(t[stem]["seconds"]) / t[stem]["audio_seconds"] for t in times]
        print(f"{stem}: RTTM {'byte-identical' if same else 'DIFFERS'}; "
              f"median RTF before {rtf[0]:.4f}, after {rtf[1]:.4f}")  # fmt: skip
        if not same:
            differ = 1
            _report_der(stem, a, b, ref_dir)
    return differ


def _report_der(stem: str, a: Path, b: Path, ref_dir: Path | None) -> None:
    from diarize.rttm import read_rttm
    from diarize.scoring import DEFAULT_COLLAR, score

    hyps = [read_rttm(p) for p in (a, b)]
    change = score(hyps[0], hyps[1], collar=0.0).total
    print(f"  after against before (collar 0): {change.der:.2f} % of the speech relabelled")
    ref = ref_dir / f"{stem}.rttm" if ref_dir else None
    if ref is None or not ref.exists():
        return
    refs = read_rttm(ref)
    for name, hyp in zip(("before", "after"), hyps, strict=True):
        t = score(refs, hyp, collar=DEFAULT_COLLAR).total
        print(f"  DER {name}: {t.der:.2f} % (missed {t.percent(t.missed):.2f}, false alarm "
              f"{t.percent(t.false_alarm):.2f}, confusion {t.percent(t.confusion):.2f})")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("audio", nargs="*", type=Path, help="audio files to diarize (with --tree)")
    p.add_argument("--tree", type=Path, help="checkout whose diarize package runs")
    p.add_argument("--out", type=Path, help="where RTTMs and timing.json go (with --tree)")
    p.add_argument("--runs", type=int, default=3, help="runs per file (median RTF)")
    p.add_argument("--model", help="checkpoint (default: the bundled model)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    p.add_argument("--ref-dir", type=Path, help="reference RTTMs <stem>.rttm (with --compare)")
    p.add_argument("--make-long", type=Path, metavar="OUT_WAV")
    p.add_argument("--source", type=Path, default=ROOT / "examples" / "meeting.flac",
                   help="recording (with its .rttm beside it) that --make-long repeats")  # fmt: skip
    p.add_argument("--measure", help=argparse.SUPPRESS)  # subprocess mode
    p.add_argument("--rttm", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        return measure(args.measure, args.rttm, args.model) or 0
    if args.make_long:
        return make_long(args.make_long, args.source) or 0
    if args.compare:
        return compare(*args.compare, args.ref_dir)
    if not (args.tree and args.out and args.audio):
        p.error("give --tree DIR --out OUT AUDIO..., --compare BEFORE AFTER or --make-long OUT")
    model = str(Path(args.model).resolve()) if args.model else None
    run_tree(args.tree, args.out, [a.resolve() for a in args.audio], args.runs, model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
