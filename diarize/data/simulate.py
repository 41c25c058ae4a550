"""Simulated recordings from single-speaker speech: Fujita-style mixtures or conversations.

``mode="conversation"`` (Landini et al., Interspeech 2022, "From simulated mixtures to
simulated conversations as training data for end-to-end neural diarization"): the utterances
of all speakers are put in one random order and each follows the previous one (the latest
end so far) after a gap: a pause drawn for the same speaker continuing, or for a change of
speaker either an overlap (probability ``overlap_prob``, length exponential of mean
``overlap_mean``, at most 90 % of the shorter utterance) or a pause (exponential of mean
``pause_mean``). With ``turn_gaps``/``same_gaps`` (:func:`gaps_from_rttm` of a user's reference
RTTMs) the gaps are drawn from those instead. Leading and trailing stretches of noise only
are part of every conversation. The defaults gave 14.7 / 19.8 / 26.6 % overlapped speech
on conversations of 2 / 3 / 4 real persons (``diarize stats`` of the dev sets; README).

``mode="mixture"`` (Fujita et al., 2019):

"End-to-end neural speaker diarization with permutation-free objectives", as in the EEND
repository's ``random_mixture.py`` / ``make_mixture.py``. For mixture ``i`` (its own random
generator, seeded with ``(seed, i)``, so the output does not depend on the number of workers):

1. draw N speakers, N uniformly from ``speakers`` (N = 0: noise and non-speech events only,
   at a random level, no label); with a ``spk2person`` file in the source
   corpus the N speakers are N different persons (kal in flite and in festival is one person);
2. per speaker draw 10-20 utterances and put them on the speaker's own track, each preceded by
   a pause drawn from an exponential distribution of mean ``beta`` seconds;
3. with probability ``rir_prob`` convolve each track with its own room impulse response (RIR
   files, or a synthetic exponentially decaying one; one RT60 per mixture);
4. sum the tracks, add noise (noise files, or synthetic coloured noise) at an SNR drawn from
   ``snrs``: ``10 log10(mean(mixture^2) / mean(noise^2))`` over the whole mixture, as EEND does.

Augmentation (:mod:`diarize.data.augment`, both modes): a gain per speaker (+-``gain_db``),
a voice per speaker (``voice_shift``: its utterances played at one speed factor drawn within
``1 +- voice_shift`` on a 0.01 grid, from a generator of its own so that the other draws stay
those of the unshifted recording),
non-speech events (``events`` files at ``event_rate`` per minute) unlabelled over speech and
pauses, and with probability ``channel_prob`` one channel per recording (equalisation, band
limits, telephone band, codec round trip).

Labels are the *speech regions* of each utterance, from an energy VAD (:func:`energy_vad`) or,
with ``activity="segments"``, the utterance's whole span (a tight ``segments`` file). The
output is a diarization directory: ``wav/<id>.wav`` (16 kHz), ``rttm``, ``wav.scp``,
``reco2dur``, and ``simulation.json`` (the settings; a rerun with the same settings skips the
mixtures already written, other settings are an error).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pyannote.core import Annotation, Segment

from diarize.audio import SAMPLE_RATE, audio_info, is_audio_file, load_audio
from diarize.data import augment
from diarize.data.kaldi import SourceCorpus, Utterance, load_source_corpus
from diarize.utils import DiarizeError, atomic_write

SYNTHETIC = "synthetic"  # a noise or RIR entry that stands for a synthetic one


@dataclass(frozen=True)
class SimulationConfig:
    num_mixtures: int = 100  # mixtures to make
    speakers: tuple[int, ...] = (1, 2, 3, 4)  # speaker counts, drawn uniformly per mixture
    beta: float = 2.0  # seconds, mean of the exponential pause before each utterance
    min_utts: int = 10  # utterances per speaker, at least
    max_utts: int = 20  # utterances per speaker, at most
    snrs: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0)  # dB, drawn uniformly per mixture
    noises: tuple[str, ...] = ()  # noise files; empty = synthetic coloured noise
    rirs: tuple[str, ...] = ()  # RIR files; empty = synthetic exponential decay
    rir_prob: float = 0.5  # probability that a mixture is reverberant
    activity: str = "vad"  # vad: energy VAD per utterance | segments: whole utterance span
    mode: str = "mixture"  # mixture: Fujita et al. | conversation: Landini et al. | meeting
    meeting_minutes: float = 20.0  # meeting: length; N persons come and go in conversations
    pause_mean: float = 0.6  # s, conversation: mean pause when the speaker changes
    same_pause_mean: float = 0.4  # s, conversation: mean pause when the same speaker goes on
    overlap_prob: float = 0.85  # conversation: probability that a change of speaker overlaps
    overlap_mean: float = 2.75  # s, conversation: mean overlap length
    turn_gaps: tuple[float, ...] = ()  # s, speaker-change gaps (< 0: overlap) from RTTMs
    same_gaps: tuple[float, ...] = ()  # s, same-speaker gaps from RTTMs
    gain_db: float = 0.0  # each speaker's level drawn within +- this many dB
    voice_shift: float = 0.0  # each speaker's speed factor drawn within 1 +- this (0 = off)
    channel_prob: float = 0.0  # probability of one channel effect per recording
    events: tuple[str, ...] = ()  # non-speech sound files (effects, music), never labelled
    event_rate: float = 0.0  # non-speech events per minute
    silence_level: tuple[float, float] = (-50.0, -15.0)  # dBFS range, 0-speaker recordings
    seed: int = 0  # mixture i uses the generator seeded with (seed, i)
    prefix: str = "mix"  # recording ids are <prefix>_<index:06d>

    def check(self) -> None:
        if self.num_mixtures < 1:
            raise DiarizeError(f"--num-mixtures must be >= 1, got {self.num_mixtures}")
        if not self.speakers or min(self.speakers) < 0 or max(self.speakers) < 1:
            raise DiarizeError(f"--speakers must be >= 0, some >= 1, got {list(self.speakers)}")
        if not 1 <= self.min_utts <= self.max_utts:
            raise DiarizeError(
                f"need 1 <= --min-utts <= --max-utts, got {self.min_utts} {self.max_utts}"
            )
        if self.beta <= 0 or not self.snrs or not 0 <= self.rir_prob <= 1:
            raise DiarizeError(
                f"need --beta > 0, some --snr and 0 <= --rir-prob <= 1, got {self.beta} "
                f"{list(self.snrs)} {self.rir_prob}"
            )
        if self.activity not in ("vad", "segments"):
            raise DiarizeError(f"--activity must be vad or segments, got {self.activity!r}")
        if self.mode not in ("mixture", "conversation", "meeting"):
            raise DiarizeError(
                f"--mode must be mixture, conversation or meeting, got {self.mode!r}"
            )
        if not 0 <= self.voice_shift <= 0.3:
            raise DiarizeError(f"--voice-shift must lie in [0, 0.3], got {self.voice_shift}")
        means = (self.pause_mean, self.same_pause_mean, self.overlap_mean)
        if min(means) <= 0 or not 0 <= self.overlap_prob <= 1 or not 0 <= self.channel_prob <= 1:
            raise DiarizeError(
                f"need pause/overlap means > 0 and probabilities in [0, 1], got {means} "
                f"{self.overlap_prob} {self.channel_prob}"
            )


@dataclass(frozen=True)
class SimulationStats:
    mixtures: int
    duration: float  # seconds of audio in all
    speech: float  # seconds where at least one speaker speaks
    overlap: float  # seconds where two or more speak

    @property
    def overlap_ratio(self) -> float:
        """Overlapped speech / speech."""
        return self.overlap / self.speech if self.speech else 0.0

    @property
    def silence_ratio(self) -> float:
        """Non-speech / total."""
        return 1.0 - self.speech / self.duration if self.duration else 0.0


# --- speech activity ---------------------------------------------------------------------


def energy_vad(
    wave: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    threshold_db: float = -40.0,
    frame: float = 0.025,
    hop: float = 0.010,
    hangover: float = 0.05,
    min_silence: float = 0.25,
    min_speech: float = 0.1,
    floor_margin_db: float = 12.0,
    floor_cap_db: float = 20.0,
) -> list[tuple[float, float]]:
    """Speech regions ``[(start, end)]`` in seconds of a single-speaker ``(samples,)`` wave.

    A frame is speech when its energy is within ``threshold_db`` of the loudest frame and
    ``floor_margin_db`` above the wave's noise floor (:func:`noise_floor`); the floor's
    threshold is capped at ``floor_cap_db`` under the loudest frame, for a wave without
    pauses has no floor to measure. Without the floor, the hiss between the syllables of a
    recording with a noise floor 26 dB under its peak (klettres ``hu``) came out as speech
    throughout. Speech frames are extended by ``hangover`` on each side, pauses shorter than
    ``min_silence`` are filled, then regions shorter than ``min_speech`` dropped."""
    win, step = int(frame * sample_rate), int(hop * sample_rate)
    if wave.size < win:
        return []
    frames = np.lib.stride_tricks.sliding_window_view(wave, win)[::step]  # (frames, win)
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    peak = energy.max()
    floor = noise_floor(energy)
    speech = energy > max(peak + threshold_db, min(floor + floor_margin_db, peak - floor_cap_db))
    regions = _runs(speech)
    # frame f covers [f * hop, f * hop + frame); regions in seconds, with hangover
    total = wave.size / sample_rate
    secs = [
        (max(0.0, a * hop - hangover), min(total, (b - 1) * hop + frame + hangover))
        for a, b in regions
    ]
    return [(a, b) for a, b in _fill_gaps(secs, min_silence) if b - a >= min_speech]


def noise_floor(energy_db: np.ndarray, percentile: float = 10.0) -> float:
    """dB: the ``percentile`` of frame energies ``(frames,)``, digital silence (under -100
    dB, as between joined clips) left out; -inf when every frame is digital silence."""
    live = energy_db[energy_db > -100.0]
    return float(np.percentile(live, percentile)) if live.size else -np.inf


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop)]`` of the runs of True in a boolean array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _fill_gaps(regions: list[tuple[float, float]], min_gap: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in regions:
        if out and a - out[-1][1] < min_gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def activity_stats(
    annotations: Iterable[Annotation], durations: Mapping[str, float]
) -> SimulationStats:
    """Speech and overlap seconds of annotations (keyed by ``uri`` in ``durations``)."""
    speech = overlap = 0.0
    n = 0
    for ann in annotations:
        n += 1
        events = sorted(
            [(s.start, 1) for s, _ in ann.itertracks()] + [(s.end, -1) for s, _ in ann.itertracks()]
        )
        active, last = 0, 0.0
        for t, delta in events:
            speech += (t - last) * (active >= 1)
            overlap += (t - last) * (active >= 2)
            active, last = active + delta, t
    return SimulationStats(n, float(sum(durations.values())), speech, overlap)


# --- speaker lists -----------------------------------------------------------------------


def read_list(path: str | os.PathLike) -> list[str]:
    """First field of each non-blank line of a text file."""
    path = Path(path)
    if not path.is_file():
        raise DiarizeError(f"{path}: no such file")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def read_spk2person(corpus_dir: str | os.PathLike) -> dict[str, str]:
    """``{speaker: person}`` from the corpus's ``spk2person``; empty when there is none."""
    path = Path(corpus_dir) / "spk2person"
    if not path.exists():
        return {}
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    for lineno, row in enumerate(rows, 1):
        if len(row) != 2:
            raise DiarizeError(f"{path}:{lineno}: expected 2 fields, got {len(row)}")
    return dict(rows)


