"""The "llarva" policy format: LLARVA's joint control (docs/formats.md "LLARVA").

Prompt: `formats.llarva.LlarvaPrompt` with the proprio history of the episode's last poses
(the instruction without its final "."), in the prompt variant `PromptInput.variant`: None is
DEFAULT_VARIANT "train" (LLARVA's training annotations), "eval" the released agent's wording,
"trace" / "trace_agent" ask for the trajectory. Answer "The next action step: [j1, ..., jn,
gripper][. The trajectory: [[x, y], ...]]" parsed to a JointStepAction of `n_joints` joints.
Grammar kinds: "llarva", "llarva_trace"; no step header.
"""

from __future__ import annotations

import numpy as np

from llara_edge.actions import JointStepAction
from llara_edge.errors import ParseError
from llara_edge.formats.base import POLICY_FORMATS, PolicyFormat, PromptInput
from llara_edge.formats.llarva import (
    DEFAULT_VARIANT,
    LlarvaPrompt,
    ProprioHistory,
    format_llarva_answer,
    parse_llarva_answer,
)


@POLICY_FORMATS.register("llarva")
class LlarvaFormat(PolicyFormat):
    """LLARVA: absolute joint targets plus gripper, one control step per answer."""

    action_type = JointStepAction
    grammar_kind = "llarva"
    grammar_kinds = ("llarva", "llarva_trace")

    def prompt(self, inp: PromptInput) -> str:
        history = ProprioHistory(self.n_joints)
        for pose in inp.poses[-len(history.rows):]:  # older poses have left the buffer
            history.push(np.asarray(pose)[: self.n_joints])
        return LlarvaPrompt(inp.instruction.rstrip("."), robot=inp.robot,
                            variant=inp.variant or DEFAULT_VARIANT).render(history)

    def parse(self, text: str) -> JointStepAction:
        return parse_llarva_answer(text, self.n_joints)

    def answer(self, action: JointStepAction, user_text: str) -> str:
        return format_llarva_answer(action, self.n_joints)

    def check(self, action: JointStepAction) -> JointStepAction:
        super().check(action)
        if len(action.joints) != self.n_joints:
            raise ParseError("wrong_count", f"{len(action.joints)} joints, the llarva format "
                             f"here has {self.n_joints}")
        return action
