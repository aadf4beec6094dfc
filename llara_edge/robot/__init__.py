"""The robot side of the loop: config, arm, safety, watchdog, telemetry, the control loop.

- `config`: `RobotConfig` (TOML; the bundled `so101_sim.toml` is the simulator default).
- `arm`: `Arm` (calibrated joint radians over a `MotorBus`), `kinematics_for(cfg)`.
- `safety`: `JointGuard` (every goal) and `SafetyLayer` (every decision).
- `watchdog`: deadlines and SIGINT/SIGTERM -> controlled stop.
- `driver`: setpoints -> goals, one per tick; `plant`: the real-time plant (the simulator's
  is `llara_edge.sim.bridge`).
- `loop`: `RobotLoop` (capture -> policy -> parse -> geometry -> safety -> drive).
- `robots`: `RealRobot` (the simulator's robot: `llara_edge.sim.robot.SimRobot`);
  `preflight`: what may control a real arm, and the run's first lines.
  Nothing here imports the simulator (MuJoCo is not on a robot).
- `telemetry`: per-stage timings and the JSON report; `calibration`: hand-eye procedures.
"""
