"""TensorRT plugin "llara::fused_projector" (tensorrt.plugin decorator API, TensorRT >= 10.6).

Contract:
    register() -> str                 registers the plugin once (idempotent); returns its id
    add_fused_projector(network, hidden, w1, b1, w2, b2, drop=1) -> ITensor
        adds the plugin to an INetworkDefinition: hidden (N + drop, C), w1 (C, H), b1 (H,),
        w2 (H, D), b2 (D,) ITensors (weights as constants of the engine's dtype) -> (N, D)

Semantics are those of kernels/llara_kernels/projector.py (drop CLS, GEMM + bias + exact GELU, GEMM
+ bias, output in the input's dtype); the implementation runs
kernels/llara_kernels/projector_triton.py on TensorRT's stream, reading and writing TensorRT's own
buffers (torch views over the plugin tensors, no copies). Bound to the LLM input-embedding buffer
with `context.set_tensor_address`, the output lands straight in the prefill buffer. tensorrt, torch
and triton are imported only inside these functions: without them this module imports, and
register() raises KernelError.
"""

from __future__ import annotations

import functools

from llara_kernels.errors import KernelError

PLUGIN_ID = "llara::fused_projector"


@functools.lru_cache(maxsize=1)
def register() -> str:
    """Register the plugin's description and implementation with TensorRT (once)."""
    try:
        import tensorrt.plugin as trtp
    except ImportError as err:
        raise KernelError("the fused-projector plugin needs TensorRT >= 10.6 "
                          "(tensorrt.plugin)") from err

    @trtp.register(PLUGIN_ID)
    def _describe(hidden: trtp.TensorDesc, w1: trtp.TensorDesc, b1: trtp.TensorDesc,
                  w2: trtp.TensorDesc, b2: trtp.TensorDesc, drop: int) -> trtp.TensorDesc:
        out = hidden.like()  # same dtype and rank; rows - drop, columns of w2
        out.shape_expr[0] = hidden.shape_expr[0] - drop
        out.shape_expr[1] = w2.shape_expr[1]
        return out

    @trtp.impl(PLUGIN_ID)
    def _enqueue(hidden: trtp.Tensor, w1: trtp.Tensor, b1: trtp.Tensor, w2: trtp.Tensor,
                 b2: trtp.Tensor, drop: int, outputs: tuple[trtp.Tensor], stream: int) -> None:
        import torch

        from llara_kernels.projector_triton import project_triton

        views = [torch.as_tensor(t, device="cuda") for t in (hidden, w1, b1, w2, b2)]
        out = torch.as_tensor(outputs[0], device="cuda")
        with torch.cuda.stream(torch.cuda.ExternalStream(stream)):
            project_triton(*views, out, drop=drop)

    return PLUGIN_ID


def add_fused_projector(network, hidden, w1, b1, w2, b2, drop: int = 1):
    """Add the plugin layer to `network`; returns its output ITensor (N, D)."""
    import tensorrt.plugin as trtp

    register()
    layer = network.add_plugin(trtp.op.llara.fused_projector(hidden, w1, b1, w2, b2,
                                                             drop=int(drop)))
    return layer.get_output(0)
