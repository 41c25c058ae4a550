"""WavLM frontend and weight import, against transformers' WavLMModel as the oracle.

Checkpoints are tiny and built here in the real formats (Hugging Face directory, Microsoft
``.pt``); nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from diarize.config import FeatureConfig, WavLMConfig
from diarize.features import build_frontend
from diarize.features.wavlm import WavLMFrontend, wavlm_hidden_states
from diarize.features.wavlm_import import SHAPES, load_wavlm, parse_conv_layers
from diarize.utils import DiarizeError

transformers = pytest.importorskip("transformers")

TINY = SHAPES["tiny"]


def hf_config(stable: bool) -> transformers.WavLMConfig:
    """transformers' config for our tiny shape (stable=True: the pre-LN layout of Large)."""
    conv = TINY["extractor_conv_layer_config"]
    return transformers.WavLMConfig(
        hidden_size=TINY["encoder_embed_dim"],
        num_hidden_layers=TINY["encoder_num_layers"],
        num_attention_heads=TINY["encoder_num_heads"],
        intermediate_size=TINY["encoder_ff_interm_features"],
        conv_dim=[c for c, _, _ in conv],
        conv_kernel=[k for _, k, _ in conv],
        conv_stride=[s for _, _, s in conv],
        num_conv_pos_embeddings=TINY["encoder_pos_conv_kernel"],
        num_conv_pos_embedding_groups=TINY["encoder_pos_conv_groups"],
        num_buckets=TINY["encoder_num_buckets"],
        max_bucket_distance=TINY["encoder_max_distance"],
        do_stable_layer_norm=stable,
        feat_extract_norm="layer" if stable else "group",
    )


def hf_model(stable: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    model = transformers.WavLMModel(hf_config(stable)).eval()
    with torch.no_grad():  # move every weight off its neat initial value (ones, zeros)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def save_hf(model: torch.nn.Module, path, fmt: str) -> None:
    model.config.save_pretrained(path)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path / "model.safetensors"))
    else:  # old hub files: weight_norm as weight_g / weight_v, a pickled state dict
        state = {
            k.replace("parametrizations.weight.original0", "weight_g").replace(
                "parametrizations.weight.original1", "weight_v"
            ): v
            for k, v in state.items()
        }
        torch.save(state, path / "pytorch_model.bin")


def hf_states(model, wave, lengths=None):
    mask = None
    if lengths is not None:
        mask = (torch.arange(wave.shape[1])[None] < lengths[:, None]).long()
    with torch.no_grad():
        return model(wave, attention_mask=mask, output_hidden_states=True).hidden_states


def assert_same_states(ours, theirs, frame_lengths=None):
    assert len(ours) == len(theirs) == TINY["encoder_num_layers"] + 1
    for layer, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == b.shape, layer
        for i in range(a.shape[0]):
            n = a.shape[1] if frame_lengths is None else int(frame_lengths[i])
            diff = (a[i, :n] - b[i, :n]).abs().max().item()
            assert diff < 1e-4, f"hidden state {layer}, item {i}: max abs diff {diff}"


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # transformers' side
@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
@pytest.mark.parametrize("stable", [False, True])
def test_huggingface_import_matches_transformers(tmp_path, fmt, stable):
    reference = hf_model(stable)
    save_hf(reference, tmp_path, fmt)
    model, normalize = load_wavlm(str(tmp_path))
    model.eval()
    assert normalize is False
    wave = torch.randn(2, 16000)
    lengths = torch.tensor([16000, 11000])
    with torch.no_grad():
        ours, frame_lengths = wavlm_hidden_states(model, wave)
        assert_same_states(ours, hf_states(reference, wave))
        ours, frame_lengths = wavlm_hidden_states(model, wave, lengths)
    assert frame_lengths.tolist() == [49, 34]  # (n - 400) // 320 + 1
    assert_same_states(ours, hf_states(reference, wave, lengths), frame_lengths)


