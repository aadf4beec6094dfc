"""The untethered robot: a systemd unit that starts the closed loop at boot.

    unit_text(ServiceConfig) -> str        the [Unit]/[Service]/[Install] file
    check_not_simulator(robot.toml)        ConfigError for a simulator config (virtual bus/sim cam)
    supervise(cmd, log_dir) -> int         runs `llara-edge run ...`, its output into a rotating log

The unit runs `llara-edge service supervise ... --exec run <run args>`: a small parent that starts
`llara-edge run` as a child, copies each output line (the per-episode lines, the latency
table, the JSON report) into LOG_DIR/robot.log rotated at max_bytes with `backups` old files
(logging.handlers.RotatingFileHandler), and forwards SIGTERM/SIGINT to the child so the loop's
own stop path runs (hold, torque off with --torque-off): the watchdog and e-stop are those of
`llara-edge run`, unchanged. systemd restarts the service on failure, at most burst times per
interval, so a crashing policy does not spin the arm in a loop.
"""

from __future__ import annotations

import logging
import logging.handlers
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from llara_edge.errors import ConfigError

UNIT_NAME = "llara-edge.service"
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_LOG_DIR = Path("/var/log/llara-edge")
LOG_FILE = "robot.log"
SIMULATED_CAMERAS = ("sim", "software-realsense", "file")  # no real camera behind these


@dataclass(frozen=True)
class ServiceConfig:
    """What the unit runs. Paths are made absolute: systemd has no working directory to guess."""

    llara_edge: Path  # the llara-edge executable on the robot (its venv's bin/llara-edge)
    robot: Path  # robot TOML of the real arm
    artifact: Path  # export dir, usually DIR/current from `llara-edge deploy`
    log_dir: Path = DEFAULT_LOG_DIR
    user: str = ""  # "" = root; the user needs the serial (dialout) and video groups
    run_args: tuple[str, ...] = ()  # extra `llara-edge run` arguments (--task, --camera ...)
    max_bytes: int = 10 * 2**20  # one log file, bytes
    backups: int = 5  # rotated log files kept
    restart_sec: int = 5  # seconds between a failure and the restart
    burst: int = 5  # restarts allowed per 300 s, then systemd gives up
    description: str = field(default="llara-edge closed loop (untethered robot)")

    def __post_init__(self) -> None:
        for name in ("llara_edge", "robot", "artifact", "log_dir"):
            object.__setattr__(self, name, Path(getattr(self, name)).absolute())
        if self.max_bytes < 4096 or self.backups < 1:
            raise ConfigError(f"log rotation needs max_bytes >= 4096 and backups >= 1, got "
                              f"{self.max_bytes} / {self.backups}")
        if self.restart_sec < 0 or self.burst < 1:
            raise ConfigError("restart_sec must be >= 0 and burst >= 1")

    def exec_start(self) -> list[str]:
        return [str(self.llara_edge), "service", "supervise", "--log-dir", str(self.log_dir),
                "--max-bytes", str(self.max_bytes), "--backups", str(self.backups), "--exec",
                "run", "--robot", str(self.robot), "--artifact", str(self.artifact),
                "--out", str(self.log_dir / "last-run"), "--no-gif", *self.run_args]


def check_not_simulator(robot_toml: Path) -> None:
    """A unit for the simulator is a mistake: refuse a virtual bus or a simulated camera."""
    from llara_edge.robot.config import RobotConfig

    cfg = RobotConfig.load(robot_toml)
    if cfg.bus.is_virtual or cfg.camera.kind in SIMULATED_CAMERAS:
        raise ConfigError(f"{robot_toml} is a simulator config (bus.port={cfg.bus.port!r}, "
                          f"camera.kind={cfg.camera.kind!r}): a boot service drives a real arm; "
                          "set bus.port to the serial device and camera.kind to realsense")


def unit_text(cfg: ServiceConfig) -> str:
    """The systemd unit. ExecStart is quoted with shlex (systemd accepts shell-style quotes)."""
    user = f"User={cfg.user}\nSupplementaryGroups=dialout video\n" if cfg.user else ""
    return (
        "[Unit]\n"
        f"Description={cfg.description}\n"
        "After=network.target\n"
        f"StartLimitIntervalSec=300\nStartLimitBurst={cfg.burst}\n\n"
        "[Service]\n"
        "Type=simple\n"
        f"{user}"
        f"WorkingDirectory={cfg.artifact.parent}\n"
        f"ExecStart={shlex.join(cfg.exec_start())}\n"
        # SIGTERM to the supervisor only: it forwards to the loop, which holds the arm.
        "KillMode=mixed\nKillSignal=SIGTERM\nTimeoutStopSec=20\n"
        f"Restart=on-failure\nRestartSec={cfg.restart_sec}\n"
        "Environment=PYTHONUNBUFFERED=1\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def _rotating_logger(log_dir: Path, max_bytes: int, backups: int) -> logging.Logger:
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(log_dir / LOG_FILE, maxBytes=max_bytes,
                                                   backupCount=backups)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger(f"llara_edge.service.{log_dir}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def supervise(cmd: list[str], log_dir: Path, max_bytes: int, backups: int) -> int:
    """Run cmd, every output line into the rotating log (and stdout: the journal). -> its rc."""
    logger = _rotating_logger(Path(log_dir), max_bytes, backups)
    logger.info("start: %s", shlex.join(cmd))
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             bufsize=1)

    def forward(signum, _frame):
        logger.info("signal %d: forwarded to the loop (pid %d)", signum, child.pid)
        child.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for line in child.stdout:
            logger.info("%s", line.rstrip("\n"))
            sys.stdout.write(line)
            sys.stdout.flush()
        rc = child.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    logger.info("exit: rc %d", rc)
    return rc
