"""Inference backends behind one interface, looked up by name and imported lazily.

Contract: `load_backend_class(name)` returns the backend class registered under `name`
(importing its module only then, so the runtime never imports torch unless "torch" is asked
for); unknown names raise ConfigError. Registered: "torch" (reference,
`llara_edge.backends.torch_ref.TorchReferenceBackend`). Later: "gguf", "onnx", "trt".
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
