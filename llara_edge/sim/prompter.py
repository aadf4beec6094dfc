"""The simulator's prompts: exactly as the data generator writes them, by the policy formats.

- `SIM_FORMATS` maps a task's control mode to the policy format the simulator speaks for it
  ("pick_place" -> "llara", "joint" -> "llarva"): its prompts, the oracle's answers and the
  data generator's samples. Every user takes a `formats` mapping to speak others.
- `prompt_input(env, describe, **fields)` is the env's state as a `formats.PromptInput`: the
  task's instruction and the objects it names with their oracle boxes (D-inBC; inBC with
  `describe=False`), plus the given fields (history, poses, robot, paraphrase, variant).
- `SimPrompter(env, describe=True, variants={})` is a `llara_edge.robot.policy_io.Prompter`
  for a simulator episode: the format of the current task's control writes the prompt from
  the episode's poses and executed steps, as `llara_edge.sim.policy_agent`, in the prompt
  variant `variants` gives that format (a runtime artifact's recorded one, or e.g.
  {"llarva": "eval"}; None: the format's default, LLARVA's "train", which the data generator
  writes by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from llara_edge.actions import PickPlaceAction
from llara_edge.formats import PromptInput, policy_format

SIM_FORMATS: Mapping[str, str] = {"pick_place": "llara", "joint": "llarva"}


def prompt_input(env, describe: bool = True, **fields) -> PromptInput:
    """The current task as a PromptInput: instruction, named objects (with their boxes)."""
    task = env.task
    boxes = {o.name: o.bbox for o in env.oracle_objects()}
    mentioned = {n: boxes[n] for n in task.names if n in task.instruction}
    return PromptInput(task.instruction, mentioned, describe=describe, **fields)


class SimPrompter:
    """Simulator prompts exactly as the data generator writes them (module docstring)."""

    def __init__(self, env, describe: bool = True, robot: str = "SO-101",
                 formats: Mapping[str, str] = SIM_FORMATS,
                 variants: Mapping[str, str] | None = None):
        self.env, self.describe, self.robot, self.formats = env, describe, robot, dict(formats)
        self.variants = dict(variants or {})  # format name -> prompt variant
        for name in self.formats.values():
            policy_format(name)  # ConfigError naming the known formats
        self._poses: list[np.ndarray] = []

    @property
    def format(self) -> str:
        return self.formats[self.env.task.control]

    def reset(self) -> None:
        self._poses = []

    def __call__(self, q: np.ndarray, history: Sequence[PickPlaceAction]) -> str:
        self._poses.append(np.asarray(q))
        inp = prompt_input(self.env, self.describe, history=list(history), poses=self._poses,
                           robot=self.robot, variant=self.variants.get(self.format))
        return policy_format(self.format).prompt(inp)
