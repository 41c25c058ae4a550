"""Diarization error rate (DER), scored as NIST ``md-eval-22.pl`` scores it.

DER = (missed + false alarm + confusion) / scored speaker time, every term in seconds of
*speaker* time: a second where two reference speakers talk counts twice.

The numbers agree with md-eval-22.pl (given the same UEM) to within 0.01 points on any RTTM
pair; ``tools/compare_md_eval.py`` checks this on random pairs. pyannote.metrics does the
work, fed what md-eval does differently:

* **Collar, per side.** ``collar`` here is md-eval's ``-c``: that many seconds are removed
  on *each* side of every reference turn boundary (0.25 removes 0.5 s around a boundary).
  pyannote.metrics' ``collar`` is the *total* width, so we pass ``2 * collar`` to its
  :meth:`~pyannote.metrics.diarization.DiarizationErrorRate.extrude`. As md-eval, the
  collars sit around the boundaries of every reference turn as written, including turns of
  one speaker that overlap (md-eval does not merge them before placing collars).
* **Overlapping turns of one speaker** are merged (``Annotation.support()``) before the
  speakers are matched and counted: md-eval counts a speaker once where two of its turns
  overlap. pyannote.metrics would count such a speaker twice (twice the missed time, and
  twice the co-occurrence in the mapping).
* **Skip-overlap** (md-eval ``-1``) removes every region where two or more reference
  *turns* overlap, turns of the same speaker included; pyannote's ``extrude`` does exactly
  that (``Annotation.get_overlap()`` would skip same-speaker overlaps, so it is not used).
* **Speaker mapping region.** md-eval maps speakers (Hungarian algorithm, maximum total
  co-occurrence) on the whole UEM, *before* collars and skip-overlap are removed, then
  scores the region left. pyannote's ``DiarizationErrorRate`` maps on the region left, which
  gives a different (lower) confusion when collars or skip-overlap change the optimal
  mapping. We therefore compute the mapping ourselves with ``optimal_mapping(uem=UEM)`` and
  score the mapped hypothesis with ``IdentificationErrorRate`` on the extruded region.

Where md-eval and this module still differ (documented, not tested against):

* when two speaker mappings tie *exactly* on the UEM, md-eval's own Hungarian code and
  SciPy's may pick different ones, which can change the confusion inside the collars
  (seen only with times on a coarse grid, e.g. 0.5 s);
* with skip-overlap, where one overlap region ends at the very instant another begins and
  the UEM region then ends inside the second one, md-eval scores the second region up to
  the UEM end: a stale ``$evaluating`` flag in its ``exclude_overlapping_speech_from_uem``
  (ties in its event sort). We follow the documented rule (overlap is never scored);
* reference turns of zero duration are dropped when the RTTM is read
  (:func:`diarize.rttm.read_rttm`), while md-eval still puts collars around them;
* md-eval's UEM reader cuts a recording name at its first ``.``; we compare names whole;
* without a UEM, md-eval scores the extent of the *reference* only; we score the extent of
  the union of reference and hypothesis (pyannote.metrics' default), so false alarms before
  the first or after the last reference turn count. Pass a UEM to compare with md-eval.

When a recording has no scored reference speech, its DER is 0 % without errors and 100 %
with any (pyannote.metrics' convention; md-eval divides by zero there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate
from pyannote.metrics.identification import IdentificationErrorRate

from diarize.utils import DiarizeError

DEFAULT_COLLAR = 0.25  # seconds on each side of a reference boundary (md-eval -c)


@dataclass(frozen=True)
class FileScore:
    """DER components of one recording (or of all of them, summed), in seconds."""

    missed: float  # reference speaker time with no hypothesis speaker
    false_alarm: float  # hypothesis speaker time beyond the reference speakers present
    confusion: float  # speaker time given to the wrong (unmapped) hypothesis speaker
    scored: float  # reference speaker time in the scored region (the DER denominator)
    ref_speakers: int  # reference speakers with speech in the UEM
    hyp_speakers: int  # hypothesis speakers with speech in the UEM

    @property
    def errors(self) -> float:
        return self.missed + self.false_alarm + self.confusion

    @property
    def der(self) -> float:
        """DER in percent (0 or 100 when nothing is scored)."""
        return _percent(self.errors, self.scored)

    def percent(self, seconds: float) -> float:
        """``seconds`` as a percentage of the scored speaker time."""
        return _percent(seconds, self.scored)

    def to_json(self) -> dict[str, float | int]:
        return {
            "der": round(self.der, 6),
            "missed": round(self.missed, 6),
            "false_alarm": round(self.false_alarm, 6),
            "confusion": round(self.confusion, 6),
            "scored": round(self.scored, 6),
            "ref_speakers": self.ref_speakers,
            "hyp_speakers": self.hyp_speakers,
        }


@dataclass(frozen=True)
class ScoreReport:
    """Per-recording scores, their sum, and what could not be scored."""

    collar: float
    skip_overlap: bool
    files: dict[str, FileScore]  # uri -> score, sorted by uri
    missing_hypotheses: tuple[str, ...] = ()  # reference uris scored as all missed
    unscored_hypotheses: tuple[str, ...] = ()  # hypothesis uris with no reference
    total: FileScore = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", _sum_scores(self.files.values()))

    @property
    def speaker_count_accuracy(self) -> float:
        """Share of recordings whose hypothesis has exactly the reference speaker count."""
        if not self.files:
            return 0.0
        exact = sum(s.ref_speakers == s.hyp_speakers for s in self.files.values())
        return exact / len(self.files)

    def to_json(self) -> dict:
        total = self.total.to_json()
        total["speaker_count_accuracy"] = round(self.speaker_count_accuracy, 6)
        return {
            "collar": self.collar,
            "skip_overlap": self.skip_overlap,
            "files": {uri: s.to_json() for uri, s in self.files.items()},
            "total": total,
        }

    def format_table(self) -> str:
        """A fixed-width table: one row per recording, a TOTAL row, the speaker-count line."""
        width = max([len("TOTAL"), len("recording"), *map(len, self.files)])
        lines = [_header(width)]
        lines += [_row(uri, s, width) for uri, s in self.files.items()]
        lines += ["-" * len(lines[0]), _row("TOTAL", self.total, width)]
        exact = sum(s.ref_speakers == s.hyp_speakers for s in self.files.values())
        lines.append(
            f"speaker count exact: {exact}/{len(self.files)} recordings "
            f"({100 * self.speaker_count_accuracy:.1f}%)"
            f"   collar {self.collar:g} s per side, skip overlap: "
            f"{'yes' if self.skip_overlap else 'no'}"
        )
        return "\n".join(lines)


def score(
    references: Mapping[str, Annotation],
    hypotheses: Mapping[str, Annotation],
    uems: Mapping[str, Timeline] | None = None,
    collar: float = DEFAULT_COLLAR,
    skip_overlap: bool = False,
) -> ScoreReport:
    """Score every reference recording against its hypothesis, as md-eval-22.pl.

    ``collar`` is in seconds on *each* side of a reference boundary (md-eval's ``-c``;
    pyannote.metrics' ``collar=2 * collar`` removes the same region). A reference recording
    without hypothesis counts as all missed; a hypothesis recording without reference is
    listed in ``unscored_hypotheses`` and not scored. Without ``uems`` a recording is scored
    over the extent of its reference and hypothesis together; with ``uems`` every reference
    recording must have an entry (else :class:`DiarizeError`).
    """
    if not (collar >= 0 and math.isfinite(collar)):
        raise ValueError(f"collar must be a finite number >= 0, got {collar}")
    if uems is not None:
        absent = sorted(set(references) - set(uems))
        if absent:
            raise DiarizeError(f"the UEM has no region for reference recording(s) {absent}")
    files = {}
    for uri in sorted(references):
        reference = references[uri]
        hypothesis = hypotheses.get(uri, Annotation(uri=uri))
        uem = uems[uri] if uems is not None else default_uem(reference, hypothesis)
        files[uri] = score_file(reference, hypothesis, uem, collar, skip_overlap)
    return ScoreReport(
        collar=collar,
        skip_overlap=skip_overlap,
        files=files,
        missing_hypotheses=tuple(sorted(set(references) - set(hypotheses))),
        unscored_hypotheses=tuple(sorted(set(hypotheses) - set(references))),
    )


def score_file(
    reference: Annotation,
    hypothesis: Annotation,
    uem: Timeline,
    collar: float = DEFAULT_COLLAR,
    skip_overlap: bool = False,
) -> FileScore:
    """DER components of one recording over ``uem`` (see :func:`score`)."""
    ref = reference.support().rename_labels(generator="string")
    hyp = hypothesis.support().rename_labels(generator="int")  # never equal to a ref label
    mapping = speaker_mapping(ref, hyp, uem)
    region = scored_region(reference, uem, collar, skip_overlap)
    detail = IdentificationErrorRate().compute_components(
        ref, hyp.rename_labels(mapping=mapping), uem=region, collar=0.0, skip_overlap=False
    )
    return FileScore(
        missed=detail["missed detection"],
        false_alarm=detail["false alarm"],
        confusion=detail["confusion"],
        scored=detail["total"],
        ref_speakers=count_speakers(reference, uem),
        hyp_speakers=count_speakers(hypothesis, uem),
    )


def speaker_mapping(
    reference: Annotation, hypothesis: Annotation, uem: Timeline
) -> dict[object, object]:
    """``{hypothesis label: reference label}`` maximising their co-occurrence inside
    ``uem`` (collars and overlap *not* removed, as md-eval). Pairs that never co-occur
    are left unmapped. Turns of one speaker must not overlap (use ``support()``)."""
    if not uem:
        return {}
    return DiarizationErrorRate().optimal_mapping(reference, hypothesis, uem=uem)


def scored_region(
    reference: Annotation, uem: Timeline, collar: float, skip_overlap: bool
) -> Timeline:
    """``uem`` less ``collar`` seconds each side of every reference turn boundary, and less
    the regions where two reference turns overlap when ``skip_overlap``."""
    if not uem:
        return Timeline(uri=uem.uri)
    metric = DiarizationErrorRate()
    return metric.extrude(uem, reference, collar=2 * collar, skip_overlap=skip_overlap)


def default_uem(reference: Annotation, hypothesis: Annotation) -> Timeline:
    """The extent of the reference and hypothesis turns together (pyannote.metrics'
    default): from the first onset of either to the last offset of either."""
    segments = [*reference.itersegments(), *hypothesis.itersegments()]
    if not segments:
        return Timeline(uri=reference.uri)
    start = min(s.start for s in segments)
    end = max(s.end for s in segments)
    return Timeline([Segment(start, end)], uri=reference.uri)


def count_speakers(annotation: Annotation, uem: Timeline) -> int:
    """Number of labels with speech inside ``uem``."""
    if not uem:
        return 0
    return len(annotation.crop(uem, mode="intersection").labels())


def _sum_scores(scores) -> FileScore:
    scores = list(scores)
    return FileScore(
        missed=sum(s.missed for s in scores),
        false_alarm=sum(s.false_alarm for s in scores),
        confusion=sum(s.confusion for s in scores),
        scored=sum(s.scored for s in scores),
        ref_speakers=sum(s.ref_speakers for s in scores),
        hyp_speakers=sum(s.hyp_speakers for s in scores),
    )


def _percent(seconds: float, scored: float) -> float:
    if scored > 0:
        return 100.0 * seconds / scored
    return 0.0 if seconds <= 0 else 100.0


def _header(width: int) -> str:
    return (
        f"{'recording':<{width}}  {'DER%':>7}  {'missed s (%)':>17}  {'false alarm s (%)':>17}"
        f"  {'confusion s (%)':>17}  {'scored s':>10}  {'ref spk':>7}  {'hyp spk':>7}"
    )


def _row(uri: str, s: FileScore, width: int) -> str:
    def cell(seconds: float) -> str:
        return f"{seconds:9.2f} ({s.percent(seconds):5.1f})"

    return (
        f"{uri:<{width}}  {s.der:7.2f}  {cell(s.missed):>17}  {cell(s.false_alarm):>17}"
        f"  {cell(s.confusion):>17}  {s.scored:10.2f}  {s.ref_speakers:7d}  {s.hyp_speakers:7d}"
    )
