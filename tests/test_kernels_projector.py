"""Fused vision projector: CPU path, C++ reference, Triton (interpreter on CPU; GPU where there
is one), CUDA (GPU only), all against the NumPy float64 reference and LLaVA's torch projector.

fp32 tolerance everywhere: |got - ref| <= 1e-4 * max|ref| + 1e-5 (1024 / 4096-long fp32
accumulations); fp16 outputs: 2e-3 * max|ref| + 1e-3 (one fp16 rounding of the result)."""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from llara_export.models.llava import build_projector
from llara_kernels.errors import KernelError
from llara_kernels.projector import ProjectorWeights, ProjectorWorkspace, project, project_ref

ROOT = Path(__file__).resolve().parents[1]


def _weights(rng, c, h, d):
    return ProjectorWeights(rng.uniform(-1, 1, (c, h)) / np.sqrt(c), rng.uniform(-1, 1, h) * 0.1,
                            rng.uniform(-1, 1, (h, d)) / np.sqrt(h), rng.uniform(-1, 1, d) * 0.1)


def _close(got, ref, fp16=False):
    scale = float(np.abs(ref).max())
    atol = (2e-3 * scale + 1e-3) if fp16 else (1e-4 * scale + 1e-5)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), ref, rtol=0, atol=atol)


@pytest.mark.parametrize("drop", [0, 1])
def test_cpu_path_matches_reference_into_buffer_slices(drop):
    rng = np.random.default_rng(drop)
    w = _weights(rng, 40, 96, 72)
    hidden = rng.normal(size=(17 + drop, 40)).astype(np.float32)
    ref = project_ref(hidden, w, drop=drop)
    out32 = np.full((30, 72), 7.0, dtype=np.float32)
    assert project(hidden, w, out32[5:22], drop=drop) is not None
    _close(out32[5:22], ref)
    assert (out32[:5] == 7).all() and (out32[22:] == 7).all()  # neighbours untouched
    out16 = np.full((30, 72), 7.0, dtype=np.float16)
    project(hidden, w, out16[3:20], drop=drop)
    _close(out16[3:20], ref, fp16=True)
    assert (out16[:3] == 7).all() and (out16[20:] == 7).all()


def test_matches_llava_torch_projector():
    torch.manual_seed(0)
    proj = build_projector("mlp2x_gelu", 48, 64).eval()  # Linear, GELU(erf), Linear
    feats = torch.randn(1, 1 + 25, 48)  # CLS + 5x5 patches
    with torch.no_grad():
        want = proj(feats[:, 1:])[0].double().numpy()
    sd = {k: v.numpy() for k, v in proj.state_dict().items()}
    w = ProjectorWeights.from_linear(sd["0.weight"], sd["0.bias"], sd["2.weight"], sd["2.bias"])
    out = np.empty((25, 64), dtype=np.float32)
    _close(project(feats[0].numpy(), w, out), want)
    _close(project_ref(feats[0].numpy(), w), want)


def test_fp32_gelu_epilogue_against_math_erf():
    from llara_kernels.projector import _bias_gelu_, _bias_gelu_serial

    v = np.linspace(-12, 12, 400_001)
    exact = np.array([0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in v])
    for build in (_bias_gelu_, _bias_gelu_serial):  # parallel (large) and serial (small) builds
        got = v.astype(np.float32).reshape(1, -1).repeat(2, axis=0)
        build(got, np.zeros(got.shape[1], np.float32))
        assert (np.abs(got - exact) <= 2e-6 * np.maximum(1.0, np.abs(v))).all()


def test_reused_workspace_allocates_nothing_large():
    rng = np.random.default_rng(3)
    w = _weights(rng, 256, 1024, 1024)
    hidden = rng.normal(size=(65, 256)).astype(np.float32)
    out = np.empty((64, 1024), dtype=np.float16)
    ws = ProjectorWorkspace(64, w)
    project(hidden, w, out, ws)  # numba compiled, buffers touched
    tracemalloc.start()
    project(hidden, w, out, ws)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # numpy's casting ufunc buffer is 8192 elements (64 KiB); one (64, 1024) fp32 temporary
    # would be 256 KiB
    assert peak < 100 * 1024, peak


@pytest.mark.parametrize("chosen", [None, "omp"])
def test_numba_threading_layer_is_workqueue_unless_the_user_chose(chosen):
    """numba's OpenMP layer made torch 20x slower in one process (llara_kernels/projector.py)."""
    code = textwrap.dedent("""
        import numba, numpy as np
        from llara_kernels import projector
        numba.set_num_threads(1)  # starts the threading layer, as the onnx+fused engine does
        h = np.ones((64, 64), np.float32)
        projector._bias_gelu_(h, np.zeros(64, np.float32))
        print(numba.threading_layer())
    """)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    if chosen:
        env["NUMBA_THREADING_LAYER"] = chosen
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == (chosen or "workqueue")


