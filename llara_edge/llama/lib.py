"""llama-cpp-python, with ggml's backends loaded from the wheel's own lib folder.

Contract:
    lc = load_llama_cpp()        # the llama_cpp module; ggml's CPU (and CUDA) backends loaded
    with quiet(): ...            # llama.cpp's C-level stdout/stderr chatter silenced (loading)
    build_info() -> dict         # recorded CMake flags, backend files, loaded CPU variant,
                                 # GPU offload support, llama_print_system_info()
    self_test(timeout) -> dict   # q8_0 and q4_K matmuls in a subprocess: ok / error / signal

tools/build_llama.py builds llama.cpp with GGML_BACKEND_DL: the CPU backend is one
libggml-cpu-<variant>.so per instruction-set level, and ggml picks the best one the running CPU
supports when it loads them. ggml looks for them beside the executable and in the current
directory, neither of which is llama_cpp/lib, so every use of llama.cpp in this project goes
through `load_llama_cpp`, which calls ggml_backend_load_all_from_path(llama_cpp/lib) once before
anything else touches the library. A build without GGML_BACKEND_DL (backends linked in) has
them registered already and is left alone.

The self-test runs `python -m llara_edge.llama.lib --self-test` so that a library built for
instructions this CPU lacks is reported as a clear error (SIGILL -> "illegal instruction"),
not a crash in the middle of a demo. It multiplies random weights quantised by ggml itself
(q8_0, q4_K) with activations on the loaded CPU backend and compares with the NumPy product
of the dequantised weights (ggml's own to_float), relative error < SELF_TEST_TOL.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from llara_edge.errors import ArtifactError

BUILD_RECORD = Path(sys.prefix) / "share" / "llara-edge" / "llama-build.json"
SELF_TEST_TOL = 0.03  # relative L2 error: ggml also quantises the activations (q8_0 / q8_K)
GGML_TYPES = {"q8_0": 8, "q4_K": 12}  # ggml.h enum ggml_type
_STATE: dict = {}


def quiet():
    """Silence llama.cpp's stdout/stderr chatter while loading (it writes from C)."""
    from llama_cpp._utils import suppress_stdout_stderr

    return suppress_stdout_stderr(disable=False)


def lib_dir() -> Path:
    import llama_cpp

    return Path(llama_cpp.__file__).resolve().parent / "lib"


def _loaded_copy(stem: str) -> ctypes.CDLL:
    """The copy of lib<stem> that libllama already loaded. A wheel stores libggml.so,
    libggml.so.0 and libggml.so.0.x as three separate files (zip has no symlinks); opening
    another of them would start a second ggml with its own, empty, backend registry."""
    for path in sorted(lib_dir().glob(f"lib{stem}.so*")):
        try:
            return ctypes.CDLL(str(path), mode=getattr(os, "RTLD_NOLOAD", 4) | ctypes.RTLD_GLOBAL)
        except OSError:
            continue
    raise ArtifactError(f"no lib{stem} loaded from {lib_dir()} (llama-cpp-python broken?)")


def _ggml() -> ctypes.CDLL:
    """libggml as llama_cpp loaded it (same handle, same backend registry)."""
    lib = _loaded_copy("ggml")
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    lib.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    return lib


def load_llama_cpp():
    """Import llama_cpp and make sure ggml has its backends (once per process)."""
    try:
        import llama_cpp
    except (ImportError, OSError) as err:
        raise ArtifactError(f"llama-cpp-python is not usable: {err} "
                            "(bash tools/setup.sh builds it)") from err
    if "loaded" not in _STATE:
        lib = _ggml()
        if lib.ggml_backend_reg_count() == 0:  # GGML_BACKEND_DL: nothing registered yet
            with quiet():  # ggml logs each backend it loads
                lib.ggml_backend_load_all_from_path(str(lib_dir()).encode())
        if not lib.ggml_backend_dev_by_type(0):  # GGML_BACKEND_DEVICE_TYPE_CPU
            raise ArtifactError(f"ggml found no CPU backend this CPU can run in {lib_dir()}")
        _STATE["loaded"] = True
    return llama_cpp


