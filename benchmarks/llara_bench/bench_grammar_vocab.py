"""The answer grammars on the REAL LLaMA-2 vocabulary (32000 pieces): compile, mask, passes.

    python -m llara_bench.bench_grammar_vocab [--vocab GGUF] [--answers 40]

The vocabulary is the GGUF that tests/real_vocab.py caches (llama.cpp's
ggml-vocab-llama-spm.gguf from the pinned llama-cpp-python sdist, under
${LLARA_EDGE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/llara-edge}/vocab/<version>/); the tokenizer
is models.GgufTokenizer (llama.cpp's ids). Sections:
1. Tokenizer: load time and encode time per answer, llama.cpp vs the plain SPM reference, and
   whether they agree on every answer.
2. Compile per grammar kind: wall seconds (one process, single-threaded NumPy), Python-heap
   peak (tracemalloc, a second compile), the compiled object's pickle size, and the cache:
   runtime.grammar_cache cold (compile + atomic write), disk hit, memory hit.
3. Mask cost per token at V = 32000, median and p99 over every token of the answers (each
   token timed on its own, perf_counter_ns): ours = mask_bits lookup + step; + masked_argmax
   over random logits; + forced() (the decoder's full per-token grammar work, warm cache).
   Beside it xgrammar (fill_next_token_bitmask + accept_token) and llguidance (fill bitmask
   + consume_token) when importable (bench-only: never runtime dependencies), compiled from
   the same LLaRA-step grammar written as GBNF (benchmarks/llara_bench/gbnf.py, with the step fixed
   to 1 as ours) on the same 32000 pieces, fed the same tokens.
4. Forward passes per answer: decode_constrained driven by a model that ranks the formatter's
   answer (its llama.cpp tokens) first, vs free greedy (one pass per token until EOS), plain
   and with the forced opening in the prefill.
Prints a table, then ONE JSON line with every number (last line of stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from llara_edge.actions import JointStepAction, PickPlaceAction
from llara_edge.decoding.constrained_decode import decode_constrained, prefill_prefix
from llara_edge.decoding.token_grammar import compile_grammar
from llara_edge.decoding.token_vocab import TokenVocab
from llara_edge.formats import format_answer, format_llarva_answer, localization_answer
from llara_edge.formats.llara import format_scene
from llara_kernels.masked_argmax import masked_argmax

NAMES = ("red block", "green pan", "blue bowl", "yellow hexagon")
N_JOINTS = 7
VOCAB_NAME = "ggml-vocab-llama-spm.gguf"
# (label, kind, names): the grammars the runtime compiles for LLaRA and LLARVA policies
KINDS = (("llara/names", "llara", NAMES), ("llara/generic", "llara", None),
         ("llara_pick/names", "llara_pick", NAMES), ("llarva", "llarva", None),
         ("llarva_trace", "llarva_trace", None), ("llara_detection", "llara_detection", None),
         ("llara_localization", "llara_localization", None))


def default_vocab() -> Path:
    import llama_cpp

    root = os.environ.get("LLARA_EDGE_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llara-edge"
    return Path(root) / "vocab" / llama_cpp.__version__ / VOCAB_NAME


# --- answers -----------------------------------------------------------------------------
def _action(rng: np.random.Generator, tools=("suction", "spatula")) -> PickPlaceAction:
    def r() -> float:
        return round(float(rng.random()), 3)

    return PickPlaceAction((r(), r()), (r(), r()), int(rng.integers(-359, 360)),
                           tool=str(rng.choice(tools)), object_name=str(rng.choice(NAMES)))


def _joints(rng: np.random.Generator, trace: bool) -> JointStepAction:
    joints = tuple(float(np.clip(v, -9.9999, 9.9999))
                   for v in np.round(rng.normal(scale=2.0, size=N_JOINTS), 4))
    points = tuple((int(rng.integers(0, 1000)), int(rng.integers(0, 1000)))
                   for _ in range(int(rng.integers(1, 5))))
    return JointStepAction(joints, float(rng.choice([0.0, 1.0, 0.5])), points if trace else None)


def answers(kind: str, n: int, seed: int = 0) -> list[str]:
    """Answer texts the formatters write for grammar `kind`."""
    rng = np.random.default_rng(seed)
    box = lambda: tuple(np.round(rng.random(4), 3).tolist())  # noqa: E731
    make: dict[str, Callable[[int], str]] = {
        "llara": lambda i: format_answer([_action(rng)], first_point_spaces=1 + i % 2),
        "llara_pick": lambda i: format_answer([_action(rng, ("suction",))],
                                              first_point_spaces=1 + i % 2),
        "llarva": lambda i: format_llarva_answer(_joints(rng, False), N_JOINTS),
        "llarva_trace": lambda i: format_llarva_answer(_joints(rng, True), N_JOINTS),
        "llara_detection": lambda i: format_scene(
            [(NAMES[k], box()) for k in range(1 + i % 3)]),
        "llara_localization": lambda i: localization_answer(NAMES[i % 4], box()),
    }
    return [make[kind](i) for i in range(n)]


# --- 1. tokenizer ------------------------------------------------------------------------
def bench_tokenizer(path: Path, texts: list[str]) -> tuple[object, dict]:
    from llara_edge.models.gguf_tokenizer import GgufTokenizer

    out, toks = {}, {}
    for engine in ("llama.cpp", "python"):
        t0 = time.perf_counter()
        toks[engine] = GgufTokenizer(path, engine=engine)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids = [toks[engine].encode(t) for t in texts]
        out[engine] = {"load_s": load_s,
                       "encode_us_per_answer": (time.perf_counter() - t0) / len(texts) * 1e6,
                       "ids": ids}
    agree = sum(a == b for a, b in zip(out["llama.cpp"].pop("ids"), out["python"].pop("ids"),
                                       strict=True))
    out["agree"] = f"{agree}/{len(texts)}"
    return toks["llama.cpp"], out


# --- 2. compile and cache ----------------------------------------------------------------
def bench_compile(tok, vocab: TokenVocab) -> tuple[dict, dict]:
    from llara_edge.decoding import grammar_cache

    out, grammars = {}, {}
    for label, kind, names in KINDS:
        t0 = time.perf_counter()
        g = compile_grammar(kind, vocab, names=names, n_joints=N_JOINTS)
        compile_s = time.perf_counter() - t0
        tracemalloc.start()
        compile_grammar(kind, vocab, names=names, n_joints=N_JOINTS)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        grammars[label] = g
        out[label] = {"states": g.dfa.n_states, "compile_s": compile_s,
                      "peak_mb": peak / 2**20, "pickle_mb": len(pickle.dumps(g)) / 2**20}
    with tempfile.TemporaryDirectory() as cache:
        spec = {"names": NAMES, "n_joints": N_JOINTS}
        times = []
        for clear in (True, True, False):  # cold (compiles), disk hit, memory hit
            if clear:
                grammar_cache._MEMORY.clear()
            t0 = time.perf_counter()
            grammar_cache.grammar_for("llara", tok, vocab.size, Path(cache), **spec)
            times.append(time.perf_counter() - t0)
        grammar_cache._MEMORY.clear()
        cache_row = {"cold_s": times[0], "disk_hit_s": times[1], "memory_hit_s": times[2]}
    return grammars, {"kinds": out, "cache_llara_names": cache_row}


# --- 3. mask cost per token --------------------------------------------------------------
def _per_token(step: Callable[[object, int], object], start: Callable[[], object],
               seqs: list[list[int]], sweeps: int = 3) -> dict:
    """Median / p99 microseconds of step(state, token) over every token (timed one by one)."""
    samples = []
    for _ in range(sweeps):
        for ids in seqs:
            state = start()
            for t in ids:
                t0 = time.perf_counter_ns()
                state = step(state, t)
                samples.append(time.perf_counter_ns() - t0)
    us = np.array(samples) / 1e3
    return {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99)),
            "tokens": len(us) // sweeps}


def _ours(g, seqs: list[list[int]]) -> dict:
    logits = np.random.default_rng(2).normal(size=g.n_vocab).astype(np.float32)

    def mask(state, t):
        g.mask_bits(state)
        return g.step(state, t)

    def mask_argmax(state, t):
        masked_argmax(logits, g.mask_bits(state))
        return g.step(state, t)

    def decoder(state, t):
        g.forced(state)
        masked_argmax(logits, g.mask_bits(state))
        return g.step(state, t)

    _per_token(decoder, g.start, seqs[:2], 1)  # numba JIT, forced-run cache
    return {name: _per_token(fn, g.start, seqs) for name, fn in
            (("mask", mask), ("mask+argmax", mask_argmax), ("decoder", decoder))}


def equivalent_gbnf() -> str:
    """gbnf.py's LLaRA step with the step number fixed to 1 (as our "llara")."""
    from llara_bench.gbnf import llara_step_gbnf

    text = llara_step_gbnf(NAMES)
    rule = "stepno ::= [1-9] [0-9]?"
    if rule not in text:
        raise RuntimeError(f"llara_bench/gbnf.py no longer has {rule!r}: update the bench")
    return text.replace(rule, 'stepno ::= "1"')


