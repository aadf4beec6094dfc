"""The on-robot runtime: an exported artifact on chosen engines, frame + task -> action.

    from llara_edge.runtime import Policy, RuntimeConfig
    with Policy.load("artifact/", RuntimeConfig(llm="gguf", vision="onnx")) as policy:
        step = policy.act(rgb, task)

Names are imported on first use, so `import llara_edge.runtime` stays cheap.
"""

from __future__ import annotations

from llara_edge.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Policy": "policy",
    "PolicyStep": "policy",
    "STAGES": "policy",
    "RuntimeConfig": "config",
    "Artifact": "artifact",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
