import numpy as np
import pytest
import soundfile as sf

from diarize.audio import audio_info, iter_blocks, load_audio, resample, write_audio
from diarize.utils import DiarizeError


def tone(freq: float, seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_reads_formats_at_native_rate(tmp_path, ext):
    x = tone(440, 1.0, 16000)
    path = tmp_path / f"a.{ext}"
    sf.write(path, x, 16000)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    tol = 1e-3 if ext != "ogg" else 0.1  # ogg is lossy
    assert np.abs(y - x).max() < tol


def test_stereo_is_mixed_down_and_resampled(tmp_path):
    left, right = tone(300, 2.0, 44100), tone(300, 2.0, 44100) * 0.0
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 44100)
    y = load_audio(tmp_path / "s.wav", sample_rate=16000)
    assert len(y) == 32000
    ref = tone(300, 2.0, 16000) * 0.5
    assert np.abs(y[1000:-1000] - ref[1000:-1000]).max() < 1e-2


def test_offset_and_duration(tmp_path):
    x = np.arange(16000 * 3, dtype=np.float32) / 1e5
    sf.write(tmp_path / "r.wav", x, 16000, subtype="FLOAT")
    y = load_audio(tmp_path / "r.wav", offset=1.0, duration=0.5)
    np.testing.assert_array_equal(y, x[16000:24000])


@pytest.mark.parametrize("sr", [16000, 8000, 44100])
def test_blocks_join_to_whole_file(tmp_path, sr, rng):
    x = rng.standard_normal(int(sr * 5.3)).astype(np.float32) * 0.1
    sf.write(tmp_path / "n.wav", x, sr, subtype="FLOAT")
    whole = load_audio(tmp_path / "n.wav")
    joined = np.concatenate(list(iter_blocks(tmp_path / "n.wav", 1.0)))
    assert len(joined) == len(whole) == len(resample(x, sr, 16000))
    assert np.abs(joined - whole).max() < 1e-5


def test_blocks_have_requested_size(tmp_path):
    sf.write(tmp_path / "n.wav", np.zeros(16000 * 3 + 100, np.float32), 16000)
    sizes = [len(b) for b in iter_blocks(tmp_path / "n.wav", 1.0)]
    assert sizes == [16000, 16000, 16000, 100]


def test_info(tmp_path):
    sf.write(tmp_path / "x.wav", np.zeros((8000, 2), np.float32), 8000)
    info = audio_info(tmp_path / "x.wav")
    assert (info.sample_rate, info.num_samples, info.channels, info.duration) == (
        8000,
        8000,
        2,
        1.0,
    )


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DiarizeError, match="nope.wav: no such file"):
        load_audio(tmp_path / "nope.wav")


def test_not_audio_names_it(tmp_path):
    (tmp_path / "t.wav").write_text("this is text, not audio\n" * 10)
    with pytest.raises(DiarizeError, match="t.wav: not a readable audio file"):
        load_audio(tmp_path / "t.wav")


def test_zero_byte_file(tmp_path):
    (tmp_path / "z.wav").write_bytes(b"")
    with pytest.raises(DiarizeError, match="z.wav"):
        audio_info(tmp_path / "z.wav")


def test_empty_audio(tmp_path):
    sf.write(tmp_path / "e.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(DiarizeError, match="e.wav: contains no audio samples"):
        load_audio(tmp_path / "e.wav")


def test_write_audio_round_trip(tmp_path):
    x = tone(200, 0.5, 16000)
    write_audio(tmp_path / "o.flac", x)
    assert np.abs(load_audio(tmp_path / "o.flac") - x).max() < 1e-3
    assert [p.name for p in tmp_path.iterdir()] == ["o.flac"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_rejected_with_their_position(tmp_path, bad):
    x = np.stack([tone(200, 3.0, 8000), tone(300, 3.0, 8000)], axis=1)
    x[20000, 1] = bad  # 2.5 s into the file, second channel
    x[23000, 0] = bad  # a later one: not the one reported
    path = tmp_path / "f.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    where = rf"f.wav: sample 20000 \(at 2.500 s, channel 2\) is {bad}: non-finite"
    with pytest.raises(DiarizeError, match=where):
        load_audio(path)  # resampled to 16 kHz, whole file
    with pytest.raises(DiarizeError, match=where):
        list(iter_blocks(path, block_seconds=1.0))  # found in the third block, not before
    assert len(next(iter_blocks(path, block_seconds=1.0))) == 16000


def test_all_nan_file_is_an_error_not_silence(tmp_path):
    sf.write(tmp_path / "n.wav", np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(DiarizeError, match=r"sample 0 \(at 0.000 s, channel 1\) is nan"):
        load_audio(tmp_path / "n.wav")