def loaded_backend_files() -> list[str]:
    """The libggml-*.so backend modules mapped into this process (Linux /proc/self/maps)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return []
    names = {Path(line.split()[-1]).name for line in maps.read_text().splitlines()
             if "libggml-" in line and line.split()[-1].startswith("/")}
    return sorted(n for n in names if not n.startswith("libggml-base"))


def build_info() -> dict:
    """What this llama.cpp was built with and what it loaded on this CPU."""
    lc = load_llama_cpp()
    record = {}
    if BUILD_RECORD.exists():
        try:
            record = json.loads(BUILD_RECORD.read_text())
        except (OSError, ValueError) as err:
            record = {"error": f"unreadable {BUILD_RECORD}: {err}"}
    variants = sorted(p.name for p in lib_dir().glob("libggml-*.so")
                      if not p.name.startswith(("libggml-base", "libggml.so")))
    return {"version": lc.__version__, "cmake_args": record.get("cmake_args"),
            "variants_dropped": record.get("variants_dropped"), "backend_files": variants,
            "loaded": loaded_backend_files(),
            "gpu_offload": bool(lc.llama_supports_gpu_offload()),
            "system_info": lc.llama_print_system_info().decode(errors="replace").strip()}


class _InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p),
                ("no_alloc", ctypes.c_bool)]


class _TypeTraits(ctypes.Structure):
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


def _base_lib() -> ctypes.CDLL:
    base = _loaded_copy("ggml-base")
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    sigs = {"ggml_init": (p, [_InitParams]), "ggml_free": (None, [p]),
            "ggml_new_tensor_2d": (p, [p, ctypes.c_int, i64, i64]),
            "ggml_get_data": (p, [p]), "ggml_mul_mat": (p, [p, p, p]),
            "ggml_new_graph": (p, [p]), "ggml_build_forward_expand": (None, [p, p]),
            "ggml_quantize_chunk": (ctypes.c_size_t, [ctypes.c_int, p, p, i64, i64, i64, p]),
            "ggml_get_type_traits": (ctypes.POINTER(_TypeTraits), [ctypes.c_int]),
            "ggml_backend_dev_init": (p, [p, p]), "ggml_backend_free": (None, [p]),
            "ggml_backend_graph_compute": (ctypes.c_int, [p, p])}
    for name, (res, args) in sigs.items():
        fn = getattr(base, name, None) or getattr(_ggml(), name)
        fn.restype, fn.argtypes = res, args
        setattr(base, "_" + name, fn)
    return base


def _matmul_error(base: ctypes.CDLL, backend: int, type_id: int, rng) -> float:
    """Relative L2 error of ggml's (n, k) quantised W @ (k, m) x against NumPy's."""
    import numpy as np

    k, n, m = 512, 64, 8  # k: a multiple of q4_K's 256-element super-block
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    ctx = base._ggml_init(_InitParams(64 << 20, None, False))
    try:
        a = base._ggml_new_tensor_2d(ctx, type_id, k, n)  # ggml: ne0 = k (contiguous)
        b = base._ggml_new_tensor_2d(ctx, 0, k, m)
        base._ggml_quantize_chunk(type_id, w.ctypes.data, base._ggml_get_data(a), 0, n, k, None)
        ctypes.memmove(base._ggml_get_data(b), x.ctypes.data, x.nbytes)
        c = base._ggml_mul_mat(ctx, a, b)  # (m, n) row-major: ne0 = n
        graph = base._ggml_new_graph(ctx)
        base._ggml_build_forward_expand(graph, c)
        if base._ggml_backend_graph_compute(backend, graph) != 0:
            raise ArtifactError(f"ggml graph compute failed for type {type_id}")
        y = np.ctypeslib.as_array((ctypes.c_float * (n * m)).from_address(
            base._ggml_get_data(c))).reshape(m, n).copy()
        deq = np.empty(n * k, dtype=np.float32)  # ggml's own dequantisation of W
        to_float = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(
            base._ggml_get_type_traits(type_id).contents.to_float)
        to_float(base._ggml_get_data(a), deq.ctypes.data, n * k)
    finally:
        base._ggml_free(ctx)
    ref = x.astype(np.float64) @ deq.reshape(n, k).T.astype(np.float64)
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


def run_self_test() -> dict:
    """In this process: the matmuls on the loaded CPU backend (see `self_test`)."""
    import numpy as np

    load_llama_cpp()
    base = _base_lib()
    backend = base._ggml_backend_dev_init(_ggml().ggml_backend_dev_by_type(0), None)
    if not backend:
        raise ArtifactError("ggml could not start its CPU backend")
    rng = np.random.default_rng(0)
    try:
        errors = {name: _matmul_error(base, backend, t, rng) for name, t in GGML_TYPES.items()}
    finally:
        base._ggml_backend_free(backend)
    return {"ok": all(e < SELF_TEST_TOL for e in errors.values()), "rel_error": errors,
            "tol": SELF_TEST_TOL, "loaded": loaded_backend_files()}


SELF_TEST_CMD = (sys.executable, "-m", "llara_edge.llama.lib", "--self-test")


def self_test(timeout: float = 120.0, cmd: tuple[str, ...] = SELF_TEST_CMD) -> dict:
    """The self-test in a subprocess: {'ok', 'detail', ...}; never raises, never crashes us."""
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "detail": f"self-test hung for {timeout:.0f} s"}
    if out.returncode < 0:
        sig = signal.Signals(-out.returncode).name
        why = " (illegal instruction: built for a CPU this one is not; rebuild with " \
              "bash tools/setup.sh --rebuild-llama)" if sig == "SIGILL" else ""
        return {"ok": False, "detail": f"self-test killed by {sig}{why}"}
    lines = out.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"ok": False, "detail": f"self-test exit {out.returncode}: "
                                       f"{(out.stderr or out.stdout).strip()[-300:]}"}
    errs = ", ".join(f"{k} {v:.4f}" for k, v in result.get("rel_error", {}).items())
    result["detail"] = (f"q8_0/q4_K matmul {'passed' if result.get('ok') else 'FAILED'} "
                        f"(rel. error {errs}; tol {SELF_TEST_TOL}) on "
                        f"{', '.join(result.get('loaded', [])) or 'linked CPU backend'}")
    return result


if __name__ == "__main__":
    if sys.argv[1:] != ["--self-test"]:
        sys.exit("usage: python -m llara_edge.llama.lib --self-test")
    try:
        print(json.dumps(run_self_test()))
    except ArtifactError as err:
        print(json.dumps({"ok": False, "error": str(err)}))
        sys.exit(1)
