"""On-disk cache of a frozen frontend's states: WavLM with ``freeze: all``, or CAM++.

With a frozen WavLM only the layer weights of the frontend train; what they weigh, the
layer-normalised hidden states averaged to the diarization frame rate
(:meth:`~diarize.features.wavlm.WavLMFrontend.layer_states`, ``(num_layers + 1, frames, dim)``
per chunk), never changes. They are computed once per dataset and stored as one ``.npy``
array ``(chunks, num_layers + 1, chunk_frames, dim)`` (tail chunks zero-padded) plus a
``.json`` that describes it, both named by the cache key. Layer norm comes before the
averaging in time, so the states are cached after both: mixing them is exactly what the
frontend computes (a weighted sum commutes with the average; the layer norm would not).

The key is a hash of everything the states depend on: the WavLM weights (a content hash of
the state dict, so a changed checkpoint file, another checkpoint or another random init all
give another key), the frontend settings (shape, kept layers, frame shift, sample rate,
waveform normalisation), the storage dtype and the chunks (recording id, audio file path,
size and mtime, first frame, frame count). A stale cache is never read: it just is not found.

Storage is float16 by default: the states are layer-normalised (values of order 1), so the
rounding error is 2e-4 relative (1e-4 on the mixed features, tiny and base shapes), below what
moves a training run: losses agree to 1e-6 over two epochs (tests/test_feature_cache.py).
Each chunk is computed alone (chunks of equal length are batched), i.e. as inference sees it;
a batch of the uncached path that pads a short tail chunk differs slightly (WavLM Base's
GroupNorm runs over the padding), full chunks are identical.

A base-size WavLM stores 13 x 768 values per frame: 8-s chunks at 80 ms take 2 MB each in
float16, ~0.9 GB per hour of audio. Under ``torchrun`` every process builds a missing cache
(same content, atomic rename); build it once beforehand with one process to save the time.

The frozen CAM++ frontend (:mod:`diarize.features.campplus`) has nothing trainable: its
frame-level features are its whole output, stored the same way with one "layer",
``(chunks, 1, chunk_frames, 512)`` (37 MB per hour of audio at 100 ms), keyed by a hash of the
CAM++ weights and its frame shift. They travel under the same item / batch key as WavLM's.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from diarize.data.dataset import ChunkDataset, collate
from diarize.features.campplus import CAMPPlusFrontend
from diarize.features.wavlm import WavLMFrontend
from diarize.utils import DiarizeError

CACHE_VERSION = 1  # bump when what is stored changes
STATES_KEY = "wavlm_states"  # item / batch key of the cached states (CAM++'s too)
Cacheable = WavLMFrontend | CAMPPlusFrontend  # frozen ones: see cached_dataset


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
        flat = t.reshape(-1)  # 0-d tensors (batch norms' counters) cannot be viewed as bytes
        digest.update(flat.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def frontend_identity(frontend: Cacheable) -> dict[str, Any]:
    """What a frozen frontend's layer states depend on."""
    if isinstance(frontend, CAMPPlusFrontend):
        return {
            "kind": "campplus",
            "frame_shift": frontend.frame_shift,
            "samples_per_frame": frontend.samples_per_frame,
            "weights": weights_digest(frontend.campplus),
        }
    return {
        "shape": frontend.shape,
        "num_layers": frontend.num_layers,
        "frame_shift": frontend.frame_shift,
        "samples_per_frame": frontend.samples_per_frame,
        "weights": weights_digest(frontend.wavlm),  # normalize_waveform is a frontend buffer
        "normalize_waveform": bool(frontend.normalize_waveform),
    }


def chunks_identity(dataset: ChunkDataset) -> list[list[Any]]:
    """``[uri, path, size, mtime_ns, start_frame, num_frames]`` of every chunk."""
    files = {}
    for rec in dataset.recordings:
        st = os.stat(rec.path)
        files[rec.id] = [rec.id, str(Path(rec.path).resolve()), st.st_size, st.st_mtime_ns]
    return [
        files[dataset.recordings[c.recording].id] + [c.start_frame, c.num_frames]
        for c in dataset.chunks
    ]


