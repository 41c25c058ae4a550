"""``diarize simulate``: simulated conversations from a single-speaker corpus."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate multi-speaker conversations or mixtures from single-speaker speech",
        description="Simulate conversations as Fujita et al. (2019): per mixture N speakers "
        "(N drawn from --speakers), each with 10-20 utterances separated by exponential pauses "
        "of mean --beta seconds, summed, reverberated with probability --rir-prob and mixed "
        "with noise at an SNR drawn from --snr. SOURCE is a Kaldi-style directory (wav.scp "
        "[+ segments] + utt2spk [+ spk2person]); OUT becomes a diarization directory (wav/, "
        "rttm, wav.scp, reco2dur). Rerunning with the same arguments resumes.",
    )
    p.add_argument("source", help="single-speaker corpus directory")
    p.add_argument("out", help="output directory")
    p.add_argument("--num-mixtures", type=int, required=True, help="mixtures to make")
    p.add_argument(
        "--speakers",
        type=int,
        nargs="+",
        default=[1, 2, 3, 4],
        help="speaker counts (default 1 2 3 4)",
    )
    p.add_argument("--beta", type=float, default=2.0, help="mean pause in seconds (default 2)")
    p.add_argument(
        "--min-utts", type=int, default=10, help="utterances per speaker, min (default 10)"
    )
    p.add_argument(
        "--max-utts", type=int, default=20, help="utterances per speaker, max (default 20)"
    )
    p.add_argument(
        "--noise",
        nargs="+",
        default=["synthetic"],
        metavar="DIR_OR_FILE",
        help="noise files or directories, or 'synthetic' (coloured noise; default)",
    )
    p.add_argument(
        "--snr",
        type=float,
        nargs="+",
        default=[5, 10, 15, 20],
        help="SNRs in dB (default 5 10 15 20)",
    )
    p.add_argument(
        "--rir",
        nargs="+",
        default=[],
        metavar="DIR_OR_FILE",
        help="RIR files or directories (default: synthetic)",
    )
    p.add_argument(
        "--rir-prob", type=float, default=0.5, help="probability of reverberation (default 0.5)"
    )
    p.add_argument(
        "--activity",
        choices=["vad", "segments"],
        default="vad",
        help="speech regions from an energy VAD (default) or the whole utterance (tight segments)",
    )
    p.add_argument(
        "--mode",
        choices=["mixture", "conversation", "meeting"],
        default="mixture",
        help="mixture: independent speakers with exponential pauses (Fujita et al.); "
        "conversation: turn-taking with drawn pauses and overlaps (Landini et al. 2022); "
        "meeting: --meeting-minutes of conversations of 2-4 of the N persons, who come and go",
    )
    p.add_argument(
        "--meeting-minutes", type=float, default=20.0, help="meeting: length in minutes (20)"
    )
    p.add_argument(
        "--pause-mean",
        type=float,
        default=0.6,
        help="conversation: mean pause at a change of speaker (s)",
    )
    p.add_argument(
        "--same-pause-mean",
        type=float,
        default=0.4,
        help="conversation: mean pause when a speaker goes on (s)",
    )
    p.add_argument(
        "--overlap-prob",
        type=float,
        default=0.85,
        help="conversation: probability that a change of speaker overlaps",
    )
    p.add_argument(
        "--overlap-mean", type=float, default=2.75, help="conversation: mean overlap (s)"
    )
    p.add_argument(
        "--turns-from",
        nargs="+",
        default=[],
        metavar="RTTM",
        help="conversation: draw pauses and overlaps from these reference RTTMs instead",
    )
    p.add_argument("--gain-db", type=float, default=0.0, help="speaker levels within +- this (dB)")
    p.add_argument(
        "--channel-prob",
        type=float,
        default=0.0,
        help="probability of a channel effect (EQ, band limit, telephone, codec)",
    )
    p.add_argument(
        "--events",
        nargs="+",
        default=[],
        metavar="DIR_OR_FILE",
        help="non-speech sounds added unlabelled",
    )
    p.add_argument("--event-rate", type=float, default=0.0, help="non-speech events per minute")
    p.add_argument(
        "--speaker-list", help="file of speaker or person ids to draw from (one per line)"
    )
    p.add_argument("--prefix", default="mix", help="recording id prefix (default mix)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from diarize.data.simulate import SimulationConfig, audio_files, read_list, simulate

    noises = [] if args.noise == ["synthetic"] else audio_files(args.noise)  # may mix both
    turn_gaps, same_gaps = _gaps(args.turns_from)
    config = SimulationConfig(
        num_mixtures=args.num_mixtures,
        speakers=tuple(args.speakers),
        beta=args.beta,
        min_utts=args.min_utts,
        max_utts=args.max_utts,
        snrs=tuple(args.snr),
        noises=tuple(noises),
        rirs=tuple(audio_files(args.rir)),
        rir_prob=args.rir_prob,
        activity=args.activity,
        mode=args.mode,
        meeting_minutes=args.meeting_minutes,
        pause_mean=args.pause_mean,
        same_pause_mean=args.same_pause_mean,
        overlap_prob=args.overlap_prob,
        overlap_mean=args.overlap_mean,
        turn_gaps=tuple(turn_gaps),
        same_gaps=tuple(same_gaps),
        gain_db=args.gain_db,
        channel_prob=args.channel_prob,
        events=tuple(audio_files(args.events)),
        event_rate=args.event_rate,
        seed=args.seed,
        prefix=args.prefix,
    )
    speakers = read_list(args.speaker_list) if args.speaker_list else None
    stats = simulate(args.source, args.out, config, speakers, workers=args.workers)
    print(
        f"{stats.mixtures} mixtures, {stats.duration / 3600:.2f} h; "
        f"overlap ratio {stats.overlap_ratio:.3f} (overlapped speech / speech), "
        f"silence ratio {stats.silence_ratio:.3f} (non-speech / total) -> {args.out}"
    )
    return 0


def _gaps(rttms: list[str]) -> tuple[list[float], list[float]]:
    """Speaker-change and same-speaker gaps of reference RTTMs (empty lists without any)."""
    if not rttms:
        return [], []
    from diarize.data.simulate import gaps_from_rttm
    from diarize.rttm import read_rttm
    from diarize.utils import DiarizeError

    annotations = [a for path in rttms for a in read_rttm(path).values()]
    change, same = gaps_from_rttm(annotations)
    if not change:
        raise DiarizeError(f"{' '.join(rttms)}: no change of speaker to learn gaps from")
    return change, same
