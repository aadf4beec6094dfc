"""Answer grammars -> byte DFA -> token automaton over a real (trained) sentencepiece vocabulary.

Checks: number languages exactly equal their ranges; every string the formatters write is
accepted (bytes and canonical tokens) and near-misses are not; forced runs are exactly the
tokenizer's own tokenization of the answer (a teacher model that always wants the canonical
next token gets it back through decode_constrained, in fewer passes); decoding under random
logits always yields a parseable answer inside the ranges."""

from __future__ import annotations

import re

import numpy as np
import pytest
from kernel_corpus import N_JOINTS, NAMES, random_action, random_joint_action, train_test_tokenizer
from llarva_source import Agent, source_answers

from llara_edge.decoding.answer_grammars import (
    GrammarSpec,
    answer_node,
    float_repr,
    int_range,
    uint_range,
    unit_decimal,
    unit_float_repr,
)
from llara_edge.decoding.bytefsm import compile_dfa
from llara_edge.decoding.constrained_decode import decode_constrained, prefill_prefix
from llara_edge.decoding.token_grammar import compile_grammar
from llara_edge.decoding.token_vocab import TokenVocab
from llara_edge.errors import ConfigError, ParseError
from llara_edge.formats import (
    format_answer,
    format_llarva_answer,
    localization_answer,
    parse_detection,
    parse_llara_first_step,
    parse_llarva_answer,
    parse_localization,
)
from llara_edge.formats.llara import format_scene


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return train_test_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def vocab(tok):
    return TokenVocab.from_tokenizer(tok)


def _language(node, candidates):
    dfa = compile_dfa(node)
    return {c for c in candidates if dfa.match(c.encode())}


def test_integer_ranges_are_exact():
    candidates = [str(i) for i in range(-1200, 1200)] + ["-0", "00", "01", "-01", "", "-", "+1"]
    assert _language(int_range(-359, 359), candidates) == {str(i) for i in range(-359, 360)}
    for lo, hi in [(0, 0), (0, 9), (7, 10), (17, 999), (99, 100), (123, 1187)]:
        assert _language(uint_range(lo, hi), candidates) == {str(i) for i in range(lo, hi + 1)}


def test_unit_decimal_is_the_3_decimal_unit_interval():
    cands = [f"{i / 1000:.3f}" for i in range(-50, 1100)] + ["0.31", "0.3120", ".312", "00.312"]
    assert _language(unit_decimal(3), cands) == {f"{i / 1000:.3f}" for i in range(1001)}


def test_float_repr_matches_python_repr_of_4_decimal_values():
    rng = np.random.default_rng(0)
    values = rng.uniform(-9.4, 9.4, 3000)  # rounded, still |v| < 10
    digits = rng.integers(0, 5, 3000)
    good = {repr(round(float(v), int(d))) for v, d in zip(values, digits, strict=True)}
    good |= {"-0.0", "0.0", "1.0"}
    bad = {"1.10", "01.5", "1.", ".5", "10.0", "-", "1.23456", "1e-05", "+1.0", "-00.1"}
    assert _language(float_repr(1, 4), good | bad) == good
    grip = {"0.0", "1.0", "0.5", "0.1234", "1.5", "-0.5", "1.01", "0.50"}
    assert _language(unit_float_repr(4), grip) == {"0.0", "1.0", "0.5", "0.1234"}


def test_llarva_number_language_is_every_value_np_round_writes():
    """float_repr(1, 4) is exactly {str(np.round(v, 4).tolist())} for |v| < 10: all 199,999
    values k / 10**4 plus "-0.0" (a small negative), and no other spelling of them."""
    dfa = compile_dfa(float_repr(1, 4))
    values = np.round(np.arange(-99999, 100000) / 1e4, 4).tolist()
    assert all(dfa.match(repr(v).encode()) for v in values)
    assert dfa.match(b"-0.0")
    assert not any(dfa.match(t.encode()) for t in (
        "0.10", "-0", "0", "1e-05", "0.00001", "0.0000", "10.0", "-00.5", "+1.0", "1.", ".5"))


