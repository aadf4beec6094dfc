"""What this machine can run: platform, Jetson, engines, execution providers, devices, GPU.

Each probe is a small function in the `PROBES` registry returning a `Probe` (ok flag and a
one-line detail). Probes never raise: a missing SDK or an absent device is a finding, not an
error. Heavy SDKs are imported inside their probe only, so `llara-edge doctor` is cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")


@dataclass(frozen=True)
class Probe:
    """Result of one probe: `ok` says the thing is usable, `detail` says what was found."""

    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    mod = importlib.import_module(module)
    return str(getattr(mod, "__version__", "unknown version"))


def parse_tegra_release(text: str) -> str | None:
    """'# R36 (release), REVISION: 4.0, GCID: ...' -> 'L4T R36.4.0' (None if not L4T)."""
    head = text.strip().splitlines()[0] if text.strip() else ""
    if not head.startswith("# R"):
        return None
    major = head[3:].split(" ", 1)[0]
    revision = ""
    if "REVISION:" in head:
        revision = head.split("REVISION:", 1)[1].split(",", 1)[0].strip()
    return f"L4T R{major}.{revision}" if revision else f"L4T R{major}"


def probe_platform() -> Probe:
    mem = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
        mem = f", {gib:.1f} GiB RAM"
    detail = (f"{platform.system()} {platform.release()} {platform.machine()}, "
              f"Python {platform.python_version()}, {os.cpu_count()} CPUs{mem}")
    return Probe("platform", True, detail)


def probe_jetson(release: Path | None = None, model: Path | None = None) -> Probe:
    # LLARA_EDGE_TEGRA_RELEASE / LLARA_EDGE_DEVICE_MODEL: fake files (tests, doctor demos)
    release = Path(release or os.environ.get("LLARA_EDGE_TEGRA_RELEASE") or TEGRA_RELEASE)
    model = Path(model or os.environ.get("LLARA_EDGE_DEVICE_MODEL") or DEVICE_TREE_MODEL)
    if not release.exists():
        return Probe("jetson", False, f"not a Jetson ({release} absent)")
    l4t = parse_tegra_release(release.read_text(errors="replace")) or "unknown L4T"
    name = model.read_text(errors="replace").strip("\x00\n ") if model.exists() else "Jetson"
    return Probe("jetson", True, f"{name}, {l4t}")


def _module_probe(name: str, module: str, missing: str,
                  describe: Callable[[object, str], str]) -> Probe:
    """Import `module` and describe it; absent or broken modules are findings, not errors."""
    try:
        version = _version(module)
        if version is None:
            return Probe(name, False, missing)
        return Probe(name, True, describe(importlib.import_module(module), version))
    except Exception as exc:  # a broken native library is a finding
        return Probe(name, False, f"import failed: {exc}")


# CPU features that decide which ggml CPU variant runs (x86: /proc/cpuinfo "flags"; ARM:
# "Features": asimddp = dotprod, fphp/asimdhp = fp16 arithmetic, i8mm = int8 matmul)
CPU_FEATURES = ("sse4_2", "avx", "f16c", "fma", "avx2", "bmi2", "avx_vnni", "avx512f",
                "avx512_vbmi", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8",
                "asimd", "asimddp", "asimdhp", "fphp", "sve", "sve2", "i8mm", "sme")


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The CPU_FEATURES this CPU reports, in CPU_FEATURES order ([] where unreadable)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return [f for f in CPU_FEATURES if f in flags]


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def probe_cpu() -> Probe:
    feats = cpu_features()
    model = cpu_model()
    return Probe("cpu", bool(feats), f"{model}: {' '.join(feats) or 'no feature flags read'}")


def _describe_llama(module: object, version: str) -> str:
    from llara_edge.llama.lib import build_info

    info = build_info()
    flags = " ".join(info["cmake_args"] or ["(no build record: not built by tools/setup.sh)"])
    return (f"llama-cpp-python {version}, CPU backend {', '.join(info['loaded']) or 'linked'} "
            f"of {len(info['backend_files'])} backend files, GPU offload: "
            f"{info['gpu_offload']}; build flags: {flags}; "
            f"features: {info['system_info']}")


def probe_llama_cpp() -> Probe:
    return _module_probe("llama.cpp", "llama_cpp", "llama-cpp-python not installed",
                         _describe_llama)


def probe_llama_selftest() -> Probe:
    """q8_0 and q4_K matmuls on ggml's CPU backend, in a subprocess (a SIGILL is a finding)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return Probe("llama.cpp self-test", False, "llama-cpp-python not installed")
    from llara_edge.llama.lib import self_test

    result = self_test()
    return Probe("llama.cpp self-test", bool(result.get("ok")),
                 result.get("detail") or result.get("error", "no result"))


