"""Answer grammars compiled against a tokenizer's real vocabulary: a token-level automaton.

Contract:
    g = compile_grammar("llara", tokenizer, names=("red block", "green pan"), n_vocab=None)
    s = g.start()                    # GrammarState(dfa, tokens): immutable
    g.forced(s) -> list[int]         # tokens to append in ONE extend pass (may be [])
    g.mask(s) -> bool (n_vocab,)     # tokens allowed next (read-only view, EOS included only
                                     # where the answer may end); g.mask_bits(s): packed uint32
    g.step(s, token) -> s'           # ParseError("not_allowed") for a token outside the mask
    g.advance(s, tokens) -> s'       # several steps
    g.done(s) -> bool                # the answer is complete (stop decoding, no EOS needed)

The byte DFA of the answer language (answer_grammars, bytefsm) is run over every piece's
bytes from every DFA state once, at compile time (NumPy over the whole vocabulary), giving per
state the allowed ids, their successor states and the mask. Forced runs (jump forward): where
the DFA admits exactly one byte string L before the next choice, the forced tokens are those
the tokenizer itself produces for L in context: the stream so far (from the last token that
starts with a space, where sentencepiece cannot merge across) + L + probe continuations
sampled from the grammar is encoded canonically; the tokens lying wholly inside L that all
probes agree on are forced. When the history is not the tokenizer's own tokenization of its
text (it would merge differently), nothing is forced and the mask decides, so forcing never
produces a token sequence the tokenizer would not. Results are cached per (state, context).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from llara_edge.decoding.answer_grammars import GrammarSpec, answer_node
from llara_edge.decoding.bytefsm import ByteDFA, compile_dfa
from llara_edge.decoding.token_vocab import TokenVocab
from llara_edge.errors import ParseError
from llara_kernels.masked_argmax import pack_mask

DONE = -2  # DFA state after EOS
CONTEXT_TOKENS = 12  # how far back a forced run looks for a space-led piece
N_EXTRA_PROBES = 4
PROBE_BYTES = 6


class GrammarState(NamedTuple):
    dfa: int
    tokens: tuple[int, ...]


def _token_successors(dfa: ByteDFA, vocab: TokenVocab, chunk: int = 4096) -> np.ndarray:
    """(n_states, V) int16 (int32 past 32766 states): DFA state after each token's bytes
    from each state, n = dead.
    Tokens go `chunk` at a time (the fancy-indexing temporaries are (n_states, chunk) int64:
    over the whole 32000-token vocabulary at once they peaked at ~200 MB)."""
    n = dfa.n_states
    table = np.vstack([np.where(dfa.table < 0, n, dfa.table), np.full((1, 256), n)])
    table = table.astype(np.int32)
    mat, lengths = vocab.matrix()
    order = np.argsort(-lengths, kind="stable")  # longest first: active tokens = a prefix
    out = np.empty((n, vocab.size), dtype=np.int16 if n < np.iinfo(np.int16).max else np.int32)
    for c0 in range(0, vocab.size, chunk):
        idx = order[c0: c0 + chunk]
        sorted_len = lengths[idx]
        cur = np.tile(np.arange(n, dtype=np.int32)[:, None], (1, len(idx)))
        for j in range(int(sorted_len[0]) if len(idx) else 0):
            k = int(np.searchsorted(-sorted_len, -j, side="left"))  # tokens with length > j
            cur[:, :k] = table[cur[:, :k], mat[idx[:k], j][None, :]]
        out[:, idx] = cur
    out[:, lengths == 0] = n  # special pieces never move the automaton
    return out


class TokenGrammar:
    """Token-level automaton of one answer language over one vocabulary."""

    def __init__(self, spec: GrammarSpec, vocab: TokenVocab, n_vocab: int | None = None):
        self.spec, self.vocab = spec, vocab
        self.n_vocab = vocab.size if n_vocab is None else int(n_vocab)
        if self.n_vocab < vocab.size:
            raise ParseError("bad_vocab", f"n_vocab {self.n_vocab} < tokenizer {vocab.size}")
        self.dfa = compile_dfa(answer_node(spec))
        n = self.dfa.n_states
        # (n_states, V) next DFA state per token, n = not allowed: int16 where it fits (at
        # V = 32000 a per-state dict of the allowed ids held ~440 MB for the generic grammar)
        self._succ = _token_successors(self.dfa, vocab)
        self._succ.setflags(write=False)
        self._ends = ~(self.dfa.table >= 0).any(axis=1)  # accepting, nothing may follow
        self._build_masks()
        self._literals = [self._literal(s) for s in range(n)]
        self._probes: dict[int, list[bytes]] = {}
        self._forced_cache: dict[tuple[int, tuple[int, ...]], list[int]] = {}

    def _build_masks(self) -> None:
        """bool (n_states + 1, n_vocab) allowed ids (row n: done, EOS only) and its packed
        uint32 form, both derived from the successor table (so never pickled)."""
        n, size, eos = self.dfa.n_states, self.vocab.size, self.vocab.eos_id
        self._allowed = np.zeros((n + 1, self.n_vocab), dtype=bool)
        self._allowed[:n, :size] = self._succ != n
        self._allowed[:n, eos] = self.dfa.accept & ~self._ends
        self._allowed[n, eos] = True
        self._allowed.setflags(write=False)
        self._bits = pack_mask(self._allowed)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_allowed"], state["_bits"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._build_masks()

    # --- the automaton -------------------------------------------------------------------
    def start(self) -> GrammarState:
        return GrammarState(self.dfa.start, ())

    def _row(self, state: GrammarState) -> int:
        return self.dfa.n_states if state.dfa == DONE else state.dfa

    def mask(self, state: GrammarState) -> np.ndarray:
        return self._allowed[self._row(state)]

    def mask_bits(self, state: GrammarState) -> np.ndarray:
        return self._bits[self._row(state)]

    def done(self, state: GrammarState) -> bool:
        return state.dfa == DONE or bool(self._ends[state.dfa])

    def step(self, state: GrammarState, token: int) -> GrammarState:
        token = int(token)
        if state.dfa != DONE:
            if token == self.vocab.eos_id and self._allowed[state.dfa, token]:
                return GrammarState(DONE, (*state.tokens, token))
            nxt = int(self._succ[state.dfa, token]) if 0 <= token < self.vocab.size else -1
            if 0 <= nxt < self.dfa.n_states:
                return GrammarState(nxt, (*state.tokens, token))
        raise ParseError("not_allowed", f"token {token} not allowed in state {state.dfa}",
                         repr(self.vocab.text_of(state.tokens)))

    def advance(self, state: GrammarState, tokens: Sequence[int]) -> GrammarState:
        for t in tokens:
            state = self.step(state, t)
        return state

    def accepts(self, tokens: Sequence[int]) -> bool:
        """Whether `tokens` spell a complete answer (EOS optional at the end)."""
        try:
            state = self.advance(self.start(), tokens)
        except ParseError:
            return False
        return state.dfa == DONE or bool(self.dfa.accept[state.dfa])

    # --- jump forward --------------------------------------------------------------------
    def _literal(self, s: int) -> tuple[bytes, int]:
        """The byte string forced from DFA state s (up to the next choice) and its end state."""
        out = bytearray()
        table, accept = self.dfa.table, self.dfa.accept
        while not accept[s]:
            nxt = np.flatnonzero(table[s] >= 0)
            if len(nxt) != 1:
                break
            out.append(int(nxt[0]))
            s = int(table[s, nxt[0]])
        return bytes(out), s

    def _probe_set(self, end: int) -> list[bytes]:
        """Continuations of the grammar after DFA state `end` (deterministic samples)."""
        if end in self._probes:
            return self._probes[end]
        rng = np.random.default_rng(end)
        firsts = _prefer_ascii(np.flatnonzero(self.dfa.table[end] >= 0))
        if len(firsts) > 16:
            firsts = firsts[np.linspace(0, len(firsts) - 1, 16).astype(int)]
        starts = [*firsts.tolist(), *rng.choice(firsts, N_EXTRA_PROBES).tolist()] \
            if len(firsts) else []
        probes = [b""] if self.dfa.accept[end] else []
        for b in starts:
            walk, s = bytearray([b]), int(self.dfa.table[end, b])
            while len(walk) < PROBE_BYTES and not self._ends[s]:
                options = _prefer_ascii(np.flatnonzero(self.dfa.table[s] >= 0))
                b = int(rng.choice(options))
                walk.append(b)
                s = int(self.dfa.table[s, b])
            probes.append(bytes(walk))
        self._probes[end] = probes
        return probes

    def forced(self, state: GrammarState) -> list[int]:
        if state.dfa == DONE:
            return []
        lit, end = self._literals[state.dfa]
        return self.forced_literal(state, lit, end)

    def literal(self, dfa_state: int) -> tuple[bytes, int]:
        """The bytes forced from `dfa_state` up to the next choice, and the state there."""
        return self._literals[dfa_state]

    def walk(self, dfa_state: int, text: bytes) -> int:
        """DFA state after `text` from `dfa_state` (-1: the text leaves the language)."""
        s = dfa_state
        for b in text:
            s = int(self.dfa.table[s, b]) if s >= 0 else -1
        return s

    def forced_literal(self, state: GrammarState, lit: bytes, end: int) -> list[int]:
        """The tokens forced for byte string `lit` from `state` (DFA state `end` after it):
        those lying wholly inside `lit` that the tokenizer's canonical encoding of the context
        + lit + probe continuations agrees on. `forced` passes the DFA's own literal; a caller
        that pins a choice (kernels.step_header) passes the bytes it pins."""
        if not lit:
            return []
        hist = state.tokens
        for start in _context_starts(hist, self.vocab):
            key = (state.dfa, hist[start:], lit)
            if key not in self._forced_cache:
                self._forced_cache[key] = self._forced_run(hist[start:], lit, end)
            run = self._forced_cache[key]
            if run is not None:
                return list(run)
        return []

    def _forced_run(self, ctx_ids: tuple[int, ...], lit: bytes, end: int) -> list[int] | None:
        """Tokens wholly inside `lit` that every probe's canonical encoding agrees on;
        None when the context is not canonical (then a longer context is tried)."""
        ctx = self.vocab.text_of(ctx_ids)
        run: list[int] | None = None
        for probe in self._probe_set(end):
            toks = self.vocab.canonical(ctx + lit + probe)
            if toks is None:
                continue
            if toks[: len(ctx_ids)] != list(ctx_ids):
                return None
            mine = _tokens_within(toks[len(ctx_ids):], len(lit), self.vocab)
            run = mine if run is None else _common_prefix(run, mine)
        return run or []


def _prefer_ascii(values: np.ndarray) -> np.ndarray:
    ascii_ = values[(values >= 0x20) & (values < 0x7F)]
    return ascii_ if len(ascii_) else values


def _context_starts(hist: tuple[int, ...], vocab: TokenVocab) -> list[int]:
    """Where the canonical re-encoding may start: the last space-led piece, else the start."""
    for i in range(len(hist) - 1, max(-1, len(hist) - 1 - CONTEXT_TOKENS), -1):
        b = vocab.token_bytes[hist[i]]
        if b and b[:1] == b" ":
            return [i, 0] if i else [0]
    return [0]


def _tokens_within(toks: Sequence[int], n_bytes: int, vocab: TokenVocab) -> list[int]:
    out, used = [], 0
    for t in toks:
        b = vocab.token_bytes[t]
        if not b or used + len(b) > n_bytes:
            break
        out.append(t)
        used += len(b)
    return out


def _common_prefix(a: list[int], b: list[int]) -> list[int]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def compile_grammar(
    kind: str,
    tokenizer: object,
    names: Sequence[str] | None = None,
    n_vocab: int | None = None,
    **options: object,
) -> TokenGrammar:
    """Compile answer grammar `kind` (answer_grammars.GRAMMARS) for `tokenizer` (an
    SpmTokenizer or a TokenVocab); `n_vocab` is the logits width when larger than the
    tokenizer (padded / added tokens are never allowed); options go to GrammarSpec."""
    vocab = tokenizer if isinstance(tokenizer, TokenVocab) else TokenVocab.from_tokenizer(tokenizer)
    spec = GrammarSpec(kind=kind, names=None if names is None else tuple(names), **options)
    return TokenGrammar(spec, vocab, n_vocab)
