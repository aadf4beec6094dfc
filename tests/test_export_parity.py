"""export/llara_export/parity.py: metrics and the gate on synthetic references (no model needed)."""

import math

import numpy as np
import pytest

from llara_export import parity
from llara_export.frames import ParityCase


class _Tok:
    eos_id = 2

    def decode(self, ids):
        return " ".join(map(str, ids))


class _Policy:
    def __init__(self):
        self.backend = type("B", (), {"tokenizer": _Tok()})()
        self.config = type("C", (), {"max_new_tokens": 4, "policy_format": "llara"})()


class _Runner:
    """Returns fixed answers per call, and logits off the reference's by `shift`."""

    def __init__(self, answers, shift=0.0):
        self.answers, self.shift, self.calls = list(answers), shift, 0

    def generate(self, prompt_ids, embeds, max_new, eos):
        self.calls += 1
        return np.full(8, self.shift, np.float32), self.answers[self.calls - 1]


def _refs(margins_per_frame):
    return [parity.RefOutput([1], np.zeros((2, 4), np.float32), np.zeros(8, np.float32),
                             [5, 6, 7, 8], "5 6 7 8", list(m)) for m in margins_per_frame]


CASES = [ParityCase(np.zeros((4, 4, 3), np.uint8), "task", f"f{i}") for i in range(2)]
BOUNDS = {"onnx": {"min_cosine": None, "max_logit_diff": 0.01, "min_answer_agreement": 1.0,
                   "max_action_px": None}}


def _measure(answers, margins, shift=0.0):
    return parity.measure("onnx", _Runner(answers, shift), _refs(margins), CASES, _Policy())


def test_an_answer_that_parts_at_a_reference_near_tie_still_agrees():
    # frame 2 differs at its third token, where the reference's top-2 gap was 0.015 <= 0.02
    res = _measure([[5, 6, 7, 8], [5, 6, 9, 9]], [[1, 1, 1, 1], [1, 1, 0.015, 1]])
    assert res.answer_agreement == 0.5 and res.tie_margins == [0.015] and res.answers == 2
    assert parity.gate(res, BOUNDS) == []
    assert "1 answer(s) parted at a reference near-tie <= 0.02" in res.note
    parity.gate(res, BOUNDS)
    assert res.note.count("near-tie") == 1


@pytest.mark.parametrize("margins,answer", [
    ([1, 1, 0.05, 1], [5, 6, 9, 9]),  # a clear reference choice, not a tie
    ([1, 1, 1, 1], [5, 6, 7]),        # shorter answer: no margin to blame (inf)
    ([], [5, 0, 7, 8]),               # a reference without margins is strict
])
def test_a_real_disagreement_fails_the_gate(margins, answer):
    res = _measure([[5, 6, 7, 8], answer], [[1, 1, 1, 1], margins])
    assert parity.gate(res, BOUNDS) == ["answer_agreement 0.5 < 1.0"]
    assert "near-tie" not in res.note


def test_without_a_logit_bound_agreement_is_strict():
    res = _measure([[5, 6, 7, 8], [5, 6, 9, 9]], [[1, 1, 1, 1], [1, 1, 0.0, 1]])
    strict = {"onnx": {**BOUNDS["onnx"], "max_logit_diff": None}}
    assert parity.gate(res, strict) == ["answer_agreement 0.5 < 1.0"]


def test_logit_bound_still_gates_a_tied_run():
    res = _measure([[5, 6, 7, 8], [5, 6, 9, 9]], [[1, 1, 1, 1], [1, 1, 0.001, 1]], shift=0.5)
    assert parity.gate(res, BOUNDS) == ["max_logit_diff 0.5 > 0.01"]


def test_divergence_margin_positions():
    ref = _refs([[0.3, 0.2, 0.1, 0.4]])[0]
    assert parity._divergence_margin([5, 6, 0, 8], ref) == pytest.approx(0.1)
    assert parity._divergence_margin([9], ref) == pytest.approx(0.3)
    assert parity._divergence_margin([5, 6, 7, 8, 9], ref) == math.inf
