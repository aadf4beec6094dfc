"""Rollout recording: annotated frames of every step, saved as an animated GIF.

`RolloutRecorder.on_step` plugs into `rollout.run_episode(..., on_step=...)`: each decision
adds the observed frame with the oracle boxes and the predicted pick/place points (or LLARVA
trace) drawn on it. `save` writes the GIF atomically (temporary file, then rename) and keeps at
most `max_frames` frames (evenly subsampled) so files stay small.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.robot.annotate import render_annotated
from llara_edge.sim.env import Observation, TabletopEnv


class RolloutRecorder:
    """Collects annotated frames; `frame_ms` is the GIF frame duration."""

    def __init__(self, max_frames: int = 120, frame_ms: int = 600, boxes: bool = True):
        self.max_frames, self.frame_ms, self.boxes = max_frames, frame_ms, boxes
        self.frames: list[np.ndarray] = []

    def on_step(self, env: TabletopEnv, obs: Observation,
                action: PickPlaceAction | JointStepAction | None) -> None:
        objects = env.oracle_objects() if self.boxes else ()
        self.frames.append(render_annotated(obs, objects, action))

    def add_final(self, env: TabletopEnv) -> None:
        """The frame after the last action (shows the outcome)."""
        self.frames.append(np.ascontiguousarray(env.observe().rgb))

    def save(self, path: Path) -> Path:
        if not self.frames:
            raise ValueError("no frames recorded")
        idx = np.unique(np.linspace(0, len(self.frames) - 1,
                                    min(self.max_frames, len(self.frames))).round().astype(int))
        images = [Image.fromarray(self.frames[i]) for i in idx]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=self.frame_ms, loop=0)
        os.replace(tmp, path)
        return path
