"""Voice features for linking speakers across windows: spectral envelope and pitch.

EEND-EDA's attractors name the speakers of one window; they say little about who is who in
another window (on the bundled model the cosine of two attractors of one person averages
0.89, of two different persons 0.85). Linking therefore also compares what the local speakers
sound like, over the frames where each one speaks alone:

- the average log-mel spectrum (40 bands, 25 ms windows every 10 ms): the long-term average
  spectrum, shaped by the vocal tract, the voice quality, the speaker's level and distance
  to the microphone (removing the level, i.e. comparing shapes only, linked worse on the
  long-recording benchmark);
- the average log fundamental frequency of the voiced frames (normalised autocorrelation of
  40 ms frames, 60-400 Hz).

:func:`voice_frames` computes both per model frame; :func:`voice_profiles` pools them per
local speaker of a window; :func:`turn_groups` tells whether the turns of one local speaker
are one voice or several (the model's local speakers are often two persons when a window holds
more persons than it decodes). Nothing of this is learned: it works with any checkpoint.
:func:`speaker_frames` is the input of the learned speaker encoder
(:mod:`diarize.models.speaker`), which links better than the voice profiles where a
checkpoint carries one.
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio

N_MELS = 40
SPEAKER_MELS = 64  # bands of speaker_frames, the speaker encoder's input
SUB_HOP = 160  # samples between analysis frames (10 ms at 16 kHz)
MEL_WIN, MEL_FFT = 400, 512  # 25 ms Hann window
PITCH_WIN = 640  # 40 ms: two periods of 50 Hz
F0_MIN, F0_MAX = 60.0, 400.0  # Hz
VOICING = 0.6  # normalised autocorrelation peak above which a frame is voiced
OCTAVE = 0.85  # a shorter lag within this fraction of the highest peak is the period
LOG_FLOOR = 1e-10
Pitch = tuple[torch.Tensor, torch.Tensor]  # per analysis frame: log F0 (NaN: unvoiced), peak

_MEL_CACHE: dict[tuple[int, int, int, float], torch.Tensor] = {}


def voice_and_speaker_frames(
    wave: np.ndarray, frame_samples: int, sample_rate: int = 16000
) -> tuple[np.ndarray, np.ndarray]:
    """``voice_frames(wave, frame_samples)`` and ``speaker_frames`` of the same whole frames,
    the pitch of their 10 ms analysis frames (which both take) analysed once."""
    wave = wave[: len(wave) // frame_samples * frame_samples]
    pitch = analysis_pitch(wave, sample_rate)
    return (
        voice_frames(wave, frame_samples, sample_rate, pitch),
        speaker_frames(wave, sample_rate, pitch),
    )


def analysis_pitch(wave: np.ndarray, sample_rate: int = 16000) -> Pitch:
    """log F0 (NaN when unvoiced) and voicing strength of the ``samples // 10 ms`` analysis
    frames of ``wave``, analysis frame ``j`` starting at sample ``j x 10 ms``."""
    hop = round(SUB_HOP * sample_rate / 16000)
    n, pitch_win = len(wave) // hop, round(PITCH_WIN * sample_rate / 16000)
    return _pitch(_padded(wave[: n * hop], pitch_win), n, hop, pitch_win, sample_rate)


def _padded(wave: np.ndarray, pitch_win: int) -> torch.Tensor:
    """The samples as a tensor with a pitch window of zeros after them."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    return torch.nn.functional.pad(x, (0, pitch_win))


def _pitch_of(pitch: Pitch | None, x: torch.Tensor, n, hop, pitch_win, sample_rate) -> Pitch:
    """``pitch`` (from :func:`analysis_pitch`) when given, its length checked; else analysed."""
    if pitch is None:
        return _pitch(x, n, hop, pitch_win, sample_rate)
    if len(pitch[0]) != n:
        raise ValueError(f"pitch of {len(pitch[0])} analysis frames given, {n} needed")
    return pitch


