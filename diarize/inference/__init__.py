"""Inference on recordings of any length, in four stages, one module each.

EEND-EDA is trained on short chunks (``TrainConfig.chunk_frames``) and decodes its own
speakers in each chunk, in its own order. A long recording is therefore diarized as follows
(:class:`diarize.Diarizer` runs the stages; each module can be used alone):

1. :mod:`~diarize.inference.windows`: the frame grid, overlapping windows of the training
   chunk length (hop: half a window), cut from audio streamed block by block, so memory
   does not grow with the recording beyond the per-window outputs, which are small.
2. :mod:`~diarize.inference.local`: windows in batches through ``model.infer``; each keeps
   its posteriors, attractors and activity masks, its local speakers split by voice when
   their turns sound like several persons, and a voice profile and speaker embedding per
   local speaker heard alone.
3. :mod:`~diarize.inference.linking`: the windows' local speakers become global ones by
   constrained agglomerative clustering of their embeddings, voices or attractors, mixed
   with the agreement of their activities where windows overlap; speakers active together
   in one window never merge.
4. :mod:`~diarize.inference.aggregation`: posteriors stitched over the windows (weighted
   towards each window's centre), thresholded, median-filtered, cleaned of short turns and
   pauses; an overlap-aware and an exclusive ``Annotation``.

Frame ``i`` of a recording stands for ``[i * frame_shift, (i + 1) * frame_shift)``.
"""

from diarize.inference.aggregation import (
    Result,
    aggregate,
    exclusive,
    postprocess,
    stitch,
    talk_time,
)
from diarize.inference.linking import SpeakerCount, constrained_ahc, link, voice_similarity
from diarize.inference.local import (
    WindowOutput,
    analyse_windows,
    feature_stream,
    frontend_blocks,
    frozen_frontend,
    split_voices,
)
from diarize.inference.windows import (
    AudioSource,
    FrameGrid,
    Window,
    frame_grid,
    open_audio,
    stream_windows,
    window_frames,
    window_starts,
)

__all__ = [
    "AudioSource", "FrameGrid", "Result", "SpeakerCount", "Window", "WindowOutput", "aggregate",
    "analyse_windows", "feature_stream", "constrained_ahc", "exclusive", "frame_grid",
    "frontend_blocks", "frozen_frontend", "link", "open_audio",
    "postprocess", "split_voices", "stitch", "stream_windows", "talk_time",
    "voice_similarity", "window_frames", "window_starts",
]  # fmt: skip
