"""LLaRA image preprocessing as an ONNX graph: uint8 camera frame -> CLIP pixel values.

Contract:
    preprocess_model(cfg: PreprocessConfig) -> onnx.ModelProto
        input  `frame`        uint8   [H, W, 3]  (any H, W >= 1: a raw RGB camera frame)
        output `pixel_values` float32 [1, 3, S, S]  S = cfg.image_size
    preprocess_error(model, frames, cfg) -> {"max_abs_lsb": float, "mismatch_fraction": float}

The same steps as llara_edge/models/preprocess.py (PIL), node for node:
1. aspect "pad": pad to a square with the CLIP mean colour (122, 116, 104), image centred
   with offsets floor((side - size) / 2) (LLaVA expand2square); done in float as
   Pad(frame - colour, 0) + colour, exact for integer pixels.
2. resize so the shortest edge is `resize_edge` (long side floor(edge * long / short)):
   PIL's BICUBIC is separable (horizontal pass, then vertical), with a = -0.5, a filter
   widened by the scale factor when shrinking (antialias), weights renormalised at the
   borders, and each pass rounded to uint8. ONNX Resize reproduces that with two Resize
   nodes (axes [3] then [2], mode cubic, cubic_coeff_a -0.5, antialias 1, exclude_outside 1,
   half_pixel) each followed by Floor(x + 0.5) and Clip(0, 255).
3. centre crop to S with offsets floor((size - S) / 2) (transformers center_crop).
4. x * (1 / (255 std)) - mean / std (coefficients computed in float64).
Residual difference: PIL's resampler runs in 22-bit fixed point, ONNX Runtime in float32,
so a value lying within ~1e-6 of a rounding boundary can round the other way: at most one
uint8 level (1 LSB) on a small fraction of values (measured by preprocess_error and
recorded in manifest.json). TensorRT's Resize support for `antialias` is not verified here.
"""

from __future__ import annotations

import numpy as np

from llara_edge.models.preprocess import PreprocessConfig, pad_color, preprocess_image
from llara_export.onnx_common import IR_VERSION, OPSET

P = "preprocess/"  # prefix of every node and value name of this graph
# ONNX Resize attributes matching PIL's BICUBIC (see module docstring)
PIL_BICUBIC = {"mode": "cubic", "cubic_coeff_a": -0.5, "antialias": 1, "exclude_outside": 1,
               "coordinate_transformation_mode": "half_pixel"}


class _Graph:
    """Tiny builder: named nodes and constants, all prefixed with P."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name: str, values, dtype=np.int64) -> str:
        """A constant initializer (created once per name; later calls reuse it)."""
        from onnx import numpy_helper

        if P + name not in {t.name for t in self.inits}:
            arr = np.asarray(values, dtype=dtype)
            self.inits.append(numpy_helper.from_array(arr, P + name))
        return P + name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [P + name], name=P + name, **attrs))
        return P + name


def _pad_to_square(g: _Graph, x: str, cfg: PreprocessConfig) -> str:
    """(1, 3, H, W) float -> (1, 3, side, side), the image centred on the mean colour."""
    hw = g.op("Slice", [g.op("Shape", ["frame"], "shape"), g.const("i0", [0]),
                        g.const("i2", [2])], "hw")  # [H, W]
    side = g.op("ReduceMax", [hw], "side", keepdims=1)
    extra = g.op("Sub", [side, hw], "extra")
    before = g.op("Div", [extra, g.const("two", 2)], "before")  # [top, left]
    after = g.op("Sub", [extra, before], "after")  # [bottom, right]
    zeros = g.const("zeros2", [0, 0])
    pads = g.op("Concat", [zeros, before, zeros, after], "pads", axis=0)
    colour = g.const("colour", np.reshape(pad_color(cfg.mean), (1, 3, 1, 1)), np.float32)
    shifted = g.op("Sub", [x, colour], "shifted")
    padded = g.op("Pad", [shifted, pads, g.const("pad_value", 0.0, np.float32)], "padded")
    return g.op("Add", [padded, colour], "squared")


def _round_u8(g: _Graph, x: str, tag: str) -> str:
    """PIL's per-pass uint8 rounding: clip(floor(x + 0.5), 0, 255)."""
    half = g.const("half", 0.5, np.float32)
    floor = g.op("Floor", [g.op("Add", [x, half], f"{tag}_add")], f"{tag}_floor")
    return g.op("Clip", [floor, g.const("lo", 0.0, np.float32), g.const("hi", 255.0, np.float32)],
                f"{tag}_u8")


