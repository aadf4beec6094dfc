"""SSH and rsync to a robot, with every failure mapped to one typed error.

Contract:
    target = parse_target("user@host:2222:/opt/robot", identity=..., known_hosts=...) -> Target
    ssh(target, argv, timeout=...) -> CompletedProcess   # argv run on the device, shell-quoted
    rsync_to(target, src_dir, remote_dir, copy_dest=None, bwlimit_kib=None, timeout=None)
    fetch(target, remote_path, local_path)               # one file back from the device
    classify(stderr, default) -> (error class, hint, line)  # first matching FAILURES rule

Only the tools a Jetson owner already has: `ssh` and `rsync` (rsync over ssh). BatchMode is
always on, so a wrong password or key fails at once instead of prompting. rsync keeps
partial files in `.rsync-partial` inside the destination, so an interrupted copy resumes where
it stopped; unchanged files (size + mtime) are not sent again.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llara_edge.errors import (
    AuthError,
    ConfigError,
    DeployError,
    DiskFullError,
    HostUnreachableError,
)

PARTIAL_DIR = ".rsync-partial"
# (stderr pattern, error class, hint): the first match decides; ssh's own messages come
# through rsync's stderr too, so one table serves both.
FAILURES: tuple[tuple[str, type[DeployError], str], ...] = (
    (r"No space left on device|Disk quota exceeded", DiskFullError,
     "free space on the device (df -h) or deploy to another DIR"),
    (r"Permission denied \(|Too many authentication failures|Authentication failed",
     AuthError, "install your key on the device (ssh-copy-id) or pass --identity"),
    (r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED", AuthError,
     "the device's host key is unknown or changed; check known_hosts"),
    (r"Connection refused|Connection timed out|No route to host|Network is unreachable|"
     r"Could not resolve hostname|Name or service not known|Connection closed by|"
     r"Operation timed out", HostUnreachableError,
     "is the robot on, on this network, and sshd listening on that port?"),
)


@dataclass(frozen=True)
class Target:
    host: str                      # "host" or "user@host"
    directory: str                 # install root on the device (relative: to the login's home)
    port: int | None = None
    identity: Path | None = None   # ssh -i
    known_hosts: Path | None = None
    connect_timeout_s: int = 10

    def __post_init__(self):
        if not self.host or self.host.startswith("-"):
            raise ConfigError(f"bad deploy host {self.host!r}")
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"bad ssh port {self.port}")
        if not self.directory:
            raise ConfigError("empty install directory on the device")

    def label(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.host}{port}:{self.directory}"


def parse_target(text: str, **fields) -> Target:
    """HOST[:PORT][:DIR] -> Target; DIR defaults to `llara-edge` in the login's home."""
    host, _, rest = text.partition(":")
    port = None
    head, sep, tail = rest.partition(":")
    if head.isdigit():
        port, rest = int(head), tail if sep else ""
    return Target(host=host, directory=rest or "llara-edge", port=port, **fields)


def ssh_command(target: Target) -> list[str]:
    """The ssh client command line (without the remote command)."""
    cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={target.connect_timeout_s}",
           "-o", "StrictHostKeyChecking=accept-new"]
    if target.port:
        cmd += ["-p", str(target.port)]
    if target.identity:
        cmd += ["-i", str(target.identity), "-o", "IdentitiesOnly=yes"]
    if target.known_hosts:
        cmd += ["-o", f"UserKnownHostsFile={target.known_hosts}"]
    return cmd


def classify(stderr: str, default: type[DeployError] = DeployError) -> tuple[type, str, str]:
    """(error class, hint, the matching line) of the first FAILURES rule matching stderr;
    (default, "", last line) when none does."""
    lines = stderr.strip().splitlines()
    for pattern, cls, hint in FAILURES:
        for line in lines:
            if re.search(pattern, line):
                return cls, hint, line.strip()
    return default, "", lines[-1].strip() if lines else ""


def _raise(what: str, target: Target, proc: subprocess.CompletedProcess,
           default: type[DeployError] = DeployError):
    cls, hint, line = classify(proc.stderr or proc.stdout or "", default)
    detail = line or f"exit status {proc.returncode}"
    raise cls(f"{what} on {target.label()} failed: {detail}" + (f" ({hint})" if hint else ""))


def _run(cmd: list[str], timeout: float | None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError as err:
        raise DeployError(f"{cmd[0]} not found on this machine (install OpenSSH and rsync)") \
            from err
    except subprocess.TimeoutExpired as err:
        raise HostUnreachableError(f"{cmd[0]} gave no answer within {timeout} s") from err


def ssh(target: Target, argv: list[str], what: str = "remote command",
        timeout: float | None = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run argv on the device (one shell-quoted string); typed error on failure if check."""
    proc = _run([*ssh_command(target), "--", target.host, shlex.join(argv)], timeout)
    if check and proc.returncode != 0:
        # 255 is ssh's own failure (connect, auth); anything else is the remote command's
        _raise(what, target, proc, HostUnreachableError if proc.returncode == 255
               else DeployError)
    return proc


def sh(target: Target, script: str, what: str, timeout: float | None = 120):
    """Run a POSIX sh script on the device (`sh -c SCRIPT`)."""
    return ssh(target, ["sh", "-c", script], what, timeout)


def rsync_to(target: Target, src_dir: Path, remote_dir: str, copy_dest: str | None = None,
             bwlimit_kib: int | None = None, rsync_path: str | None = None,
             timeout: float | None = None) -> subprocess.CompletedProcess:
    """Copy src_dir/ into remote_dir/ (resumable; --copy-dest: reuse unchanged device files)."""
    cmd = ["rsync", "-a", "--stats", f"--partial-dir={PARTIAL_DIR}",
           "-e", shlex.join(ssh_command(target))]
    if copy_dest:
        cmd.append(f"--copy-dest={copy_dest}")
    if bwlimit_kib:
        cmd.append(f"--bwlimit={bwlimit_kib}")
    if rsync_path:
        cmd.append(f"--rsync-path={rsync_path}")
    cmd += [f"{src_dir}/", f"{target.host}:{remote_dir}/"]
    proc = _run(cmd, timeout)
    if proc.returncode != 0:
        _raise("rsync", target, proc)
    return proc


def fetch(target: Target, remote_path: str, local_path: Path) -> Path:
    """Bring one file back from the device (rsync, so the same errors)."""
    local_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["rsync", "-a", "-e", shlex.join(ssh_command(target)),
           f"{target.host}:{remote_path}", str(local_path)]
    proc = _run(cmd, 300)
    if proc.returncode != 0:
        _raise(f"fetching {remote_path}", target, proc)
    return local_path


def sent_bytes(rsync_stats: str) -> int | None:
    """'Total bytes sent: 1,234' of rsync --stats, or None."""
    match = re.search(r"Total bytes sent: ([\d,.]+)", rsync_stats)
    return int(re.sub(r"[,.]", "", match.group(1))) if match else None
