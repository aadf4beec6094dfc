"""A fresh machine gets what the tests passed with: no shadowing, a portable llama.cpp, a lock.

- The repo's top-level folders are distributions with their own import names, never packages
  under their bare names: PyPI's `kernels` (transformers' dependency) wins from the repo root.
- tools/build_llama.py builds with portable flags and drops ggml's AMX variant; the installed
  llama.cpp has no AMX tile instructions, keeps its AVX-512 variants, and passes its matmul
  self-test in a subprocess; a crashing build is reported, not fatal.
- The installed distributions are exactly the lock's pins.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import platform
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_llama  # noqa: E402
from locks import DEV_LOCK, pins  # noqa: E402

AMX_MNEMONICS = re.compile(r"\b(ldtilecfg|sttilecfg|tilerelease|tilezero|tileloadd|tileloaddt1|"
                           r"tilestored|tdpbssd|tdpbsud|tdpbusd|tdpbuud|tdpbf16ps|tdpfp16ps)\b")


def _run_from_root(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_installed_kernels_distribution_wins_over_the_repo_folder():
    try:
        md.distribution("kernels")
    except md.PackageNotFoundError:
        pytest.skip("the PyPI `kernels` distribution is not installed (transformers < 5.25)")
    out = _run_from_root("import sys; assert sys.path[0] == ''\n"
                         "import kernels; print(kernels.__file__)\n"
                         "import llara_kernels as k; print(k.__file__)")
    assert out.returncode == 0, out.stderr
    theirs, ours = out.stdout.split()
    # The venv may live inside the checkout (.venv/): what matters is that the hit is the
    # installed distribution, not the repo's own top-level kernels/ folder.
    assert "site-packages" in Path(theirs).parts, theirs
    assert Path(ours).resolve() == ROOT / "kernels" / "llara_kernels" / "__init__.py"


def test_transformers_hub_kernels_imports_from_the_repo_root():
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers not installed (export extra)")
    has_hub = _run_from_root("import importlib.util as u; "
                             "print(u.find_spec('transformers.integrations.hub_kernels') "
                             "is not None)")
    if has_hub.stdout.strip() != "True":
        pytest.skip("this transformers has no integrations.hub_kernels")
    out = _run_from_root("import transformers.integrations.hub_kernels")
    assert out.returncode == 0, out.stderr[-2000:]


CARD = {"hw_drivers": "llara_drivers", "kernels": "llara_kernels", "export": "llara_export",
        "benchmarks": "llara_bench"}


@pytest.mark.parametrize("folder", sorted(CARD))
def test_a_card_folder_is_a_distribution_not_a_package(folder):
    """The folder holds a pyproject.toml and its package under its own import name; it has no
    __init__.py, so its bare name never shadows an installed distribution (a regular package
    anywhere on sys.path wins over a namespace portion) and names none of our modules."""
    package = CARD[folder]
    assert (ROOT / folder / "pyproject.toml").is_file()
    assert not (ROOT / folder / "__init__.py").exists()
    out = _run_from_root(f"import {package}, importlib.util as u; print({package}.__file__); "
                         f"s = u.find_spec({folder!r}); "
                         "print('none' if s is None else s.origin or 'namespace')")
    assert out.returncode == 0, out.stderr
    ours, bare = out.stdout.split()
    assert Path(ours).resolve() == ROOT / folder / package / "__init__.py"
    assert bare in ("none", "namespace") or "site-packages" in Path(bare).parts, bare


VARIANTS = """\
    if (GGML_SYSTEM_ARCH STREQUAL "x86")
        ggml_add_cpu_backend_variant(x64)
        ggml_add_cpu_backend_variant(sse42              SSE42)
        ggml_add_cpu_backend_variant(haswell            SSE42 AVX F16C FMA AVX2 BMI2)
        ggml_add_cpu_backend_variant(cascadelake        SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VNNI)
        ggml_add_cpu_backend_variant(icelake            SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AVX512_VBMI AVX512_VNNI)
        if (NOT MSVC)
            ggml_add_cpu_backend_variant(sapphirerapids SSE42 AVX F16C FMA AVX2 BMI2 AVX512 AMX_TILE AMX_INT8)
        endif()