def to_microsoft(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchaudio keys -> unilm/fairseq keys (the inverse of the importer's mapping)."""
    rules = [
        (
            r"feature_extractor\.conv_layers\.(\d+)\.conv\.(.*)",
            r"feature_extractor.conv_layers.\1.0.\2",
        ),
        (
            r"feature_extractor\.conv_layers\.0\.layer_norm\.(.*)",
            r"feature_extractor.conv_layers.0.2.\1",
        ),
        (r"encoder\.feature_projection\.layer_norm\.(.*)", r"layer_norm.\1"),
        (r"encoder\.feature_projection\.projection\.(.*)", r"post_extract_proj.\1"),
        (
            r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original0",
            "encoder.pos_conv.0.weight_g",
        ),
        (
            r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original1",
            "encoder.pos_conv.0.weight_v",
        ),
        (r"encoder\.transformer\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias"),
        (r"encoder\.transformer\.layer_norm\.(.*)", r"encoder.layer_norm.\1"),
        (
            r"encoder\.transformer\.layers\.(\d+)\.attention\.attention\.out_proj\.(.*)",
            r"encoder.layers.\1.self_attn.out_proj.\2",
        ),
        (
            r"encoder\.transformer\.layers\.(\d+)\.attention\.rel_attn_embed\.(.*)",
            r"encoder.layers.\1.self_attn.relative_attention_bias.\2",
        ),
        (
            r"encoder\.transformer\.layers\.(\d+)\.attention\.gru_rel_pos_linear\.(.*)",
            r"encoder.layers.\1.self_attn.grep_linear.\2",
        ),
        (
            r"encoder\.transformer\.layers\.(\d+)\.attention\.gru_rel_pos_const",
            r"encoder.layers.\1.self_attn.grep_a",
        ),
        (
            r"encoder\.transformer\.layers\.(\d+)\.layer_norm\.(.*)",
            r"encoder.layers.\1.self_attn_layer_norm.\2",
        ),
        (
            r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.intermediate_dense\.(.*)",
            r"encoder.layers.\1.fc1.\2",
        ),
        (
            r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.output_dense\.(.*)",
            r"encoder.layers.\1.fc2.\2",
        ),
        (
            r"encoder\.transformer\.layers\.(\d+)\.final_layer_norm\.(.*)",
            r"encoder.layers.\1.final_layer_norm.\2",
        ),
    ]
    out = {"mask_emb": torch.zeros(TINY["encoder_embed_dim"])}  # pre-training only: dropped
    for key, value in state.items():
        m = re.fullmatch(
            r"encoder\.transformer\.layers\.(\d+)\.attention\.attention\.in_proj_(weight|bias)", key
        )
        if m:
            for name, part in zip("qkv", value.chunk(3), strict=True):
                out[f"encoder.layers.{m[1]}.self_attn.{name}_proj.{m[2]}"] = part.clone()
            continue
        for pattern, repl in rules:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value.clone()
                break
        else:
            raise AssertionError(f"no Microsoft name for {key}")
    return out


MS_CFG = {  # the flat dict of unilm's WavLMConfig, as in WavLM-Base+.pt
    "extractor_mode": "default",
    "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
    "conv_bias": False,
    "encoder_layers": 2,
    "encoder_embed_dim": 64,
    "encoder_ffn_embed_dim": 128,
    "encoder_attention_heads": 2,
    "activation_fn": "gelu",
    "layer_norm_first": False,
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "relative_position_embedding": True,
    "num_buckets": 32,
    "max_distance": 64,
    "gru_rel_pos": True,
    "normalize": False,
    "dropout": 0.1,
    "encoder_layerdrop": 0.05,
}


def write_microsoft(tmp_path, reference) -> str:
    save_hf(reference, tmp_path, "safetensors")
    model, _ = load_wavlm(str(tmp_path))
    path = tmp_path / "WavLM-Tiny.pt"
    torch.save({"cfg": dict(MS_CFG), "model": to_microsoft(model.state_dict())}, path)
    return str(path)


def test_microsoft_checkpoint_matches_transformers(tmp_path):
    reference = hf_model()
    path = write_microsoft(tmp_path, reference)
    torch.load(path, weights_only=True)  # plain dict: loads without unpickling objects
    model, normalize = load_wavlm(path)
    assert normalize is False
    wave = torch.randn(1, 12345)
    with torch.no_grad():
        ours, _ = wavlm_hidden_states(model.eval(), wave)
    assert_same_states(ours, hf_states(reference, wave))


def test_bad_checkpoints_give_one_clear_error(tmp_path):
    path = write_microsoft(tmp_path, hf_model())
    ckpt = torch.load(path, weights_only=True)
    del ckpt["model"]["encoder.layers.1.fc2.bias"]
    ckpt["model"]["post_extract_proj.weight"] = torch.zeros(64, 31)
    ckpt["model"]["encoder.layers.0.mystery"] = torch.zeros(1)
    torch.save(ckpt, path)
    with pytest.raises(DiarizeError) as e:
        load_wavlm(path)
    message = str(e.value)
    assert "\n" not in message
    assert "missing: encoder.transformer.layers.1.feed_forward.output_dense.bias" in message
    assert "unexpected: encoder.layers.0.mystery" in message
    assert "encoder.feature_projection.projection.weight (64, 31) vs (64, 32)" in message
    with pytest.raises(DiarizeError, match="no such file"):
        load_wavlm(str(tmp_path / "nothing.pt"))


def test_bundle_without_network_is_one_line(monkeypatch):
    import torchaudio.pipelines

    def offline(self, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(type(torchaudio.pipelines.WAVLM_BASE_PLUS), "get_model", offline)
    with pytest.raises(
        DiarizeError, match="torchaudio bundle WAVLM_BASE_PLUS: could not fetch"
    ) as e:
        load_wavlm("WAVLM_BASE_PLUS")
    assert "\n" not in str(e.value)


def test_parse_conv_layers_is_safe():
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 2") == [
        (512, 10, 5),
        (512, 3, 2),
        (512, 3, 2),
    ]
    with pytest.raises(DiarizeError):
        parse_conv_layers("__import__('os').system('true')")


def frontend(**wavlm) -> WavLMFrontend:
    torch.manual_seed(0)
    wavlm = {"shape": "tiny", **wavlm}
    return build_frontend(FeatureConfig(kind="wavlm", wavlm=WavLMConfig(**wavlm)))


@pytest.mark.parametrize("frame_shift", [0.02, 0.04, 0.08, 0.1])
def test_frame_counts(frame_shift):
    fe = frontend(frame_shift=frame_shift).eval()
    spf = round(frame_shift * 16000)
    assert fe.samples_per_frame == spf
    for n in [100, 320, spf - 1, spf, spf + 1, 3 * spf + 7, 16000, 16037]:
        with torch.no_grad():
            feats, lengths = fe(torch.randn(1, n), torch.tensor([n]))
        assert feats.shape == (1, n // spf, 64) == (1, fe.num_frames(n), fe.out_dim), n
        assert lengths.tolist() == [n // spf]


def test_batch_lengths_and_padding():
    fe = frontend(frame_shift=0.08).eval()
    wave = torch.randn(2, 16000)
    with torch.no_grad():
        feats, lengths = fe(wave, torch.tensor([16000, 6000]))
    assert feats.shape == (2, 12, 64)
    assert lengths.tolist() == [12, 4]
    assert (feats[1, 4:] == 0).all() and (feats[1, :4] != 0).any()


def test_frontend_loads_checkpoint_of_its_shape(tmp_path):
    reference = hf_model()
    save_hf(reference, tmp_path, "safetensors")
    fe = frontend(checkpoint=str(tmp_path), frame_shift=0.02).eval()
    wave = torch.randn(1, 16000)
    with torch.no_grad():
        ours, _ = fe.hidden_states(wave, torch.tensor([16000]))
    assert len(ours) == 3 and ours[0].shape == (1, 50, 64)  # centred: 16000 // 320 frames
    with pytest.raises(DiarizeError, match="shape=base"):
        frontend(shape="base", checkpoint=str(tmp_path))


def test_freeze_modes():
    fe = frontend(freeze="all")
    fe.train()
    assert not fe.wavlm.training and fe.training
    assert not any(p.requires_grad for p in fe.pretrained_parameters())
    assert fe.layer_logits.requires_grad
    fe = frontend(freeze="cnn")
    assert not any(p.requires_grad for p in fe.wavlm.feature_extractor.parameters())
    assert all(p.requires_grad for p in fe.wavlm.encoder.parameters())
    fe = frontend(freeze="none")
    assert all(p.requires_grad for p in fe.pretrained_parameters())
    n_wavlm = sum(1 for _ in fe.wavlm.parameters())
    assert len(fe.pretrained_parameters()) == n_wavlm == sum(1 for _ in fe.parameters()) - 1


def test_frozen_training_only_trains_layer_weights():
    fe = frontend(freeze="all").train()
    feats, _ = fe(torch.randn(2, 8000), torch.tensor([8000, 8000]))
    feats.pow(2).mean().backward()
    assert fe.layer_logits.grad is not None and fe.layer_logits.grad.abs().sum() > 0
    assert all(p.grad is None for p in fe.wavlm.parameters())


def test_gradient_checkpointing_gives_same_gradients():
    grads = []
    for checkpointing in (False, True):
        fe = frontend(freeze="none", grad_checkpointing=checkpointing)
        fe.train()
        for m in fe.modules():  # no dropout: the two runs must be comparable
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        torch.manual_seed(1)
        feats, _ = fe(torch.randn(2, 4000), torch.tensor([4000, 3000]))
        feats.pow(2).mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in fe.parameters() if p.grad is not None]))
    assert grads[0].shape == grads[1].shape
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_truncation_keeps_kept_layers_identical():
    full = frontend().eval()
    cut = frontend(layers=1).eval()
    assert full.num_layers == 2 and cut.num_layers == 1
    assert len(cut.wavlm.encoder.transformer.layers) == 1 and cut.layer_logits.shape == (2,)
    wave, lengths = torch.randn(1, 8000), torch.tensor([8000])
    with torch.no_grad():
        a, _ = full.hidden_states(wave, lengths)
        b, _ = cut.hidden_states(wave, lengths)
    assert len(b) == 2
    for x, y in zip(a[:2], b, strict=False):
        assert torch.equal(x, y)


def test_suggest_layers():
    fe = frontend()
    with torch.no_grad():
        fe.layer_logits.copy_(torch.tensor([0.0, 2.0, -10.0]))
    assert fe.suggest_layers() == 1
    assert fe.layer_weights().sum().item() == pytest.approx(1.0)
    with torch.no_grad():
        fe.layer_logits.zero_()
    assert fe.suggest_layers() == 2
    fe.truncate(fe.suggest_layers(tolerance=0.5))
    assert fe.num_layers == 1


def test_quantize_runs_on_eval_and_stays_close():
    fe = frontend(quantize=True)
    wave, lengths = torch.randn(1, 16000), torch.tensor([16000])
    fp32 = dataclasses.replace(FeatureConfig(kind="wavlm"), wavlm=WavLMConfig(shape="tiny"))
    torch.manual_seed(0)
    ref = build_frontend(fp32).eval()
    with torch.no_grad():
        a, _ = ref(wave, lengths)
        b, _ = fe.eval()(wave, lengths)
    assert fe.quantized
    assert ((a - b).norm() / a.norm()).item() < 0.05


def test_normalize_waveform_is_saved_with_the_weights():
    fe = frontend()
    assert "normalize_waveform" in fe.state_dict()
