"""Fuzzing the parsers of user files (RTTM, UEM, wav.scp, YAML configs, --set values): any text
gives a result or a one-line :class:`DiarizeError`, never another exception. Examples are
derandomized (the same ones on every run, so CI is stable) and bounded: well under a minute
in all. ``HYPOTHESIS_MAX_EXAMPLES=2000`` runs a longer search by hand."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from diarize.utils import DiarizeError  # noqa: E402

FUZZ = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", 150)),
    deadline=None,
    derandomize=True,
    database=None,  # nothing written under the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TEXT = st.characters(blacklist_categories=("Cs",))  # anything UTF-8 can encode
# Tokens that look like the fields of real files, mixed with arbitrary text.
TOKENS = st.one_of(
    st.sampled_from(
        [
            "SPEAKER",
            "speaker",
            "SPKR-INFO",
            ";;",
            "<NA>",
            "1",
            "A",
            "0",
            "0.5",
            "2.25",
            "-1",
            "1e308",
            "1e9",
            "nan",
            "inf",
            "-inf",
            "1e-320",
            "x",
            "|",
            "a.wav",
            "/dev/null",
            ".",
            "..",
            "\t",
            "\u00a0",
            "\u2028",
            "\x00",
        ]
    ),  # fmt: skip
    st.text(TEXT, max_size=6),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
LINE = st.lists(TOKENS, max_size=12).map(" ".join)
FILE_TEXT = st.one_of(st.lists(LINE, max_size=8).map("\n".join), st.text(TEXT, max_size=200))


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def result_or_one_line_error(fn, *args):
    """``fn(*args)``, or None when it raises a DiarizeError of one line."""
    try:
        return fn(*args)
    except DiarizeError as e:
        assert "\n" not in str(e).strip(), repr(str(e))
        return None


@FUZZ
@given(content=st.one_of(FILE_TEXT, st.binary(max_size=64)))
def test_rttm(tmp_path, content):
    from diarize.rttm import read_rttm

    annotations = result_or_one_line_error(read_rttm, write(tmp_path / "x.rttm", content))
    for uri, ann in (annotations or {}).items():
        assert uri and not any(c.isspace() for c in uri)
        for segment in ann.itersegments():
            assert math.isfinite(segment.end) and 0 <= segment.start < segment.end


@FUZZ
@given(content=st.one_of(FILE_TEXT, st.binary(max_size=64)))
def test_uem(tmp_path, content):
    from diarize.rttm import read_uem

    timelines = result_or_one_line_error(read_uem, write(tmp_path / "x.uem", content))
    for timeline in (timelines or {}).values():
        assert all(math.isfinite(s.end) and 0 <= s.start <= s.end for s in timeline)


@FUZZ
@given(content=st.one_of(FILE_TEXT, st.binary(max_size=64)))
def test_wav_scp(tmp_path, content):
    from diarize.data.kaldi import read_wav_scp

    (tmp_path / "a.wav").write_bytes(b"")  # a file for the lines that name it
    entries = result_or_one_line_error(read_wav_scp, write(tmp_path / "wav.scp", content))
    for _, audio in (entries or {}).values():
        assert Path(audio).is_file()


YAML_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(TEXT, max_size=8),
)
YAML_VALUE = st.recursive(
    YAML_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(TEXT, max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
SECTIONS = {
    "features": ["kind", "sample_rate", "fbank", "wavlm"],
    "model": ["d_model", "n_layers", "n_heads", "max_speakers", "attractor_threshold"],
    "train": ["lr", "epochs", "batch_size", "chunk_frames", "scheduler", "train_data"],
    "infer": ["threshold", "median", "window", "hop", "link_threshold", "split_voices"],
}
CONFIG = st.dictionaries(
    st.sampled_from([*SECTIONS, "other"]),
    st.one_of(
        YAML_VALUE,
        st.dictionaries(
            st.sampled_from(sorted({k for keys in SECTIONS.values() for k in keys} | {"x"})),
            YAML_VALUE,
            max_size=4,
        ),
    ),
    max_size=4,
)


@FUZZ
@given(config=CONFIG)
def test_config_values(tmp_path, config):
    import yaml

    from diarize.config import load_config

    path = write(tmp_path / "c.yaml", yaml.safe_dump(config, allow_unicode=True))
    result_or_one_line_error(load_config, path)


@FUZZ
@given(content=st.one_of(FILE_TEXT, st.binary(max_size=64)))
def test_config_text(tmp_path, content):
    from diarize.config import load_config

    result_or_one_line_error(load_config, write(tmp_path / "c.yaml", content))


@FUZZ
@given(items=st.lists(st.one_of(LINE, st.tuples(TOKENS, TOKENS).map("=".join)), max_size=4))
def test_set_overrides(items):
    from diarize.config import load_config, parse_overrides

    overrides = result_or_one_line_error(parse_overrides, items)
    if overrides is not None:
        result_or_one_line_error(load_config, None, overrides)


NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "-0", "0", "1", "0.5", "1e-9", "2"]),
)
OPTIONS = {  # option -> what argparse accepts for it (its own type check comes first)
    "--threshold": NUMBER_TEXT,
    "--median": st.integers(-5, 200).map(str),
    "--min-duration-on": NUMBER_TEXT,
    "--min-duration-off": NUMBER_TEXT,
    "--window": NUMBER_TEXT,
    "--hop": NUMBER_TEXT,
    "--link-threshold": NUMBER_TEXT,
    "--batch-size": st.integers(-5, 100).map(str),
    "--num-speakers": st.integers(-5, 100).map(str),
    "--min-speakers": st.integers(-5, 100).map(str),
    "--max-speakers": st.integers(-5, 100).map(str),
}


@FUZZ
@given(
    given_options=st.dictionaries(
        st.sampled_from(sorted(OPTIONS)), st.just(None), min_size=1, max_size=4
    ).flatmap(lambda d: st.fixed_dictionaries({k: OPTIONS[k] for k in d}))
)
def test_inference_options(given_options):
    """The options of diarize run as the CLI checks them before any work: settings over the
    stored ones, the speaker count, the windows of a 100 ms model trained on 20 s chunks."""
    from diarize.cli import build_parser, inference_overrides
    from diarize.config import InferConfig, with_fields
    from diarize.inference import SpeakerCount, window_frames

    argv = ["run", "x.wav", "-o", "out"]
    for option, value in given_options.items():
        argv.append(f"{option}={value}")  # "--hop -1e+16" would read as an option
    args = build_parser().parse_args(argv)
    config = result_or_one_line_error(with_fields, InferConfig(), inference_overrides(args))
    result_or_one_line_error(SpeakerCount, args.num_speakers, args.min_speakers, args.max_speakers)
    if config is not None:
        window, hop = result_or_one_line_error(window_frames, config, 0.1, 200) or (1, 1)
        assert 1 <= hop <= window
