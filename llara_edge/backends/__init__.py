"""The runtime's inference engines behind one interface, looked up by name, imported lazily.

Registries in `llara_edge.backends.base` (`make_backend`, `register_backend`, `make_vision`,
`register_vision`): LLM backends "gguf" (llama.cpp through `llara_edge/llama/`, the owner of its
handles), "onnx", "trt"; vision engines "onnx", "onnx+fused", "native" (docs/runtime.md).
Other distributions add engines through the entry-point groups `llara_edge.backends` and
`llara_edge.vision`: llara-edge-export adds "torch" (the reference, on a workstation).
"""
