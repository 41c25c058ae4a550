"""Standard scoring conditions: each benchmark's usual forgiveness collar and overlap
handling, by name, with where the literature reports it (README, "Benchmarks"). Applied by
:func:`diarize.scoring.score_condition`; kept apart from :mod:`diarize.scoring` because it
imports nothing heavy, so the command line can list the names in ``--help``."""

from __future__ import annotations

from dataclasses import dataclass

from diarize.utils import DiarizeError

DEFAULT_COLLAR = 0.25  # seconds on each side of a reference boundary (md-eval -c)


@dataclass(frozen=True)
class Condition:
    """A benchmark's usual scoring setting, as the literature reports it."""

    collar: float  # seconds not scored on each side of a reference boundary (md-eval -c)
    skip_overlap: bool  # overlapped reference speech is not scored (md-eval -1)
    uem: str  # the regions scored
    source: str  # where the setting is defined or reported


_WHOLE = "the set's uem (diarize prepare writes the reference extent: md-eval without -u)"
CONDITIONS: dict[str, Condition] = {
    "callhome": Condition(
        0.25,
        False,
        _WHOLE,
        "EEND and EEND-EDA CALLHOME recipes (Fujita et al. 2019, Horiguchi et al. 2020; "
        "hitachi-speech/EEND egs/callhome/v1/run.sh and run_eda.sh: md-eval.pl -c 0.25)",
    ),
    "callhome-kaldi": Condition(
        0.25,
        True,
        _WHOLE,
        "Kaldi x-vector recipe (egs/callhome_diarization/v2/run.sh: md-eval.pl -1 -c 0.25)",
    ),
    "dihard3": Condition(
        0.0,
        False,
        "the release's scoring UEM (data/uem_scoring/core or full, all.uem)",
        "Third DIHARD Challenge Evaluation Plan (Ryant et al. 2020): no collar, overlapped "
        "speech scored, DER and JER with dscore",
    ),
    "ami": Condition(
        0.0,
        False,
        "the setup's uems/ (whole recordings)",
        "pyannote.audio benchmarks on the AMI-diarization-setup (only_words): no forgiveness "
        "collar, overlapped speech evaluated; the 'Full' setting of Landini et al. 2022 (VBx)",
    ),
    "ami-fair": Condition(
        0.25,
        False,
        "the setup's uems/ (whole recordings)",
        "the 'Fair' setting of Landini et al. 2022 (VBx, BUTSpeechFIT/AMI-diarization-setup)",
    ),
    "ami-forgiving": Condition(
        0.25,
        True,
        "the setup's uems/ (whole recordings)",
        "the 'Forgiving' setting of Landini et al. 2022 (VBx, BUTSpeechFIT/AMI-diarization-setup)",
    ),
    "voxconverse": Condition(
        0.25,
        False,
        _WHOLE,
        "VoxSRC 2020-2023 diarisation track on VoxConverse (Chung et al. 2020): collar "
        "0.25 s, overlapped speech scored",
    ),
    "voxconverse-full": Condition(
        0.0,
        False,
        _WHOLE,
        "pyannote.audio benchmarks on VoxConverse: no forgiveness collar, overlapped speech "
        "evaluated",
    ),
}


def get_condition(name: str) -> Condition:
    """The condition called ``name``; an unknown name is a :class:`DiarizeError`."""
    if name not in CONDITIONS:
        raise DiarizeError(
            f"unknown scoring condition {name!r}; known: {', '.join(sorted(CONDITIONS))}"
        )
    return CONDITIONS[name]


CONDITION_NAMES = ", ".join(CONDITIONS)  # for help texts


def resolve_setting(
    condition: str | None, collar: float | None, skip_overlap: bool
) -> tuple[float, bool]:
    """(collar, skip_overlap) to score with: the condition's, or the ones given (collar
    defaulting to :data:`DEFAULT_COLLAR`). A condition with an explicit collar or
    skip-overlap, or an unknown condition, is a :class:`DiarizeError`."""
    if condition is None:
        return (DEFAULT_COLLAR if collar is None else collar), skip_overlap
    cond = get_condition(condition)
    if collar is not None or skip_overlap:
        raise DiarizeError(
            f"--condition {condition} sets the collar and the overlap handling: "
            "leave out --collar and --skip-overlap"
        )
    return cond.collar, cond.skip_overlap
