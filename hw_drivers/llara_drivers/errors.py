"""Typed errors of the drivers; all derive from `DriverError`.

Raise them `from` their cause. llara_edge re-exports `DeviceError`, `ProtocolError` and
`DepthError` (the same classes) and reports every DriverError as a one-line error.
"""


class DriverError(Exception):
    """Base class of every error raised on purpose by the drivers."""


class DriverConfigError(DriverError, ValueError):
    """A bus or camera configuration value is missing, out of range or inconsistent."""


class DeviceError(DriverError):
    """A camera, serial bus or accelerator could not be opened or stopped answering."""


class ProtocolError(DeviceError):
    """Bytes on a bus did not follow the wire protocol (bad header, checksum, length, id)."""


class DepthError(DriverError):
    """No valid depth at (or around) a pixel where a 3D point is needed."""


class RecordingError(DeviceError):
    """Recorded frames (an .npz, a PNG folder, a video) are missing, corrupt or malformed."""
