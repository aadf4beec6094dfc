"""llara_edge.kernels: the hot paths of a control step, each with a plain NumPy reference.

- constrained decoding: answer grammars (answer_grammars, bytefsm) compiled against a
  tokenizer's vocabulary (token_grammar.compile_grammar), greedy decoding with jump forward
  over any `extend` backend (constrained_decode.decode_constrained) with prompt-lookup
  speculation (prompt_lookup.PromptLookup; reference_lookup beside it), masked argmax
  (masked_argmax: numba; kernels/cuda/masked_argmax.cu via CMakeLists.txt);
- fused vision projector (projector: NumPy reference and CPU path; projector_triton,
  kernels/cuda/fused_projector.cu, trt_plugin for GPUs).

Names below are imported on first use, so `import llara_edge.kernels` stays cheap (numba
compiles nothing until a kernel is called; GPU SDKs are imported only by their modules).
"""

from __future__ import annotations

if __name__ != "llara_edge.kernels":  # bare import: llara_edge/toplevel.py
    from llara_edge.toplevel import defer

    defer(__name__, __file__)

from llara_edge.lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "compile_grammar": "token_grammar",
    "TokenGrammar": "token_grammar",
    "GrammarSpec": "answer_grammars",
    "GRAMMARS": "answer_grammars",
    "decode_constrained": "constrained_decode",
    "decode_greedy": "constrained_decode",
    "DecodeResult": "constrained_decode",
    "Lookahead": "constrained_decode",
    "PromptLookup": "prompt_lookup",
    "masked_argmax": "masked_argmax",
    "masked_argmax_ref": "masked_argmax",
    "pack_mask": "masked_argmax",
    "project": "projector",
    "project_ref": "projector",
    "ProjectorWeights": "projector",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
