"""Augmentation of simulated recordings: make a few hundred voices look like many recordings.

Everything here acts on ``(samples,)`` float64 waves at :data:`~diarize.audio.SAMPLE_RATE` and
draws from the generator it is given, so a mixture stays a function of its seed. Applied
when a conversation is rendered (``diarize simulate``), once per recording: on this CPU that
is far cheaper than doing it per training chunk on the fly (README, "Data").

- :func:`channel` -- one recording channel per mixture: random equalisation (peaking
  biquads), band limits, a telephone band (8 kHz, 300-3400 Hz, mu-law) or a codec round trip
  (Ogg Vorbis / MP3 at a low quality, through libsndfile);
- :func:`speed` -- a voice played faster or slower (pitch, formants and tempo together, as
  ``sox speed``): the simulator's ``voice_shift`` gives each speaker of a recording its own
  factor, so one person lends many voices;
- :func:`add_events` -- non-speech sounds (effects, music loops) at random places, over
  speech and pauses alike; they carry no label, so the model learns that they are not speech.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from diarize.audio import SAMPLE_RATE

CHANNELS = ("eq", "band", "telephone", "codec")


def speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """``wave (samples,)`` played at ``factor`` times its speed: ``samples / factor`` samples
    (its samples read as recorded at ``factor`` x the rate, resampled back). A factor on a
    0.01 grid keeps the polyphase filter short."""
    from diarize.audio import resample

    return resample(wave, int(round(SAMPLE_RATE * factor)), SAMPLE_RATE)


def peaking_eq(wave: np.ndarray, freq: float, gain_db: float, q: float) -> np.ndarray:
    """One peaking-EQ biquad (Audio EQ Cookbook) at ``freq`` Hz."""
    from scipy.signal import lfilter

    a_gain = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq / SAMPLE_RATE
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * a_gain, -2 * np.cos(w0), 1 - alpha * a_gain]
    a = [1 + alpha / a_gain, -2 * np.cos(w0), 1 - alpha / a_gain]
    return lfilter(np.array(b) / a[0], np.array(a) / a[0], wave)


def random_eq(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """2-4 peaking filters, 100 Hz-6 kHz, +-9 dB."""
    for _ in range(int(rng.integers(2, 5))):
        freq = float(np.exp(rng.uniform(np.log(100), np.log(6000))))
        wave = peaking_eq(wave, freq, float(rng.uniform(-9, 9)), float(rng.uniform(0.5, 2.0)))
    return wave


def band_limit(wave: np.ndarray, low: float, high: float) -> np.ndarray:
    """Butterworth band-pass ``low``-``high`` Hz (order 4, zero phase)."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(
        4, [low, min(high, 0.95 * SAMPLE_RATE / 2)], "bandpass", fs=SAMPLE_RATE, output="sos"
    )
    return sosfiltfilt(sos, wave)


def telephone(wave: np.ndarray) -> np.ndarray:
    """Narrow band: 300-3400 Hz at 8 kHz, 8-bit mu-law, back to 16 kHz."""
    from scipy.signal import resample_poly

    narrow = resample_poly(band_limit(wave, 300, 3400), 1, 2)
    peak = np.abs(narrow).max() + 1e-9
    mu = 255.0
    x = narrow / peak
    coded = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127) / 127
    decoded = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu * peak
    return resample_poly(decoded, 2, 1)[: wave.size]


def codec(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Round trip through Ogg Vorbis or MP3 at a low quality (libsndfile, in memory)."""
    import soundfile as sf

    fmt, subtype = [("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")][int(rng.integers(2))]
    peak = np.abs(wave).max() + 1e-9
    buf = io.BytesIO()
    try:
        level = float(rng.uniform(0.6, 0.95))  # 1 = smallest file, lowest quality
        with sf.SoundFile(
            buf, "w", SAMPLE_RATE, 1, subtype, format=fmt, compression_level=level
        ) as f:
            scaled = (wave / peak * 0.9).astype(np.float32)
            for start in range(0, scaled.size, 16384):  # one long write crashes libvorbis
                f.write(scaled[start : start + 16384])
        buf.seek(0)
        decoded, _ = sf.read(buf, dtype="float64")
    except (RuntimeError, sf.LibsndfileError):  # a libsndfile without this codec
        return wave
    out = np.zeros_like(wave)
    n = min(out.size, decoded.size)
    out[:n] = decoded[:n] * peak / 0.9
    return out


def channel(wave: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one channel ``kind`` of :data:`CHANNELS` to a whole recording."""
    if kind == "eq":
        return random_eq(wave, rng)
    if kind == "band":
        return band_limit(wave, float(rng.uniform(50, 300)), float(rng.uniform(3400, 8000)))
    if kind == "telephone":
        return telephone(wave)
    if kind == "codec":
        return codec(wave, rng)
    raise ValueError(f"unknown channel {kind!r}; choose from {CHANNELS}")


def add_events(
    wave: np.ndarray,
    events: Sequence[np.ndarray],
    rate_per_minute: float,
    snr_range: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Add non-speech ``events`` (waves) at Poisson-random places, each at an SNR drawn from
    ``snr_range`` against the recording's mean power (the whole event if it is shorter than
    10 s, else a random 1-10 s stretch of it)."""
    if not events or rate_per_minute <= 0:
        return wave
    count = int(rng.poisson(rate_per_minute * wave.size / SAMPLE_RATE / 60))
    power = float(np.mean(wave**2)) or 1e-4
    out = wave.copy()
    for _ in range(count):
        event = events[int(rng.integers(len(events)))]
        length = min(event.size, int(rng.uniform(1.0, 10.0) * SAMPLE_RATE), out.size)
        start_in = int(rng.integers(event.size - length + 1))
        piece = event[start_in : start_in + length]
        gain = np.sqrt(power / (np.mean(piece**2) + 1e-12) / 10 ** (rng.uniform(*snr_range) / 10))
        at = int(rng.integers(out.size - length + 1))
        out[at : at + length] += gain * piece
    return out
