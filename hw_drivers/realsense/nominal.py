"""Nominal RealSense D400 constants: what a D435 reports with its typical factory calibration.

Used where no per-device calibration exists: the simulator's camera model, and frames replayed
from a file that carries no intrinsics (the file camera then says so: `intrinsics_source`).
A live RealSense always reports its own intrinsics (rs_api), never these.
"""

from __future__ import annotations

from llara_edge.geometry.camera import Intrinsics

# Intel RealSense D435 colour stream at 640x480 (typical factory calibration, no distortion).
D435_COLOUR = Intrinsics(width=640, height=480, fx=615.0, fy=615.0, ppx=320.0, ppy=240.0)
DEPTH_SCALE = 0.001  # metres per depth unit, the D400 default
