"""A real OpenSSH server on 127.0.0.1 as the "robot" of the deploy tests.

`SshDevice.start(tmp)` makes a throwaway host key and user key (ssh-keygen), writes an
sshd_config for the current user (root: PermitRootLogin prohibit-password, keys only,
StrictModes no for the temp dir), starts `/usr/sbin/sshd -D -e -f CONFIG` on a free port and
waits until it accepts connections; `stop()` terminates it. Skips when sshd, ssh, ssh-keygen
or rsync are not installed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True)


@dataclass
class SshDevice:
    root: Path
    port: int
    key: Path
    known_hosts: Path
    proc: subprocess.Popen

    @classmethod
    def start(cls, tmp: Path) -> SshDevice:
        missing = [t for t in ("ssh", "ssh-keygen", "rsync") if shutil.which(t) is None]
        if not SSHD.exists() or missing:
            pytest.skip(f"OpenSSH server/client or rsync not installed ({missing or SSHD})")
        tmp.mkdir(parents=True, exist_ok=True)
        _keygen(tmp / "host_key")
        _keygen(tmp / "user_key")
        shutil.copy(tmp / "user_key.pub", tmp / "authorized_keys")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        port = _free_port()
        (tmp / "sshd_config").write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {tmp / 'host_key'}",
            f"PidFile {tmp / 'sshd.pid'}", f"AuthorizedKeysFile {tmp / 'authorized_keys'}",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no",
            "PrintMotd no", ""]))
        with open(tmp / "sshd.log", "w") as log:  # sshd keeps its own copy of the descriptor
            proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(tmp / "sshd_config")],
                                    stdout=subprocess.DEVNULL, stderr=log)
        device = cls(tmp, port, tmp / "user_key", tmp / "known_hosts", proc)
        device._wait()
        return device

    def _wait(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def cli_args(self) -> list[str]:
        return ["--identity", str(self.key), "--known-hosts", str(self.known_hosts)]

    def target(self, directory: Path) -> str:
        return f"localhost:{self.port}:{directory}"
