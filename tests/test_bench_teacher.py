"""The 7B-shaped bench's teacher (benchmarks/llara_bench/teacher.py): a random tiny model with
the real LLaMA-2 vocabulary writes exactly the taught answer through each runner's own hook
(the runtime Policy constrained with drafts and free greedy, HF generate, the stock
llama-cpp-python handler + GBNF), and the pass counts are the answer's: the grammar's count
(bench_passes_real.decode_passes, the pass-count benchmark's decoder) for the constrained
runtime, one pass per answer token (</s> included) for the free runners."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from real_vocab import real_vocab_path

from llara_bench.teacher import Teacher, TeacherBackend, taught
from llara_bench.vima_answers import seeded_answer, vima_episode
from llara_edge.formats import LlaraPrompt

EOS = 2
REPO = Path(__file__).resolve().parents[1]


def test_teacher_wants_the_next_target_token_then_eos_then_nothing():
    t = Teacher(EOS)
    t.start([5, 6, 7])
    assert [t.want(g) for g in ([], [5], [5, 6], [5, 6, 7])] == [5, 6, 7, EOS]
    assert t.want([5, 9]) is None and t.want([5, 6, 7, EOS]) is None
    row = np.zeros(10, np.float32)
    row[3] = 4.0
    assert int(np.argmax(t.bias([5], row))) == 6 and row[6] == 5.0 and row[3] == 4.0
    off = np.arange(10, dtype=np.float32)
    assert np.array_equal(t.bias([9], off.copy()), off)  # off target: the model's own row


class _Random:
    """A random 'model': rows drawn from a generator; records what was fed."""

    def __init__(self, vocab: int = 50):
        self.rng, self.vocab, self.n_past = np.random.default_rng(0), vocab, 0

    def prefill(self, segments):
        self.n_past += sum(len(s) for s in segments)
        return self.rng.normal(size=self.vocab).astype(np.float32)

    def extend(self, ids):
        self.n_past += len(ids)
        out = self.rng.normal(size=(len(ids), self.vocab)).astype(np.float32)
        out.flags.writeable = False  # an engine's buffer: the teacher must copy it
        return out

    def rollback(self, n):
        self.n_past -= n


def test_backend_rows_follow_the_opening_drafts_and_rollbacks():
    t = Teacher(EOS)
    t.start([10, 11, 12, 13])
    b = TeacherBackend(_Random(), t)
    # the prompt's last segment ends with the forced opening [10, 11]
    assert int(np.argmax(b.prefill([[40, 41], np.zeros((2, 4), np.float32), [42, 10, 11]]))) == 12
    rows = b.extend([12, 30, 31])  # a draft: right, wrong, (whatever)
    assert int(np.argmax(rows[0])) == 13 and b.extend1_s == []
    b.rollback(2)
    assert int(np.argmax(b.extend([13])[0])) == EOS and len(b.extend1_s) == 1
    assert b.n_past == 2 + 2 + 3 + 3 - 2 + 1  # everything else is the wrapped backend's


# ---- the four runners on a random tiny model with the real vocabulary ---------------------

def _cases() -> dict[str, str]:
    """user text -> taught answer: two prompts boxing the objects where they stand, and a
    VIMA query with history whose answer names an object of the prompt (the stock handler's
    GBNF allows only those)."""
    cases = {}
    for text in (
            LlaraPrompt("Put the red block into the green bowl.",
                        {"red block": (0.3, 0.4, 0.08, 0.1),
                         "green bowl": (0.7, 0.55, 0.2, 0.2)}).render(),
            LlaraPrompt("Rotate the blue pentagon 120 degrees.",
                        {"blue pentagon": (0.6, 0.45, 0.07, 0.1)}, paraphrase=3).render()):
        cases[text] = seeded_answer(text)
    rng = np.random.default_rng(7)
    ep = next(e for e in iter(lambda: vima_episode(rng), None)
              if e.history and e.name_in_prompt)
    cases[ep.user_text] = ep.first_line
    return cases


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from llara_export.models.shaped import ShapedConfig, write_shaped
    from llara_export.pipeline import ExportConfig, run_export

    root = tmp_path_factory.mktemp("teacher")
    cfg = ShapedConfig(llm_layers=1, clip_layers=2, hidden=128, intermediate=256, heads=4,
                       vision_hidden=64, vision_intermediate=128, vision_heads=2,
                       image_size=56, dtype="float32")
    ckpt = write_shaped(cfg, root / "ckpt", real_vocab_path())
    report = run_export(ExportConfig(  # random weights: the random-weight parity bounds
        checkpoint=ckpt, out=root / "art", clip_dir=ckpt / "clip", quants=(), parity_frames=1,
        frame_size=(64, 48), max_new_tokens=8, formats=("gguf", "onnx-vision"),
        thresholds=REPO / "export" / "llara_export" / "parity_thresholds_random.json"))
    assert report.ok, [r.failures for r in report.results]
    return ckpt, root / "art", root / "grammars"


def _runner(spec: str, tiny):
    from llara_bench.baselines import HfGenerateRunner, StockGbnfRunner
    from llara_bench.runners import PolicyRunner
    from llara_edge.runtime.config import RuntimeConfig

    ckpt, art, grammars = tiny
    if spec == "hf-generate":
        return HfGenerateRunner(ckpt, 1, 256)
    if spec == "stock-gbnf":
        return StockGbnfRunner(art / "llm-f16.gguf", art / "mmproj-f16.gguf", 1, 256)
    cfg = RuntimeConfig(variant="f16", threads=1, grammar_cache_dir=grammars,
                        constrained=spec == "policy")
    return PolicyRunner(art, cfg, spec)


@pytest.mark.parametrize("spec", ["policy", "policy+free", "hf-generate", "stock-gbnf"])
def test_every_runner_writes_the_taught_answer(tiny, spec):
    from llara_bench.bench_passes_real import decode_passes
    from llara_edge.decoding.prompt_lookup import PromptLookupConfig

    cases = _cases()
    runner = taught(_runner(spec, tiny), cases.__getitem__)
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    try:
        for text, answer in cases.items():
            rec = runner.step(frame, text)
            assert rec.text == answer and rec.target == answer and rec.action is not None
            ids = runner.encode(answer)
            if spec == "policy":
                policy = runner.inner.policy
                want = decode_passes(policy.tokenizer, policy.grammar, text, answer,
                                     PromptLookupConfig(max_draft=policy.config.draft_tokens),
                                     numbering=policy.numbering)
                assert (rec.forward_passes, rec.n_tokens) == want
                assert rec.extend1_s is not None and rec.extend1_s > 0
            else:  # one pass per answer token after the prefill's, the last one gives </s>
                assert (rec.forward_passes, rec.n_tokens) == (len(ids), len(ids) + 1)
    finally:
        runner.close()
