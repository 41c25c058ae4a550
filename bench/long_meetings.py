"""Long meetings of held-out persons: DER of the whole recording against the same content
diarized as short files, speaker count and real-time factor, per speaker-embedding model.

1. Draw ``--draws`` meetings (``diarize.data.simulate``, ``--mode meeting``: 2-4-person
   conversations one after the other, persons who come and go) of 5-7 of the persons of
   ``--persons`` (default: the 7 held-out ones), ``--minutes`` long (the last conversation
   runs past it), with the flags of the real-voices recipe's ``dev_real_long`` (SNR 10/15/20
   dB, reverberation 0.3); meeting ``i`` has its own generator, seeded ``(--seed, i)``, as
   ``diarize simulate CORPUS WORK/meetings<M>min_seed<S> --mode meeting --meeting-minutes M
   --speakers 5 6 7 --num-mixtures K --snr 10 15 20 --rir-prob 0.3 --speaker-list PERSONS
   --prefix lmeet<M> --seed S`` would write them.
2. Per meeting and ``--embedding`` (``none`` = the model's own speaker encoder): diarize the
   whole file (real-time factor of the analysis and linking, embeddings included, model
   loading excluded, on ``--threads`` threads), and the same audio cut into pieces of about
   5 minutes (``--piece``; each cut moved to the middle of the longest pause of the reference
   within ``--search`` s of it), each piece diarized and scored on its own (DER summed over
   the pieces). DER: md-eval, collar 0.25 s, over the whole of each file.
3. Linking settings: the stored ones (of the model, or ``PRETRAINED_LINKING`` for the
   embedding's kind) and each combination of ``--sweep KEY=V1,V2`` (``link_threshold`` or a
   LinkConfig field) finish the same analyses (``Diarizer.finish``). Per embedding, the
   setting with the lowest DER of the whole files on the first ``--tune-draws`` meetings is
   the one summarised, over all meetings and over the others (not tuned on) apart.

    OMP_NUM_THREADS=2 python bench/long_meetings.py --work exp/long_meetings --threads 2 \
        --embedding none data/pretrained/campplus_cn_en_common.pt \
        --sweep spectral_keep=0.05,0.1 [--draws 10] [--minutes 20] [--seed 0]

Prints a line per meeting, embedding and setting, then the summary against the targets
(count within 1 on 8 of 10, DER whole - short <= 2 points, RTF <= 0.05, bundled encoder
within 5 points of CAM++); writes ``<work>/results.json`` (rewritten after each meeting).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

from pyannote.core import Annotation, Segment, Timeline

from diarize.scoring import DEFAULT_COLLAR
from diarize.utils import run_tool

PIECE = 300.0  # seconds, length the pieces are cut to
SEARCH = 20.0  # seconds either side of a cut where a pause is looked for
TARGETS = {"count_within_1": 8, "der_gap": 2.0, "rtf": 0.05, "bundled_gap": 5.0}


# 1. Meetings --------------------------------------------------------------------------------


def build_meetings(args):
    """The meetings (a DiarizationSet of ``args.draws`` recordings), simulated unless there."""
    from diarize.data.kaldi import load_diarization_set
    from diarize.data.simulate import SimulationConfig, read_list, simulate

    config = SimulationConfig(
        num_mixtures=args.draws, speakers=(5, 6, 7), snrs=(10.0, 15.0, 20.0), rir_prob=0.3,
        mode="meeting", meeting_minutes=args.minutes, seed=args.seed,
        prefix=f"lmeet{args.minutes:g}",
    )  # fmt: skip
    out = Path(args.work) / f"meetings{args.minutes:g}min_seed{args.seed}"
    simulate(args.source, out, config, read_list(args.persons), workers=1, progress=False)
    return load_diarization_set(out)


# 2. Pieces ----------------------------------------------------------------------------------


def cut_points(reference: Annotation, duration: float, piece: float = PIECE,
               search: float = SEARCH) -> list[float]:  # fmt: skip
    """Boundaries ``[0, c1, ..., duration]`` of ``round(duration / piece)`` (at least 1)
    pieces of equal length, each inner cut moved to the middle of the longest pause (no
    reference speech) overlapping ``search`` seconds either side of it (kept where none)."""
    count = max(1, round(duration / piece))
    pauses = reference.get_timeline().support().gaps(Segment(0.0, duration))
    cuts = [0.0]
    for k in range(1, count):
        mark = k * duration / count
        near = [p & Segment(mark - search, mark + search) for p in pauses]
        near = [p for p in near if p.duration > 0]
        cuts.append(max(near, key=lambda p: p.duration).middle if near else mark)
    return cuts + [duration]


def crop(reference: Annotation, start: float, end: float, uri: str) -> Annotation:
    """The turns of ``reference`` within ``[start, end]``, shifted to start at 0."""
    out = Annotation(uri=uri)
    for turn, track, label in reference.crop(Segment(start, end)).itertracks(yield_label=True):
        out[Segment(turn.start - start, turn.end - start), track] = label
    return out


def analyse_pieces(diarizer, wave, reference: Annotation, uri: str, duration: float) -> list:
    """[(reference piece, its Analysis)] of the recording cut at :func:`cut_points`."""
    rate = diarizer.sample_rate
    cuts = cut_points(reference, duration)
    pieces = []
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        name = f"{uri}_p{i}"
        analysis = diarizer.analyse((wave[int(a * rate) : int(b * rate)], rate), uri=name)
        pieces.append((crop(reference, a, b, name), analysis))
    return pieces


# 3. Settings and scores ---------------------------------------------------------------------


def settings_grid(items: list[str]) -> dict[str, dict]:
    """{label: InferConfig overrides}: ``stored`` (none) and each combination of
    ``["spectral_keep=0.05,0.1", "link_threshold=0.3"]`` (LinkConfig fields under ``link``)."""
    import dataclasses

    from diarize.config import InferConfig, parse_sweeps

    top = {f.name for f in dataclasses.fields(InferConfig)}
    grid = {"stored": {}}
    for combo in parse_sweeps(items) if items else []:
        overrides: dict = {"link": {}}
        for key, value in combo.items():
            (overrides if key in top else overrides["link"])[key] = value
        grid[" ".join(f"{k}={v}" for k, v in combo.items())] = overrides
    return grid


def whole_score(reference: Annotation, hypothesis: Annotation, duration: float, collar: float):
    """FileScore of one recording scored over ``[0, duration]``."""
    from diarize.scoring import score

    uri = reference.uri
    uem = {uri: Timeline([Segment(0.0, duration)], uri=uri)}
    return score({uri: reference}, {uri: hypothesis}, uem, collar).total


def pieces_score(diarizer, pieces: list, collar: float):
    """FileScore summed over the pieces, each finished and scored on its own."""
    from diarize.scoring import score

    refs, hyps, uems = {}, {}, {}
    for ref, analysis in pieces:
        refs[ref.uri] = ref
        hyps[ref.uri] = diarizer.finish(analysis).annotation
        uems[ref.uri] = Timeline([Segment(0.0, analysis.source.duration)], uri=ref.uri)
    return score(refs, hyps, uems, collar).total


def measure(diarizer, rec, grid: dict, collar: float) -> dict:
    """{setting: figures} of one meeting with one embedding; the analyses are shared."""
    from diarize.audio import load_audio

    start = time.perf_counter()
    whole = diarizer.analyse(rec.path, uri=rec.id)
    analysis_s = time.perf_counter() - start
    pieces = analyse_pieces(
        diarizer, load_audio(rec.path, diarizer.sample_rate), rec.annotation, rec.id, rec.duration
    )
    rows = {}
    for label, overrides in grid.items():
        settings = diarizer.with_settings(overrides, "long_meetings settings")
        start = time.perf_counter()
        hypothesis = settings.finish(whole).annotation
        seconds = analysis_s + time.perf_counter() - start
        long = whole_score(rec.annotation, hypothesis, rec.duration, collar)
        short = pieces_score(settings, pieces, collar)
        rows[label] = {
            "whole": long.percentages(), "short": short.percentages(),
            "difference": round(long.der - short.der, 2),
            "speakers": [long.hyp_speakers, long.ref_speakers],
            "pieces": len(pieces), "seconds": round(seconds, 2),
            "rtf": round(seconds / rec.duration, 4),
        }  # fmt: skip
    return rows


# 4. Report ----------------------------------------------------------------------------------


def print_row(draw: int, rec, embedding: str, label: str, row: dict) -> None:
    found, true = row["speakers"]
    print(f"{draw:3d} {rec.id:18s} {rec.duration / 60:5.1f} {Path(embedding).stem[:14]:14s} "
          f"{label:22s} {row['whole']['der']:7.2f} {row['short']['der']:7.2f} "
          f"{row['difference']:+6.2f} {found:3d}/{true:<3d} {row['rtf']:7.4f}", flush=True)  # fmt: skip


def choose(draws: list[dict], embedding: str, tune: int) -> str:
    """The setting with the lowest mean whole-file DER on the draws numbered below ``tune``
    (``stored`` when there are none)."""
    tuned = [d for d in draws if d["draw"] < tune]
    if not tuned:
        return "stored"
    return min(draws[0]["results"][embedding], key=lambda s: statistics.mean(
        d["results"][embedding][s]["whole"]["der"] for d in tuned))  # fmt: skip


def summarise(rows: list[dict]) -> dict:
    """Target figures over the rows of one embedding and setting."""
    diffs = [r["difference"] for r in rows]
    return {
        "draws": len(rows),
        "count_within_1": sum(abs(r["speakers"][0] - r["speakers"][1]) <= 1 for r in rows),
        "count_exact": sum(r["speakers"][0] == r["speakers"][1] for r in rows),
        "mean_der_whole": round(statistics.mean(r["whole"]["der"] for r in rows), 2),
        "mean_der_short": round(statistics.mean(r["short"]["der"] for r in rows), 2),
        "mean_difference": round(statistics.mean(diffs), 2),
        "median_difference": round(statistics.median(diffs), 2),
        "within_2": sum(d <= TARGETS["der_gap"] for d in diffs),
        "mean_rtf": round(statistics.mean(r["rtf"] for r in rows), 4),
        "max_rtf": max(r["rtf"] for r in rows),
    }


def summary(draws: list[dict], embeddings: list[str], tune: int, setting: str | None) -> dict:
    """Per embedding: its chosen setting (``setting`` if given), figures on all draws and on
    those it was not chosen on."""
    out = {}
    for emb in embeddings:
        label = setting or choose(draws, emb, tune)
        tuned = [d["draw"] for d in draws if d["draw"] < tune and not setting]
        rows = [d["results"][emb][label] for d in draws]
        out[emb] = {"setting": label, "tuned_on": tuned, "all": summarise(rows)}
        untuned = [d["results"][emb][label] for d in draws if d["draw"] not in tuned]
        if tuned and untuned:
            out[emb]["untuned"] = summarise(untuned)
    return out


def print_summary(result: dict) -> None:
    for emb, s in result.items():
        why = f"lowest mean whole DER on draws {s['tuned_on']}" if s["tuned_on"] else "given"
        print(f"\n{emb}: setting '{s['setting']}' ({why})")
        for part in ("all", "untuned"):
            if part in s:
                f = s[part]
                print(f"  {part:8s} {f['draws']:2d} draws: count within 1 {f['count_within_1']}/"
                      f"{f['draws']} (exact {f['count_exact']}), DER whole {f['mean_der_whole']:.2f}"
                      f" short {f['mean_der_short']:.2f}, difference mean {f['mean_difference']:+.2f}"
                      f" median {f['median_difference']:+.2f} (<= 2 on {f['within_2']}), RTF mean "
                      f"{f['mean_rtf']:.4f} max {f['max_rtf']:.4f}")  # fmt: skip
    embs = list(result)
    if "none" in embs and len(embs) > 1:
        other = next(e for e in embs if e != "none")
        for part in ("all", "untuned"):
            if part in result["none"]:
                gap = (result["none"][part]["mean_der_whole"]
                       - result[other][part]["mean_der_whole"])  # fmt: skip
                print(f"bundled encoder - {Path(other).stem} mean DER whole ({part}): {gap:+.2f}"
                      f" points (target <= {TARGETS['bundled_gap']:g})")  # fmt: skip


def main() -> int:
    import torch

    from diarize import Diarizer
    from diarize.utils import atomic_write

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="data/corpus", help="single-speaker source corpus")
    p.add_argument("--persons", default="data/corpus/persons_dev_conv", help="persons to draw")
    p.add_argument("--work", default="exp/long_meetings", help="meetings and results.json")
    p.add_argument("--model", help="checkpoint (default: the bundled model)")
    p.add_argument("--embedding", nargs="+", default=["none"], help="'none' or NAME|PATH each")
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--first", type=int, default=0, help="skip the meetings before this one")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (set OMP_NUM_THREADS too)")
    p.add_argument("--sweep", nargs="*", default=[], metavar="KEY=V1,V2")
    p.add_argument("--tune-draws", type=int, default=3, help="choose the setting on these")
    p.add_argument("--setting", help="summarise this setting's label instead of choosing")
    p.add_argument("--collar", type=float, default=DEFAULT_COLLAR)
    p.add_argument("--out", help="results file (default: <work>/results.json)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = build_meetings(args)
    grid = settings_grid(args.sweep)
    diarizers = {e: Diarizer.from_pretrained(args.model, embedding=e) for e in args.embedding}
    print(f"{'#':>3} {'meeting':18s} {'min':>5} {'embedding':14s} {'setting':22s} "
          f"{'DER whl':>7} {'DER sht':>7} {'diff':>6} {'spk':>7} {'RTF':>7}")  # fmt: skip
    draws, out = [], Path(args.out or Path(args.work) / "results.json")
    for draw, rec in enumerate(data.recordings[args.first :], args.first):
        entry = {"draw": draw, "uri": rec.id, "minutes": round(rec.duration / 60, 2),
                 "results": {}}  # fmt: skip
        for emb, diarizer in diarizers.items():
            entry["results"][emb] = measure(diarizer, rec, grid, args.collar)
            for label, row in entry["results"][emb].items():
                print_row(draw, rec, emb, label, row)
        draws.append(entry)
        with atomic_write(out) as f:
            json.dump({"args": vars(args), "draws": draws}, f, indent=1)
    result = summary(draws, args.embedding, args.tune_draws, args.setting)
    print_summary(result)
    with atomic_write(out) as f:
        json.dump({"args": vars(args), "draws": draws, "summary": result}, f, indent=1)
    return 0


if __name__ == "__main__":
    run_tool(main, Path(__file__).name)
