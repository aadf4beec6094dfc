"""Points measured on a table: the surface rules a real robot and the simulator share.

Contract (base frame: x forward, y left, z up; the table is z = 0; metres):
- `snap_to_table(point)`: points measured on the table come out a hair below z = 0 from depth
  quantisation and noise; they are put on the surface, and points more than `TABLE_SNAP_M`
  below it are refused (DepthError: bad depth or a bad hand-eye calibration).
- `place_height(pick, place)`: a place point on the picked object itself (same surface within
  `SAME_SURFACE_XY` / `SAME_SURFACE_Z`) means "put it back here" (e.g. a rotation in place):
  the object is then set down where it rests now (z = 0), not on its own top.
Pure NumPy: no simulator.
"""

from __future__ import annotations

import numpy as np

from llara_edge.errors import DepthError

TABLE_SNAP_M = 0.01  # m: measured points this far below the table surface count as on it
SAME_SURFACE_XY = 0.03  # m
SAME_SURFACE_Z = 0.006  # m


def snap_to_table(point: np.ndarray, table_z: float = 0.0, tol: float = TABLE_SNAP_M
                  ) -> np.ndarray:
    """`point` with z raised to the table surface when it lies at most `tol` below it."""
    if point[2] >= table_z:
        return point
    if point[2] < table_z - tol:
        raise DepthError(f"point ({point[0]:.3f}, {point[1]:.3f}, {point[2]:.3f}) m is "
                         f"{(table_z - point[2]) * 1000:.0f} mm below the table: depth or "
                         "camera calibration is wrong")
    return np.array([point[0], point[1], table_z])


def place_height(pick: np.ndarray, place: np.ndarray) -> np.ndarray:
    """Place point, lowered to the object's current support if it lies on the object itself."""
    same = np.linalg.norm(place[:2] - pick[:2]) <= SAME_SURFACE_XY and \
        abs(place[2] - pick[2]) <= SAME_SURFACE_Z
    # the planner carries the object pick[2] below the cup (resting on z = 0): support z = 0
    return np.array([place[0], place[1], 0.0]) if same else place
