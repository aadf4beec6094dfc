"""Constrained jump-forward decoding on a tiny random LLaVA policy with the torch `extend`.

The random model alone never writes a LLaRA step, so it is given a 'training': an n-gram
prior over the canonical tokenization of formatted answers (backing off to shorter contexts)
added to its logits. The frame then decides the digits, names and spacing through the real
model's logits, and where the prior is ambiguous the free answer goes wrong, so both cases
occur. Checked per frame: whenever free greedy's first step parses, the constrained decoder
returns the SAME action; when it does not, the constrained decoder still returns a
well-formed action; forward passes are counted for both."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch
from kernel_corpus import NAMES, random_action, train_test_tokenizer

from llara_edge.decoding.constrained_decode import decode_constrained, decode_greedy, last_row
from llara_edge.decoding.token_grammar import compile_grammar
from llara_edge.errors import ParseError
from llara_edge.formats import LlaraPrompt, format_answer, parse_llara_first_step
from llara_edge.models.preprocess import PreprocessConfig
from llara_export.models.llava import IMAGE_TOKEN_INDEX, TinyConfig, build_tiny
from llara_export.torch_ref import TorchPolicy, TorchReferenceBackend

TINY = TinyConfig(vocab_size=512, image_size=56, vision_layers=2, max_positions=1024)
CONTEXT = 24


class NgramPrior:
    """Next-token sets seen after the last 1..CONTEXT tokens of canonical answers, with every
    digit token abstracted to one symbol in the contexts (so the structure is learnt, the
    digits are left to the model, and some digit-level slips such as "1.234" can happen)."""

    def __init__(self, sequences, tok):
        self.vocab_size = tok.vocab_size
        self.digits = {i for i in range(tok.vocab_size) if tok.id_to_piece(i) in "0123456789"}
        self.table: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for seq in sequences:
            keys = self._keys(seq)
            for i, t in enumerate(seq):
                for k in range(1, CONTEXT + 1):
                    self.table[tuple(keys[CONTEXT + i - k : CONTEXT + i])].add(t)

    def _keys(self, history) -> list[int]:
        return [-1] * CONTEXT + [-2 if t in self.digits else t for t in history]

    def bias(self, history) -> np.ndarray:
        keys = self._keys(history[-CONTEXT:])
        out = np.zeros(self.vocab_size, dtype=np.float32)
        for k in range(CONTEXT, 0, -1):
            nxt = self.table.get(tuple(keys[-k:]))
            if nxt:
                out[list(nxt)] = 1.0
                break
        return out


class PriorModel:
    """The torch reference backend + strength * prior, behind an `extend` function."""

    def __init__(self, backend, prior, strength):
        self.backend, self.prior, self.strength = backend, prior, strength
        self.history: list[int] = []
        self.n_prompt = 0

    def prefill(self, frame, prompt_ids) -> np.ndarray:
        self.backend.reset()
        cut = prompt_ids.index(IMAGE_TOKEN_INDEX)
        segments = [prompt_ids[:cut], self.backend.encode_image(frame), prompt_ids[cut + 1 :]]
        logits = last_row(self.backend.prefill(segments))
        self.n_prompt, self.history = self.backend.n_past, []
        return logits + self.strength * self.prior.bias(self.history)

    def restart(self) -> None:
        self.backend.rollback(self.backend.n_past - self.n_prompt)
        self.history = []

    def extend(self, ids) -> np.ndarray:
        rows = self.backend.extend(list(ids)).float().numpy().copy()
        for i, t in enumerate(ids):
            self.history.append(int(t))
            rows[i] += self.strength * self.prior.bias(self.history)
        return rows


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only add contention on a busy machine
    tok = train_test_tokenizer(tmp_path_factory.mktemp("tok"))
    backend = TorchReferenceBackend(build_tiny(TINY, seed=3), tok,
                                    PreprocessConfig(image_size=TINY.image_size))
    rng = np.random.default_rng(0)
    answers = [format_answer([random_action(rng)], first_point_spaces=1 + i % 2)
               for i in range(400)]
    prior = NgramPrior([[*tok.encode(a), tok.eos_id] for a in answers], tok)
    yield tok, backend, prior, TorchPolicy(backend)
    torch.set_num_threads(threads)


def _episodes(policy, n, seed):
    """(frame, prompt ids, object names): random frames and D-inBC prompts (names, boxes)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        a, b = (str(x) for x in rng.choice(NAMES, 2, replace=False))
        boxes = {a: tuple(rng.random(4).round(3)), b: tuple(rng.random(4).round(3))}
        prompt = LlaraPrompt(f"Put the {a} into the {b}.", boxes)
        frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        yield frame, policy.prompt_ids(prompt.render()), (a, b)


def _parse(tok, tokens):
    try:
        return parse_llara_first_step(tok.decode(tokens))
    except ParseError:
        return None


def test_constrained_equals_free_when_free_is_well_formed(setup):
    tok, backend, prior, policy = setup
    grammar = compile_grammar("llara", tok)
    model = PriorModel(backend, prior, strength=3.0)
    same = malformed = 0
    free_passes, cons_passes = [], []
    for frame, prompt_ids, _ in _episodes(policy, 16, seed=1):
        first = model.prefill(frame, prompt_ids)
        free = decode_greedy(model.extend, first, tok.eos_id, max_tokens=90)
        model.restart()
        cons = decode_constrained(model.extend, grammar, first)
        want, got = _parse(tok, free.tokens), _parse(tok, cons.tokens)
        assert cons.complete and got is not None, tok.decode(cons.tokens)
        if want is None:
            malformed += 1
            continue
        assert got == want, (tok.decode(free.tokens), tok.decode(cons.tokens))
        same += 1
        free_passes.append(free.n_forward_passes)
        cons_passes.append(cons.n_forward_passes)
    assert same >= 3 and malformed >= 1, (same, malformed)  # both cases really occurred
    assert sum(cons_passes) <= 0.45 * sum(free_passes), (cons_passes, free_passes)


def test_random_model_still_gives_well_formed_actions_with_prompt_names(setup):
    tok, backend, prior, policy = setup
    model = PriorModel(backend, prior, strength=0.0)  # the bare random model
    for frame, prompt_ids, names in _episodes(policy, 4, seed=2):
        grammar = compile_grammar("llara_pick", tok, names=names)
        first = model.prefill(frame, prompt_ids)
        free = decode_greedy(model.extend, first, tok.eos_id, max_tokens=40)
        assert _parse(tok, free.tokens) is None  # the random model writes no action itself
        model.restart()
        cons = decode_constrained(model.extend, grammar, first)
        action = _parse(tok, cons.tokens)
        assert action is not None and action.object_name in names and action.tool == "suction"
        assert cons.n_forward_passes < len(cons.tokens)  # forced runs still skip passes