def _answers(kind, rng, n):
    """(text, parse) pairs of answers the formatters write for grammar `kind`."""
    out = []
    for i in range(n):
        if kind == "llara":
            a = random_action(rng)
            text = format_answer([a], first_point_spaces=1 + i % 2)
            out.append((text, lambda t, a=a: parse_llara_first_step(t) == a))
        elif kind in ("llarva", "llarva_trace"):
            j = random_joint_action(rng, kind == "llarva_trace")
            text = format_llarva_answer(j, N_JOINTS)
            out.append((text, lambda t, j=j: parse_llarva_answer(t, N_JOINTS) == j))
        elif kind == "llara_detection":
            objs = [(random_action(rng).object_name, tuple(rng.random(4).round(3)))
                    for _ in range(int(rng.integers(1, 4)))]
            out.append((format_scene(objs), lambda t: bool(parse_detection(t))))
        else:
            name = random_action(rng).object_name
            text = localization_answer(name, tuple(rng.random(4).round(3)))
            out.append((text, lambda t: bool(parse_localization(t))))
    return out


class Teacher:
    """A 'model' whose argmax is always the next token of `target` (then EOS)."""

    def __init__(self, target, vocab_size, eos_id):
        self.target, self.n, self.eos, self.pos, self.calls = list(target), vocab_size, eos_id, 0, 0

    def row(self):
        logits = np.zeros(self.n, dtype=np.float32)
        nxt = self.target[self.pos] if self.pos < len(self.target) else self.eos
        logits[nxt] = 1.0
        return logits

    def extend(self, ids):
        assert list(ids) == self.target[self.pos : self.pos + len(ids)], "fed a wrong token"
        self.pos += len(ids)
        self.calls += 1
        return self.row()[None]


KINDS = ["llara", "llarva", "llarva_trace", "llara_detection", "llara_localization"]


@pytest.mark.parametrize("kind", KINDS)
def test_formatted_answers_are_accepted_and_forced_runs_are_canonical(tok, vocab, kind):
    grammar = compile_grammar(kind, vocab, n_joints=N_JOINTS)
    rng = np.random.default_rng(KINDS.index(kind))
    total_tokens = total_passes = 0
    for text, check in _answers(kind, rng, 25):
        assert grammar.dfa.match((" " + text).encode()), text
        ids = tok.encode(text)
        assert grammar.accepts(ids), text
        teacher = Teacher(ids, tok.vocab_size, tok.eos_id)
        result = decode_constrained(teacher.extend, grammar, teacher.row())
        assert result.complete and result.tokens == ids, text
        assert check(tok.decode(result.tokens))
        total_tokens += len(ids)
        total_passes += result.n_forward_passes
    # number-heavy LLARVA answers save less than LLaRA's text-heavy steps
    assert total_passes < (0.45 if kind == "llara" else 0.85) * total_tokens


