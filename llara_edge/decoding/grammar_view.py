"""A compiled grammar narrowed by a per-step rule: the part every view shares.

Contract:
    class MyView(GrammarView):
        def _key(self, state) -> tuple | None       # cache key of the rule at `state`;
                                                     # None where the rule does not apply
        def _narrow(self, state, inner) -> np.ndarray | None
                                                     # the narrowed mask (a new array) from
                                                     # the inner mask, None: inner's stands
        def _rule(self) -> str                       # the rule, for errors ("the ... rule")
    view.start() / done / mask / mask_bits / step / advance / accepts
        # TokenGrammar's decoding interface (decoding.constrained_decode takes a view as is)
    view.walk / literal / forced_literal             # the automaton underneath, unchanged
    view._one_left(state, key=None) -> list[int]     # the one token the rule leaves, or []

Views stack (StepHeader over the compiled grammar, ObjectNames over that): each holds `inner`
and narrows its mask; the automaton and its byte walks are the inner grammar's. A narrowed
mask and its packed bits are computed once per key and kept read-only.
"""

from __future__ import annotations

import numpy as np

from llara_edge.decoding.token_grammar import GrammarState, TokenGrammar
from llara_edge.errors import ParseError
from llara_kernels.masked_argmax import pack_mask


class GrammarView:
    """`inner` (a TokenGrammar or another view) with the subclass's rule applied."""

    def __init__(self, inner):
        self.inner, self.spec, self.vocab = inner, inner.spec, inner.vocab
        self.n_vocab, self.dfa = inner.n_vocab, inner.dfa
        self._masks: dict[tuple, np.ndarray | None] = {}  # None: the inner mask as it is
        self._bits: dict[tuple, np.ndarray] = {}
        self._single: dict[tuple, list[int]] = {}  # the one token a narrowed mask allows, or []

    def _key(self, state: GrammarState) -> tuple | None:
        raise NotImplementedError

    def _narrow(self, state: GrammarState, inner: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def _rule(self) -> str:
        raise NotImplementedError

    def _narrowed(self, state: GrammarState, key: tuple | None = None) -> tuple | None:
        """The cache key of `state`'s narrowed mask (`key`: its _key, when the caller has it),
        None where the inner mask stands."""
        key = self._key(state) if key is None else key
        if key is None:
            return None
        if key not in self._masks:
            mask = self._narrow(state, self.inner.mask(state))
            if mask is not None:
                mask.setflags(write=False)
                self._bits[key] = pack_mask(mask[None])[0]
                allowed = np.flatnonzero(mask)
                self._single[key] = [int(allowed[0])] if len(allowed) == 1 else []
            self._masks[key] = mask
        return key if self._masks[key] is not None else None

    def _one_left(self, state: GrammarState, key: tuple | None = None) -> list[int]:
        """The one token the narrowed mask allows, [] where it allows several (or none)."""
        key = self._narrowed(state, key)
        return [] if key is None else list(self._single[key])

    # --- the decoding interface ----------------------------------------------------------
    def mask(self, state: GrammarState) -> np.ndarray:
        key = self._narrowed(state)
        return self.inner.mask(state) if key is None else self._masks[key]

    def mask_bits(self, state: GrammarState) -> np.ndarray:
        key = self._narrowed(state)
        return self.inner.mask_bits(state) if key is None else self._bits[key]

    def start(self) -> GrammarState:
        return self.inner.start()

    def done(self, state: GrammarState) -> bool:
        return self.inner.done(state)

    def step(self, state: GrammarState, token: int) -> GrammarState:
        key = self._narrowed(state)
        if key is not None and not self._masks[key][int(token)]:
            raise ParseError("not_allowed", f"token {token} breaks {self._rule()}",
                             repr(self.vocab.text_of(state.tokens)))
        return self.inner.step(state, token)

    def forced(self, state: GrammarState) -> list[int]:
        return self.inner.forced(state)

    # TokenGrammar's walks over this view's own start/step (the rule applies)
    advance = TokenGrammar.advance
    accepts = TokenGrammar.accepts

    # the inner automaton's byte walks (a view over this one pins its own literals)
    def walk(self, dfa_state: int, text: bytes) -> int:
        return self.inner.walk(dfa_state, text)

    def literal(self, dfa_state: int) -> tuple[bytes, int]:
        return self.inner.literal(dfa_state)

    def forced_literal(self, state: GrammarState, lit: bytes, end: int) -> list[int]:
        return self.inner.forced_literal(state, lit, end)
