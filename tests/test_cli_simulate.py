"""``diarize simulate``'s options: SimulationConfig's field defaults are the only defaults."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest

from diarize.cli import build_parser
from diarize.cli.simulate import _config_values
from diarize.data.simulate import SimulationConfig

NOT_OPTIONS = {"silence_level", "turn_gaps", "same_gaps"}  # set by code, or by --turns-from


def parse(*options: str):
    return build_parser().parse_args(["simulate", "src", "out", "--num-mixtures", "3", *options])


def test_options_not_given_keep_the_config_defaults():
    assert SimulationConfig(**_config_values(parse())) == SimulationConfig(num_mixtures=3)


def test_options_given_set_their_fields():
    args = parse("--snr", "5", "12.5", "--noise", "synthetic", "--overlap-prob", "0.5")
    config = SimulationConfig(**_config_values(args))
    assert config.snrs == (5.0, 12.5) and config.noises == () and config.overlap_prob == 0.5
    assert config.overlap_mean == SimulationConfig.overlap_mean
    assert (args.workers, args.speaker_list, args.turns_from) == (1, None, [])


def test_every_config_field_has_an_option():
    dests = {a.dest for a in _simulate_parser()._actions}
    fields = {f.name for f in dataclasses.fields(SimulationConfig)}
    assert fields - NOT_OPTIONS <= dests


def test_help_shows_the_config_defaults(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    for option, field in [("overlap-prob", "overlap_prob"), ("pause-mean", "pause_mean")]:
        entry = f"--{option} {field.upper()} "  # the last one: the option's help line
        assert f"(default: {getattr(SimulationConfig, field)})" in text.rsplit(entry, 1)[1]
        assert " --" not in text.rsplit(entry, 1)[1].split("(default")[0]
    assert "(default: 1 2 3 4)" in text and "(default: synthetic)" in text
    assert "mixtures to make (default" not in text  # required: no default shown


def test_building_the_parser_stays_light():
    code = "import sys; from diarize.cli import build_parser; build_parser(); "
    code += "print(sorted({'diarize.data.simulate', 'scipy', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _simulate_parser():
    actions = build_parser()._actions
    sub = next(a for a in actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["simulate"]
