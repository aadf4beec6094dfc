"""The "Step k: " header of a LLaRA answer, pinned per control step without recompiling.

Contract:
    base = compile_grammar("llara", tok, first_step=1, last_step=64, numbered=None)
    view = StepHeader(base, step=3, numbering="numbered")   # "unnumbered" | "either"
    view.start() / forced / mask / mask_bits / step / advance / done / accepts
        # TokenGrammar's decoding interface: kernels.constrained_decode takes a view as is
    numbering_for(answer_forms) -> str   # the default numbering of a checkpoint whose
                                         # training answers had these forms (None: unknown)

Why: a LLaRA model answers "Step k+1: ..." after a history of k finished steps (FORMATS.md
§2), and models trained with the auxiliary variants may also answer without any header.
Compiling one grammar per k would cost about a second per number at V = 32000 and ~30 MB
each; instead the base grammar admits every k of a range and both forms, and a view narrows
it to the answers of this step:
- "numbered": the answer starts " Step {step}: " (its tokens are forced, as the tokenizer
  itself writes them, so they go into the prompt's prefill);
- "unnumbered": the answer starts with the action's verb, never "Step";
- "either": the model chooses between " Step {step}: " and no header (one choice).
The rule is checked on bytes (`header_allows`) for the tokens the base mask allows while the
answer is still inside the header (its first 1 + len("Step k: ") bytes); past it the view is
the base grammar itself. Restricted masks are cached per (DFA state, bytes so far).
"""

from __future__ import annotations

import numpy as np

from llara_edge.decoding.grammar_view import GrammarView
from llara_edge.decoding.token_grammar import DONE, GrammarState, TokenGrammar
from llara_edge.errors import ConfigError
from llara_edge.formats.llara import VERBS

NUMBERINGS = ("numbered", "unnumbered", "either")
# The branch is known from the first two bytes after the leading space: "St" is the header.
# That holds because no action starts with "St" (checked here, so a new verb cannot break it).
_HEADER_MARK = b"St"
if any(opening.encode().startswith(_HEADER_MARK) for opening, _ in VERBS.values()):
    raise ImportError("an action verb starts with 'St': step_header cannot tell it apart")


def numbering_for(answer_forms) -> str:
    """The numbering that follows what a checkpoint writes: "numbered" / "unnumbered" when
    its training answers had only that form (formats.llara.ANSWER_FORMS), else "either"
    (both forms, or not known: "either" accepts whatever the model writes)."""
    forms = set(answer_forms or ())
    return forms.pop() if len(forms) == 1 and forms <= set(NUMBERINGS) else "either"


def header_bytes(step: int) -> bytes:
    return f" Step {step}: ".encode()


def in_header_branch(text: bytes) -> bool:
    """Whether answer bytes `text` took the "Step" branch (False while only " S" is spelled:
    Sweep or Step)."""
    return text[1:3] == _HEADER_MARK


def header_allows(text: bytes, step: int, numbering: str) -> bool:
    """Whether answer bytes `text` (from its leading space) keep to the header rule."""
    numbered = in_header_branch(text)
    want = header_bytes(step)
    fits = text[: len(want)] == want[: len(text)]
    if numbering == "numbered":
        return fits
    if numbering == "unnumbered":
        return not numbered
    return fits or not numbered


class StepHeader(GrammarView):
    """`base` restricted to the answers of step `step` under `numbering` (module contract)."""

    def __init__(self, base: TokenGrammar, step: int, numbering: str = "numbered"):
        if numbering not in NUMBERINGS:
            raise ConfigError(f"numbering must be one of {NUMBERINGS}, got {numbering!r}")
        spec = base.spec
        if not spec.kind.startswith("llara") or spec.kind in ("llara_detection",
                                                              "llara_localization"):
            raise ConfigError(f"a step header needs a LLaRA step grammar, not {spec.kind!r}")
        last = spec.first_step if spec.last_step is None else spec.last_step
        if numbering != "unnumbered" and not spec.first_step <= step <= last:
            raise ConfigError(f"step {step} is outside the grammar's steps "
                              f"{spec.first_step}..{last}: raise RuntimeConfig.max_steps")
        if numbering != "numbered" and spec.numbered is not None and spec.numbered:
            raise ConfigError("the grammar was compiled without un-numbered answers "
                              "(numbered=None admits both)")
        super().__init__(base)
        self.step_number, self.numbering = int(step), numbering
        self._region = len(header_bytes(step))

    # --- the rule (grammar_view) ---------------------------------------------------------
    def _key(self, state: GrammarState) -> tuple | None:
        """(DFA state, the answer's bytes) while inside the header region, else None."""
        if state.dfa == DONE:
            return None
        text = self.vocab.text_of(state.tokens)
        return (state.dfa, text) if len(text) < self._region else None

    def _narrow(self, state: GrammarState, inner: np.ndarray) -> np.ndarray:
        text = self.vocab.text_of(state.tokens)
        mask = inner.copy()
        table = self.vocab.token_bytes
        for i in np.flatnonzero(mask[: self.vocab.size]):
            piece = table[i]
            if piece is not None and not header_allows(text + piece, self.step_number,
                                                       self.numbering):
                mask[i] = False
        return mask

    def _rule(self) -> str:
        return f"the step-{self.step_number} header ({self.numbering})"

    def forced(self, state: GrammarState) -> list[int]:
        """The base grammar's forced run; inside the header, the pinned header's tokens (as
        the tokenizer writes them in context), or the one token the restriction leaves."""
        key = self._key(state)
        if key is None:
            return self.inner.forced(state)
        text = key[1]
        want = header_bytes(self.step_number)
        if want.startswith(text) and (self.numbering == "numbered" or in_header_branch(text)):
            rest = want[len(text):]
            end = self.inner.walk(state.dfa, rest)
            if end < 0:
                raise ConfigError(f"{want!r} is not in the grammar")
            more, end = self.inner.literal(end)  # the literal that follows the header
            run = self.inner.forced_literal(state, rest + more, end)
            if run:
                return run
        return self.inner.forced(state) or self._one_left(state, key)