def _xgrammar(ours, vocab: TokenVocab, seqs: list[list[int]]) -> dict:
    try:
        import xgrammar as xgr
    except ImportError as err:
        return {"error": f"not installed: {err}"}
    t0 = time.perf_counter()
    info = xgr.TokenizerInfo([b or b"" for b in vocab.token_bytes], xgr.VocabType.RAW,
                             vocab_size=vocab.size, stop_token_ids=[vocab.eos_id])
    t1 = time.perf_counter()
    compiled = xgr.GrammarCompiler(info).compile_grammar(equivalent_gbnf())
    t2 = time.perf_counter()
    bitmask = xgr.allocate_token_bitmask(1, vocab.size)

    def step(matcher, t):
        matcher.fill_next_token_bitmask(bitmask)
        if not matcher.accept_token(t):
            raise RuntimeError(f"xgrammar rejected token {t}")
        return matcher

    return {"setup_s": t1 - t0, "compile_s": t2 - t1,
            "mask": _per_token(step, lambda: xgr.GrammarMatcher(compiled), seqs),
            "same_mask": _same_masks(ours, lambda m: (m.fill_next_token_bitmask(bitmask),
                                                      bitmask.numpy()[0].view(np.uint32))[1],
                                     lambda: xgr.GrammarMatcher(compiled),
                                     lambda m, t: m.accept_token(t), seqs)}


