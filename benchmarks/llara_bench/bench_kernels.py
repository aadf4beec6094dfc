"""Kernel benchmarks, side by side in one process (ratios; absolute times are noisy).

    python -m llara_bench.bench_kernels [--repeats 5] [--answers 40] [--skip-projector]

1. Mask cost per token: our token automaton (state -> packed mask lookup + step) against
   xgrammar (fill_next_token_bitmask + accept_token) and llguidance when importable, on the
   same vocabulary and an equivalent LLaRA-step grammar (regex with the prompt's names),
   driven by the canonical tokens of random answers. Two vocabularies: a sentencepiece model
   trained on the format corpus, and the same padded to 32000 pieces with random words
   (LLaMA's vocabulary size; padding only adds pieces the grammar must reject).
2. Forward passes per LLaRA action: decode_constrained driven by a model that always wants
   the canonical next token vs free greedy (one pass per token until EOS).
3. Fused projector vs the unfused path at LLaVA-1.5 size (576 x 1024 -> 4096 -> 4096, fp32):
   BLAS floor (the two GEMMs alone), fused (projector.project), unfused NumPy (a temporary per
   op), torch nn.Sequential when torch is installed; medians of `repeats`.
Prints a table, then ONE JSON line with every number (last line of stdout).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

from llara_edge.actions import PickPlaceAction
from llara_edge.decoding.constrained_decode import decode_constrained, prefill_prefix
from llara_edge.decoding.token_grammar import compile_grammar
from llara_edge.decoding.token_vocab import TokenVocab
from llara_edge.formats import format_answer, format_llarva_answer
from llara_kernels.masked_argmax import masked_argmax
from llara_kernels.projector import ProjectorWeights, ProjectorWorkspace, project

NAMES = ("red block", "green pan", "blue bowl", "yellow hexagon")
PADDED_VOCAB = 32000


def _action(rng: np.random.Generator) -> PickPlaceAction:
    def r() -> float:
        return round(float(rng.random()), 3)

    return PickPlaceAction((r(), r()), (r(), r()), int(rng.integers(-359, 360)),
                           tool=str(rng.choice(["suction", "spatula"])),
                           object_name=str(rng.choice(NAMES)))


def _tokenizer(out_dir: str):
    from llara_edge.actions import JointStepAction
    from llara_export.training.tokenizer import TokenizerConfig, fixed_texts, train_tokenizer

    rng = np.random.default_rng(0)
    texts = [format_answer([_action(rng)], first_point_spaces=1 + i % 2) for i in range(400)]
    texts += [format_llarva_answer(JointStepAction(tuple(rng.normal(size=7).round(4))), 7)
              for _ in range(100)]
    return train_tokenizer(texts + fixed_texts(), out_dir, TokenizerConfig(vocab_size=1024))


def _padded(vocab: TokenVocab, size: int) -> TokenVocab:
    rng = np.random.default_rng(1)
    seen = {b for b in vocab.token_bytes if b}
    extra: list[bytes] = []
    letters = np.array(list(b"abcdefghijklmnopqrstuvwxyz"))
    while len(vocab.token_bytes) + len(extra) < size:
        word = bytes(rng.choice(letters, int(rng.integers(2, 11))).tolist())
        word = b" " + word if rng.random() < 0.5 else word
        if word not in seen:
            seen.add(word)
            extra.append(word)
    return TokenVocab((*vocab.token_bytes, *extra), vocab.eos_id, vocab.encode,
                      vocab.dummy_prefix)


def _regex() -> str:
    """The LLaRA step with NAMES as a regex (xgrammar / llguidance syntax)."""
    coord = r"(0\.[0-9]{3}|1\.000)"
    rot = r"(0|-?[1-9][0-9]?|-?[12][0-9]{2}|-?3[0-5][0-9])"
    name = "(" + "|".join(NAMES) + ")"
    body = (rf" the <p>{name}</p> at <b>\({coord}, {{1,2}}{coord}\)</b>, rotate <r>\[{rot}\]"
            rf"</r> degrees, and ")
    tail = rf" at <b>\({coord}, {coord}\)</b>\."
    return rf" Step 1: (Pick up{body}drop it{tail}|Sweep{body}stop{tail})"


def _time_per_token(run: Callable[[list[int]], None], answers: list[list[int]]) -> float:
    """CPU microseconds per token of run(tokens) over all answers (median of 3 sweeps).

    Process CPU time, not wall time: both sides are single-threaded, and on a shared machine
    wall time mostly measures the other processes."""
    n = sum(len(a) for a in answers)
    sweeps = []
    for _ in range(3):
        t0 = time.process_time()
        for ids in answers:
            run(ids)
        sweeps.append((time.process_time() - t0) / n * 1e6)
    return statistics.median(sweeps)


def _ours(vocab: TokenVocab, answers: list[list[int]]) -> dict:
    t0 = time.process_time()
    g = compile_grammar("llara", vocab, names=NAMES)
    compile_s = time.process_time() - t0

    def run(ids: list[int]) -> None:
        state = g.start()
        for t in ids:
            g.mask_bits(state)
            state = g.step(state, t)

    logits = np.random.default_rng(2).normal(size=vocab.size).astype(np.float32)

    def run_argmax(ids: list[int]) -> None:  # mask + numba masked argmax + step
        state = g.start()
        for t in ids:
            masked_argmax(logits, g.mask_bits(state))
            state = g.step(state, t)

    run_argmax(answers[0])
    return {"compile_s": compile_s, "mask_us": _time_per_token(run, answers),
            "mask_argmax_us": _time_per_token(run_argmax, answers)}


def _xgrammar(vocab: TokenVocab, answers: list[list[int]]) -> dict:
    try:
        import xgrammar as xgr
    except ImportError as err:
        return {"error": f"not installed: {err}"}
    encoded = [b or b"" for b in vocab.token_bytes]
    info = xgr.TokenizerInfo(encoded, xgr.VocabType.RAW, vocab_size=vocab.size,
                             stop_token_ids=[vocab.eos_id])
    t0 = time.process_time()
    compiled = xgr.GrammarCompiler(info).compile_regex(_regex())
    compile_s = time.process_time() - t0
    bitmask = xgr.allocate_token_bitmask(1, vocab.size)

    def run(ids: list[int]) -> None:
        matcher = xgr.GrammarMatcher(compiled)
        for t in ids:
            matcher.fill_next_token_bitmask(bitmask)
            if not matcher.accept_token(t):
                raise RuntimeError(f"xgrammar rejected token {t}")

    return {"compile_s": compile_s, "mask_us": _time_per_token(run, answers)}


def bench_masks(tok, n_answers: int) -> dict:
    base = TokenVocab.from_tokenizer(tok)
    rng = np.random.default_rng(3)
    texts = [format_answer([_action(rng)], first_point_spaces=1 + i % 2)
             for i in range(n_answers)]
    answers = [tok.encode(t) for t in texts]
    out = {}
    for label, vocab in (("spm", base), ("padded32k", _padded(base, PADDED_VOCAB))):
        out[label] = {"vocab": vocab.size, "ours": _ours(vocab, answers),
                      "xgrammar": _xgrammar(vocab, answers)}
    return out


def _teacher(ids: list[int], vocab: TokenVocab, start: int):
    """(first logits, extend_fn) of a model whose argmax is always the next canonical token."""
    pos = [start]

    def row() -> np.ndarray:
        x = np.zeros(vocab.size, np.float32)
        x[ids[pos[0]] if pos[0] < len(ids) else vocab.eos_id] = 1.0
        return x

    def extend(new):
        pos[0] += len(new)
        return row()[None]

    return row(), extend


def bench_passes(tok, n_answers: int) -> dict:
    """Decode passes per action; 'prefilled' puts the forced opening into the prompt prefill."""
    vocab = TokenVocab.from_tokenizer(tok)
    rng = np.random.default_rng(4)
    out = {}
    for kind, names in (("llara", NAMES), ("llara", None), ("llara_pick", NAMES)):
        g = compile_grammar(kind, vocab, names=names)
        for prefilled in (False, True):
            passes = tokens = 0
            for i in range(n_answers):
                action = _action(rng)
                if kind == "llara_pick":
                    action = PickPlaceAction(action.pick, action.place, action.rotation_deg,
                                             object_name=action.object_name)
                ids = tok.encode(format_answer([action], first_point_spaces=1 + i % 2))
                prefix, state = prefill_prefix(g) if prefilled else ([], g.start())
                first, extend = _teacher(ids, vocab, len(prefix))
                result = decode_constrained(extend, g, first, state=state)
                assert prefix + result.tokens == ids, "constrained decoding lost the answer"
                passes += result.n_forward_passes
                tokens += len(ids)  # free greedy: len(ids) + EOS tokens -> len(ids) passes
            mode = "prefilled" if prefilled else "plain"
            label = f"{kind}/{'names' if names else 'generic'}/{mode}"
            out[label] = {"constrained": passes / n_answers, "free": tokens / n_answers,
                          "ratio": passes / tokens}
    return out


def _median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds (the projector is multi-threaded: BLAS and numba prange)."""
    fn()  # warm up (numba compile, page faults)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _gelu_np(v: np.ndarray) -> np.ndarray:
    from llara_kernels.projector import _bias_gelu_

    out = v.copy()  # unfused: a separate pass over a fresh array
    _bias_gelu_(out, np.zeros(v.shape[1], np.float32))
    return out


