"""Shared ONNX plumbing of the exporter: torch -> ONNX, saving, loading into onnxruntime.

Contract:
    OPSET = 18                      # Resize `antialias` and `axes` need opset 18
    IR_VERSION = 8                  # what torch's TorchScript exporter writes; onnxruntime >= 1.14
    torch_to_onnx(module, args, input_names, output_names, dynamic_axes, scratch) -> ModelProto
    save_onnx(model, path) -> list[Path]        # the files written (path, maybe path + ".data")
    ort_session(path, threads=1) -> onnxruntime.InferenceSession   # ArtifactError when unloadable
    (map_external_weights: the runtime's, llara_edge.backends.onnx)
    ONNX_FILES: role -> file name ("vision", "vision_features", "projector", "embed", "llm")
    past_names(i), present_names(i) -> (key name, value name) of layer i's KV-cache tensors

torch_to_onnx uses the TorchScript exporter (`dynamo=False`: onnxscript is not a
dependency) with constant folding, writing into `scratch` (a directory the caller removes)
and loading the result back with its weights. save_onnx checks the graph with
onnx.checker and writes it atomically (tmp + rename); graphs whose weights exceed
EXTERNAL_DATA_BYTES (protobuf files cannot exceed 2 GiB) keep their weights in one
`NAME.onnx.data` file next to the graph, so an export of a 7B model is two files per graph.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from llara_edge.backends.onnx import map_external_weights
from llara_edge.errors import ArtifactError

OPSET = 18
IR_VERSION = 8
EXTERNAL_DATA_BYTES = 1_500_000_000  # above this, weights go to NAME.onnx.data
ONNX_FILES: dict[str, str] = {
    "vision": "vision.onnx",  # frame -> image_embeds (export/llara_export/onnx_vision.py)
    "vision_features": "vision_features.onnx",  # frame -> features incl. CLS
    "projector": "projector.safetensors",  # ProjectorWeights of kernels/llara_kernels/projector.py
    "embed": "embed.onnx",  # input_ids -> inputs_embeds (export/llara_export/onnx_llm.py)
    "llm": "llm.onnx",  # decoder with KV cache
}


def past_names(layer: int) -> tuple[str, str]:
    """llm.onnx inputs of layer `layer`: [1, kv_heads, P, head_dim] each."""
    return f"past_key_values.{layer}.key", f"past_key_values.{layer}.value"


def present_names(layer: int) -> tuple[str, str]:
    """llm.onnx outputs of layer `layer`: [1, kv_heads, P + T, head_dim] each."""
    return f"present.{layer}.key", f"present.{layer}.value"


def torch_to_onnx(module, args: tuple, input_names: list[str], output_names: list[str],
                  dynamic_axes: dict[str, dict[int, str]], scratch: Path):
    """Trace `module(*args)` into an ONNX ModelProto (weights loaded, opset OPSET)."""
    import onnx
    import torch

    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / "traced.onnx"
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript-exporter deprecation and tracer notes
        try:
            torch.onnx.export(module.eval(), args, str(target), dynamo=False,
                              opset_version=OPSET, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes,
                              do_constant_folding=True)
        except (RuntimeError, TypeError, ValueError) as err:  # OnnxExporterError is a RuntimeError
            raise ArtifactError(f"torch.onnx.export failed for {scratch.name}: {err}") from err
    model = onnx.load(str(target), load_external_data=True)
    model.ir_version = min(model.ir_version, IR_VERSION)
    return model


def _weight_bytes(model) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer)


def save_onnx(model, path: str | Path) -> list[Path]:
    """Check and atomically write `model` at `path`; returns the files written."""
    import onnx

    path = Path(path)
    external = _weight_bytes(model) > EXTERNAL_DATA_BYTES
    tmp = path.with_name(f".{path.name}.tmp")
    files = [path]
    try:
        if external:  # checked from the file: a > 2 GiB proto cannot be checked in memory
            data = path.with_name(f"{path.name}.data")
            onnx.save_model(model, str(tmp), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=data.name, size_threshold=0)
            onnx.checker.check_model(str(tmp))
            files.append(data)
        else:
            onnx.checker.check_model(model)
            onnx.save_model(model, str(tmp))
        os.replace(tmp, path)
    except onnx.checker.ValidationError as err:
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"invalid ONNX graph for {path.name}: {err}") from err
    except (OSError, ValueError) as err:
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"cannot write {path}: {err}") from err
    return files


def ort_session(path: str | Path, threads: int = 1):
    """An onnxruntime CPU session over `path`; ArtifactError for a missing or corrupt file."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ArtifactError(f"running ONNX graphs needs onnxruntime: {err}") from err
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"ONNX graph not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: unused-initializer notes are not for the user
    map_external_weights(opts, path)
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise ArtifactError(f"onnxruntime cannot load {path}: {err}") from err
