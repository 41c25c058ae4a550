"""Data: Kaldi-style directories (:mod:`~diarize.data.kaldi`), frame labels
(:mod:`~diarize.data.labels`) and training chunks (:mod:`~diarize.data.dataset`, which
imports torch and is therefore not re-exported here)."""

from diarize.data.kaldi import (
    DiarizationSet,
    Recording,
    SourceCorpus,
    Utterance,
    load_diarization_set,
    load_source_corpus,
)
from diarize.data.labels import frame_labels, labels_to_annotation

__all__ = [
    "DiarizationSet",
    "Recording",
    "SourceCorpus",
    "Utterance",
    "frame_labels",
    "labels_to_annotation",
    "load_diarization_set",
    "load_source_corpus",
]