def bench_projector(repeats: int) -> dict:
    rng = np.random.default_rng(5)
    c, h, d, n = 1024, 4096, 4096, 576
    w = ProjectorWeights((rng.standard_normal((c, h)) / math.sqrt(c)).astype(np.float32),
                         np.zeros(h, np.float32),
                         (rng.standard_normal((h, d)) / math.sqrt(h)).astype(np.float32),
                         np.zeros(d, np.float32))
    hidden = rng.standard_normal((n + 1, c)).astype(np.float32)
    out = np.empty((n, d), np.float32)
    ws = ProjectorWorkspace(n, w)

    def floor() -> None:
        np.matmul(hidden[1:], w.w1, out=ws.hidden)
        np.matmul(ws.hidden, w.w2, out=out)

    def unfused() -> None:
        y = _gelu_np(hidden[1:] @ w.w1 + w.b1) @ w.w2 + w.b2
        out[...] = y

    res = {"floor_s": _median_s(floor, repeats),
           "fused_s": _median_s(lambda: project(hidden, w, out, ws), repeats),
           "unfused_numpy_s": _median_s(unfused, repeats)}
    try:
        import torch
    except ImportError:
        return res
    seq = torch.nn.Sequential(torch.nn.Linear(c, h), torch.nn.GELU(), torch.nn.Linear(h, d))
    x = torch.from_numpy(hidden)
    with torch.inference_mode():
        res["torch_sequential_s"] = _median_s(lambda: seq(x[1:]), repeats)
    return res


