"""Inference backends behind one interface, looked up by name and imported lazily.

The runtime's registries are in `llara_edge.backends.base` (`make_backend`, `register_backend`,
`make_vision`, `register_vision`): backends "gguf", "onnx", "trt", "torch" (an adapter over
the reference) and vision engines "onnx", "onnx+fused", "torch", "native" (docs/runtime.md).

`REFERENCE` maps a name to the raw reference engine class ("torch":
`llara_edge.backends.torch_ref.TorchReferenceBackend`, torch tensors in and out) for the
export's parity code and the evaluation: `load_backend_class(name)`; unknown names raise
ConfigError.
"""

from __future__ import annotations

from llara_edge.registry import Registry

REFERENCE = Registry("backend", {"torch": "llara_edge.backends.torch_ref"})


def load_backend_class(name: str) -> type:
    """The reference engine class registered under `name` (its module imported on demand)."""
    return REFERENCE.get(name)
