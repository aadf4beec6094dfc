"""LLaVA's vision path -> ONNX: raw camera frame in, image embeddings (or CLIP features) out.

Contract:
    export_vision(model, preprocess, out_dir, scratch) -> VisionExport
        out_dir/vision.onnx            frame uint8 [H, W, 3] -> image_embeds float32 [N, D]
        out_dir/vision_features.onnx   frame uint8 [H, W, 3] -> features float32 [N + drop, C]
        out_dir/projector.safetensors  w1 (C, Hp), b1 (Hp,), w2 (Hp, D), b2 (D,) float32
    VisionExport(files, n_tokens, drop, vision_hidden, llm_hidden, kept_blocks)

Both graphs start with the preprocessing graph of export/llara_export/onnx_preprocess.py (pad to
square with the mean colour, PIL-equivalent bicubic resize, crop, normalise), then CLIP's patch
embedding + class/position embeddings + pre-layernorm and only the encoder blocks that feed the
selected layer (kept_blocks: for select layer -2 the last block is not in the graph, and the
post-layernorm never is). vision.onnx drops the first `drop` rows (CLS for select_feature "patch")
and applies the mlp2x_gelu projector (exact erf GELU); vision_features.onnx returns the selected
hidden states with CLS, for the runtime's fused projector kernel
(kernels/llara_kernels/projector.py), whose ProjectorWeights layout (input-major, Linear.weight.T)
projector.safetensors stores; its metadata holds `drop` and the projector type. N = (S / patch)^2
image tokens, C = CLIP width, D = LLM width.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from llara_edge.errors import ArtifactError
from llara_edge.models.preprocess import PreprocessConfig
from llara_export.gguf_mmproj import kept_blocks
from llara_export.models.llava import SELECT_FEATURES, LlavaPolicyModel
from llara_export.onnx_common import ONNX_FILES, save_onnx, torch_to_onnx
from llara_export.onnx_preprocess import preprocess_model

VISION_FILE = ONNX_FILES["vision"]
FEATURES_FILE = ONNX_FILES["vision_features"]
PROJECTOR_FILE = ONNX_FILES["projector"]


@dataclass
class VisionExport:
    files: list[Path] = field(default_factory=list)
    n_tokens: int = 0  # N, rows of image_embeds
    drop: int = 1  # leading rows of `features` the projector skips (CLS)
    vision_hidden: int = 0  # C
    llm_hidden: int = 0  # D
    kept_blocks: int = 0  # CLIP encoder blocks in the graphs


def _layer_call(layer: nn.Module):
    """CLIPEncoderLayer without a mask: transformers 4.x wants a causal mask argument too and
    returns a tuple, 5.x takes (hidden, mask) and returns the tensor."""
    params = inspect.signature(layer.forward).parameters
    extra = (None,) if "causal_attention_mask" in params else ()

    def run(hidden: torch.Tensor) -> torch.Tensor:
        out = layer(hidden, None, *extra)
        return out[0] if isinstance(out, tuple) else out

    return run


class _Tower(nn.Module):
    """pixel_values (1, 3, S, S) -> selected hidden states (N + drop, C), or projected (N, D)."""

    def __init__(self, model: LlavaPolicyModel, kept: int, project: bool):
        super().__init__()
        tower = model.vision_tower
        vm = getattr(tower, "vision_model", tower)  # transformers 4.x nests, 5.x does not
        self.embeddings, self.pre_layrnorm = vm.embeddings, vm.pre_layrnorm
        self.layers = nn.ModuleList(list(vm.encoder.layers)[:kept])
        self._calls = [_layer_call(layer) for layer in self.layers]
        self.drop = SELECT_FEATURES[model.spec.select_feature]
        self.projector = model.mm_projector if project else None

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.pre_layrnorm(self.embeddings(pixel_values))  # (1, 1 + P, C)
        for call in self._calls:
            hidden = call(hidden)
        if self.projector is None:
            return hidden[0]
        return self.projector(hidden[0, self.drop :])


def _check(model: LlavaPolicyModel, preprocess: PreprocessConfig) -> int:
    if model.spec.projector_type != "mlp2x_gelu":
        raise ArtifactError(f"unsupported projector {model.spec.projector_type!r} for the ONNX "
                            "export (mlp2x_gelu: the fused projector kernel's layout)")
    if preprocess.image_size != model.clip_config.image_size:
        raise ArtifactError(f"preprocessing crops to {preprocess.image_size} px, the CLIP tower "
                            f"takes {model.clip_config.image_size} px")
    if next(model.vision_tower.parameters()).dtype != torch.float32:
        raise ArtifactError("the ONNX export traces a float32 model (load it with float32)")
    return kept_blocks(model.clip_config.num_hidden_layers, model.spec.select_layer)


def _write_projector(model: LlavaPolicyModel, path: Path, drop: int) -> Path:
    """mm_projector.{0,2} as ProjectorWeights (input-major), written atomically."""
    from safetensors.numpy import save_file

    proj = model.mm_projector
    tensors = {"w1": proj[0].weight.detach().numpy().T, "b1": proj[0].bias.detach().numpy(),
               "w2": proj[2].weight.detach().numpy().T, "b2": proj[2].bias.detach().numpy()}
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    meta = {"drop": str(drop), "projector_type": model.spec.projector_type,
            "layout": "w1 (C, H), b1 (H,), w2 (H, D), b2 (D,): Linear.weight.T"}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # safetensors creates 0600; an artifact is shared
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"cannot write {path}: {err}") from err
    return path


def export_vision(model: LlavaPolicyModel, preprocess: PreprocessConfig, out_dir: Path,
                  scratch: Path) -> VisionExport:
    """Write vision.onnx, vision_features.onnx and projector.safetensors (module docstring)."""
    from onnx import compose

    kept = _check(model, preprocess)
    size = model.clip_config.image_size
    pre = preprocess_model(preprocess)
    drop = SELECT_FEATURES[model.spec.select_feature]
    result = VisionExport(drop=drop, vision_hidden=int(model.clip_config.hidden_size),
                          llm_hidden=int(model.llama_config.hidden_size), kept_blocks=kept,
                          n_tokens=int(model.num_image_tokens))
    for name, project, output in ((VISION_FILE, True, "image_embeds"),
                                  (FEATURES_FILE, False, "features")):
        tower = torch_to_onnx(_Tower(model, kept, project), (torch.zeros(1, 3, size, size),),
                              ["pixel_values"], [output], {}, scratch / name)
        merged = compose.merge_models(pre, tower, io_map=[("pixel_values", "pixel_values")],
                                      producer_name="llara-edge")
        result.files += save_onnx(merged, out_dir / name)
    result.files.append(_write_projector(model, out_dir / PROJECTOR_FILE, drop))
    return result
