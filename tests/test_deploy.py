"""`llara-edge deploy` end to end against a real sshd on 127.0.0.1 (tests/ssh_device.py).

The "device" is this machine: the remote commands run the worktree's .venv llara-edge. Cases:
a clean install, a re-deploy of a changed artifact (current/previous swap, unchanged files not
sent again), a tampered copy refused by the on-device verify with the previous artifact still
verifying, a full disk (a real 8 MiB tmpfs when mount is permitted), an unreachable port, a
wrong key, and a copy killed midway then resumed; the bench is skipped in those (--no-bench)
and run in one case on a "device" without torch (its llara-edge behind a wrapper that makes
`import torch` fail, as on a robot set up by tools/setup_l4t.sh): the quick latency bench
runs there without the HF baseline and its JSON comes back. The artifact is the session's
small export.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_artifact import shared_artifact
from ssh_device import SshDevice

LLARA_EDGE = str(Path(sys.executable).with_name("llara-edge"))


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    dev = SshDevice.start(tmp_path_factory.mktemp("sshd"))
    yield dev
    dev.stop()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return shared_artifact(tmp_path_factory)


def deploy(device: SshDevice, art: Path, robot: Path, *extra: str, key: Path | None = None,
           wait: bool = True, remote: str = LLARA_EDGE, bench: bool = False):
    argv = [LLARA_EDGE, "deploy", str(art), device.target(robot),
            *([] if bench else ["--no-bench"]),
            "--remote-llara-edge", remote, "--known-hosts", str(device.known_hosts),
            "--identity", str(key or device.key), "--connect-timeout", "5", *extra]
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def verify(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LLARA_EDGE, "verify", str(path)], capture_output=True, text=True,
                          timeout=120)


def changed_copy(art: Path, dest: Path, token: str) -> Path:
    """A second, different artifact: one small file edited and the manifest rewritten."""
    from llara_export.manifest import file_entries, read_manifest, write_manifest

    shutil.copytree(art, dest)
    with open(dest / "tokenizer_config.json", "a") as fh:
        fh.write(f"\n{token}")
    manifest, _ = read_manifest(dest)
    manifest["files"] = file_entries(dest, manifest["files"])
    manifest.pop("manifest_version")
    write_manifest(dest, manifest)
    return dest


def test_deploy_install_then_update(device, artifact, tmp_path):
    robot = tmp_path / "robot"
    first = deploy(device, artifact, robot)
    assert first.returncode == 0, first.stderr
    assert "on-device verification: verify: ok" in first.stdout
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert report["copied"]["bytes_sent"] > 0.9 * sum(
        f.stat().st_size for f in artifact.iterdir() if f.is_file())
    assert verify(robot / "current").returncode == 0
    v2 = changed_copy(artifact, tmp_path / "v2", "1")
    second = deploy(device, v2, robot)
    assert second.returncode == 0, second.stderr
    report2 = json.loads(second.stdout.strip().splitlines()[-1])
    # only the edited file and the manifest travel; the rest is copied on the device
    assert report2["copied"]["bytes_sent"] < report["copied"]["bytes_sent"] / 5
    assert os.readlink(robot / "previous") == os.readlink(robot / "current").replace(
        report2["manifest_sha256"][:12], report["manifest_sha256"][:12])
    assert verify(robot / "current").returncode == 0
    assert verify(robot / "previous").returncode == 0


def test_bench_runs_on_a_device_without_torch(device, artifact, tmp_path):
    block = tmp_path / "no-torch"
    block.mkdir()
    (block / "sitecustomize.py").write_text(
        "import sys\nfor name in ('torch', 'transformers'):\n    sys.modules[name] = None\n")
    wrapper = tmp_path / "llara-edge-no-torch"
    wrapper.write_text(f"#!/bin/sh\nexport PYTHONPATH={block} MUJOCO_GL=egl\n"
                       f"exec {LLARA_EDGE} \"$@\"\n")
    wrapper.chmod(0o755)
    probe = subprocess.run([str(wrapper), "doctor"], capture_output=True, text=True,
                           timeout=120)
    assert "torch" in probe.stdout + probe.stderr  # the wrapper's python really lacks torch
    from llara_bench.bench_models import with_quant_variant

    art = with_quant_variant(artifact, "q4_k_m", tmp_path / "art-q4")  # the bench's candidate
    out = tmp_path / "runs"
    res = deploy(device, art, tmp_path / "robot", "--out", str(out), remote=str(wrapper),
                 bench=True)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    bench = json.loads(Path(report["bench"]["json"]).read_text())
    assert bench["baselines"]["hf_generate"] is None
    assert "torch" in bench["skipped_baselines"]["hf-generate"]
    assert "hf-generate" not in bench["runners"]
    assert bench["metrics"]["latency.candidate.parse_failures"] == 0
    assert bench["metrics"]["latency.candidate.step_p50_over_stock_gbnf"] > 0


def test_tampered_copy_is_refused_and_previous_kept(device, artifact, tmp_path):
    robot = tmp_path / "robot"
    assert deploy(device, artifact, robot).returncode == 0
    before = os.readlink(robot / "current")
    # an rsync on the device that corrupts one received file after the copy (bit rot / a bad
    # card): the manifest's sha256 no longer matches what landed on the disk
    wrapper = tmp_path / "rsync-tamper"
    wrapper.write_text('#!/bin/sh\nrsync "$@"; rc=$?\n'
                       'for d in "$(dirname "$0")"/robot/.incoming-*; do '
                       'printf X | dd of="$d/tokenizer.model" bs=1 seek=100 conv=notrunc '
                       '2>/dev/null; done\nexit $rc\n')
    wrapper.chmod(0o755)
    v2 = changed_copy(artifact, tmp_path / "v2", "2")
    out = deploy(device, v2, robot, "--rsync-path", str(wrapper))
    assert out.returncode == 2
    assert "verification on the device failed" in out.stderr
    assert "tokenizer.model" in out.stderr
    assert os.readlink(robot / "current") == before
    assert verify(robot / "current").returncode == 0
    assert not list(robot.glob(".incoming-*"))


def test_engines_failure_keeps_previous(device, artifact, tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    robot = tmp_path / "robot"
    assert deploy(device, artifact, robot).returncode == 0
    before = os.readlink(robot / "current")
    out = deploy(device, changed_copy(artifact, tmp_path / "v2", "4"), robot, "--engines")
    assert out.returncode == 2 and "tensorrt not installed" in out.stderr, out.stderr
    assert os.readlink(robot / "current") == before


def test_unreachable_and_bad_key(device, artifact, tmp_path):
    from ssh_device import _free_port

    closed = SshDevice(device.root, _free_port(), device.key, device.known_hosts, device.proc)
    out = deploy(closed, artifact, tmp_path / "robot")
    assert out.returncode == 2 and "Connection refused" in out.stderr, out.stderr
    assert "is the robot on" in out.stderr
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    out = deploy(device, artifact, tmp_path / "robot", key=other)
    assert out.returncode == 2 and "Permission denied" in out.stderr, out.stderr
    assert "ssh-copy-id" in out.stderr


@pytest.fixture
def small_disk(tmp_path, artifact):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    # room for the artifact once, not twice
    size = int(1.5 * sum(f.stat().st_size for f in artifact.iterdir() if f.is_file()))
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if got.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {got.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full(device, artifact, tmp_path, small_disk):
    robot = small_disk / "robot"
    first = deploy(device, artifact, robot)
    if first.returncode != 0:
        pytest.skip(f"the fixture artifact does not fit the small tmpfs: {first.stderr}")
    before = os.readlink(robot / "current")
    v2 = changed_copy(artifact, tmp_path / "v2", "3")
    out = deploy(device, v2, robot)  # the pre-copy space check
    assert out.returncode == 2 and "MiB free" in out.stderr, out.stderr
    out = deploy(device, v2, robot, "--no-space-check")  # rsync itself runs out of space
    assert out.returncode == 2 and "No space left on device" in out.stderr, out.stderr
    assert os.readlink(robot / "current") == before
    assert verify(robot / "current").returncode == 0
    assert not list(robot.glob(".incoming-*"))


def test_killed_copy_resumes(device, artifact, tmp_path):
    robot = tmp_path / "robot"
    proc = deploy(device, artifact, robot, "--bwlimit", "2000", wait=False)
    incoming = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and incoming is None:
        time.sleep(0.2)
        found = [p for p in robot.glob(".incoming-*") if any(p.rglob("*"))]
        incoming = found[0] if found else None
    assert incoming is not None, "the copy never started"
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its rsync and ssh: a pulled cable
    proc.communicate(timeout=60)
    assert not (robot / "current").exists()  # nothing installed by the interrupted run
    assert incoming.exists()
    out = deploy(device, artifact, robot)
    assert out.returncode == 0, out.stderr
    sent = json.loads(out.stdout.strip().splitlines()[-1])["copied"]["bytes_sent"]
    total = sum(f.stat().st_size for f in artifact.iterdir() if f.is_file())
    assert sent < total, (sent, total)  # resumed: what was already there was not sent again
    assert verify(robot / "current").returncode == 0
