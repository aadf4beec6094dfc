"""Oracle text policy: the simulator's scripted expert answering in the policy's text format.

`OracleTextPolicy(env).act(rgb, user_text)` ignores the image and answers what the scripted
expert would do in the env's current state, written exactly as a LLaRA (pick-and-place,
"Step k: ..." numbered after the history in the prompt) or LLARVA (joint step) answer. The
loop parses that text like any model's, so the loop, geometry, safety and bus are exercised
with a policy that is right by construction (`llara-edge run --policy oracle`, tests).
"""

from __future__ import annotations

import time

import numpy as np

from llara_edge.actions import PickPlaceAction
from llara_edge.formats import format_answer, format_llarva_answer, next_step_number
from llara_edge.robot.policy_io import N_LLARVA_JOINTS, PolicyOutput
from llara_edge.sim.expert import ScriptedExpert


class OracleTextPolicy:
    """The scripted expert as a TextPolicy (one expert per env episode)."""

    name = "oracle"

    def __init__(self, env):
        self.env = env
        self._expert: ScriptedExpert | None = None
        self._episode = -1

    def act(self, rgb: np.ndarray, user_text: str) -> PolicyOutput:
        start = time.perf_counter()
        if self._episode != self.env.episode:
            self._expert, self._episode = ScriptedExpert(self.env), self.env.episode
        action = self._expert.act()
        if isinstance(action, PickPlaceAction):
            text = format_answer([action], first_step=next_step_number(user_text))
        else:
            text = format_llarva_answer(action, N_LLARVA_JOINTS)
        return PolicyOutput(text, {"policy": time.perf_counter() - start})
