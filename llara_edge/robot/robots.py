"""The real robot the loop drives: a camera and a servo bus from the config.

Contract:
- `RealRobot(cfg)` opens the configured camera and serial bus (no simulator), connects the
  arm (ping, read), switches torque on and holds; the plant is wall-clock time
  (`RealTimePlant`). It exposes `io` (a `RobotIO` for `RobotLoop`), `kin` and `close()`.
- The simulator's robot, with the same shape, is `llara_edge.sim.robot.SimRobot`.
"""

from __future__ import annotations

from llara_edge.errors import ConfigError
from llara_edge.hw_drivers.base import make_bus
from llara_edge.hw_drivers.camera_base import make_camera
from llara_edge.robot.arm import Arm, kinematics_for
from llara_edge.robot.config import RobotConfig
from llara_edge.robot.loop import RobotIO
from llara_edge.robot.plant import RealTimePlant


class RealRobot:
    """A camera and a servo bus from the config, paced by the wall clock."""

    def __init__(self, cfg: RobotConfig):
        if cfg.bus.is_virtual:
            raise ConfigError("the real robot needs a serial port in bus.port (or --arm)")
        self.cfg = cfg
        self.kin = kinematics_for(cfg)
        self.camera = make_camera(cfg.camera).connect()
        try:
            self.bus = make_bus(cfg.bus.bus_config()).open()
            self.arm = Arm(self.bus, cfg)
            self.arm.connect()
            self.arm.torque(True)
            self.arm.hold()
        except BaseException:
            self.camera.close()
            raise
        self.io = RobotIO(self.camera, self.arm, RealTimePlant())

    def close(self) -> None:
        self.camera.close()
        self.arm.close()

    def __enter__(self) -> RealRobot:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
