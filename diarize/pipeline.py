"""``Diarizer``: who spoke when in a recording of any length, from a checkpoint.

    from diarize import Diarizer

    diarizer = Diarizer.from_pretrained()  # the bundled model; or a checkpoint path
    result = diarizer("meeting.flac", num_speakers=None)
    for turn, _, speaker in result.annotation.itertracks(yield_label=True):
        print(f"{turn.start:.1f} {turn.end:.1f} {speaker}")

The CLI (``diarize run``, ``diarize evaluate``), ``bench/`` and the tools all go through
this class. It runs the four stages of :mod:`diarize.inference` and reports each to an
optional ``hook(stage, artefact, completed=None, total=None)``, as pyannote pipelines do:
``("windows", FrameGrid)``, ``("local", [WindowOutput] of one batch, completed, total)``
(counted in windows), ``("linking", assignment)`` and ``("aggregation", Result)``. With
``link.part_split_below`` on, the assignment is per column of the windows after the part
split (:func:`diarize.inference.parts.split_parts`), which may hold more columns.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diarize.audio import SAMPLE_RATE
from diarize.config import InferConfig, TrainConfig, with_fields
from diarize.inference import (
    AudioSource,
    FrameGrid,
    Result,
    SpeakerCount,
    WindowOutput,
    aggregate,
    analyse_windows,
    feature_stream,
    frame_grid,
    frontend_blocks,
    frozen_frontend,
    link,
    open_audio,
    stream_windows,
    window_frames,
)
from diarize.inference.embed import PretrainedEmbedder
from diarize.inference.parts import split_parts
from diarize.utils import DiarizeError, DiarizeWarning

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "default.pt"
Hook = Callable[..., None]  # hook(stage, artefact, completed=None, total=None)


class Diarizer:
    """A model, its speaker encoder (or None) and the inference settings, checked once."""

    def __init__(
        self,
        model,
        config: InferConfig | None = None,
        speaker_encoder=None,
        *,
        chunk_frames: int = TrainConfig.chunk_frames,
        sample_rate: int = SAMPLE_RATE,
        device: str = "cpu",
        embedding=None,
    ):
        """``model``: an EEND-EDA model (``frame_shift``, ``num_frames``, ``infer``);
        ``chunk_frames``: its training chunk, the default window; ``sample_rate``: the
        rate it takes; ``config``: default ``InferConfig()``; ``embedding``: a pretrained
        :class:`~diarize.embeddings.SpeakerEmbedding` to link with instead of
        ``speaker_encoder`` (:mod:`diarize.inference.embed`)."""
        config = config or InferConfig()
        window_frames(config, float(model.frame_shift), chunk_frames)  # fails here, not later
        if config.frontend_block:
            frozen_frontend(model)
        self.model, self.config, self.speaker_encoder = model, config, speaker_encoder
        self.chunk_frames, self.sample_rate, self.device = chunk_frames, sample_rate, device
        self.embedding = embedding

    @classmethod
    def from_pretrained(
        cls,
        checkpoint: str | os.PathLike | None = None,
        device: str = "cpu",
        embedding=None,
        **infer_overrides,
    ) -> Diarizer:
        """Read ``checkpoint`` once (default: the bundled model): model, speaker encoder and
        its ``InferConfig``, with ``infer_overrides`` (InferConfig fields; ``link`` may be a
        dict of LinkConfig fields) replacing the stored settings.

        ``embedding``: a pretrained speaker-embedding model to link with: a path or a name
        (:func:`diarize.embeddings.load_embedding`) or a loaded model. Default: the one the
        checkpoint carries (``tools/export_model.py --embedding``), if any; ``"none"``: the
        checkpoint's own speaker encoder (or voices) even so. The linking settings stored
        with a carried model, or those tuned for the kind of a given one
        (:data:`~diarize.inference.linking.PRETRAINED_LINKING`), apply under
        ``infer_overrides``."""
        from diarize.checkpoint import load_checkpoint, model_of, speaker_encoder_in

        if checkpoint is None and not DEFAULT_CHECKPOINT.exists():
            raise DiarizeError(
                f"no bundled model at {DEFAULT_CHECKPOINT}; give a checkpoint (diarize run --model CKPT)"
            )
        path = str(checkpoint or DEFAULT_CHECKPOINT)
        ckpt = load_checkpoint(path)
        model, exp = model_of(ckpt, path, device)
        pretrained, tuned = _pretrained_embedding(ckpt, path, embedding, device)
        config = with_fields(exp.infer, tuned, f"{path}: linking settings of its embedding")
        config = with_fields(config, infer_overrides, "inference settings")
        return cls(
            model, config, speaker_encoder_in(ckpt, path, device),
            chunk_frames=exp.train.chunk_frames, sample_rate=exp.features.sample_rate,
            device=device, embedding=pretrained,
        )  # fmt: skip

    def __call__(
        self,
        audio,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        hook: Hook | None = None,
        *,
        uri: str | None = None,
    ) -> Result:
        """Diarize ``audio``: a path (any format soundfile reads), or ``(waveform,
        sample_rate)`` (numpy or torch, any rate, ``(samples,)`` or with a channel axis).
        ``uri``: the recording id (default: the file's stem, or ``"waveform"``)."""
        count = SpeakerCount(num_speakers, min_speakers, max_speakers)
        return self.finish(self.analyse(audio, count.cap, hook, uri=uri), count, hook)

    def analyse(
        self, audio, max_speakers: int | None = None, hook: Hook | None = None, *, uri=None
    ) -> Analysis:
        """Stages 1 and 2 of a call: the windows of ``audio`` through the network, their
        local speakers analysed (and embedded). :meth:`finish` does the rest; a Diarizer
        with other linking or post-processing settings (``link_threshold``, ``link``,
        ``median``...) may finish the same analysis, as when tuning them."""
        hook = hook or _no_hook
        source = open_audio(audio, self.sample_rate, uri)
        grid = frame_grid(self.model, self.config, source.num_samples, self.sample_rate, self.chunk_frames)  # fmt: skip
        hook("windows", grid)
        done, total = [0], len(grid.starts)

        def on_batch(outputs: list) -> None:
            done[0] += len(outputs)
            hook("local", outputs, completed=done[0], total=total)

        encoder = self.speaker_encoder if self.embedding is None else None
        embedder = None if self.embedding is None else PretrainedEmbedder(self.embedding, grid)
        frame_features, lookahead = feature_stream(grid, encoder)
        blocks = frontend_blocks(self.model, self.config, grid, self.device)
        stream = stream_windows(source, grid, frame_features, lookahead, *blocks)  # once per frame
        windows = analyse_windows(
            self.model, stream, grid, self.config, max_speakers,
            encoder, self.device, on_batch, embedder,
        )  # fmt: skip
        return Analysis(source, grid, windows)

    def with_settings(self, overrides: dict, where: str = "settings") -> Diarizer:
        """A copy sharing this one's model and encoders, with some ``InferConfig`` fields
        replaced (``link``: a dict of LinkConfig fields): to :meth:`finish` one analysis
        with other linking or post-processing settings. ``where`` names them in errors."""
        import copy

        other = copy.copy(self)
        other.config = with_fields(self.config, overrides, where)
        return other

    def finish(
        self, analysis: Analysis, count: SpeakerCount | None = None, hook: Hook | None = None
    ) -> Result:
        """Stages 3 and 4 of a call: link the windows of ``analysis`` (:meth:`analyse`) into
        global speakers and aggregate them, with this Diarizer's settings."""
        count, hook = count or SpeakerCount(), hook or _no_hook
        source, grid = analysis.source, analysis.grid
        windows = split_parts(analysis.windows, self.config.link)
        assignment = link(windows, self.config, count)
        hook("linking", assignment)
        result = aggregate(windows, assignment, grid.num_frames, grid.frame_shift, self.config,
                           source.uri, source.duration, source.path)  # fmt: skip
        hook("aggregation", result)
        _warn_if_fewer(count, result, sum(int((a >= 0).sum()) for a in assignment))
        return result


@dataclass(frozen=True)
class Analysis:
    """A recording after stages 1 and 2 (:meth:`Diarizer.analyse`)."""

    source: AudioSource
    grid: FrameGrid
    windows: list[WindowOutput]  # in time order


def _pretrained_embedding(ckpt: dict, path: str, spec, device: str) -> tuple[Any, dict]:
    """(the pretrained embedding model to link with, or None; the InferConfig fields to
    use with it) for ``Diarizer.from_pretrained(embedding=spec)``."""
    from diarize.checkpoint import embedding_in
    from diarize.embeddings import load_embedding
    from diarize.inference.linking import PRETRAINED_LINKING

    if spec is None:
        return embedding_in(ckpt, path, device)
    if isinstance(spec, str) and spec == "none":
        return None, {}
    model = spec if hasattr(spec, "embed") else load_embedding(spec, device)
    return model, PRETRAINED_LINKING.get(model.kind, {})


def _warn_if_fewer(count: SpeakerCount, result: Result, local: int) -> None:
    """A DiarizeWarning when fewer speakers were found than ``count`` asks for, and why:
    global speakers are made of the windows' ``local`` speakers, and one whose turns were
    all removed by post-processing is dropped."""
    wanted = count.num or count.min
    found = len(result.labels)
    if not wanted or found >= wanted:
        return
    why = (
        f"its windows hold only {local} local speakers (counted window by window, before "
        "linking): the most that can be told apart"
        if local < wanted
        else "the others kept no speech after post-processing (threshold, median, min_duration_on)"
    )
    warnings.warn(
        DiarizeWarning(f"{result.uri}: {wanted} speakers asked for, {found} found: {why}"),
        stacklevel=2,
    )


def _no_hook(stage: str, artefact: Any, completed: int | None = None, total: int | None = None):
    pass
