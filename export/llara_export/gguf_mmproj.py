"""LLaVA's CLIP tower + projector -> an `mmproj` GGUF for llama.cpp's clip/mtmd (FORMATS.md §4).

Contract:
    write_mmproj_gguf(model, preprocess, path, ftype="f16") -> Path
    kept_blocks(n_layers, select_layer) -> int

Only the encoder blocks that feed the selected hidden state are written
(`clip.vision.block_count` = blocks kept: n_layers - 1 for LLaVA's select layer -2), the
post-layernorm is left out (LLaVA never applies it) and clip.cpp drops the CLS position
itself for a LLaVA projector. Tensor names follow gguf.constants TENSOR_NAMES for the
vision encoder (`v.patch_embd`, `v.blk.N.attn_q`, ...), the projector is `mm.0` / `mm.2`
(`clip.projector_type = "mlp"`). CLIP's fc1/fc2 are `ffn_up` / `ffn_down`.
ftype "f16" stores matrices and the patch convolution in f16, vectors and the position
table in f32; "f32" stores everything in f32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from llara_edge.errors import ArtifactError, ConfigError
from llara_edge.models.preprocess import PreprocessConfig
from llara_export.gguf_llm import write_gguf
from llara_export.models.llava import SELECT_FEATURES, LlavaPolicyModel

MMPROJ_FTYPES: dict[str, tuple[type, int]] = {"f32": (np.float32, 0), "f16": (np.float16, 1)}
# CLIP hidden_act -> clip.use_gelu (False: clip.cpp's quick GELU, as OpenAI CLIP)
CLIP_ACTS: dict[str, bool] = {"quick_gelu": False, "gelu": True}
# HF CLIPEncoderLayer parameter prefix -> clip.cpp tensor name inside v.blk.N
BLOCK_TENSORS: dict[str, str] = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.out_proj": "attn_out",
    "layer_norm1": "ln1",
    "layer_norm2": "ln2",
    "mlp.fc1": "ffn_up",
    "mlp.fc2": "ffn_down",
}
# tensors kept in f32 even in an f16 file (clip.cpp adds them to f32 activations)
F32_TENSORS = ("v.position_embd.weight", "v.class_embd")
FEATURE_LAYER_KEY = "clip.vision.feature_layer"  # clip-impl.h KEY_FEATURE_LAYER


def kept_blocks(n_layers: int, select_layer: int) -> int:
    """Encoder blocks needed for hidden_states[select_layer] (hidden_states has n_layers + 1)."""
    kept = select_layer if select_layer >= 0 else n_layers + 1 + select_layer
    if not 1 <= kept <= n_layers:
        raise ArtifactError(
            f"select layer {select_layer} of a {n_layers}-layer CLIP tower keeps {kept} blocks; "
            "the mmproj needs at least one"
        )
    return kept


def _tower_state(model: LlavaPolicyModel) -> dict[str, torch.Tensor]:
    """Vision tower parameters without the `vision_model.` prefix (transformers 4.x and 5.x)."""
    state = model.vision_tower.state_dict()
    return {k.removeprefix("vision_model."): v for k, v in state.items()}


def _tensors(model: LlavaPolicyModel, kept: int) -> dict[str, torch.Tensor]:
    tower = _tower_state(model)
    out = {
        "v.class_embd": tower["embeddings.class_embedding"],
        "v.patch_embd.weight": tower["embeddings.patch_embedding.weight"],
        "v.position_embd.weight": tower["embeddings.position_embedding.weight"],
        "v.pre_ln.weight": tower["pre_layrnorm.weight"],
        "v.pre_ln.bias": tower["pre_layrnorm.bias"],
    }
    for i in range(kept):
        for hf, name in BLOCK_TENSORS.items():
            for part in ("weight", "bias"):
                out[f"v.blk.{i}.{name}.{part}"] = tower[f"encoder.layers.{i}.{hf}.{part}"]
    proj = model.mm_projector.state_dict()
    for key, value in proj.items():  # "0.weight", "0.bias", "2.weight", "2.bias"
        out[f"mm.{key}"] = value
    return out


def check_vision(model: LlavaPolicyModel) -> None:
    """Refuse what clip.cpp's LLaVA path cannot reproduce."""
    cfg = model.clip_config
    if cfg.hidden_act not in CLIP_ACTS:
        raise ArtifactError(f"unsupported CLIP activation {cfg.hidden_act!r} for the mmproj")
    if model.spec.projector_type != "mlp2x_gelu":
        raise ArtifactError(
            f"unsupported projector {model.spec.projector_type!r} for the mmproj (mlp2x_gelu only)"
        )
    if SELECT_FEATURES[model.spec.select_feature] != 1:
        raise ArtifactError(
            f"unsupported select feature {model.spec.select_feature!r}: clip.cpp drops the CLS"
        )


def _add_metadata(writer, model: LlavaPolicyModel, pre: PreprocessConfig, kept: int,
                  ftype_id: int) -> None:
    cfg = model.clip_config
    writer.add_name("llara-edge vision tower + projector")
    writer.add_description("CLIP vision tower up to the selected layer + LLaVA mlp2x_gelu")
    writer.add_file_type(ftype_id)
    writer.add_bool("clip.has_text_encoder", False)
    writer.add_clip_has_vision_encoder(True)
    writer.add_bool("clip.has_llava_projector", True)
    writer.add_clip_projector_type("mlp")
    writer.add_vision_image_size(int(cfg.image_size))
    writer.add_vision_patch_size(int(cfg.patch_size))
    writer.add_vision_embedding_length(int(cfg.hidden_size))
    writer.add_vision_feed_forward_length(int(cfg.intermediate_size))
    writer.add_vision_projection_dim(int(model.llama_config.hidden_size))
    writer.add_vision_head_count(int(cfg.num_attention_heads))
    writer.add_vision_attention_layernorm_eps(float(cfg.layer_norm_eps))
    writer.add_vision_block_count(int(kept))
    # explicit feature layer: the output of block `kept` (clip.cpp counts the encoder input as
    # 0); without it some clip.cpp versions stop one block early for a LLaVA projector
    writer.add_array(FEATURE_LAYER_KEY, [int(kept)])
    writer.add_vision_image_mean([float(x) for x in pre.mean])
    writer.add_vision_image_std([float(x) for x in pre.std])
    writer.add_vision_use_gelu(CLIP_ACTS[cfg.hidden_act])


def write_mmproj_gguf(
    model: LlavaPolicyModel, preprocess: PreprocessConfig, path: str | Path, ftype: str = "f16"
) -> Path:
    """Write the mmproj GGUF at `path` (see module docstring)."""
    if ftype not in MMPROJ_FTYPES:
        raise ConfigError(f"unknown mmproj ftype {ftype!r}; known: {sorted(MMPROJ_FTYPES)}")
    check_vision(model)
    if preprocess.image_size != model.clip_config.image_size:
        raise ArtifactError(
            f"preprocessing crops to {preprocess.image_size} px, the CLIP tower takes "
            f"{model.clip_config.image_size} px"
        )
    dtype, ftype_id = MMPROJ_FTYPES[ftype]
    kept = kept_blocks(model.clip_config.num_hidden_layers, model.spec.select_layer)
    return write_gguf(Path(path), "clip",
                      lambda w: _add_metadata(w, model, preprocess, kept, ftype_id),
                      _tensors(model, kept), dtype,
                      lambda n, t: t.dim() == 1 or n in F32_TENSORS)
