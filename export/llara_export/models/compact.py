"""Compact storage of a loaded policy: the LLM's large weights stay in the checkpoint's 16-bit
dtype and every use computes with an fp32 copy made on the spot.

Contract:
    compact(model, dtype=torch.float32) -> model   # in place; model.llm's matrices (>= 2-D,
        at least MIN_NUMEL values) keep their stored fp16/bf16 data behind a torch
        parametrization whose value is `weight.to(dtype)`; everything else (norms, biases,
        the CLIP tower, the projector) is cast to `dtype` as a normal load does
    compacted(model) -> bool

Why: the export's torch reference (parity answers, mmproj, ONNX vision) held the whole
LLaMA-7B in fp32, 26-27 GB resident through every stage (docs/export.md, issue 18), which
does not fit a 32 GB workstation. fp16 -> fp32 and bf16 -> fp32 are exact, so a layer that
upcasts its stored weight when it runs computes exactly what the fp32 model computes, while
only one matrix at a time (at most the 32000 x 4096 embedding, 0.5 GB) exists in fp32.
The price is the upcast on every use (a slower reference). export/llara_export/onnx_llm.py writes
llm.onnx from such a model tensor by tensor, byte-identical to the fp32 load's graph.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

MIN_NUMEL = 1 << 16  # smaller tensors are cast outright (their fp32 copy costs nothing)


class Upcast(nn.Module):
    """Parametrization: the stored tensor, as `dtype` (exact for 16-bit floats -> fp32)."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return stored.to(self.dtype)


def _compact_module(module: nn.Module, dtype: torch.dtype) -> None:
    for name, param in list(module.named_parameters(recurse=False)):
        if param.dtype == dtype or not param.is_floating_point():
            continue
        if param.dim() >= 2 and param.numel() >= MIN_NUMEL:
            # unsafe: the value's dtype differs from the stored one on purpose
            parametrize.register_parametrization(module, name, Upcast(dtype), unsafe=True)
        else:
            setattr(module, name, nn.Parameter(param.detach().to(dtype), requires_grad=False))


def compact(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Keep model.llm's stored 16-bit matrices, computing in `dtype` (module contract)."""
    for part in (model.vision_tower, model.mm_projector):
        part.to(dtype)
    for module in list(model.llm.modules()):
        _compact_module(module, dtype)
    for name, buf in model.llm.named_buffers():
        if buf.is_floating_point() and buf.dtype != dtype:
            raise TypeError(f"buffer {name} is {buf.dtype}: compact() expects fp32 buffers")
    return model.requires_grad_(False)


def compacted(model: nn.Module) -> bool:
    return any(parametrize.is_parametrized(m) for m in model.llm.modules())
