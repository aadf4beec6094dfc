"""Simulator configuration, validated on construction.

Times are seconds, lengths metres, the camera pose is given in the base frame (position
and the point it looks at). The render size must keep the D435's 4:3 aspect so that the
scaled intrinsics stay square-pixel, as MuJoCo's pinhole is.
"""

from __future__ import annotations

from dataclasses import dataclass

from llara_edge.errors import ConfigError
from llara_edge.geometry.camera import Intrinsics
from llara_edge.hw_drivers.realsense.nominal import D435_COLOUR


@dataclass(frozen=True)
class SimConfig:
    """Render size, physics and control timing, camera pose and depth range."""

    width: int = 640
    height: int = 480
    timestep: float = 0.004  # s, physics step
    control_dt: float = 0.1  # s, one JointStepAction lasts this long
    settle_s: float = 0.6  # s of physics after a primitive before success is checked
    camera_position: tuple[float, float, float] = (0.5, 0.0, 0.45)
    camera_target: tuple[float, float, float] = (0.125, 0.0, 0.0)
    depth_min_m: float = 0.1  # D435 minimum z at this resolution is ~0.1-0.3 m
    depth_max_m: float = 1.5  # beyond: no data (0), as the sky above the table
    depth_window_px: int = 5  # odd side of the square whose median depth a pixel gets
    suction_reach_m: float = 0.006  # cup face to object surface gap that still attaches

    def __post_init__(self) -> None:
        if self.width < 32 or self.height < 24 or self.width * 3 != self.height * 4:
            raise ConfigError(f"render size must be 4:3 and at least 32x24, got "
                              f"{self.width}x{self.height}")
        if not 0 < self.timestep <= 0.01:
            raise ConfigError(f"timestep must be in (0, 0.01] s, got {self.timestep}")
        if self.control_dt < self.timestep or self.settle_s < 0:
            raise ConfigError("control_dt must be >= timestep and settle_s >= 0")
        if not 0 < self.depth_min_m < self.depth_max_m:
            raise ConfigError("need 0 < depth_min_m < depth_max_m")
        if self.depth_window_px < 1 or self.depth_window_px % 2 == 0:
            raise ConfigError("depth_window_px must be a positive odd number")
        if self.camera_position[2] <= self.camera_target[2]:
            raise ConfigError("the camera must look down at the table")

    @property
    def intrinsics(self) -> Intrinsics:
        """Colour (and aligned depth) intrinsics at the render size."""
        return D435_COLOUR.scaled(self.width, self.height)

    @property
    def substeps(self) -> int:
        """Physics steps per control period."""
        return max(1, round(self.control_dt / self.timestep))
