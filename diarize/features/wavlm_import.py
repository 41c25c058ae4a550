"""WavLM architectures and weights from where users keep them.

Every source ends up as a torchaudio :class:`~torchaudio.models.Wav2Vec2Model` (WavLM
variant) plus a flag saying whether the model expects a normalised waveform:

- a torchaudio bundle name: ``WAVLM_BASE``, ``WAVLM_BASE_PLUS``, ``WAVLM_LARGE``
  (downloaded once into the torch hub cache by torchaudio);
- a Hugging Face model directory: ``config.json`` + ``model.safetensors`` or
  ``pytorch_model.bin`` (``transformers`` is *not* needed: keys are mapped here);
- an original Microsoft checkpoint (``WavLM-Base+.pt``): ``{"cfg": {...}, "model": {...}}``
  with fairseq-style keys.

Files are read with ``safetensors`` or ``torch.load(weights_only=True)``: nothing is
unpickled beyond tensors and plain containers. Missing, unexpected or mis-shaped weights
raise one :class:`~diarize.utils.DiarizeError` that lists them.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from torchaudio.models import Wav2Vec2Model, wavlm_model

from diarize.utils import DiarizeError

# Keyword arguments of torchaudio.models.wavlm_model that fix the architecture (weights'
# shapes and the computation); dropouts are training settings, see DROPOUTS.
ARCH_KEYS = (
    "extractor_mode",
    "extractor_conv_layer_config",
    "extractor_conv_bias",
    "encoder_embed_dim",
    "encoder_pos_conv_kernel",
    "encoder_pos_conv_groups",
    "encoder_num_layers",
    "encoder_num_heads",
    "encoder_num_buckets",
    "encoder_max_distance",
    "encoder_ff_interm_features",
    "encoder_layer_norm_first",
)

_CONV = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2  # 20 ms hop, 25 ms window
_BASE = {
    "extractor_mode": "group_norm",
    "extractor_conv_layer_config": _CONV,
    "extractor_conv_bias": False,
    "encoder_embed_dim": 768,
    "encoder_pos_conv_kernel": 128,
    "encoder_pos_conv_groups": 16,
    "encoder_num_layers": 12,
    "encoder_num_heads": 12,
    "encoder_num_buckets": 320,
    "encoder_max_distance": 800,
    "encoder_ff_interm_features": 3072,
    "encoder_layer_norm_first": False,
}
SHAPES: dict[str, dict[str, Any]] = {
    # For tests and CPU smoke runs: the real conv layout (same frame timing) at 32 channels.
    "tiny": {
        **_BASE,
        "extractor_conv_layer_config": [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2,
        "encoder_embed_dim": 64,
        "encoder_pos_conv_kernel": 16,
        "encoder_pos_conv_groups": 4,
        "encoder_num_layers": 2,
        "encoder_num_heads": 2,
        "encoder_num_buckets": 32,
        "encoder_max_distance": 64,
        "encoder_ff_interm_features": 128,
    },
    "base": _BASE,
    "base_plus": _BASE,  # same architecture as base, more pre-training data
    "large": {
        **_BASE,
        "extractor_mode": "layer_norm",
        "encoder_embed_dim": 1024,
        "encoder_num_layers": 24,
        "encoder_num_heads": 16,
        "encoder_ff_interm_features": 4096,
        "encoder_layer_norm_first": True,
    },
}
# Dropouts used when fine-tuning (WavLM's pre-training values; layer drop is not used).
DROPOUTS = {
    "encoder_projection_dropout": 0.1,
    "encoder_attention_dropout": 0.1,
    "encoder_ff_interm_dropout": 0.0,
    "encoder_dropout": 0.1,
    "encoder_layer_drop": 0.0,
}
# torchaudio bundle -> (shape, expects a normalised waveform)
BUNDLES = {
    "WAVLM_BASE": ("base", False),
    "WAVLM_BASE_PLUS": ("base_plus", False),
    "WAVLM_LARGE": ("large", True),
}


def build_wavlm(arch: dict[str, Any]) -> Wav2Vec2Model:
    """A randomly initialised torchaudio WavLM with architecture ``arch`` (see ARCH_KEYS)."""
    return wavlm_model(**arch, **DROPOUTS, aux_num_out=None)


def same_arch(a: dict[str, Any], b: dict[str, Any]) -> bool:
    norm = {"extractor_conv_layer_config": lambda v: [tuple(x) for x in v]}
    return all(norm.get(k, lambda v: v)(a[k]) == norm.get(k, lambda v: v)(b[k]) for k in ARCH_KEYS)


def describe_arch(arch: dict[str, Any]) -> str:
    return (
        f"{arch['encoder_num_layers']} layers x {arch['encoder_embed_dim']} dim, "
        f"{arch['encoder_num_heads']} heads, ff {arch['encoder_ff_interm_features']}, "
        f"{arch['extractor_mode']}, layer_norm_first={arch['encoder_layer_norm_first']}"
    )


def read_wavlm(source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
    """Weights (torchaudio keys), architecture and ``normalize_waveform`` from ``source``:
    a bundle name, a Hugging Face directory or a Microsoft ``.pt`` file."""
    if source in BUNDLES:
        return _read_bundle(source)
    path = Path(os.path.expanduser(source))
    if path.is_dir():
        return read_huggingface(path)
    if path.is_file():
        return read_microsoft(path)
    raise DiarizeError(
        f"WavLM checkpoint {source!r}: no such file or directory, nor a torchaudio bundle "
        f"({', '.join(BUNDLES)})"
    )


def load_wavlm(source: str) -> tuple[Wav2Vec2Model, bool]:
    """A torchaudio WavLM built from ``source``'s own architecture, weights loaded."""
    state, arch, normalize = read_wavlm(source)
    model = build_wavlm(arch)
    load_weights(model, state, source)
    return model, normalize


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state)`` with one readable error for every mismatch."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [
        f"{what}: {_few(items)}"
        for what, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape (file vs model)", shapes),
        )
        if items
    ]
    if problems:
        raise DiarizeError(f"{source}: weights do not fit the WavLM model; " + "; ".join(problems))
    model.load_state_dict(state)


