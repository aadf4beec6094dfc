"""A text policy as a simulator agent: env state -> prompt -> answer -> typed action.

    agent = PolicyAgent(policy)              # policy.generate(rgb, user_text) -> (text, ...)
    rollout.run_episode(env, agent, ...)     # agent(env, obs) -> PickPlaceAction | JointStepAction

Pick-and-place tasks get the LLaRA prompt the data generator writes: the instruction with the
oracle boxes of the objects it names (D-inBC; inBC with `describe=False`), no paraphrase line,
and "You have finished: ..." with the steps this agent already returned in the episode; the
first step of the answer is the action. Joint-control tasks (reach) get the LLARVA prompt with
the episode's proprio history. A malformed answer raises ParseError, which the rollout counts
as a spent step. The policy can be any backend (torch reference now, engines later).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ConfigError
from llara_edge.formats import (
    LlaraPrompt,
    LlarvaPrompt,
    ProprioHistory,
    parse_llara_first_step,
    parse_llarva_answer,
)
from llara_edge.sim.datagen import LLARVA_N_JOINTS
from llara_edge.sim.env import Observation, TabletopEnv


class TextPolicy(Protocol):
    def generate(self, image: np.ndarray, user_text: str) -> tuple[str, list[int], list[int]]:
        """Greedy answer text (plus new token ids and prompt ids)."""


@dataclass(frozen=True)
class AgentConfig:
    """Prompt choices; they must match how the policy was trained."""

    describe: bool = True  # D-inBC (oracle boxes inlined) vs inBC
    robot: str = "SO-101"  # LLARVA robot name (the data generator's default)
    llarva_variant: str = "action"

    def __post_init__(self) -> None:
        if self.llarva_variant not in ("action", "trace"):
            raise ConfigError(f"llarva_variant must be action or trace: {self.llarva_variant!r}")


def llara_user_text(env: TabletopEnv, history: list[PickPlaceAction], describe: bool) -> str:
    """The D-inBC (or inBC) prompt of the current state, as the data generator writes it."""
    task = env.task
    boxes = {o.name: o.bbox for o in env.oracle_objects()}
    mentioned = {n: boxes[n] for n in task.names if n in task.instruction}
    return LlaraPrompt(task.instruction, mentioned, describe=describe).render(history)


@dataclass
class PolicyAgent:
    """rollout.Agent over a text policy; per-episode state is keyed by env.episode."""

    policy: TextPolicy
    cfg: AgentConfig = field(default_factory=AgentConfig)
    answers: list[str] = field(default_factory=list)  # every raw answer, for inspection
    _episode: int = -1
    _steps: list[PickPlaceAction] = field(default_factory=list)
    _proprio: ProprioHistory | None = None

    def __call__(self, env: TabletopEnv, obs: Observation) -> PickPlaceAction | JointStepAction:
        if env.episode != self._episode:
            self._episode, self._steps = env.episode, []
            self._proprio = ProprioHistory(LLARVA_N_JOINTS)
        if env.task.control == "joint":
            return self._joint(env, obs)
        text = self._answer(obs, llara_user_text(env, self._steps, self.cfg.describe))
        action = parse_llara_first_step(text)
        self._steps.append(action)
        return action

    def _answer(self, obs: Observation, user_text: str) -> str:
        text = self.policy.generate(obs.rgb, user_text)[0]
        self.answers.append(text)
        return text

    def _joint(self, env: TabletopEnv, obs: Observation) -> JointStepAction:
        self._proprio.push(obs.joints[:LLARVA_N_JOINTS])
        prompt = LlarvaPrompt(env.task.instruction.rstrip("."), robot=self.cfg.robot,
                              variant=self.cfg.llarva_variant).render(self._proprio)
        action = parse_llarva_answer(self._answer(obs, prompt), LLARVA_N_JOINTS)
        return JointStepAction(action.joints, action.gripper)
