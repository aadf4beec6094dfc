"""Entry point of the `llara-edge` command.

Subcommands live in their own modules, each exposing `add_arguments(parser)` and
`run(args) -> int`. The runtime's own are `COMMANDS` (name -> (module, one-line help)); other
components add theirs through the entry-point group `llara_edge.commands` (value: the module;
its `HELP` is the one-line help): llara-edge-export adds `export` and `eval`, llara-edge-bench
adds `bench`. A command of a component that is not installed (`OPTIONAL`) still parses and
says how to install it (exit 2). Modules import their heavy dependencies inside `run`, so
`llara-edge --help` and `llara-edge doctor` start fast. With no subcommand, `llara-edge` runs
the embedded default: `run` on the simulator (virtual Feetech bus, simulated camera) with the
bundled tiny policy, three episodes. Errors of `llara_edge.errors.REPORTED` print one line and
exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata

from llara_edge.errors import REPORTED, ConfigError

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("llara_edge.cli.demo", "run the embedded default: the simulator, no hardware"),
    "doctor": ("llara_edge.cli.doctor", "what this machine can run: engines, GPU, devices"),
    "datagen": ("llara_edge.cli.datagen", "generate LLaVA-format training data in the simulator"),
    "run": ("llara_edge.cli.run", "closed loop camera -> policy -> arm (simulator by default)"),
    "calibrate": ("llara_edge.cli.calibrate", "hand-eye or joint calibration into robot config"),
    "verify": ("llara_edge.cli.verify", "check every sha256 of an export directory's manifest"),
    "engines": ("llara_edge.cli.engines", "build / list / clean TensorRT engines on the device"),
    "service": ("llara_edge.cli.service", "the robot loop as a systemd service at boot"),
    "deploy": ("llara_edge.cli.deploy", "copy an export to a robot over SSH, verify, install"),
}
ENTRY_POINTS = "llara_edge.commands"
# commands other components provide: name -> (distribution, its folder in the repository)
OPTIONAL: dict[str, tuple[str, str]] = {
    "export": ("llara-edge-export", "export"),
    "eval": ("llara-edge-export", "export"),
    "bench": ("llara-edge-bench", "benchmarks"),
}
DEFAULT_COMMAND = "run"
# `llara-edge` alone: the closed loop on the simulator with the bundled tiny policy.
DEFAULT_ARGV = [DEFAULT_COMMAND, "--episodes", "3"]


def commands() -> dict[str, str | None]:
    """name -> module of every command available here (None: an OPTIONAL one not installed)."""
    found: dict[str, str | None] = {name: module for name, (module, _) in COMMANDS.items()}
    found.update(dict.fromkeys(OPTIONAL))
    for ep in metadata.entry_points(group=ENTRY_POINTS):
        found[ep.name] = ep.value
    return found


def _missing(name: str) -> str:
    dist, folder = OPTIONAL[name]
    return (f"`llara-edge {name}` comes with {dist}, which is not installed here: on a "
            f"workstation, `pip install -e {folder}` from the repository (tools/setup.sh does)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llara-edge",
        description="On-robot inference runtime for LLaRA / LLARVA vision-language policies. "
        f"Without a command, runs `{DEFAULT_COMMAND}` (the simulator, no hardware needed).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in commands().items():
        if module is None:
            help_text = f"(not installed: {OPTIONAL[name][0]})"
            cmd = sub.add_parser(name, help=help_text, description=_missing(name))
            cmd.add_argument("rest", nargs=argparse.REMAINDER)
            continue
        mod = importlib.import_module(module)
        help_text = COMMANDS[name][1] if name in COMMANDS else getattr(mod, "HELP", "")
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv or DEFAULT_ARGV)
    try:
        module = commands()[args.command]
        if module is None:
            raise ConfigError(_missing(args.command))
        return int(importlib.import_module(module).run(args) or 0)
    except REPORTED as exc:
        print(f"llara-edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"llara-edge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
