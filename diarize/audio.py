"""Audio input: read any file soundfile reads, mix to mono, resample, stream long files.

All of diarize works on mono float32 audio at :data:`SAMPLE_RATE` unless a model asks for
another rate. Long recordings are read block by block (:func:`iter_blocks`), so a two-hour
meeting never has to be decoded whole.

Non-finite samples (NaN, +-inf, which only float files can hold) are rejected, not cleaned:
a :class:`DiarizeError` names the first one's position. Cleaning them (to 0) would hide a
broken file, and a single NaN spreads through resampling and features over whole windows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from diarize.utils import DiarizeError

SAMPLE_RATE = 16000  # Hz, what the models are trained on
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".sph", ".aiff", ".aif")

# Samples of context read on each side of a block before resampling, then dropped, so that
# blocks resampled one by one join without edge artefacts.
_RESAMPLE_MARGIN = 1024


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int  # Hz, as stored in the file
    num_samples: int  # per channel, as stored in the file
    channels: int

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_samples / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """Header of an audio file; a missing, unreadable or empty file is a :class:`DiarizeError`."""
    path = Path(path)
    if not path.exists():
        raise DiarizeError(f"{path}: no such file")
    if path.is_dir():
        raise DiarizeError(f"{path}: is a directory, not an audio file")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises several types for undecodable input
        raise DiarizeError(f"{path}: not a readable audio file ({_reason(e)})") from None
    if info.frames <= 0:
        raise DiarizeError(f"{path}: contains no audio samples")
    return AudioInfo(str(path), int(info.samplerate), int(info.frames), int(info.channels))


def resample(wave: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Polyphase resampling of a (samples,) array; identity when the rates agree."""
    if orig_sr == new_sr:
        return wave
    g = math.gcd(orig_sr, new_sr)
    return resample_poly(wave, new_sr // g, orig_sr // g).astype(np.float32, copy=False)


def load_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Read ``duration`` seconds from ``offset`` (whole file by default) as mono float32
    at ``sample_rate``. Shape ``(samples,)``."""
    info = audio_info(path)
    total = _num_output_samples(info.num_samples, info.sample_rate, sample_rate)
    start = min(total, max(0, int(round(offset * sample_rate))))
    stop = total if duration is None else min(total, start + int(round(duration * sample_rate)))
    return _read_resampled(info, start, stop, sample_rate)


def iter_blocks(
    path: str | Path, block_seconds: float, sample_rate: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Yield consecutive mono blocks of ``block_seconds`` (the last one shorter) at
    ``sample_rate``; concatenated they equal :func:`load_audio` of the whole file up to
    float round-off. Memory stays at one block whatever the file's length."""
    if block_seconds <= 0:
        raise ValueError(f"block_seconds must be positive, got {block_seconds}")
    info = audio_info(path)
    total = _num_output_samples(info.num_samples, info.sample_rate, sample_rate)
    block = max(1, int(round(block_seconds * sample_rate)))
    for start in range(0, total, block):
        yield _read_resampled(info, start, min(start + block, total), sample_rate)


def _num_output_samples(n: int, orig_sr: int, new_sr: int) -> int:
    return -(-n * new_sr // orig_sr)  # ceil, as resample_poly does


def _read_resampled(info: AudioInfo, start: int, stop: int, sample_rate: int) -> np.ndarray:
    """Output samples [start, stop) of the whole file mixed to mono and resampled to
    ``sample_rate``, reading only the source samples they need (plus a filter margin)."""
    g = math.gcd(info.sample_rate, sample_rate)
    up, down = sample_rate // g, info.sample_rate // g
    # Source window [lo, hi): lo is a multiple of `down`, so resampled sample i of the
    # window is sample lo * up / down + i of the whole file.
    margin = 0 if up == down else _RESAMPLE_MARGIN
    lo = max(0, (start * down // up - margin) // down * down)
    hi = min(info.num_samples, -(-stop * down // up) + margin)
    try:
        with sf.SoundFile(info.path) as f:
            f.seek(lo)
            data = f.read(hi - lo, dtype="float32", always_2d=True)
    except Exception as e:
        raise DiarizeError(f"{info.path}: cannot decode audio ({_reason(e)})") from None
    _check_finite(info, data, lo)
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    wave = resample(wave, info.sample_rate, sample_rate)
    first = lo * up // down
    return np.ascontiguousarray(wave[start - first : stop - first], dtype=np.float32)


def _check_finite(info: AudioInfo, data: np.ndarray, first: int) -> None:
    """A :class:`DiarizeError` naming the first NaN or infinite value of ``data`` (samples,
    channels), which starts at sample ``first`` of the file. :func:`iter_blocks` reads in
    order, so there the first one found is the first of the file."""
    bad = ~np.isfinite(data)
    if not bad.any():
        return
    row, channel = np.argwhere(bad)[0]
    sample = first + int(row)
    raise DiarizeError(
        f"{info.path}: sample {sample} (at {sample / info.sample_rate:.3f} s, channel "
        f"{channel + 1}) is {data[row, channel]}: non-finite samples (NaN/inf) are not audio; "
        "repair or re-export the file"
    )


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio atomically; the format follows the extension (wav, flac...)."""
    from diarize.utils import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.asarray(wave, dtype=np.float32), sample_rate, format=_format_of(path))


def _format_of(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    return {"wav": "WAV", "flac": "FLAC", "ogg": "OGG"}.get(ext, "WAV")


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def _reason(e: Exception) -> str:
    msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return msg.removeprefix("Error opening ").strip()
