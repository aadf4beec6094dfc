"""The atomic install of an export directory on a robot: copy, verify ON the device, swap.

Contract:
    report = deploy(DeployConfig(artifact, target, ...), say=print) -> dict

Layout on the device (DIR = target.directory):
    DIR/.incoming-<sha12>/   the copy in progress (rsync resumes into it after an interruption)
    DIR/releases/<sha12>/    verified artifacts; <sha12> = sha256 of the manifest.json
    DIR/current -> releases/<sha12>     what the robot runs; swapped with one rename(2)
    DIR/previous -> releases/<old>      the one before, kept for a rollback
Steps: check locally (load_manifest), probe the device (login, free space), rsync into the
incoming dir (unchanged files are copied from DIR/current on the device, not over the wire),
run `llara-edge verify` ON the device, optionally `llara-edge engines build` there (the
TensorRT plan cache is keyed by ONNX hash, not path), and only then move it into releases/
and swap the `current` link. Any failure before the swap leaves `current` untouched; a failed
verify or a full disk also removes the incoming dir. Optionally: the device's set-up command
first, and the quick latency bench on the installed artifact last (its JSON comes back into
cfg.out).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llara_edge.deploy import transport
from llara_edge.deploy.transport import Target
from llara_edge.errors import ConfigError, DeployError, DiskFullError, VerifyError
from llara_edge.runtime.manifest import MANIFEST_NAME, load_manifest, sha256_file

SPACE_MARGIN = 1.05  # free space wanted on the device: the artifact's bytes times this


@dataclass
class DeployConfig:
    artifact: Path
    target: Target
    remote_llara_edge: str = "llara-edge"  # the command on the device (path or name on PATH)
    setup_command: str | None = None       # run on the device before installing, e.g. set-up
    build_engines: bool = False
    bench: bool = True
    bench_args: tuple[str, ...] = ()       # extra `bench latency` arguments on the device
    check_space: bool = True
    bwlimit_kib: int | None = None         # rsync --bwlimit (KiB/s), e.g. a shared radio link
    rsync_path: str | None = None          # rsync --rsync-path on the device
    out: Path = field(default_factory=lambda: Path("runs/deploy"))

    def __post_init__(self):
        self.artifact = Path(self.artifact)
        if not (self.artifact / MANIFEST_NAME).is_file():
            raise ConfigError(f"{self.artifact} is not an export directory (no {MANIFEST_NAME})")
        if self.bwlimit_kib is not None and self.bwlimit_kib <= 0:
            raise ConfigError(f"bwlimit must be positive KiB/s, got {self.bwlimit_kib}")


def _q(path: str) -> str:
    return shlex.quote(path)


def probe(target: Target) -> dict:
    """Log in, create DIR, and read its free space (KiB) and what `current` points to."""
    d = _q(target.directory)
    script = (f"mkdir -p {d}/releases && cd {d} && df -Pk . | tail -n 1 && "
              "(readlink current || true)")
    lines = transport.sh(target, script, "probe").stdout.splitlines()
    free_kib = int(lines[0].split()[3]) if lines and len(lines[0].split()) > 3 else None
    return {"free_kib": free_kib, "current": lines[1].strip() if len(lines) > 1 else ""}


def _remove(target: Target, path: str) -> None:
    transport.sh(target, f"rm -rf {_q(path)}", f"removing {path}")


def _copy(cfg: DeployConfig, incoming: str, have_current: bool) -> dict:
    t0 = time.perf_counter()
    try:
        proc = transport.rsync_to(cfg.target, cfg.artifact, incoming,
                                  copy_dest="../current/" if have_current else None,
                                  bwlimit_kib=cfg.bwlimit_kib, rsync_path=cfg.rsync_path)
    except DiskFullError:
        _remove(cfg.target, incoming)  # free what the failed copy used; `current` stays
        raise
    return {"seconds": round(time.perf_counter() - t0, 2),
            "bytes_sent": transport.sent_bytes(proc.stdout)}


def _verify(cfg: DeployConfig, path: str, manifest_sha: str) -> str:
    """`llara-edge verify` ON the device; its last line, VerifyError if it refused."""
    argv = [cfg.remote_llara_edge, "verify", path, "--manifest-sha256", manifest_sha]
    proc = transport.ssh(cfg.target, argv, "verify", check=False)
    out = (proc.stdout + proc.stderr).strip().splitlines()
    line = out[-1] if out else f"exit status {proc.returncode}"
    if proc.returncode == 255:
        transport.ssh(cfg.target, argv, "verify")  # raises the ssh failure, typed
    if proc.returncode != 0:
        raise VerifyError(f"verification on the device failed, nothing installed: {line}")
    return line


def _activate(target: Target, sha: str) -> str:
    """Move the verified copy into releases/ and swap `current` (rename: atomic)."""
    d = _q(target.directory)
    script = (f"set -e; cd {d}; rm -rf releases/{sha}; mv .incoming-{sha} releases/{sha}; "
              "old=$(readlink current || true); "
              f"ln -sfn releases/{sha} .current.tmp; mv -T .current.tmp current; "
              'if [ -n "$old" ] && [ "$old" != "releases/' + sha + '" ]; then '
              'ln -sfn "$old" .previous.tmp; mv -T .previous.tmp previous; fi; '
              # prune: keep only current and previous
              'keep="$(readlink current) $(readlink previous || true)"; '
              'for r in releases/*; do case " $keep " in *" $r "*) ;; *) rm -rf "$r";; esac; '
              "done; readlink previous || true")
    return transport.sh(target, script, "install").stdout.strip()


def _bench(cfg: DeployConfig, say: Callable[[str], None]) -> dict:
    d = cfg.target.directory
    stamp = time.strftime("%Y%m%d-%H%M%S")
    remote_out = f"{d}/bench/{stamp}"
    argv = [cfg.remote_llara_edge, "bench", "latency", "--quick", "--artifact", f"{d}/current",
            "--cache", f"{d}/bench/cache", "--out", remote_out, *cfg.bench_args]
    say(f"deploy: bench on the device: {shlex.join(argv)}")
    proc = transport.ssh(cfg.target, argv, "bench latency --quick", timeout=1800)
    local = transport.fetch(cfg.target, f"{remote_out}/latency.json",
                            cfg.out / f"latency-{stamp}.json")
    return {"json": str(local), "stdout_tail": proc.stdout.strip().splitlines()[-1:]}


def _install(cfg: DeployConfig, manifest: dict, sha: str, state: dict, say) -> dict:
    d, incoming = cfg.target.directory, f"{cfg.target.directory}/.incoming-{sha[:12]}"
    size = sum(int(e.get("size", 0)) for e in manifest.get("files", {}).values())
    if state["current"] == f"releases/{sha[:12]}":
        say("deploy: this artifact is already current on the device; verifying it again")
        return {"copied": None, "verify": _verify(cfg, f"{d}/current", sha), "previous": None}
    free = state["free_kib"]
    if cfg.check_space and free is not None and free * 1024 < size * SPACE_MARGIN:
        raise DiskFullError(f"{cfg.target.label()} has {free / 1024:.1f} MiB free, the artifact "
                            f"needs {size / 2**20:.1f} MiB (+5%); nothing copied, `current` "
                            "unchanged (free space on the device or deploy to another DIR)")
    say(f"deploy: copying {len(manifest['files'])} files ({size / 2**20:.1f} MiB) -> {incoming}")
    copied = _copy(cfg, incoming, bool(state["current"]))
    say(f"deploy: copied in {copied['seconds']} s, rsync sent {copied['bytes_sent']} bytes")
    try:
        line = _verify(cfg, incoming, sha)
    except VerifyError:
        _remove(cfg.target, incoming)
        raise
    say(f"deploy: on-device verification: {line}")
    if cfg.build_engines:  # before the swap: a device that cannot build keeps its artifact
        say("deploy: building the TensorRT engines on the device")
        proc = transport.ssh(cfg.target, [cfg.remote_llara_edge, "engines", "build", incoming],
                             "engines build", timeout=3600)
        say("\n".join(proc.stdout.strip().splitlines()))
    previous = _activate(cfg.target, sha[:12])
    say(f"deploy: installed {d}/current -> releases/{sha[:12]} (previous: {previous or 'none'})")
    return {"copied": copied, "verify": line, "previous": previous or None}


def deploy(cfg: DeployConfig, say: Callable[[str], None] = print) -> dict:
    t0 = time.perf_counter()
    manifest = load_manifest(cfg.artifact)  # refuse to ship a broken export
    sha = sha256_file(cfg.artifact / MANIFEST_NAME)
    say(f"deploy: {cfg.artifact} (manifest {sha[:12]}) -> {cfg.target.label()}")
    state = probe(cfg.target)
    if cfg.setup_command:
        say(f"deploy: device set-up: {cfg.setup_command}")
        transport.sh(cfg.target, cfg.setup_command, "device set-up", timeout=3600)
    report = {"target": cfg.target.label(), "manifest_sha256": sha,
              **_install(cfg, manifest, sha, state, say)}
    if cfg.bench:
        try:
            report["bench"] = _bench(cfg, say)
        except DeployError as err:  # after the swap: say that the install itself succeeded
            raise type(err)(f"installed and verified {cfg.target.directory}/current, but the "
                            f"bench failed (--no-bench skips it): {err}") from err
    report["seconds"] = round(time.perf_counter() - t0, 2)
    return report


def read_report(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise DeployError(f"cannot read the bench report {path}: {err}") from err
