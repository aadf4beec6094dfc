"""kernels.step_header: one LLaRA grammar for every step number and both header forms, pinned
per control step, on the trained test tokenizer and on the REAL LLaMA-2 vocabulary.

Checked: the byte rule (`header_allows`) on hand cases; for the task texts of every VIMA-style
family (tests/test_formats_prompt.py's templates) with a history of 0..4 steps, the view of
step history+1 accepts every answer the formatter writes for it under its numbering and
rejects the others (another step number, the other form); a teacher model that ranks the
answer's own tokens first gets them back token for token (forced header included, which
goes into the prefill under "numbered"); the view's restricted masks only ever remove ids.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_corpus import train_test_tokenizer
from real_vocab import real_vocab_path
from test_formats_prompt import FAMILIES, _action, _episode, _ours
from test_grammar_real_vocab import Teacher

from llara_edge.decoding.constrained_decode import decode_constrained, prefill_prefix
from llara_edge.decoding.step_header import StepHeader, header_allows, numbering_for
from llara_edge.decoding.token_grammar import compile_grammar
from llara_edge.errors import ConfigError, ParseError
from llara_edge.formats import LlaraPrompt, format_answer, next_step_number

LAST_STEP = 12


@pytest.fixture(scope="module", params=["trained", "llama2"])
def setup(request, tmp_path_factory):
    if request.param == "trained":
        tok = train_test_tokenizer(tmp_path_factory.mktemp("tok"))
    else:
        from llara_edge.models.gguf_tokenizer import GgufTokenizer

        tok = GgufTokenizer(real_vocab_path())
    base = compile_grammar("llara", tok, first_step=1, last_step=LAST_STEP, numbered=None)
    return tok, base


def test_header_rule_on_bytes():
    assert header_allows(b" Step 3: Pick", 3, "numbered")
    assert header_allows(b" Ste", 3, "numbered") and header_allows(b" S", 3, "numbered")
    assert not header_allows(b" Step 2", 3, "numbered")
    assert not header_allows(b" Step 31", 3, "numbered")  # 31 is not 3
    assert not header_allows(b" Pick", 3, "numbered") and not header_allows(b" Sw", 3, "numbered")
    assert header_allows(b" Pick up", 3, "unnumbered") and header_allows(b" Sw", 3, "unnumbered")
    assert header_allows(b" S", 3, "unnumbered") and not header_allows(b" St", 3, "unnumbered")
    assert header_allows(b" Step 3", 3, "either") and header_allows(b" Sweep", 3, "either")
    assert not header_allows(b" Step 4", 3, "either")


def test_default_numbering_follows_the_recorded_answer_forms():
    """A checkpoint's numbering is what its training answers had (the manifest's
    answer_forms); both forms, or none recorded (a released checkpoint), admit either."""
    assert numbering_for(("numbered",)) == "numbered"
    assert numbering_for(["unnumbered"]) == "unnumbered"
    assert numbering_for(("numbered", "unnumbered")) == "either"
    assert numbering_for(None) == numbering_for(()) == "either"


def _cases(seed=0):
    """(user text, answer action, history length) for every family, history 0..4."""
    rng = np.random.default_rng(seed)
    out = []
    for family, template in FAMILIES.items():
        tool = "spatula" if family.startswith("sweep") else "suction"
        prompt = LlaraPrompt(template, tool=tool, assets=_ours(_episode(rng, template, True)))
        for k in range(5):
            history = [_action(rng, tool) for _ in range(k)]
            out.append((prompt.render(history), _action(rng, tool), k))
    return out


@pytest.mark.parametrize("numbering", ["numbered", "unnumbered", "either"])
def test_view_accepts_exactly_this_steps_answers(setup, numbering):
    tok, base = setup
    for user, action, k in _cases():
        step = next_step_number(user)
        assert step == k + 1
        view = StepHeader(base, step, numbering)
        opening, state = prefill_prefix(view)
        for numbered, first in ((True, step), (False, step), (True, step + 1)):
            ids = tok.encode(format_answer([action], first_step=first, numbered=numbered,
                                           first_point_spaces=1 + k % 2))
            want = first == step and (numbering == "either" or numbered == (
                numbering == "numbered"))
            assert view.accepts(ids) == want, (numbering, numbered, first)
            assert base.accepts(ids)  # the base grammar admits them all
            if not want:
                continue
            assert ids[: len(opening)] == opening
            teacher = Teacher(ids, base.n_vocab, tok.eos_id, len(opening))
            result = decode_constrained(teacher.extend, view, teacher.row(), state=state)
            assert result.complete and opening + result.tokens == ids
            assert result.n_forward_passes < len(ids)


def test_numbered_opening_rides_in_the_prefill(setup):
    tok, base = setup
    for step in (1, 2, 9, 12):
        opening, _ = prefill_prefix(StepHeader(base, step, "numbered"))
        assert base.vocab.text_of(opening).startswith(f" Step {step}:".encode())
        assert opening == tok.encode(f"Step {step}: Pick")[: len(opening)]


def test_masks_only_remove_ids_and_wrong_steps_are_errors(setup):
    tok, base = setup
    view = StepHeader(base, 3, "either")
    s = view.start()
    assert not (view.mask(s) & ~base.mask(s)).any()
    assert view.mask_bits(s).shape == base.mask_bits(s).shape
    state = view.advance(s, view.forced(s) or [])
    for bad in (tok.encode("Step 4: Pick")[:4], tok.encode("Step 34: Pick")[:5]):
        with pytest.raises(ParseError):
            StepHeader(base, 3, "numbered").advance(StepHeader(base, 3, "numbered").start(),
                                                     bad)
    assert state is not None
    with pytest.raises(ConfigError, match="max_steps"):
        StepHeader(base, LAST_STEP + 1, "numbered")
    with pytest.raises(ConfigError, match="numbering"):
        StepHeader(base, 1, "sometimes")
    numbered_only = compile_grammar("llara", tok, first_step=1, last_step=3)
    with pytest.raises(ConfigError, match="without un-numbered"):
        StepHeader(numbered_only, 1, "either")


def test_drafted_decoding_reproduces_answers_in_few_passes(setup):
    """The runtime's decoder with prompt-lookup drafts (whitespace aliases on) on whole D-inBC
    prompts: every answer comes back token for token (run() raises otherwise), and on the
    real vocabulary in at most a third of free greedy's passes."""
    from llara_bench.bench_passes_real import run
    from llara_edge.decoding.prompt_lookup import PromptLookupConfig

    tok, base = setup
    if not hasattr(tok, "tokenizer_image_token") or base.n_vocab < 32000:
        pytest.skip("whole-prompt episodes are measured on the real vocabulary")
    drafted = run(tok, base, 30, PromptLookupConfig(), spread=0.02)
    plain = run(tok, base, 30, None, spread=0.02)
    assert drafted["ratio"] < 1 / 3 and drafted["passes"] < plain["passes"]
