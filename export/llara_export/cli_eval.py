"""`llara-edge eval`: closed-loop success of a policy checkpoint in the simulator.

Runs N seeded episodes per task family and level (evaluation seeds start at 0; training data
uses seeds >= 1,000,000), prints the success table, parse-failure counts and one JSON line
last, and saves a rollout GIF per family (first episode of the first level) with the predicted
pick/place points drawn on the frames. Needs the `export` extra (torch) for the reference backend.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HELP = "closed-loop success of a policy checkpoint in the simulator (torch reference)"

DEFAULT_CHECKPOINT = Path("models/tiny-llara")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--episodes", type=int, default=50, help="seeds per family and level")
    parser.add_argument("--families", nargs="+", help="task families (default: all)")
    parser.add_argument("--levels", nargs="+", default=["L1", "L2", "L3"])
    parser.add_argument("--seed", type=int, default=0, help="first evaluation seed")
    parser.add_argument("--size", default="320x240", help="camera size WxH the policy sees")
    parser.add_argument("--inbc", action="store_true", help="no oracle boxes in the prompt")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="LLaRA's eval uses 256")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"), help="GIFs and JSON")


def _print_table(results, levels: list[str]) -> dict:
    from llara_edge.sim.rollout import success_table

    table = success_table(results)
    errors = sum(len(r.errors) for r in results)
    print(f"\n{'family':<20} " + " ".join(f"{lv:>6}" for lv in levels))
    for family, row in table.items():
        print(f"{family:<20} " + " ".join(f"{row.get(lv, float('nan')):>6.0%}" for lv in levels))
    print(f"failed steps (parse / depth / reach errors): {errors}")
    return table


def run(args: argparse.Namespace) -> int:
    from llara_edge.cli.demo import _size
    from llara_edge.sim import TASK_FAMILIES, SimConfig, TabletopEnv
    from llara_edge.sim.policy_agent import AgentConfig, PolicyAgent
    from llara_edge.sim.recorder import RolloutRecorder
    from llara_edge.sim.rollout import run_episode
    from llara_export.torch_ref import PolicyConfig, TorchPolicy

    width, height = _size(args.size)
    policy = TorchPolicy.load(args.checkpoint, PolicyConfig(max_new_tokens=args.max_new_tokens))
    agent = PolicyAgent(policy, AgentConfig(describe=not args.inbc))
    env = TabletopEnv(SimConfig(width=width, height=height))
    results, gifs, start = [], [], time.perf_counter()
    try:
        for family in args.families or TASK_FAMILIES:
            for level in args.levels:
                for seed in range(args.seed, args.seed + args.episodes):
                    first = level == args.levels[0] and seed == args.seed
                    rec = RolloutRecorder() if first else None
                    res = run_episode(env, agent, family, level, seed,
                                      rec.on_step if rec else None)
                    results.append(res)
                    if rec:
                        rec.add_final(env)
                        gifs.append(str(rec.save(args.out / f"{family}_{level}_{seed}.gif")))
                print(f"  {family:<20} {level}: "
                      f"{sum(r.success for r in results[-args.episodes:])}/{args.episodes}")
    finally:
        env.close()
    table = _print_table(results, args.levels)
    print(f"rollout GIFs: {', '.join(gifs)}")
    report = {"checkpoint": str(args.checkpoint), "episodes_per_cell": args.episodes,
              "table": table, "failed_steps": sum(len(r.errors) for r in results),
              "gifs": gifs, "wall_s": round(time.perf_counter() - start, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0