@pytest.mark.parametrize("kind", ["llarva", "llarva_trace"])
def test_llarva_own_answers_are_accepted_and_near_misses_are_not(tok, vocab, kind):
    """The answers LLARVA's code writes (tests/llarva_source.py: 7 Franka joints + gripper,
    "0.0" / "-0.0" / 4-decimal values; the pre-release trajectory, "[]" and 30+ points
    included) are this grammar's language, teacher-forced to their own tokens; the agent and
    our parser read the same values. Near misses: other counts, number forms, the old
    trace-first layout."""
    grammar = compile_grammar(kind, vocab, n_joints=7)
    texts = [t for t in source_answers() if (". The trajectory: " in t) == (kind != "llarva")]
    assert len(texts) >= 10
    for text in texts:
        assert grammar.dfa.match((" " + text).encode()), text
        ids = tok.encode(text)
        teacher = Teacher(ids, tok.vocab_size, tok.eos_id)
        result = decode_constrained(teacher.extend, grammar, teacher.row(), max_tokens=1024)
        assert result.complete and result.tokens == ids, text
        action = parse_llarva_answer(tok.decode(result.tokens), 7)
        assert [*action.joints, action.gripper] == Agent().parse(text)
    good = texts[0]
    values = good[good.index("[") + 1 : good.index("]")].split(", ")
    misses = [", ".join(values[:7]), ", ".join([*values, "0.0"]), ", ".join(["0.10", *values[1:]]),
              ", ".join(["1e-05", *values[1:]]), ", ".join([*values[:7], "-0.0"]),
              ",".join(values)]
    for miss in misses:
        text = good.replace(", ".join(values), miss, 1)
        assert not grammar.dfa.match((" " + text).encode()), miss
    assert not grammar.dfa.match((" " + good + ".").encode())
    if kind == "llarva_trace":
        old = "The 2-D visual trace: [[12, 30]] " + good.split(". The trajectory: ")[0]
        assert not grammar.dfa.match((" " + old).encode())
        bounded = compile_dfa(answer_node(GrammarSpec("llarva_trace", n_joints=7,
                                                      trace_points=(1, 2))))
        head = " " + good.split(". The trajectory: ")[0] + ". The trajectory: "
        assert bounded.match((head + "[[1, 2], [3, 4]]").encode())
        assert not bounded.match((head + "[[1, 2], [3, 4], [5, 6]]").encode())
        assert not bounded.match((head + "[]").encode())


def test_forced_opening_can_ride_in_the_prefill(tok, vocab):
    grammar = compile_grammar("llara_pick", vocab, names=("red block", "green pan"))
    prefix, state = prefill_prefix(grammar)
    assert tok.decode(prefix) == "Step 1: Pick up the <p>"
    action = random_action(np.random.default_rng(9), names=("green pan",), tools=("suction",))
    ids = tok.encode(format_answer([action]))
    teacher = Teacher(ids, tok.vocab_size, tok.eos_id)
    teacher.pos = len(prefix)  # the prompt prefill already holds the opening
    result = decode_constrained(teacher.extend, grammar, teacher.row(), state=state)
    assert prefix + result.tokens == ids and result.complete


def test_near_misses_are_rejected(tok, vocab):
    grammar = compile_grammar("llara", vocab, names=("red block", "green pan"))
    good = format_answer([random_action(np.random.default_rng(1), names=("red block",))])
    assert grammar.dfa.match((" " + good).encode())
    for old, new in [("red block", "blue block"), ("Step 1", "Step 2"), ("</b>.", "</b>")]:
        assert not grammar.dfa.match((" " + good.replace(old, new)).encode()), new
    bad_numbers = ["1.500", "0.31", "-0.100"]
    head = "Step 1: Pick up the <p>red block</p> at <b>("
    for x in bad_numbers:
        text = f" {head}{x}, 0.500)</b>, rotate <r>[0]</r> degrees, and drop it at <b>(0.1, 0.2)"
        assert not grammar.dfa.match(text.encode())
    for rot in ("360", "-0", "007", "-360"):
        text = good.replace(good[good.index("[") + 1 : good.index("]")], rot)
        assert not grammar.dfa.match((" " + text).encode()), rot
    state = grammar.start()
    state = grammar.advance(state, grammar.forced(state))
    with pytest.raises(ParseError, match="not allowed"):
        grammar.step(state, int(np.flatnonzero(~grammar.mask(state))[3]))


@pytest.mark.parametrize("kind", KINDS)
def test_random_logits_always_give_a_parseable_answer_in_range(vocab, tok, kind):
    names = NAMES[:3]
    grammar = compile_grammar(kind, vocab, names=names, n_joints=N_JOINTS, n_vocab=vocab.size + 5)
    rng = np.random.default_rng(7)
    parse = {
        "llara": parse_llara_first_step,
        "llarva": lambda t: parse_llarva_answer(t, N_JOINTS),
        "llarva_trace": lambda t: parse_llarva_answer(t, N_JOINTS),
        "llara_detection": parse_detection,
        "llara_localization": parse_localization,
    }[kind]
    for _ in range(15):
        scale = float(rng.choice([0.1, 3.0]))

        def extend(ids, scale=scale):
            return rng.normal(scale=scale, size=(len(ids), grammar.n_vocab)).astype(np.float32)

        result = decode_constrained(extend, grammar, extend([0])[0], max_tokens=512)
        assert result.complete
        assert not any(t >= vocab.size or t == tok.eos_id for t in result.tokens)
        text = tok.decode(result.tokens)
        action = parse(text)
        if kind == "llara":
            assert action.object_name in names
        if kind.startswith("llarva"):
            assert all(abs(v) < 10 for v in action.joints) and 0 <= action.gripper <= 1


