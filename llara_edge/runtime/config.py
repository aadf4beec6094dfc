"""RuntimeConfig: which engines run a policy and how it decodes (validated on construction).

Fields:
    llm          LLM backend name ("gguf", "onnx", "trt", "torch"; backends.base registry)
    vision       vision engine ("onnx": vision.onnx frame -> embeddings; "onnx+fused":
                 vision_features.onnx + kernels.projector into the LLM input buffer;
                 "torch": the source checkpoint's CLIP + projector; "native": the LLM
                 backend's own encode_image, for gguf the mmproj through llama.cpp's clip,
                 which in llama-cpp-python 0.3.36 drops patch 0 and keeps CLS: never default)
    variant      GGUF file of the manifest's "llm" table: "f16", "q8_0", "q4_k_m", ...
    constrained  True: grammar-constrained jump-forward decoding; False: free greedy + the
                 strict parser (ParseError propagates)
    grammar      answer grammar kind (kernels.answer_grammars.GRAMMARS); None: from the
                 policy format ("llara" -> "llara", "llarva" -> "llarva")
    object_names restrict grammar names to these (None: any name LLaRA's pattern accepts)
    threads      CPU threads of the engines (0: the engine's default)
    n_ctx        KV-cache positions
    providers    ONNX Runtime execution providers in preference order ("tensorrt", "cuda",
                 "cpu"); unavailable ones are skipped, CPU is always appended as fallback
    gpu_layers   llama.cpp layers offloaded to a GPU (0: CPU only)
    cache_type_k llama.cpp's K-cache type (gguf backend; llama.cpp's --cache-type-k): "f16"
                 (default, llama.cpp's too), "q8_0", "bf16" or "f32". The V cache stays f16
                 (a quantised V needs flash attention). q8_0 halves a 1-token extend on CPU
                 but changed 2 of 6 test actions of tiny-llara vs the reference, so it is
                 opt-in (docs/runtime.md, "K cache")
    max_new_tokens  decoding budget per step (answer tokens)
    numbering    LLaRA answers' "Step k: " header: "numbered" (k = 1 + the steps in the
                 prompt's history, as LLaRA writes it), "unnumbered" (no header, as the
                 action-prediction auxiliary answers), "either" (the model chooses; for
                 checkpoints trained on both). The parser reads every form the same
    max_steps    step numbers the LLaRA grammar admits (1..max_steps; one compile serves all)
    draft_tokens speculative decoding from prompt lookup (kernels.prompt_lookup): up to this
                 many answer tokens drafted from the task text and verified in one pass
                 (constrained decoding only; 0: off). Same tokens, fewer passes.
    n_joints     LLARVA joints
    checkpoint   source checkpoint for the torch engines (None: the manifest's path)
    grammar_cache_dir  compiled grammars are cached here (None: memory only)
    engine_cache_dir   TensorRT plans are built and cached here (trt backend)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from llara_edge.errors import ConfigError

PROVIDERS = ("tensorrt", "cuda", "cpu")
NUMBERINGS = ("numbered", "unnumbered", "either")  # kernels.step_header's (no import here)
# K-cache type name (llama.cpp's --cache-type-k) -> ggml.h's enum ggml_type value (llama_cpp
# exports no GGML_TYPE_BF16); the gguf backend sets llama_context_params.type_k from it.
# Here, not in backends/gguf.py, so that reading a config imports no backend (and no NumPy).
GGML_TYPES_K = {"f16": 1, "q8_0": 8, "bf16": 30, "f32": 0}
CACHE_TYPES_K = tuple(GGML_TYPES_K)  # ("f16", "q8_0", "bf16", "f32")
_CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llara-edge"


@dataclass(frozen=True)
class RuntimeConfig:
    llm: str = "gguf"
    vision: str = "onnx"
    variant: str = "q4_k_m"
    constrained: bool = True
    grammar: str | None = None
    object_names: tuple[str, ...] | None = None
    threads: int = 0
    n_ctx: int = 2048
    providers: tuple[str, ...] = ("cpu",)
    gpu_layers: int = 0
    cache_type_k: str = "f16"
    max_new_tokens: int = 256
    numbering: str = "numbered"
    max_steps: int = 32
    draft_tokens: int = 16
    n_joints: int = 7
    checkpoint: Path | None = None
    grammar_cache_dir: Path | None = _CACHE_ROOT / "grammars"
    engine_cache_dir: Path = _CACHE_ROOT / "engines"

    def __post_init__(self) -> None:
        for name in ("llm", "vision", "variant"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
        ints = {"threads": (self.threads, 0), "n_ctx": (self.n_ctx, 16),
                "gpu_layers": (self.gpu_layers, 0), "max_new_tokens": (self.max_new_tokens, 1),
                "draft_tokens": (self.draft_tokens, 0),
                "n_joints": (self.n_joints, 1), "max_steps": (self.max_steps, 1)}
        for name, (value, low) in ints.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
        unknown = [p for p in self.providers if p not in PROVIDERS]
        if unknown or not self.providers:
            raise ConfigError(f"providers must be taken from {PROVIDERS}, got {self.providers}")
        if self.object_names is not None:
            object.__setattr__(self, "object_names", tuple(self.object_names))
        for name in ("checkpoint", "grammar_cache_dir", "engine_cache_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if self.cache_type_k not in CACHE_TYPES_K:
            raise ConfigError(f"cache_type_k must be one of {CACHE_TYPES_K}, "
                              f"got {self.cache_type_k!r}")
        if self.numbering not in NUMBERINGS:
            raise ConfigError(f"numbering must be one of {NUMBERINGS}, got {self.numbering!r}")
        if not isinstance(self.constrained, bool):
            raise ConfigError(f"constrained must be a bool, got {self.constrained!r}")

    @property
    def n_threads(self) -> int:
        """Threads for engines that need an explicit count (llama.cpp)."""
        return self.threads or os.cpu_count() or 1
