"""The closed loop: capture -> policy -> action -> geometry -> safety -> drive, with telemetry.

Contract:
- `RobotLoop(io, policy, prompter, cfg, ...)` runs decisions on a `RobotIO` (camera, arm,
  plant). One decision (`step`) is: capture a frame, build the prompt, ask the policy (under
  the watchdog's policy deadline), take its typed action (`PolicyOutput.action`; a text-only
  policy's answer is parsed here, once, stage "parse", by the prompter's policy format) and
  check it is an action of that format (else ParseError), then
  - pick-and-place / sweep (LLaRA): both image points + depth (median of valid depth around
    the pixel; a hole is a DepthError) -> camera 3D -> base frame through the hand-eye
    transform -> workspace check -> motion plan (approach heights, return home) -> setpoints
    every `setpoint_dt_s` -> whole-trajectory safety check -> drive -> settle;
  - joint step (LLARVA): clamp to the limits, time for the speed limit -> drive.
  Driving sends each setpoint through `Arm.command` (JointGuard: clamp / refuse), advances
  the plant, reads the present pose back and refuses a tracking error; each setpoint runs
  under the watchdog's setpoint deadline.
- Nothing moves on a refused decision: `ParseError`, `DepthError`, `GeometryError`,
  `SafetyError` (also a stalled policy, discarded) -> outcome "refused:<tag>", the arm holds.
  Bus and camera errors (`DeviceError`) -> "aborted:<tag>", the arm holds; servo fault bits or
  `max_consecutive_faults` aborts in a row stop the run. A stop request (SIGINT/SIGTERM via
  `StopSignals`, or `request_stop`) ends the run with `controlled_stop`: hold, then torque
  off if `safety.torque_off_on_stop`.
- Overlap: with a camera that has a background reader (`threaded_reader`), frames are
  captured and aligned while the arm moves and settles, and the next decision takes the
  newest one (`async_read`), captured after the motion; the simulator's camera renders in
  the caller's thread (one GL context), so there the capture runs after the settle.
- Every decision is one `StepRecord` in `telemetry`, with the policy's answer `text` whenever
  the policy answered (refused and aborted steps too, beside the `error` saying why);
  annotated frames (predicted points) go to `gif_frames` when `record` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from llara_drivers.camera_base import Camera, Frame, depth_at
from llara_drivers.camera_model import deproject_pixel_to_point
from llara_drivers.servo_wire import ServoFaultError
from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import DepthError, DeviceError, GeometryError, ParseError, SafetyError
from llara_edge.formats import policy_format
from llara_edge.geometry.kinematics import ArmKinematics
from llara_edge.geometry.motion import MotionConfig, interpolate, plan_pick_place, plan_sweep
from llara_edge.geometry.table import place_height, snap_to_table
from llara_edge.robot.annotate import render_annotated
from llara_edge.robot.arm import Arm
from llara_edge.robot.config import RobotConfig
from llara_edge.robot.driver import Driver, StopRequested
from llara_edge.robot.policy_io import PolicyOutput, Prompter, TextPolicy
from llara_edge.robot.safety import SafetyLayer, SafetyRefusal, refusal_reason
from llara_edge.robot.telemetry import StepRecord, Telemetry
from llara_edge.robot.watchdog import Watchdog

REFUSED = (ParseError, DepthError, GeometryError, SafetyError)


@dataclass(frozen=True)
class LoopConfig:
    """Loop behaviour that is not a property of the robot."""

    control_dt_s: float = 0.1  # LLARVA: one joint step lasts at least this long
    read_back: bool = True  # read the present pose after every setpoint (tracking check)
    pose_check_stride: int = 5  # FK workspace check on every n-th planned setpoint
    record: bool = True  # keep annotated frames for the rollout GIF
    max_gif_frames: int = 200


@dataclass
class RobotIO:
    """The devices one loop drives; `plant` is a SimBridge or a RealTimePlant."""

    camera: Camera
    arm: Arm
    plant: object
    boxes: Callable[[], Sequence] = tuple  # oracle boxes for the GIF (simulator), or none


@dataclass
class EpisodeResult:
    episode: int
    success: bool = False
    steps: int = 0
    failure: str | None = None
    stopped: str | None = None
    outcomes: list[str] = field(default_factory=list)


class RobotLoop:
    """Closed-loop control of one robot by one text policy (see the module docstring)."""

    def __init__(self, io: RobotIO, policy: TextPolicy, prompter: Prompter, cfg: RobotConfig,
                 kin: ArmKinematics, telemetry: Telemetry | None = None,
                 motion: MotionConfig | None = None, loop_cfg: LoopConfig | None = None):
        self.io, self.policy, self.prompter, self.cfg, self.kin = io, policy, prompter, cfg, kin
        self.telemetry = telemetry or Telemetry()
        self.motion = motion or MotionConfig()
        self.loop_cfg = loop_cfg or LoopConfig()
        self.safety = SafetyLayer(cfg, kin)
        self.watchdog = Watchdog(self._watchdog_hold, grace_s=cfg.safety.stop_grace_s)
        self.driver = Driver(io.arm, io.plant, cfg, self.watchdog, self.loop_cfg.read_back)
        self.gif_frames: list[np.ndarray] = []
        self.stopped: str | None = None
        self.consecutive_faults = 0
        self.history: list[PickPlaceAction] = []
        self._answer: str | None = None  # the current step's answer text, once it has one

    # -- lifecycle
    def close(self) -> None:
        self.watchdog.close()

    def request_stop(self, reason: str) -> None:
        self.watchdog.request_stop(reason)

    def _watchdog_hold(self, reason: str) -> None:
        self.telemetry.event("watchdog_hold", reason=reason)
        self.io.arm.hold()

    def _hold_quietly(self, why: str) -> None:
        try:
            self.io.arm.hold()
        except (DeviceError, SafetyError) as exc:
            self.telemetry.event("hold_failed", why=why, error=f"{type(exc).__name__}: {exc}")

    def controlled_stop(self, reason: str) -> None:
        """Hold, then release the motors if the config asks; the run ends."""
        self.watchdog.acknowledge_stop()
        self.stopped = self.stopped or reason
        self.finish(reason)

    def finish(self, reason: str = "run finished") -> None:
        """End of a run: hold, then torque off if `safety.torque_off_on_stop`."""
        self._hold_quietly(reason)
        torque_off = self.cfg.safety.torque_off_on_stop
        if torque_off:
            try:
                self.io.arm.torque(False)
            except DeviceError as exc:
                self.telemetry.event("torque_off_failed", error=str(exc))
        self.telemetry.event("stop", reason=reason, torque_off=torque_off)

    def _check_stop(self) -> None:
        self.driver.check_stop()

    # -- episodes
    def run_episode(self, episode: int, max_steps: int,
                    evaluate: Callable[[], tuple[bool, str | None]] | None = None
                    ) -> EpisodeResult:
        """Decide and act until success, failure, `max_steps` decisions or a stop."""
        result = EpisodeResult(episode)
        self.history = []
        self.prompter.reset()
        for i in range(1, max_steps + 1):
            rec = self.step(episode, i)
            result.steps, result.outcomes = i, [*result.outcomes, rec.outcome]
            if self.stopped:
                break
            if evaluate is not None and rec.outcome == "executed":
                result.success, result.failure = evaluate()
                if result.success or result.failure:
                    break
        result.stopped = self.stopped
        self._record_final()
        return result

    def step(self, episode: int, index: int) -> StepRecord:
        tel = self.telemetry
        tel.begin_step(episode, index)
        self._answer = None
        try:
            self._check_stop()
            info = self._decide_and_act()
            self.consecutive_faults = 0
            return tel.end_step("executed", **info)
        except StopRequested as exc:
            self.controlled_stop(f"signal {exc}")
            return tel.end_step(f"stopped:{exc}", **self._answered())
        except REFUSED as exc:
            tag = self.safety.refuse(exc)
            self._hold_quietly(tag)
            return tel.end_step(f"refused:{tag}", error=f"{type(exc).__name__}: {exc}",
                                **self._answered())
        except DeviceError as exc:
            return tel.end_step(self._bus_fault(exc), error=f"{type(exc).__name__}: {exc}",
                                **self._answered())

    def _answered(self) -> dict:
        """The policy's answer text of the current step, when it got that far (so a refused
        step's telemetry shows what the model said)."""
        return {} if self._answer is None else {"text": self._answer}

    def _bus_fault(self, exc: DeviceError) -> str:
        tag = refusal_reason(exc)
        self.consecutive_faults += 1
        self.telemetry.event("fault", reason=tag, error=str(exc))
        self._hold_quietly(tag)
        if isinstance(exc, ServoFaultError):
            self.controlled_stop(f"servo fault: {exc}")
        elif self.consecutive_faults >= self.cfg.safety.max_consecutive_faults:
            self.controlled_stop(f"{self.consecutive_faults} faults in a row: {exc}")
        return f"aborted:{tag}"

    # -- one decision
    def _capture(self) -> Frame:
        cam = self.io.camera
        return cam.async_read() if cam.threaded_reader else cam.read()

    def _decide_and_act(self) -> dict:
        tel, arm = self.telemetry, self.io.arm
        with tel.stage("capture"):
            frame = self._capture()
        with tel.stage("state"):
            q_now = arm.read()
        with tel.stage("prompt"):
            text = self.prompter(q_now, self.history)
        with self.watchdog.guard("policy", self.cfg.safety.policy_deadline_s) as deadline:
            out = self.policy.act(frame.color, text)
        self._answer = out.text
        tel.add_stages(out.timings)
        if not out.timings:
            tel.add("policy", deadline.elapsed_s)
        if deadline.expired:
            raise SafetyRefusal("stalled", f"policy answered after {deadline.elapsed_s:.2f} s "
                                f"(deadline {deadline.deadline_s} s); answer discarded")
        self._check_stop()
        action = self._action(out)
        self._record(frame, action)
        info = {"text": out.text, **out.info}
        if isinstance(action, PickPlaceAction):
            info.update(self._pick_place(action, frame, q_now))
            self.history.append(action)
        else:
            info.update(self._joint_step(action, q_now))
        return info

    def _action(self, out: PolicyOutput):
        """The policy's typed action, or its text parsed once by the prompt's format; either
        must be an action of that format (a policy answering in another is refused)."""
        fmt = policy_format(self.prompter.format)
        if out.action is not None:
            return fmt.check(out.action)
        with self.telemetry.stage("parse"):
            return fmt.check(fmt.parse(out.text))

    def _points(self, action: PickPlaceAction, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        """Base-frame pick and place points (3,) m from the frame's depth and the hand-eye."""
        T = self.cfg.hand_eye.matrix
        radius = self.cfg.camera.hole_radius
        points = []
        for u, v in action.pixels(frame.intrinsics.width, frame.intrinsics.height):
            z = depth_at(frame, u, v, radius)
            p_cam = deproject_pixel_to_point(frame.intrinsics, (u, v), z)
            points.append(snap_to_table(T[:3, :3] @ p_cam + T[:3, 3]))
        return points[0], points[1]

    def _pick_place(self, action: PickPlaceAction, frame: Frame, q_now: np.ndarray) -> dict:
        tel, n = self.telemetry, len(self.kin.joints)
        with tel.stage("geometry"):
            pick, place = self._points(action, frame)
        with tel.stage("safety"):
            self.safety.check_point(pick, "pick")
            self.safety.check_point(place, "place")
        with tel.stage("plan"):
            q5 = q_now[:n]
            if action.tool == "spatula":
                plan = plan_sweep(self.kin, q5, pick, place, self.motion)
            else:
                place = place_height(pick, place)
                plan = plan_pick_place(self.kin, q5, pick, place, action.rotation_deg,
                                       self.motion)
            dt = self.cfg.safety.setpoint_dt_s
            traj = interpolate(plan, q5, dt, float(np.min(self.cfg.max_speed[:n])))
        with tel.stage("safety"):
            self.safety.check_trajectory(traj, q5, self.loop_cfg.pose_check_stride)
        self.io.plant.set_tool(action.tool)
        try:
            with tel.stage("drive"):
                self.driver.drive(traj.q[1:], traj.suction[1:], np.diff(traj.t))
        finally:
            self.io.plant.set_tool("suction")
        with tel.stage("settle"):
            self.io.plant.settle(self.cfg.safety.settle_s)
        return {"pick_xyz": pick.round(4).tolist(), "place_xyz": place.round(4).tolist(),
                "setpoints": len(traj.t) - 1, "motion_s": round(float(traj.t[-1]), 3)}

    def _joint_step(self, action: JointStepAction, q_now: np.ndarray) -> dict:
        dt = self.cfg.safety.setpoint_dt_s
        with self.telemetry.stage("safety"):
            setpoints = self.safety.joint_step(np.asarray(action.joints), q_now,
                                               self.loop_cfg.control_dt_s, dt)
        grip = np.full(len(setpoints), action.gripper < 0.5)
        with self.telemetry.stage("drive"):
            self.driver.drive(setpoints, grip, np.full(len(setpoints), dt))
        return {"setpoints": len(setpoints), "joints": np.round(setpoints[-1], 4).tolist()}

    # -- rollout frames
    def _record(self, frame: Frame, action) -> None:
        if self.loop_cfg.record and len(self.gif_frames) < self.loop_cfg.max_gif_frames:
            obs = SimpleNamespace(rgb=frame.color)
            self.gif_frames.append(render_annotated(obs, self.io.boxes(), action))

    def _record_final(self) -> None:
        if self.loop_cfg.record and len(self.gif_frames) < self.loop_cfg.max_gif_frames:
            try:
                self.gif_frames.append(np.ascontiguousarray(self.io.camera.read().color))
            except DeviceError as exc:
                self.telemetry.event("final_frame_failed", error=str(exc))
