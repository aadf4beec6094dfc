"""The Backend interface every LLM engine implements, the vision-engine interface, registries.

Contract (all arrays NumPy; one sequence per backend):
    backend = make_backend("gguf", artifact, config)     # runtime.artifact.Artifact,
                                                          # runtime.config.RuntimeConfig
    backend.encode_image(frame uint8 (H, W, 3)) -> float32 (N, hidden)   # its own vision
    backend.prefill(segments) -> float32 (vocab,)    # token-id lists and float32 (N, hidden)
                                                      # embeddings, appended to the KV cache
    backend.extend(token_ids) -> float32 (k, vocab)  # row i predicts the token after ids[i]
    backend.rollback(n)                               # forget the last n positions
    backend.reset()                                   # empty cache (the prefix is forgotten)
    backend.set_prefix(segments) -> (vocab,)          # reset + prefill, remembered as prefix
    backend.reset_to_prefix()                         # back to the prefix (between steps)
    backend.n_past, backend.n_prefix, backend.n_vocab, backend.hidden_size, backend.n_ctx
    backend.close()  (also a context manager)

    vision = make_vision("onnx", artifact, config, backend)
    vision.encode(frame, timings) -> float32 (N, hidden)   # adds seconds to
                                                             # timings["preprocess" | "vision"
                                                             # | "projector"]

Subclasses implement `_prefill(parts)`, `_extend(ids)`, `_truncate(n_keep)`, `_clear()` and
`encode_image`; validation (empty input, context length, rollback range) and the prefix
bookkeeping live here once. Errors at run time: InputError for a bad argument (ids outside
the vocabulary, embeddings of the wrong width, nothing to feed, a rollback past the start, a
frame that is not uint8 (H, W, 3)), ContextFullError when the positions would pass n_ctx,
EngineError when the engine itself fails (llara_edge.errors).
Registries: `@register_backend(name)` / `@register_vision(name)` class decorators; `make_*`
import the module of a built-in name on first use (so the runtime imports llama_cpp,
onnxruntime, tensorrt or torch only for the engines it asks for). A name neither registered
nor built in is a ConfigError listing the known names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from llara_drivers.registry import Registry
from llara_edge.errors import ConfigError, ContextFullError, InputError

if TYPE_CHECKING:
    from llara_edge.runtime.artifact import Artifact
    from llara_edge.runtime.config import RuntimeConfig

Segment = Sequence[int] | np.ndarray  # token ids | float32 (N, hidden) embeddings
Part = list[int] | np.ndarray  # normalised: ints | C-contiguous float32 (N, hidden)


class Backend(ABC):
    """One LLM engine with a KV cache for a single sequence (see the module contract)."""

    name: str = "?"
    n_vocab: int
    hidden_size: int
    n_ctx: int
    _n_prefix: int = 0

    # --- implemented by engines ------------------------------------------------------
    @abstractmethod
    def encode_image(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB frame -> float32 (N, hidden) image embeddings."""

    @property
    @abstractmethod
    def n_past(self) -> int:
        """Positions in the KV cache."""

    @abstractmethod
    def _prefill(self, parts: list[Part]) -> np.ndarray:
        """Append validated parts; float32 (vocab,) logits after the last position."""

    @abstractmethod
    def _extend(self, ids: list[int]) -> np.ndarray:
        """Append k ids; float32 (k, vocab)."""

    @abstractmethod
    def _truncate(self, n_keep: int) -> None:
        """Keep the first n_keep cached positions."""

    @abstractmethod
    def _clear(self) -> None:
        """Empty the cache."""

    @abstractmethod
    def close(self) -> None:
        """Free engine resources (idempotent)."""

    # --- shared logic ------------------------------------------------------------------
    @property
    def n_prefix(self) -> int:
        return self._n_prefix

    def _parts(self, segments: Sequence[Segment]) -> list[Part]:
        parts: list[Part] = []
        for seg in segments:
            if isinstance(seg, np.ndarray) and seg.ndim == 2:
                if seg.shape[1] != self.hidden_size:
                    raise InputError(f"embeddings must be (N, {self.hidden_size}), got "
                                      f"{seg.shape}")
                part: Part = np.ascontiguousarray(seg, dtype=np.float32)
            else:
                part = [int(t) for t in seg]
                if any(not 0 <= t < self.n_vocab for t in part):
                    raise InputError(f"token ids must be in [0, {self.n_vocab}): {part}")
            if len(part):
                parts.append(part)
        return parts

    def _check_room(self, n_new: int) -> None:
        if n_new == 0:
            raise InputError("at least one position is needed")
        if self.n_past + n_new > self.n_ctx:
            raise ContextFullError(f"context full: {self.n_past} + {n_new} > n_ctx {self.n_ctx}")

    def prefill(self, segments: Sequence[Segment]) -> np.ndarray:
        parts = self._parts(segments)
        self._check_room(sum(len(p) for p in parts))
        return self._prefill(parts)

    def extend(self, token_ids: Sequence[int]) -> np.ndarray:
        (part,) = self._parts([token_ids]) or [[]]
        self._check_room(len(part))
        return self._extend(part)

    def rollback(self, n: int) -> None:
        if not 0 <= n <= self.n_past:
            raise InputError(f"cannot roll back {n} of {self.n_past} positions")
        if n:
            self._truncate(self.n_past - n)
            self._n_prefix = min(self._n_prefix, self.n_past)

    def reset(self) -> None:
        self._clear()
        self._n_prefix = 0

    def set_prefix(self, segments: Sequence[Segment]) -> np.ndarray:
        """Compute `segments` from an empty cache and keep them as the reusable prefix."""
        self.reset()
        logits = self.prefill(segments)
        self._n_prefix = self.n_past
        return logits

    def reset_to_prefix(self) -> None:
        self.rollback(self.n_past - self._n_prefix)

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VisionEngine(ABC):
    """Frame -> LLM input embeddings, possibly on a different engine than the LLM."""

    name: str = "?"

    @abstractmethod
    def encode(self, frame: np.ndarray, timings: dict[str, float]) -> np.ndarray:
        """uint8 (H, W, 3) -> float32 (N, hidden); adds stage seconds to `timings`."""

    @abstractmethod
    def close(self) -> None:
        """Free engine resources (idempotent)."""


