"""llara_export (the export/ component): the workstation toolchain of llara-edge.

A finetuned LLaVA-1.5 checkpoint (original LLaVA or llava-hf layout) -> GGUF (LLM variants +
mmproj), ONNX graphs, a manifest, and a parity report measured through the runtime's own
engines against the torch reference (`torch_ref`, `models`). Training of the tiny fixture
policy (`training`) and the checkpoint evaluation command live here too. Needs torch,
transformers, sentencepiece, gguf and onnx; never installed on a robot.
"""
