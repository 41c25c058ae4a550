"""Long recordings: real-time factor, peak memory and DER of ``diarize run`` on up to an hour.

1. Build a 60-minute conversation of 6 speakers who come and go: 12 segments of 5 minutes,
   each with 2-4 of the 6 (the same 6 people all along), cut from a single-speaker source
   corpus (``--source``: a Kaldi-style corpus directory as ``diarize simulate`` takes; one
   speaker per person of its ``spk2person``; ``--persons FILE``: only these persons, e.g.
   the ones the model never heard), utterances labelled with the simulator's energy
   VAD, light pink noise (20 dB SNR). Without ``--source``, crude synthetic voices (harmonic
   syllables, one pitch and timbre per speaker) stand in, which a trained model may not take
   for speech. Files go to ``--work``: ``seg00..seg11.wav`` (5 min), ``long05/20/60.wav``
   (the first 1, 4 and 12 segments end to end), and an RTTM for each.
2. Diarize 5, 20 and 60 minutes, each in a fresh subprocess: real-time factor (inference only,
   model loading excluded) and peak RSS (``ru_maxrss``). Check: peak RSS at 60 minutes within
   1.5 x the 5-minute peak plus the 60-minute audio itself (float32 samples).
3. DER (md-eval, collar ``--collar``) of the 60-minute file, where speakers must be linked
   across the whole hour, next to the DER of the same content diarized as 12 separate
   5-minute files.

    python bench/long_audio.py [--model exp/x/model.pt] --source data/corpus \
        --persons data/corpus/persons_dev [--work bench_work] [--seed N]

Results are also written to ``<work>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from diarize.audio import SAMPLE_RATE
from diarize.cli import collar
from diarize.scoring import DEFAULT_COLLAR

SEGMENT = 300.0  # seconds per segment
NUM_SEGMENTS = 12
NUM_SPEAKERS = 6
LENGTHS = {"long05": 1, "long20": 4, "long60": 12}  # recording -> segments it spans


# 1. Build -----------------------------------------------------------------------------------


def voices_from_corpus(
    source: str, rng: np.random.Generator, allowed: list[str] | None = None
) -> dict[str, list]:
    """{person: utterances} for NUM_SPEAKERS persons of the corpus (of ``allowed`` persons if
    given), one speaker id each."""
    from diarize.data.kaldi import load_source_corpus
    from diarize.data.simulate import read_spk2person

    by_speaker = load_source_corpus(source).speakers()
    person_of = read_spk2person(source)
    persons: dict[str, list] = {}
    for spk in rng.permutation(sorted(by_speaker)):
        person = person_of.get(str(spk), str(spk))
        if allowed is None or person in allowed:
            persons.setdefault(person, by_speaker[str(spk)])
    if len(persons) < NUM_SPEAKERS:
        sys.exit(f"{source}: {len(persons)} distinct persons, {NUM_SPEAKERS} needed")
    chosen = sorted(rng.choice(sorted(persons), size=NUM_SPEAKERS, replace=False))
    return {p: persons[p] for p in chosen}


def corpus_utterance(utts: list, rng: np.random.Generator) -> np.ndarray:
    from diarize.audio import load_audio

    utt = utts[int(rng.integers(len(utts)))]
    return load_audio(utt.path, SAMPLE_RATE, offset=utt.start, duration=utt.duration)


def synthetic_utterance(voice: int, rng: np.random.Generator) -> np.ndarray:
    """1-4 s of harmonic 'syllables' at the voice's pitch, shaped by its own spectral tilt."""
    f0 = 95.0 * 1.17**voice
    tilt = 0.6 + 0.15 * voice
    pieces = []
    for _ in range(int(rng.integers(4, 14))):
        n = int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
        tone = sum(np.sin(h * phase) / h**tilt for h in range(1, 12))
        pieces += [tone * np.hanning(n), np.zeros(int(rng.uniform(0.02, 0.12) * SAMPLE_RATE))]
    wave = np.concatenate(pieces)
    return (0.1 * wave / np.abs(wave).max()).astype(np.float32)


