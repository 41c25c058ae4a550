import pytest

from diarize.config import (
    ExperimentConfig,
    from_dict,
    load_config,
    parse_sweeps,
    to_dict,
    to_yaml,
)
from diarize.utils import DiarizeError


def test_defaults_follow_eend():
    c = ExperimentConfig()
    assert (c.model.n_layers, c.model.d_model, c.model.n_heads, c.model.ff_dim) == (4, 256, 4, 2048)
    assert (c.features.fbank.context, c.features.fbank.subsampling) == (7, 10)


def test_yaml_overrides_section_by_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  d_model: 64\nfeatures:\n  fbank:\n    n_mels: 40\ntrain:\n  lr: 1\n")
    c = load_config(path, {"train": {"epochs": 3}})
    assert c.model.d_model == 64 and c.model.n_layers == 4
    assert c.features.fbank.n_mels == 40 and c.features.fbank.context == 7
    assert c.train.lr == 1.0 and isinstance(c.train.lr, float) and c.train.epochs == 3


def test_round_trip_through_dict_and_yaml(tmp_path):
    c = load_config(None, {"model": {"d_model": 32}, "train": {"out_dir": "x"}})
    assert from_dict(ExperimentConfig, to_dict(c)) == c
    (tmp_path / "r.yaml").write_text(to_yaml(c))
    assert load_config(tmp_path / "r.yaml") == c


@pytest.mark.parametrize(
    "text, message",
    [
        ("model:\n  d_modle: 3\n", "unknown key.*d_modle"),
        ("trian: {}\n", "unknown key.*trian"),
        ("model:\n  n_layers: four\n", "model.n_layers: expected int"),
        ("model: [1, 2]\n", "expected a mapping"),
        ("model: {d_model: 3\n", "not valid YAML"),
    ],
)
def test_bad_configs_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DiarizeError, match=message):
        load_config(path)


def test_repository_configs_load():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert configs, "configs/ holds no YAML file"
    for path in configs:
        load_config(path)


def test_exponent_without_dot_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 2e-5\n")
    assert load_config(path).train.lr == 2e-5
    path.write_text("train:\n  lr: fast\n")
    with pytest.raises(DiarizeError, match="train.lr: expected float"):
        load_config(path)


def test_parse_sweeps_gives_every_combination_in_order():
    assert parse_sweeps(["a=1,2", "b=x"]) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert parse_sweeps(["keep=0.05,0.1", "n=7"]) == [
        {"keep": 0.05, "n": 7},
        {"keep": 0.1, "n": 7},
    ]
    assert parse_sweeps([]) == [{}]
