"""The "trt" backend: TensorRT engines of the artifact's ONNX graphs (built on the target).

Contract:
    TrtRunner(plan_path)            # a kv.Runner: host arrays in, host arrays out
    TrtBackend.from_artifact(artifact, config) -> kv.KVCacheBackend over embed / llm / vision
        engines; each engine is built (or found in config.engine_cache_dir) by
        export/trt_build.build_engine from the hash-checked ONNX graph, FP16

Engines are specific to the GPU and the TensorRT version, so they are built on the device
and cached by trt_build's key (GPU, compute capability, TensorRT version, ONNX sha256,
precision); nothing is shipped. A run sets every input shape on the execution context
(set_input_shape), copies inputs to device buffers (cuda-python cudart), binds every tensor
address, runs execute_async_v3 on a stream, and copies outputs back. The KV cache stays on
the host between runs (kv.KVCacheBackend), which is simple and correct, not the fastest.
Without tensorrt or a CUDA device, from_artifact raises DeviceError with the reason; a CUDA
runtime call that fails is a DeviceError, an engine run that fails an EngineError.
Not exercised on the development machine (no GPU, no tensorrt): written against the
TensorRT 10 Python API.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llara_edge.backends.base import register_backend
from llara_edge.backends.kv import KVCacheBackend
from llara_edge.errors import DeviceError, EngineError

PRECISION = "fp16"


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as err:
            raise DeviceError(f"the trt backend needs cuda-python: {err}") from err
    return cudart


def _check(result):
    """cudart calls return (err, *values): raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise DeviceError(f"CUDA runtime error {err}")
    return values[0] if len(values) == 1 else values


class TrtRunner:
    """One deserialised engine + execution context + stream."""

    def __init__(self, plan: str | Path):
        import tensorrt as trt

        self._trt, self._rt = trt, _cudart()
        logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(logger, "")
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(Path(plan).read_bytes())
        if self.engine is None:
            raise DeviceError(f"TensorRT cannot deserialise {plan} on this device")
        self.context = self.engine.create_execution_context()
        self.stream = _check(self._rt.cudaStreamCreate())
        self.inputs, self.outputs = {}, {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(d if d >= 0 else None for d in self.engine.get_tensor_shape(name))
            spec = (shape, np.dtype(trt.nptype(self.engine.get_tensor_dtype(name))))
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs)[name] = spec

    def _device(self, nbytes: int) -> int:
        return _check(self._rt.cudaMalloc(max(nbytes, 1)))  # zero-size tensors need an address

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rt, h2d = self._rt, self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        buffers: list[int] = []
        try:
            for name, (_, dtype) in self.inputs.items():
                arr = np.ascontiguousarray(feeds[name], dtype=dtype)
                self.context.set_input_shape(name, arr.shape)
                ptr = self._device(arr.nbytes)
                buffers.append(ptr)
                _check(rt.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes, h2d, self.stream))
                self.context.set_tensor_address(name, ptr)
            host = {}
            for name, (_, dtype) in self.outputs.items():
                host[name] = np.empty(tuple(self.context.get_tensor_shape(name)), dtype=dtype)
                ptr = self._device(host[name].nbytes)
                buffers.append(ptr)
                self.context.set_tensor_address(name, ptr)
            if not self.context.execute_async_v3(self.stream):
                raise EngineError("TensorRT execute_async_v3 failed")
            d2h = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
            for arr, ptr in zip(host.values(), buffers[len(self.inputs):], strict=True):
                _check(rt.cudaMemcpyAsync(arr.ctypes.data, ptr, arr.nbytes, d2h, self.stream))
            _check(rt.cudaStreamSynchronize(self.stream))
            return host
        finally:
            for ptr in buffers:
                rt.cudaFree(ptr)


@register_backend("trt")
class TrtBackend(KVCacheBackend):
    """kv.KVCacheBackend over TensorRT engines."""

    @classmethod
    def from_artifact(cls, artifact, config) -> TrtBackend:
        from llara_edge.backends.trt_build import build_engine, tensorrt_status

        status = tensorrt_status()
        if not status["available"]:
            raise DeviceError(status["reason"])

        def runner(role: str) -> TrtRunner:
            return TrtRunner(build_engine(artifact.onnx(role), config.engine_cache_dir,
                                          PRECISION))

        vision = runner("vision") if artifact.has_onnx("vision") else None
        return cls(runner("embed"), runner("llm"), vision, config.n_ctx)
