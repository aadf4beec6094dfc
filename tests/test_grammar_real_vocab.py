"""The answer grammars compiled against the REAL LLaMA-2 vocabulary (32000 pieces).

The tokenizer is GgufTokenizer (llama.cpp's ids) over tests/real_vocab.py's GGUF (skipped
offline). Checked: the real tokenisation facts the grammar must follow (digits single
tokens after a lone "▁", an answer tokenised inside the conversation is its own
tokenisation), every formatted answer is accepted, a teacher model that wants the answer's
llama.cpp tokens gets exactly them back (forced runs never feed a token the tokenizer would
not write), in fewer passes; masks never allow special ids; the disk cache round-trips a
grammar (and its tokenizer) without the GGUF. Grammars compile once per session into a tmp
cache (runtime.grammar_cache). Answer names as VIMA writes them, through the runtime's views
(decoding.answer_views): the 49-byte name on both header forms, the bound from the prompt's
mentions, and names restricted to them.
"""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
from llarva_source import Agent, source_answers
from real_vocab import real_vocab_path

from llara_bench.bench_grammar_vocab import N_JOINTS, NAMES, answers
from llara_bench.bench_passes_real import DraftTeacher
from llara_edge.actions import PickPlaceAction
from llara_edge.decoding import grammar_cache
from llara_edge.decoding.answer_views import AnswerViews
from llara_edge.decoding.constrained_decode import decode_constrained, prefill_prefix
from llara_edge.decoding.token_grammar import compile_grammar
from llara_edge.errors import ConfigError
from llara_edge.formats import (
    LlaraPrompt,
    SceneRef,
    format_answer,
    parse_llara_first_step,
    parse_llarva_answer,
    policy_format,
)
from llara_edge.formats.llara import LONGEST_VIMA_NAME, NAME_FLOOR_BYTES
from llara_edge.formats.templates import build_prompt
from llara_edge.models.gguf_tokenizer import GgufTokenizer
from llara_edge.runtime.config import RuntimeConfig
from llara_edge.runtime.policy import grammar_options


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


# --- answer names as real VIMA objects write them (issue 27) -----------------------------
@pytest.fixture(scope="module")
def runtime_grammar(tok, tmp_path_factory):
    """The LLaRA grammar exactly as Policy compiles it: steps 1..max_steps, both header
    forms, generic names of up to RuntimeConfig.name_max_bytes."""
    options = grammar_options(policy_format("llara"), "llara", RuntimeConfig())
    return grammar_cache.grammar_for("llara", tok, tok.vocab_size,
                                     tmp_path_factory.getbasetemp() / "real-vocab-grammars",
                                     **options)


def _scene_task(names, k=0):
    """A VIMA scene_understanding prompt whose scene holds `names`, after k finished steps."""
    boxes = [(0.2 + 0.15 * i, 0.4, 0.1, 0.12) for i in range(len(names))]
    scene = SceneRef(tuple(zip(names, boxes, strict=True)))
    prompt = LlaraPrompt("Put the polka dot object in {scene} into the red pan.",
                         assets={"scene": scene})
    history = [PickPlaceAction((0.1, 0.1 * i), (0.5, 0.5), 0) for i in range(1, k + 1)]
    return prompt.render(history)


def _answer(name, k=0, numbered=True):
    act = PickPlaceAction((0.312, 0.617), (0.742, 0.547), 0, object_name=name)
    return format_answer([act], first_step=k + 1, first_point_spaces=2, numbered=numbered)


def _decode(tok, views, task, answer):
    """The runtime's decode of `task` (its views and forced opening, as Policy.act) with a
    model that wants `answer` (and after a token it did not want, whatever is allowed)."""
    view, opening, state = views.opening(task)
    model = DraftTeacher(tok.encode(answer), views.grammar.n_vocab, tok.eos_id, opening)
    result = decode_constrained(model.extend, view, model.first(), 256, state)
    assert result.complete
    return tok.decode(opening + result.tokens), result.n_forward_passes


