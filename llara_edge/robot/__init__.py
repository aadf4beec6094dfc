"""The robot side of the loop: config, arm, safety, watchdog, telemetry, the control loop.

- `config`: `RobotConfig` (TOML; the bundled `so101_sim.toml` is the simulator default).
- `arm`: `Arm` (calibrated joint radians over a `MotorBus`), `kinematics_for(cfg)`.
- `safety`: `JointGuard` (every goal) and `SafetyLayer` (every decision).
- `watchdog`: deadlines and SIGINT/SIGTERM -> controlled stop.
- `driver`: setpoints -> goals, one per tick; `bridge`: the simulator and real-time plants.
- `loop`: `RobotLoop` (capture -> policy -> parse -> geometry -> safety -> drive).
- `robots`: `SimRobot` (virtual servo bus + MuJoCo) and `RealRobot`.
- `telemetry`: per-stage timings and the JSON report; `calibration`: hand-eye procedures.
"""
