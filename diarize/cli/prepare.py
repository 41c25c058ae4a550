"""``diarize prepare CORPUS SOURCE OUT``: a benchmark corpus, as distributed, into Kaldi-style
diarization directories (one per partition); see :mod:`diarize.data.corpora`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = (
    "Write one Kaldi-style diarization directory per partition of a benchmark corpus under "
    "OUT (wav.scp, rttm, uem, reco2dur, reco2num_spk, and 'skipped': the recordings left "
    "out, and why). A recording whose audio is missing, unreadable or shorter than its "
    "reference is listed and skipped. Deterministic: a rerun writes identical files. "
    "Prints, per partition, the recordings, hours, speakers, speech and overlap."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare", help="prepare AMI, CALLHOME, DIHARD III or VoxConverse", description=DESCRIPTION
    )
    corpora = p.add_subparsers(dest="corpus", metavar="CORPUS", required=True)
    _ami(corpora)
    _callhome(corpora)
    _dihard3(corpora)
    _voxconverse(corpora)
    p.set_defaults(func=run)


def _corpus(corpora, name: str, help: str, source: str) -> argparse.ArgumentParser:
    p = corpora.add_parser(name, help=help, description=f"{help}. {DESCRIPTION}")
    p.add_argument("source", metavar="SOURCE", type=Path, help=source)
    p.add_argument("out", metavar="OUT", type=Path, help="where the partition directories go")
    return p


def _ami(corpora) -> None:
    p = _corpus(
        corpora,
        "ami",
        "AMI meetings with the AMI-diarization-setup: {train,dev,test}_{headset,array1}",
        "the amicorpus folder (<meeting>/audio/<meeting>.Mix-Headset.wav, .Array1-01.wav)",
    )
    p.add_argument(
        "--setup",
        type=Path,
        required=True,
        help="a clone of github.com/BUTSpeechFIT/AMI-diarization-setup (or pyannote's fork)",
    )
    p.add_argument(
        "--mic",
        nargs="+",
        choices=["headset", "array1"],
        default=["headset", "array1"],
        help="Mix-Headset and/or the SDM channel Array1-01 (default both)",
    )
    p.add_argument(
        "--reference",
        choices=["only_words", "word_and_vocalsounds"],
        default="only_words",
        help="the setup's reference set (default only_words, the usual one)",
    )


def _callhome(corpora) -> None:
    p = _corpus(
        corpora,
        "callhome",
        "CALLHOME (NIST SRE 2000 disk 8): callhome, callhome1/2, callhome1/2_spk2",
        "the LDC2001S97 release (searched for <recording>.sph)",
    )
    p.add_argument(
        "--key",
        type=Path,
        help="the sre2000-key folder of the Kaldi recipe (fullref.rttm, reco2num; "
        "openslr.org/10) (default: SOURCE/sre2000-key)",
    )
    p.add_argument(
        "--split-lists",
        type=Path,
        help="the halves as published: a BUTSpeechFIT/CALLHOME_sublists clone (part1/, "
        "part2/) or a Kaldi data folder (callhome1/, callhome2/); default: Kaldi's "
        "make_callhome.sh shuffle, run by this machine's perl",
    )
    p.add_argument(
        "--sph2pipe",
        default="sph2pipe",
        help="the sph2pipe command written in piped wav.scp entries for SPHERE files "
        "libsndfile cannot read (shorten) (default: sph2pipe)",
    )
    p.add_argument(
        "--decode-to",
        type=Path,
        help="decode those files once into WAV files in this folder (runs sph2pipe now) "
        "instead of writing piped entries; needed to train on them",
    )


def _dihard3(corpora) -> None:
    p = _corpus(
        corpora,
        "dihard3",
        "a DIHARD III release (dev LDC2020E12 or eval LDC2021E02): <name>_full, <name>_core",
        "the release folder (data/flac, data/rttm, data/uem_scoring, docs/recordings.tbl)",
    )
    p.add_argument(
        "--name",
        choices=["dev", "eval"],
        help="the release (default: from the DH_DEV_/DH_EVAL_ recording ids)",
    )


def _voxconverse(corpora) -> None:
    p = _corpus(
        corpora,
        "voxconverse",
        "VoxConverse: dev and test",
        "the annotations folder (dev/*.rttm, test/*.rttm; github.com/joonson/voxconverse), "
        "with the audio archives unpacked in it (audio/, voxconverse_test_wav/)",
    )
    p.add_argument("--dev-audio", type=Path, help="the dev wav folder (default: SOURCE/audio)")
    p.add_argument(
        "--test-audio", type=Path, help="the test wav folder (default: SOURCE/voxconverse_test_wav)"
    )


def partitions(args: argparse.Namespace):
    """The corpus's partitions (library calls; nothing is written yet)."""
    from diarize.data.corpora import ami, callhome, dihard3, voxconverse

    if args.corpus == "ami":
        return ami.partitions(args.source, args.setup, tuple(args.mic), args.reference)
    if args.corpus == "callhome":
        return callhome.partitions(
            args.source, args.key, args.split_lists, args.sph2pipe, args.decode_to
        )
    if args.corpus == "dihard3":
        return dihard3.partitions(args.source, args.name)
    audio = {"dev": args.dev_audio, "test": args.test_audio}
    return voxconverse.partitions(args.source, {k: v for k, v in audio.items() if v})


def run(args: argparse.Namespace) -> int:
    from diarize.data.prepare import report_lines, write_partitions

    written, skipped = write_partitions(args.out, partitions(args))
    lines, warnings = report_lines(written, skipped)
    for line in warnings:
        print(f"diarize prepare: warning: {line}", file=sys.stderr)
    print("\n".join(lines))
    return 0