def _resize_crop(g: _Graph, x: str, cfg: PreprocessConfig) -> str:
    """Shortest edge -> resize_edge (two rounded bicubic passes), centre crop to S x S."""
    hw = g.op("Slice", [g.op("Shape", [x], "shape2"), g.const("i2", [2]),
                        g.const("i4", [4])], "hw2")
    short = g.op("ReduceMin", [hw], "short", keepdims=1)
    new = g.op("Div", [g.op("Mul", [hw, g.const("edge", cfg.resize_edge)], "scaled"), short],
               "new_hw")  # floor(edge * size / short), sizes > 0
    new_h = g.op("Slice", [new, g.const("j0", [0]), g.const("j1", [1])], "new_h")
    new_w = g.op("Slice", [new, g.const("j1", [1]), g.const("j2", [2])], "new_w")
    wide = g.op("Resize", [x, "", "", new_w], "resize_w", axes=[3], **PIL_BICUBIC)
    wide = _round_u8(g, wide, "pass_w")
    tall = g.op("Resize", [wide, "", "", new_h], "resize_h", axes=[2], **PIL_BICUBIC)
    tall = _round_u8(g, tall, "pass_h")
    size = g.const("crop", [cfg.image_size, cfg.image_size])
    starts = g.op("Div", [g.op("Sub", [new, size], "slack"), g.const("two", 2)], "starts")
    ends = g.op("Add", [starts, size], "ends")
    return g.op("Slice", [tall, starts, ends, g.const("hw_axes", [2, 3])], "cropped")


def preprocess_model(cfg: PreprocessConfig):
    """The ONNX ModelProto of the preprocessing (see module docstring)."""
    from onnx import TensorProto, helper

    g = _Graph()
    x = g.op("Cast", ["frame"], "as_float", to=TensorProto.FLOAT)  # (H, W, 3)
    x = g.op("Unsqueeze", [g.op("Transpose", [x], "chw", perm=[2, 0, 1]), g.const("ax0", [0])],
             "nchw")  # (1, 3, H, W)
    if cfg.aspect_ratio == "pad":
        x = _pad_to_square(g, x, cfg)
    x = _resize_crop(g, x, cfg)
    mean = np.asarray(cfg.mean, dtype=np.float64)
    std = np.asarray(cfg.std, dtype=np.float64)
    scale = g.const("scale", (1.0 / (255.0 * std)).reshape(1, 3, 1, 1), np.float32)
    bias = g.const("bias", (-mean / std).reshape(1, 3, 1, 1), np.float32)
    scaled = g.op("Mul", [x, scale], "normalise_mul")
    g.nodes.append(helper.make_node("Add", [scaled, bias], ["pixel_values"],
                                    name=P + "normalise_add"))
    s = cfg.image_size
    graph = helper.make_graph(
        g.nodes, "llara_preprocess",
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, ["height", "width", 3])],
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, s, s])],
        g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             ir_version=IR_VERSION, producer_name="llara-edge")


def preprocess_error(model, frames: list[np.ndarray], cfg: PreprocessConfig) -> dict:
    """Difference of the ONNX preprocessing vs preprocess_image, in uint8 levels (LSB)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    lsb = (np.asarray(cfg.std, dtype=np.float64) * 255.0).reshape(3, 1, 1)
    worst, mismatched, total = 0.0, 0, 0
    for frame in frames:
        ours = sess.run(None, {"frame": np.ascontiguousarray(frame, dtype=np.uint8)})[0][0]
        diff = np.abs(ours.astype(np.float64) - preprocess_image(frame, cfg)) * lsb
        worst = max(worst, float(diff.max()))
        mismatched += int((diff > 0.5).sum())
        total += diff.size
    return {"max_abs_lsb": round(worst, 4), "mismatch_fraction": mismatched / max(total, 1)}
