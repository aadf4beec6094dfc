"""A text policy as a simulator agent, and `llara-edge eval` end to end on a random checkpoint."""

import json

import pytest

from llara_edge.actions import JointStepAction
from llara_edge.errors import ConfigError
from llara_edge.formats import format_answer, format_llarva_answer
from llara_edge.sim import ScriptedExpert, SimConfig, TabletopEnv
from llara_edge.sim.policy_agent import AgentConfig, PolicyAgent
from llara_edge.sim.rollout import run_episode


class ExpertTextPolicy:
    """Answers in LLaRA text with the expert's action; records the prompts it was given."""

    def __init__(self, env: TabletopEnv, garbage_first: bool = False):
        self.env, self.prompts, self.garbage_first = env, [], garbage_first

    def generate(self, image, user_text):
        self.prompts.append(user_text)
        if self.garbage_first and len(self.prompts) == 1:
            return ")</b>. <b>.", [], []
        step = user_text.count("Step ") + 1
        return format_answer([ScriptedExpert(self.env).act()], first_step=step), [], []


class ExpertJointPolicy:
    """Answers in LLARVA text with the expert's joint step (and a trajectory when the prompt
    asks for one); records the prompts."""

    def __init__(self, env: TabletopEnv):
        self.env, self.prompts = env, []

    def generate(self, image, user_text):
        self.prompts.append(user_text)
        step = ScriptedExpert(self.env).act()
        trace = ((10, 20), (30, 40)) if "trajectories" in user_text else None
        return format_llarva_answer(JointStepAction(step.joints, step.gripper, trace), 5), [], []


@pytest.fixture(scope="module")
def env():
    env = TabletopEnv(SimConfig(width=160, height=120))
    yield env
    env.close()


def test_agent_builds_dinbc_prompts_with_history(env):
    policy = ExpertTextPolicy(env)
    result = run_episode(env, PolicyAgent(policy), "scene_understanding", "L1", 1)
    assert result.success and result.steps >= 2
    first, second = policy.prompts[:2]
    assert first.startswith("<image>\n<task>Put all the ") and "</p> at <b>(" in first
    assert "You have finished:" not in first
    assert "\nYou have finished: Step 1: Pick up the object at <b>(" in second


def test_malformed_answer_spends_a_step_and_the_loop_goes_on(env):
    policy = ExpertTextPolicy(env, garbage_first=True)
    agent = PolicyAgent(policy)
    result = run_episode(env, agent, "visual_manipulation", "L1", 2)
    assert result.errors and result.errors[0].startswith("ParseError")
    assert result.success and result.steps == 2
    assert agent.answers[0] == ")</b>. <b>."


@pytest.mark.parametrize(("variant", "ending"), [
    (None, "]]. Can you predict action of the next 1 step?"),
    ("eval", "]], can you predict action of the next 1 step?"),
    ("trace", "]], can you predict action of the next 1 step and the trajectories of the end "
              "effector?"),
])
def test_reach_prompts_in_the_recorded_llarva_variant(env, variant, ending):
    """Joint tasks get LLARVA prompts in AgentConfig.llarva_variant (None: "train", what the
    data generator writes by default); a trajectory in the answer is parsed and not executed."""
    policy = ExpertJointPolicy(env)
    agent = PolicyAgent(policy, AgentConfig(llarva_variant=variant))
    result = run_episode(env, agent, "reach", "L1", 0)
    assert result.success and not result.errors
    assert all(p.endswith(ending) for p in policy.prompts)
    assert policy.prompts[0].startswith("<image>\nYou are a SO-101 robot using the joint control")
    with pytest.raises(ConfigError, match="llarva_variant"):
        AgentConfig(llarva_variant="action")


def test_eval_command_on_a_random_checkpoint(tmp_path, capsys):
    pytest.importorskip("torch", reason="the reference backend needs the export extra")
    from llara_edge.cli.main import main
    from llara_export.models.checkpoint import save_original
    from llara_export.models.llava import TinyConfig, build_tiny
    from llara_export.models.tokenizer import train_spm

    texts = [f"Step {i}: Pick up the <p>red block</p> at <b>(0.{i:03d}, 0.5)</b>." for i in
             range(200)]
    tok = train_spm(texts, tmp_path / "tok", vocab_size=400)
    model = build_tiny(TinyConfig(vocab_size=tok.vocab_size, layers=1, vision_layers=1))
    ckpt = save_original(model, tok, tmp_path / "ckpt")
    code = main(["eval", "--checkpoint", str(ckpt), "--episodes", "1", "--families",
                 "visual_manipulation", "--levels", "L1", "--size", "160x120",
                 "--max-new-tokens", "8", "--out", str(tmp_path / "eval")])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert report["table"] == {"visual_manipulation": {"L1": 0.0}}  # random weights: garbage
    assert report["failed_steps"] >= 1
    assert (tmp_path / "eval" / "visual_manipulation_L1_0.gif").is_file()
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["table"] == report["table"]
