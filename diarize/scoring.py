"""Diarization error rate (DER), scored as NIST ``md-eval-22.pl`` scores it.

DER = (missed + false alarm + confusion) / scored speaker time, every term in seconds of
*speaker* time: a second where two reference speakers talk counts twice.

The numbers agree with md-eval-22.pl (given the same UEM) to within 0.01 points on any RTTM
pair; ``tools/compare_md_eval.py`` checks this on random pairs. pyannote.metrics does the
work, fed what md-eval does differently:

* **Collar, per side.** ``collar`` here is md-eval's ``-c``: that many seconds are removed
  on *each* side of every reference turn boundary (0.25 removes 0.5 s around a boundary).
  (pyannote.metrics' ``collar`` is the *total* width). The collars sit around the
  boundaries of every reference turn as written, including turns of one speaker that
  overlap, as md-eval's ``add_collars_to_uem`` places them (:func:`md_eval_collars`).
* **Overlapping turns of one speaker** are merged (``Annotation.support()``) before the
  speakers are matched and counted: md-eval counts a speaker once where two of its turns
  overlap. pyannote.metrics would count such a speaker twice (twice the missed time, and
  twice the co-occurrence in the mapping).
* **Skip-overlap** (md-eval ``-1``) removes the regions where two or more reference
  *turns* overlap, turns of the same speaker included, with md-eval's own region-building
  rule (:func:`md_eval_skip_overlap`, a port of its ``exclude_overlapping_speech_from_uem``).
  That rule has a quirk we keep, because published numbers carry it: events of one instant
  are taken ends first, and a scored region that has just opened at an instant is not
  closed by an overlap zone opening at that same instant. So where one overlap zone ends
  exactly where the next begins, the second zone is scored up to the next UEM (or collar)
  end inside it; if the zone ends first, scoring resumes normally there.
* **Speaker mapping.** md-eval maps speakers on the whole UEM, *before* collars and
  skip-overlap are removed, with its own Hungarian routine; pyannote's
  ``DiarizationErrorRate`` maps on the region left, with SciPy's. The two differ where
  collars change the best mapping, and where mappings *tie*: md-eval (costs ``-overlap``,
  pairs that never co-occur cost slightly more than the largest overlap) prefers, among
  equal totals, the mapping with more mapped pairs, then the first zero found in Perl
  ``sort`` order of the names. :func:`md_eval_mapping` ports its ``create_speaker_segs``,
  ``map_speakers`` and ``weighted_bipartite_graph_match`` operation by operation (sorted
  names, same float sums), so ties break identically; no step depends on Perl's hash
  order (md-eval sorts the names, and only minima are taken over unsorted keys). The
  mapped hypothesis is then scored with ``IdentificationErrorRate`` on the region left.

Where md-eval and this module still differ (documented, not tested against):

* with skip-overlap, md-eval sorts the events of one instant with comparators that are
  not symmetric (``$a->{EVENT} eq "BEG"`` returns 1 or "", never -1), so which of a
  region start and an overlap-zone start at the *same* instant comes first depends on the
  path of Perl's merge sort through the list. We take ends first, then the events in the
  order md-eval lists them (overlap zones before UEM regions), which is what Perl gives in
  every trial of the cross-check so far; a hand-built case where it is not: reference A 0-10 s, B 2-10 s, UEM 2-5 s,
  collar 0, ``-1`` -- md-eval scores 2-5 s (6 s, 3 s missed against a one-speaker
  hypothesis), we score nothing. ``tools/compare_md_eval.py`` lists such trials apart;
* reference turns of zero duration are dropped when the RTTM is read
  (:func:`diarize.rttm.read_rttm`), while md-eval still puts collars around them;
* md-eval's UEM reader cuts a recording name at its first ``.``; we compare names whole;
* without a UEM, md-eval scores the extent of the *reference* only; we score the extent of
  the union of reference and hypothesis (pyannote.metrics' default), so false alarms before
  the first or after the last reference turn count. Pass a UEM to compare with md-eval.

When a recording has no scored reference speech, its DER is 0 % without errors and 100 %
with any (pyannote.metrics' convention; md-eval divides by zero there).

**JER** (Jaccard error rate, the second metric of DIHARD II and III) comes from
pyannote.metrics' ``JaccardErrorRate`` and is computed as dscore (the DIHARD scorer) computes
it: over the UEM, *never* with a collar or skip-overlap (dscore applies those to DER only),
with the turns of one speaker merged. A recording's JER is the mean over its reference
speakers of ``(missed + false alarm) / union`` of each reference speaker and its mapped
hypothesis speaker (100 % for an unmapped one); the total is the mean over the reference
speakers of all recordings (dscore's OVERALL). A recording without reference speakers scores
0 % without hypothesis speech and 100 % with some (dscore's cases). One difference: the
speaker mapping is pyannote's (most co-occurring time), where dscore takes the mapping of
least total JER; the two agree except where two mappings are nearly tied.

**Scoring conditions** (:data:`diarize.conditions.CONDITIONS`): each benchmark's usual
collar and overlap setting by name, with its source. Under a condition, a recording without a UEM is scored
over its reference extent (first onset to last offset), as md-eval does without ``-u``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import JER_SPEAKER_COUNT, JER_SPEAKER_ERROR, JaccardErrorRate
from pyannote.metrics.identification import IdentificationErrorRate

from diarize.conditions import (  # CONDITIONS, Condition: re-exported
    CONDITIONS,  # noqa: F401
    DEFAULT_COLLAR,
    Condition,  # noqa: F401
    get_condition,
)
from diarize.utils import DiarizeError


@dataclass(frozen=True)
class FileScore:
    """DER components of one recording (or of all of them, summed), in seconds."""

    missed: float  # reference speaker time with no hypothesis speaker
    false_alarm: float  # hypothesis speaker time beyond the reference speakers present
    confusion: float  # speaker time given to the wrong (unmapped) hypothesis speaker
    scored: float  # reference speaker time in the scored region (the DER denominator)
    ref_speakers: int  # reference speakers with speech in the UEM
    hyp_speakers: int  # hypothesis speakers with speech in the UEM
    jer_speakers: int = 0  # reference speakers counted by JER (with speech in the UEM)
    jer_error: float = 0.0  # their summed Jaccard errors, each in [0, 1]
    jer_empty: int = 0  # recordings with no reference speaker, hypothesis speech in the UEM

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

    def percentages(self, digits: int = 2) -> dict[str, float]:
        """DER and its parts in percent of the scored time, rounded: ``der``, ``missed``,
        ``false_alarm``, ``confusion`` (the figures the benches print)."""
        parts = {
            "missed": self.missed,
            "false_alarm": self.false_alarm,
            "confusion": self.confusion,
        }
        out = {"der": round(self.der, digits)}
        return out | {name: round(self.percent(value), digits) for name, value in parts.items()}

    @property
    def jer(self) -> float:
        """JER in percent: the mean Jaccard error of the reference speakers; without any,
        0 (no hypothesis speech either) or 100 (dscore's convention)."""
        if self.jer_speakers > 0:
            return 100.0 * self.jer_error / self.jer_speakers
        return 100.0 if self.jer_empty else 0.0

    def to_json(self) -> dict[str, float | int]:
        return {
            "der": round(self.der, 6),
            "jer": round(self.jer, 6),
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
    condition: str | None = None  # name of the scoring condition (CONDITIONS), if one
    total: FileScore = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", _sum_scores(self.files.values()))

    def check_scored(self, reference: str) -> None:
        """A :class:`DiarizeError` when no reference speaker time is left to score (an empty
        reference, or UEM, collars and skip-overlap removing all of it): a DER of 0 % there
        would say nothing."""
        if self.total.scored <= 0:
            raise DiarizeError(
                f"{reference}: no reference speaker time left to score (after the UEM, the "
                f"collar of {self.collar:g} s{' and skip-overlap' if self.skip_overlap else ''}"
                "): nothing to score"
            )

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
            "condition": self.condition,
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
            + (f", condition {self.condition}" if self.condition else "")
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


def score_condition(
    references: Mapping[str, Annotation],
    hypotheses: Mapping[str, Annotation],
    uems: Mapping[str, Timeline] | None,
    name: str,
) -> ScoreReport:
    """:func:`score` with the collar and overlap handling of condition ``name``
    (:data:`CONDITIONS`), recorded in the report. Without ``uems`` each recording is scored
    over its reference extent, as md-eval without ``-u``."""
    cond = get_condition(name)
    if uems is None:
        uems = {uri: reference_extent(ann) for uri, ann in references.items()}
    report = score(references, hypotheses, uems, cond.collar, cond.skip_overlap)
    return dataclasses.replace(report, condition=name)


def reference_extent(reference: Annotation) -> Timeline:
    """From the first onset to the last offset of the reference (md-eval's default UEM)."""
    segments = list(reference.itersegments())
    if not segments:
        return Timeline(uri=reference.uri)
    start, end = min(s.start for s in segments), max(s.end for s in segments)
    return Timeline([Segment(start, end)], uri=reference.uri)


def score_file(
    reference: Annotation,
    hypothesis: Annotation,
    uem: Timeline,
    collar: float = DEFAULT_COLLAR,
    skip_overlap: bool = False,
) -> FileScore:
    """DER components of one recording over ``uem`` (see :func:`score`)."""
    ref_names = {label: f"r{i}" for i, label in enumerate(reference.labels())}
    hyp_names = {label: f"h{i}" for i, label in enumerate(hypothesis.labels())}
    mapping = speaker_mapping(reference, hypothesis, uem)  # ref label -> hyp label
    hyp_names.update({hyp: ref_names[ref] for ref, hyp in mapping.items()})
    ref = reference.support().rename_labels(mapping=ref_names)
    hyp = hypothesis.support().rename_labels(mapping=hyp_names)
    region = scored_region(reference, uem, collar, skip_overlap)
    detail = IdentificationErrorRate().compute_components(
        ref, hyp, uem=region, collar=0.0, skip_overlap=False
    )
    jer_speakers, jer_error = jaccard_components(reference, hypothesis, uem)
    hyp_speakers = count_speakers(hypothesis, uem)
    return FileScore(
        missed=detail["missed detection"],
        false_alarm=detail["false alarm"],
        confusion=detail["confusion"],
        scored=detail["total"],
        ref_speakers=count_speakers(reference, uem),
        hyp_speakers=hyp_speakers,
        jer_speakers=jer_speakers,
        jer_error=jer_error,
        jer_empty=int(jer_speakers == 0 and hyp_speakers > 0),
    )


def jaccard_components(
    reference: Annotation, hypothesis: Annotation, uem: Timeline
) -> tuple[int, float]:
    """(reference speakers, their summed Jaccard errors) over ``uem``, by pyannote.metrics'
    ``JaccardErrorRate`` without collar or skip-overlap (as dscore scores JER)."""
    if not uem:
        return 0, 0.0
    detail = JaccardErrorRate(collar=0.0, skip_overlap=False).compute_components(
        reference.support(), hypothesis.support(), uem=uem
    )
    return int(detail[JER_SPEAKER_COUNT]), float(detail[JER_SPEAKER_ERROR])


def speaker_mapping(
    reference: Annotation, hypothesis: Annotation, uem: Timeline
) -> dict[object, object]:
    """``{reference label: hypothesis label}`` maximising their co-occurrence inside ``uem``
    (collars and overlap *not* removed), chosen as md-eval chooses among equal totals
    (:func:`md_eval_mapping`). Pairs that never co-occur are left unmapped."""
    refs = {str(label): label for label in reference.labels()}  # md-eval sorts names as text
    hyps = {str(label): label for label in hypothesis.labels()}
    pairs = md_eval_mapping(_turns(reference), _turns(hypothesis), _regions(uem))
    return {refs[ref]: hyps[hyp] for ref, hyp in pairs.items()}


def scored_region(
    reference: Annotation, uem: Timeline, collar: float, skip_overlap: bool
) -> Timeline:
    """``uem`` less ``collar`` seconds each side of every reference turn boundary, and less
    the regions where two reference turns overlap when ``skip_overlap``, region by region as
    md-eval builds it (:func:`md_eval_collars`, :func:`md_eval_skip_overlap`)."""
    regions, turns = _regions(uem), _turns(reference)
    if collar > 0:
        regions = md_eval_collars(regions, turns, collar)
    if skip_overlap:
        regions = md_eval_skip_overlap(regions, turns)
    kept = [Segment(a, b) for a, b in regions if b > a + EPSILON]  # as create_speaker_segs
    return Timeline(kept, uri=uem.uri)


def _turns(annotation: Annotation) -> list[tuple[float, float, str]]:
    """Every turn as written (turns of one speaker may overlap), labels as text."""
    return [(s.start, s.end, str(label)) for s, _, label in annotation.itertracks(yield_label=True)]


def _regions(uem: Timeline) -> list[tuple[float, float]]:
    return [(s.start, s.end) for s in uem]


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
        jer_speakers=sum(s.jer_speakers for s in scores),
        jer_error=sum(s.jer_error for s in scores),
        jer_empty=sum(s.jer_empty for s in scores),
    )


def _percent(seconds: float, scored: float) -> float:
    if scored > 0:
        return 100.0 * seconds / scored
    return 0.0 if seconds <= 0 else 100.0


def _header(width: int) -> str:
    return (
        f"{'recording':<{width}}  {'DER%':>7}  {'JER%':>6}  {'missed s (%)':>17}  {'false alarm s (%)':>17}"
        f"  {'confusion s (%)':>17}  {'scored s':>10}  {'ref spk':>7}  {'hyp spk':>7}"
    )


def _row(uri: str, s: FileScore, width: int) -> str:
    def cell(seconds: float) -> str:
        return f"{seconds:9.2f} ({s.percent(seconds):5.1f})"

    return (
        f"{uri:<{width}}  {s.der:7.2f}  {s.jer:6.2f}  {cell(s.missed):>17}  {cell(s.false_alarm):>17}"
        f"  {cell(s.confusion):>17}  {s.scored:10.2f}  {s.ref_speakers:7d}  {s.hyp_speakers:7d}"
    )


# --- md-eval-22.pl ports ---------------------------------------------------------------

EPSILON = 1e-8  # md-eval's $epsilon: event times closer than this are one instant
_BEG, _END = "BEG", "END"
Region = tuple[float, float]  # (start, end) in seconds
Turn = tuple[float, float, str]  # (onset, offset, speaker)


def md_eval_mapping(
    reference: list[Turn], hypothesis: list[Turn], uem: list[Region]
) -> dict[str, str]:
    """``{reference speaker: hypothesis speaker}`` as md-eval-22.pl maps them: co-occurrence
    summed over the segments of ``uem`` (its ``score_speaker_diarization``), then its own
    Hungarian routine ``weighted_bipartite_graph_match`` on the negated times (its
    ``map_speakers``). Ported operation by operation so that exact ties, and float sums that
    differ in the last bit, break as md-eval breaks them."""
    overlap: dict[str, dict[str, float]] = {}
    for start, end, refs, hyps in speaker_segments(uem, reference, hypothesis):
        for ref in refs:  # segments without reference speech add nothing (no hyps loop)
            row = overlap.setdefault(ref, {})
            for hyp in hyps:
                row[hyp] = row.get(hyp, 0.0) + (end - start)
    cost = {ref: {hyp: -t for hyp, t in row.items()} for ref, row in overlap.items()}
    return _bipartite_match({ref: row for ref, row in cost.items() if row})


def speaker_segments(uem: list[Region], reference: list[Turn], hypothesis: list[Turn]):
    """md-eval's ``create_speaker_segs``: ``(start, end, reference speakers, hypothesis
    speakers)`` for each stretch of ``uem`` where the speakers present do not change. Event
    times within :data:`EPSILON` are one instant, ends before beginnings."""
    events = [(t, k, "uem", "") for a, b in uem if b > a + EPSILON for t, k in _edges(a, b)]
    for src, turns in (("ref", reference), ("hyp", hypothesis)):
        events += [
            (t, k, src, spk) for on, off, spk in turns if off > on for t, k in _edges(on, off)
        ]
    active = {"ref": {}, "hyp": {}}
    evaluate, tbeg = False, 0.0
    for time, kind, src, spk in _md_eval_order(events, ends_first=True, epsilon=EPSILON):
        if evaluate and tbeg < time:
            yield tbeg, time, frozenset(active["ref"]), frozenset(active["hyp"])
            tbeg = time
        if src == "uem":
            evaluate = kind == _BEG
            tbeg = time if evaluate else tbeg
            continue
        count = active[src].get(spk, 0) + (1 if kind == _BEG else -1)
        if count:
            active[src][spk] = count
        else:
            active[src].pop(spk, None)


def _md_eval_order(events: list, ends_first: bool, epsilon: float = 0.0) -> list:
    """``events`` (time, kind, ...) in md-eval's sort order: by time, and at one instant
    (times within ``epsilon``) ends before beginnings (``ends_first``) or after, otherwise
    in list order."""
    events = sorted(events, key=lambda e: e[0])
    groups, out = [], []
    for event in events:
        if groups and event[0] - groups[-1][-1][0] <= epsilon:
            groups[-1].append(event)
        else:
            groups.append([event])
    first = _END if ends_first else _BEG
    for group in groups:
        out += [e for e in group if e[1] == first] + [e for e in group if e[1] != first]
    return out


def md_eval_collars(uem: list[Region], reference: list[Turn], collar: float) -> list[Region]:
    """md-eval's ``add_collars_to_uem``: ``uem`` less ``collar`` seconds each side of every
    reference turn boundary (turns as written, overlapping ones included)."""
    events = [(t, k) for a, b in uem for t, k in _edges(a, b)]
    for on, off, _ in reference:
        for edge in (on, off):
            events += [(edge - collar, _END), (edge + collar, _BEG)]
    regions, depth, tbeg = [], 0, 0.0
    for time, kind in _md_eval_order(events, ends_first=False):
        if kind == _BEG:
            depth += 1
            tbeg = time if depth == 1 else tbeg
            continue
        depth -= 1
        if depth == 0 and time > tbeg:
            regions.append((tbeg, time))
    return regions


def md_eval_skip_overlap(uem: list[Region], reference: list[Turn]) -> list[Region]:
    """md-eval's ``exclude_overlapping_speech_from_uem`` (``-1``): ``uem`` less the zones
    where two or more reference turns overlap. Its rule, kept as is: a region starts where
    the UEM is open and no zone is, and stops at the next event where the UEM closes or a
    zone opens *at a later time*; a zone opening at the very instant the region started
    (one zone ending where the next begins) does not stop it, so the region runs on to the
    next UEM end, inside the zone, unless the zone ends first."""
    turn_events = [(t, k) for on, off, _ in reference if off > on for t, k in _edges(on, off)]
    events, count, zone_start = [], 0, 0.0
    for time, kind in _md_eval_order(turn_events, ends_first=True):
        count += 1 if kind == _BEG else -1
        if kind == _BEG and count == 2:
            zone_start = time
        elif kind == _END and count == 1:
            events += [(zone_start, _BEG, "zone"), (time, _END, "zone")]
    events += [(t, k, "uem") for a, b in uem if b > a for t, k in _edges(a, b)]
    regions, open_uem, open_zones, evaluating, tbeg = [], 0, 0, False, 0.0
    for time, kind, src in _md_eval_order(events, ends_first=True):
        step = 1 if kind == _BEG else -1
        open_uem += step if src == "uem" else 0
        open_zones += step if src == "zone" else 0
        if evaluating and (open_uem == 0 or open_zones > 0) and time > tbeg:
            regions.append((tbeg, time))
            evaluating = False
        elif open_uem > 0 and open_zones == 0:
            tbeg, evaluating = time, True
    return regions


_BGM_PRECISION, _BGM_INF = 1e-12, 1e30  # md-eval's BGM tolerance and "infinity"


def _bipartite_match(score: dict[str, dict[str, float]]) -> dict[str, str]:
    """md-eval's ``weighted_bipartite_graph_match``: the ``{row: column}`` pairing of least
    total ``score`` (missing entries cannot pair), rows and columns in Perl ``sort`` order,
    with its tie-breaking: the first zero in row, then column order wins."""
    if not score:
        return {}
    c_at = _BgmCosts(score)
    n = c_at.n
    row_mate, col_mate, row_dec, unchosen = _bgm_greedy(c_at, n)  # 2. initial greedy stage
    col_inc = _bgm_augment(c_at, n, row_mate, col_mate, row_dec, unchosen)  # 3. stages
    if not _check_matching(c_at, n, col_mate, row_dec, col_inc, _BGM_PRECISION):
        return {}  # md-eval warns "BGM: ..." and maps nobody
    return c_at.mapping(row_mate)


class _BgmCosts:
    """md-eval's BGM cost matrix, (n, n) with ``n = max(rows, columns)``: ``self(k, c)`` is
    the cost of row ``k`` and column ``c`` less the column's minimum (1. of the algorithm).

    The costs are ``score - min(score)``; md-eval adds a dummy row ("miss") and column ("fa"),
    searches the smaller side as columns, and gives pairs without a score (and the padding
    beyond the rows or columns) the cost ``no_match``."""

    def __init__(self, score: dict[str, dict[str, float]]):
        rows = sorted(score)
        cols = sorted({name for row in score.values() for name in row})
        min_score = min(v for row in score.values() for v in row.values())
        self.reverse = len(rows) < len(cols)  # md-eval searches the smaller side as columns
        self.cost: dict[str, dict[str, float]] = {}
        for r in rows:
            for name, v in score[r].items():
                a, b = (name, r) if self.reverse else (r, name)
                self.cost.setdefault(a, {})[b] = v - min_score
        rows = rows + [_unused("miss", score)]
        cols = cols + [_unused("fa", set(cols))]
        self.rows, self.cols = (cols, rows) if self.reverse else (rows, cols)
        self.n = max(len(self.rows), len(self.cols))
        self.no_match = -min_score * (1 + _BGM_PRECISION)
        self.col_min = self._column_minima()

    def _column_minima(self) -> list[float]:
        col_min = [self.no_match] * self.n
        for c, name in enumerate(self.cols):
            for row in self.cost.values():
                if name in row and row[name] < col_min[c]:
                    col_min[c] = row[name]
        return col_min

    def __call__(self, k: int, c: int) -> float:
        row = self.rows[k] if k < len(self.rows) else None
        col = self.cols[c] if c < len(self.cols) else None
        value = self.cost.get(row, {}).get(col) if row is not None and col is not None else None
        return (self.no_match if value is None else value) - self.col_min[c]

    def mapping(self, row_mate: list[int | None]) -> dict[str, str]:
        """``{score row: score column}`` of the matched pairs that have a score."""
        mapping = {}
        for c, k in enumerate(row_mate):
            row = self.rows[k] if k < len(self.rows) else None
            col = self.cols[c] if c < len(self.cols) else None
            if row is not None and col is not None and col in self.cost.get(row, {}):
                mapping.update({col: row} if self.reverse else {row: col})
        return mapping


def _bgm_greedy(c_at: _BgmCosts, n: int) -> tuple[list, list[int], list[float], list[int]]:
    """md-eval's initial greedy stage: each row takes the first free column of its minimum.

    -> (row_mate (columns,): row of each column or None, col_mate (rows,): column of each
    row or -1, row_dec (rows,): each row's minimum, unchosen: the rows left unmatched)."""
    row_mate: list[int | None] = [None] * n
    col_mate, row_dec, unchosen = [0] * n, [0.0] * n, []
    for k in range(n):
        row_dec[k] = min([c_at.no_match, *(c_at(k, c) for c in range(len(c_at.cols)))])
        free = [c for c in range(n) if c_at(k, c) == row_dec[k] and row_mate[c] is None]
        if free:
            col_mate[k], row_mate[free[0]] = free[0], k
        else:
            col_mate[k] = -1
            unchosen.append(k)
    return row_mate, col_mate, row_dec, unchosen


def _bgm_augment(
    c_at: _BgmCosts,
    n: int,
    row_mate: list,
    col_mate: list[int],
    row_dec: list[float],
    unchosen: list[int],
) -> list[float]:
    """md-eval's stages: grow a forest of tight edges until a free column, then flip the
    alternating path, until every row is matched (updates the matching in place).

    -> col_inc (columns,): what each column's dual grew by."""
    col_inc, slack = [0.0] * n, [_BGM_INF] * n
    parent_row, slack_row = [-1] * n, [0] * n
    unmatched = len(unchosen)
    while unmatched:
        k, c = _hungarian_stage(
            c_at, n, row_mate, row_dec, col_inc, slack, parent_row, slack_row, unchosen, _BGM_INF
        )
        while True:  # update the matching along the alternating path
            j = col_mate[k]
            col_mate[k], row_mate[c] = c, k
            if j < 0:
                break
            k, c = parent_row[j], j
        unmatched -= 1
        parent_row[:], slack[:] = [-1] * n, [_BGM_INF] * n
        unchosen[:] = [k for k in range(n) if col_mate[k] < 0]
    return col_inc


def _hungarian_stage(
    c_at, n, row_mate, row_dec, col_inc, slack, parent_row, slack_row, unchosen, inf
):
    """One stage of md-eval's BGM: returns (row k, free column c) to augment from."""
    q = 0
    while True:
        while q < len(unchosen):
            k = unchosen[q]
            s = row_dec[k]
            for c in range(n):
                if slack[c] > 0:
                    delta = c_at(k, c) - s + col_inc[c]
                    if delta < slack[c]:
                        if delta == 0:
                            if row_mate[c] is None:
                                return k, c
                            slack[c], parent_row[c] = 0, k
                            unchosen.append(row_mate[c])
                        else:
                            slack[c], slack_row[c] = delta, k
            q += 1
        s = inf  # introduce a new zero by changing row_dec and col_inc
        for c in range(n):
            if slack[c] and slack[c] < s:
                s = slack[c]
        for k in unchosen:
            row_dec[k] += s
        for c in range(n):
            if not slack[c]:
                col_inc[c] += s
                continue
            slack[c] -= s
            if slack[c] == 0:
                k = slack_row[c]
                if row_mate[c] is None:
                    for j in range(c + 1, n):
                        if slack[j] == 0:
                            col_inc[j] += s
                    return k, c
                parent_row[c] = k
                unchosen.append(row_mate[c])


def _check_matching(c_at, n, col_mate, row_dec, col_inc, precision) -> bool:
    """md-eval's CHECK_RESULT: every reduced cost >= 0 and every row on a tight edge."""
    for k in range(n):
        for c in range(n):
            bound = row_dec[k] - col_inc[c]
            if c_at(k, c) < bound - precision * max(abs(row_dec[k]), abs(col_inc[c])):
                return False
    for k in range(n):
        c = col_mate[k]
        if c < 0:
            return False
        diff = abs(c_at(k, c) - (row_dec[k] - col_inc[c]))
        if diff > precision * max(abs(row_dec[k]), abs(col_inc[c])):
            return False
    return True


def _unused(name: str, taken) -> str:
    """md-eval's dummy row/column name: ``name`` with "0"s appended until unused."""
    while name in taken:
        name += "0"
    return name


def _edges(start: float, end: float) -> tuple[tuple[float, str], tuple[float, str]]:
    return (start, _BEG), (end, _END)
