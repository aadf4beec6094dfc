"""Inference backends behind one interface, looked up by name and imported lazily.

The runtime's registry is `llara_edge.backends.base` (`make_backend`, `register_backend`,
`make_vision`, `register_vision`): backends "gguf", "onnx", "trt", "torch" (an adapter over
the reference) and vision engines "onnx", "onnx+fused", "torch", "native" (docs/runtime.md).

`load_backend_class(name)` here returns the raw reference engine class ("torch":
`llara_edge.backends.torch_ref.TorchReferenceBackend`, torch tensors in and out) for the
export's parity code and the evaluation; unknown names raise ConfigError.
"""

from __future__ import annotations

import importlib

from llara_edge.errors import ConfigError

# name -> "module:attribute" of the backend class
BACKENDS: dict[str, str] = {
    "torch": "llara_edge.backends.torch_ref:TorchReferenceBackend",
}


def load_backend_class(name: str) -> type:
    """The backend class registered under `name` (its module is imported on demand)."""
    try:
        target = BACKENDS[name]
    except KeyError as err:
        raise ConfigError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}") from err
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)
