"""The views one task's answer is decoded with: its step header and its object names, cached.

Contract:
    views = AnswerViews(grammar, fmt, numbering="either", names_from_prompt=False)
    view, opening, state = views.opening(task)   # the grammar narrowed to `task`'s answer,
                                                 # its forced opening (prefilled with the
                                                 # prompt) and the state after it
    views.key(task) -> (step number, name rule)  # what the view depends on
    views.openings                               # key -> (view, opening, state), newest last

What runtime.policy.Policy decodes every act with (tests and benchmarks build the same):
- grammar kinds of the format's step kinds (LLaRA's) get decoding.step_header.StepHeader of
  step fmt.step_number(task) under `numbering` (one view per step number);
- grammar kinds that write object names, compiled with generic names, get
  decoding.object_names.ObjectNames bounded at name_bound(fmt.object_names(task)) (the
  longest VIMA name or the longest name the task mentions) and, with names_from_prompt and
  mentions in the task, restricted to them; no view where the bound is the grammar's own.
The OPENINGS_KEPT newest openings are kept (a long run's prompts name many objects).
"""

from __future__ import annotations

from llara_edge.decoding.answer_grammars import NAMED_KINDS
from llara_edge.decoding.constrained_decode import prefill_prefix
from llara_edge.decoding.object_names import ObjectNames, name_bound
from llara_edge.decoding.step_header import NUMBERINGS, StepHeader
from llara_edge.errors import ConfigError

OPENINGS_KEPT = 16


class AnswerViews:
    """Step-header and object-name views of one compiled grammar (module contract)."""

    def __init__(self, grammar, fmt, numbering: str = "either",
                 names_from_prompt: bool = False):
        if numbering not in NUMBERINGS:
            raise ConfigError(f"numbering must be one of {NUMBERINGS}, got {numbering!r}")
        self.grammar, self.format, self.numbering = grammar, fmt, numbering
        self.names_from_prompt = names_from_prompt
        self.header = grammar.spec.kind in fmt.step_kinds
        self.openings: dict[tuple, tuple] = {}
        self._headers: dict[int, StepHeader] = {}

    def _name_rule(self, task: str) -> tuple[int, tuple[str, ...] | None] | None:
        """(name bound, names or None) of `task`'s answers; None: the grammar's own names."""
        spec = self.grammar.spec
        if spec.kind not in NAMED_KINDS or spec.names is not None:
            return None
        mentions = self.format.object_names(task)
        names = tuple(sorted(mentions)) if self.names_from_prompt and mentions else None
        bound = name_bound(mentions)
        return None if names is None and bound == spec.name_max_bytes else (bound, names)

    def key(self, task: str) -> tuple:
        step = 1
        if self.header and self.numbering != "unnumbered":
            step = self.format.step_number(task)
        return step, self._name_rule(task)

    def view(self, key: tuple):
        """The grammar narrowed to `key` (header views are shared per step number)."""
        step, rule = key
        grammar = self.grammar
        if self.header:
            if step not in self._headers:
                self._headers[step] = StepHeader(grammar, step, self.numbering)
            grammar = self._headers[step]
        return grammar if rule is None else ObjectNames(grammar, *rule)

    def opening(self, task: str) -> tuple:
        """(view, forced opening ids, state after them) of `task`'s answer."""
        key = self.key(task)
        if key not in self.openings:
            view = self.view(key)
            if len(self.openings) >= OPENINGS_KEPT:
                del self.openings[next(iter(self.openings))]
            self.openings[key] = (view, *prefill_prefix(view))
        return self.openings[key]
