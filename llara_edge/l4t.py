"""L4T / JetPack detection and what the robot's set-up builds there (stdlib only).

    detect(release=/etc/nv_tegra_release, model=/proc/device-tree/model) -> L4t | None
    plan(l4t, ort_gpu_wheel=None) -> L4tPlan           what tools/setup_l4t.sh will do
    python -m llara_edge.l4t [--release F] [--model F] [--shell]

tools/setup_l4t.sh runs this module with the system python3 before any venv exists (hence no
third-party import here) and `--shell` prints the plan as shell assignments it evals;
`llara-edge doctor` shows the same plan. LLARA_EDGE_TEGRA_RELEASE / LLARA_EDGE_DEVICE_MODEL
override the two paths (tests use fake files). The JetPack table maps an L4T release to the
JetPack that ships it (NVIDIA's JetPack archive); an unknown release is reported, not guessed.
Compute capability comes from the module name: Orin 8.7, Xavier 7.2, Thor 11.0, Nano/TX1 5.3.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
# L4T (major, minor, patch) -> JetPack; the first three digits of /etc/nv_tegra_release.
JETPACK = {
    (35, 3, 1): "5.1.1", (35, 4, 1): "5.1.2", (35, 5, 0): "5.1.3", (35, 6, 0): "5.1.4",
    (36, 2, 0): "6.0 DP", (36, 3, 0): "6.0", (36, 4, 0): "6.1", (36, 4, 3): "6.2",
    (36, 4, 4): "6.2.1", (38, 2, 0): "7.0",
}
# module-name word -> CUDA compute capability (CMAKE_CUDA_ARCHITECTURES form)
CUDA_ARCH = {"thor": "110", "orin": "87", "xavier": "72", "nano": "53", "tx1": "53",
             "tx2": "62"}
MIN_L4T_MAJOR = 36  # JetPack 6: Python 3.10, CUDA 12, TensorRT 10 (what the runtime targets)


@dataclass(frozen=True)
class L4t:
    major: int
    minor: int
    patch: int
    model: str  # /proc/device-tree/model, e.g. "NVIDIA Jetson AGX Orin Developer Kit"

    @property
    def release(self) -> str:
        return f"R{self.major}.{self.minor}.{self.patch}"

    @property
    def jetpack(self) -> str | None:
        return JETPACK.get((self.major, self.minor, self.patch))

    @property
    def cuda_arch(self) -> str | None:
        words = self.model.lower().replace("-", " ").split()
        return next((arch for word, arch in CUDA_ARCH.items() if word in words), None)


def parse_release(text: str) -> tuple[int, int, int] | None:
    """'# R36 (release), REVISION: 4.3, GCID: ...' -> (36, 4, 3); None when not L4T."""
    head = text.strip().splitlines()[0] if text.strip() else ""
    if not head.startswith("# R"):
        return None
    try:
        major = int(head[3:].split(" ", 1)[0])
        rev = head.split("REVISION:", 1)[1].split(",", 1)[0].strip() if "REVISION:" in head \
            else "0.0"
        minor, patch = (int(v) for v in [*rev.split("."), "0"][:2])
    except ValueError:
        return None
    return major, minor, patch


def detect(release: Path | None = None, model: Path | None = None) -> L4t | None:
    release = Path(release or os.environ.get("LLARA_EDGE_TEGRA_RELEASE") or TEGRA_RELEASE)
    model = Path(model or os.environ.get("LLARA_EDGE_DEVICE_MODEL") or DEVICE_TREE_MODEL)
    if not release.is_file():
        return None
    version = parse_release(release.read_text(errors="replace"))
    if version is None:
        return None
    name = model.read_text(errors="replace").strip("\x00\n ") if model.is_file() else "Jetson"
    return L4t(*version, model=name)


@dataclass(frozen=True)
class L4tPlan:
    """What setup_l4t.sh does on this L4T: every field is printed by doctor and --shell."""

    supported: bool
    reason: str  # why not, when not supported
    l4t: str
    jetpack: str
    model: str
    cuda_arch: str  # llama.cpp's CMAKE_CUDA_ARCHITECTURES
    llama_build: str  # the build_llama.py command line
    venv: str  # how the venv is made (system site packages: JetPack's tensorrt)
    tensorrt: str
    onnxruntime: str
    torch: str


def plan(l4t: L4t, ort_gpu_wheel: str | None = None) -> L4tPlan:
    arch = l4t.cuda_arch or "87"
    supported, reason = True, ""
    if l4t.major < MIN_L4T_MAJOR:
        supported, reason = False, (f"L4T {l4t.release} is JetPack {l4t.jetpack or '?'}: "
                                    "llara-edge needs JetPack 6 (L4T R36, Python 3.10, CUDA 12, "
                                    "TensorRT 10); reflash with SDK Manager")
    ort = (f"onnxruntime-gpu from {ort_gpu_wheel} (CUDA/TensorRT execution providers)"
           if ort_gpu_wheel else "CPU onnxruntime from the lock (no matching onnxruntime-gpu "
           "wheel given: set LLARA_EDGE_ORT_GPU_WHEEL to a JetPack wheel file or URL)")
    return L4tPlan(
        supported=supported, reason=reason, l4t=l4t.release,
        jetpack=l4t.jetpack or f"unknown (L4T {l4t.release} not in the table)",
        model=l4t.model, cuda_arch=arch,
        llama_build=f"tools/build_llama.py --cuda on --cuda-arch {arch}",
        venv="python3 -m venv --system-site-packages .venv (JetPack's python3-libnvinfer)",
        tensorrt="JetPack's system tensorrt (apt: python3-libnvinfer), never a PyPI wheel",
        onnxruntime=ort,
        torch="not installed: the runtime does not need it (export on a workstation)",
    )


def _shell(p: L4tPlan) -> str:
    return "\n".join(f"L4T_{k.upper()}={shlex.quote(str(int(v) if isinstance(v, bool) else v))}"
                     for k, v in asdict(p).items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llara_edge.l4t", description=__doc__.split(
        "\n")[0])
    ap.add_argument("--release", type=Path, help="nv_tegra_release file")
    ap.add_argument("--model", type=Path, help="device-tree model file")
    ap.add_argument("--shell", action="store_true", help="shell assignments for setup_l4t.sh")
    args = ap.parse_args(argv)
    l4t = detect(args.release, args.model)
    if l4t is None:
        print("not L4T: no readable nv_tegra_release", file=sys.stderr)
        return 1
    p = plan(l4t, os.environ.get("LLARA_EDGE_ORT_GPU_WHEEL") or None)
    print(_shell(p) if args.shell else "\n".join(f"{k:<12} {v}" for k, v in asdict(p).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
