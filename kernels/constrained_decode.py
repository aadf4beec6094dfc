"""Greedy decoding under an answer grammar with jump forward, over any `extend` backend.

Contract:
    extend_fn(token_ids: list[int]) -> logits (k, vocab)   # row i predicts the token after
                                                           # token_ids[i]; NumPy or torch
    decode_constrained(extend_fn, grammar, logits=None, max_tokens=256, state=None)
        -> DecodeResult(tokens, n_forward_passes, complete)
    prefill_prefix(grammar) -> (tokens, state): the forced run at the start of the answer,
        for the caller to append to the prompt's prefill (then pass `state` and the
        prefill's last logits: the run costs no decode pass; `tokens` of the result then
        exclude it)
    decode_greedy(extend_fn, logits, eos_id, max_tokens=256) -> DecodeResult   # free greedy

`logits` is the last row of the prompt prefill ((vocab,)); it may be None when the grammar
starts with a forced run (then the first extend supplies logits). Each pass appends every
token chosen since the previous pass: a masked-argmax choice plus the forced run that follows
it go in ONE extend call. Tokens after which the answer is complete are never fed (no pass is
spent on them), and no EOS is generated for grammars that end by themselves. Free greedy is
counted the same way (one pass per generated token except the last), so the two pass counts
compare like for like. Choices use masked_argmax (ties -> lowest id, as np.argmax / HF).
`complete` is False when max_tokens ran out first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from llara_edge.errors import ConfigError, ParseError
from llara_edge.kernels.masked_argmax import masked_argmax
from llara_edge.kernels.token_grammar import GrammarState, TokenGrammar

ExtendFn = Callable[[Sequence[int]], object]


class DecodeResult(NamedTuple):
    tokens: list[int]
    n_forward_passes: int
    complete: bool


def last_row(logits: object) -> np.ndarray:
    """(vocab,) float32 NumPy row from (k, vocab) or (vocab,) NumPy / torch logits."""
    if hasattr(logits, "detach"):  # torch tensor: no torch import here
        logits = logits.detach().float().cpu().numpy()
    arr = np.asarray(logits, dtype=np.float32)
    return arr[-1] if arr.ndim == 2 else arr


def decode_constrained(
    extend_fn: ExtendFn,
    grammar: TokenGrammar,
    logits: object | None = None,
    max_tokens: int = 256,
    state: GrammarState | None = None,
) -> DecodeResult:
    """Greedy tokens of a complete answer (see the module contract)."""
    state = grammar.start() if state is None else state
    row = None if logits is None else last_row(logits)
    tokens: list[int] = []
    fed, passes = 0, 0
    while not grammar.done(state) and len(tokens) < max_tokens:
        run = grammar.forced(state)[: max_tokens - len(tokens)]
        if run:
            state = grammar.advance(state, run)
            tokens.extend(run)
            continue
        if fed < len(tokens):
            row = last_row(extend_fn(tokens[fed:]))
            fed, passes = len(tokens), passes + 1
        if row is None:
            raise ConfigError("the grammar starts with a choice: pass the prefill logits")
        choice = masked_argmax(row, grammar.mask(state))
        if choice < 0:
            raise ParseError("dead_end", "no allowed token has a finite logit",
                             repr(grammar.vocab.text_of(tokens)))
        state = grammar.step(state, choice)
        tokens.append(choice)
    return DecodeResult(tokens, passes, grammar.done(state))


def prefill_prefix(grammar: TokenGrammar) -> tuple[list[int], GrammarState]:
    """The answer's forced opening (e.g. " Step 1: Pick up the <p>") and the state after it."""
    run = grammar.forced(grammar.start())
    return run, grammar.advance(grammar.start(), run)


def decode_greedy(
    extend_fn: ExtendFn,
    logits: object,
    eos_id: int,
    max_tokens: int = 256,
) -> DecodeResult:
    """Unconstrained greedy (np.argmax, lowest id on ties) until EOS or max_tokens."""
    row = last_row(logits)
    tokens: list[int] = []
    passes = 0
    while True:
        tokens.append(int(np.argmax(row)))
        if tokens[-1] == eos_id or len(tokens) >= max_tokens:
            return DecodeResult(tokens, passes, tokens[-1] == eos_id)
        row = last_row(extend_fn(tokens[-1:]))
        passes += 1
