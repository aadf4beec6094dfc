"""`llara-edge service install|status|logs|uninstall`: start the loop at boot (systemd).

    llara-edge service install --robot robot.toml --artifact DIR [--user U] [--run-args ...]
    llara-edge service status | logs [-n 50] | uninstall

install refuses a simulator robot config and an artifact whose files do not match its
manifest, writes UNIT_DIR/llara-edge.service atomically
(deploy/service.py renders it), checks it with `systemd-analyze verify` when that tool exists
and, when systemd is running (/run/systemd/system), runs `systemctl daemon-reload` and
`systemctl enable --now` (--no-enable: only write the file). status prints the unit file and
`systemctl status`; logs the tail of the rotating log; uninstall stops, disables and removes
the unit. `supervise` is what the unit's ExecStart runs (not for people).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ACTIONS = ("install", "status", "logs", "uninstall", "supervise")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llara_edge.deploy.service import DEFAULT_LOG_DIR, DEFAULT_UNIT_DIR

    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("--robot", type=Path, help="install: robot TOML of the real arm")
    parser.add_argument("--artifact", type=Path, help="install: export dir (DIR/current)")
    parser.add_argument("--user", default="", help="install: run as this user (default root)")
    parser.add_argument("--unit-dir", type=Path, default=DEFAULT_UNIT_DIR)
    parser.add_argument("--log-dir", type=Path, default=DEFAULT_LOG_DIR)
    parser.add_argument("--max-bytes", type=int, default=10 * 2**20, help="one log file")
    parser.add_argument("--backups", type=int, default=5, help="rotated log files kept")
    parser.add_argument("--no-enable", action="store_true", help="install: only write the unit")
    parser.add_argument("-n", "--lines", type=int, default=50, help="logs: lines shown")
    # options taking the rest of the line (a REMAINDER positional would swallow --robot ...)
    parser.add_argument("--run-args", nargs=argparse.REMAINDER, default=[],
                        help="install, last: the rest are extra `llara-edge run` arguments")
    parser.add_argument("--exec", dest="exec_cmd", nargs=argparse.REMAINDER, default=[],
                        help="supervise, last: the rest is the llara-edge command to run")


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _systemctl(*argv: str) -> int:
    return subprocess.run(["systemctl", *argv], check=False).returncode


def verify_unit(path: Path, text: str) -> tuple[bool | None, str]:
    """Write text to path, `systemd-analyze verify` it -> (ok, output); ok None: no tool."""
    if shutil.which("systemd-analyze") is None:
        return None, "systemd-analyze not installed: unit not verified"
    path.write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, check=False)
    out = (proc.stdout + proc.stderr).strip()
    # Without a running systemd it still parses the file; this line is only about the host.
    lines = [ln for ln in out.splitlines() if "System has not been booted with systemd" not in ln]
    return proc.returncode == 0 and not lines, "\n".join(lines)


def _install(args) -> int:
    from llara_edge.deploy.service import UNIT_NAME, ServiceConfig, check_not_simulator, unit_text
    from llara_edge.errors import ConfigError

    if args.robot is None or args.artifact is None:
        raise ConfigError("service install needs --robot robot.toml and --artifact DIR")
    from llara_edge.runtime.manifest import load_manifest

    check_not_simulator(args.robot)
    load_manifest(args.artifact)  # ArtifactError naming the first missing / changed file
    exe = shutil.which("llara-edge") or str(Path(sys.executable).with_name("llara-edge"))
    cfg = ServiceConfig(llara_edge=Path(exe), robot=args.robot, artifact=args.artifact,
                        log_dir=args.log_dir, user=args.user, run_args=tuple(args.run_args),
                        max_bytes=args.max_bytes, backups=args.backups)
    text = unit_text(cfg)
    with tempfile.TemporaryDirectory() as scratch:  # verify wants a *.service file name
        ok, out = verify_unit(Path(scratch) / UNIT_NAME, text)
    if ok is False:
        raise ConfigError(f"systemd-analyze verify rejected the unit:\n{out}")
    args.unit_dir.mkdir(parents=True, exist_ok=True)
    path = args.unit_dir / UNIT_NAME
    tmp = path.with_suffix(".service.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(f"service: wrote {path} ({'verified by systemd-analyze' if ok else out})")
    if args.no_enable or not _systemd_running():
        print("service: systemd not running here (or --no-enable): on the robot run "
              f"`systemctl daemon-reload && systemctl enable --now {UNIT_NAME}`")
        return 0
    return _systemctl("daemon-reload") or _systemctl("enable", "--now", UNIT_NAME)


def _status(args) -> int:
    from llara_edge.deploy.service import UNIT_NAME

    path = args.unit_dir / UNIT_NAME
    if not path.is_file():
        print(f"service: not installed ({path} missing)")
        return 3
    print(f"service: unit {path}\n" + path.read_text())
    if not _systemd_running():
        print("service: systemd is not running on this machine: no live status")
        return 0
    return _systemctl("status", "--no-pager", UNIT_NAME)


def _logs(args) -> int:
    from llara_edge.deploy.service import LOG_FILE

    path = args.log_dir / LOG_FILE
    if not path.is_file():
        print(f"service: no log yet at {path}", file=sys.stderr)
        return 3
    with open(path, errors="replace") as f:
        tail = f.readlines()[-args.lines:]
    sys.stdout.writelines(tail)
    return 0


def _uninstall(args) -> int:
    from llara_edge.deploy.service import UNIT_NAME

    path = args.unit_dir / UNIT_NAME
    if _systemd_running():
        _systemctl("disable", "--now", UNIT_NAME)
    if path.exists():
        path.unlink()
        print(f"service: removed {path}")
    else:
        print(f"service: {path} was not installed")
    if _systemd_running():
        _systemctl("daemon-reload")
    return 0


def _supervise(args) -> int:
    from llara_edge.deploy.service import supervise
    from llara_edge.errors import ConfigError

    cmd = list(args.exec_cmd)
    if not cmd:
        raise ConfigError("service supervise needs --exec followed by the llara-edge command")
    exe = Path(sys.executable).with_name("llara-edge")
    return supervise([str(exe), *cmd], args.log_dir, args.max_bytes, args.backups)


HANDLERS = {"install": _install, "status": _status, "logs": _logs, "uninstall": _uninstall,
            "supervise": _supervise}


def run(args: argparse.Namespace) -> int:
    return HANDLERS[args.action](args)
