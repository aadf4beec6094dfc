"""RuntimeConfig: which engines run a policy and how it decodes (validated on construction).

Every field is documented once, in its `opt(...)` help below: that text is also the help of
the command line's option (`llara_edge.cli.options` makes the options of `llara-edge run` from
these fields, `--threads` for `threads`, ...; fields with `cli=False` have none).

Threads have one meaning in every engine: `threads` is the number of CPU threads each engine
(llama.cpp decode and batch, onnxruntime's intra-op pool, the fused projector's numba
epilogue and BLAS, torch) runs on; 0 means every CPU this process may run on
(`os.sched_getaffinity`, so a container's or `taskset`'s CPU set, not the host's count).
Engines read `config.n_threads`, the resolved number, never `threads` itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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


def opt(default, help: str, cli: bool = True, choices: tuple | None = None, **kw):
    """A RuntimeConfig field with its documentation (the CLI option's help too)."""
    return field(default=default, metadata={"help": help, "cli": cli, "choices": choices}, **kw)


@dataclass(frozen=True)
class RuntimeConfig:
    llm: str = opt("gguf", "LLM backend (backends.base registry): gguf, onnx, trt; torch "
                   "with llara-edge-export installed")
    vision: str = opt("onnx", "vision engine: onnx (vision.onnx frame -> embeddings), "
                      "onnx+fused (vision_features.onnx + the fused projector kernel into the "
                      "LLM input buffer), native (the LLM backend's own image encoder; for "
                      "gguf the mmproj through llama.cpp's clip, which in llama-cpp-python "
                      "0.3.36 drops patch 0 and keeps CLS: never the default), torch")
    variant: str = opt("q4_k_m", "GGUF file of the manifest's \"llm\" table: f16, q8_0, "
                       "q4_k_m, ...")
    constrained: bool = opt(True, "grammar-constrained jump-forward decoding (False: free "
                            "greedy + the strict parser, whose ParseError propagates)",
                            cli=False)
    grammar: str | None = opt(None, "answer grammar kind (decoding.answer_grammars.GRAMMARS); "
                              "None: the policy format's", cli=False)
    object_names: tuple[str, ...] | None = opt(
        None, "restrict grammar names to these (None: any name LLaRA's pattern accepts)",
        cli=False)
    names_from_prompt: bool = opt(
        False, "object names restricted to those the prompt mentions as <p>name</p> (where it "
        "mentions any): the first piece picks the name and the rest is forced. Opt-in: "
        "released LLaRA models name objects the prompt does not mention in about half of "
        "their answers (docs/runtime.md, Object names)")
    name_max_bytes: int = opt(
        64, "longest object name the compiled grammar admits (bytes); each step bounds names "
        "at the longest VIMA name (49) or the longest name its prompt mentions, if longer",
        cli=False)
    threads: int = opt(0, "CPU threads of each engine (0: every CPU this process may run on)")
    n_ctx: int = opt(2048, "KV-cache positions")
    providers: tuple[str, ...] = opt(
        ("cpu",), "ONNX Runtime execution providers in preference order; unavailable ones "
        "are skipped, CPU is always appended as the fallback", choices=PROVIDERS)
    gpu_layers: int = opt(0, "llama.cpp layers offloaded to a GPU (a CUDA build of llama.cpp; "
                          "0: CPU only)")
    cache_type_k: str = opt(
        "f16", "llama.cpp's K-cache type (--cache-type-k). The V cache stays f16 (a quantised "
        "V needs flash attention). q8_0 halves a 1-token extend on CPU but changed 2 of 6 test "
        "actions of tiny-llara vs the reference, so it is opt-in (docs/runtime.md, K cache)",
        choices=CACHE_TYPES_K)
    max_new_tokens: int = opt(256, "decoding budget per step (answer tokens)")
    numbering: str | None = opt(
        None, "LLaRA answers' 'Step k: ' header: numbered (k = 1 + the steps in the "
        "prompt's history, as LLaRA writes it), unnumbered (no header, as the action-"
        "prediction auxiliary answers), either (the model chooses; checkpoints trained on "
        "both). Default: from the artifact (the answer forms its manifest records; either "
        "when it records none). The parser reads every form the same", choices=NUMBERINGS)
    prompt_variant: str | None = opt(
        None, "the policy format's prompt variant (LLaRA: standard, scene_no_final_period: "
        "how a scene block ends). Default: from the artifact (its manifest's prompt_variant; "
        "the format's default when it records none)")
    max_steps: int = opt(32, "step numbers the LLaRA grammar admits (1..max_steps; one "
                         "compile serves all)", cli=False)
    draft_tokens: int = opt(16, "prompt-lookup speculation (decoding.prompt_lookup): up to "
                            "this many answer tokens drafted from the task text and verified "
                            "in one pass (constrained decoding only; 0: off). Same tokens, "
                            "fewer passes")
    n_joints: int = opt(7, "LLARVA joints", cli=False)
    checkpoint: Path | None = opt(None, "source checkpoint for the torch engines (None: the "
                                  "manifest's path)", cli=False)
    grammar_cache_dir: Path | None = opt(_CACHE_ROOT / "grammars", "compiled grammars are "
                                         "cached here (None: memory only)", cli=False)
    engine_cache_dir: Path = opt(_CACHE_ROOT / "engines", "TensorRT plans are built and cached "
                                 "here (trt backend)", cli=False)

    def __post_init__(self) -> None:
        for name in ("llm", "vision", "variant"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
        ints = {"threads": (self.threads, 0), "n_ctx": (self.n_ctx, 16),
                "gpu_layers": (self.gpu_layers, 0), "max_new_tokens": (self.max_new_tokens, 1),
                "draft_tokens": (self.draft_tokens, 0), "n_joints": (self.n_joints, 1),
                "max_steps": (self.max_steps, 1), "name_max_bytes": (self.name_max_bytes, 2)}
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
        if self.numbering is not None and self.numbering not in NUMBERINGS:
            raise ConfigError(f"numbering must be one of {NUMBERINGS} (or None: from the "
                              f"artifact), got {self.numbering!r}")
        if self.prompt_variant is not None and (not isinstance(self.prompt_variant, str)
                                                or not self.prompt_variant):
            raise ConfigError(f"prompt_variant must be a non-empty string or None, got "
                              f"{self.prompt_variant!r}")
        if self.names_from_prompt and self.object_names is not None:
            raise ConfigError("names_from_prompt and object_names both restrict the object "
                              "names: give one")
        if not isinstance(self.constrained, bool):
            raise ConfigError(f"constrained must be a bool, got {self.constrained!r}")

    @property
    def n_threads(self) -> int:
        """The CPU threads every engine runs on: `threads`, or with 0 every CPU this process
        may run on (its affinity mask: a container's or taskset's CPU set)."""
        return self.threads or usable_cpus()


def usable_cpus() -> int:
    """CPUs this process may run on (sched_getaffinity where the OS has it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
