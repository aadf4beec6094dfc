"""Multi-step LLaRA episodes in the simulator: success and the step numbers answers write.

    python -m llara_bench.bench_multistep [--family scene_understanding]
        [--episodes 10] [--artifact DIR] [--no-reference] [--out FILE]

The candidate is the runtime Policy (bench_accuracy's candidate, gguf q4_k_m, constrained
decoding); the reference is the torch checkpoint with LLaRA's free greedy. Both run the
same (level, seed) episodes through sim.policy_agent.PolicyAgent, whose prompt carries the
"You have finished: Step 1: ..." history. For every answer after the first step the table
counts whether it starts "Step k:" with k = 1 + the history's steps (what LLaRA's data and
sim/datagen.py write), "Step 1:" (what the runtime forced before the step header followed
the history), another number, or no header. Prints a table, then ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from llara_edge.formats import next_step_number

_HEADER = re.compile(r"\s*Step (\d+):")


class _Recorder:
    """TextPolicy wrapper keeping (expected step number, answer) per call."""

    def __init__(self, inner):
        self.inner, self.pairs = inner, []

    def generate(self, rgb, user_text):
        out = self.inner.generate(rgb, user_text)
        self.pairs.append((next_step_number(user_text), out[0]))
        return out


def header_counts(pairs: list[tuple[int, str]]) -> dict[str, int]:
    later = [(k, _HEADER.match(a)) for k, a in pairs if k > 1]
    nums = [(k, int(m.group(1)) if m else None) for k, m in later]
    return {"later_answers": len(nums), "history_plus_1": sum(n == k for k, n in nums),
            "step_1": sum(n == 1 for _, n in nums),
            "other": sum(n is not None and n not in (1, k) for k, n in nums),
            "unnumbered": sum(n is None for _, n in nums)}


def _loop(make_text, cfg, label: str) -> dict:
    from llara_bench.bench_accuracy import _closed_loop
    from llara_edge.sim.policy_agent import PolicyAgent

    recorders = []

    def agent_for(family):
        recorders.append(_Recorder(make_text()))
        return PolicyAgent(recorders[-1])

    loop = _closed_loop(agent_for, cfg, print, label)
    pairs = [p for r in recorders for p in r.pairs]
    return {**loop, "headers": header_counts(pairs), "answers": pairs}


def run(args) -> dict:
    from llara_bench.bench_accuracy import AccuracyConfig, _load_policy, _PolicyText
    from llara_bench.bench_models import tiny_artifact
    from llara_export.torch_ref import PolicyConfig, TorchPolicy

    cfg = AccuracyConfig(checkpoint=args.checkpoint, artifact=args.artifact,
                         families=(args.family,), episodes=args.episodes, threads=args.threads,
                         cache_dir=args.cache)
    artifact = cfg.artifact or tiny_artifact(cfg.checkpoint, cfg.cache_dir, print)
    res = {"family": args.family, "episodes": args.episodes, "artifact": str(artifact)}
    policy = _load_policy(artifact, cfg.candidate, cfg)
    try:
        res["candidate"] = _loop(lambda: _PolicyText(policy), cfg, cfg.candidate)
    finally:
        policy.close()
    if args.reference:
        ref = TorchPolicy.load(cfg.checkpoint, PolicyConfig(max_new_tokens=256))
        res["reference"] = _loop(lambda: ref, cfg, "torch reference")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="scene_understanding")
    ap.add_argument("--episodes", type=int, default=10, help="seeds per level (L1-L3)")
    ap.add_argument("--checkpoint", type=Path, default=Path("models/tiny-llara"))
    ap.add_argument("--artifact", type=Path)
    ap.add_argument("--cache", type=Path, default=Path("cache/bench"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-reference", dest="reference", action="store_false")
    ap.add_argument("--out", type=Path, help="write the whole result (answers too) here")
    args = ap.parse_args(argv)
    res = run(args)
    print(f"{args.family}: success per level, decisions, answers after step 1 by header")
    print(f"  {'who':10s} {'L1':>5s} {'L2':>5s} {'L3':>5s} {'dec':>4s} {'later':>5s} "
          f"{'k+1':>4s} {'1':>4s} {'other':>5s} {'none':>4s}")
    for who in ("candidate", "reference"):
        if who in res:
            r, h = res[who], res[who]["headers"]
            rates = [r["table"][args.family].get(lv, float("nan")) for lv in ("L1", "L2", "L3")]
            print(f"  {who:10s} " + " ".join(f"{x:5.0%}" for x in rates) +
                  f" {r['decisions']:4d} {h['later_answers']:5d} {h['history_plus_1']:4d} "
                  f"{h['step_1']:4d} {h['other']:5d} {h['unnumbered']:4d}")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "answers"}
                          if isinstance(v, dict) else v) for k, v in res.items()},
                     sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
