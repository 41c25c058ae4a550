"""Finding and recognising embedding checkpoints: paths, hub names, caches, the errors a
user can cause, and the interface every model shares."""

from __future__ import annotations

import pickle
import urllib.error
import urllib.request

import pytest
import torch

from diarize.embeddings import HUB, from_checkpoint, load_embedding
from diarize.embeddings.campplus import CAMPPlus
from diarize.embeddings.ecapa import ECAPA, ECAPAConfig, read_hyperparams
from diarize.embeddings.resnet import ResNet, ResNetConfig
from diarize.utils import DiarizeError

SMALL_ECAPA = ECAPAConfig(
    channels=(32, 32, 32, 32, 96), attention_channels=8, se_channels=8, lin_neurons=16
)


def ecapa_hyperparams(
    channels: list[int], attention_channels: int, lin_neurons: int, se_channels: int | None = None
) -> str:
    """The features and embedding_model of a SpeechBrain ECAPA hyperparams.yaml, laid out as
    spkrec-ecapa-voxceleb's, with these layer sizes (``se_channels``: written when given)."""
    se = f"    se_channels: {se_channels}\n" if se_channels is not None else ""
    return f"""\
n_mels: 80
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {channels}
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: {attention_channels}
{se}    lin_neurons: {lin_neurons}
"""


def noise(batch: int = 2, seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, int(seconds * 16000), generator=g)


@pytest.mark.parametrize(
    "make",
    [
        lambda: CAMPPlus(),
        lambda: ResNet(ResNetConfig(num_blocks=(1, 1, 1, 1), embed_dim=64, two_emb_layer=True)),
        lambda: ResNet(ResNetConfig(num_blocks=(1, 2, 1, 1), bottleneck=True, m_channels=8)),
        lambda: ECAPA(SMALL_ECAPA),
    ],
    ids=["campplus", "resnet-two-layers", "resnet-bottleneck", "ecapa"],
)
def test_state_dict_is_recognised_and_checkpoint_round_trips(tmp_path, make):
    torch.manual_seed(0)
    model = make().eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    loaded = load_embedding(tmp_path / "weights.pt")
    if isinstance(model, ECAPA):  # dilations come from hyperparams.yaml (absent): defaults
        assert loaded.config.dilations == (1, 2, 3, 4, 1)
    assert type(loaded) is type(model) and loaded.config == model.config
    again = from_checkpoint(torch.load(save(tmp_path, loaded.checkpoint()), weights_only=True))
    x = noise()
    with torch.no_grad():
        expected = model(x)
        assert expected.shape == (2, model.dim)
        assert torch.equal(loaded(x), expected)
        assert torch.equal(again(x), expected)


def save(tmp_path, obj) -> str:
    path = tmp_path / "checkpoint.pt"
    torch.save(obj, path)
    return str(path)


def test_embed_batches_equal_lengths_and_matches_forward():
    torch.manual_seed(0)
    model = ResNet(ResNetConfig(num_blocks=(1, 1, 1, 1), m_channels=8, embed_dim=16)).eval()
    x = noise(3, seconds=1.0)
    waves = [x[0], x[1, :12000], x[2], x[1]]
    out = model.embed(waves, batch_size=2)
    assert out.shape == (4, 16)
    assert torch.allclose(out.norm(dim=1), torch.ones(4))
    with torch.no_grad():
        alone = torch.nn.functional.normalize(model(x[1:2, :12000]), dim=1)[0]
    assert (out[1] - alone).abs().max() < 1e-5
    assert (out[3] - torch.nn.functional.normalize(model(x[1:2]), dim=1)[0]).abs().max() < 1e-5


def test_too_short_or_misshapen_wave_is_a_value_error():
    model = CAMPPlus().eval()
    with pytest.raises(ValueError, match="at least 2400 samples"):
        model(torch.zeros(1, 2000))
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        model(torch.zeros(16000))


def test_ecapa_hyperparams_of_the_published_model(tmp_path):
    """The spkrec-ecapa-voxceleb hyperparams.yaml layout: every tag kind, !ref values,
    objects we do not need (classifier, pretrainer) left alone."""
    text = "pretrained_path: speechbrain/spkrec-ecapa-voxceleb\nout_n_neurons: 7205\n"
    text += ecapa_hyperparams([1024, 1024, 1024, 1024, 3072], 128, 192)
    text += """\
classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: 192
    out_neurons: !ref <out_n_neurons>
modules:
    compute_features: !ref <compute_features>
    embedding_model: !ref <embedding_model>
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
"""
    (tmp_path / "hyperparams.yaml").write_text(text)
    hp = read_hyperparams(tmp_path / "hyperparams.yaml")
    assert hp["fbank"] == {"n_mels": 80}
    assert hp["ecapa"]["channels"] == [1024, 1024, 1024, 1024, 3072]
    assert hp["ecapa"]["input_size"] == 80 and hp["ecapa"]["lin_neurons"] == 192


