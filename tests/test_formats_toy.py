"""A third policy format added by one file: this one. It registers "toy" (its own prompt,
step-header rule, parser, answer writer and action type, decoding with the existing
"llara_pick" grammar) and runs it through the runtime Policy on the tiny test artifact,
through the control loop on the simulator (oracle answers in toy text, parsed once by the
loop; runtime answers parsed once by the runtime, never again by the loop), and through the
simulator's prompter, oracle and export parity's prompts, with no other file changed."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass

import numpy as np
import pytest

try:  # torch must be imported before MuJoCo creates an EGL context: later, its import crashes
    from llara_export import torch_ref  # noqa: F401
except ImportError:  # no `export` extra: no artifact can be built
    pytest.skip("the export toolchain (torch) is not installed", allow_module_level=True)

from runtime_artifact import grammar_cache, shared_artifact

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ParseError
from llara_edge.formats import POLICY_FORMATS, PolicyFormat, PromptInput, policy_format


@dataclass(frozen=True)
class ToyPick(PickPlaceAction):
    """The toy format's action: a pick-and-place (the loop executes it as one) that also
    carries the step number its answer gave."""

    step: int = 0


_ANSWER = re.compile(
    r"Step (\d+): Pick up the <p>([^<>]+)</p> at <b>\((\d\.\d{3}), {1,2}(\d\.\d{3})\)</b>, "
    r"rotate <r>\[(-?\d+)\]</r> degrees, and drop it at <b>\((\d\.\d{3}), (\d\.\d{3})\)</b>\.")
_DONE = re.compile(r"\nDone so far: (\d+)\.$")
PARSED: list[str] = []  # every text the toy parser read, in order


@POLICY_FORMATS.register("toy")
class ToyFormat(PolicyFormat):
    """Terse prompt, "Done so far: n." instead of LLaRA's history, LLaRA's pick sentence."""

    action_type = ToyPick
    grammar_kind = "llara_pick"  # an existing answer grammar
    grammar_kinds = ("llara_pick",)
    step_kinds = ("llara_pick",)  # answers open with "Step k: ", k from our own rule

    def step_number(self, user_text: str) -> int:
        m = _DONE.search(user_text)
        return 1 + (int(m.group(1)) if m else 0)

    def prompt(self, inp: PromptInput) -> str:
        return f"<image>\nToy robot, please: {inp.instruction}\nDone so far: {len(inp.history)}."

    def parse(self, text: str) -> ToyPick:
        PARSED.append(text)
        m = _ANSWER.fullmatch(text.strip())
        if not m:
            raise ParseError("malformed", f"not a toy answer: {text[:80]!r}", text)
        step, name, px, py, rot, qx, qy = m.groups()
        try:
            return ToyPick((float(px), float(py)), (float(qx), float(qy)), int(rot),
                           object_name=name, step=int(step))
        except ValueError as err:
            raise ParseError("out_of_range", str(err), text) from err

    def answer(self, action: PickPlaceAction, user_text: str) -> str:
        (px, py), (qx, qy) = action.pick, action.place
        return (f"Step {self.step_number(user_text)}: Pick up the <p>{action.object_name}</p> "
                f"at <b>({px:.3f}, {py:.3f})</b>, rotate <r>[{action.rotation_deg}]</r> "
                f"degrees, and drop it at <b>({qx:.3f}, {qy:.3f})</b>.")


TOY_SIM = {"pick_place": "toy", "joint": "llarva"}


# ----------------------------------------------------------------- the runtime policy
@pytest.fixture(scope="module")
def toy_artifact(tmp_path_factory):
    """The tiny test artifact, exported with policy format "toy" (its manifest says so)."""
    dest = tmp_path_factory.mktemp("toy") / "art"
    shutil.copytree(shared_artifact(tmp_path_factory), dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["policy_format"] = "toy"
    manifest.pop("prompt_variant", None)  # LLaRA's recorded prompt variant: toy has none
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dest


@pytest.fixture(scope="module")
def runtime_config(tmp_path_factory):
    from llara_edge.runtime.config import RuntimeConfig

    return RuntimeConfig(variant="f16", threads=1, n_ctx=512, max_new_tokens=96,
                         grammar_cache_dir=grammar_cache(tmp_path_factory))


@pytest.fixture(scope="module")
def frame():
    from llara_edge.cases import sim_frames

    return sim_frames(1, 160, 120, seed=7, policy_format="toy")[0]


def test_the_runtime_speaks_toy_from_the_artifact_manifest(toy_artifact, runtime_config, frame):
    from llara_edge.runtime.policy import Policy

    assert frame.user_text.startswith("<image>\nToy robot, please: ")  # parity's prompts
    assert frame.user_text.endswith("\nDone so far: 0.")
    with Policy.load(toy_artifact, runtime_config) as policy:
        assert isinstance(policy.format, ToyFormat) and policy.grammar.spec.kind == "llara_pick"
        for done in (0, 2):
            user = f"<image>\nToy robot, please: put the block in the pan.\nDone so far: {done}."
            del PARSED[:]
            step = policy.act(frame.rgb, user)
            assert [step.text] == PARSED  # the format's parser, once
            assert isinstance(step.action, ToyPick), step.text
            assert step.action.step == done + 1 and step.text.startswith(f"Step {done + 1}: ")
            assert step.action.tool == "suction"  # llara_pick: suction only


# ----------------------------------------------------------------- the control loop
@pytest.fixture(scope="module")
def robot():
    from llara_edge.robot.config import RobotConfig
    from llara_edge.sim.robot import SimRobot

    with SimRobot(RobotConfig.default()) as robot:
        yield robot


def _loop(robot, policy):
    from llara_edge.robot.loop import LoopConfig, RobotLoop
    from llara_edge.robot.telemetry import Telemetry
    from llara_edge.sim.prompter import SimPrompter

    return RobotLoop(robot.io, policy, SimPrompter(robot.env, formats=TOY_SIM), robot.cfg,
                     robot.kin, Telemetry(), loop_cfg=LoopConfig(record=False))


def test_the_oracle_in_toy_text_solves_a_multi_step_task_through_the_loop(robot):
    from llara_edge.sim.expert_policy import OracleTextPolicy

    loop = _loop(robot, OracleTextPolicy(robot.env, formats=TOY_SIM))
    task = robot.reset("scene_understanding", "L1", 1)
    del PARSED[:]
    try:
        result = loop.run_episode(1, task.max_steps, robot.evaluate)
    finally:
        loop.close()
    assert result.success and set(result.outcomes) == {"executed"}, result.outcomes
    texts = [s.info["text"] for s in loop.telemetry.steps]
    assert texts == PARSED  # text-only policy: parsed once per decision, by the loop
    assert [t.split(":")[0] for t in texts] == [f"Step {k}" for k in range(1, len(texts) + 1)]
    assert all(isinstance(a, ToyPick) for a in loop.history)
    assert loop.telemetry.summary()["parse"]["n"] == len(texts)
    assert robot.monitor.violations == []


def test_runtime_toy_actions_reach_the_loop_without_a_second_parse(robot, toy_artifact,
                                                                   runtime_config):
    from llara_edge.robot.policy_io import RuntimeTextPolicy
    from llara_edge.runtime.policy import Policy

    policy = RuntimeTextPolicy(Policy.load(toy_artifact, runtime_config), "toy")
    loop = _loop(robot, policy)
    robot.reset("visual_manipulation", "L1", 3)
    del PARSED[:]
    try:
        result = loop.run_episode(3, 2, robot.evaluate)
    finally:
        loop.close()
        policy.policy.close()
    steps = loop.telemetry.steps
    assert [s.info["text"] for s in steps] == PARSED  # the runtime's one parse per decision
    for outcome in result.outcomes:  # the tiny model never saw this prompt: it may miss
        assert outcome == "executed" or outcome.startswith("refused:"), outcome
        assert not outcome.startswith("refused:parse"), outcome
    assert loop.telemetry.summary()["parse"]["n"] == len(steps)  # the runtime's timing
    assert robot.monitor.violations == []


def test_a_policy_answering_in_another_format_is_refused(robot):
    from llara_edge.robot.policy_io import PolicyOutput

    class JointPolicy:
        def act(self, rgb, user_text):
            return PolicyOutput("", action=JointStepAction((0.0,) * 5, 1.0))

    loop = _loop(robot, JointPolicy())
    robot.reset("visual_manipulation", "L1", 0)
    try:
        result = loop.run_episode(0, 1)
    finally:
        loop.close()
    assert result.outcomes == ["refused:parse_error"]
    assert "wrong_action" in loop.telemetry.steps[0].info["error"]


def test_the_prompt_of_a_real_robot_task_comes_from_the_format():
    from llara_edge.robot.policy_io import TaskPrompter

    prompter = TaskPrompter("stack the cups", format="toy")
    first = prompter(np.zeros(6), [])
    assert first == "<image>\nToy robot, please: stack the cups\nDone so far: 0."
    later = prompter(np.zeros(6), [ToyPick((0, 0), (1, 1))])
    assert policy_format("toy").step_number(later) == 2
