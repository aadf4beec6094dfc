#!/usr/bin/env bash
# Set up llara-edge on a fresh Linux machine: system libraries, a virtual environment in .venv,
# and the package (editable) with its dependencies. Idempotent: re-running is cheap.
#
#   bash tools/setup.sh          runtime + export toolchain (CPU torch, transformers, gguf, onnx),
#                                then exports the bundled tiny policy to artifacts/tiny-llara
#   bash tools/setup.sh --dev    + test tools (the tests build their own artifacts: no export)
#
# The on-robot runtime itself never imports torch; the export toolchain is installed here
# because the embedded default (`llara-edge` = `llara-edge run` on the simulator) loads an
# exported artifact, and export happens at setup, never inside the runtime.
#
# Needs python3 (>= 3.10) with venv, a C/C++ compiler and cmake (llama-cpp-python builds from
# source where no wheel fits). System packages are installed with apt-get when missing and
# when we are root (or have sudo): libusb-1.0 for pyrealsense2, EGL/Mesa for offscreen MuJoCo.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    *) echo "usage: bash tools/setup.sh [--dev]" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
VENV=.venv
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

install_system_packages() {
  local missing=()
  have_lib 'libusb-1.0.so.0' || missing+=(libusb-1.0-0)
  have_lib 'libEGL.so.1' || missing+=(libegl1)
  [ -e /usr/lib/x86_64-linux-gnu/dri ] || [ -e /usr/lib/aarch64-linux-gnu/dri ] \
    || missing+=(libgl1-mesa-dri)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "setup: please install the system packages: ${missing[*]}" >&2; return 0
    fi
  fi
  echo "setup: installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_system_packages
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install -U pip setuptools wheel
# The CPU build first: left to the resolver, `torch` would pull several GB of CUDA wheels.
"${PIP[@]}" install "torch==${TORCH_VERSION}"
if [ "$DEV" -eq 1 ]; then
  "${PIP[@]}" install -e ".[export,dev]"
else
  "${PIP[@]}" install -e ".[export,bench]"
  # Re-export only when the checkpoint is newer than the artifact's manifest.
  ART=artifacts/tiny-llara
  if [ ! -f "$ART/manifest.json" ] || [ -n "$(find models/tiny-llara -newer "$ART/manifest.json" -type f | head -1)" ]; then
    echo "setup: exporting the bundled tiny policy to $ART (about a minute)"
    "$VENV/bin/llara-edge" export models/tiny-llara --out "$ART" --quant q8_0,q4_k_m --overwrite
  fi
fi
echo "setup: done ($("$VENV/bin/python" --version), venv at $VENV)"
