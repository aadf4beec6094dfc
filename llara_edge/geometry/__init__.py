"""Geometry: camera models, frames and transforms shared by the simulator and the real robot."""

from llara_drivers.camera_model import (
    Intrinsics,
    deproject_pixel_to_point,
    project_point_to_pixel,
    transform_points,
)

__all__ = ["Intrinsics", "deproject_pixel_to_point", "project_point_to_pixel", "transform_points"]
