"""TensorRT engine build from an exported ONNX graph, run ON THE TARGET (Jetson / GPU box).

Contract:
    tensorrt_status() -> {"available": bool, "version": str | None, "reason": str}
    cache_key(gpu_name, compute_capability, trt_version, onnx_sha256, precision, shapes="") -> str
    default_shapes(inputs, frame_hw=(480, 640), max_context=2048) -> Shapes
    build_engine(onnx_path, cache_dir, precision="fp16", calib_frames=None, shapes=None,
                 frame_hw=(480, 640), max_context=2048) -> Path

Shapes = {input name: (min, opt, max)}: the optimisation profile TensorRT needs for every
input with a dynamic dimension (the exported graphs have dynamic frame sizes, sequence
and cache lengths). Without `shapes`, build_engine uses default_shapes of the network's
inputs (frames up to 1080x1920 tuned for frame_hw; token inputs up to max_context tuned
for one-token decoding after 256 cached positions); the profile is part of the cache key.

Engines are specific to the GPU and the TensorRT version, so they are never shipped: the
runtime calls build_engine on the device, which caches the plan under
cache_dir/<cache_key>.plan and reuses it when the key matches. precision "int8" needs
calibration inputs (arrays of the graph's first input, all of one shape: for vision.onnx
uint8 (H, W, 3) simulator frames) and uses an IInt8EntropyCalibrator2 with that shape as
calibration profile; FP16 is enabled alongside. The fused-projector plugin
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
              onnx_sha256: str, precision: str, shapes: str = "") -> str:
    text = f"{gpu_name}|sm{compute_capability[0]}{compute_capability[1]}|trt{trt_version}|" \
           f"{onnx_sha256}|{precision}|{shapes}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


Shape = tuple[int, ...]
Shapes = dict[str, tuple[Shape, Shape, Shape]]
MAX_FRAME = (1080, 1920)  # largest camera frame (H, W) a vision engine accepts
OPT_PAST = 256  # cached positions the LLM engine is tuned for


def default_shapes(inputs: dict[str, Shape], frame_hw: tuple[int, int] = (480, 640),
                   max_context: int = 2048) -> Shapes:
    """Profile for the exported graphs' inputs ({name: shape, -1 = dynamic}), by their names:
    `frame` [H, W, 3]: 1 .. max(MAX_FRAME, frame_hw), tuned for frame_hw; `past_key_values.*`
    cache axis: 0 .. max_context, tuned for OPT_PAST; any other dynamic axis (new tokens):
    1 .. max_context, tuned for 1 (decoding)."""
    shapes: Shapes = {}
    for name, shape in inputs.items():
        if -1 not in shape:
            continue
        if name == "frame":
            top = (max(MAX_FRAME[0], frame_hw[0]), max(MAX_FRAME[1], frame_hw[1]), 3)
            shapes[name] = ((1, 1, 3), (*frame_hw, 3), top)
            continue
        cache = name.startswith("past_key_values.")
        low, opt = (0, min(OPT_PAST, max_context)) if cache else (1, 1)
        shapes[name] = tuple(tuple(d if d != -1 else v for d in shape)  # type: ignore[misc]
                             for v in (low, opt, max_context))
    return shapes


def _gpu() -> tuple[str, tuple[int, int]]:
    """Name and compute capability of CUDA device 0, from the CUDA runtime (libcudart, which
    every CUDA install and JetPack has) through ctypes: no torch, no cuda-python needed."""
    lib = None
    for name in ("libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        raise DeviceError("no CUDA runtime (libcudart) to build a TensorRT engine with")
    major, minor = ctypes.c_int(), ctypes.c_int()
    # cudaDevAttrComputeCapabilityMajor = 75, ...Minor = 76 (driver_types.h)
    for attr, out in ((75, major), (76, minor)):
        err = lib.cudaDeviceGetAttribute(ctypes.byref(out), attr, 0)
        if err != 0:
            raise DeviceError(f"no CUDA device visible to build a TensorRT engine "
                              f"(cudaDeviceGetAttribute error {err})")
    # cudaDeviceProp starts with `char name[256]`; its size differs between CUDA versions, so
    # the buffer is far larger than any of them
    props = ctypes.create_string_buffer(16384)
    err = lib.cudaGetDeviceProperties(props, 0)
    name = props.raw[:256].split(b"\0", 1)[0].decode(errors="replace") if err == 0 else "GPU 0"
    return name, (major.value, minor.value)


def _calibrator(trt, frames: list[np.ndarray], cache: Path):
    """IInt8EntropyCalibrator2 over preprocessed frames, one per batch (needs cuda-python)."""
    from cuda import cudart

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.frames = [np.ascontiguousarray(f) for f in frames]
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


def _profile(builder, network, config, shapes: Shapes) -> None:
    """One optimisation profile covering every dynamic input of `network`."""
    profile = builder.create_optimization_profile()
    missing = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if -1 not in tuple(tensor.shape):
            continue
        if tensor.name not in shapes:
            missing.append(tensor.name)
            continue
        profile.set_shape(tensor.name, *shapes[tensor.name])
    if missing:
        raise ConfigError(f"dynamic inputs without a TensorRT profile: {missing}")
    config.add_optimization_profile(profile)


def _calibration_profile(builder, network, config, frames: list[np.ndarray]):
    """INT8 calibration runs at the calibration inputs' one shape."""
    shapes = {a.shape for a in frames}
    if len(shapes) != 1:
        raise ConfigError(f"calibration inputs must share one shape, got {sorted(shapes)}")
    shape = shapes.pop()
    profile = builder.create_optimization_profile()
    profile.set_shape(network.get_input(0).name, shape, shape, shape)
    config.set_calibration_profile(profile)


def build_engine(onnx_path: str | Path, cache_dir: str | Path, precision: str = "fp16",
                 calib_frames: list[np.ndarray] | None = None, shapes: Shapes | None = None,
                 frame_hw: tuple[int, int] = (480, 640), max_context: int = 2048) -> Path:
    """Build (or reuse) the engine of onnx_path for this GPU; returns the .plan path."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; known: {PRECISIONS}")
    status = tensorrt_status()
    if not status["available"]:
        raise DeviceError(status["reason"])
    import tensorrt as trt

    from llara_edge.runtime.manifest import sha256_file

    onnx_path, cache_dir = Path(onnx_path), Path(cache_dir)
    name, cc = _gpu()
    _load_plugin()
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ArtifactError(f"TensorRT cannot parse {onnx_path}: {errors}")
    if shapes is None:
        inputs = {network.get_input(i).name: tuple(network.get_input(i).shape)
                  for i in range(network.num_inputs)}
        shapes = default_shapes(inputs, frame_hw, max_context)
    key = cache_key(name, cc, trt.__version__, sha256_file(onnx_path), precision,
                    repr(sorted(shapes.items())))
    plan = cache_dir / f"{key}.plan"
    if plan.is_file():
        return plan
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    config.set_flag(trt.BuilderFlag.FP16)
    _profile(builder, network, config, shapes)
    if precision == "int8":
        if not calib_frames:
            raise ConfigError("int8 needs calibration frames")
        _calibration_profile(builder, network, config, calib_frames)
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
