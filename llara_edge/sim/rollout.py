"""Closed-loop rollouts in the simulator: one agent, many (family, level, seed) episodes.

An agent is any callable `agent(env, obs) -> PickPlaceAction | JointStepAction` (the scripted
expert, or a policy wrapped by the runtime). A step whose action cannot be produced or executed
(a typed LlaraEdgeError: parse error, missing depth, unreachable target) is recorded with its
reason and counts as a spent step; the episode goes on until the task says done or the step
budget is used up. Nothing else is caught: a bug in the agent stops the run loudly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import REPORTED
from llara_edge.sim.env import Observation, TabletopEnv
from llara_edge.sim.expert import ScriptedExpert

Agent = Callable[[TabletopEnv, Observation], PickPlaceAction | JointStepAction]
StepHook = Callable[[TabletopEnv, Observation, PickPlaceAction | JointStepAction | None], None]


@dataclass
class EpisodeResult:
    family: str
    level: str
    seed: int
    success: bool
    steps: int
    errors: list[str] = field(default_factory=list)  # "ErrorClass: message" per failed step
    wall_s: float = 0.0


def expert_agent() -> Agent:
    """The scripted expert as an agent (one expert per episode, keyed by env.episode)."""
    experts: dict[int, ScriptedExpert] = {}

    def act(env: TabletopEnv, obs: Observation) -> PickPlaceAction | JointStepAction:
        if env.episode not in experts:
            experts.clear()
            experts[env.episode] = ScriptedExpert(env)
        return experts[env.episode].act()

    return act


def run_episode(env: TabletopEnv, agent: Agent, family: str, level: str, seed: int,
                on_step: StepHook | None = None) -> EpisodeResult:
    """Reset to (family, level, seed) and let `agent` act until done."""
    start = time.perf_counter()
    obs = env.reset(family, level, seed)
    result = EpisodeResult(family, level, seed, False, 0)
    while True:
        result.steps += 1  # a decision that fails spends a step like a failed execution
        try:
            action = agent(env, obs)
            if on_step:
                on_step(env, obs, action)
            outcome = env.execute(action)
            done, result.success = outcome.done, outcome.success
        except REPORTED as exc:
            result.errors.append(f"{type(exc).__name__}: {exc}")
            done = False
        if done or result.steps >= env.task.max_steps:
            break
        obs = env.observe()
    result.wall_s = time.perf_counter() - start
    return result


def evaluate(env: TabletopEnv, agent: Agent, families: Iterable[str], levels: Iterable[str],
             seeds: Iterable[int], on_episode: Callable[[EpisodeResult], None] | None = None,
             on_step: StepHook | None = None) -> list[EpisodeResult]:
    """Every (family, level, seed) episode in order."""
    results = []
    for family in families:
        for level in levels:
            for seed in seeds:
                res = run_episode(env, agent, family, level, seed, on_step)
                results.append(res)
                if on_episode:
                    on_episode(res)
    return results


def success_table(results: list[EpisodeResult]) -> dict[str, dict[str, float]]:
    """{family: {level: success rate}} over the given episodes."""
    table: dict[str, dict[str, list[bool]]] = {}
    for r in results:
        table.setdefault(r.family, {}).setdefault(r.level, []).append(r.success)
    return {f: {lv: sum(v) / len(v) for lv, v in lvs.items()} for f, lvs in table.items()}