def _few(items: list[str], n: int = 6) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


# --- torchaudio bundles -------------------------------------------------------------------


def _read_bundle(name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
    import torchaudio.pipelines

    shape, normalize = BUNDLES[name]
    try:
        model = getattr(torchaudio.pipelines, name).get_model()
    except Exception as e:  # no network, proxy, corrupt cache: all mean "not available here"
        raise DiarizeError(
            f"torchaudio bundle {name}: could not fetch its weights ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); run torchaudio.pipelines.{name}.get_model() "
            "once on a machine with internet (fills the torch hub cache) or pass a Hugging Face "
            "directory or a Microsoft .pt"
        ) from None
    model = getattr(model, "model", model)  # WAVLM_LARGE comes wrapped with input normalisation
    return _rename_weight_norm(model.state_dict()), SHAPES[shape], normalize


def _rename_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Old ``weight_norm`` names (weight_g, weight_v) -> the parametrization's names."""
    out = {}
    for k, v in state.items():
        k = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", k)
        k = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", k)
        out[k] = v
    return out


def _fuse_qkv(state: dict[str, torch.Tensor], prefix: str, names: tuple[str, str, str]) -> None:
    """Concatenate separate q/k/v projections into ``nn.MultiheadAttention``'s in_proj,
    in place; leaves them alone (reported as unexpected/missing) if any is absent."""
    layers = {m.group(1) for k in state if (m := re.match(rf"{re.escape(prefix)}(\d+)\.", k))}
    for i in sorted(layers, key=int):
        for p in ("weight", "bias"):
            keys = [f"{prefix}{i}.{n}.{p}" for n in names]
            if all(k in state for k in keys):
                fused = torch.cat([state.pop(k) for k in keys])
                state[f"encoder.transformer.layers.{i}.attention.attention.in_proj_{p}"] = fused


# --- Hugging Face -------------------------------------------------------------------------

_HF_RULES = [  # (pattern on the HF key, torchaudio key); first match wins
    (r"feature_extractor\.(.*)", r"feature_extractor.\1"),
    (r"feature_projection\.(layer_norm|projection)\.(.*)", r"encoder.feature_projection.\1.\2"),
    (r"encoder\.pos_conv_embed\.(.*)", r"encoder.transformer.pos_conv_embed.\1"),
    (r"encoder\.layer_norm\.(.*)", r"encoder.transformer.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.attention\.([qkv]_proj\..*)", r"hf.\1.\2"),  # fused below
    (
        r"encoder\.layers\.(\d+)\.attention\.out_proj\.(.*)",
        r"encoder.transformer.layers.\1.attention.attention.out_proj.\2",
    ),
    (r"encoder\.layers\.(\d+)\.(.*)", r"encoder.transformer.layers.\1.\2"),
]
_HF_DROP = re.compile(
    r"(masked_spec_embed|lm_head|projector|classifier|tdnn|feature_extractor_xvector|objective|layer_weights)"
)


def read_huggingface(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
    """A Hugging Face WavLM directory (any head: the ``wavlm.`` prefix and heads are dropped)."""
    cfg = _read_json(path / "config.json")
    if cfg.get("model_type") != "wavlm":
        raise DiarizeError(
            f"{path}/config.json: model_type is {cfg.get('model_type')!r}, not 'wavlm'"
        )
    arch = _hf_arch(cfg)
    state = {}
    for k, v in _read_hf_weights(path).items():
        k = k.removeprefix("wavlm.")
        if not _HF_DROP.match(k):
            state[_map(k, _HF_RULES)] = v
    _fuse_qkv(state, "hf.", ("q_proj", "k_proj", "v_proj"))
    preprocessor = path / "preprocessor_config.json"
    normalize = (
        bool(_read_json(preprocessor).get("do_normalize", False))
        if preprocessor.exists()
        else False
    )
    return _rename_weight_norm(state), arch, normalize


def _hf_arch(cfg: dict[str, Any]) -> dict[str, Any]:
    g = cfg.get  # defaults: transformers' WavLMConfig
    conv = list(
        zip(
            g("conv_dim", [512] * 7),
            g("conv_kernel", [10, 3, 3, 3, 3, 2, 2]),
            g("conv_stride", [5, 2, 2, 2, 2, 2, 2]),
            strict=True,
        )
    )
    return {
        "extractor_mode": f"{g('feat_extract_norm', 'group')}_norm",
        "extractor_conv_layer_config": conv,
        "extractor_conv_bias": g("conv_bias", False),
        "encoder_embed_dim": g("hidden_size", 768),
        "encoder_pos_conv_kernel": g("num_conv_pos_embeddings", 128),
        "encoder_pos_conv_groups": g("num_conv_pos_embedding_groups", 16),
        "encoder_num_layers": g("num_hidden_layers", 12),
        "encoder_num_heads": g("num_attention_heads", 12),
        "encoder_num_buckets": g("num_buckets", 320),
        "encoder_max_distance": g("max_bucket_distance", 800),
        "encoder_ff_interm_features": g("intermediate_size", 3072),
        "encoder_layer_norm_first": g("do_stable_layer_norm", False),
    }


def _read_hf_weights(path: Path) -> dict[str, torch.Tensor]:
    if (path / "model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(path / "model.safetensors")
    if (path / "pytorch_model.bin").exists():
        return _torch_load(path / "pytorch_model.bin")
    raise DiarizeError(
        f"{path}: no model.safetensors or pytorch_model.bin (sharded checkpoints are not supported)"
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DiarizeError(
            f"{path}: missing (a Hugging Face model directory needs config.json)"
        ) from None
    except json.JSONDecodeError as e:
        raise DiarizeError(f"{path}: not valid JSON ({e})") from None


def _map(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    return key  # left as is: reported as unexpected


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DiarizeError(
            f"{path}: cannot be read as a weights-only torch file ({str(e).splitlines()[0]})"
        ) from None


# --- Microsoft (unilm/fairseq) ------------------------------------------------------------

_MS_RULES = [
    (
        r"feature_extractor\.conv_layers\.(\d+)\.0\.(.*)",
        r"feature_extractor.conv_layers.\1.conv.\2",
    ),
    (
        r"feature_extractor\.conv_layers\.0\.2\.(weight|bias)",
        r"feature_extractor.conv_layers.0.layer_norm.\1",
    ),  # group norm
    (
        r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(.*)",
        r"feature_extractor.conv_layers.\1.layer_norm.\2",
    ),  # layer norm
    (r"layer_norm\.(.*)", r"encoder.feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(.*)", r"encoder.feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.(.*)", r"encoder.transformer.pos_conv_embed.conv.\1"),
    (r"encoder\.layer_norm\.(.*)", r"encoder.transformer.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.([qkv]_proj\..*)", r"ms.\1.\2"),  # fused below
    (
        r"encoder\.layers\.(\d+)\.self_attn\.out_proj\.(.*)",
        r"encoder.transformer.layers.\1.attention.attention.out_proj.\2",
    ),
    (
        r"encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.(.*)",
        r"encoder.transformer.layers.\1.attention.rel_attn_embed.\2",
    ),
    (
        r"encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(.*)",
        r"encoder.transformer.layers.\1.attention.gru_rel_pos_linear.\2",
    ),
    (
        r"encoder\.layers\.(\d+)\.self_attn\.grep_a",
        r"encoder.transformer.layers.\1.attention.gru_rel_pos_const",
    ),
    (
        r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(.*)",
        r"encoder.transformer.layers.\1.layer_norm.\2",
    ),
    (
        r"encoder\.layers\.(\d+)\.fc1\.(.*)",
        r"encoder.transformer.layers.\1.feed_forward.intermediate_dense.\2",
    ),
    (
        r"encoder\.layers\.(\d+)\.fc2\.(.*)",
        r"encoder.transformer.layers.\1.feed_forward.output_dense.\2",
    ),
    (
        r"encoder\.layers\.(\d+)\.final_layer_norm\.(.*)",
        r"encoder.transformer.layers.\1.final_layer_norm.\2",
    ),
]
_MS_DROP = re.compile(r"(mask_emb|label_embs_concat|final_proj|project_q|quantizer|target_glu)")


def read_microsoft(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
    """An original WavLM checkpoint: ``{"cfg": flat WavLMConfig dict, "model": state dict}``."""
    ckpt = _torch_load(path)
    if not (
        isinstance(ckpt, dict)
        and isinstance(ckpt.get("cfg"), dict)
        and isinstance(ckpt.get("model"), dict)
    ):
        raise DiarizeError(
            f"{path}: not a Microsoft WavLM checkpoint (expected a dict with 'cfg' and 'model')"
        )
    cfg = ckpt["cfg"].get("model", ckpt["cfg"])  # fairseq nests the model's settings
    cfg = cfg if isinstance(cfg, dict) else ckpt["cfg"]
    arch = _ms_arch(cfg, path)
    state = {_map(k, _MS_RULES): v for k, v in ckpt["model"].items() if not _MS_DROP.match(k)}
    _fuse_qkv(state, "ms.", ("q_proj", "k_proj", "v_proj"))
    return _rename_weight_norm(state), arch, bool(cfg.get("normalize", False))


def _ms_arch(cfg: dict[str, Any], path: Path) -> dict[str, Any]:
    g = cfg.get  # defaults: unilm's WavLMConfig
    if not (g("relative_position_embedding", False) and g("gru_rel_pos", False)):
        raise DiarizeError(f"{path}: WavLM without gated relative position bias is not supported")
    mode = {"default": "group_norm", "layer_norm": "layer_norm"}.get(g("extractor_mode", "default"))
    if mode is None:
        raise DiarizeError(
            f"{path}: unknown extractor_mode {g('extractor_mode')!r} (default | layer_norm)"
        )
    return {
        "extractor_mode": mode,
        "extractor_conv_layer_config": parse_conv_layers(
            g("conv_feature_layers", "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2")
        ),
        "extractor_conv_bias": g("conv_bias", False),
        "encoder_embed_dim": g("encoder_embed_dim", 768),
        "encoder_pos_conv_kernel": g("conv_pos", 128),
        "encoder_pos_conv_groups": g("conv_pos_groups", 16),
        "encoder_num_layers": g("encoder_layers", 12),
        "encoder_num_heads": g("encoder_attention_heads", 12),
        "encoder_num_buckets": g("num_buckets", 320),
        "encoder_max_distance": g("max_distance", 1280),
        "encoder_ff_interm_features": g("encoder_ffn_embed_dim", 3072),
        "encoder_layer_norm_first": g("layer_norm_first", False),
    }


def parse_conv_layers(text: str) -> list[tuple[int, int, int]]:
    """fairseq's ``conv_feature_layers`` string, e.g. ``"[(512,10,5)] + [(512,3,2)] * 4"``,
    evaluated safely: only list/tuple literals of ints, ``+`` and ``*``."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            a, b = ev(node.left), ev(node.right)
            return a + b if isinstance(node.op, ast.Add) else a * b
        raise ValueError(ast.dump(node))

    try:
        layers = ev(ast.parse(text, mode="eval").body)
        return [(int(c), int(k), int(s)) for c, k, s in layers]
    except (SyntaxError, ValueError, TypeError) as e:
        raise DiarizeError(
            f"conv_feature_layers {text!r}: not a list of (dim, kernel, stride) ({e})"
        ) from None
