#!/usr/bin/env bash
# Set up llara-edge on a fresh Linux machine: system libraries, a virtual environment in .venv,
# locked dependencies, a portable llama.cpp, and the package (editable). Idempotent.
#
#   bash tools/setup.sh                runtime + export toolchain, then exports the bundled tiny
#                                      policy to artifacts/tiny-llara (the main job loads it)
#   bash tools/setup.sh --dev          the same dependencies + test tools, no export (the tests
#                                      build their own artifacts), and the robot profile in
#                                      .venv-robot: the runtime lock only (no torch, no MuJoCo),
#                                      the same llama.cpp wheel, the package (editable); the
#                                      tests run the robot's commands in it
#   bash tools/setup.sh --latest       resolve fresh versions instead of the lock, then rewrite
#                                      the lock and the runtime lock from what got installed (a
#                                      deliberate upgrade: run the tests, then commit requirements/)
#   bash tools/setup.sh --rebuild-llama   rebuild the llama-cpp-python wheel even if cached
#
# Dependencies come from requirements/lock-linux-<machine>-py<X.Y>.txt (exact versions the tests
# passed with), installed with --no-deps so nothing else is resolved; the robot profile's from
# requirements/lock-runtime-linux-<machine>-py<X.Y>.txt (runtime.in at the same versions).
# torch is pinned apart (TORCH_VERSION; set TORCH_INDEX, e.g.
# https://download.pytorch.org/whl/cpu, to take the CPU build from PyTorch's index instead of
# PyPI's default build). llama-cpp-python is built from its sdist by tools/build_llama.py with
# portable flags (no -march=native, runtime CPU dispatch, CUDA where nvcc and a GPU exist) and
# cached in ${XDG_CACHE_HOME:-~/.cache}/llara-edge/wheels, keyed by version + flags, not in
# pip's cache. On a Jetson (L4T), tools/setup_l4t.sh does the
# robot's set-up instead. Needs python3 (>= 3.10) with venv, a C/C++ compiler and cmake.
set -euo pipefail
cd "$(dirname "$0")/.."

# On a Jetson the robot's set-up takes over, with its own options (--dry-run).
TEGRA_RELEASE=${LLARA_EDGE_TEGRA_RELEASE:-/etc/nv_tegra_release}
if [ -f "$TEGRA_RELEASE" ] && [ -f tools/setup_l4t.sh ]; then
  exec bash tools/setup_l4t.sh "$@"
fi

DEV=0 LATEST=0 REBUILD=()
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    --latest) LATEST=1 ;;
    --rebuild-llama) REBUILD=(--rebuild) ;;
    *) echo "usage: bash tools/setup.sh [--dev] [--latest] [--rebuild-llama]" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
VENV=.venv
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
MACHINE=$(uname -m)
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
LOCK=requirements/lock-linux-${MACHINE}-py${PYVER/./}.txt
RUNTIME_LOCK=requirements/lock-runtime-linux-${MACHINE}-py${PYVER/./}.txt
ROBOT_VENV=.venv-robot
LLAMA_VERSION=$(sed -n 's/^llama-cpp-python==//p' requirements/llama.txt)

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

