"""Intel RealSense (D400) camera backend over pyrealsense2.

- `rs_api`: lazy import of pyrealsense2, intrinsics conversion, serial-number selection, and
  the frameset -> `Frame` conversion (depth units -> metres, holes -> NaN).
- `camera`: `RealSenseCamera` (kind "realsense"): a live device picked by serial number or a
  recording played back, colour + depth aligned to colour, optional recording.
- `software`: `SoftwareRealSense`, a D400-like `rs.software_device` whose frames are pushed
  from Python and reach a real `rs.pipeline` (used by the simulator-driven camera and tests).
"""
