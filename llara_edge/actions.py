"""Typed actions: what a policy answer means, independent of its text format.

Image points are normalised image coordinates (x right, y down, origin top-left, both in
[0, 1]) of the camera frame the policy saw; rotations are integer degrees, clockwise as in
LLaRA, within -359..359. Joint values are radians (or the unit the robot config says), in
the order of the robot's joints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Tool = Literal["suction", "spatula"]

ROTATION_LIMIT_DEG = 359


def _check_point(name: str, p: tuple[float, float]) -> None:
    if len(p) != 2 or not all(0.0 <= v <= 1.0 for v in p):
        raise ValueError(f"{name} must be two normalised coordinates in [0, 1], got {p!r}")


@dataclass(frozen=True)
class PickPlaceAction:
    """One LLaRA step: pick (or start sweeping) at `pick`, rotate, place (or stop) at `place`."""

    pick: tuple[float, float]
    place: tuple[float, float]
    rotation_deg: int = 0
    tool: Tool = "suction"
    object_name: str | None = None

    def __post_init__(self) -> None:
        _check_point("pick", self.pick)
        _check_point("place", self.place)
        if not isinstance(self.rotation_deg, int) or abs(self.rotation_deg) > ROTATION_LIMIT_DEG:
            raise ValueError(f"rotation_deg must be an int in -359..359, got {self.rotation_deg!r}")
        if self.tool not in ("suction", "spatula"):
            raise ValueError(f"tool must be 'suction' or 'spatula', got {self.tool!r}")

    def pixels(self, width: int, height: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Pick and place points in pixels of a width x height frame (sub-pixel floats)."""
        return (
            (self.pick[0] * width, self.pick[1] * height),
            (self.place[0] * width, self.place[1] * height),
        )


@dataclass(frozen=True)
class JointStepAction:
    """One LLARVA step: absolute joint targets, gripper (0 closed .. 1 open), optional 2D trace.

    `trace` holds integer pixel points of the end effector's predicted path, if asked for.
    """

    joints: tuple[float, ...]
    gripper: float = 1.0
    trace: tuple[tuple[int, int], ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if len(self.joints) == 0:
            raise ValueError("joints must not be empty")
        if not 0.0 <= self.gripper <= 1.0:
            raise ValueError(f"gripper must be in [0, 1], got {self.gripper!r}")


Action = PickPlaceAction | JointStepAction