def probe_onnxruntime() -> Probe:
    return _module_probe(
        "onnxruntime", "onnxruntime", "onnxruntime not installed",
        lambda m, v: f"{v}; providers: {', '.join(m.get_available_providers())}")


def probe_tensorrt() -> Probe:
    return _module_probe("tensorrt", "tensorrt",
                         "tensorrt not installed (engines build on the target)",
                         lambda m, v: f"TensorRT {v}")


def probe_torch() -> Probe:
    return _module_probe("torch", "torch", "not installed (only the export extra needs it)",
                         lambda m, v: f"{v}, CUDA available: {m.cuda.is_available()}")


def _numba_cuda(m: object, version: str) -> str:
    from numba import cuda

    return f"{version}, CUDA available: {cuda.is_available()}"


def probe_numba() -> Probe:
    return _module_probe("numba", "numba", "numba not installed", _numba_cuda)


def probe_mujoco() -> Probe:
    gl = os.environ.get("MUJOCO_GL", "egl (default)")
    return _module_probe("mujoco", "mujoco", "mujoco not installed",
                         lambda m, v: f"MuJoCo {v}, MUJOCO_GL={gl}")


def probe_realsense() -> Probe:
    try:
        if importlib.util.find_spec("pyrealsense2") is None:
            return Probe("realsense", False, "pyrealsense2 not installed")
        import pyrealsense2 as rs

        devices = rs.context().query_devices()
        names = [
            f"{d.get_info(rs.camera_info.name)} #{d.get_info(rs.camera_info.serial_number)}"
            for d in devices
        ]
        return Probe("realsense", bool(names), ", ".join(names) or "no RealSense device found")
    except Exception as exc:  # e.g. libusb-1.0 missing
        return Probe("realsense", False, f"pyrealsense2 unusable: {exc}")


def probe_serial() -> Probe:
    try:
        from serial.tools import list_ports
    except ImportError:
        return Probe("serial", False, "pyserial not installed")
    ports = [f"{p.device} ({p.description})" for p in list_ports.comports()]
    return Probe("serial", bool(ports), ", ".join(ports) or "no serial ports")


def probe_gpu() -> Probe:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name,memory.total,driver_version,compute_cap",
                 "--format=csv,noheader"], capture_output=True, text=True, timeout=10,
            )
            if out.returncode == 0 and out.stdout.strip():
                return Probe("gpu", True, out.stdout.strip().replace("\n", "; "))
        except (OSError, subprocess.SubprocessError) as exc:
            return Probe("gpu", False, f"nvidia-smi failed: {exc}")
    if Path(os.environ.get("LLARA_EDGE_TEGRA_RELEASE") or TEGRA_RELEASE).exists():
        return Probe("gpu", True, "integrated Jetson GPU (nvidia-smi absent; use tegrastats)")
    return Probe("gpu", False, "no NVIDIA GPU found")


def probe_l4t_setup() -> Probe:
    """What tools/setup_l4t.sh would build here (llara_edge/l4t.py), one line."""
    from llara_edge import l4t

    found = l4t.detect()
    if found is None:
        return Probe("l4t setup", False, "not L4T: tools/setup.sh does the workstation set-up")
    p = l4t.plan(found, os.environ.get("LLARA_EDGE_ORT_GPU_WHEEL") or None)
    if not p.supported:
        return Probe("l4t setup", False, p.reason)
    return Probe("l4t setup", True, f"JetPack {p.jetpack}, {p.model}: llama.cpp "
                 f"`{p.llama_build}`; {p.venv}; tensorrt: {p.tensorrt}; onnxruntime: "
                 f"{p.onnxruntime}; torch: {p.torch}")


PROBES: dict[str, Callable[[], Probe]] = {
    "platform": probe_platform,
    "cpu": probe_cpu,
    "jetson": probe_jetson,
    "l4t setup": probe_l4t_setup,
    "gpu": probe_gpu,
    "llama.cpp": probe_llama_cpp,
    "llama.cpp self-test": probe_llama_selftest,
    "onnxruntime": probe_onnxruntime,
    "tensorrt": probe_tensorrt,
    "torch": probe_torch,
    "numba": probe_numba,
    "mujoco": probe_mujoco,
    "realsense": probe_realsense,
    "serial": probe_serial,
}


def run_probes(names: list[str] | None = None) -> list[Probe]:
    """Run the named probes (all by default) in registry order."""
    return [PROBES[n]() for n in (names or list(PROBES))]