def voice_frames(
    wave: np.ndarray, frame_samples: int, sample_rate: int = 16000, pitch: Pitch | None = None
) -> np.ndarray:
    """wave (samples,) -> (frames, N_MELS + 1) with ``frames = samples // frame_samples``: per
    frame the mean log-mel spectrum of its 10 ms analysis frames and the
    median log F0 of its voiced analysis frames (NaN when none is voiced). ``pitch``: the
    :func:`analysis_pitch` of the same samples, if already analysed.

    ``frame_samples`` must be a multiple of 10 ms (the model's frame shift, e.g. 100 ms).
    """
    hop = round(SUB_HOP * sample_rate / 16000)
    if frame_samples % hop:
        raise ValueError(f"frame of {frame_samples} samples is not a multiple of {hop}")
    frames, sub = len(wave) // frame_samples, frame_samples // hop
    out = np.full((frames, N_MELS + 1), np.nan, dtype=np.float32)
    if frames == 0:
        return out
    win, fft, pitch_win = (round(n * sample_rate / 16000) for n in (MEL_WIN, MEL_FFT, PITCH_WIN))
    x = _padded(wave[: frames * frame_samples], pitch_win)  # analysis frame j: sample j * hop
    n = frames * sub

    log_mel = _log_mel(x, n, fft, hop, win, N_MELS, 0.0, sample_rate)  # (n, N_MELS)
    out[:, :N_MELS] = log_mel.reshape(frames, sub, N_MELS).mean(1).numpy()
    log_f0, _ = _pitch_of(pitch, x, n, hop, pitch_win, sample_rate)
    out[:, N_MELS] = torch.nanmedian(log_f0.reshape(frames, sub), 1).values.numpy()
    return out


def speaker_frames(
    wave: np.ndarray, sample_rate: int = 16000, pitch: Pitch | None = None
) -> np.ndarray:
    """wave (samples,) -> (samples // 10 ms, SPEAKER_MELS + 2), the input of the speaker
    encoder (:mod:`diarize.models.speaker`): per 10 ms the log-mel spectrum (64 bands from
    20 Hz, 25 ms windows), log F0 relative to 120 Hz (0 when unvoiced) and the voicing
    strength (peak of the normalised autocorrelation, 0-1). Frame ``j`` starts at sample
    ``j x 10 ms``, as in :func:`voice_frames`. ``pitch``: as in :func:`voice_frames`."""
    hop = round(SUB_HOP * sample_rate / 16000)
    n = len(wave) // hop
    out = np.zeros((n, SPEAKER_MELS + 2), dtype=np.float32)
    if n == 0:
        return out
    win, fft, pitch_win = (round(k * sample_rate / 16000) for k in (MEL_WIN, MEL_FFT, PITCH_WIN))
    x = _padded(wave[: n * hop], pitch_win)
    out[:, :SPEAKER_MELS] = _log_mel(x, n, fft, hop, win, SPEAKER_MELS, 20.0, sample_rate).numpy()
    log_f0, peak = _pitch_of(pitch, x, n, hop, pitch_win, sample_rate)
    out[:, SPEAKER_MELS] = torch.nan_to_num(log_f0 - np.log(120.0), nan=0.0).numpy()
    out[:, SPEAKER_MELS + 1] = peak.clamp(0, 1).numpy()
    return out


def _log_mel(x, n, fft, hop, win, n_mels, f_min, sample_rate) -> torch.Tensor:
    """(n, n_mels) log-mel spectra of the first ``n`` uncentred frames of ``x``."""
    spec = torch.stft(x, fft, hop, win, torch.hann_window(win), center=False, return_complex=True)
    power = spec.abs().square()[:, :n]  # (fft // 2 + 1, n)
    return torch.log(_mel_matrix(fft, sample_rate, n_mels, f_min).T @ power + LOG_FLOOR).T


