"""llama.cpp for the runtime: the library loader and the owners of its C handles.

The only package that calls llama-cpp-python's raw bindings (`llama_cpp.llama_*`,
`llama_cpp.mtmd_cpp`), as llama-cpp-python's own `_internals.py` does over them; the gguf
backend, the GGUF tokenizer, the export's quantisation and the benchmarks go through it
(tests/test_llama_owner.py greps for raw calls anywhere else).
    lib.py      load_llama_cpp, quiet, build_info, self_test (ggml's backends from the wheel)
    handles.py  LlamaModel, LlamaContext, Batch, MtmdContext, quantize: each C handle freed
                exactly once (close, `with`, garbage collection, a failed construction);
                return codes turned into ArtifactError / EngineError / ContextFullError
Nothing here imports llama_cpp until a function or class is used.
"""

from llara_edge.llama.handles import Batch, LlamaContext, LlamaModel, MtmdContext, quantize
from llara_edge.llama.lib import build_info, load_llama_cpp, quiet, self_test

__all__ = ["Batch", "LlamaContext", "LlamaModel", "MtmdContext", "build_info", "load_llama_cpp",
           "quantize", "quiet", "self_test"]
