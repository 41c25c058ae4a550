"""The DATA argument shared by ``diarize evaluate`` and ``diarize stats``: any diarization
set :func:`diarize.data.kaldi.load_diarization_set` reads, and the options that go with it."""

from __future__ import annotations

import argparse

DATA_HELP = (
    "diarization set: a Kaldi-style directory (wav.scp + rttm [+ uem, reco2dur]), a folder "
    "of audio + RTTM, lhotse manifests (a directory with one *recordings*.jsonl[.gz] and "
    "its *supervisions* twin, or that recordings file), or a pyannote.database protocol "
    "name such as AMI.SpeakerDiarization.only_words (with --subset)"
)


def add_data_options(p: argparse.ArgumentParser) -> None:
    """DATA, --subset, --database, --allow-pipes."""
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


def load_data(args: argparse.Namespace):
    """The DiarizationSet named by the options of :func:`add_data_options`."""
    from diarize.data.kaldi import load_diarization_set

    return load_diarization_set(
        args.data, allow_pipes=args.allow_pipes, subset=args.subset, database=args.database
    )


def data_name(args: argparse.Namespace) -> str:
    """A short name for DATA (for default output folders): the directory's name, or the
    protocol name and subset."""
    from pathlib import Path

    from diarize.data.kaldi import is_protocol_name

    if is_protocol_name(args.data):
        return f"{args.data}.{args.subset}"
    return Path(args.data).resolve().name
