"""diarize: end-to-end neural speaker diarization (EEND-EDA)."""

__version__ = "0.1.0"
