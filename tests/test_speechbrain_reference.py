"""speechbrain (the ECAPA and fbank reference) leaves no proxy in ``sys.modules`` that breaks
a later walk over it (hypothesis does one before each example of tests/test_fuzz.py)."""

from __future__ import annotations

import sys
import warnings

import pytest
from conftest import drop_unloaded_speechbrain_proxies


def test_sys_modules_stays_walkable_after_speechbrain():
    pytest.importorskip("speechbrain")
    dropped = drop_unloaded_speechbrain_proxies()
    assert drop_unloaded_speechbrain_proxies() == []  # nothing left to drop
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecated redirect loading would warn
        files = [getattr(m, "__file__", None) for m in list(sys.modules.values())]
    assert len(files) == len(sys.modules)
    assert not set(dropped) & set(sys.modules)
