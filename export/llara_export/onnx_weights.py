"""Initializers of a hand-built ONNX graph, kept inline or streamed to one external-data file.

Contract:
    sink = WeightSink(data_path or None)   # None: every tensor inline in the ModelProto
    sink.add(name, array) -> name          # float32/int64 ndarray; streamed if a data file
                                           # is open and the array has >= INLINE_BYTES
    sink.initializers -> list[TensorProto] # in insertion order, for onnx.helper.make_graph
    sink.close() -> list[Path]             # the data file (renamed into place), or []

Streaming is what lets a 7B LLM graph be written on a workstation: each weight is converted,
written at an ALIGN-byte boundary of `data_path` and dropped before the next is made, so the
exporter holds one tensor at a time instead of a 27 GB ModelProto. The aligned offsets let
onnxruntime memory-map the file instead of copying it (it maps external data whose offset is
a multiple of the page/allocation granularity, 64 KiB on Windows, 4 KiB on Linux). The data
is written under a dot-name and renamed on close; a caller that fails calls `abort()`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ALIGN = 1 << 16  # bytes: onnxruntime maps offsets that are multiples of this on every OS
INLINE_BYTES = 1024  # shape constants and scalars stay in the graph proto


class WeightSink:
    def __init__(self, data_path: Path | None):
        self.data_path = data_path
        self.initializers: list = []
        self._tmp = data_path.with_name(f".{data_path.name}.tmp") if data_path else None
        self._file = open(self._tmp, "wb") if self._tmp else None  # noqa: SIM115 (closed in close)
        self.bytes = 0

    def add(self, name: str, array: np.ndarray) -> str:
        """Register `array` as initializer `name` (little-endian, C order); returns `name`."""
        from onnx import TensorProto, helper, numpy_helper

        array = np.ascontiguousarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        self.bytes += array.nbytes
        if self._file is None or array.nbytes < INLINE_BYTES:
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        position = self._file.tell()
        offset = position + (-position % ALIGN)
        self._file.seek(offset)
        self._file.write(memoryview(array).cast("B"))
        tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
                             dims=array.shape, data_location=TensorProto.EXTERNAL)
        for key, value in (("location", self.data_path.name), ("offset", str(offset)),
                           ("length", str(array.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(tensor)
        return name

    def close(self) -> list[Path]:
        """Finish the data file (flushed, renamed to data_path); [] for an inline sink."""
        if self._file is None:
            return []
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self._tmp, self.data_path)
        return [self.data_path]

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