install_system_packages() {
  local missing=()
  have_lib 'libusb-1.0.so.0' || missing+=(libusb-1.0-0)
  have_lib 'libEGL.so.1' || missing+=(libegl1)
  [ -e "/usr/lib/${MACHINE}-linux-gnu/dri" ] || missing+=(libgl1-mesa-dri)
  if [ "$DEV" -eq 1 ]; then  # the deploy tests start a real sshd on loopback
    command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
    command -v rsync >/dev/null || missing+=(rsync)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "setup: please install the system packages: ${missing[*]}" >&2; return 0
    fi
  fi
  echo "setup: installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

install_llama() {  # $1: the venv
  # The portable wheel (LLAMA_WHEEL, built once or taken from the project's cache) goes in
  # before anything that depends on it, so pip never compiles its own -march=native build to
  # satisfy a requirement; its build record goes beside it (llara-edge doctor shows the flags).
  local venv=$1 have
  have=$(cat "$venv/share/llara-edge/llama-wheel" 2>/dev/null || true)
  if [ "$have" != "$LLAMA_WHEEL" ] || ! "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    "$venv/bin/python" -m pip --disable-pip-version-check -q install --no-deps \
      --force-reinstall "$LLAMA_WHEEL"
    mkdir -p "$venv/share/llara-edge"
    cp "$(dirname "$LLAMA_WHEEL")/build.json" "$venv/share/llara-edge/llama-build.json"
    echo "$LLAMA_WHEEL" > "$venv/share/llara-edge/llama-wheel"
  fi
}

install_locked() {
  if [ ! -f "$LOCK" ]; then
    echo "setup: no lock file for this platform ($LOCK); run with --latest to resolve" >&2
    exit 1
  fi
  "${PIP[@]}" install --no-deps -r "$LOCK"
  # the workspace's five components (pyproject.toml), editable; dependencies come from the lock
  "${PIP[@]}" install --no-deps --no-build-isolation -e hw_drivers -e kernels -e . -e export \
    -e benchmarks
  "${PIP[@]}" check
}

install_latest() {
  # Everything to its newest release, but torch and llama-cpp-python held at their pins (an
  # unpinned llama-cpp-python would be compiled by pip with -march=native).
  local pins
  pins=$(mktemp)
  printf 'torch==%s\nllama-cpp-python==%s\n' "$TORCH_VERSION" "$LLAMA_VERSION" > "$pins"
  "${PIP[@]}" install -U --upgrade-strategy eager -c "$pins" -e "hw_drivers[realsense]" \
    -e kernels -e ".[sim,dev]" -e export -e "benchmarks[plots]"
  rm -f "$pins"
  {
    echo "# Exact versions the tests passed with ($(date -u +%F), Linux ${MACHINE}, Python ${PYVER})."
    echo "# Refresh: bash tools/setup.sh --latest --dev && .venv/bin/python -m pytest -q, then commit."
    echo "# Not here: torch (TORCH_VERSION in tools/setup.sh), llama-cpp-python (requirements/"
    echo "# llama.txt, built by tools/build_llama.py), llara-edge itself."
    "$VENV/bin/python" -m pip freeze --exclude-editable --all \
      | grep -v -i -E '^(torch|llama[-_]cpp[-_]python|llara[-_]edge|pip)(==| @)' | LC_ALL=C sort -f
  } > "$LOCK.part"
  mv "$LOCK.part" "$LOCK"
  echo "setup: wrote $LOCK"
  "$VENV/bin/python" tools/lock_runtime.py
}

build_robot_venv() {
  # What a robot installs (tools/setup_l4t.sh on a Jetson): the runtime lock alone, the same
  # llama.cpp wheel, the runtime's components (drivers, kernels, runtime, and the benchmarks for
  # `bench --quick`; never export) with --no-deps; tests/test_robot_profile.py runs doctor, verify,
  # the real-robot loop and the bench in it. Rebuilt from scratch whenever the runtime lock or
  # the package metadata changed (so it holds exactly the lock), else only checked.
  if [ ! -f "$RUNTIME_LOCK" ]; then
    echo "setup: no runtime lock for this platform ($RUNTIME_LOCK);" \
         "write one with .venv/bin/python tools/lock_runtime.py" >&2
    exit 1
  fi
  local stamp="$ROBOT_VENV/share/llara-edge/profile.sha256" want
  local rpip=("$ROBOT_VENV/bin/python" -m pip --disable-pip-version-check -q)
  want=$(cat "$RUNTIME_LOCK" pyproject.toml hw_drivers/pyproject.toml kernels/pyproject.toml \
         benchmarks/pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$ROBOT_VENV/bin/llara-edge" ]; then
    echo "setup: building the robot profile in $ROBOT_VENV from $RUNTIME_LOCK"
    rm -rf "$ROBOT_VENV"
    "$PY" -m venv "$ROBOT_VENV"
    "${rpip[@]}" install --no-deps -r "$RUNTIME_LOCK"
    "${rpip[@]}" install --no-deps -e hw_drivers -e kernels -e . -e benchmarks
    mkdir -p "$(dirname "$stamp")"
    echo "$want" > "$stamp"
  fi
  install_llama "$ROBOT_VENV"
  "${rpip[@]}" check
}

install_system_packages
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install -U pip setuptools wheel
# torch first, alone: left to the resolver, `torch` would pull several GB of CUDA wheels.
"${PIP[@]}" install "torch==${TORCH_VERSION}" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
LLAMA_WHEEL=$("$VENV/bin/python" tools/build_llama.py --version "$LLAMA_VERSION" "${REBUILD[@]}")
install_llama "$VENV"
if [ "$LATEST" -eq 1 ]; then install_latest; else install_locked; fi
[ "$DEV" -eq 0 ] || build_robot_venv

if [ "$DEV" -eq 0 ]; then
  # Re-export only when the checkpoint is newer than the artifact's manifest.
  ART=artifacts/tiny-llara
  if [ ! -f "$ART/manifest.json" ] || [ -n "$(find models/tiny-llara -newer "$ART/manifest.json" -type f | head -1)" ]; then
    echo "setup: exporting the bundled tiny policy to $ART (about a minute)"
    "$VENV/bin/llara-edge" export models/tiny-llara --out "$ART" --quant q8_0,q4_k_m --overwrite
  fi
fi
echo "setup: done ($("$VENV/bin/python" --version), venv at $VENV, lock $LOCK$([ "$DEV" -eq 0 ] \
  || echo "; robot profile at $ROBOT_VENV, lock $RUNTIME_LOCK"))"
