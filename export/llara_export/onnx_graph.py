"""A small builder for ONNX graphs written node by node, and their atomic save.

Contract:
    g = GraphBuilder(data_path or None)     # None: weights inline (onnx_weights.py)
    g.input(name, elem_type, dims); g.output(name, elem_type, dims)   # dims: int or str
    g.op(op_type, *inputs, out=None, **attrs) -> output name   # one-output nodes only
    g.weight(name, array) -> name           # a model weight (streamed when data_path is set)
    g.ints(value), g.floats(value) -> name  # int64 / float32 constants, deduplicated;
                                            # a Python scalar gives a 0-d tensor, a list 1-d
    save_graph(g, path) -> list[Path]       # opset OPSET, checked by onnx.checker, written
                                            # tmp + rename; [path] or [path, data file]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from llara_edge.errors import ArtifactError
from llara_export.onnx_common import IR_VERSION, OPSET, save_onnx
from llara_export.onnx_weights import WeightSink

FLOAT, INT64 = 1, 7  # onnx.TensorProto.FLOAT / INT64


class GraphBuilder:
    def __init__(self, data_path: Path | None):
        self.sink = WeightSink(data_path)
        self.nodes: list = []
        self.inputs: list = []
        self.outputs: list = []
        self._consts: dict[tuple, str] = {}

    def input(self, name: str, elem_type: int, dims: list) -> str:
        from onnx import helper

        self.inputs.append(helper.make_tensor_value_info(name, elem_type, dims))
        return name

    def output(self, name: str, elem_type: int, dims: list) -> None:
        from onnx import helper

        self.outputs.append(helper.make_tensor_value_info(name, elem_type, dims))

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        from onnx import helper

        index = len(self.nodes)
        out = out or f"{op_type.lower()}_{index}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out],
                                           name=f"{op_type}_{index}", **attrs))
        return out

    def weight(self, name: str, array: np.ndarray) -> str:
        return self.sink.add(name, array)

    def _const(self, value, dtype) -> str:
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            self._consts[key] = self.sink.add(f"const_{len(self._consts)}", array)
        return self._consts[key]

    def ints(self, value) -> str:
        return self._const(value, np.int64)

    def floats(self, value) -> str:
        return self._const(value, np.float32)

    def model(self, name: str):
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, self.inputs, self.outputs,
                                  initializer=self.sink.initializers)
        return helper.make_model(graph, producer_name="llara-edge", ir_version=IR_VERSION,
                                 opset_imports=[helper.make_opsetid("", OPSET)])


def save_graph(g: GraphBuilder, path: Path) -> list[Path]:
    """Write g's model at `path` (module contract); ArtifactError when it does not check."""
    import onnx

    model = g.model(path.stem)
    if g.sink.data_path is None:
        return save_onnx(model, path)
    files = g.sink.close()  # the data file is in place before the graph that names it
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        onnx.save_model(model, str(tmp))
        onnx.checker.check_model(str(tmp))  # from the file: it resolves the external data
        os.replace(tmp, path)
        return [path, *files]
    except (onnx.checker.ValidationError, OSError, ValueError) as err:
        for file in files:  # a data file without its graph is of no use to anyone
            file.unlink(missing_ok=True)
        what = "invalid ONNX graph for" if isinstance(err, onnx.checker.ValidationError) \
            else "cannot write"
        raise ArtifactError(f"{what} {path.name}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
