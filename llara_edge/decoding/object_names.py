"""Object names of an answer, bounded (and optionally restricted) per prompt without recompiling.

Contract:
    bound = name_bound(mentions)                       # max(49, longest mention in bytes)
    view = ObjectNames(grammar, bound, names=None)     # grammar: a TokenGrammar or a view
    view.start() / forced / mask / mask_bits / step / advance / done / accepts
        # the decoding interface (kernels.constrained_decode takes a view as is), plus
        # walk / literal / forced_literal of the automaton underneath
    open_name(text) -> bytes | None                    # the name an answer's bytes end inside

Why: an answer names an object inside `<p>...</p>`. The grammar is compiled once, with a
generous name length (GrammarSpec.name_max_bytes, RuntimeConfig.name_max_bytes = 64), and
each control step bounds names by its prompt: never below the longest name the prompt
mentions, never below the longest VIMA name (49 bytes, formats.llara.NAME_FLOOR_BYTES:
released models name objects the prompt does not mention, in about a fifth of their answers
longer than every name it does). With `names` (opt-in) a name must be one of them: the first
piece picks it and the rest is forced.

Rule, on bytes: a name is what follows "<p>" up to the next "<". A token is allowed where the
grammar allows it and every name it writes stays within `max_bytes` (and does not reach
exactly `max_bytes` with a space last: the grammar could not end that name) and, with
`names`, stays a prefix of one of them and ends only at a whole one. Inside a name the rule is
one vectorised comparison over the vocabulary (each piece's bytes before its first "<");
outside one only pieces holding ">" can open a name, and those few are checked one by one.
Where the rule leaves one way to finish the name (the bound reached, or one name left) the
rest of the name and the literal after it ("</p> at <b>(") are forced as the tokenizer writes
them in context. Restricted masks are cached per (DFA state, the name so far).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llara_edge.decoding.grammar_view import GrammarView
from llara_edge.decoding.token_grammar import DONE, GrammarState
from llara_edge.errors import ConfigError
from llara_edge.formats.llara import NAME_FLOOR_BYTES, check_name

_OPEN = b"<p>"


def name_bound(mentions: Sequence[str], floor: int = NAME_FLOOR_BYTES) -> int:
    """The longest name (bytes) an answer to a prompt mentioning `mentions` may write."""
    return max([floor, *(len(m.encode()) for m in mentions)])


def open_name(text: bytes) -> bytes | None:
    """The bytes of the name `text` ends inside (after its last "<p>", no "<" since)."""
    i = text.rfind(_OPEN)
    if i < 0:
        return None
    tail = text[i + len(_OPEN):]
    return None if b"<" in tail else tail


class _Pieces:
    """Per-vocabulary tables of where names start and end inside each piece (length n_vocab;
    ids past the tokenizer's are empty pieces)."""

    def __init__(self, token_bytes: Sequence[bytes | None], n_vocab: int):
        self.head = np.zeros(n_vocab, np.int32)  # bytes before the first "<" (all without one)
        self.closes = np.zeros(n_vocab, bool)  # holds "<": ends a name
        self.space_end = np.zeros(n_vocab, bool)  # no "<" and its last byte is a space
        self.opens = np.zeros(n_vocab, bool)  # holds ">": may finish "<p>" and start a name
        self.plain: dict[bytes, list[int]] = {}  # piece without "<" -> its ids
        self.closing: dict[bytes, list[int]] = {}  # the bytes before "<" -> ids
        for i, piece in enumerate(token_bytes):
            if not piece:
                continue
            k = piece.find(b"<")
            self.head[i] = len(piece) if k < 0 else k
            self.closes[i] = k >= 0
            self.space_end[i] = k < 0 and piece.endswith(b" ")
            self.opens[i] = b">" in piece
            table = self.plain if k < 0 else self.closing
            table.setdefault(piece if k < 0 else piece[:k], []).append(i)
        self.longest = int(self.head.max(initial=0))


_PIECES: dict[tuple[int, int], tuple[object, _Pieces]] = {}


def _pieces(vocab, n_vocab: int) -> _Pieces:
    """The tables of `vocab` (built once per vocabulary object and logits width)."""
    key = (id(vocab), n_vocab)
    if key not in _PIECES or _PIECES[key][0] is not vocab:
        _PIECES[key] = (vocab, _Pieces(vocab.token_bytes, n_vocab))
    return _PIECES[key][1]


class ObjectNames(GrammarView):
    """`inner` with answer names bounded at `max_bytes` and, with `names`, restricted to
    them (module contract)."""

    def __init__(self, inner, max_bytes: int, names: Sequence[str] | None = None):
        spec = inner.spec
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ConfigError(f"max_bytes must be an int >= 1, got {max_bytes!r}")
        if names is not None:
            names = tuple(dict.fromkeys(check_name(n) for n in names))
            if not names:
                raise ConfigError("names must hold at least one name (or be None)")
            max_bytes = max(max_bytes, *(len(n.encode()) for n in names))
        if spec.names is None and max_bytes > spec.name_max_bytes:
            raise ConfigError(f"object names of up to {max_bytes} bytes, but the grammar was "
                              f"compiled with names of up to {spec.name_max_bytes}: raise "
                              "RuntimeConfig.name_max_bytes")
        super().__init__(inner)
        self.max_bytes = max_bytes
        self.names = None if names is None else tuple(n.encode() for n in names)
        self._p = _pieces(self.vocab, self.n_vocab)

    # --- the rule ------------------------------------------------------------------------
    def _fits(self, name: bytes, closed: bool) -> bool:
        """Whether a name (closed: followed by "<") keeps to the bound and the names."""
        if len(name) > self.max_bytes or (not closed and len(name) == self.max_bytes
                                          and name.endswith(b" ")):
            return False
        if self.names is None:
            return True
        return name in self.names if closed else any(n.startswith(name) for n in self.names)

    def _writes_fit(self, text: bytes, piece: bytes) -> bool:
        """Whether every name that `piece` writes after `text` (opens, extends or closes)
        keeps to the rule."""
        new = text + piece
        i = new.find(_OPEN)
        while i >= 0:
            start = i + len(_OPEN)
            end = new.find(b"<", start)
            if (end < 0 or end >= len(text)) and not self._fits(
                    new[start:] if end < 0 else new[start:end], end >= 0):
                return False
            i = new.find(_OPEN, start)
        return True

    def _allowed_in_name(self, name: bytes, inner: np.ndarray) -> np.ndarray | None:
        """The mask inside an open name (None: the inner mask is already the rule's)."""
        p = self._p
        if self.names is None:
            room = self.max_bytes - len(name)
            if room > p.longest:
                return None  # no piece can reach the bound
            keep = (p.head <= room) & ~(~p.closes & (p.head == room) & p.space_end)
        else:
            keep = np.zeros(self.n_vocab, bool)
            for full in self.names:
                if full.startswith(name):
                    rest = full[len(name):]
                    for k in range(1, len(rest) + 1):
                        keep[p.plain.get(rest[:k], [])] = True
                    keep[p.closing.get(rest, [])] = True
        mask = inner & keep
        text = b"<p>" + name  # pieces that open another name inside: checked one by one
        for i in np.flatnonzero(mask & p.opens & p.closes):
            mask[i] = self._writes_fit(text, self.vocab.token_bytes[i])
        return mask

    def _allowed_outside(self, text: bytes, inner: np.ndarray) -> np.ndarray | None:
        """Outside a name only pieces holding ">" can open one: check those."""
        bad = [i for i in np.flatnonzero(inner & self._p.opens)
               if not self._writes_fit(text, self.vocab.token_bytes[i])]
        if not bad:
            return None
        mask = inner.copy()
        mask[bad] = False
        return mask

    def _find(self, state: GrammarState) -> tuple[tuple, bytes, bytes | None] | None:
        """(cache key, answer bytes, the open name or None); None after the answer. The
        mask depends on the name's length (bound) or bytes (names) inside a name, on whether
        the text ends inside "<p>" outside one."""
        if state.dfa == DONE:
            return None
        text = self.vocab.text_of(state.tokens)
        name = open_name(text)
        if name is None:
            return (state.dfa, False, text[-2:]), text, None
        return (state.dfa, True, name if self.names else len(name)), text, name

    # --- the rule (grammar_view) ---------------------------------------------------------
    def _key(self, state: GrammarState) -> tuple | None:
        found = self._find(state)
        return None if found is None else found[0]

    def _narrow(self, state: GrammarState, inner: np.ndarray) -> np.ndarray | None:
        _, text, name = self._find(state)
        return (self._allowed_in_name(name, inner) if name is not None
                else self._allowed_outside(text, inner))

    def _rule(self) -> str:
        return (f"the object-name rule (at most {self.max_bytes} bytes"
                + (", one of the prompt's names)" if self.names else ")"))

    def _only_rest(self, name: bytes) -> bytes | None:
        """The one way to finish an open name, or None while there are several."""
        if self.names is not None:
            rests = [n[len(name):] for n in self.names if n.startswith(name)]
            return rests[0] if len(rests) == 1 else None
        return b"" if len(name) >= self.max_bytes else None

    def forced(self, state: GrammarState) -> list[int]:
        """The inner forced run; inside a name with one way left, that name's rest and the
        literal after it, as the tokenizer writes them (or the one token the rule leaves)."""
        found = self._find(state)
        if found is None or found[2] is None:
            return self.inner.forced(state)
        rest = self._only_rest(found[2])
        if rest is not None:
            end = self.inner.walk(state.dfa, rest + b"<")
            if end >= 0:
                more, end = self.inner.literal(end)
                run = self.inner.forced_literal(state, rest + b"<" + more, end)
                if run:
                    return run
        return self.inner.forced(state) or self._one_left(state, found[0])
