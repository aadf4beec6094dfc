"""Two llm.onnx exports of one model, side by side on onnxruntime CPU: prefill and decode time,
and how far apart their logits are.

    python -m llara_bench.bench_onnx_graphs BASE CANDIDATE [--prefill 320]
        [--decode 24] [--repeats 5] [--threads 2]

BASE and CANDIDATE are artifact directories (or any directories holding llm.onnx) of the same
checkpoint, e.g. the TorchScript-traced graph of an older export and the node-by-node graph of
export/llara_export/onnx_llm.py. Per repeat, each graph prefills the same random `--prefill`
embeddings (an image's tokens + a prompt) from an empty cache, then decodes `--decode` single
tokens; the repeats alternate BASE and CANDIDATE so machine noise falls on both. Reported: medians
over the repeats (the first is a warm-up and dropped), CANDIDATE / BASE ratios, and the largest
logit difference of the two graphs on the prefill. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from llara_export.onnx_common import ONNX_FILES, ort_session, past_names, present_names


class _Graph:
    def __init__(self, directory: Path, threads: int):
        self.session = ort_session(directory / ONNX_FILES["llm"], threads)
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        self.layers = sum(1 for name in shapes if name.endswith(".key"))
        _, self.kv_heads, _, self.head_dim = shapes[past_names(0)[0]]
        self.hidden = shapes["inputs_embeds"][2]
        self.outputs = ["logits"] + [n for i in range(self.layers) for n in present_names(i)]

    def run(self, embeds: np.ndarray, past: list) -> tuple[np.ndarray, list]:
        n_past = past[0].shape[2]
        feed = {"inputs_embeds": embeds[None],
                "position_ids": np.arange(n_past, n_past + len(embeds), dtype=np.int64)[None]}
        feed.update({name: past[j] for j, name in enumerate(
            n for i in range(self.layers) for n in past_names(i))})
        out = self.session.run(self.outputs, feed)
        return out[0][0], out[1:]

    def step(self, embeds: np.ndarray, n_decode: int) -> tuple[float, float, np.ndarray]:
        """(prefill ms, decode ms per token, prefill logits) from an empty cache."""
        past = [np.zeros((1, self.kv_heads, 0, self.head_dim), np.float32)] * (2 * self.layers)
        start = time.perf_counter()
        logits, past = self.run(embeds, past)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        for t in range(n_decode):
            _, past = self.run(embeds[t:t + 1], past)
        decode = (time.perf_counter() - start) / max(1, n_decode)
        return 1e3 * prefill, 1e3 * decode, logits


def compare(base: Path, candidate: Path, args) -> dict:
    graphs = {"base": _Graph(base, args.threads), "candidate": _Graph(candidate, args.threads)}
    hidden = graphs["base"].hidden
    embeds = np.random.default_rng(0).standard_normal((args.prefill, hidden)).astype(np.float32)
    times: dict[str, list] = {name: [] for name in graphs}
    logits = {}
    for _ in range(args.repeats + 1):
        for name, graph in graphs.items():
            prefill, decode, logits[name] = graph.step(embeds, args.decode)
            times[name].append((prefill, decode))
    out = {"prefill_tokens": args.prefill, "decode_tokens": args.decode,
           "repeats": args.repeats, "threads": args.threads,
           "max_logit_diff": float(np.abs(logits["base"] - logits["candidate"]).max())}
    for name, rows in times.items():
        rows = rows[1:]  # warm-up dropped
        out[name] = {"dir": str(base if name == "base" else candidate),
                     "prefill_ms": statistics.median(r[0] for r in rows),
                     "decode_ms_per_token": statistics.median(r[1] for r in rows)}
    for key in ("prefill_ms", "decode_ms_per_token"):
        out[f"{key}_ratio"] = out["candidate"][key] / out["base"][key]
    return out


def format_table(res: dict) -> str:
    lines = [f"llm.onnx, {res['prefill_tokens']}-token prefill + {res['decode_tokens']} decodes,"
             f" {res['threads']} threads, median of {res['repeats']}",
             f"{'graph':<10} {'prefill ms':>11} {'decode ms/tok':>14}  dir"]
    for name in ("base", "candidate"):
        row = res[name]
        lines.append(f"{name:<10} {row['prefill_ms']:>11.1f} {row['decode_ms_per_token']:>14.2f}"
                     f"  {row['dir']}")
    lines.append(f"{'ratio':<10} {res['prefill_ms_ratio']:>11.3f} "
                 f"{res['decode_ms_per_token_ratio']:>14.3f}  (candidate / base)")
    lines.append(f"max |logit difference| on the prefill: {res['max_logit_diff']:.3g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--prefill", type=int, default=320)
    parser.add_argument("--decode", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    res = compare(args.base, args.candidate, args)
    print(format_table(res))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
