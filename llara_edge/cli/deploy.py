"""`llara-edge deploy ARTIFACT HOST[:PORT][:DIR]`: copy an export to a robot and install it.

Over OpenSSH + rsync (resumable, only changed files), verified ON the device with
`llara-edge verify`, swapped in atomically (llara_edge/deploy/install.py), then optionally
the device's engines and a quick latency bench whose JSON comes back. Prints progress lines,
the wall time and one JSON line last. Errors: HostUnreachableError, AuthError, DiskFullError,
VerifyError (exit 2 with one line); the device keeps its previous artifact on every one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", type=Path, help="export directory (with manifest.json)")
    parser.add_argument("target", help="[USER@]HOST[:PORT][:DIR]; DIR default ~/llara-edge")
    parser.add_argument("--identity", "-i", type=Path, help="ssh private key")
    parser.add_argument("--known-hosts", type=Path, help="ssh UserKnownHostsFile")
    parser.add_argument("--connect-timeout", type=int, default=10, help="seconds")
    parser.add_argument("--remote-llara-edge", default="llara-edge",
                        help="the llara-edge command on the device (path or name on PATH)")
    parser.add_argument("--setup", metavar="COMMAND",
                        help="shell command run on the device first (e.g. its tools/setup.sh)")
    parser.add_argument("--engines", action="store_true",
                        help="build the TensorRT engines on the device (needs tensorrt there)")
    parser.add_argument("--no-bench", action="store_true", help="skip the quick latency bench")
    parser.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                        help="extra argument of `bench latency --quick` on the device "
                             "(repeat; e.g. --bench-arg=--checkpoint=/opt/models/tiny-llara)")
    parser.add_argument("--no-space-check", action="store_true",
                        help="copy even if the device's free space looks too small")
    parser.add_argument("--bwlimit", type=int, help="rsync bandwidth limit, KiB/s")
    parser.add_argument("--rsync-path", help="the rsync command on the device (rsync's own option)")
    parser.add_argument("--out", type=Path, default=Path("runs/deploy"),
                        help="local directory for the bench JSON brought back")


def run(args: argparse.Namespace) -> int:
    from llara_edge.deploy.install import DeployConfig, deploy, read_report
    from llara_edge.deploy.transport import parse_target

    t0 = time.perf_counter()
    target = parse_target(args.target, identity=args.identity, known_hosts=args.known_hosts,
                          connect_timeout_s=args.connect_timeout)
    cfg = DeployConfig(artifact=args.artifact, target=target,
                       remote_llara_edge=args.remote_llara_edge, setup_command=args.setup,
                       build_engines=args.engines, bench=not args.no_bench,
                       bench_args=tuple(args.bench_arg), check_space=not args.no_space_check,
                       bwlimit_kib=args.bwlimit, rsync_path=args.rsync_path,
                       out=args.out)
    report = deploy(cfg, say=lambda m: print(m, flush=True))
    if "bench" in report:
        bench = read_report(Path(report["bench"]["json"]))
        print(f"deploy: bench JSON brought back to {report['bench']['json']}")
        for key, value in sorted((bench.get("metrics") or {}).items()):
            if key.endswith("step_p50_s") or "over" in key:
                print(f"  {key:<60} {value:.4f}")
    report["wall_s"] = round(time.perf_counter() - t0, 2)
    print(f"deploy: done in {report['wall_s']} s")
    print(json.dumps(report))
    return 0