"""  # noqa: E501  (ggml's own layout, abridged)


def test_variant_patch_drops_amx_and_keeps_avx512(tmp_path):
    f = tmp_path / "CMakeLists.txt"
    f.write_text(VARIANTS)
    dropped = build_llama.patch_variants(f)
    text = f.read_text()
    assert set(dropped) == {"sse42", "cascadelake", "sapphirerapids"}
    assert "AMX" not in text and "sapphirerapids" not in text
    for kept in ("x64", "haswell", "icelake"):
        assert f"ggml_add_cpu_backend_variant({kept}" in text
    assert "endif()" in text


def test_variant_patch_refuses_a_list_without_the_amx_variant(tmp_path):
    f = tmp_path / "CMakeLists.txt"
    f.write_text("ggml_add_cpu_backend_variant(x64)\n")
    with pytest.raises(SystemExit, match="sapphirerapids"):
        build_llama.patch_variants(f)
    assert f.read_text() == "ggml_add_cpu_backend_variant(x64)\n"


ARM_VARIANTS = """\
    elseif(GGML_SYSTEM_ARCH STREQUAL "ARM")
        if (CMAKE_SYSTEM_NAME MATCHES "Linux")
            ggml_add_cpu_backend_variant(armv8.0_1)
            ggml_add_cpu_backend_variant(armv8.2_1    DOTPROD)
            ggml_add_cpu_backend_variant(armv8.2_2    DOTPROD FP16_VECTOR_ARITHMETIC)
            ggml_add_cpu_backend_variant(armv8.6_2    DOTPROD FP16_VECTOR_ARITHMETIC SVE MATMUL_INT8 SVE2)
            ggml_add_cpu_backend_variant(armv9.2_1    DOTPROD FP16_VECTOR_ARITHMETIC SVE MATMUL_INT8 SME)
        elseif (CMAKE_SYSTEM_NAME MATCHES "Android")
            ggml_add_cpu_backend_variant(android_armv9.2_1    DOTPROD MATMUL_INT8 FP16_VECTOR_ARITHMETIC SVE SME)
        endif()
