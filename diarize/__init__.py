"""diarize: end-to-end neural speaker diarization (EEND-EDA).

``from diarize import Diarizer`` is the library's entry point (:mod:`diarize.pipeline`);
it is imported on first use so that ``import diarize`` (and ``diarize --help``) stays fast.
"""

__version__ = "0.1.0"
__all__ = ["Diarizer", "__version__"]


def __getattr__(name: str):
    if name == "Diarizer":
        from diarize.pipeline import Diarizer

        return Diarizer
    raise AttributeError(f"module 'diarize' has no attribute {name!r}")