def test_bad_shapes_are_config_errors():
    rng = np.random.default_rng(4)
    w = _weights(rng, 8, 16, 12)
    with pytest.raises(KernelError):
        project(np.zeros((5, 9), np.float32), w, np.zeros((4, 12), np.float32))
    with pytest.raises(KernelError):
        project(np.zeros((5, 8), np.float32), w, np.zeros((5, 12), np.float32))
    with pytest.raises(KernelError):
        ProjectorWeights(w.w1, w.b1, w.w2[:7], w.b2)


def test_llava_15_size():
    """576 x 1024 -> 4096 -> 4096 (CLIP ViT-L/14-336 patches into Vicuna-7B's width): the whole
    fused fp32 run, checked against the float64 reference on 24 sampled rows."""
    rng = np.random.default_rng(5)
    w = _weights(rng, 1024, 4096, 4096)
    hidden = rng.normal(size=(577, 1024)).astype(np.float32)
    out = np.empty((576, 4096), dtype=np.float32)
    project(hidden, w, out)
    rows = np.sort(rng.choice(576, 24, replace=False))
    ref = project_ref(np.concatenate([hidden[:1], hidden[1:][rows]]), w)
    _close(out[rows], ref)


@pytest.fixture(scope="module")
def native_lib(tmp_path_factory):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    build = tmp_path_factory.mktemp("build")
    for cmd in (["cmake", "-S", str(ROOT), "-B", str(build), "-DLLARA_CUDA=OFF"],
                ["cmake", "--build", str(build), "--target", "llara_kernels"]):
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return ctypes.CDLL(str(next(build.glob("libllara_kernels*.so"))))


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def test_cpp_reference_matches_numpy_reference(native_lib):
    rng = np.random.default_rng(6)
    w = _weights(rng, 40, 96, 72)
    hidden = rng.normal(size=(18, 40)).astype(np.float32)
    out = np.full((17, 80), 7.0, dtype=np.float32)  # ldo = 80 > D
    rc = native_lib.llara_fused_projector_ref(
        _ptr(hidden), 18, 1, 40, _ptr(w.w1), _ptr(w.b1), _ptr(w.w2), _ptr(w.b2), 96, 72,
        _ptr(out), 80)
    assert rc == 0
    _close(out[:, :72], project_ref(hidden, w))
    assert (out[:, 72:] == 7).all()


_TRITON_SCRIPT = textwrap.dedent("""
    import numpy as np, torch
    from llara_kernels.projector import ProjectorWeights, project_ref
    from llara_kernels.projector_triton import project_triton
    rng = np.random.default_rng(7)
    c, h, d = 40, 96, 72
    w = ProjectorWeights(rng.uniform(-1, 1, (c, h)) / np.sqrt(c), rng.uniform(-1, 1, h),
                         rng.uniform(-1, 1, (h, d)) / np.sqrt(h), rng.uniform(-1, 1, d))
    hidden = rng.normal(size=(38, c)).astype(np.float32)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    buf = torch.full((50, d), 7.0)
    project_triton(t(hidden), t(w.w1), t(w.b1), t(w.w2), t(w.b2), buf[4:41])
    ref = project_ref(hidden, w)
    err = float(np.abs(buf[4:41].numpy() - ref).max())
    assert err <= 1e-4 * float(np.abs(ref).max()) + 1e-5, err
    assert bool((buf[:4] == 7).all()) and bool((buf[41:] == 7).all())
    print("TRITON_OK", err)
""")


def test_triton_kernel_in_interpreter_mode():
    pytest.importorskip("triton", reason="triton not installed")
    env = {**os.environ, "TRITON_INTERPRET": "1"}  # must be set before triton is imported
    out = subprocess.run([sys.executable, "-c", _TRITON_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and "TRITON_OK" in out.stdout, out.stderr[-3000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_triton_on_gpu_at_llava_size_fp16():
    from llara_kernels.projector_triton import project_triton

    rng = np.random.default_rng(8)
    w = _weights(rng, 1024, 4096, 4096)
    hidden = rng.normal(size=(577, 1024)).astype(np.float32)
    dev = [torch.from_numpy(np.ascontiguousarray(a)).cuda().half()
           for a in (hidden, w.w1, w.b1, w.w2, w.b2)]
    embeds = torch.zeros((600, 4096), dtype=torch.float16, device="cuda")
    project_triton(*dev, embeds[10:586])
    rows = np.arange(0, 576, 23)
    ref = project_ref(np.concatenate([hidden[:1], hidden[1:][rows]]), w)
    _close(embeds[10:586][torch.from_numpy(rows).cuda()].float().cpu().numpy(), ref, fp16=True)


def test_trt_plugin_registers_or_says_why():
    from llara_kernels import trt_plugin

    try:
        import tensorrt.plugin  # noqa: F401
    except ImportError:
        with pytest.raises(KernelError, match="TensorRT"):
            trt_plugin.register.__wrapped__()
        pytest.skip("tensorrt (>= 10.6, tensorrt.plugin) not installed: registration refused "
                    "with KernelError as specified")
    assert trt_plugin.register() == trt_plugin.PLUGIN_ID