def test_a_49_byte_vima_name_on_both_header_forms(tok, runtime_grammar):
    """The longest VIMA name (49 bytes; the grammar stopped at 48 before) is accepted, and a
    teacher model gets its answer back through the runtime's views under every numbering
    that admits its header form, with and without names restricted to the prompt's."""
    fmt = policy_format("llara")
    assert len(LONGEST_VIMA_NAME.encode()) == NAME_FLOOR_BYTES == 49
    old = compile_grammar("llara_pick", tok, name_max_bytes=48)
    assert not old.accepts(tok.encode(_answer(LONGEST_VIMA_NAME)))
    assert old.accepts(tok.encode(_answer(LONGEST_VIMA_NAME[:-1])))  # 48 bytes
    names = (LONGEST_VIMA_NAME, "green paisley letter G")
    for k in (0, 3):
        task = _scene_task(names, k)
        for numbered in (True, False):
            answer = _answer(LONGEST_VIMA_NAME, k, numbered)
            assert runtime_grammar.accepts(tok.encode(answer))
            for numbering in ("numbered" if numbered else "unnumbered", "either"):
                for restrict in (False, True):
                    views = AnswerViews(runtime_grammar, fmt, numbering, restrict)
                    assert views.key(task) == (
                        k + 1 if numbering != "unnumbered" else 1,
                        (49, tuple(sorted(names)) if restrict else None))
                    assert _decode(tok, views, task, answer)[0] == answer, (k, numbering)


def test_numbering_forces_the_header_where_the_checkpoint_writes_none(tok, runtime_grammar):
    """Why the default follows the checkpoint: under "numbered" an un-numbered answer
    cannot come out (its header is forced into the prefill); "either" returns it."""
    fmt = policy_format("llara")
    task, answer = _scene_task(("red block",), 2), _answer("red block", 2, numbered=False)
    forced, _ = _decode(tok, AnswerViews(runtime_grammar, fmt, "numbered"), task, answer)
    assert forced.startswith("Step 3: ") and forced != answer
    assert _decode(tok, AnswerViews(runtime_grammar, fmt, "either"), task, answer)[0] == answer


def test_the_name_bound_follows_the_prompts_mentions(tok, runtime_grammar):
    fmt = policy_format("llara")
    long = LONGEST_VIMA_NAME + " and a cup"  # 59 bytes
    views = AnswerViews(runtime_grammar, fmt, "numbered")
    cut, _ = _decode(tok, views, _scene_task(("red block",)), _answer(long))
    name = parse_llara_first_step(cut).object_name  # not mentioned: cut at the floor, closed
    assert long.startswith(name) and 40 < len(name.encode()) <= NAME_FLOOR_BYTES
    exact = "a" * 47 + " b"  # 49 bytes with a space as its 48th: still one name
    assert _decode(tok, views, _scene_task(("red block",)), _answer(exact))[0] == _answer(exact)
    spaced, _ = _decode(tok, views, _scene_task(("red block",)), _answer("a" * 48 + " b"))
    name = parse_llara_first_step(spaced).object_name  # a 49th byte " " could not end it
    assert name.startswith("a" * 48) and len(name) == 49 and not name.endswith(" ")
    assert views.key(_scene_task((long,)))[1] == (59, None)
    assert _decode(tok, views, _scene_task((long,)), _answer(long))[0] == _answer(long)
    too_long = long + " of very hot tea"  # 75 bytes > the compiled 64
    with pytest.raises(ConfigError, match="name_max_bytes"):
        views.opening(_scene_task((too_long,)))


def test_names_from_the_prompt_restrict_and_force(tok, runtime_grammar):
    fmt = policy_format("llara")
    names = ("red paisley letter M", "granite letter M", "yellow paisley letter E")
    task = _scene_task(names)
    free, restricted = (AnswerViews(runtime_grammar, fmt, "numbered", r) for r in (False, True))
    view, opening, state = restricted.opening(task)
    inner = free.opening(task)[0]
    for t in tok.encode(_answer(names[1]))[len(opening):]:  # masks only ever remove ids
        assert not (view.mask(state) & ~inner.mask(state)).any()
        state = view.step(state, t)
    for name in names:
        text, passes = _decode(tok, restricted, task, _answer(name))
        assert text == _answer(name) and passes < _decode(tok, free, task, _answer(name))[1]
    other, _ = _decode(tok, restricted, task, _answer("green and blue polka dot letter M"))
    assert parse_llara_first_step(other).object_name in names  # never a name not mentioned
