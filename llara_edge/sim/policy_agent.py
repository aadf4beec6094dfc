"""A text policy as a simulator agent: env state -> prompt -> answer -> typed action.

    agent = PolicyAgent(policy)              # policy.generate(rgb, user_text) -> (text, ...)
    rollout.run_episode(env, agent, ...)     # agent(env, obs) -> PickPlaceAction | JointStepAction

Prompts and parsers are those of the policy format of the task's control
(sim.prompter.SIM_FORMATS, or AgentConfig.formats). Pick-and-place tasks (llara) get the
prompt the data generator writes: the instruction with the oracle boxes of the objects it
names (D-inBC; inBC with `describe=False`), no paraphrase line, and "You have finished: ..."
with the steps this agent already returned in the episode; the first step of the answer is
the action. Joint-control tasks (reach, llarva) get the prompt with the episode's proprio
history in the prompt variant `llarva_variant` (None: the format's default, LLARVA's "train",
as the data generator writes by default; "trace" asks for the trajectory, which the agent
drops). A
malformed answer raises ParseError, which the rollout counts as a spent step. The policy can
be any backend (torch reference now, engines later).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ConfigError
from llara_edge.formats import policy_format
from llara_edge.formats.llarva import PROMPTS as LLARVA_PROMPTS
from llara_edge.sim.env import Observation, TabletopEnv
from llara_edge.sim.prompter import SIM_FORMATS, prompt_input


class TextPolicy(Protocol):
    def generate(self, image: np.ndarray, user_text: str) -> tuple[str, list[int], list[int]]:
        """Greedy answer text (plus new token ids and prompt ids)."""


@dataclass(frozen=True)
class AgentConfig:
    """Prompt choices; they must match how the policy was trained."""

    describe: bool = True  # D-inBC (oracle boxes inlined) vs inBC
    robot: str = "SO-101"  # LLARVA robot name (the data generator's default)
    llarva_variant: str | None = None  # formats.llarva.PROMPTS key; None: the default
    formats: Mapping[str, str] = field(default_factory=lambda: dict(SIM_FORMATS))

    def __post_init__(self) -> None:
        if self.llarva_variant is not None and self.llarva_variant not in LLARVA_PROMPTS:
            raise ConfigError(f"llarva_variant must be None or one of {sorted(LLARVA_PROMPTS)}, "
                              f"got {self.llarva_variant!r}")
        for name in self.formats.values():
            policy_format(name)  # ConfigError naming the known formats


@dataclass
class PolicyAgent:
    """rollout.Agent over a text policy; per-episode state is keyed by env.episode."""

    policy: TextPolicy
    cfg: AgentConfig = field(default_factory=AgentConfig)
    answers: list[str] = field(default_factory=list)  # every raw answer, for inspection
    _episode: int = -1
    _steps: list[PickPlaceAction] = field(default_factory=list)
    _poses: list[np.ndarray] = field(default_factory=list)

    def __call__(self, env: TabletopEnv, obs: Observation) -> PickPlaceAction | JointStepAction:
        if env.episode != self._episode:
            self._episode, self._steps, self._poses = env.episode, [], []
        fmt = policy_format(self.cfg.formats[env.task.control])
        self._poses.append(obs.joints)
        joint = env.task.control == "joint"
        inp = prompt_input(env, self.cfg.describe, history=list(self._steps), poses=self._poses,
                           robot=self.cfg.robot,
                           variant=self.cfg.llarva_variant if joint else None)
        action = fmt.parse(self._answer(obs, fmt.prompt(inp)))
        if isinstance(action, JointStepAction):
            return JointStepAction(action.joints, action.gripper)  # the trace is not executed
        self._steps.append(action)
        return action

    def _answer(self, obs: Observation, user_text: str) -> str:
        text = self.policy.generate(obs.rgb, user_text)[0]
        self.answers.append(text)
        return text
