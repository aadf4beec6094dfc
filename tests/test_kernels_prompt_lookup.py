"""Prompt-lookup drafts and speculative constrained decoding.

The drafter is compared with its brute-force reference on random sequences. Speculative
decoding is checked against the plain loop on a fake LM whose logits depend on everything in
its KV cache (so a wrong rollback changes the answer): the tokens must be identical, with or
without useful drafts, and a prompt that holds the answer's box must save passes."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_corpus import random_action, train_test_tokenizer

from llara_edge.decoding.constrained_decode import Lookahead, decode_constrained, prefill_prefix
from llara_edge.decoding.prompt_lookup import (
    PromptLookup,
    PromptLookupConfig,
    reference_lookup,
    whitespace_aliases,
)
from llara_edge.decoding.token_grammar import compile_grammar
from llara_edge.decoding.token_vocab import TokenVocab
from llara_edge.errors import ConfigError
from llara_edge.formats import format_answer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return train_test_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def grammar(tok):
    return compile_grammar("llara", TokenVocab.from_tokenizer(tok))


@pytest.mark.parametrize("seed", range(5))
def test_lookup_matches_the_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    top = int(rng.integers(1, 9))
    cfg = PromptLookupConfig(max_draft=top, ngram_max=4, ngram_min=2,
                             miss_draft=int(rng.integers(1, top + 3)))
    source = rng.integers(0, 6, size=200).tolist()  # small alphabet: many repeated n-grams
    aliases = {5: 4} if seed % 2 else None  # odd seeds: 5 is looked up as 4 (cf. "▁▁")
    fast, cursor = PromptLookup(source, cfg, aliases), 0
    answer: list[int] = []
    drafted = 0
    for _ in range(60):
        answer.append(int(rng.integers(0, 6)))
        want, cursor = reference_lookup(source, answer, cursor, cfg, fast.limit, aliases)
        got = fast(answer)
        assert got == want
        drafted += bool(got)
        if got:  # the decoder's report: a random accepted count
            fast.feedback(len(got), int(rng.integers(0, len(got) + 1)))
    assert drafted > 5


def test_whitespace_aliases_let_two_spaces_match_one():
    pieces = (None, b" ", b"  ", b"   ", b",", b"0", b".", b"6", b"1", b" \n")
    aliases = whitespace_aliases(pieces)
    assert aliases == {2: 1, 3: 1}
    assert whitespace_aliases((b" ", b"a", b"  ", b" ")) == {2: 0, 3: 0}
    prompt = [4, 1, 5, 6, 6, 1, 7]  # ", 0.61"... as the box writes it
    assert PromptLookup(prompt, PromptLookupConfig(ngram_min=2), aliases)([4, 2]) == [5, 6, 6, 1, 7]
    assert PromptLookup(prompt, PromptLookupConfig(ngram_min=2))([4, 2]) == []
    assert whitespace_aliases((b"a", b"  ")) == {}  # one space piece: nothing to alias


def test_lookup_prefers_the_span_after_the_previous_draft():
    source = [9, 1, 2, 3, 4, 8, 9, 1, 2, 3, 6]  # "9 1 2 3" twice: object box, then zone box
    look = PromptLookup(source, PromptLookupConfig(max_draft=2, ngram_max=3))
    assert look([9, 1, 2]) == [3]  # both spans follow: only what they share
    assert look([9, 1, 2]) == [3, 6]  # the first span was drafted already
    assert look([7, 7]) == []
    with pytest.raises(ConfigError):
        PromptLookupConfig(ngram_min=3, ngram_max=2)
    with pytest.raises(ConfigError):
        PromptLookupConfig(max_draft=4, miss_draft=0)


def test_ambiguous_names_draft_nothing_until_the_model_picks_one():
    source = [5, 10, 11, 6, 1, 2, 7, 5, 20, 21, 6, 3, 4, 7]  # <p> red block </p> ... <p> blue
    look = PromptLookup(source, PromptLookupConfig(max_draft=8, ngram_max=2, ngram_min=1))
    assert look([0, 5]) == []  # "<p>": two names follow
    assert look([0, 5, 20]) == [21, 6, 3, 4, 7]  # the model chose "blue": its box follows


def test_a_rejected_draft_shortens_the_next_until_one_is_accepted():
    source = list(range(100))
    look = PromptLookup(source, PromptLookupConfig(max_draft=10, miss_draft=3))
    assert len(look([0, 1])) == 10
    look.feedback(10, 2)
    assert look([20, 21]) == [22, 23, 24]
    look.feedback(3, 3)
    assert len(look([40, 41])) == 10


class CacheLM:
    """Fake LM: each row is seeded by the whole cached history (so rollbacks matter) and
    favours `target` while the history follows it, by `margin` (small margins: the random
    part sometimes wins and the answer leaves the target)."""

    def __init__(self, target: list[int], vocab: int, margin: float, salt: int):
        self.target, self.vocab, self.margin, self.salt = target, vocab, margin, salt
        self.cache: list[int] = []
        self.passes = 0

    def row(self) -> np.ndarray:
        h = self.cache
        rng = np.random.default_rng([self.salt, len(h), *h])
        out = rng.normal(size=self.vocab).astype(np.float32)
        if h == self.target[:len(h)] and len(h) < len(self.target):
            out[self.target[len(h)]] += self.margin
        return out

    def extend(self, ids) -> np.ndarray:
        rows = []
        for t in ids:
            self.cache.append(int(t))
            rows.append(self.row())
        return np.stack(rows)

    def rollback(self, n: int) -> None:
        assert 0 < n <= len(self.cache)
        del self.cache[len(self.cache) - n:]


def _case(tok, seed: int):
    rng = np.random.default_rng(seed)
    action = random_action(rng, tools=("suction",))
    answer = tok.encode(format_answer([action]))
    (px, py), (qx, qy) = action.pick, action.place
    prompt = (f"Put the <p>{action.object_name}</p> at <b>({px:.3f}, {py:.3f}), {{0.061, 0.094}}"
              f"</b> into the <p>green zone</p> at <b>({qx:.3f}, {qy:.3f}), {{0.2, 0.2}}</b>.")
    return answer, tok.encode(prompt)


@pytest.mark.parametrize("margin", [30.0, 3.0, 2.0])
def test_speculative_decode_gives_the_plain_tokens(tok, grammar, margin):
    opening, state0 = prefill_prefix(grammar)
    saved = []
    for seed in range(12):
        answer, prompt = _case(tok, seed)
        assert answer[:len(opening)] == opening
        target = answer[len(opening):]
        plain_lm = CacheLM(target, tok.vocab_size, margin, seed)
        plain = decode_constrained(plain_lm.extend, grammar, plain_lm.row(), state=state0)
        spec_lm = CacheLM(target, tok.vocab_size, margin, seed)
        look = PromptLookup(prompt)
        ahead = Lookahead(lambda t, look=look: look([*opening, *t]), spec_lm.rollback,
                          look.feedback)
        spec = decode_constrained(spec_lm.extend, grammar, spec_lm.row(), state=state0,
                                  lookahead=ahead)
        assert spec.tokens == plain.tokens and spec.complete == plain.complete
        if margin > 10:
            assert plain.tokens == target
            saved.append(plain.n_forward_passes - spec.n_forward_passes)
    if saved:  # the box digits and the name come from the prompt: several passes saved each
        assert min(saved) >= 5, saved


def test_drafts_the_grammar_forbids_cost_nothing(tok, grammar):
    opening, state0 = prefill_prefix(grammar)
    answer, _ = _case(tok, 3)
    target = answer[len(opening):]
    lm = CacheLM(target, tok.vocab_size, 30.0, 0)
    junk = tok.encode("<scene> {1, 2} 99999 </scene>")
    look = PromptLookup(junk)
    result = decode_constrained(lm.extend, grammar, lm.row(), state=state0,
                                lookahead=Lookahead(lambda t: look([*opening, *t]), lm.rollback))
    lm2 = CacheLM(target, tok.vocab_size, 30.0, 0)
    plain = decode_constrained(lm2.extend, grammar, lm2.row(), state=state0)
    assert result == plain
