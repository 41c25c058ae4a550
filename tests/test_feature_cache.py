"""Feature cache of a frozen WavLM: same features as computing them, keys that change with
the weights, the settings and the audio, and training that does not notice the cache."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_experiment, write_synthetic_set

from diarize.checkpoint import load_checkpoint, load_model
from diarize.config import FeatureConfig, WavLMConfig
from diarize.data.dataset import ChunkDataset, collate
from diarize.data.kaldi import load_diarization_set
from diarize.features import build_frontend, cache
from diarize.features.cache import cache_key, cached_dataset
from diarize.train import train
from diarize.utils import DiarizeError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # 12 s recordings = 3 full chunks of 40 x 100 ms each: no padded batch anywhere
    return write_synthetic_set(tmp_path_factory.mktemp("data"), num_recordings=3, seconds=12.0)


def frontend(seed: int = 0, **wavlm):
    torch.manual_seed(seed)
    wavlm = {"shape": "tiny", "frame_shift": 0.1, "freeze": "all", **wavlm}
    return build_frontend(FeatureConfig(kind="wavlm", wavlm=WavLMConfig(**wavlm)))


def chunks(data, fe, chunk_frames: int = 40) -> ChunkDataset:
    return ChunkDataset(load_diarization_set(str(data)), fe, chunk_frames=chunk_frames)


def test_mixing_pooled_states_is_the_weighted_sum_of_the_layers():
    fe = frontend(frame_shift=0.08).eval()
    with torch.no_grad():
        fe.layer_logits.copy_(torch.tensor([0.3, -1.0, 2.0]))
        wave, lengths = torch.randn(2, 16000), torch.tensor([16000, 9000])
        feats, frame_lengths = fe(wave, lengths)
        hidden, _ = fe.hidden_states(wave, lengths)
        w = fe.layer_weights()
        x = sum(wi * F.layer_norm(h, h.shape[-1:]) for wi, h in zip(w, hidden, strict=True))
        x = x[:, :48].reshape(2, 12, 4, 64).mean(2)  # (batch, frames, dim) at 80 ms
    assert frame_lengths.tolist() == [12, 7]  # 9000 // 1280
    torch.testing.assert_close(feats[0], x[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(feats[1, :7], x[1, :7], rtol=1e-5, atol=1e-6)
    assert (feats[1, 7:] == 0).all()


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-6), ("float16", 1e-3)])
def test_cache_hit_gives_the_computed_states(tmp_path, data, monkeypatch, dtype, tolerance):
    fe = frontend()
    dataset = chunks(data, fe)
    built = cached_dataset(dataset, fe, tmp_path, batch_size=4, dtype=dtype)
    assert len(built) == len(dataset) == 9
    assert len(list(tmp_path.glob("*.npy"))) == 1 and len(list(tmp_path.glob("*.json"))) == 1

    def no_compute(*args, **kwargs):
        raise AssertionError("a cache hit must not run WavLM")

    monkeypatch.setattr(cache, "compute_states", no_compute)
    hit = cached_dataset(dataset, fe, tmp_path, dtype=dtype)
    for i in (0, 4, 8):
        item = dataset[i]
        with torch.no_grad():
            expected, _ = fe.eval().layer_states(item["wave"][None], torch.tensor([64000]))
        states = hit[i]["wavlm_states"]
        assert states.shape == (3, 40, 64) and str(states.dtype) == f"torch.{dtype}"
        error = (states.float() - expected[0]).norm() / expected[0].norm()
        assert error < tolerance, (i, error.item())
        assert torch.equal(hit[i]["labels"], item["labels"])
    batch = collate([hit[i] for i in range(3)])
    assert batch["wavlm_states"].shape == (3, 3, 40, 64)  # (batch, layers + 1, frames, dim)


def test_the_key_changes_with_weights_settings_and_audio(data):
    fe = frontend()
    dataset = chunks(data, fe)
    key = cache_key(fe, dataset)
    assert cache_key(frontend(), chunks(data, frontend())) == key  # same everything: same key
    assert cache_key(frontend(seed=1), dataset) != key  # other weights
    changed = frontend()
    with torch.no_grad():
        changed.wavlm.encoder.transformer.layers[1].feed_forward.output_dense.bias[0] += 1e-3
    assert cache_key(changed, dataset) != key  # one weight of one layer
    assert cache_key(frontend(layers=1), dataset) != key
    other_shift = frontend(frame_shift=0.08)
    assert cache_key(other_shift, chunks(data, other_shift, 50)) != key
    assert cache_key(fe, chunks(data, fe, chunk_frames=30)) != key
    assert cache_key(fe, dataset, dtype="float32") != key
    wav = next(data.glob("*.wav"))
    st = wav.stat()
    os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the audio was rewritten
    try:
        assert cache_key(fe, chunks(data, fe)) != key
    finally:
        os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_the_cache_needs_a_frozen_wavlm(tmp_path, data):
    fe = frontend(freeze="cnn")
    with pytest.raises(DiarizeError, match="freeze='cnn'"):
        cached_dataset(chunks(data, fe), fe, tmp_path)
    with pytest.raises(DiarizeError, match="freeze=all"), fe.precomputed(torch.zeros(1)):
        pass


def test_precomputed_states_must_fit_the_wave():
    fe = frontend()  # 2 layers: 3 states; 100 ms frames: 10 per second
    wave = torch.zeros(2, 16000)
    with fe.precomputed(torch.zeros(2, 4, 10, 64)), pytest.raises(ValueError, match="expected"):
        fe(wave, torch.tensor([16000, 16000]))
    states = torch.randn(2, 3, 10, 64)
    with fe.precomputed(states):
        feats, lengths = fe(wave, torch.tensor([16000, 8000]))
    assert feats.shape == (2, 10, 64) and lengths.tolist() == [10, 5]
    torch.testing.assert_close(feats[0], fe.mix(states)[0])
    assert (feats[1, 5:] == 0).all()  # padded frames are zero whatever was stored there
    assert fe._precomputed is None  # and WavLM runs again after the block


def wavlm_config(tmp_path, data, out: str, **train):
    features = {"kind": "wavlm", "wavlm": {"shape": "tiny", "frame_shift": 0.1, "freeze": "all"}}
    return tiny_experiment(tmp_path, data, out, features=features, amp=False, **train)


@pytest.mark.slow
def test_training_with_the_cache_equals_training_without(tmp_path, data):
    plain = train(wavlm_config(tmp_path, data, "plain"))
    cached = train(wavlm_config(tmp_path, data, "cached", feature_cache=str(tmp_path / "cache")))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # train and dev: the same chunks
    a = load_checkpoint(plain / "checkpoint_epoch2.pt")
    b = load_checkpoint(cached / "checkpoint_epoch2.pt")
    assert a["step"] == b["step"] == 6
    for x, y in zip(a["history"], b["history"], strict=True):
        for k in ("train_loss", "dev_loss"):
            assert y[k] == pytest.approx(x[k], rel=1e-4), k
        assert y["dev_der"] == pytest.approx(x["dev_der"], abs=0.1)
    # Parameters are compared through what they compute: Adam turns gradients that are zero
    # up to rounding (e.g. the attention's key bias) into full-size steps of random sign.
    wave = chunks(data, frontend())[0]["wave"]  # (samples,): 4 s
    probs = [
        load_model(out / "checkpoint_epoch2.pt")[0].infer(wave)[0][0] for out in (plain, cached)
    ]
    torch.testing.assert_close(probs[1], probs[0], rtol=0, atol=1e-3)
    first = load_checkpoint(cached / "checkpoint_epoch1.pt")["model"]["frontend.layer_logits"]
    assert (b["model"]["frontend.layer_logits"] - first).abs().max() > 0  # the weights train


@pytest.mark.slow
def test_a_frozen_run_initialises_a_fine_tuned_one(tmp_path, data):
    frozen = train(
        wavlm_config(
            tmp_path, data, "frozen", epochs=1, dev_data="", feature_cache=str(tmp_path / "c")
        )
    )
    config = wavlm_config(
        tmp_path, data, "finetune", epochs=1, dev_data="", lr=0.0, scheduler="constant"
    )
    wavlm = replace(config.features.wavlm, freeze="cnn", grad_checkpointing=True)
    config = replace(config, features=replace(config.features, wavlm=wavlm))
    out = train(config, init=str(frozen / "checkpoint_epoch1.pt"))
    before = load_checkpoint(frozen / "checkpoint_epoch1.pt")["model"]
    after = load_checkpoint(out / "checkpoint_epoch1.pt")["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)  # lr 0: the frozen run's weights