def build_segment(
    index: int, voices: dict, speakers: list[str], rng: np.random.Generator, source: bool
):
    """(wave (samples,), [(start, end, speaker)]) of one 5-minute conversation."""
    from diarize.data.simulate import add_noise, coloured_noise, energy_vad

    total = int(SEGMENT * SAMPLE_RATE)
    mix = np.zeros(total)
    turns, pos, previous = [], 0.0, None
    while True:
        spk = str(rng.choice([s for s in speakers if s != previous] or speakers))
        previous = spk
        if source:
            wave = corpus_utterance(voices[spk], rng)
        else:
            wave = synthetic_utterance(sorted(voices).index(spk), rng)
        start = max(0.0, pos + rng.exponential(0.8) - (0.6 if rng.random() < 0.15 else 0.0))
        first = int(start * SAMPLE_RATE)
        if first + wave.size > total:
            break
        mix[first : first + wave.size] += wave
        turns += [(start + a, start + b, spk) for a, b in energy_vad(wave)]
        pos = start + wave.size / SAMPLE_RATE
    mix = add_noise(mix, coloured_noise(total, 1.0, rng), 20.0)
    mix *= 0.9 / max(np.abs(mix).max(), 0.9)
    return mix.astype(np.float32), turns


def build(work: Path, source: str | None, seed: int, persons: str | None = None) -> None:
    """Write the segments, the long recordings and their RTTMs (skipped when present)."""
    import soundfile as sf

    from diarize.audio import write_audio
    from diarize.data.simulate import read_list
    from diarize.utils import atomic_path, atomic_write

    manifest = {
        "source": source,
        "persons": persons,
        "seed": seed,
        "segments": NUM_SEGMENTS,
        "segment_seconds": SEGMENT,
    }
    if (work / "manifest.json").exists() and json.loads(
        (work / "manifest.json").read_text()
    ) == manifest:
        return
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    voices = (
        voices_from_corpus(source, rng, read_list(persons) if persons else None)
        if source
        else {f"voice{v}": v for v in range(NUM_SPEAKERS)}
    )
    all_turns = []
    for i in range(NUM_SEGMENTS):
        speakers = sorted(rng.choice(sorted(voices), size=int(rng.integers(2, 5)), replace=False))
        wave, turns = build_segment(i, voices, speakers, rng, source is not None)
        write_audio(work / f"seg{i:02d}.wav", wave)
        write_turns(work / f"seg{i:02d}.rttm", f"seg{i:02d}", turns)
        all_turns.append(turns)
        print(f"segment {i:02d}: speakers {' '.join(speakers)}", file=sys.stderr)
    for name, count in LENGTHS.items():
        with atomic_path(work / f"{name}.wav") as tmp:
            with sf.SoundFile(tmp, "w", SAMPLE_RATE, 1, format="WAV", subtype="FLOAT") as out:
                for i in range(count):  # one segment in memory at a time
                    out.write(sf.read(work / f"seg{i:02d}.wav", dtype="float32")[0])
        shifted = [
            (a + i * SEGMENT, b + i * SEGMENT, s) for i in range(count) for a, b, s in all_turns[i]
        ]
        write_turns(work / f"{name}.rttm", name, shifted)
    with atomic_write(work / "manifest.json") as f:
        json.dump(manifest, f)


def write_turns(path: Path, uri: str, turns) -> None:
    """RTTM of ``[(start, end, speaker)]`` (diarize.rttm)."""
    from pyannote.core import Annotation, Segment

    from diarize.rttm import write_rttm

    annotation = Annotation(uri=uri)
    for track, (a, b, s) in enumerate(sorted(turns)):
        annotation[Segment(a, b), track] = s
    write_rttm(path, annotation)


# 2. Measure (in a fresh subprocess) ----------------------------------------------------------


def measure(model_path: str, audio: str, out: str, device: str) -> None:
    """Diarize ``audio``; print one JSON line with timings and peak RSS."""
    from diarize import Diarizer
    from diarize.rttm import write_rttm

    diarizer = Diarizer.from_pretrained(model_path, device)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB (Linux: KB)
    start = time.perf_counter()
    result = diarizer(audio)
    seconds = time.perf_counter() - start
    write_rttm(out, result.annotation)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "audio_seconds": result.duration,
                "seconds": seconds,
                "rss_loaded_mb": rss_loaded,
                "peak_rss_mb": peak,
            }
        )
    )


