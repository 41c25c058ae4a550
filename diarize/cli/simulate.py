"""``diarize simulate``: simulated conversations from a single-speaker corpus.

Every option that sets a :class:`diarize.data.simulate.SimulationConfig` field has that
field's name as its ``dest`` and no default of its own: an option not given is absent from
the arguments and the field keeps its default, which ``--help`` shows (it reads them only when
help is printed, so building the parser stays light)."""

from __future__ import annotations

import argparse
import dataclasses

DESCRIPTION = (
    "Simulate conversations as Fujita et al. (2019): per mixture N speakers (N drawn from "
    "--speakers), each with 10-20 utterances separated by exponential pauses of mean --beta "
    "seconds, summed, reverberated with probability --rir-prob and mixed with noise at an SNR "
    "drawn from --snr. SOURCE is a Kaldi-style directory (wav.scp [+ segments] + utt2spk "
    "[+ spk2person]); OUT becomes a diarization directory (wav/, rttm, wav.scp, reco2dur). "
    "Rerunning with the same arguments resumes."
)
MODES = (
    "mixture: independent speakers with exponential pauses (Fujita et al.); "
    "conversation: turn-taking with drawn pauses and overlaps (Landini et al. 2022); "
    "meeting: --meeting-minutes of conversations of 2-4 of the N persons, who come and go"
)
SHOWN_DEFAULTS = {"noises": "synthetic", "rirs": "synthetic"}  # what an empty tuple means
FILE_LISTS = ("noises", "rirs", "events")  # fields given as files or directories


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate multi-speaker conversations or mixtures from single-speaker speech",
        description=DESCRIPTION,
        formatter_class=ConfigDefaultsFormatter,
        argument_default=argparse.SUPPRESS,  # not given: SimulationConfig's default
    )
    p.add_argument("source", help="single-speaker corpus directory")
    p.add_argument("out", help="output directory")
    p.add_argument("--num-mixtures", type=int, required=True, help="mixtures to make")
    _add_speaker_options(p.add_argument_group("speakers and utterances"))
    _add_acoustic_options(p.add_argument_group("room, noise and channel"))
    _add_conversation_options(p.add_argument_group("conversations and meetings"))
    _add_run_options(p.add_argument_group("output and run"))
    p.set_defaults(func=run)


def _add_speaker_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--speakers", type=int, nargs="+", help="speaker counts, drawn per mixture")
    g.add_argument("--beta", type=float, help="mean pause in seconds")
    g.add_argument("--min-utts", type=int, help="utterances per speaker, min")
    g.add_argument("--max-utts", type=int, help="utterances per speaker, max")
    g.add_argument(
        "--activity",
        choices=["vad", "segments"],
        help="speech regions from an energy VAD or the whole utterance (tight segments)",
    )
    g.add_argument(
        "--speaker-list",
        default=None,
        help="file of speaker or person ids to draw from (one per line)",
    )
    g.add_argument("--gain-db", type=float, help="speaker levels within +- this (dB)")
    g.add_argument(
        "--voice-shift",
        type=float,
        help="each speaker's speed factor (pitch, formants, tempo) within 1 +- this",
    )


def _add_acoustic_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--noise",
        dest="noises",
        nargs="+",
        metavar="DIR_OR_FILE",
        help="noise files or directories, or 'synthetic' for coloured noise",
    )
    g.add_argument("--snr", dest="snrs", type=float, nargs="+", metavar="SNR", help="SNRs in dB")
    g.add_argument(
        "--rir", dest="rirs", nargs="+", metavar="DIR_OR_FILE", help="RIR files or directories"
    )
    g.add_argument("--rir-prob", type=float, help="probability of reverberation")
    g.add_argument(
        "--channel-prob",
        type=float,
        help="probability of a channel effect (EQ, band limit, telephone, codec)",
    )
    g.add_argument(
        "--events", nargs="+", metavar="DIR_OR_FILE", help="non-speech sounds added unlabelled"
    )
    g.add_argument("--event-rate", type=float, help="non-speech events per minute")


def _add_conversation_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--mode", choices=["mixture", "conversation", "meeting"], help=MODES)
    g.add_argument("--meeting-minutes", type=float, help="meeting: length in minutes")
    g.add_argument(
        "--pause-mean", type=float, help="conversation: mean pause at a change of speaker (s)"
    )
    g.add_argument(
        "--same-pause-mean", type=float, help="conversation: mean pause when a speaker goes on (s)"
    )
    g.add_argument(
        "--overlap-prob",
        type=float,
        help="conversation: probability that a change of speaker overlaps",
    )
    g.add_argument("--overlap-mean", type=float, help="conversation: mean overlap (s)")
    g.add_argument(
        "--turns-from",
        nargs="+",
        default=[],
        metavar="RTTM",
        help="conversation: draw pauses and overlaps from these reference RTTMs instead",
    )


def _add_run_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--prefix", help="recording id prefix")
    g.add_argument("--seed", type=int, help="random seed")
    g.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")


class ConfigDefaultsFormatter(argparse.HelpFormatter):
    """Help with "(default: ...)" after each option that sets a ``SimulationConfig`` field:
    the field's default, read when help is printed."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        defaults = _config_defaults()
        if action.required or action.dest not in defaults:
            return action.help
        value = defaults[action.dest]
        if isinstance(value, tuple):
            value = " ".join(map(str, value)) or SHOWN_DEFAULTS.get(action.dest, "none")
        return f"{action.help} (default: {value})"


def _config_defaults() -> dict[str, object]:
    from diarize.data.simulate import SimulationConfig

    return {f.name: f.default for f in dataclasses.fields(SimulationConfig)}


def run(args: argparse.Namespace) -> int:
    from diarize.data.simulate import SimulationConfig, read_list, simulate

    config = SimulationConfig(**_config_values(args))
    speakers = read_list(args.speaker_list) if args.speaker_list else None
    stats = simulate(args.source, args.out, config, speakers, workers=args.workers)
    print(
        f"{stats.mixtures} mixtures, {stats.duration / 3600:.2f} h; "
        f"overlap ratio {stats.overlap_ratio:.3f} (overlapped speech / speech), "
        f"silence ratio {stats.silence_ratio:.3f} (non-speech / total) -> {args.out}"
    )
    return 0


def _config_values(args: argparse.Namespace) -> dict[str, object]:
    """The ``SimulationConfig`` fields given on the command line, as the config takes them."""
    from diarize.data.simulate import SYNTHETIC, audio_files

    values = {k: v for k, v in vars(args).items() if k in _config_defaults()}
    if values.get("noises") == [SYNTHETIC]:
        values["noises"] = []  # synthetic noise only: the config's empty list
    for name in FILE_LISTS:
        if name in values:
            values[name] = audio_files(values[name])  # may mix files and 'synthetic'
    if args.turns_from:
        values["turn_gaps"], values["same_gaps"] = _gaps(args.turns_from)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _gaps(rttms: list[str]) -> tuple[list[float], list[float]]:
    """Speaker-change and same-speaker gaps of reference RTTMs."""
    from diarize.data.simulate import gaps_from_rttm
    from diarize.rttm import read_rttm
    from diarize.utils import DiarizeError

    annotations = [a for path in rttms for a in read_rttm(path).values()]
    change, same = gaps_from_rttm(annotations)
    if not change:
        raise DiarizeError(f"{' '.join(rttms)}: no change of speaker to learn gaps from")
    return change, same