def _pitch(x, n, hop, pitch_win, sample_rate) -> tuple[torch.Tensor, torch.Tensor]:
    """log F0 (n,) (NaN when unvoiced) and the normalised autocorrelation peak (n,) of the
    first ``n`` frames of ``pitch_win`` samples, ``hop`` apart."""
    seg = x.unfold(0, pitch_win, hop)[:n]  # (n, pitch_win)
    seg = seg - seg.mean(1, keepdim=True)
    window = torch.hann_window(pitch_win)
    acf = torch.fft.irfft(torch.fft.rfft(seg * window, n=2 * pitch_win).abs().square())
    taper = torch.fft.irfft(torch.fft.rfft(window, n=2 * pitch_win).abs().square())
    acf = acf[:, : pitch_win + 1] / acf[:, :1].clamp_min(LOG_FLOOR)
    acf = acf / (taper[: pitch_win + 1] / taper[0]).clamp_min(1e-3)  # undo the window's taper
    lo, hi = int(sample_rate / F0_MAX), int(sample_rate / F0_MIN)
    acf = acf[:, lo - 1 : hi + 1]  # one lag of margin on each side for the peak test
    inner = acf[:, 1:-1]
    peak = inner.max(1).values
    # The period is the shortest lag whose peak comes close to the highest one: multiples of
    # the period correlate as well (a periodic signal repeats there too) and must not win.
    is_peak = (inner >= acf[:, :-2]) & (inner >= acf[:, 2:]) & (inner >= OCTAVE * peak[:, None])
    lag = is_peak.float().argmax(1) + lo
    voiced = (peak > VOICING) & (seg.square().mean(1) > 1e-8)
    log_f0 = torch.where(voiced, np.log(sample_rate) - torch.log(lag.float()), np.nan)
    return log_f0, peak


def _mel_matrix(fft: int, sample_rate: int, n_mels: int, f_min: float) -> torch.Tensor:
    key = (fft, sample_rate, n_mels, f_min)
    if key not in _MEL_CACHE:
        _MEL_CACHE[key] = torchaudio.functional.melscale_fbanks(
            fft // 2 + 1, f_min, sample_rate / 2, n_mels, sample_rate
        )  # (fft // 2 + 1, n_mels)
    return _MEL_CACHE[key]


