"""`llara-edge datagen`: LLaVA-format training data from scripted-expert episodes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--episodes", type=int, default=10, help="per family and level")
    parser.add_argument("--families", nargs="+", help="task families (default: all)")
    parser.add_argument("--levels", nargs="+", default=["L1"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="320x240", help="image size WxH (4:3)")
    parser.add_argument("--no-aux", action="store_true", help="no localisation/detection")
    parser.add_argument("--llarva-prompt", choices=("train", "eval"), default="train",
                        help="LLARVA prompt wording: its training annotations' (default) or "
                             "its evaluation agent's (recorded in meta.json)")
    parser.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    from llara_edge.cli.demo import _size
    from llara_edge.sim.datagen import DatagenConfig, generate
    from llara_edge.sim.tasks import TASK_FAMILIES

    width, height = _size(args.size)
    cfg = DatagenConfig(families=tuple(args.families or TASK_FAMILIES), levels=tuple(args.levels),
                        episodes=args.episodes, seed=args.seed, width=width, height=height,
                        aux=not args.no_aux, llarva_prompt=args.llarva_prompt)
    summary = generate(cfg, args.out, overwrite=args.overwrite, progress=print)
    print(f"wrote {args.out}: {summary['counts']}")
    print(json.dumps({"out": str(args.out), "counts": summary["counts"]}))
    return 0
