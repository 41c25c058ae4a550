"""Diarization models. One architecture for now: EEND-EDA (Horiguchi et al., 2020/2022)."""

from diarize.models.eend_eda import EendEda, deepen

__all__ = ["EendEda", "deepen"]
