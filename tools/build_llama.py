"""Build llama-cpp-python once, portably, and cache the wheel in the project's own cache dir.

Contract:
    python tools/build_llama.py --version 0.3.36 [--cuda auto|on|off] [--cuda-arch 87]
                                [--print-flags] [--rebuild]
    -> prints the path of a wheel (alone on stdout; pip's output goes to stderr) built from
       the PyPI sdist with portable flags; the wheel and a `build.json` (version, flags,
       patch, builder CPU) lie in
       $LLARA_EDGE_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/llara-edge)/wheels/<key>/,
       where <key> hashes version + flags + patch, so a change of either rebuilds.

Why: pip's default build of llama-cpp-python compiles ggml with -march=native. A wheel built
on a CPU with AMX then dies with SIGILL (`tilezero` in ggml_backend_amx_mul_mat) on a VM whose
cpuid reports AMX but which does not let the process use tile state, and one built on a newer
CPU dies on an older one. Here ggml is built with GGML_NATIVE=OFF and ggml's runtime CPU
dispatch (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS): one libggml-cpu-<variant>.so per
instruction-set level, the best one the running CPU supports is chosen when the library loads
(`llara_edge.llama.lib` points ggml at them). The variant list is trimmed by a small patch of
the sdist's ggml/src/CMakeLists.txt (VARIANTS_DROPPED): the AMX variant (sapphirerapids) is
dropped because ggml's score checks only cpuid, not whether the OS grants tile state, and the
intermediate x86 levels are dropped to keep the build short on 2 cores (their CPUs run the
next lower variant: cascadelake -> skylakex, ivybridge -> sandybridge, ...). ARM keeps ggml's
whole list (armv8.0 ... armv9.2, Jetson Orin = armv8.2 + dotprod + fp16) except the variants
whose -march the compiler refuses (arm_variants_refused): JetPack 6's GCC 11 knows neither
armv9.2-a nor +sme (GCC 14), and one refused variant would fail the whole build. SME needs no
AMX-like drop: ggml scores it from HWCAP2_SME, which Linux sets only where it grants the
streaming state. With CUDA (nvcc on
PATH and a GPU or L4T, or --cuda on) ggml-cuda is built as one more loadable backend for the
given compute capabilities (Orin: 87).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PATCH_ID = "variants-v1"  # x86 drops; ARM refusals are keyed by the compiler (build_key)
# ggml x86 CPU variants not built (see module docstring); everything else in ggml's list is.
VARIANTS_DROPPED = ("sse42", "ivybridge", "piledriver", "cannonlake", "cascadelake",
                    "cooperlake", "sapphirerapids")
MUST_DROP = ("sapphirerapids",)  # the AMX variant: fail loudly if the sdist's list moved
VARIANT_FILE = "vendor/llama.cpp/ggml/src/CMakeLists.txt"
BASE_FLAGS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_BACKEND_DL=ON",
    "-DGGML_CPU_ALL_VARIANTS=ON",
    # the loadable backends go beside libllama.so (scikit-build-core installs relative to the
    # wheel's platlib), where llara_edge.llama.lib loads them from
    "-DCMAKE_INSTALL_BINDIR=llama_cpp/lib",
    "-DCMAKE_INSTALL_RPATH=$ORIGIN",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)


def cache_root() -> Path:
    if os.environ.get("LLARA_EDGE_CACHE"):
        return Path(os.environ["LLARA_EDGE_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "llara-edge"


def nvidia_gpu_present() -> bool:
    if Path("/etc/nv_tegra_release").exists():
        return True
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def gpu_compute_caps() -> list[str]:
    """'8.7' -> '87' for every visible GPU (nvidia-smi), [] where none answers."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({c.strip().replace(".", "") for c in out.stdout.split() if c.strip()})


def cmake_flags(cuda: str, cuda_arch: str | None) -> list[str]:
    """The CMAKE_ARGS of the build: portable CPU flags, plus CUDA where asked or found."""
    flags = list(BASE_FLAGS)
    use_cuda = cuda == "on" or (cuda == "auto" and shutil.which("nvcc") and nvidia_gpu_present()
                                and not cuda_libs_missing())
    if use_cuda:
        arch = cuda_arch or ";".join(gpu_compute_caps()) or "87"
        flags += ["-DGGML_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={arch}"]
    return flags