def test_ecapa_dilations_come_from_hyperparams(tmp_path):
    torch.manual_seed(0)
    config = ECAPAConfig(**{**SMALL_ECAPA.__dict__, "dilations": (1, 3, 3, 3, 1)})
    model = ECAPA(config).eval()
    torch.save(model.state_dict(), tmp_path / "embedding_model.ckpt")
    (tmp_path / "hyperparams.yaml").write_text(
        "embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n"
        "    dilations: [1, 3, 3, 3, 1]\n"
    )
    loaded = load_embedding(tmp_path / "embedding_model.ckpt")
    assert loaded.config == config
    x = noise(1)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_hub_name_found_in_the_hugging_face_cache(tmp_path, monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    snapshot = tmp_path / "hf/hub/models--pyannote--wespeaker-voxceleb-resnet34-LM/snapshots/abc"
    snapshot.mkdir(parents=True)
    model = ResNet(ResNetConfig(num_blocks=(1, 1, 1, 1), m_channels=8, embed_dim=16))
    torch.save(model.state_dict(), snapshot / "pytorch_model.bin")
    assert load_embedding("wespeaker-resnet34").config.embed_dim == 16


def test_hub_name_found_in_the_modelscope_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    folder = tmp_path / "ms/models/iic/speech_campplus_sv_zh_en_16k-common_advanced"
    folder.mkdir(parents=True)
    torch.save(CAMPPlus().state_dict(), folder / "campplus_cn_en_common.pt")
    assert load_embedding("campplus-zh-en").dim == 192


def no_network(url, timeout=None):
    raise urllib.error.URLError(f"no route to host for {url}")


def test_unreachable_hub_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DIARIZE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(DiarizeError) as e:
        load_embedding("campplus-zh-en")
    message = str(e.value)
    assert "\n" not in message
    assert "cannot download campplus-zh-en" in message and "campplus_cn_en_common.pt" in message
    assert not (tmp_path / "cache/embeddings/campplus-zh-en/campplus_cn_en_common.pt").exists()


def test_download_lands_in_the_cache(tmp_path, monkeypatch):
    """A reachable hub: the answer is written (atomically) into diarize's cache and loaded."""
    import io

    buffer = io.BytesIO()
    torch.save(CAMPPlus().state_dict(), buffer)
    monkeypatch.setenv("DIARIZE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    urls = []

    def answer(url, timeout=None):
        urls.append(url)
        return io.BytesIO(buffer.getvalue())

    monkeypatch.setattr(urllib.request, "urlopen", answer)
    assert load_embedding("campplus-voxceleb").dim == 192
    assert urls == [urls[0]] and urls[0].endswith("/campplus_voxceleb.bin")
    assert (tmp_path / "cache/embeddings/campplus-voxceleb/campplus_voxceleb.bin").is_file()


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DiarizeError, match="not an embedding name") as e:
        load_embedding("campplus-klingon")
    assert all(name in str(e.value) for name in HUB)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint", "not a checkpoint torch can load safely"),
        (pickle.dumps({"x": Evil()}, protocol=2), "not a checkpoint torch can load safely"),
    ],
    ids=["garbage", "unsafe-pickle"],
)
def test_unreadable_or_unsafe_file_is_one_error_line(tmp_path, content, message):
    (tmp_path / "model.pt").write_bytes(content)
    with pytest.raises(DiarizeError, match=message) as e:
        load_embedding(tmp_path / "model.pt")
    assert "\n" not in str(e.value)


def test_wrong_or_unknown_weights_are_one_error_line(tmp_path):
    state = CAMPPlus().state_dict()
    del state["xvector.block2.tdnnd3.linear1.weight"]
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(DiarizeError, match="campplus weights do not match: missing"):
        load_embedding(tmp_path / "broken.pt")
    torch.save({"lstm.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(DiarizeError, match="not a CAM\\+\\+, WeSpeaker ResNet"):
        load_embedding(tmp_path / "other.pt")
    torch.save({"state_dict": {"sincnet.conv.weight": torch.zeros(2)}}, tmp_path / "seg.bin")
    with pytest.raises(DiarizeError, match="not a WeSpeaker embedding"):
        load_embedding(tmp_path / "seg.bin")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DiarizeError, match="expected one weights file"):
        load_embedding(tmp_path / "empty")
