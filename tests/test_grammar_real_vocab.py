"""The answer grammars compiled against the REAL LLaMA-2 vocabulary (32000 pieces).

The tokenizer is GgufTokenizer (llama.cpp's ids) over tests/real_vocab.py's GGUF (skipped
offline). Checked: the real tokenisation facts the grammar must follow (digits single
tokens after a lone "▁", an answer tokenised inside the conversation is its own
tokenisation), every formatted answer is accepted, a teacher model that wants the answer's
llama.cpp tokens gets exactly them back (forced runs never feed a token the tokenizer would
not write), in fewer passes; masks never allow special ids; the disk cache round-trips a
grammar (and its tokenizer) without the GGUF. Grammars compile once per session into a tmp
cache (runtime.grammar_cache).
"""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
from llarva_source import Agent, source_answers
from real_vocab import real_vocab_path

from llara_bench.bench_grammar_vocab import N_JOINTS, NAMES, answers
from llara_edge.decoding import grammar_cache
from llara_edge.decoding.constrained_decode import decode_constrained, prefill_prefix
from llara_edge.formats import LlaraPrompt, parse_llarva_answer
from llara_edge.formats.templates import build_prompt
from llara_edge.models.gguf_tokenizer import GgufTokenizer


@pytest.fixture(scope="module")
def tok():
    return GgufTokenizer(real_vocab_path())


