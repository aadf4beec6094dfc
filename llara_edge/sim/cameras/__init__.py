"""Simulator cameras: frames rendered by the MuJoCo tabletop (`llara_edge.sim`).

- `camera`: `SimCamera` (kind "sim"): the front RGB-D camera rendered directly.
- `software_realsense`: `SoftwareRealSenseCamera` (kind "software-realsense"): the same
  frames pushed through a real pyrealsense2 pipeline by a software device, so the RealSense
  code path (serial selection, align, depth scale, intrinsics, recording) runs without hardware.
"""
