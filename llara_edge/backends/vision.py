"""Vision engines separate from the LLM engine (NanoLLM-style: vision on ONNX, LLM on GGUF).

Contract (base.VisionEngine): engine.encode(frame uint8 (H, W, 3), timings) -> float32
(N, hidden), adding seconds to timings["preprocess"], ["vision"], ["projector"].
- "onnx": vision.onnx, preprocessing and projector folded into the graph (frame in,
  image_embeds out): the whole run is "vision"; "preprocess" is the frame check only.
- "onnx+fused": vision_features.onnx (frame -> CLIP select-layer states with CLS) then
  kernels.projector.project (drop CLS, GEMM + bias + erf GELU, GEMM + bias) written into one
  float32 (N, hidden) buffer owned by the engine and reused every step; the gguf backend
  points its llama_batch at that buffer, so the projector writes the LLM input directly.
  The returned array IS that buffer: it is overwritten by the next encode. The projector's
  numba epilogues run on config.n_threads threads and its two GEMMs on NumPy's BLAS limited
  to as many (threadpoolctl, process-wide, at load): a BLAS
  pool wider than the engine's share of cores is woken every step and waits a scheduler
  slice for busy cores (docs/runtime.md: 24-43 ms per step measured here). A projector
  under BLAS_PARALLEL_MIN_MACS per frame gets ONE BLAS thread: OpenBLAS workers spin after
  each GEMM and take the cores the LLM's prefill needs next (tiny-llara on 2 cores: a numpy
  GEMM before a torch workload made it 2-4x slower; the onnx+fused step was 60 ms vs 19 ms
  with ONNX vision). LLaVA-1.5's projector (576 x (1024 x 4096 + 4096 x 4096) = 12 G MACs)
  keeps config.n_threads.
- "native": the LLM backend's own encode_image (gguf: llama.cpp's clip on the mmproj, with
  the 0.3.36 defect described in backends/gguf.py; onnx: vision.onnx; trt: its engine).
("torch" lives in backends/torch_backend.py.)
"""

from __future__ import annotations

import time

import numpy as np

from llara_edge.backends.base import Backend, VisionEngine, check_frame, register_vision
from llara_edge.errors import ArtifactError, ConfigError

BLAS_PARALLEL_MIN_MACS = 1 << 28  # per frame, both GEMMs: below it the projector's BLAS runs
                                  # on one thread (see the module note)


def _check_width(embeds_hidden: int, backend: Backend, what: str) -> None:
    if embeds_hidden != backend.hidden_size:
        raise ArtifactError(f"{what} gives width {embeds_hidden}, the LLM expects "
                            f"{backend.hidden_size}")


@register_vision("onnx")
class OnnxVision(VisionEngine):
    name = "onnx"

    def __init__(self, runner, backend: Backend):
        self.runner = runner
        _check_width(runner.outputs["image_embeds"][0][-1], backend, "vision.onnx")

    @classmethod
    def from_artifact(cls, artifact, config, backend: Backend) -> OnnxVision:
        from llara_edge.backends.onnx import OrtRunner

        return cls(OrtRunner(artifact.onnx("vision"), config), backend)

    def encode(self, frame: np.ndarray, timings: dict[str, float]) -> np.ndarray:
        t0 = time.perf_counter()
        frame = check_frame(frame)
        t1 = time.perf_counter()
        out = self.runner({"frame": frame})["image_embeds"]
        timings["preprocess"] += t1 - t0
        timings["vision"] += time.perf_counter() - t1
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        self.runner = None


def load_projector(path, default_drop: int):
    """projector.safetensors (w1 (C, H), b1, w2 (H, D), b2; metadata "drop") ->
    (ProjectorWeights, drop)."""
    from safetensors import SafetensorError, safe_open

    from llara_kernels.projector import ProjectorWeights

    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            arrays = {k: fh.get_tensor(k) for k in ("w1", "b1", "w2", "b2")}
        return ProjectorWeights(**arrays), int(meta.get("drop", default_drop))
    except (OSError, SafetensorError, KeyError, ValueError, ConfigError) as err:
        raise ArtifactError(f"unreadable projector weights {path}: {err}") from err


@register_vision("onnx+fused")
class FusedOnnxVision(VisionEngine):
    name = "onnx+fused"

    def __init__(self, runner, weights, drop: int, backend: Backend, threads: int = 1):
        from llara_kernels.projector import ProjectorWorkspace

        self.runner, self.weights, self.drop = runner, weights, drop
        self.threads = threads  # numba threads of the projector epilogue (config.n_threads)
        _check_width(weights.dims[2], backend, "projector.safetensors")
        n_rows = runner.outputs["features"][0][0]
        if isinstance(n_rows, int) and n_rows > drop:
            self._out = np.empty((n_rows - drop, weights.dims[2]), dtype=np.float32)
        else:  # dynamic row count: sized on the first frame
            self._out = np.empty((0, weights.dims[2]), dtype=np.float32)
        self._workspace = ProjectorWorkspace(max(len(self._out), 1), weights)

    @classmethod
    def from_artifact(cls, artifact, config, backend: Backend) -> FusedOnnxVision:
        from llara_edge.backends.onnx import OrtRunner

        runner = OrtRunner(artifact.onnx("vision_features"), config)
        weights, drop = load_projector(artifact.onnx("projector"), artifact.drop_cls)
        engine = cls(runner, weights, drop, backend, config.n_threads)
        rows = len(engine._out) or 576  # dynamic row count: LLaVA-1.5's 24 x 24 patches
        c, h, d = weights.dims
        small = rows * (c * h + h * d) < BLAS_PARALLEL_MIN_MACS
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1 if small else config.n_threads, user_api="blas")
        return engine

    def encode(self, frame: np.ndarray, timings: dict[str, float]) -> np.ndarray:
        import numba

        from llara_kernels.projector import ProjectorWorkspace, project

        t0 = time.perf_counter()
        frame = check_frame(frame)
        t1 = time.perf_counter()
        feats = self.runner({"frame": frame})["features"]  # (N + drop, C)
        t2 = time.perf_counter()
        n = feats.shape[0] - self.drop
        # per call: numba's thread count is thread-local; a parallel region wider than the
        # engine's share of cores waits a scheduler slice for a busy core (~40 ms measured)
        numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        if self._out.shape[0] != n:
            self._out = np.empty((n, self.weights.dims[2]), dtype=np.float32)
            self._workspace = ProjectorWorkspace(n, self.weights)
        project(feats, self.weights, self._out, self._workspace, drop=self.drop)
        t3 = time.perf_counter()
        timings["preprocess"] += t1 - t0
        timings["vision"] += t2 - t1
        timings["projector"] += t3 - t2
        return self._out

    def close(self) -> None:
        self.runner = None


@register_vision("native")
class NativeVision(VisionEngine):
    name = "native"

    def __init__(self, backend: Backend):
        self.backend = backend

    @classmethod
    def from_artifact(cls, artifact, config, backend: Backend) -> NativeVision:
        return cls(backend)

    def encode(self, frame: np.ndarray, timings: dict[str, float]) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.backend.encode_image(frame)
        timings["vision"] += time.perf_counter() - t0
        return out

    def close(self) -> None:
        """The backend owns the engine and closes it."""
        self.backend = None
