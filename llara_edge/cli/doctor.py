"""`llara-edge doctor`: platform, Jetson, engines and execution providers, devices, GPU."""

from __future__ import annotations

import argparse
import json

from llara_edge.platform import PROBES, run_probes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--only", nargs="+", choices=list(PROBES), help="run only these probes")


def run(args: argparse.Namespace) -> int:
    probes = run_probes(args.only)
    if args.json:
        print(json.dumps({p.name: p.as_dict() for p in probes}))
        return 0
    width = max(len(p.name) for p in probes)
    print(f"{'check':<{width}}  ok   detail")
    for p in probes:
        print(f"{p.name:<{width}}  {'yes' if p.ok else 'no ':<4} {p.detail}")
    print(json.dumps({p.name: p.ok for p in probes}))
    return 0