def check_frame(frame: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 (H, W, 3) RGB frame, or InputError."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"frames must be uint8 (H, W, 3) RGB, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


# --- registries -------------------------------------------------------------------------
BackendFactory = Callable[["Artifact", "RuntimeConfig"], Backend]
VisionFactory = Callable[["Artifact", "RuntimeConfig", Backend], VisionEngine]

# "torch" (LLM and vision) comes from llara-edge-export's entry points: the runtime never
# imports the workstation toolchain.
BACKENDS = Registry("backend", {
    "gguf": "llara_edge.backends.gguf",
    "onnx": "llara_edge.backends.onnx",
    "trt": "llara_edge.backends.trt",
}, attr="name", group="llara_edge.backends", error=ConfigError)
VISION = Registry("vision engine", {
    "onnx": "llara_edge.backends.vision",
    "onnx+fused": "llara_edge.backends.vision",
    "native": "llara_edge.backends.vision",
}, group="llara_edge.vision", error=ConfigError)


def register_backend(name: str) -> Callable[[type], type]:
    """Class decorator: the class (with `from_artifact(artifact, config)`) serves `name`."""
    return BACKENDS.register(name)


def register_vision(name: str) -> Callable[[type], type]:
    """Class decorator: the class (with `from_artifact(artifact, config, backend)`)."""
    return VISION.register(name)


def backend_names() -> list[str]:
    return BACKENDS.names()


def vision_names() -> list[str]:
    return VISION.names()


def make_backend(name: str, artifact: Artifact, config: RuntimeConfig) -> Backend:
    """The LLM backend `name` over the artifact's files."""
    return BACKENDS.get(name).from_artifact(artifact, config)


def make_vision(name: str, artifact: Artifact, config: RuntimeConfig,
                backend: Backend) -> VisionEngine:
    """The vision engine `name`; `backend` is the LLM it feeds (sizes, "native" vision)."""
    return VISION.get(name).from_artifact(artifact, config, backend)