def test_masks_never_allow_special_or_padded_ids(vocab, tok):
    grammar = compile_grammar("llara", vocab, n_vocab=vocab.size + 8)
    allowed = grammar._allowed[: grammar.dfa.n_states]
    assert allowed.shape[1] == vocab.size + 8 and not allowed[:, vocab.size :].any()
    assert not allowed[:, [tok.bos_id, tok.unk_id, tok.eos_id]].any()  # the answer ends by itself
    assert grammar.mask_bits(grammar.start()).dtype == np.uint32


def test_bad_specs_are_config_errors(vocab):
    with pytest.raises(ConfigError, match="unknown grammar kind"):
        compile_grammar("yaml", vocab)
    with pytest.raises(ConfigError):
        compile_grammar("llara", vocab, names=("bad <name>",))
    with pytest.raises(ConfigError):
        GrammarSpec(first_point_spaces=(3,))
    with pytest.raises(ConfigError):
        GrammarSpec(kind="llarva_trace", trace_points=(2, 1))
    assert compile_dfa(answer_node(GrammarSpec(kind="llara_sweep"))).n_states > 10


@pytest.mark.parametrize("kind", ["llara", "llara_detection"])
def test_object_name_views_under_random_logits(vocab, tok, kind):
    """decoding.object_names over generic names: under random logits every name stays within
    the bound (never a dead end: the answer always completes and parses), and with names
    restricted it is always one of them; the view only ever removes ids."""
    from llara_edge.decoding.object_names import ObjectNames

    grammar = compile_grammar(kind, vocab, n_vocab=vocab.size + 5)
    parse = parse_llara_first_step if kind == "llara" else parse_detection
    rng = np.random.default_rng(11)
    for bound, names in ((12, None), (49, NAMES[:3]), (49, NAMES[5:6])):
        view = ObjectNames(grammar, bound, names)
        for _ in range(12):
            scale = float(rng.choice([0.1, 3.0]))

            def extend(ids, scale=scale, view=view):
                rows = rng.normal(scale=scale, size=(len(ids), grammar.n_vocab))
                return rows.astype(np.float32)

            state, tokens = view.start(), []
            while not view.done(state):  # masks checked along the way, as the decoder walks
                assert not (view.mask(state) & ~grammar.mask(state)).any()
                run = view.forced(state)
                if not run:
                    run = [int(np.flatnonzero(view.mask(state))[rng.integers(
                        view.mask(state).sum())])]
                state = view.advance(state, run)
                tokens += run
            assert view.accepts(tokens) and grammar.accepts(tokens)
            result = decode_constrained(extend, view, extend([0])[0], max_tokens=600)
            assert result.complete
            allowed = None if names is None else {n.encode() for n in names}
            for ids in (tokens, result.tokens):
                parse(tok.decode(ids))
                raw = vocab.text_of(ids)  # the bound is on bytes (random pieces: any UTF-8)
                for name in re.findall(rb"<p>([^<]*)</p>", raw):
                    assert len(name) <= bound and (allowed is None or name in allowed), raw
    with pytest.raises(ConfigError, match="name_max_bytes"):
        ObjectNames(grammar, 65)
    with pytest.raises(ConfigError, match="name_max_bytes"):  # a name the grammar cannot write
        ObjectNames(grammar, 12, ("x" * 65,))
    with pytest.raises(ConfigError, match="at least one name"):
        ObjectNames(grammar, 49, ())
