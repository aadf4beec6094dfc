"""Greedy decoding under an answer grammar with jump forward, over any `extend` backend.

Contract:
    extend_fn(token_ids: list[int]) -> logits (k, vocab)   # row i predicts the token after
                                                           # token_ids[i]; NumPy or torch
    decode_constrained(extend_fn, grammar, logits=None, max_tokens=256, state=None,
                       lookahead=None) -> DecodeResult(tokens, n_forward_passes, complete)
    Lookahead(draft_fn, rollback_fn, feedback_fn=None)
        draft_fn(answer ids) -> proposed next ids (e.g. kernels.prompt_lookup.PromptLookup);
        rollback_fn(n) drops the last n KV positions (Backend.rollback);
        feedback_fn(drafted, accepted): after each verify pass, the draft's length as fed
        (after the grammar's cut) and how many of its tokens greedy kept
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

Speculation (lookahead given): at a choice, the draft is cut to its longest prefix the
grammar allows, forced runs included (`_speculate`), and fed with the pending tokens in the
same pass; the rows then verify it choice by choice with the same masked argmax. The first
disagreement keeps the model's choice, rolls the KV cache back over the rejected tail and
carries on as without a draft; a fully accepted draft leaves its last row for the next
choice. The tokens are exactly those of the plain loop (given logits that do not depend on
how positions are batched, true up to float rounding); only the pass count changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from llara_edge.decoding.token_grammar import GrammarState, TokenGrammar
from llara_edge.errors import ConfigError, ParseError
from llara_kernels.masked_argmax import masked_argmax

ExtendFn = Callable[[Sequence[int]], object]


class Lookahead(NamedTuple):
    draft_fn: Callable[[Sequence[int]], Sequence[int]]
    rollback_fn: Callable[[int], None]
    feedback_fn: Callable[[int, int], None] | None = None


class DecodeResult(NamedTuple):
    tokens: list[int]
    n_forward_passes: int
    complete: bool


def as_rows(logits: object) -> np.ndarray:
    """(k, vocab) float32 NumPy rows from (k, vocab) or (vocab,) NumPy / torch logits."""
    if hasattr(logits, "detach"):  # torch tensor: no torch import here
        logits = logits.detach().float().cpu().numpy()
    arr = np.asarray(logits, dtype=np.float32)
    return arr[None] if arr.ndim == 1 else arr


def last_row(logits: object) -> np.ndarray:
    """(vocab,) float32 NumPy row: the last of `as_rows(logits)`."""
    return as_rows(logits)[-1]


def decode_constrained(
    extend_fn: ExtendFn,
    grammar: TokenGrammar,
    logits: object | None = None,
    max_tokens: int = 256,
    state: GrammarState | None = None,
    lookahead: Lookahead | None = None,
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
        if lookahead is not None:
            spec = _speculate(grammar, state, lookahead.draft_fn(tokens), max_tokens - len(tokens))
            if spec[0]:
                state, row, fed = _verify(extend_fn, grammar, state, spec, tokens, fed, row,
                                          lookahead)
                passes += 1
                continue
        if fed < len(tokens):
            row = last_row(extend_fn(tokens[fed:]))
            fed, passes = len(tokens), passes + 1
        state = _choose(grammar, state, row, tokens)
    return DecodeResult(tokens, passes, grammar.done(state))


def _choose(grammar: TokenGrammar, state: GrammarState, row: np.ndarray | None,
            tokens: list[int]) -> GrammarState:
    """Masked argmax of `row` at a choice; appends it to `tokens`, returns the new state."""
    if row is None:
        raise ConfigError("the grammar starts with a choice: pass the prefill logits")
    choice = masked_argmax(row, grammar.mask(state))
    if choice < 0:
        raise ParseError("dead_end", "no allowed token has a finite logit",
                         repr(grammar.vocab.text_of(tokens)))
    tokens.append(choice)
    return grammar.step(state, choice)


def _speculate(grammar: TokenGrammar, state: GrammarState, draft: Sequence[int],
               limit: int) -> tuple[list[int], list[bool]]:
    """The draft's longest grammar-valid prefix from a choice state, as the plain loop would
    walk it (whole forced runs; a run that contradicts the draft is kept and ends it), with a
    flag per token: True where the model chooses, False where the grammar forces. Called at a
    choice, so a non-empty result starts with a choice."""
    spec: list[int] = []
    is_choice: list[bool] = []
    while len(spec) < limit and not grammar.done(state):
        run = grammar.forced(state)[: limit - len(spec)]
        if run:
            agrees = list(draft[len(spec):len(spec) + len(run)]) == run
            state = grammar.advance(state, run)
            spec += run
            is_choice += [False] * len(run)
            if not agrees:
                break
            continue
        if len(spec) >= len(draft) or not grammar.mask(state)[int(draft[len(spec)])]:
            break
        state = grammar.step(state, int(draft[len(spec)]))
        spec.append(int(draft[len(spec)]))
        is_choice.append(True)
    return spec, is_choice


def _verify(extend_fn: ExtendFn, grammar: TokenGrammar, state: GrammarState,
            spec: tuple[list[int], list[bool]], tokens: list[int], fed: int,
            row: np.ndarray | None, lookahead: Lookahead):
    """One pass over the pending tokens + the draft; keeps the prefix greedy agrees with
    (reported to lookahead.feedback_fn). Returns (state, row for the next choice or None,
    tokens fed)."""
    draft, is_choice = spec
    pending = tokens[fed:]
    rows = as_rows(extend_fn([*pending, *draft]))
    # rows[j] predicts the token after fed token j; the first draft token's row is the
    # last pending one, or the row already held when nothing was pending
    before = [row] if not pending else [rows[len(pending) - 1]]
    preds = [*before, *rows[len(pending):]]
    for i, tok in enumerate(draft):
        if not is_choice[i]:
            tokens.append(tok)
            state = grammar.step(state, tok)
            continue
        state = _choose(grammar, state, preds[i], tokens)
        if tokens[-1] != tok:  # rejected: the choice stands, the rest of the draft goes
            lookahead.rollback_fn(len(draft) - i)
            if lookahead.feedback_fn is not None:
                lookahead.feedback_fn(len(draft), i)
            return state, None, len(tokens) - 1
    if lookahead.feedback_fn is not None:
        lookahead.feedback_fn(len(draft), len(draft))
    return state, preds[len(draft)], len(tokens)


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
