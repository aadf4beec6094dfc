#!/usr/bin/env bash
# The robot's set-up on a Jetson (L4T / JetPack 6): tools/setup.sh execs this when
# /etc/nv_tegra_release exists (LLARA_EDGE_TEGRA_RELEASE overrides the path). Idempotent.
#
#   bash tools/setup_l4t.sh              the runtime: venv with JetPack's system site packages
#                                        (tensorrt from python3-libnvinfer), the runtime lock
#                                        requirements/lock-runtime-linux-<machine>-py<XY>.txt
#                                        (no torch, no MuJoCo), llama.cpp built with CUDA for the
#                                        module's compute capability and its build record (as
#                                        tools/setup.sh writes it: doctor shows the flags), the
#                                        package (editable)
#   bash tools/setup_l4t.sh --dry-run    print the plan and every command, run nothing
#   bash tools/setup_l4t.sh --rebuild-llama
#
# What it decides comes from llara_edge/l4t.py (run with the system python3, stdlib only):
# JetPack from the L4T release, CUDA arch from /proc/device-tree/model (Orin: 87). onnxruntime-gpu
# has no aarch64 JetPack wheel on PyPI: set LLARA_EDGE_ORT_GPU_WHEEL to a wheel file or URL
# built for this JetPack (e.g. from NVIDIA's Jetson AI Lab index) and it replaces the CPU
# onnxruntime of the lock; otherwise the CPU onnxruntime is used and this script says so.
# torch is never installed here: the runtime does not need it (export on a workstation).
# UNVERIFIED on a Jetson: written against JetPack 6's layout; tested here with fake L4T files.
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=0 REBUILD=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --rebuild-llama) REBUILD=(--rebuild) ;;
    --dev|--latest) echo "setup_l4t: $arg is for workstations; ignored on the robot" >&2 ;;
    *) echo "usage: bash tools/setup_l4t.sh [--dry-run] [--rebuild-llama]" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
VENV=.venv
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
LOCK=requirements/lock-runtime-linux-$(uname -m)-py${PYVER}.txt  # JetPack 6: aarch64, py310
LLAMA_VERSION=$(sed -n 's/^llama-cpp-python==//p' requirements/llama.txt)

run() {  # print, then run unless --dry-run
  echo "+ $*"
  [ "$DRY" -eq 1 ] || "$@"
}

PLAN=$(PYTHONPATH=. "$PY" -m llara_edge.l4t --shell) || {
  echo "setup_l4t: not L4T (no readable ${LLARA_EDGE_TEGRA_RELEASE:-/etc/nv_tegra_release})" >&2
  exit 1
}
eval "$PLAN"
echo "setup_l4t: L4T $L4T_L4T, JetPack $L4T_JETPACK, $L4T_MODEL (CUDA arch $L4T_CUDA_ARCH)"
if [ "$L4T_SUPPORTED" != 1 ]; then
  echo "setup_l4t: $L4T_REASON" >&2
  exit 1
fi
echo "setup_l4t: tensorrt: $L4T_TENSORRT"
echo "setup_l4t: onnxruntime: $L4T_ONNXRUNTIME"
echo "setup_l4t: torch: $L4T_TORCH"
if [ ! -f "$LOCK" ]; then
  echo "setup_l4t: no runtime lock $LOCK for this machine and $PY (JetPack 6's python3 3.10" \
       "uses requirements/lock-runtime-linux-aarch64-py310.txt)" >&2
  [ "$DRY" -eq 1 ] || exit 1
fi

if [ "$DRY" -eq 0 ] && ! "$PY" -c 'import tensorrt' 2>/dev/null; then
  echo "setup_l4t: JetPack's tensorrt is not importable by $PY: sudo apt install" \
       "python3-libnvinfer (then rerun); continuing, engines build will say it is missing" >&2
fi
if [ "$DRY" -eq 0 ] && ! command -v nvcc >/dev/null; then
  export PATH=/usr/local/cuda/bin:$PATH  # JetPack installs CUDA there, not on PATH
fi

[ -x "$VENV/bin/python" ] || run "$PY" -m venv --system-site-packages "$VENV"
if [ -f "$VENV/pyvenv.cfg" ] && ! grep -q '^include-system-site-packages = true' "$VENV/pyvenv.cfg"
then
  echo "setup_l4t: $VENV was made without --system-site-packages: JetPack's tensorrt is not" \
       "visible in it; remove $VENV and rerun" >&2
  [ "$DRY" -eq 1 ] || exit 1
fi
PIP=("$VENV/bin/python" -m pip install --no-deps --disable-pip-version-check)
run "${PIP[@]}" -r "$LOCK"
if [ -n "${LLARA_EDGE_ORT_GPU_WHEEL:-}" ]; then
  run "$VENV/bin/python" -m pip uninstall -y onnxruntime
  run "${PIP[@]}" "$LLARA_EDGE_ORT_GPU_WHEEL"
fi
# tools/build_llama.py checks nvcc's toolkit has cudart + cuBLAS and picks the ARM variants
# JetPack's GCC accepts; it prints the wheel path alone on stdout.
echo "+ $VENV/bin/python tools/build_llama.py --version $LLAMA_VERSION --cuda on" \
     "--cuda-arch $L4T_CUDA_ARCH ${REBUILD[*]}"
WHEEL="<wheel dir>/llama_cpp_python-${LLAMA_VERSION}-<tag>.whl"  # build_llama.py tells, unless --dry-run
if [ "$DRY" -eq 0 ]; then
  WHEEL=$("$VENV/bin/python" tools/build_llama.py --version "$LLAMA_VERSION" --cuda on \
          --cuda-arch "$L4T_CUDA_ARCH" "${REBUILD[@]}")
fi
run "${PIP[@]}" --force-reinstall "$WHEEL"
# The build record beside the venv, as tools/setup.sh writes it (llara_edge.llama.lib reads it:
# doctor reports the flags the installed llama.cpp was built with).
run mkdir -p "$VENV/share/llara-edge"
run cp "$(dirname "$WHEEL")/build.json" "$VENV/share/llara-edge/llama-build.json"
echo "+ echo $WHEEL > $VENV/share/llara-edge/llama-wheel"
[ "$DRY" -eq 1 ] || echo "$WHEEL" > "$VENV/share/llara-edge/llama-wheel"
run "${PIP[@]}" -e .
run "$VENV/bin/llara-edge" doctor
echo "setup_l4t: done$([ "$DRY" -eq 1 ] && echo ' (dry run: nothing was run)')." \
     "Next: docs/jetson.md (power mode, jetson_clocks, llara-edge engines build)"
