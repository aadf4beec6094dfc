"""The "onnx" backend: the artifact's embed.onnx + llm.onnx (+ vision.onnx) on ONNX Runtime.

Contract:
    OrtRunner(path, config)           # one InferenceSession; a kv.Runner
    runner.providers                  # execution providers the session really uses
    runner.fallback                   # requested providers that were not available
    OnnxBackend.from_artifact(artifact, config) -> kv.KVCacheBackend over the graphs

Execution providers come from config.providers in preference order ("tensorrt" ->
TensorrtExecutionProvider with its engine cache under config.engine_cache_dir and FP16,
"cuda" -> CUDAExecutionProvider, "cpu"); the ones this onnxruntime build lacks are skipped
and recorded in `fallback`, and CPUExecutionProvider is always last, so a session always
opens (on CPU when nothing else is there). Graph files are hash-checked through the
artifact before they are opened; vision.onnx is opened on the first encode_image only.
Intra-op spinning is off: an idle ONNX Runtime worker otherwise busy-waits after each run and
takes a core from the engine that runs next (llama.cpp's threads, the other session, the
decode loop). On 2 cores with 2 threads per engine, a gguf step with ONNX vision took 35 ms
p50 with spinning and 18 ms without; an all-ONNX step 33 ms and 20 ms (tiny-llara, 320x240
sim frames). With one thread there are no workers and nothing changes. A graph whose weights
are in NAME.onnx.data (a 7B llm.onnx: 27 GB fp32) runs from the memory-mapped file without
prepacked copies (map_external_weights). A run that onnxruntime fails is an EngineError
naming the graph.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from llara_edge.backends.base import register_backend
from llara_edge.backends.kv import KVCacheBackend, Spec
from llara_edge.errors import ArtifactError, EngineError

log = logging.getLogger(__name__)

EP_NAMES = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
            "cpu": "CPUExecutionProvider"}
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8}


def _spec(arg) -> Spec:
    shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
    return shape, np.dtype(_DTYPES.get(arg.type, np.float32))


def _providers(config, available: list[str]) -> tuple[list, list[str]]:
    """(providers argument for InferenceSession, requested names that are unavailable)."""
    chosen, missing = [], []
    for name in config.providers:
        ep = EP_NAMES[name]
        if ep not in available:
            missing.append(name)
        elif name == "tensorrt":
            cache = Path(config.engine_cache_dir) / "ort-trt"
            chosen.append((ep, {"trt_engine_cache_enable": True, "trt_fp16_enable": True,
                                "trt_engine_cache_path": str(cache)}))
        elif name != "cpu":
            chosen.append(ep)
    chosen.append(EP_NAMES["cpu"])
    return chosen, missing


def map_external_weights(opts, path: str | Path) -> bool:
    """Run a graph whose weights are in NAME.onnx.data from the memory-mapped file.

    onnxruntime maps external data at aligned offsets (export/llara_export/onnx_weights.py), but its
    CPU MatMul kernels then prepack every constant B into an anonymous copy: a 7B fp32 llm.onnx held
    ~827 MiB per layer (28.5 GB at 32 layers) of unreclaimable memory. Without prepacking the
    weights stay file-backed pages the kernel can drop and re-read (measured on a 7B-shaped 2-layer
    graph: 27 MiB anonymous after a run instead of 2071) at ~1-8 % more time for plain prefill and
    single-token decode, ~20 % more for the runtime's drafted decode (short multi-token passes)
    (docs/export.md). A prepacked 7B would not
    fit a 32 GB machine at all. Inline graphs are left as they are."""
    if not Path(f"{path}.data").is_file():
        return False
    opts.add_session_config_entry("session.disable_prepacking", "1")
    return True


class OrtRunner:
    """One onnxruntime session called with and returning name -> array dicts."""

    def __init__(self, path: str | Path, config):
        import onnxruntime as ort

        self.path = Path(path)
        providers, self.fallback = _providers(config, ort.get_available_providers())
        if self.fallback:
            log.warning("onnxruntime lacks %s for %s: running on %s", self.fallback,
                        Path(path).name, [p if isinstance(p, str) else p[0] for p in providers])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = config.n_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # see module note
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        map_external_weights(opts, path)  # a 7B llm.onnx.data stays file-backed
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as err:  # onnxruntime raises its own Fail / InvalidProtobuf types
            raise ArtifactError(f"onnxruntime cannot load {path}: {err}") from err
        self.providers = self.session.get_providers()
        self.inputs = {a.name: _spec(a) for a in self.session.get_inputs()}
        self.outputs = {a.name: _spec(a) for a in self.session.get_outputs()}
        self._names = list(self.outputs)

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            out = self.session.run(self._names, feeds)
        except Exception as err:  # onnxruntime's Fail / InvalidArgument / RuntimeException
            raise EngineError(f"onnxruntime failed running {self.path.name}: {err}") from err
        return dict(zip(self._names, out, strict=True))


class _LazyRunner:
    """Opens its OrtRunner on the first call (vision.onnx is not needed by every policy)."""

    def __init__(self, artifact, role: str, config):
        self._args, self._runner = (artifact, role, config), None

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._runner is None:
            artifact, role, config = self._args
            self._runner = OrtRunner(artifact.onnx(role), config)
        return self._runner(feeds)


@register_backend("onnx")
class OnnxBackend(KVCacheBackend):
    """kv.KVCacheBackend over onnxruntime sessions."""

    @classmethod
    def from_artifact(cls, artifact, config) -> OnnxBackend:
        embed = OrtRunner(artifact.onnx("embed"), config)
        llm = OrtRunner(artifact.onnx("llm"), config)
        vision = _LazyRunner(artifact, "vision", config) if artifact.has_onnx("vision") else None
        backend = cls(embed, llm, vision, config.n_ctx)
        backend.providers, backend.fallback = llm.providers, llm.fallback
        return backend
