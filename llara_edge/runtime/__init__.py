"""The on-robot runtime: an exported artifact on chosen engines, frame + task -> action.

    from llara_edge.runtime import Policy, RuntimeConfig
    with Policy.load("artifact/", RuntimeConfig(llm="gguf", vision="onnx")) as policy:
        step = policy.act(rgb, task)

Names are imported on first use, so `import llara_edge.runtime` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS: dict[str, str] = {
    "Policy": "policy",
    "PolicyStep": "policy",
    "STAGES": "policy",
    "RuntimeConfig": "config",
    "Artifact": "artifact",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
