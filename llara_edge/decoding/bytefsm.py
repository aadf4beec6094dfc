"""Byte-level regular languages: a few combinators, Thompson NFA, minimal DFA over 256 bytes.

Contract:
    node = seq(lit("Step "), alt(lit("1"), lit("2")), rep(chars("0123456789"), 0, 3))
    dfa = compile_dfa(node) -> ByteDFA
    dfa.table    int32 (n_states, 256): next state, -1 = dead (no accepted string continues)
    dfa.accept   bool (n_states,)
    dfa.start    int (always 0)
    dfa.match(data: bytes) -> bool

Every state of the DFA is live (some accepted string goes through it) and the DFA is minimal
(Moore partition refinement), so "exactly one byte leads on from here" means "this byte is
forced". The language is over bytes, not characters: UTF-8 text works unchanged and the
tokenizer's byte-fallback pieces need no special case. An empty language is a ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from llara_edge.errors import ConfigError

ALL_BYTES = frozenset(range(256))


@dataclass(frozen=True)
class Node:
    """A regular expression over bytes (one of the subclasses below)."""


@dataclass(frozen=True)
class Lit(Node):
    data: bytes


@dataclass(frozen=True)
class ByteSet(Node):
    values: frozenset[int]


@dataclass(frozen=True)
class Seq(Node):
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Alt(Node):
    options: tuple[Node, ...]


@dataclass(frozen=True)
class Repeat(Node):
    node: Node
    lo: int
    hi: int | None  # None: unbounded


def lit(text: str | bytes) -> Lit:
    return Lit(text.encode() if isinstance(text, str) else bytes(text))


def chars(text: str | bytes | Iterable[int]) -> ByteSet:
    """One byte out of `text` (ASCII string or byte values)."""
    values = text.encode() if isinstance(text, str) else bytes(text)
    return ByteSet(frozenset(values))


def seq(*parts: Node) -> Node:
    return parts[0] if len(parts) == 1 else Seq(tuple(parts))


def alt(*options: Node) -> Node:
    return options[0] if len(options) == 1 else Alt(tuple(options))


def rep(node: Node, lo: int, hi: int | None) -> Repeat:
    if lo < 0 or (hi is not None and hi < lo):
        raise ConfigError(f"bad repeat bounds {lo}..{hi}")
    return Repeat(node, lo, hi)


def opt(node: Node) -> Repeat:
    return Repeat(node, 0, 1)


class _Nfa:
    """Thompson NFA: edges[s] = [(byte set or None for epsilon, target)]."""

    def __init__(self) -> None:
        self.edges: list[list[tuple[frozenset[int] | None, int]]] = []

    def new(self) -> int:
        self.edges.append([])
        return len(self.edges) - 1

    def build(self, node: Node, start: int) -> int:
        """Add `node` from state `start`; returns its end state."""
        if isinstance(node, Lit):
            for b in node.data:
                nxt = self.new()
                self.edges[start].append((frozenset((b,)), nxt))
                start = nxt
            return start
        if isinstance(node, ByteSet):
            end = self.new()
            self.edges[start].append((node.values, end))
            return end
        if isinstance(node, Seq):
            for part in node.parts:
                start = self.build(part, start)
            return start
        if isinstance(node, Alt):
            end = self.new()
            for option in node.options:
                self.edges[self.build(option, start)].append((None, end))
            return end
        if isinstance(node, Repeat):
            return self._repeat(node, start)
        raise ConfigError(f"unknown regex node {node!r}")

    def _repeat(self, node: Repeat, start: int) -> int:
        for _ in range(node.lo):
            start = self.build(node.node, start)
        if node.hi is None:  # star: loop back to the entry
            entry = self.new()
            self.edges[start].append((None, entry))
            self.edges[self.build(node.node, entry)].append((None, entry))
            return entry
        end = self.new()
        for _ in range(node.hi - node.lo):
            self.edges[start].append((None, end))
            start = self.build(node.node, start)
        self.edges[start].append((None, end))
        return end

    def closure(self, states: Iterable[int]) -> frozenset[int]:
        todo, seen = list(states), set(states)
        while todo:
            for label, tgt in self.edges[todo.pop()]:
                if label is None and tgt not in seen:
                    seen.add(tgt)
                    todo.append(tgt)
        return frozenset(seen)


def _subset_construction(nfa: _Nfa, start: int, final: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic table (n, 256) with -1 = no transition, and accepting flags."""
    first = nfa.closure((start,))
    index = {first: 0}
    order = [first]
    rows: list[np.ndarray] = []
    while len(rows) < len(order):
        moves: dict[int, set[int]] = {}
        for s in order[len(rows)]:
            for label, tgt in nfa.edges[s]:
                for b in label or ():
                    moves.setdefault(b, set()).add(tgt)
        row = np.full(256, -1, np.int32)
        for b, targets in moves.items():
            key = nfa.closure(targets)
            if key not in index:
                index[key] = len(order)
                order.append(key)
            row[b] = index[key]
        rows.append(row)
    accept = np.array([final in s for s in order], dtype=bool)
    return np.stack(rows), accept


def _trim(table: np.ndarray, accept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop states from which no accepting state is reachable; renumber with start = 0."""
    live = accept.copy()
    while True:  # co-reachability: a state is live when some byte leads to a live state
        nxt = live | ((table >= 0) & live[np.maximum(table, 0)]).any(axis=1)
        if (nxt == live).all():
            break
        live = nxt
    if not live[0]:
        raise ConfigError("the grammar accepts no string")
    new_id = np.full(len(table) + 1, -1, np.int32)  # index -1 (dead) maps to -1
    new_id[np.flatnonzero(live)] = np.arange(int(live.sum()), dtype=np.int32)
    trimmed = new_id[table[live]]
    return trimmed, accept[live]


def _minimise(table: np.ndarray, accept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moore partition refinement; the start state keeps id 0."""
    cls = accept.astype(np.int64)
    while True:
        succ = np.where(table >= 0, cls[np.maximum(table, 0)], -1)
        sig = np.concatenate([cls[:, None], succ], axis=1)
        _, new_cls = np.unique(sig, axis=0, return_inverse=True)
        new_cls = new_cls.reshape(-1)
        if len(np.unique(new_cls)) == len(np.unique(cls)):
            break
        cls = new_cls
    # renumber classes in order of first appearance so that state 0 stays the start
    _, first = np.unique(cls, return_index=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    reps = first[order]
    mapped = np.where(table[reps] >= 0, rank[cls[np.maximum(table[reps], 0)]], -1)
    return mapped.astype(np.int32), accept[reps]


@dataclass(frozen=True)
class ByteDFA:
    table: np.ndarray  # int32 (n_states, 256), -1 = dead
    accept: np.ndarray  # bool (n_states,)
    start: int = 0

    @property
    def n_states(self) -> int:
        return len(self.table)

    def run(self, data: bytes, state: int = 0) -> int:
        """State after `data` from `state`, -1 when the bytes leave the language."""
        for b in data:
            state = int(self.table[state, b])
            if state < 0:
                return -1
        return state

    def match(self, data: bytes) -> bool:
        state = self.run(data)
        return state >= 0 and bool(self.accept[state])


def compile_dfa(node: Node) -> ByteDFA:
    """Minimal live DFA of `node`."""
    nfa = _Nfa()
    start = nfa.new()
    final = nfa.build(node, start)
    table, accept = _subset_construction(nfa, start, final)
    table, accept = _trim(table, accept)
    table, accept = _minimise(table, accept)
    return ByteDFA(table, accept)
