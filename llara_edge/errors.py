"""Typed errors of llara-edge.

Every failure that a caller may want to handle has its own class. The runtime's derive from
`LlaraEdgeError`; the device errors are the drivers' own classes, re-exported here
(`DeviceError`, `ProtocolError`, `DepthError`: llara_drivers.errors, whose base is
`DriverError`), and the kernels raise `KernelError` (a ValueError). `REPORTED` is the tuple a
command reports as one line (exit 2) instead of a traceback. Raise them `from` their cause so
the original traceback is kept.
"""

from llara_drivers.errors import DepthError, DeviceError, DriverError, ProtocolError
from llara_kernels.errors import KernelError

__all__ = [
    "REPORTED",
    "ArtifactError",
    "AuthError",
    "ConfigError",
    "ContextFullError",
    "DeployError",
    "DepthError",
    "DeviceError",
    "DiskFullError",
    "DriverError",
    "EngineError",
    "GeometryError",
    "HostUnreachableError",
    "InputError",
    "KernelError",
    "LlaraEdgeError",
    "ParseError",
    "ProtocolError",
    "SafetyError",
    "SimError",
    "VerifyError",
]


class LlaraEdgeError(Exception):
    """Base class of every error raised on purpose by llara-edge."""


class ConfigError(LlaraEdgeError, ValueError):
    """A configuration value is missing, out of range or inconsistent."""


class ParseError(LlaraEdgeError, ValueError):
    """Model output text is not a well-formed action of the expected format.

    `reason` is a short machine-readable tag (e.g. "no_match", "out_of_range", "truncated"),
    `text` the offending answer (clipped), so telemetry can count failures by kind.
    """

    def __init__(self, reason: str, message: str, text: str = ""):
        self.reason = reason
        self.text = text[:400]
        super().__init__(f"{reason}: {message}")


class ArtifactError(LlaraEdgeError):
    """A model file or export artifact is missing, corrupt, truncated or of the wrong kind."""


class InputError(LlaraEdgeError, ValueError):
    """A call got an argument of the wrong shape, type or range at run time: a frame that is
    not uint8 (H, W, 3), token ids outside the vocabulary, embeddings of the wrong width, a
    rollback past the start of the cache (a caller's bug, not a configuration value)."""


class EngineError(LlaraEdgeError):
    """An inference engine failed at run time: llama_decode / llama_encode / an mtmd call
    returned an error code, onnxruntime or TensorRT failed on a run."""


class ContextFullError(EngineError):
    """The KV cache has no room for the positions asked for (n_ctx positions are in use, or
    llama_decode found no KV slot): roll back, reset, or load with a larger n_ctx."""


class GeometryError(LlaraEdgeError):
    """A target cannot be reached: outside the workspace, no IK solution, or joint limits."""


class SafetyError(LlaraEdgeError):
    """The safety layer refused a command (limits, watchdog, e-stop)."""


class SimError(LlaraEdgeError):
    """The simulator was asked for something it cannot do (unknown task, bad seed, ...)."""


class DeployError(DeviceError):
    """Copying an export to a robot over SSH, or installing it there, failed."""


class HostUnreachableError(DeployError):
    """The robot did not answer on its SSH port (down, wrong address or port, no route)."""


class AuthError(DeployError):
    """The robot refused the SSH login (wrong key or password, unknown or changed host key)."""


class DiskFullError(DeployError):
    """The robot's disk ran out of space while the artifact was copied or installed."""


class VerifyError(DeployError):
    """The copy on the robot does not match the manifest's sha256 (nothing was installed)."""


REPORTED = (LlaraEdgeError, DriverError, KernelError)
