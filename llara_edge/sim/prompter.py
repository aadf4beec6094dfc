"""The simulator's prompter: prompts exactly as the data generator writes them.

`SimPrompter(env, describe=True)` is a `llara_edge.robot.policy_io.Prompter` for a simulator
episode: D-inBC with the oracle boxes (or inBC with `describe=False`) for pick-and-place tasks,
LLARVA with the proprio history for joint-control tasks, as `llara_edge.sim.policy_agent`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llara_edge.actions import PickPlaceAction
from llara_edge.formats import LlarvaPrompt, ProprioHistory
from llara_edge.robot.policy_io import N_LLARVA_JOINTS
from llara_edge.sim.policy_agent import llara_user_text


class SimPrompter:
    """Simulator prompts exactly as the data generator writes them (see policy_agent)."""

    def __init__(self, env, describe: bool = True, robot: str = "SO-101"):
        self.env, self.describe, self.robot = env, describe, robot
        self._proprio = ProprioHistory(N_LLARVA_JOINTS)

    @property
    def format(self) -> str:
        return "llarva" if self.env.task.control == "joint" else "llara"

    def reset(self) -> None:
        self._proprio = ProprioHistory(N_LLARVA_JOINTS)

    def __call__(self, q: np.ndarray, history: Sequence[PickPlaceAction]) -> str:
        if self.format == "llarva":
            self._proprio.push(np.asarray(q)[:N_LLARVA_JOINTS])
            return LlarvaPrompt(self.env.task.instruction.rstrip("."),
                                robot=self.robot).render(self._proprio)
        return llara_user_text(self.env, list(history), self.describe)
