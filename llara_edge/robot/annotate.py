"""Annotated frames for rollout GIFs and docs: boxes, names, pick and place points.

`render_annotated(obs, objects, action)` returns a new (H, W, 3) uint8 image; `obs.rgb` is not
modified. `objects` are anything with a `name` and a normalised `bbox` (cx, cy, w, h), e.g. the
simulator's oracle ObjectInfo (none on a real robot); the action's points are normalised image
coordinates (PickPlaceAction) scaled to the frame; a JointStepAction's trace (pixels) is drawn
as a polyline. Pillow only: no simulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw

from llara_edge.actions import JointStepAction, PickPlaceAction

BOX_RGB = (255, 255, 255)
PICK_RGB = (255, 40, 40)
PLACE_RGB = (40, 220, 40)


class Boxed(Protocol):
    """A labelled box in normalised image coordinates (the simulator's ObjectInfo is one)."""

    name: str
    bbox: tuple[float, float, float, float]  # cx, cy, w, h in [0, 1]


def _draw_boxes(draw: ImageDraw.ImageDraw, objects: Sequence[Boxed], w: int, h: int
                ) -> None:
    for o in objects:
        cx, cy, bw, bh = o.bbox
        x0, y0, x1, y1 = (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h
        draw.rectangle((x0, y0, x1, y1), outline=BOX_RGB, width=1)
        draw.text((x0 + 1, max(0.0, y0 - 11)), o.name, fill=BOX_RGB)


def _draw_action(draw: ImageDraw.ImageDraw, action, w: int, h: int) -> None:
    r = max(2, w // 100)
    if isinstance(action, PickPlaceAction):
        (pu, pv), (qu, qv) = action.pixels(w, h)
        draw.line((pu, pv, qu, qv), fill=(255, 255, 0), width=1)
        draw.ellipse((pu - r, pv - r, pu + r, pv + r), outline=PICK_RGB, width=2)
        draw.line((qu - r, qv - r, qu + r, qv + r), fill=PLACE_RGB, width=2)
        draw.line((qu - r, qv + r, qu + r, qv - r), fill=PLACE_RGB, width=2)
        if action.rotation_deg:
            draw.text((pu + r + 2, pv - r), f"{action.rotation_deg} deg", fill=PICK_RGB)
    elif isinstance(action, JointStepAction) and action.trace:
        draw.line([tuple(p) for p in action.trace], fill=PICK_RGB, width=2)


def render_annotated(obs, objects: Sequence[Boxed] = (),
                     action: PickPlaceAction | JointStepAction | None = None) -> np.ndarray:
    """obs.rgb with oracle boxes, names and the action drawn on top, (H, W, 3) uint8."""
    img = Image.fromarray(np.ascontiguousarray(obs.rgb))
    draw = ImageDraw.Draw(img)
    h, w = obs.rgb.shape[:2]
    _draw_boxes(draw, objects, w, h)
    if action is not None:
        _draw_action(draw, action, w, h)
    return np.asarray(img)