def voice_profiles(features: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """features (frames, N_MELS + 1) from :func:`voice_frames`, active (frames, speakers) bool
    -> (profiles (speakers, N_MELS + 1), counts (speakers,)): each speaker's mean over the
    frames where it alone is active (log F0 over the voiced ones; NaN where there are none),
    and the number of those frames."""
    alone = active & (active.sum(1, keepdims=True) == 1)  # (frames, speakers)
    counts = alone.sum(0)
    profiles = np.full((active.shape[1], features.shape[1]), np.nan, dtype=np.float64)
    for k in np.flatnonzero(counts):
        x = features[alone[:, k]]
        profiles[k, :N_MELS] = x[:, :N_MELS].mean(0)
        f0 = x[:, N_MELS][~np.isnan(x[:, N_MELS])]
        if len(f0):
            profiles[k, N_MELS] = f0.mean()
    return profiles, counts


def turn_groups(
    features: np.ndarray,
    active: np.ndarray,
    alone: np.ndarray,
    max_cost: float,
    min_turn: int,
    min_group: int,
    f0_weight: float,
) -> np.ndarray | None:
    """Group the turns of one local speaker by voice.

    features (frames, N_MELS + 1) from :func:`voice_frames`; active (frames,) bool: where the
    speaker is active; alone (frames,) bool: where it is the only one. A turn is a run of
    active frames; turns with at least ``min_turn`` frames alone are pooled bottom-up (Ward's
    criterion on the profile vector ``[log-mel, f0_weight x log F0]``: merging groups of
    ``na`` and ``nb`` frames with means ``a`` and ``b`` costs ``na nb / (na + nb) |a - b|^2``;
    F0 counts only where both are voiced) while the cheapest merge costs less than
    ``max_cost``; groups with fewer than ``min_group`` frames alone then join the group closest
    to them. -> (frames,) group of each frame (that of the nearest grouped turn), or None
    when the turns stay one group."""
    turns = _turns(active, alone, min_turn)
    if len(turns) < 2:
        return None
    groups = _TurnGroups.of_turns(features, alone, turns, f0_weight)
    groups.merge_below(max_cost)
    groups.absorb_smaller_than(min_group)
    alive = groups.alive()
    if len(alive) < 2:
        return None
    label = np.empty(len(turns), dtype=np.int64)  # (turns,) group of each turn
    for g, i in enumerate(alive):
        label[groups.members[i]] = g
    return label[_nearest_turn(turns, len(active))]


def _turns(active: np.ndarray, alone: np.ndarray, min_turn: int) -> list[tuple[int, int]]:
    """(start, end) frames of the runs of ``active`` with at least ``min_turn`` frames alone."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    runs = zip(edges[::2], edges[1::2], strict=True)
    return [(s, e) for s, e in runs if alone[s:e].sum() >= min_turn]


def _nearest_turn(turns: list[tuple[int, int]], num_frames: int) -> np.ndarray:
    """(frames,) index of the turn nearest to each frame (0 inside a turn; first on ties)."""
    starts = np.array([s for s, _ in turns])
    ends = np.array([e - 1 for _, e in turns])
    t = np.arange(num_frames)[:, None]
    gap = np.maximum(np.maximum(starts[None, :] - t, t - ends[None, :]), 0)  # (frames, turns)
    return np.argmin(gap, axis=1)


class _TurnGroups:
    """Groups of turns during :func:`turn_groups`' clustering: sums over the frames alone.

    Group ``i`` holds the turns ``members[i]`` (empty once merged into another); ``mel``
    (groups, N_MELS) and ``frames`` (groups,) sum the log-mel and count the frames alone,
    ``f0`` and ``voiced`` (groups,) sum ``f0_weight x log F0`` and count the voiced ones."""

    def __init__(self, mel: np.ndarray, frames: np.ndarray, f0: np.ndarray, voiced: np.ndarray):
        self.mel, self.frames, self.f0, self.voiced = mel, frames, f0, voiced
        self.members = [[i] for i in range(len(frames))]

    @classmethod
    def of_turns(
        cls,
        features: np.ndarray,
        alone: np.ndarray,
        turns: list[tuple[int, int]],
        f0_weight: float,
    ) -> _TurnGroups:
        """One group per turn, from its frames alone."""
        mel = np.zeros((len(turns), N_MELS))
        frames, f0, voiced = np.zeros(len(turns)), np.zeros(len(turns)), np.zeros(len(turns))
        for i, (s, e) in enumerate(turns):
            x = features[s:e][alone[s:e]]  # (frames alone, N_MELS + 1)
            mel[i], frames[i] = x[:, :N_MELS].sum(0), len(x)
            pitch = x[:, N_MELS][~np.isnan(x[:, N_MELS])]
            f0[i], voiced[i] = f0_weight * pitch.sum(), len(pitch)
        return cls(mel, frames, f0, voiced)

    def alive(self) -> list[int]:
        return [i for i, m in enumerate(self.members) if m]

    def cost(self, a: int, b: int, pooled: bool = True) -> float:
        """Ward's cost of merging ``a`` and ``b`` (``pooled=False``: the squared distance)."""
        d = np.square(self.mel[a] / self.frames[a] - self.mel[b] / self.frames[b]).sum()
        if self.voiced[a] and self.voiced[b]:
            d += (self.f0[a] / self.voiced[a] - self.f0[b] / self.voiced[b]) ** 2
        if not pooled:
            return d
        return self.frames[a] * self.frames[b] / (self.frames[a] + self.frames[b]) * d

    def merge(self, a: int, b: int) -> None:
        """Group ``b`` joins group ``a``."""
        self.mel[a] += self.mel[b]
        self.frames[a] += self.frames[b]
        self.f0[a] += self.f0[b]
        self.voiced[a] += self.voiced[b]
        self.members[a] += self.members[b]
        self.members[b] = []

    def merge_below(self, max_cost: float) -> None:
        """Merge the cheapest pair while it costs less than ``max_cost``."""
        while True:
            alive = self.alive()
            pairs = [(self.cost(a, b), a, b) for i, a in enumerate(alive) for b in alive[i + 1 :]]
            if not pairs or min(pairs)[0] >= max_cost:
                return
            self.merge(*min(pairs)[1:])

    def absorb_smaller_than(self, min_group: int) -> None:
        """The smallest group under ``min_group`` frames joins the closest one, until none is."""
        while True:
            alive = self.alive()
            small = [i for i in alive if self.frames[i] < min_group]
            if len(alive) < 2 or not small:
                return
            a = min(small, key=lambda i: self.frames[i])
            others = (i for i in alive if i != a)
            self.merge(min(others, key=lambda i: self.cost(i, a, pooled=False)), a)
