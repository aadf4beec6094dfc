"""A teacher that drives every latency runner to the same given answer (issue 27 item 6).

Contract:
    teacher = Teacher(eos_id)
    teacher.start(target_ids)          # per step: the answer's token ids (no BOS, no EOS)
    teacher.want(generated) -> int | None   # target's next token, EOS after the last one,
                                            # None once `generated` left the target
    teacher.bias(generated, row) -> row     # `want` ranked first: row[want] = max(row) + 1
    TeacherBackend(backend, teacher)        # the runtime backend with its prefill / extend
                                            # rows taught; single-token extends timed
    HfTeacher(teacher)                      # transformers LogitsProcessor (HF generate)
    LlamaCppTeacher(teacher)                # llama-cpp-python logits processor (stock handler)
    taught(runner, answer_fn) -> TaughtRunner   # a latency runner driven to answer_fn(text)

Why: a random-weight 7B-shaped model writes object names to the token limit, so pass counts
and decode times say nothing about a trained 7B. The teacher adds one bias per pass: the
token a trained checkpoint would write next (answer_fn: vima_answers.seeded_answer, the same
text for every runner) ranks first, EOS after it. Every runner still runs its own forward
passes, grammar, sampler and drafts on the real logits: the cost per pass is unchanged but
for the bias (one max over a 32000-wide row: ~11 us; a 17-row draft extend copied and biased:
~0.11 ms, on the 2-core VM), next to tens to hundreds of ms per 7B-shaped pass; the number
of passes becomes a trained model's. A grammar that forbids the wanted token (the runtime's
after its one step) decides by itself; rows after a rejected draft token are left as the
model gives them (they are never accepted).

Hooks: the runtime Policy (candidate and its free-greedy twin) gets a TeacherBackend in place
of policy.backend (the runtime code is unchanged; the opening the Policy prefills is found as
the longest suffix of the prefill's last token segment that starts the target); HF generate
gets a logits processor (baselines.HfGenerateRunner.logits_processor); the stock handler gets
llama-cpp-python's logits_processor in create_chat_completion
(baselines.StockGbnfRunner.logits_processor). Both processors take the generated tokens as
what follows the input length seen at their first call of a step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from llara_bench.runners import StepRecord


class Teacher:
    """Which token a trained model writes next, given the answer tokens generated so far."""

    def __init__(self, eos_id: int):
        self.eos_id = int(eos_id)
        self.target: list[int] = []

    def start(self, target_ids: Sequence[int]) -> None:
        self.target = [int(t) for t in target_ids]

    def want(self, generated: Sequence[int]) -> int | None:
        k = len(generated)
        if k > len(self.target) or list(generated) != self.target[:k]:
            return None
        return self.target[k] if k < len(self.target) else self.eos_id

    def bias(self, generated: Sequence[int], row):
        """`row` (NumPy or torch, 1-D) with the wanted token ranked first, in place."""
        want = self.want(generated)
        if want is not None:
            row[want] = row.max() + 1.0
        return row


class TeacherBackend:
    """A runtime Backend whose rows rank the teacher's token first (see the module doc)."""

    def __init__(self, backend, teacher: Teacher):
        self._inner, self.teacher = backend, teacher
        self._fed: list[int] = []  # answer tokens in the KV cache after the prompt
        self.extend1_s: list[float] = []  # wall seconds of each single-token extend

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def prefill(self, segments) -> np.ndarray:
        row = _writable(self._inner.prefill(segments))
        last = next((list(map(int, s)) for s in reversed(segments)
                     if not (isinstance(s, np.ndarray) and s.ndim == 2)), [])
        target = self.teacher.target
        k = next((k for k in range(min(len(last), len(target)), 0, -1)
                  if last[-k:] == target[:k]), 0)
        self._fed = last[len(last) - k:] if k else []
        return self.teacher.bias(self._fed, row)

    def extend(self, token_ids) -> np.ndarray:
        ids = [int(t) for t in token_ids]
        t0 = time.perf_counter()
        rows = self._inner.extend(ids)
        if len(ids) == 1:
            self.extend1_s.append(time.perf_counter() - t0)
        rows = _writable(rows)
        for i in range(len(ids)):  # row i follows ids[:i + 1]
            self.teacher.bias(self._fed + ids[:i + 1], rows[i])
        self._fed += ids
        return rows

    def rollback(self, n: int) -> None:
        self._inner.rollback(n)
        if n:
            del self._fed[max(0, len(self._fed) - n):]