def compiler_id() -> str:
    """First line of `$CXX --version` (the ARM variant list depends on what it accepts)."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or "c++"
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (out.stdout.splitlines() or ["unknown"])[0]


def cuda_libs_missing() -> list[str]:
    """The CUDA libraries ggml-cuda links (cudart, cublas) that nvcc's toolkit lacks; [] when
    all are there. A toolkit without cuBLAS fails cmake's generate step after minutes."""
    nvcc = shutil.which("nvcc")
    if not nvcc:
        return ["nvcc"]
    homes = [Path(os.environ[v]) for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    homes += [Path(nvcc).resolve().parents[1], Path("/usr/local/cuda"),
              *Path("/usr/local").glob("cuda-*")]  # nvcc may be a wrapper script
    dirs = [d for h in homes for d in (h / "lib64", *h.glob("targets/*/lib"))]
    dirs += [Path("/usr/lib/aarch64-linux-gnu"), Path("/usr/lib/x86_64-linux-gnu")]
    return [lib for lib in ("libcudart.so", "libcublas.so")
            if not any((d / lib).exists() for d in dirs)]


def build_key(version: str, flags: list[str]) -> str:
    blob = json.dumps({"version": version, "flags": flags, "patch": PATCH_ID,
                       "dropped": VARIANTS_DROPPED, "machine": platform.machine(),
                       "compiler": compiler_id() if is_arm() else ""})
    return f"{version}-{platform.machine()}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def is_arm() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64")


# ggml-cpu/CMakeLists.txt (GGML_CPU_ALL_VARIANTS, ARM): each feature raises the base
# architecture to the first one that has it and appends its tag, in this order.
_ARM_FEATURES = (("DOTPROD", "armv8.2-a", "+dotprod"),
                 ("FP16_VECTOR_ARITHMETIC", "armv8.2-a", "+fp16"), ("SVE", "armv8.2-a", "+sve"),
                 ("MATMUL_INT8", "armv8.6-a", "+i8mm"),
                 ("SVE2", "armv8.6-a", "+sve2"), ("NOSVE", None, "+nosve"),
                 ("SME", "armv9.2-a", "+sme"))
_ARM_LINE = re.compile(r"^[ \t]*ggml_add_cpu_backend_variant\((armv[\w.]+)([A-Z0-9_ ]*)\)", re.M)
# what ggml's own check_arm_feature(sme ...) compiles; other variants need only the -march
_SME_PROBE = ("#include <arm_sme.h>\n__arm_locally_streaming int main() "
              "{ __asm__ volatile(\"smstart; smstop;\"); return 0; }\n")


def arm_march(features: list[str]) -> str:
    """ggml's -march for an ARM variant's feature list, e.g. ['DOTPROD'] -> armv8.2-a+dotprod."""
    base, tags = "armv8-a", ""
    for name, arch, tag in _ARM_FEATURES:
        if name in features:
            base, tags = arch or base, tags + tag
    return base + tags


def compiler_accepts(march: str, source: str = "int main(void) { return 0; }\n") -> bool:
    """Does $CXX compile `source` with -march=<march>? (both C and C++ files use it)"""
    cxx = os.environ.get("CXX") or shutil.which("c++") or "c++"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.cpp"
        src.write_text(source)
        cmd = [cxx, f"-march={march}", "-c", str(src), "-o", str(Path(tmp) / "probe.o")]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


def arm_variants_refused(text: str, accepts=compiler_accepts) -> list[str]:
    """Names of the Linux ARM variants in `text` whose -march (and SME probe) fail."""
    refused = []
    for name, feats in _ARM_LINE.findall(text):
        march = arm_march(feats.split())
        ok = accepts(march) and ("SME" not in feats.split() or accepts(march, _SME_PROBE))
        if not ok:
            refused.append(name)
    return refused


