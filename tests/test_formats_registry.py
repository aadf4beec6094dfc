"""The policy-format objects: the registry (built-ins, entry points, typed errors) and the
built-in llara / llarva formats against the text functions they bundle, byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

from llara_drivers import registry as registry_module
from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.errors import ConfigError, ParseError
from llara_edge.formats import (
    POLICY_FORMATS,
    LlaraPrompt,
    LlarvaPrompt,
    PolicyFormat,
    PromptInput,
    ProprioHistory,
    format_answer,
    format_for_grammar,
    format_history,
    format_llarva_answer,
    parse_llara_first_step,
    policy_format,
)

PICK = PickPlaceAction((0.312, 0.617), (0.742, 0.547), 15, "suction", "red block")
SWEEP = PickPlaceAction((0.1, 0.2), (0.3, 0.4), -30, "spatula", "green pan")
BOX = (0.312, 0.617, 0.07, 0.094)


def test_builtins_are_registered_lazily_and_unknown_names_are_config_errors():
    # a built-in is its file formats/<name>_format.py, found by that name
    assert POLICY_FORMATS.builtin == {"llara": "llara_edge.formats.llara_format",
                                      "llarva": "llara_edge.formats.llarva_format"}
    assert {"llara", "llarva"} <= set(POLICY_FORMATS.names())
    assert all(POLICY_FORMATS.get(name).name == name for name in POLICY_FORMATS.builtin)
    assert POLICY_FORMATS.group == "llara_edge.formats"
    llara, llarva = policy_format("llara"), policy_format("llarva", n_joints=7)
    assert (llara.name, llara.action_type, llara.grammar_kind) == ("llara", PickPlaceAction,
                                                                   "llara")
    assert (llarva.name, llarva.action_type, llarva.n_joints) == ("llarva", JointStepAction, 7)
    assert policy_format("llara") is llara  # one shared instance per (format, n_joints)
    with pytest.raises(ConfigError, match=r"unknown policy format 'rt2'; known: \[.*'llara'"):
        policy_format("rt2")
    with pytest.raises(ConfigError, match="n_joints"):
        policy_format("llarva", n_joints=0)


def test_a_format_from_another_distribution_comes_through_the_entry_point(monkeypatch):
    class PluginFormat(PolicyFormat):
        grammar_kind = "llara_sweep"
        grammar_kinds = ("llara_sweep",)

        def prompt(self, inp):
            return f"<image>\n{inp.instruction}"

        def parse(self, text):
            return parse_llara_first_step(text)

        def answer(self, action, user_text):
            return format_answer([action])

    class EntryPoint:
        name, group = "plugin-format", "llara_edge.formats"

        def load(self):
            return PluginFormat

    real = registry_module.metadata.entry_points
    # what get() registers stays in this test (the registry's table is restored after it)
    monkeypatch.setattr(POLICY_FORMATS, "_classes", dict(POLICY_FORMATS._classes))
    monkeypatch.setattr(registry_module.metadata, "entry_points",
                        lambda group=None: [EntryPoint()] if group == "llara_edge.formats"
                        else real(group=group))
    assert "plugin-format" in POLICY_FORMATS.names()
    fmt = policy_format("plugin-format")
    assert isinstance(fmt, PluginFormat) and fmt.name == "plugin-format"


def test_grammar_kinds_find_the_format_that_reads_them():
    assert format_for_grammar("llara", "llara").name == "llara"
    assert format_for_grammar("llarva_trace", "llara", 5).name == "llarva"  # config.grammar
    assert format_for_grammar("llarva", "llara", 5).n_joints == 5
    with pytest.raises(ConfigError, match="no policy format reads answers of grammar kind "
                                          "'llara_detection'"):
        format_for_grammar("llara_detection", "llara")


def test_grammar_options_and_the_step_header_rule():
    llara, llarva = policy_format("llara"), policy_format("llarva")
    assert llara.step_kinds == ("llara", "llara_pick", "llara_sweep")
    assert llara.grammar_options("llara", ("red block",), 32) == {
        "names": ("red block",), "n_joints": 5, "first_step": 1, "last_step": 32,
        "numbered": None}
    assert llarva.step_kinds == () and llarva.grammar_options("llarva", None, 32) == {
        "names": None, "n_joints": 5}
    user = LlaraPrompt("Put the red block into the pan.").render([PICK, SWEEP])
    assert llara.step_number(user) == 3 and llarva.step_number(user) == 1


def test_llara_prompts_answers_and_parser_are_the_text_functions():
    fmt = policy_format("llara")
    inbc = fmt.prompt(PromptInput("put the red block in the pan."))
    assert inbc == LlaraPrompt("put the red block in the pan.", {}, describe=False).render()
    dinbc = fmt.prompt(PromptInput("Put the red block into the pan.", {"red block": BOX},
                                   describe=True, paraphrase=3, history=[PICK]))
    assert dinbc == LlaraPrompt("Put the red block into the pan.", {"red block": BOX},
                                describe=True, paraphrase=3).render([PICK])
    assert dinbc.endswith(format_history([PICK]))
    answer = fmt.answer(SWEEP, dinbc)
    assert answer == format_answer([SWEEP], first_step=2) and answer.startswith("Step 2: Sweep")
    assert fmt.parse(answer) == SWEEP and fmt.check(SWEEP) is SWEEP
    with pytest.raises(ConfigError, match="unknown LLaRA prompt variant 'trace'"):
        fmt.prompt(PromptInput("put it there.", variant="trace"))
    for variant in ("standard", "scene_no_final_period"):  # how scene blocks end
        assert fmt.prompt(PromptInput("put it there.", variant=variant)) == inbc.replace(
            "put the red block in the pan.", "put it there.")
    with pytest.raises(ParseError):
        fmt.parse("The next action step: [0.1, 0.2, 0.3, 0.4, 0.5, 1.0]")


def test_llarva_prompts_keep_the_last_poses_like_the_agent_buffer():
    fmt = policy_format("llarva")
    poses = [np.arange(6) * 0.1 + i for i in range(7)]  # 6 values: arm + jaw; 7 > 5 kept
    history = ProprioHistory(5)
    for q in poses:
        history.push(q[:5])
    want = LlarvaPrompt("reach the cube", robot="SO-101", variant="trace").render(history)
    got = fmt.prompt(PromptInput("reach the cube.", poses=poses, variant="trace"))
    assert got == want
    assert fmt.prompt(PromptInput("reach the cube.")) == LlarvaPrompt(
        "reach the cube", robot="SO-101").render(ProprioHistory(5))  # zeros before any pose
    step = JointStepAction((0.1, -0.2, 0.3, 0.4, 0.5), 0.0, ((3, 4), (5, 6)))
    answer = fmt.answer(step, got)
    assert answer == format_llarva_answer(step, 5) and fmt.parse(answer) == step


def test_check_refuses_an_action_of_another_format():
    llara, llarva = policy_format("llara"), policy_format("llarva")
    joint = JointStepAction((0.0,) * 5, 1.0)
    with pytest.raises(ParseError, match=r"wrong_action: .*'llara' expects a PickPlaceAction"):
        llara.check(joint)
    with pytest.raises(ParseError, match="wrong_action"):
        llarva.check(PICK)
    with pytest.raises(ParseError, match="wrong_count: 7 joints"):
        llarva.check(JointStepAction((0.0,) * 7, 1.0))
    assert llarva.check(joint) is joint
