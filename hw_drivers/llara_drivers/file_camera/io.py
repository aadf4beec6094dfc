"""Frame files: readers for the file camera and an .npz writer.

Layouts (colour is always RGB uint8; depth optional):
- `.npz`: `color` (N, H, W, 3) uint8; `depth` (N, H, W) either uint16 units of `depth_scale`
  (key, else the caller's default) with 0 = no data, or float metres with NaN or 0 = no data;
  `intrinsics` [fx, fy, ppx, ppy] with optional `coeffs` (5,) and `distortion` (model name);
  `timestamps` (N,) seconds. `save_npz` writes exactly this (depth as float32 metres).
- a directory: every `*.png` except `*.depth.png` is a colour frame, in name order; the 16-bit
  PNG `<stem>.depth.png` beside `<stem>.png` is its depth in units of `depth_scale`; an optional
  `camera.json` holds {"fx", "fy", "ppx", "ppy", "model", "coeffs", "depth_scale"}.
- any other file: a video or animated image, read with imageio when it is installed (formats
  depend on its plugins) or else with Pillow (GIF, APNG, WebP, TIFF); colour only.
A missing intrinsics record is reported as None; the camera then assumes the simulator's D435.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from llara_drivers.camera_base import Frame, units_to_metres
from llara_drivers.camera_model import Intrinsics
from llara_drivers.errors import RecordingError

# (colour (H, W, 3) uint8, depth (H, W) float32 m with NaN holes or None, time s or None)
RawFrame = tuple[np.ndarray, np.ndarray | None, float | None]


@dataclass
class Recording:
    """A re-iterable frame source read from disk."""

    frames: Callable[[], Iterator[RawFrame]]  # a fresh iterator from the first frame
    intrinsics: Intrinsics | None  # None: the file does not say
    depth_scale: float | None  # quantisation of stored depth units, None for float depth


def _intrinsics(values: dict, width: int, height: int) -> Intrinsics:
    coeffs = tuple(float(c) for c in values.get("coeffs", (0.0,) * 5))
    return Intrinsics(width, height, float(values["fx"]), float(values["fy"]),
                      float(values["ppx"]), float(values["ppy"]), str(values.get("model", "none")),
                      coeffs)


def _float_depth(depth: np.ndarray, scale: float) -> np.ndarray:
    if depth.dtype == np.uint16:
        return units_to_metres(depth, scale)
    out = depth.astype(np.float32)
    out[~(out > 0)] = np.nan  # 0, negative and NaN all mean no data
    return out


def load_npz(path: Path, default_scale: float) -> Recording:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise RecordingError(f"cannot read frames from {path}: {exc}") from exc
    color = data.get("color")
    if color is None or color.ndim != 4 or color.shape[3] != 3 or color.dtype != np.uint8:
        raise RecordingError(f"{path}: `color` must be (N, H, W, 3) uint8")
    depth, stamps = data.get("depth"), data.get("timestamps")
    if depth is not None and depth.shape != color.shape[:3]:
        raise RecordingError(f"{path}: depth {depth.shape} does not match colour {color.shape}")
    scale = float(data["depth_scale"]) if "depth_scale" in data else default_scale
    intr = None
    if "intrinsics" in data:
        fx, fy, ppx, ppy = (float(v) for v in data["intrinsics"])
        intr = _intrinsics({"fx": fx, "fy": fy, "ppx": ppx, "ppy": ppy,
                            "model": str(data.get("distortion", "none")),
                            "coeffs": data.get("coeffs", np.zeros(5))},
                           color.shape[2], color.shape[1])

    def frames() -> Iterator[RawFrame]:
        for i in range(color.shape[0]):
            d = None if depth is None else _float_depth(depth[i], scale)
            yield color[i], d, None if stamps is None else float(stamps[i])

    stored_scale = scale if depth is not None and depth.dtype == np.uint16 else None
    return Recording(frames, intr, stored_scale)


def _rgb_image(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_png_dir(path: Path, default_scale: float) -> Recording:
    colours = sorted(p for p in path.glob("*.png") if not p.name.endswith(".depth.png"))
    if not colours:
        raise RecordingError(f"no colour PNG frames in {path}")
    meta = {}
    if (path / "camera.json").is_file():
        meta = json.loads((path / "camera.json").read_text())
    scale = float(meta.get("depth_scale", default_scale))

    def depth_of(colour: Path) -> np.ndarray | None:
        dpath = colour.with_name(colour.stem + ".depth.png")
        if not dpath.is_file():
            return None
        with Image.open(dpath) as im:
            units = np.asarray(im).astype(np.uint16)
        return units_to_metres(units, scale)

    def frames() -> Iterator[RawFrame]:
        for colour in colours:
            yield _rgb_image(colour), depth_of(colour), None

    first = _rgb_image(colours[0])
    intr = _intrinsics(meta, first.shape[1], first.shape[0]) if "fx" in meta else None
    has_depth = colours[0].with_name(colours[0].stem + ".depth.png").is_file()
    return Recording(frames, intr, scale if has_depth else None)


def load_video(path: Path) -> Recording:
    try:
        import imageio.v3 as iio
    except ImportError:
        iio = None

    def frames() -> Iterator[RawFrame]:
        if iio is not None:
            for image in iio.imiter(path):
                yield np.asarray(Image.fromarray(np.asarray(image)).convert("RGB")), None, None
            return
        with Image.open(path) as im:
            for page in ImageSequence.Iterator(im):
                yield np.asarray(page.convert("RGB")), None, None

    try:
        next(frames())
    except (OSError, ValueError, StopIteration) as exc:
        raise RecordingError(f"cannot read video frames from {path}: {exc!r}") from exc
    return Recording(frames, None, None)


def load_recording(path: str, default_scale: float) -> Recording:
    """Open `path` by layout: directory of PNGs, .npz, or video / animated image."""
    p = Path(path)
    if p.is_dir():
        return load_png_dir(p, default_scale)
    if not p.is_file():
        raise RecordingError(f"frame source {path!r} does not exist")
    if p.suffix.lower() == ".npz":
        return load_npz(p, default_scale)
    return load_video(p)


def save_npz(path: str | Path, frames: Sequence[Frame]) -> None:
    """Write frames (same size, same intrinsics) as an .npz the file camera reads back."""
    if not frames:
        raise ValueError("no frames to save")
    first = frames[0]
    if any(f.intrinsics != first.intrinsics or f.depth_intrinsics is not None for f in frames):
        raise ValueError("save_npz needs frames with one intrinsics and depth on the colour grid")
    arrays = {"color": np.stack([f.color for f in frames]),
              "timestamps": np.array([f.timestamp_s for f in frames], np.float64),
              "intrinsics": np.array([first.intrinsics.fx, first.intrinsics.fy,
                                      first.intrinsics.ppx, first.intrinsics.ppy]),
              "coeffs": np.array(first.intrinsics.coeffs),
              "distortion": np.array(first.intrinsics.model)}
    if all(f.depth is not None for f in frames):
        arrays["depth"] = np.stack([f.depth for f in frames])
    out = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=out.name, suffix=".tmp.npz", dir=out.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
