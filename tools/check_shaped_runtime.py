"""Load an artifact with each runtime engine combination and act on simulator frames.

    python tools/check_shaped_runtime.py ARTIFACT [ARTIFACT ...] [--frames 2] [--threads 2]

For every artifact and every engine combination in COMBOS (llama.cpp LLM + ONNX vision per
GGUF variant, onnxruntime LLM + ONNX vision), llara_edge.runtime.policy.Policy loads it
(manifest + sha256 check, grammar compiled against the artifact's tokenizer) and acts on
`--frames` simulator frames with constrained decoding. Random-weight checkpoints give
nonsense text; the point is that the action is still typed (PickPlaceAction). Prints one row
per combination and frame, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

COMBOS = (("gguf", "onnx", "q4_k_m"), ("gguf", "onnx", "q8_0"), ("gguf", "onnx", "f16"),
          ("onnx", "onnx", "q4_k_m"))


def _run(artifact: Path, combo: tuple[str, str, str], frames, threads: int) -> list[dict]:
    from llara_edge.runtime.config import RuntimeConfig
    from llara_edge.runtime.policy import Policy

    llm, vision, variant = combo
    t0 = time.perf_counter()
    cfg = RuntimeConfig(llm=llm, vision=vision, variant=variant, threads=threads)
    rows = []
    with Policy.load(artifact, cfg) as policy:
        load_s = time.perf_counter() - t0
        for case in frames:
            step = policy.act(case.rgb, case.user_text)
            rows.append({"artifact": artifact.name, "llm": llm, "vision": vision,
                         "variant": variant if llm == "gguf" else "-", "load_s": load_s,
                         "action": type(step.action).__name__, "text": step.text,
                         "passes": step.forward_passes, "tokens": step.n_tokens,
                         "ttft_s": step.ttft_s, "timings": step.timings})
    return rows


def main(argv: list[str] | None = None) -> int:
    from llara_edge.cases import sim_frames

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path, nargs="+")
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    frames = sim_frames(args.frames, 320, 240)
    rows = []
    for artifact in args.artifacts:
        for combo in COMBOS:
            for r in _run(artifact, combo, frames, args.threads):
                rows.append(r)
                stages = " ".join(f"{k}={1e3 * v:.0f}" for k, v in r["timings"].items())
                print(f"{r['artifact']:<14} {r['llm']:<5} {r['variant']:<7} "
                      f"load={r['load_s']:.1f}s {r['action']:<16} passes={r['passes']:<3} "
                      f"tokens={r['tokens']:<3} "
                      f"ttft={1e3 * r['ttft_s']:.0f}ms {stages}  {r['text'][:60]!r}", flush=True)
    print(json.dumps({"rows": rows, "typed": all(r["action"] == "PickPlaceAction" for r in rows)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