def cache_key(frontend: Cacheable, dataset: ChunkDataset, dtype: str = "float16") -> str:
    """Hex key naming the cache of ``dataset``'s chunks through ``frontend``."""
    identity = {
        "version": CACHE_VERSION,
        "dtype": dtype,
        "sample_rate": dataset.sample_rate,
        "frontend": frontend_identity(frontend),
        "chunks": chunks_identity(dataset),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


@torch.inference_mode()
def compute_states(
    frontend: Cacheable, dataset: ChunkDataset, out: np.ndarray, batch_size: int = 16
) -> None:
    """Fill ``out`` (chunks, num_layers + 1, chunk_frames, dim) with each chunk's layer
    states (CAM++: ``num_layers + 1`` is 1); chunks of equal length are batched, so none is
    padded."""
    device = next(frontend.parameters()).device
    by_length: dict[int, list[int]] = {}
    for i, chunk in enumerate(dataset.chunks):
        by_length.setdefault(chunk.num_frames, []).append(i)
    was_training = frontend.training
    frontend.eval()
    try:
        for frames, indices in by_length.items():
            for start in range(0, len(indices), batch_size):
                group = indices[start : start + batch_size]
                batch = collate([dataset[i] for i in group])
                states = frontend.frozen_states(
                    batch["wave"].to(device), batch["lengths"].to(device)
                )  # (batch, num_layers + 1, frames, dim)
                out[group, :, :frames] = states.cpu().numpy().astype(out.dtype)
    finally:
        frontend.train(was_training)


class CachedStates(Dataset):
    """A :class:`ChunkDataset` whose items also carry ``wavlm_states`` (num_layers + 1,
    frames, dim) float16, read from the cache ``path`` (opened lazily, so DataLoader
    workers each map it)."""

    def __init__(self, dataset: ChunkDataset, path: Path) -> None:
        self.dataset, self.path = dataset, Path(path)
        self._states: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self._states is None:
            self._states = np.load(self.path, mmap_mode="r")
        item = self.dataset[i]
        frames = self.dataset.chunks[i].num_frames
        item[STATES_KEY] = torch.from_numpy(np.array(self._states[i, :, :frames]))
        return item


def cached_dataset(
    dataset: ChunkDataset,
    frontend: Cacheable,
    cache_dir: str | os.PathLike,
    batch_size: int = 16,
    dtype: str = "float16",
) -> CachedStates:
    """``dataset`` with cached layer states: read from ``cache_dir`` when its key is there,
    computed (with ``frontend``, on its device) and written there otherwise."""
    frozen = isinstance(frontend, CAMPPlusFrontend) or (
        isinstance(frontend, WavLMFrontend) and frontend.freeze == "all"
    )
    if not frozen:
        raise DiarizeError(
            "train.feature_cache needs a frozen frontend (features.kind=campplus, or wavlm "
            f"with features.wavlm.freeze=all); got {type(frontend).__name__}"
            f"{'' if not isinstance(frontend, WavLMFrontend) else f' with freeze={frontend.freeze!r}'}"
        )
    if dtype not in ("float16", "float32"):
        raise ValueError(f"cache dtype must be float16 or float32, got {dtype!r}")
    cache_dir = Path(cache_dir)
    key = cache_key(frontend, dataset, dtype)
    path = cache_dir / f"{key}.npy"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        _build(frontend, dataset, path, batch_size, dtype)
    return CachedStates(dataset, path)


def _build(
    frontend: Cacheable, dataset: ChunkDataset, path: Path, batch_size: int, dtype: str
) -> None:
    shape = (len(dataset), frontend.cached_layers, dataset.chunk_frames, frontend.out_dim)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    try:
        if len(dataset):
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            compute_states(frontend, dataset, out, batch_size)
            out.flush()
            del out
        else:
            np.save(tmp, np.zeros(shape, dtype))
        description = {  # for people: what the key stands for
            "version": CACHE_VERSION,
            "dtype": dtype,
            "shape": list(shape),  # (chunks, num_layers + 1, chunk_frames, dim)
            "recordings": sorted({r.id for r in dataset.recordings})[:5],
            "num_recordings": len(dataset.recordings),
            "frontend": frontend_identity(frontend),
        }
        path.with_suffix(".json").write_text(json.dumps(description, indent=1) + "\n")
        os.replace(tmp, path)  # the .npy appears last, complete
    finally:
        tmp.unlink(missing_ok=True)
