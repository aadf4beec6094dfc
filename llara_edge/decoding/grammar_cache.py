"""Compiled answer grammars, cached in memory and on disk (compiling one takes seconds).

Contract:
    grammar_for(kind, tokenizer, n_vocab, cache_dir=None, **spec) -> kernels TokenGrammar

The key is a sha256 over the tokenizer model's bytes (a GGUF tokenizer: over its vocabulary,
`vocab_digest`, not the gigabytes of weights around it), the grammar kind and spec, n_vocab and
the source of the kernels modules that build the automaton, so an edited kernel or another
tokenizer never reuses a stale entry. Disk entries are pickles written atomically (tmp +
rename) under `cache_dir` (the user's own cache: pickles are code, never load one from a
directory others can write); an unreadable entry is recompiled and replaced.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import uuid
from pathlib import Path

from llara_edge.decoding import answer_grammars, bytefsm, token_grammar, token_vocab
from llara_kernels import masked_argmax

# the modules whose code decides what a compiled grammar holds (the mask packing included)
_SOURCES = (answer_grammars, bytefsm, token_grammar, token_vocab, masked_argmax)
_MEMORY: dict[str, object] = {}


def _kernel_digest() -> str:
    digest = hashlib.sha256()
    for module in _SOURCES:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def cache_key(kind: str, tokenizer, n_vocab: int, spec: dict) -> str:
    digest = hashlib.sha256()
    vocab_digest = getattr(tokenizer, "vocab_digest", None)  # a GGUF: its vocabulary only
    if vocab_digest is not None:
        digest.update(f"vocab:{vocab_digest}".encode())
    else:
        digest.update(Path(tokenizer.model_file).read_bytes())
    digest.update(repr((kind, n_vocab, sorted(spec.items()))).encode())
    digest.update(_kernel_digest().encode())
    return digest.hexdigest()[:32]


def _read(path: Path):
    try:
        with open(path, "rb") as fh:
            grammar = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
    return grammar if isinstance(grammar, token_grammar.TokenGrammar) else None


def _write(path: Path, grammar) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            pickle.dump(grammar, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only cache only costs a recompile


def grammar_for(kind: str, tokenizer, n_vocab: int, cache_dir: Path | None = None,
                **spec: object):
    """The TokenGrammar of `kind` for `tokenizer` (see the module contract)."""
    key = cache_key(kind, tokenizer, n_vocab, spec)
    if key in _MEMORY:
        return _MEMORY[key]
    path = None if cache_dir is None else Path(cache_dir) / f"{kind}-{key}.pkl"
    grammar = _read(path) if path is not None and path.is_file() else None
    if grammar is None:
        grammar = token_grammar.compile_grammar(kind, tokenizer, n_vocab=n_vocab, **spec)
        if path is not None:
            _write(path, grammar)
    _MEMORY[key] = grammar
    return grammar