def _print_table(masks: dict, passes: dict, proj: dict | None) -> None:
    print("mask cost per token (us, median of 3 sweeps over the answers)")
    for label, r in masks.items():
        xg = r["xgrammar"]
        xg_txt = f"{xg['mask_us']:.2f}" if "mask_us" in xg else xg["error"]
        print(f"  {label:10s} vocab {r['vocab']:6d}  ours {r['ours']['mask_us']:.2f} "
              f"(+argmax {r['ours']['mask_argmax_us']:.2f})  xgrammar {xg_txt}")
    print("forward passes per LLaRA action (constrained+jump-forward vs free greedy)")
    for label, r in passes.items():
        print(f"  {label:30s} {r['constrained']:.1f} vs {r['free']:.1f}  ratio {r['ratio']:.3f}")
    if proj:
        print("projector 576x1024->4096->4096 fp32 (median s)")
        for k, v in proj.items():
            print(f"  {k:22s} {v:.4f}  ({v / proj['floor_s']:.2f}x floor)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--answers", type=int, default=40)
    ap.add_argument("--skip-projector", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tok = _tokenizer(tmp)
        masks = bench_masks(tok, args.answers)
        passes = bench_passes(tok, args.answers)
    proj = None if args.skip_projector else bench_projector(args.repeats)
    _print_table(masks, passes, proj)
    result = {"masks": masks, "passes": passes, "projector": proj}
    if proj:
        result["projector_ratios"] = {k: v / proj["floor_s"] for k, v in proj.items()}
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
