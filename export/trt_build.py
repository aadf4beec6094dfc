"""TensorRT engine build from an exported ONNX graph, run ON THE TARGET (Jetson / GPU box).

Contract:
    tensorrt_status() -> {"available": bool, "version": str | None, "reason": str}
    cache_key(gpu_name, compute_capability, trt_version, onnx_sha256, precision) -> str
    build_engine(onnx_path, cache_dir, precision="fp16", calib_frames=None) -> Path

Engines are specific to the GPU and the TensorRT version, so they are never shipped: the
runtime calls build_engine on the device, which caches the plan under
cache_dir/<cache_key>.plan and reuses it when the key matches. precision "int8" needs
calibration frames (preprocessed float32 (3, S, S) arrays, e.g. simulator frames) and
uses an IInt8EntropyCalibrator2; FP16 is enabled alongside. The fused-projector plugin
library is loaded when LLARA_EDGE_TRT_PLUGIN points to it. Where tensorrt (or a CUDA GPU)
is missing, build_engine raises DeviceError with one clear line; the export itself does
not need it. Not exercised on this development machine (no GPU, no tensorrt).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path

import numpy as np

from llara_edge.errors import ArtifactError, ConfigError, DeviceError

PRECISIONS = ("fp16", "int8")
WORKSPACE_BYTES = 2 << 30  # builder memory pool limit


def tensorrt_status() -> dict:
    try:
        import tensorrt as trt
    except ImportError as err:
        return {"available": False, "version": None,
                "reason": f"tensorrt not installed ({err}); engines are built on the target, "
                          "see docs/export.md"}
    return {"available": True, "version": trt.__version__, "reason": "ok"}


def cache_key(gpu_name: str, compute_capability: tuple[int, int], trt_version: str,
              onnx_sha256: str, precision: str) -> str:
    text = f"{gpu_name}|sm{compute_capability[0]}{compute_capability[1]}|trt{trt_version}|" \
           f"{onnx_sha256}|{precision}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _gpu() -> tuple[str, tuple[int, int]]:
    """Name and compute capability of CUDA device 0 (via torch when present, else cuda-python)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0)
    except ImportError:
        pass
    try:
        from cuda import cudart
    except ImportError as err:
        raise DeviceError(f"no CUDA device visible to build a TensorRT engine: {err}") from err
    err, props = cudart.cudaGetDeviceProperties(0)
    if int(err) != 0:
        raise DeviceError(f"cudaGetDeviceProperties failed: {err}")
    return props.name.decode(), (props.major, props.minor)


def _calibrator(trt, frames: list[np.ndarray], cache: Path):
    """IInt8EntropyCalibrator2 over preprocessed frames, one per batch (needs cuda-python)."""
    from cuda import cudart

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.frames = [np.ascontiguousarray(f[None], dtype=np.float32) for f in frames]
            self.index = 0
            _, self.device = cudart.cudaMalloc(self.frames[0].nbytes)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            if self.index >= len(self.frames):
                return None
            host = self.frames[self.index]
            cudart.cudaMemcpy(self.device, host.ctypes.data, host.nbytes,
                              cudart.cudaMemcpyKind.cudaMemcpyHostToDevice)
            self.index += 1
            return [int(self.device)]

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data):
            cache.write_bytes(bytes(data))

    return Calibrator()


def _load_plugin() -> None:
    lib = os.environ.get("LLARA_EDGE_TRT_PLUGIN")
    if lib:
        try:
            ctypes.CDLL(lib)
        except OSError as err:
            raise ArtifactError(f"cannot load TensorRT plugin {lib}: {err}") from err


def build_engine(onnx_path: str | Path, cache_dir: str | Path, precision: str = "fp16",
                 calib_frames: list[np.ndarray] | None = None) -> Path:
    """Build (or reuse) the engine of onnx_path for this GPU; returns the .plan path."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; known: {PRECISIONS}")
    status = tensorrt_status()
    if not status["available"]:
        raise DeviceError(status["reason"])
    import tensorrt as trt

    from llara_edge.export.manifest import sha256_file

    onnx_path, cache_dir = Path(onnx_path), Path(cache_dir)
    name, cc = _gpu()
    key = cache_key(name, cc, trt.__version__, sha256_file(onnx_path), precision)
    plan = cache_dir / f"{key}.plan"
    if plan.is_file():
        return plan
    _load_plugin()
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ArtifactError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        if not calib_frames:
            raise ConfigError("int8 needs calibration frames")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, calib_frames, plan.with_suffix(".calib"))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ArtifactError(f"TensorRT engine build failed for {onnx_path}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = plan.with_suffix(".plan.tmp")
    tmp.write_bytes(bytes(serialized))
    os.replace(tmp, plan)
    return plan