def _same_masks(g, their_bits, start, accept, seqs: list[list[int]]) -> str:
    """"same/subset/steps": steps (every token of every answer but the first, where the GBNF
    also allows no leading space) whose mask is exactly ours / inside ours, EOS bit aside.
    (llguidance allows only the canonical token inside forced text, where ours allows every
    token that spells a prefix of it and forcing is the jump-forward's job.)"""
    eos_word, eos_bit = divmod(g.vocab.eos_id, 32)
    same = subset = total = 0
    for ids in seqs:
        state, m = g.start(), start()
        for i, t in enumerate(ids):
            if i:
                a, b = g.mask_bits(state).copy(), their_bits(m).copy()
                a[eos_word] &= ~np.uint32(1 << eos_bit)
                b[eos_word] &= ~np.uint32(1 << eos_bit)
                same, total = same + bool((a == b).all()), total + 1
                subset += bool(((b & ~a) == 0).all())
            state = g.step(state, t)
            accept(m, t)
    return f"{same}/{subset}/{total}"


def _llguidance(ours, tok, vocab: TokenVocab, seqs: list[list[int]]) -> dict:
    try:
        import llguidance
        import llguidance.numpy as lnp
    except ImportError as err:
        return {"error": f"not installed: {err}"}

    from dataclasses import replace

    from llara_edge.models.gguf_vocab import spm_encode

    raw_vocab = replace(tok.vocab, add_space_prefix=False, _index={})

    class Wrapped:  # llguidance.TokenizerWrapper's protocol over the same pieces
        def __init__(self):
            self.eos_token_id, self.bos_token_id = vocab.eos_id, tok.bos_id
            self.tokens = [b if b is not None else b"\xff<special>" for b in vocab.token_bytes]
            self.special_token_ids = [i for i, b in enumerate(vocab.token_bytes) if b is None]

        def __call__(self, s):  # raw text, no dummy prefix (llguidance re-tokenises forced
            text = s.decode("utf-8", errors="replace") if isinstance(s, bytes) else s
            return spm_encode(raw_vocab, text)  # bytes with it; SPM would add a "▁")

    t0 = time.perf_counter()
    lltok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(Wrapped()))
    t1 = time.perf_counter()
    grammar = llguidance.grammar_from("gbnf", equivalent_gbnf())
    llguidance.LLMatcher(lltok, grammar, log_level=0)
    t2 = time.perf_counter()
    bitmask = lnp.allocate_token_bitmask(1, vocab.size)

    def step(matcher, t):
        lnp.fill_next_token_bitmask(matcher, bitmask, 0)
        if not matcher.consume_token(t):
            raise RuntimeError(f"llguidance rejected token {t}: {matcher.get_error()}")
        return matcher

    def start():
        return llguidance.LLMatcher(lltok, grammar, log_level=0)

    def bits(m):
        lnp.fill_next_token_bitmask(m, bitmask, 0)
        return bitmask[0].view(np.uint32)

    return {"setup_s": t1 - t0, "compile_s": t2 - t1, "mask": _per_token(step, start, seqs),
            "same_mask": _same_masks(ours, bits, start, lambda m, t: m.consume_token(t), seqs)}


def bench_masks(tok, vocab: TokenVocab, grammars: dict, n: int) -> dict:
    seqs = [tok.encode(t) for t in answers("llara", n, seed=3)]
    out = {"llara/names": {"ours": _ours(grammars["llara/names"], seqs),
                           "xgrammar": _xgrammar(grammars["llara/names"], vocab, seqs),
                           "llguidance": _llguidance(grammars["llara/names"], tok, vocab, seqs)}}
    lseqs = [tok.encode(t) for t in answers("llarva", n, seed=3)]
    out["llarva"] = {"ours": _ours(grammars["llarva"], lseqs)}
    return out


