"""Entry point of the `llara-edge` command.

Subcommands live in their own modules, each exposing `add_arguments(parser)` and
`run(args) -> int`; `COMMANDS` maps a name to (module, one-line help). Modules import their
heavy dependencies inside `run`, so `llara-edge --help` and `llara-edge doctor` start fast.
With no subcommand, `llara-edge` runs the embedded default: `run` on the simulator (virtual
Feetech bus, simulated camera) with the bundled tiny policy, three episodes.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from llara_edge.errors import LlaraEdgeError

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("llara_edge.cli.demo", "run the embedded default: the simulator, no hardware"),
    "doctor": ("llara_edge.cli.doctor", "what this machine can run: engines, GPU, devices"),
    "eval": ("llara_edge.cli.eval", "closed-loop success of a policy checkpoint in the simulator"),
    "datagen": ("llara_edge.cli.datagen", "generate LLaVA-format training data in the simulator"),
    "export": ("llara_edge.export.cli", "checkpoint -> GGUF + mmproj + ONNX, parity-gated"),
    "run": ("llara_edge.cli.run", "closed loop camera -> policy -> arm (simulator by default)"),
    "calibrate": ("llara_edge.cli.calibrate", "hand-eye or joint calibration into robot config"),
    "bench": ("llara_edge.cli.bench", "latency / accuracy benchmarks and their gates, report"),
    "verify": ("llara_edge.cli.verify", "check every sha256 of an export directory's manifest"),
    "engines": ("llara_edge.cli.engines", "build / list / clean TensorRT engines on the device"),
    "service": ("llara_edge.cli.service", "the robot loop as a systemd service at boot"),
    "deploy": ("llara_edge.cli.deploy", "copy an export to a robot over SSH, verify, install"),
}
DEFAULT_COMMAND = "run"
# `llara-edge` alone: the closed loop on the simulator with the bundled tiny policy.
DEFAULT_ARGV = [DEFAULT_COMMAND, "--episodes", "3"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llara-edge",
        description="On-robot inference runtime for LLaRA / LLARVA vision-language policies. "
        f"Without a command, runs `{DEFAULT_COMMAND}` (the simulator, no hardware needed).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv or DEFAULT_ARGV)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except LlaraEdgeError as exc:
        print(f"llara-edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"llara-edge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
