"""Entry point of the `llara-edge` command.

Subcommands live in their own modules, each exposing `add_arguments(parser)` and
`run(args) -> int`; `COMMANDS` maps a name to (module, one-line help). Modules import their
heavy dependencies inside `run`, so `llara-edge --help` and `llara-edge doctor` start fast.
With no subcommand, `llara-edge` runs the embedded default: the simulator demo.
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
    "export": ("llara_edge.export.cli", "checkpoint -> GGUF (quantised) + mmproj, parity-gated"),
}
DEFAULT_COMMAND = "demo"


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
    args = parser.parse_args(argv or [DEFAULT_COMMAND])
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