def _writable(a: np.ndarray) -> np.ndarray:
    return a if a.flags.writeable else a.copy()


class _Generated:
    """The tokens after the input length seen at the first call of a step."""

    def __init__(self, teacher: Teacher):
        self.teacher, self.n0 = teacher, None

    def reset(self) -> None:
        self.n0 = None

    def generated(self, ids: Sequence[int]) -> list[int]:
        if self.n0 is None:
            self.n0 = len(ids)
        return [int(t) for t in ids[self.n0:]]


class LlamaCppTeacher(_Generated):
    """llama-cpp-python logits processor: (input_ids, scores (n_vocab,)) -> scores."""

    def __call__(self, input_ids, scores):
        return self.teacher.bias(self.generated(input_ids), scores)


def hf_teacher(teacher: Teacher):
    """A transformers LogitsProcessor (batch 1) teaching `teacher`'s answer."""
    from transformers import LogitsProcessor

    class HfTeacher(LogitsProcessor, _Generated):
        def __init__(self):
            _Generated.__init__(self, teacher)

        def __call__(self, input_ids, scores):
            self.teacher.bias(self.generated(input_ids[0].tolist()), scores[0])
            return scores

    return HfTeacher()


class TaughtRunner:
    """A latency runner whose every step is taught `answer_fn(user_text)` (module doc).
    Its StepRecords carry the target text and, for the runtime Policy, the median wall time
    of the step's single-token extends (the floor's per-pass cost)."""

    def __init__(self, inner, answer_fn: Callable[[str], str], teacher: Teacher,
                 encode: Callable[[str], list[int]], hooks=(), backend=None):
        self.inner, self.answer_fn, self.teacher, self.encode = inner, answer_fn, teacher, encode
        self.hooks, self.backend, self.name = hooks, backend, inner.name

    def close(self) -> None:
        self.inner.close()

    def step(self, rgb: np.ndarray, user_text: str) -> StepRecord:
        answer = self.answer_fn(user_text)
        self.teacher.start(self.encode(answer))
        for hook in self.hooks:
            hook.reset()
        seen = len(self.backend.extend1_s) if self.backend else 0
        rec = self.inner.step(rgb, user_text)
        rec.target = answer
        if self.backend and len(self.backend.extend1_s) > seen:
            rec.extend1_s = float(np.median(self.backend.extend1_s[seen:]))
        return rec


def taught(runner, answer_fn: Callable[[str], str]) -> TaughtRunner:
    """Install the teacher in `runner`'s own hook (runtime Policy, HF generate, stock)."""
    from llara_bench.baselines import HfGenerateRunner, StockGbnfRunner
    from llara_bench.runners import PolicyRunner
    from llara_edge.errors import ConfigError

    if isinstance(runner, PolicyRunner):
        tok = runner.policy.tokenizer
        teacher = Teacher(tok.eos_id)
        backend = TeacherBackend(runner.policy.backend, teacher)
        runner.policy.backend = backend
        return TaughtRunner(runner, answer_fn, teacher, tok.encode, backend=backend)
    if isinstance(runner, HfGenerateRunner):
        teacher = Teacher(runner.tok.eos_id)
        hook = hf_teacher(teacher)
        runner.logits_processor = [hook]
        return TaughtRunner(runner, answer_fn, teacher, runner.tok.encode, hooks=(hook,))
    if isinstance(runner, StockGbnfRunner):
        teacher = Teacher(runner.llm.token_eos())
        hook = LlamaCppTeacher(teacher)
        runner.logits_processor = [hook]
        return TaughtRunner(runner, answer_fn, teacher,
                            lambda s: runner.llm.tokenize(s.encode("utf-8"), add_bos=False),
                            hooks=(hook,))
    raise ConfigError(f"runner {runner.name!r} has no hook a teacher can use")
