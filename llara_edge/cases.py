"""Evaluation cases: simulator (or recorded) frames with their LLaRA prompts, for export
parity, INT8 calibration and the latency bench.

Contract:
    sim_frames(k, width=320, height=240, seed=0, policy_format="llara") -> list[ParityCase]
    recorded_frames(path, task, k, width=320, height=240) -> list[ParityCase]
    ParityCase(rgb (H, W, 3) uint8, user_text str, name str)

Simulator cases cycle over the pick-and-place task families and levels of llara_edge.sim with
seeds seed, seed+1, ...; each prompt is the one the policy sees, written by its policy format
(llara: D-inBC, objects inlined with their boxes from the simulator's oracle), so parity is
measured on the inputs the exported policy will really get. Recorded cases are the first k
frames of a file-camera recording (.npz, PNG directory or video; from the start again when it
has fewer), each with the prompt `llara-edge run --task TASK` sends on a real robot: no
MuJoCo needed (a robot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llara_edge.errors import ConfigError


@dataclass(frozen=True)
class ParityCase:
    rgb: np.ndarray  # (H, W, 3) uint8 camera frame
    user_text: str  # the policy format's user prompt with one <image> tag
    name: str  # "family/level/seed"


def _pick_place_families() -> list[str]:
    from llara_edge.sim.tasks import TASK_REGISTRY

    return [name for name, spec in TASK_REGISTRY.items() if spec.control == "pick_place"]


def sim_frames(k: int, width: int = 320, height: int = 240, seed: int = 0,
               policy_format: str = "llara") -> list[ParityCase]:
    """k deterministic (frame, prompt) cases rendered by the MuJoCo tabletop."""
    from llara_edge.formats import policy_format as format_named
    from llara_edge.sim.config import SimConfig
    from llara_edge.sim.env import TabletopEnv
    from llara_edge.sim.prompter import prompt_input
    from llara_edge.sim.tasks import LEVELS

    if k < 1:
        raise ConfigError(f"need at least one parity frame, got {k}")
    fmt = format_named(policy_format)
    families = _pick_place_families()
    env = TabletopEnv(SimConfig(width=width, height=height))
    cases = []
    try:
        for i in range(k):
            family, level = families[i % len(families)], LEVELS[(i // len(families)) % len(LEVELS)]
            obs = env.reset(family, level, seed + i)
            text = fmt.prompt(prompt_input(env, describe=True, poses=[obs.joints]))
            cases.append(ParityCase(obs.rgb.copy(), text, f"{family}/{level}/{seed + i}"))
    finally:
        env.close()
    return cases


def recorded_frames(path: str | Path, task: str, k: int, width: int = 320,
                    height: int = 240) -> list[ParityCase]:
    """k (frame, prompt) cases from a recording, prompted as a real robot's first decision."""
    from llara_drivers.camera_base import CameraConfig, make_camera
    from llara_edge.formats import N_ARM_JOINTS
    from llara_edge.robot.policy_io import TaskPrompter

    if k < 1:
        raise ConfigError(f"need at least one frame, got {k}")
    text = TaskPrompter(task)(np.zeros(N_ARM_JOINTS), [])
    config = CameraConfig(kind="file", path=str(path), width=width, height=height, loop=True)
    with make_camera(config) as camera:
        return [ParityCase(camera.read().color.copy(), text, f"{Path(path).name}/{i}")
                for i in range(k)]