def split_speakers(
    speakers: Iterable[str],
    num_dev: int,
    seed: int = 0,
    person_of: Mapping[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """(train, dev) speaker lists with ``num_dev`` randomly chosen *persons* in dev; all the
    speakers of one person (``person_of``, default: each speaker its own person) go to the
    same side."""
    person_of = person_of or {}
    speakers = sorted(set(speakers))
    persons = sorted({person_of.get(s, s) for s in speakers})
    if not 0 <= num_dev <= len(persons):
        raise ValueError(f"num_dev must be in [0, {len(persons)}], got {num_dev}")
    rng = np.random.default_rng(seed)
    dev = {persons[i] for i in rng.choice(len(persons), size=num_dev, replace=False)}
    train = [s for s in speakers if person_of.get(s, s) not in dev]
    return train, [s for s in speakers if person_of.get(s, s) in dev]


def restrict_speakers(
    speakers: Sequence[str], allowed: Iterable[str], person_of: Mapping[str, str]
) -> list[str]:
    """Speakers whose id or person is in ``allowed``."""
    allowed = set(allowed)
    return [s for s in speakers if s in allowed or person_of.get(s, s) in allowed]


# --- one mixture -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pool:
    """What every worker needs: utterances per person per speaker, noises, RIRs."""

    persons: dict[str, dict[str, list[Utterance]]]  # person -> speaker -> utterances
    config: SimulationConfig
    out: str
    events: tuple[np.ndarray, ...] = ()  # non-speech sounds, 16 kHz


@dataclass
class Mixture:
    id: str
    wave: np.ndarray  # (samples,) at SAMPLE_RATE
    annotation: Annotation
    snr: float
    reverberant: bool
    speakers: list[str] = field(default_factory=list)


def make_mixture(index: int, pool: _Pool) -> Mixture:
    """Mixture ``index``, drawn with its own generator (see the module docstring)."""
    cfg = pool.config
    rng = np.random.default_rng([cfg.seed, index])
    uri = f"{cfg.prefix}_{index:06d}"
    n = int(cfg.speakers[rng.integers(len(cfg.speakers))])
    persons = sorted(pool.persons)
    chosen = [persons[i] for i in rng.choice(len(persons), size=n, replace=False)]
    speakers = []
    for p in chosen:
        names = sorted(pool.persons[p])
        speakers.append(names[int(rng.integers(len(names)))])
    utterances = [pool.persons[p][spk] for spk, p in zip(speakers, chosen, strict=True)]
    if cfg.voice_shift > 0:
        utterances = _shifted(
            utterances, cfg.voice_shift, np.random.default_rng([cfg.seed, index, 1])
        )
    if n == 0:
        tracks, regions = [np.zeros(int(rng.uniform(20, 60) * SAMPLE_RATE))], [[]]
    elif cfg.mode == "conversation":
        tracks, regions = _conversation(utterances, cfg, rng)
    elif cfg.mode == "meeting":
        tracks, regions = _meeting(utterances, cfg, rng)
    else:
        tracks, regions = zip(*(_speaker_track(u, cfg, rng) for u in utterances), strict=True)
    ann = Annotation(uri=uri)
    for spk, spans in zip(speakers, regions, strict=False):
        for a, b in spans:
            seg = Segment(a, b)
            ann[seg, ann.new_track(seg)] = spk
    mix, snr, reverberant = _render(list(tracks), cfg, rng, pool.events, speech=n > 0)
    return Mixture(uri, mix.astype(np.float32), ann, snr, reverberant, speakers)


@dataclass(frozen=True)
class ShiftedUtterance(Utterance):
    """An utterance to be played at ``speed`` times its speed (``voice_shift``)."""

    speed: float = 1.0


def _shifted(
    utterances: list[list[Utterance]], shift: float, rng: np.random.Generator
) -> list[list[Utterance]]:
    """Each speaker's utterances at one speed factor drawn within ``1 +- shift``, 0.01 apart."""
    factors = np.round(rng.uniform(1 - shift, 1 + shift, size=len(utterances)), 2)
    return [
        [ShiftedUtterance(**asdict(u), speed=float(f)) for u in utts]
        for utts, f in zip(utterances, factors, strict=True)
    ]


def _load(utt: Utterance) -> np.ndarray:
    """An utterance's samples at SAMPLE_RATE, at its speed if it is shifted."""
    wave = load_audio(utt.path, SAMPLE_RATE, offset=utt.start, duration=utt.duration)
    factor = getattr(utt, "speed", 1.0)
    return wave if factor == 1.0 else augment.speed(wave, factor)


def _render(
    tracks: list[np.ndarray],
    cfg: SimulationConfig,
    rng: np.random.Generator,
    events: Sequence[np.ndarray],
    speech: bool,
) -> tuple[np.ndarray, float, bool]:
    """Gain, reverberation, sum, noise, non-speech events, channel: (mixture, snr, reverb)."""
    if cfg.gain_db > 0:
        tracks = [t * 10 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20) for t in tracks]
    length = max(t.size for t in tracks)
    reverberant = bool(rng.random() < cfg.rir_prob)
    if reverberant:
        rt60 = float(rng.uniform(0.2, 0.8))
        tracks = [_reverberate(t, _rir(cfg.rirs, rt60, rng)) for t in tracks]
    mix = np.zeros(length, dtype=np.float64)
    for t in tracks:
        mix[: t.size] += t
    snr = float(cfg.snrs[rng.integers(len(cfg.snrs))])
    noise = _noise(cfg.noises, length, rng)
    if speech:
        mix = add_noise(mix, noise, snr)
    else:  # nothing to measure an SNR against: an absolute level
        mix = noise * 10 ** (rng.uniform(*cfg.silence_level) / 20)
    mix = augment.add_events(mix, events, cfg.event_rate, (-5.0, 20.0), rng)
    if cfg.channel_prob > 0 and rng.random() < cfg.channel_prob:
        mix = augment.channel(mix, augment.CHANNELS[int(rng.integers(len(augment.CHANNELS)))], rng)
    peak = np.abs(mix).max()
    if peak > 0.99:  # scale the whole mixture: the SNR stays
        mix *= 0.99 / peak
    return mix, snr, reverberant


def _conversation(
    utterances: list[list[Utterance]], cfg: SimulationConfig, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[list[tuple[float, float]]]]:
    """Tracks (one per speaker, one length) and speech regions of a turn-taking conversation
    (module docstring): each utterance starts a drawn gap after the latest end so far."""
    counts = rng.integers(cfg.min_utts, cfg.max_utts + 1, size=len(utterances))
    counts = np.minimum(counts, [len(u) for u in utterances])  # a person with few says few
    order = rng.permutation(np.repeat(np.arange(len(utterances)), counts))
    placed: list[tuple[int, int, np.ndarray]] = []  # (speaker, start sample, wave)
    floor_end, previous = int(rng.uniform(0.5, 3.0) * SAMPLE_RATE), None
    for k in order.tolist():
        utt = utterances[k][int(rng.integers(len(utterances[k])))]
        wave = _load(utt)
        start = floor_end
        if previous is not None:
            gap = _gap(k == previous[0], cfg, rng)
            if gap < 0:  # an overlap: at most 90 % of the shorter of the two utterances
                gap = -min(-gap, 0.9 * min(previous[1], wave.size) / SAMPLE_RATE)
            start = max(0, floor_end + int(gap * SAMPLE_RATE))
        placed.append((k, start, wave))
        floor_end, previous = max(floor_end, start + wave.size), (k, wave.size)
    length = floor_end + int(rng.uniform(0.5, 3.0) * SAMPLE_RATE)
    tracks = [np.zeros(length) for _ in utterances]
    regions: list[list[tuple[float, float]]] = [[] for _ in utterances]
    for k, start, wave in placed:
        tracks[k][start : start + wave.size] += wave
        spans = energy_vad(wave) if cfg.activity == "vad" else [(0.0, wave.size / SAMPLE_RATE)]
        regions[k] += [(start / SAMPLE_RATE + a, start / SAMPLE_RATE + b) for a, b in spans]
    return tracks, regions


def _meeting(
    utterances: list[list[Utterance]], cfg: SimulationConfig, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[list[tuple[float, float]]]]:
    """A long meeting of N persons who come and go: conversations of 2-4 of them, one after
    the other, until ``meeting_minutes``; each person takes part in one of the first ones."""
    n, length = len(utterances), int(cfg.meeting_minutes * 60 * SAMPLE_RATE)
    tracks: list[list[np.ndarray]] = [[] for _ in range(n)]
    regions: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    pos, unheard = 0, list(rng.permutation(n))
    while pos < length:
        size = int(rng.integers(2, min(4, n) + 1))
        group = unheard[:size] + [k for k in rng.permutation(n) if k not in unheard[:size]]
        group, unheard = sorted(int(k) for k in group[:size]), unheard[size:]
        part, spans = _conversation([utterances[k] for k in group], cfg, rng)
        for k in range(n):
            tracks[k].append(part[group.index(k)] if k in group else np.zeros(part[0].size))
        for k, sp in zip(group, spans, strict=True):
            regions[k] += [(pos / SAMPLE_RATE + a, pos / SAMPLE_RATE + b) for a, b in sp]
        pos += part[0].size
    return [np.concatenate(t) for t in tracks], regions


def _gap(same_speaker: bool, cfg: SimulationConfig, rng: np.random.Generator) -> float:
    """Seconds from the latest end to the next start (< 0: overlap)."""
    if same_speaker:
        if cfg.same_gaps:
            return float(cfg.same_gaps[int(rng.integers(len(cfg.same_gaps)))])
        return float(rng.exponential(cfg.same_pause_mean))
    if cfg.turn_gaps:
        return float(cfg.turn_gaps[int(rng.integers(len(cfg.turn_gaps)))])
    if rng.random() < cfg.overlap_prob:
        return -float(rng.exponential(cfg.overlap_mean))
    return float(rng.exponential(cfg.pause_mean))


def gaps_from_rttm(annotations: Iterable[Annotation]) -> tuple[list[float], list[float]]:
    """(speaker-change gaps, same-speaker gaps) in seconds of reference annotations: for each
    turn in order of start, its start minus the latest end before it (< 0: overlap), by
    whether the speaker of that latest-ending turn is the same. Gaps over 10 s are left out
    (they are not turn-taking)."""
    change, same = [], []
    for ann in annotations:
        turns = sorted((s.start, s.end, label) for s, _, label in ann.itertracks(yield_label=True))
        for (start, _, label), prev in zip(turns[1:], _latest(turns), strict=True):
            gap = start - prev[1]
            if gap <= 10.0:
                (same if label == prev[2] else change).append(round(gap, 3))
    return change, same


def _latest(turns: list[tuple[float, float, str]]) -> Iterable[tuple[float, float, str]]:
    """For each turn but the first: the turn ending latest among those before it."""
    latest = None
    for turn in turns[:-1]:
        latest = turn if latest is None or turn[1] > latest[1] else latest
        yield latest


def _speaker_track(
    utterances: list[Utterance], cfg: SimulationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One speaker's track: pause, utterance, pause, utterance...; and its speech regions."""
    n = int(rng.integers(cfg.min_utts, cfg.max_utts + 1))
    picks = rng.choice(len(utterances), size=n, replace=n > len(utterances))
    pauses = rng.exponential(cfg.beta, size=n)
    pieces, regions, pos = [], [], 0  # pos in samples
    for pick, pause in zip(picks, pauses, strict=True):
        utt = utterances[int(pick)]
        wave = _load(utt)
        gap = int(round(pause * SAMPLE_RATE))
        pieces += [np.zeros(gap, dtype=np.float32), wave]
        pos += gap
        spans = energy_vad(wave) if cfg.activity == "vad" else [(0.0, wave.size / SAMPLE_RATE)]
        regions += [(pos / SAMPLE_RATE + a, pos / SAMPLE_RATE + b) for a, b in spans]
        pos += wave.size
    return np.concatenate(pieces).astype(np.float64), regions


def add_noise(signal: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """``signal + g * noise`` with ``g`` such that mean(signal^2) / mean((g noise)^2) is
    ``snr`` dB (both arrays of one length)."""
    p_signal, p_noise = np.mean(signal**2), np.mean(noise**2)
    if p_noise <= 0 or p_signal <= 0:
        return signal
    return signal + noise * np.sqrt(p_signal / (p_noise * 10 ** (snr / 10)))


def coloured_noise(length: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ 1 / f^exponent (0 white, 1 pink, 2 brown), unit power."""
    from scipy import fft

    n = fft.next_fast_len(length, real=True)  # an FFT-friendly length, cut afterwards
    spectrum = fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    f[0] = f[1] if n > 1 else 1.0
    noise = fft.irfft(spectrum / f ** (exponent / 2), n=n)[:length]
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _noise(files: Sequence[str], length: int, rng: np.random.Generator) -> np.ndarray:
    """Background noise of ``length`` samples: a random file (tiled from a random start), or
    coloured noise when there are no files or the entry drawn is ``synthetic``."""
    choice = files[int(rng.integers(len(files)))] if files else SYNTHETIC
    if choice == SYNTHETIC:
        return coloured_noise(length, float(rng.uniform(0.0, 2.0)), rng)
    noise = load_audio(choice).astype(np.float64)
    start = int(rng.integers(noise.size))
    return np.resize(np.roll(noise, -start), length)  # random start, tiled to the length


def synthetic_rir(rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A direct path (1 at t=0) followed by Gaussian noise decaying 60 dB in ``rt60`` s."""
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60)
    delay = int(rng.uniform(0.001, 0.005) * SAMPLE_RATE)  # early reflections start
    rir = np.zeros(n + delay)
    rir[delay:] = 0.3 * tail
    rir[0] = 1.0
    return rir


def _rir(files: Sequence[str], rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A random RIR file (direct path moved to t=0), or a synthetic one (no files, or the
    entry drawn is ``synthetic``)."""
    choice = files[int(rng.integers(len(files)))] if files else SYNTHETIC
    if choice == SYNTHETIC:
        return synthetic_rir(rt60, rng)
    rir = load_audio(choice).astype(np.float64)
    peak = int(np.argmax(np.abs(rir)))
    return rir[peak:] / rir[peak]  # direct path at t=0, gain 1: labels stay aligned


def _reverberate(track: np.ndarray, rir: np.ndarray) -> np.ndarray:
    from scipy.signal import oaconvolve

    return oaconvolve(track, rir)[: track.size]


# --- a whole set -------------------------------------------------------------------------


_WORKER_POOL: _Pool | None = None


def _init_worker(pool: _Pool) -> None:
    global _WORKER_POOL
    _WORKER_POOL = pool


def _write_one(index: int) -> str:
    """Make and write mixture ``index`` unless it is already there; returns its id."""
    pool = _WORKER_POOL
    uri = f"{pool.config.prefix}_{index:06d}"
    wav, part = Path(pool.out) / "wav" / f"{uri}.wav", Path(pool.out) / "parts" / f"{uri}.rttm"
    if wav.exists() and part.exists():
        return uri
    from diarize.audio import write_audio
    from diarize.rttm import write_rttm

    mix = make_mixture(index, pool)
    write_audio(wav, mix.wave)
    write_rttm(part, mix.annotation)  # written last: its presence marks the mixture done
    return uri


def build_pool(
    source: str | os.PathLike,
    config: SimulationConfig,
    out: str | os.PathLike,
    speaker_list: Iterable[str] | None = None,
) -> _Pool:
    """Load the source corpus and group its utterances by person and speaker."""
    corpus: SourceCorpus = load_source_corpus(source)
    person_of = read_spk2person(source)
    by_speaker = corpus.speakers()
    names = list(by_speaker)
    if speaker_list is not None:
        names = restrict_speakers(names, speaker_list, person_of)
    persons: dict[str, dict[str, list[Utterance]]] = {}
    for spk in names:
        persons.setdefault(person_of.get(spk, spk), {})[spk] = by_speaker[spk]
    if len(persons) < max(config.speakers):
        raise DiarizeError(
            f"{source}: {len(persons)} persons available after the speaker list, but mixtures "
            f"of up to {max(config.speakers)} speakers need as many distinct persons"
        )
    events = tuple(load_audio(f).astype(np.float64) for f in config.events)
    return _Pool(persons, config, str(out), tuple(e for e in events if e.size))


def simulate(
    source: str | os.PathLike,
    out: str | os.PathLike,
    config: SimulationConfig,
    speaker_list: Iterable[str] | None = None,
    workers: int = 1,
    progress: bool = True,
) -> SimulationStats:
    """Write a simulated diarization directory ``out`` from the corpus ``source``."""
    config.check()
    if not Path(source).is_dir():
        raise DiarizeError(f"{source}: no such directory")
    out = Path(out)
    speaker_list = sorted(speaker_list) if speaker_list is not None else None
    _claim(out, config, source, speaker_list)
    pool = build_pool(source, config, out, speaker_list)
    indices = range(config.num_mixtures)
    if workers <= 1:
        _init_worker(pool)
        uris = [_write_one(i) for i in _progress(indices, progress)]
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, _init_worker, (pool,)) as p:
            uris = list(_progress(p.imap(_write_one, indices), progress, len(indices)))
    return _finish(out, uris)


def _claim(out: Path, config: SimulationConfig, source, speaker_list) -> None:
    """Write ``simulation.json``, or check that an existing one has the same settings.
    ``num_mixtures`` may differ: mixture ``i`` depends only on the seed and ``i``, so a set
    can be extended (or a prefix of it listed)."""
    settings = {"source": str(Path(source).resolve()), "speaker_list": speaker_list}
    settings["config"] = json.loads(json.dumps(asdict(config)))
    meta = out / "simulation.json"
    if meta.exists():
        old = json.loads(meta.read_text())
        if _without_count(old) != _without_count(settings):
            raise DiarizeError(
                f"{out}: was simulated with other settings (see {meta}); use another directory"
            )
    with atomic_write(meta) as f:
        json.dump(settings, f, indent=1)


def _without_count(settings: dict) -> dict:
    """The settings to compare, fields added since a set was made at their defaults."""
    defaults = json.loads(json.dumps(asdict(SimulationConfig())))
    return settings | {"config": defaults | settings["config"] | {"num_mixtures": None}}


def _progress(items, enabled: bool, total: int | None = None):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc="mixtures", unit="mix")


def _finish(out: Path, uris: list[str]) -> SimulationStats:
    """Gather the per-mixture parts into ``rttm``, ``wav.scp`` and ``reco2dur``."""
    from diarize.rttm import read_rttm, write_rttm

    annotations, durations = [], {}
    for uri in uris:
        ann = read_rttm(out / "parts" / f"{uri}.rttm").get(uri, Annotation(uri=uri))
        annotations.append(ann)
        durations[uri] = audio_info(out / "wav" / f"{uri}.wav").duration
    write_rttm(out / "rttm", annotations)
    with atomic_write(out / "wav.scp") as scp, atomic_write(out / "reco2dur") as r2d:
        for uri in uris:
            scp.write(f"{uri} wav/{uri}.wav\n")
            r2d.write(f"{uri} {durations[uri]:.4f}\n")
    return activity_stats(annotations, durations)


def audio_files(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Audio files named directly or found (recursively) in the directories given; the word
    ``synthetic`` stays as it is (a synthetic noise or RIR among the files)."""
    files: list[str] = []
    for p in map(Path, paths):
        if str(p) == SYNTHETIC:
            files.append(SYNTHETIC)
        elif p.is_dir():
            files += sorted(str(f) for f in p.rglob("*") if f.is_file() and is_audio_file(f))
        elif p.is_file():
            files.append(str(p))
        else:
            raise DiarizeError(f"{p}: no such file or directory")
    return files