def measure_in_subprocess(args, name: str) -> dict:
    work = Path(args.work)
    cmd = [sys.executable, __file__, "--measure", str(work / f"{name}.wav"), "--device",
           args.device, "--hyp", str(work / f"{name}.hyp.rttm")]  # fmt: skip
    cmd += ["--model", args.model] if args.model else []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"measuring {name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# 3. DER -------------------------------------------------------------------------------------


def der(work: Path, names: list[str], hyp_suffix: str, collar: float):
    """Summed DER components (a FileScore, ``.der`` in %) over recordings ``names``, each
    scored over its whole duration."""
    from pyannote.core import Segment, Timeline

    from diarize.audio import audio_info
    from diarize.rttm import read_rttm
    from diarize.scoring import score

    refs, hyps, uems = {}, {}, {}
    for name in names:
        refs.update(read_rttm(work / f"{name}.rttm"))
        hyps.update(read_rttm(work / f"{name}{hyp_suffix}"))
        uems[name] = Timeline([Segment(0, audio_info(work / f"{name}.wav").duration)], uri=name)
    return score(refs, hyps, uems, collar=collar).total


def diarize_segments(args) -> None:
    """The 12 segments as separate files, in this process, one model load."""
    from diarize import Diarizer
    from diarize.rttm import write_rttm

    work = Path(args.work)
    diarizer = Diarizer.from_pretrained(args.model, args.device)
    for i in range(NUM_SEGMENTS):
        result = diarizer(work / f"seg{i:02d}.wav")
        write_rttm(work / f"seg{i:02d}.hyp.rttm", result.annotation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument(
        "--source", help="single-speaker corpus directory (default: synthetic voices)"
    )
    parser.add_argument(
        "--persons",
        help="file listing the persons to draw the 6 speakers from (e.g. the held-out ones)",
    )
    parser.add_argument(
        "--work", default="long_audio_work", help="where audio, references and hypotheses go"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--collar", type=collar, default=DEFAULT_COLLAR, help="DER collar, seconds per side"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure", metavar="AUDIO", help=argparse.SUPPRESS)  # subprocess mode
    parser.add_argument("--hyp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.model, args.measure, args.hyp, args.device)

    work = Path(args.work)
    build(work, args.source, args.seed, args.persons)
    rows = {name: measure_in_subprocess(args, name) for name in LENGTHS}
    print(
        f"{'recording':10} {'audio s':>8} {'infer s':>8} {'RTF':>7} {'RSS after load MB':>18} {'peak RSS MB':>12}"
    )
    for name, r in rows.items():
        rtf = r["seconds"] / r["audio_seconds"]
        print(
            f"{name:10} {r['audio_seconds']:8.0f} {r['seconds']:8.1f} {rtf:7.4f} {r['rss_loaded_mb']:18.0f} {r['peak_rss_mb']:12.0f}"
        )
    audio_mb = rows["long60"]["audio_seconds"] * SAMPLE_RATE * 4 / 2**20
    limit = 1.5 * rows["long05"]["peak_rss_mb"] + audio_mb
    ok = rows["long60"]["peak_rss_mb"] <= limit
    print(
        f"peak RSS 60 min {rows['long60']['peak_rss_mb']:.0f} MB vs limit 1.5 x {rows['long05']['peak_rss_mb']:.0f} + {audio_mb:.0f} (audio) = {limit:.0f} MB: {'PASS' if ok else 'FAIL'}"
    )

    diarize_segments(args)
    der_long = der(work, ["long60"], ".hyp.rttm", args.collar)
    der_short = der(work, [f"seg{i:02d}" for i in range(NUM_SEGMENTS)], ".hyp.rttm", args.collar)
    for what, t in (("60-minute file (speakers linked over the hour)", der_long),
                    (f"same content as {NUM_SEGMENTS} separate 5-minute files", der_short)):  # fmt: skip
        print(f"DER {t.der:6.2f} % (missed {t.percent(t.missed):.2f}, false alarm "
              f"{t.percent(t.false_alarm):.2f}, confusion {t.percent(t.confusion):.2f}): {what}")  # fmt: skip
    results = {"runs": rows, "rss_limit_mb": limit, "rss_ok": ok, "collar": args.collar,
               "der_60min": der_long.to_json(), "der_5min_files": der_short.to_json()}  # fmt: skip
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