"""  # noqa: E501  (ggml's own layout, abridged)


def test_arm_marches_follow_ggml_rules():
    marches = {name: build_llama.arm_march(feats.split())
               for name, feats in build_llama._ARM_LINE.findall(ARM_VARIANTS)}
    assert marches == {"armv8.0_1": "armv8-a", "armv8.2_1": "armv8.2-a+dotprod",
                       "armv8.2_2": "armv8.2-a+dotprod+fp16",
                       "armv8.6_2": "armv8.6-a+dotprod+fp16+sve+i8mm+sve2",
                       "armv9.2_1": "armv9.2-a+dotprod+fp16+sve+i8mm+sme"}


def test_arm_variants_a_gcc11_refuses_are_dropped_and_orin_is_kept(tmp_path):
    """JetPack 6 ships GCC 11: no armv9.2-a, no +sme; one refused variant fails the build."""
    f = tmp_path / "CMakeLists.txt"
    f.write_text(VARIANTS + ARM_VARIANTS)
    seen = []

    def gcc11(march, source="int main(void) { return 0; }"):
        seen.append((march, "arm_sme.h" in source))
        return not march.startswith("armv9")

    dropped = build_llama.patch_variants(f, arm_accepts=gcc11)
    text = f.read_text()
    assert "armv9.2_1" in dropped and "ggml_add_cpu_backend_variant(armv9.2_1" not in text
    for kept in ("armv8.0_1", "armv8.2_2", "armv8.6_2"):  # armv8.2_2: Orin (A78AE)
        assert f"ggml_add_cpu_backend_variant({kept} " in text or f"({kept})" in text
    assert "android_armv9.2_1" in text  # other OS blocks are not ours to touch
    assert ("armv8.2-a+dotprod+fp16", False) in seen


@pytest.mark.skipif(platform.machine() != "x86_64", reason="probes the host's x86 compiler")
def test_compiler_probe_is_real():
    assert build_llama.compiler_accepts("x86-64-v3")
    assert not build_llama.compiler_accepts("armv8.2-a+dotprod")


def test_build_flags_are_portable_and_key_the_cache():
    cpu = build_llama.cmake_flags("off", None)
    assert "-DGGML_NATIVE=OFF" in cpu and "-DGGML_CPU_ALL_VARIANTS=ON" in cpu
    assert not any("march=native" in f or "GGML_CUDA" in f for f in cpu)
    cuda = build_llama.cmake_flags("on", "87")
    assert "-DGGML_CUDA=ON" in cuda and "-DCMAKE_CUDA_ARCHITECTURES=87" in cuda
    keys = {build_llama.build_key("0.3.36", cpu), build_llama.build_key("0.3.36", cuda),
            build_llama.build_key("0.3.37", cpu)}
    assert len(keys) == 3


def _llama_lib_dir() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python not installed")
    from llara_edge.llama.lib import lib_dir

    return lib_dir()


def test_installed_cpu_backends_have_no_amx_instructions():
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) not installed")
    variants = sorted(_llama_lib_dir().glob("libggml-cpu-*.so"))
    if not variants:
        pytest.skip("llama.cpp built without GGML_BACKEND_DL (not by tools/build_llama.py)")
    zmm = {}
    for so in variants:
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(so)],
                             capture_output=True, text=True, timeout=300, check=True).stdout
        assert not AMX_MNEMONICS.search(asm), f"{so.name} contains AMX tile instructions"
        zmm[so.name] = "zmm" in asm
    if platform.machine() == "x86_64":  # AVX-512 speed kept where the CPU has it
        assert zmm.get("libggml-cpu-skylakex.so") and not zmm.get("libggml-cpu-haswell.so")


def test_llama_self_test_passes_on_this_cpu():
    _llama_lib_dir()
    from llara_edge.llama.lib import SELF_TEST_TOL, self_test

    result = self_test()
    assert result["ok"], result
    assert set(result["rel_error"]) == {"q8_0", "q4_K"}
    assert all(0 < e < SELF_TEST_TOL for e in result["rel_error"].values())


def test_a_crashing_build_is_reported_not_fatal():
    from llara_edge.llama.lib import self_test

    kill = (sys.executable, "-c", f"import os; os.kill(os.getpid(), {int(signal.SIGILL)})")
    result = self_test(cmd=kill)
    assert result["ok"] is False
    assert "SIGILL" in result["detail"] and "illegal instruction" in result["detail"]
    garbage = self_test(cmd=(sys.executable, "-c", "print('not json')"))
    assert garbage["ok"] is False and "not json" in garbage["detail"]


def test_installed_distributions_match_the_lock():
    lock = DEV_LOCK
    if not lock.exists():
        pytest.skip(f"no lock for this platform ({lock.name}): tools/setup.sh --latest")
    pinned = pins(lock)
    assert pinned and "llama-cpp-python" not in pinned and "torch" not in pinned
    drift = {}
    for name, version in pinned.items():
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            have = None
        if have != version:
            drift[name] = (version, have)
    assert not drift, f"installed != {lock.name} (pinned, installed): {drift}"
    llama_pin = (ROOT / "requirements" / "llama.txt").read_text()
    assert f"llama-cpp-python=={md.version('llama-cpp-python')}" in llama_pin


def test_cuda_auto_needs_cublas_and_on_says_what_is_missing(monkeypatch, capsys):
    monkeypatch.setattr(build_llama, "nvidia_gpu_present", lambda: True)
    monkeypatch.setattr(build_llama.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(build_llama, "cuda_libs_missing", lambda: ["libcublas.so"])
    assert "-DGGML_CUDA=ON" not in build_llama.cmake_flags("auto", None)  # CPU build instead
    with pytest.raises(SystemExit, match=r"libcublas\.so"):
        build_llama.main(["--version", "0.3.36", "--cuda", "on", "--print-flags"])
    monkeypatch.setattr(build_llama, "cuda_libs_missing", lambda: [])
    assert "-DGGML_CUDA=ON" in build_llama.cmake_flags("auto", "87")
