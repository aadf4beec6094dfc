"""export/llara_export/parity.py: metrics and the gate on synthetic references (no model needed),
measured through the Backend / VisionEngine interfaces the runtime's engines implement."""

import math

import numpy as np
import pytest

from llara_edge.backends.base import Backend, VisionEngine
from llara_edge.cases import ParityCase
from llara_edge.errors import ConfigError
from llara_export import parity

VOCAB, HIDDEN, EOS = 10, 4, 2


class _Tok:
    eos_id = EOS

    def decode(self, ids):
        return " ".join(map(str, ids))


class _Policy:
    def __init__(self):
        self.backend = type("B", (), {"tokenizer": _Tok()})()
        self.config = type("C", (), {"max_new_tokens": 4, "policy_format": "llara"})()


class _ScriptedLLM(Backend):
    """A Backend whose greedy answer to the i-th prompt is answers[i] (then EOS), with every
    logit `shift` off the reference's zeros; records what it was fed."""

    n_vocab, hidden_size, n_ctx = VOCAB, HIDDEN, 64

    def __init__(self, answers, shift=0.0):
        self.answers, self.shift = [[*a, EOS] for a in answers], shift
        self.prompts, self.fed, self._n, self._k = -1, [], 0, 0

    def _row(self) -> np.ndarray:
        answer = self.answers[self.prompts]
        row = np.full(VOCAB, self.shift, np.float32)
        row[answer[min(self._k, len(answer) - 1)]] += 1e-6  # greedy picks the scripted id
        return row

    def encode_image(self, frame):
        raise AssertionError("an LLM row is fed embeddings, it does not encode")

    @property
    def n_past(self) -> int:
        return self._n

    def _prefill(self, parts):
        self.fed.append([p.shape if isinstance(p, np.ndarray) else list(p) for p in parts])
        self._n += sum(len(p) for p in parts)
        return self._row()

    def _extend(self, ids):
        self._n += len(ids)
        self._k += 1
        return np.stack([self._row()] * len(ids))

    def _truncate(self, n_keep):
        self._n = n_keep

    def _clear(self):  # once per prompt: greedy_answer starts each from an empty cache
        self._n, self._k = 0, 0
        self.prompts += 1

    def close(self):
        pass


class _Vision(VisionEngine):
    name = "test"

    def encode(self, frame, timings):
        timings["vision"] += 1.0
        return np.ones((2, HIDDEN), np.float32)

    def close(self):
        pass


def _refs(margins_per_frame):
    return [parity.RefOutput([1], np.ones((2, HIDDEN), np.float32), np.zeros(VOCAB, np.float32),
                             [5, 6, 7, 8], "5 6 7 8", list(m)) for m in margins_per_frame]


CASES = [ParityCase(np.zeros((4, 4, 3), np.uint8), "task", f"f{i}") for i in range(2)]
BOUNDS = {"onnx": {"min_cosine": None, "max_logit_diff": 0.01, "min_answer_agreement": 1.0,
                   "max_action_px": None}}


def _measure(answers, margins, shift=0.0):
    llm = parity.Engines(backend=_ScriptedLLM(answers, shift))
    return parity.measure("onnx", llm, _refs(margins), CASES, _Policy())


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
    ([1, 1, 1, 1], [5, 6, 7]),        # EOS where the reference was sure of its 4th token
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


def test_greedy_answer_feeds_the_prompt_as_policy_does():
    """The ids before the image become the backend's prefix; the embeddings and the rest of
    the prompt follow in one prefill; decode_greedy runs to EOS over extend."""
    llm = _ScriptedLLM([[5, 6]])
    embeds = np.zeros((3, HIDDEN), np.float32)
    logits, tokens = parity.greedy_answer(llm, [1, 4, parity.IMAGE_TOKEN_INDEX, 7, 8], embeds,
                                          8, EOS)
    assert tokens == [5, 6, EOS] and int(np.argmax(logits)) == 5
    assert llm.fed == [[[1, 4]], [(3, HIDDEN), [7, 8]]] and llm.n_prefix == 2
    assert llm.n_past == 2 + 3 + 2 + 2  # prompt, then the two tokens before EOS


def test_a_vision_row_gives_cosines_only_and_an_empty_row_is_refused():
    res = parity.measure("onnx-features", parity.Engines(vision=_Vision()), _refs([[1], [1]]),
                         CASES, _Policy())
    assert res.min_cosine == pytest.approx(1.0) and res.answers == 0
    assert res.max_logit_diff is None and res.answer_agreement is None
    with pytest.raises(ConfigError, match="no engine"):
        parity.measure("x", parity.Engines(), _refs([[1], [1]]), CASES, _Policy())