# --- 4. passes per answer ----------------------------------------------------------------
def _teacher(ids: list[int], vocab: TokenVocab, start: int):
    """(first logits, extend_fn): a model whose argmax is the next token of `ids`, then EOS;
    it checks that every fed token is the answer's own."""
    pos = [start]

    def row() -> np.ndarray:
        x = np.zeros(vocab.size, np.float32)
        x[ids[pos[0]] if pos[0] < len(ids) else vocab.eos_id] = 1.0
        return x

    def extend(new):
        if list(new) != ids[pos[0]: pos[0] + len(new)]:
            raise RuntimeError("the decoder fed tokens that are not the answer's tokenisation")
        pos[0] += len(new)
        return row()[None]

    return row(), extend


def bench_passes(tok, vocab: TokenVocab, grammars: dict, n: int) -> dict:
    out = {}
    for label, kind, _ in KINDS:
        g = grammars[label]
        for prefilled in (False, True):
            passes = tokens = 0
            for text in answers(kind, n, seed=4):
                ids = tok.encode(text)
                prefix, state = prefill_prefix(g) if prefilled else ([], g.start())
                first, extend = _teacher(ids, vocab, len(prefix))
                result = decode_constrained(extend, g, first, state=state, max_tokens=1024)
                if prefix + result.tokens != ids or not result.complete:
                    raise RuntimeError(f"{label}: constrained decoding lost {text!r}")
                passes += result.n_forward_passes
                tokens += len(ids)  # free greedy: len(ids) + EOS -> len(ids) passes
            out[f"{label}/{'prefilled' if prefilled else 'plain'}"] = {
                "constrained": passes / n, "free": tokens / n, "ratio": passes / tokens}
    return out


def _fmt_mask(r: dict) -> str:
    return f"{r['median_us']:7.2f} {r['p99_us']:7.2f}"


def print_table(res: dict) -> None:
    print(f"tokenizer (V = {res['vocab']}): {res['tokenizer']['agree']} answers agree")
    for engine in ("llama.cpp", "python"):
        r = res["tokenizer"][engine]
        print(f"  {engine:10s} load {r['load_s'] * 1e3:7.1f} ms   encode "
              f"{r['encode_us_per_answer']:8.1f} us/answer")
    print("compile (s), tracemalloc peak (MB), pickle (MB)")
    for label, r in res["compile"]["kinds"].items():
        print(f"  {label:20s} states {r['states']:4d}  {r['compile_s']:6.2f} s  "
              f"peak {r['peak_mb']:7.1f}  pickle {r['pickle_mb']:6.2f}")
    c = res["compile"]["cache_llara_names"]
    print(f"  cache llara/names: cold {c['cold_s']:.2f} s, disk hit {c['disk_hit_s'] * 1e3:.1f}"
          f" ms, memory hit {c['memory_hit_s'] * 1e6:.0f} us")
    print("mask cost per token (us: median p99)")
    for label, r in res["masks"].items():
        for name, m in r["ours"].items():
            print(f"  {label:12s} ours {name:12s} {_fmt_mask(m)}")
        for lib in ("xgrammar", "llguidance"):
            if lib in r:
                x = r[lib]
                text = (f"{_fmt_mask(x['mask'])}  (tokenizer set-up {x['setup_s']:.2f} s, "
                        f"compile {x['compile_s']:.3f} s; masks same/inside ours/steps "
                        f"{x['same_mask']})"
                        if "mask" in x else x["error"])
                print(f"  {label:12s} {lib:17s} {text}")
    print("forward passes per answer (constrained + jump-forward vs free greedy)")
    for label, r in res["passes"].items():
        print(f"  {label:32s} {r['constrained']:6.1f} vs {r['free']:6.1f}  ratio {r['ratio']:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=Path, help=f"GGUF with the vocabulary (default: cached "
                    f"{VOCAB_NAME}; the tests fetch it)")
    ap.add_argument("--answers", type=int, default=40)
    args = ap.parse_args(argv)
    path = args.vocab or default_vocab()
    if not path.is_file():
        print(f"no vocabulary at {path}: run tests/test_gguf_tokenizer.py once (it caches "
              "the real LLaMA-2 vocabulary) or pass --vocab", file=sys.stderr)
        return 2
    texts = [t for kind in ("llara", "llarva", "llara_detection")
             for t in answers(kind, args.answers, seed=1)]
    tok, tok_res = bench_tokenizer(path, texts)
    vocab = TokenVocab.from_tokenizer(tok)
    grammars, comp = bench_compile(tok, vocab)
    res = {"vocab": vocab.size, "tokenizer": tok_res, "compile": comp,
           "masks": bench_masks(tok, vocab, grammars, args.answers),
           "passes": bench_passes(tok, vocab, grammars, args.answers)}
    print_table(res)
    print(json.dumps(res, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