@pytest.fixture(scope="module")
def grammars(tok, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "real-vocab-grammars"
    return {kind: grammar_cache.grammar_for(kind, tok, tok.vocab_size, cache, names=names,
                                            n_joints=N_JOINTS)
            for kind, names in (("llara", NAMES), ("llarva", None),
                                ("llara_localization", None))}


class Teacher:
    """Argmax = the next token of `target` (then EOS); asserts every fed token is target's."""

    def __init__(self, target, n_vocab, eos_id, pos=0):
        self.target, self.n, self.eos, self.pos = list(target), n_vocab, eos_id, pos

    def row(self):
        x = np.zeros(self.n, np.float32)
        x[self.target[self.pos] if self.pos < len(self.target) else self.eos] = 1.0
        return x

    def extend(self, ids):
        assert list(ids) == self.target[self.pos: self.pos + len(ids)], "fed a wrong token"
        self.pos += len(ids)
        return self.row()[None]


def test_real_tokenisation_of_answers(tok):
    """Digits are single tokens ("▁" then the digits, nothing merges), and an answer keeps its
    own tokenisation inside the conversation after "ASSISTANT:"."""
    for text in answers("llara", 5) + answers("llarva", 5):
        ids = tok.encode(text)
        for i in ids:
            piece = tok.id_to_piece(i)
            assert not (any(c.isdigit() for c in piece) and len(piece) > 1), piece
        user = LlaraPrompt(instruction="Put the red block into the green pan.",
                           objects={"red block": None, "green pan": None},
                           describe=False).render()
        prompt = build_prompt("vicuna_v1", user)
        whole = tok.encode(prompt + " " + text)
        assert whole[: len(tok.encode(prompt))] == tok.encode(prompt)
        assert whole[len(tok.encode(prompt)):] == ids


@pytest.mark.parametrize("kind", ["llara", "llarva", "llara_localization"])
def test_forced_runs_follow_llama_cpp(tok, grammars, kind):
    g = grammars[kind]
    assert g.n_vocab == 32000
    passes = tokens = 0
    for text in answers(kind, 12, seed=5):
        ids = tok.encode(text)
        assert g.accepts(ids), text
        teacher = Teacher(ids, g.n_vocab, tok.eos_id)
        result = decode_constrained(teacher.extend, g, teacher.row())
        assert result.complete and result.tokens == ids, text
        assert tok.decode(result.tokens) == text
        passes, tokens = passes + result.n_forward_passes, tokens + len(ids)
    assert passes < (0.4 if kind == "llara" else 0.8) * tokens


@pytest.mark.parametrize("kind", ["llarva", "llarva_trace"])
def test_llarva_own_answers_on_the_real_vocabulary(tok, grammars, kind, tmp_path):
    """LLARVA's answers as its code writes them (tests/llarva_source.py: 7 joints + gripper,
    the pre-release trajectory) keep their own llama.cpp tokens after "ASSISTANT:", are
    accepted, and a teacher gets exactly those tokens back; they parse to the values the
    agent reads."""
    g = grammars.get(kind) or grammar_cache.grammar_for(kind, tok, tok.vocab_size, tmp_path,
                                                        n_joints=N_JOINTS)
    texts = [t for t in source_answers(seed=3) if (". The trajectory: " in t) == (kind != "llarva")]
    head = build_prompt("llava_v1", "<image>\nYou are a Franka robot using the joint control.")
    for text in texts:
        ids = tok.encode(text)
        assert tok.encode(head + " " + text)[len(tok.encode(head)):] == ids
        assert g.accepts(ids), text
        teacher = Teacher(ids, g.n_vocab, tok.eos_id)
        result = decode_constrained(teacher.extend, g, teacher.row(), max_tokens=1024)
        assert result.complete and result.tokens == ids, text
        action = parse_llarva_answer(tok.decode(result.tokens), N_JOINTS)
        assert [*action.joints, action.gripper] == Agent().parse(text)


def test_prefilled_opening_is_llama_cpp_tokens(tok, grammars):
    g = grammars["llara"]
    prefix, state = prefill_prefix(g)
    assert prefix == tok.encode("Step 1: ")[: len(prefix)] and len(prefix) >= 3
    text = answers("llara", 1, seed=6)[0]
    ids = tok.encode(text)
    teacher = Teacher(ids, g.n_vocab, tok.eos_id, pos=len(prefix))
    result = decode_constrained(teacher.extend, g, teacher.row(), state=state)
    assert prefix + result.tokens == ids


def test_masks_at_real_size(tok, grammars):
    for g in grammars.values():
        allowed = g._allowed[: g.dfa.n_states]
        assert not allowed[:, [tok.bos_id, tok.unk_id]].any()
        assert g.mask_bits(g.start()).shape == (1000,)  # 32000 / 32 words
    g = grammars["llara"]
    start = g.mask(g.start())
    assert start[tok.encode("Step")[0]] and not start[tok.encode("The")[0]]


def test_cached_grammar_outlives_the_gguf(tok, grammars, tmp_path):
    """A pickled grammar (the disk cache) keeps working when its GGUF is gone: the tokenizer
    comes back as the SPM reference, with the same forced runs."""
    copy = tmp_path / "v.gguf"
    shutil.copyfile(real_vocab_path(), copy)
    g = grammar_cache.grammar_for("llarva", GgufTokenizer(copy), 32000, None, n_joints=N_JOINTS)
    blob = pickle.dumps(g)
    assert pickle.loads(blob).vocab.encode.__self__.engine_name == "llama.cpp"
    copy.unlink()
    g2 = pickle.loads(blob)
    assert g2.vocab.encode.__self__.engine_name == "python"
    g2._forced_cache.clear()
    for text in answers("llarva", 3, seed=7):
        ids = tok.encode(text)
        teacher = Teacher(ids, 32000, tok.eos_id)
        assert decode_constrained(teacher.extend, g2, teacher.row()).tokens == ids


def test_successor_table_matches_the_byte_dfa(grammars):
    """The chunked NumPy successor table (the fast path) against running the byte DFA over
    each piece's bytes (the plain reference), on every state and 600 sampled tokens."""
    g = grammars["llara"]
    n = g.dfa.n_states
    rng = np.random.default_rng(0)
    ids = np.concatenate([rng.choice(g.vocab.size, 600, replace=False), [1, 2, 13, 29871]])
    for s in range(n):
        for t in ids.tolist():
            piece = g.vocab.token_bytes[t]
            want = -1 if not piece else g.dfa.run(piece, s)
            assert int(g._succ[s, t]) == (n if want < 0 else want), (s, t)
