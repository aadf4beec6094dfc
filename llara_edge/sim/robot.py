"""The simulator as a robot: real Feetech/Dynamixel packets to a simulated arm.

Contract:
- `SimRobot(cfg)` is the embedded default: a MuJoCo `TabletopEnv`, a `VirtualServoBus`
  (the config's bus kind, external motion) on a pty, the real driver (`make_bus`) opened on
  that pty, an `Arm`, the `SimBridge` (lockstep plant) and the simulator camera
  (`make_camera(cfg.camera, env=...)`, kind "sim" or "software-realsense"). `truth` is the
  calibration of the simulated hardware (default: the config's own). `faults` goes to the
  virtual bus (dropped / corrupted / delayed replies). `reset(family, level, seed)` starts an
  episode: the encoders report the new pose, the arm connects (ping, read) and holds.
  `monitor` (a `GoalMonitor`) audits every goal the simulated servos apply.
  `evaluate()` is the task's (success, failure) check; `T_base_cam_truth` the simulator's
  ground-truth extrinsics.
- Like `llara_edge.robot.robots.RealRobot` it exposes `io` (a `RobotIO` for `RobotLoop`), `kin`
  and `close()`.
"""

from __future__ import annotations

from llara_edge.errors import ConfigError
from llara_edge.hw_drivers.base import make_bus
from llara_edge.hw_drivers.camera_base import make_camera
from llara_edge.hw_drivers.virtual.pty_bus import FaultConfig, VirtualServoBus
from llara_edge.robot.arm import Arm, kinematics_for
from llara_edge.robot.config import SIM_CAMERAS, RobotConfig
from llara_edge.robot.loop import RobotIO
from llara_edge.robot.monitor import GoalMonitor
from llara_edge.sim.bridge import SimBridge
from llara_edge.sim.config import SimConfig
from llara_edge.sim.env import TabletopEnv
from llara_edge.sim.success import evaluate as evaluate_task


class SimRobot:
    """The simulator as a robot: real Feetech/Dynamixel packets to a simulated arm."""

    def __init__(self, cfg: RobotConfig, faults: FaultConfig | None = None,
                 truth: RobotConfig | None = None):
        if cfg.camera.kind not in SIM_CAMERAS:
            raise ConfigError(f"the simulator needs a camera of kind {SIM_CAMERAS}, "
                              f"the config has {cfg.camera.kind!r}")
        self.cfg = cfg
        self.kin = kinematics_for(cfg)
        self.env = TabletopEnv(SimConfig(width=cfg.camera.width, height=cfg.camera.height))
        self.virtual = VirtualServoBus(cfg.bus.kind, cfg.ids, cfg.bus.model,
                                       external_motion=True, faults=faults)
        self.monitor = GoalMonitor(self.virtual, cfg)  # audits every goal the servos apply
        try:
            self.bus = make_bus(cfg.bus.bus_config(port=self.virtual.port)).open()
            self.arm = Arm(self.bus, cfg)
            self.bridge = SimBridge(self.virtual, truth or cfg, lambda: self.bus.stats.packets)
            self.camera = make_camera(cfg.camera, env=self.env).connect()
        except BaseException:
            self.virtual.close()
            self.env.close()
            raise
        self.io = RobotIO(self.camera, self.arm, self.bridge, boxes=self.env.oracle_objects)

    @property
    def T_base_cam_truth(self):
        return self.env.T_base_cam.copy()

    def reset(self, family: str, level: str, seed: int):
        """New episode; returns its TaskInstance."""
        self.env.reset(family, level, seed)
        self.monitor.reset()
        self.bridge.attach(self.env.world)
        self.arm.connect()
        self.arm.torque(True)
        self.arm.hold()
        return self.env.task

    def evaluate(self) -> tuple[bool, str | None]:
        return evaluate_task(self.env.task, self.env.world.state())

    def close(self) -> None:
        self.camera.close()
        self.bus.close()
        self.virtual.close()
        self.env.close()

    def __enter__(self) -> SimRobot:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
