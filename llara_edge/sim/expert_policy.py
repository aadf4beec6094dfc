"""Oracle text policy: the simulator's scripted expert answering in the policy's text format.

`OracleTextPolicy(env).act(rgb, user_text)` ignores the image and answers what the scripted
expert would do in the env's current state, written by the policy format of the task's
control (sim.prompter.SIM_FORMATS, or `formats`): a LLaRA pick-and-place step numbered after
the history in the prompt, or a LLARVA joint step. It returns text only: the loop parses it
like any model's, so the loop, geometry, safety and bus are exercised with a policy that is
right by construction (`llara-edge run --policy oracle`, tests).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from llara_edge.formats import policy_format
from llara_edge.robot.policy_io import PolicyOutput
from llara_edge.sim.expert import ScriptedExpert
from llara_edge.sim.prompter import SIM_FORMATS


class OracleTextPolicy:
    """The scripted expert as a TextPolicy (one expert per env episode)."""

    name = "oracle"

    def __init__(self, env, formats: Mapping[str, str] = SIM_FORMATS):
        self.env, self.formats = env, dict(formats)
        self._expert: ScriptedExpert | None = None
        self._episode = -1

    def act(self, rgb: np.ndarray, user_text: str) -> PolicyOutput:
        start = time.perf_counter()
        if self._episode != self.env.episode:
            self._expert, self._episode = ScriptedExpert(self.env), self.env.episode
        action = self._expert.act()
        fmt = policy_format(self.formats[self.env.task.control])
        text = fmt.answer(action, user_text)
        return PolicyOutput(text, {"policy": time.perf_counter() - start})