def patch_variants(cmake_file: Path, arm_accepts=None) -> list[str]:
    """Drop VARIANTS_DROPPED (and, on ARM, the variants the compiler refuses: `arm_accepts`,
    default compiler_accepts) from ggml's variant list in place; return the names dropped."""
    text = cmake_file.read_text()
    dropped = []
    names = list(VARIANTS_DROPPED)
    if is_arm() or arm_accepts is not None:
        names += arm_variants_refused(text, arm_accepts or compiler_accepts)
    for name in names:
        pattern = re.compile(rf"^[ \t]*ggml_add_cpu_backend_variant\({re.escape(name)}\b.*\n",
                             re.MULTILINE)
        text, n = pattern.subn("", text)
        if n:
            dropped.append(name)
    missing = [m for m in MUST_DROP if m not in dropped]
    if missing:
        raise SystemExit(f"build_llama: {cmake_file} has no variant line for {missing}; "
                         "the sdist's layout changed, update tools/build_llama.py")
    cmake_file.write_text(text)
    return dropped


def fetch_sdist(python: str, version: str, dest: Path) -> Path:
    subprocess.run([python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "-q", "-d", str(dest),
                    f"llama-cpp-python=={version}"], check=True, stdout=sys.stderr)
    found = sorted(dest.glob("llama_cpp_python-*.tar.gz"))
    if not found:
        raise SystemExit(f"build_llama: pip download gave no sdist in {dest}")
    return found[0]


def build_wheel(python: str, version: str, flags: list[str], out_dir: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        tmp_path = Path(tmp)
        sdist = fetch_sdist(python, version, tmp_path)
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp_path, filter="data")
        src = next(p for p in tmp_path.iterdir() if p.is_dir())
        dropped = patch_variants(src / VARIANT_FILE)
        env = dict(os.environ, CMAKE_ARGS=" ".join(flags), FORCE_CMAKE="1",
                   CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
        staging = tmp_path / "wheel"
        subprocess.run([python, "-m", "pip", "wheel", "--no-deps", "-w", str(staging),
                        str(src)], check=True, env=env, stdout=sys.stderr)
        wheel = next(staging.glob("llama_cpp_python-*.whl"))
        out_dir.mkdir(parents=True, exist_ok=True)
        final = out_dir / wheel.name
        shutil.copy2(wheel, final.with_suffix(".part"))
        os.replace(final.with_suffix(".part"), final)  # atomic: a killed build leaves no wheel
        info = {"version": version, "cmake_args": flags, "patch": PATCH_ID,
                "variants_dropped": dropped, "machine": platform.machine(),
                "builder_cpu": platform.processor() or platform.machine(), "wheel": final.name}
        tmp_info = out_dir / "build.json.part"
        tmp_info.write_text(json.dumps(info, indent=1))
        os.replace(tmp_info, out_dir / "build.json")
        return final


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", required=True, help="llama-cpp-python version (the lock's)")
    ap.add_argument("--python", default=sys.executable, help="python whose pip builds")
    ap.add_argument("--cuda", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--cuda-arch", help="CMAKE_CUDA_ARCHITECTURES, e.g. 87 for Orin")
    ap.add_argument("--rebuild", action="store_true", help="ignore a cached wheel")
    ap.add_argument("--print-flags", action="store_true", help="print the flags and exit")
    args = ap.parse_args(argv)
    flags = cmake_flags(args.cuda, args.cuda_arch)
    missing = cuda_libs_missing() if "-DGGML_CUDA=ON" in flags else []
    if missing:
        raise SystemExit(f"build_llama: a CUDA build needs {missing}, not found in nvcc's toolkit "
                         "(install the CUDA toolkit's cuBLAS, or --cuda off)")
    if args.print_flags:
        print(" ".join(flags))
        return 0
    out_dir = cache_root() / "wheels" / build_key(args.version, flags)
    cached = sorted(out_dir.glob("llama_cpp_python-*.whl"))
    if cached and (out_dir / "build.json").exists() and not args.rebuild:
        print(cached[0])
        return 0
    print(f"build_llama: building llama-cpp-python {args.version} with {' '.join(flags)} "
          f"(several minutes; cached in {out_dir})", file=sys.stderr)
    print(build_wheel(args.python, args.version, flags, out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
