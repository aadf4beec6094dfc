"""Masked argmax: numba kernels (bool and packed masks) against the NumPy reference.

The contract is exact (no tolerance): lowest index on ties, as np.argmax; NaN and -inf never
chosen, +inf is; nothing allowed -> -1. The same contract is checked for the C++ reference
and the CUDA kernel by the ctest of test_cmake_kernels.py; here the C++ reference is also
built with cmake (CPU only) and called through ctypes on the same random rows."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from llara_kernels.errors import KernelError
from llara_kernels.masked_argmax import (
    mask_words,
    masked_argmax,
    masked_argmax_ref,
    pack_mask,
    unpack_mask,
)


def _case(rng, n_vocab):
    # values on a coarse grid so that ties are frequent
    logits = np.round(rng.normal(size=n_vocab), 1).astype(np.float32)
    logits[rng.random(n_vocab) < 0.05] = np.nan
    logits[rng.random(n_vocab) < 0.05] = -np.inf
    logits[rng.random(n_vocab) < 0.002] = np.inf
    mask = rng.random(n_vocab) < rng.choice([0.0, 0.001, 0.05, 0.5, 1.0])
    return logits, mask


def test_pack_roundtrip_and_bit_order():
    mask = np.zeros(70, dtype=bool)
    mask[[0, 31, 32, 69]] = True
    bits = pack_mask(mask)
    assert bits.dtype == np.uint32 and bits.shape == (mask_words(70),) == (3,)
    assert bits.tolist() == [1 | (1 << 31), 1, 1 << 5]
    assert (unpack_mask(bits, 70) == mask).all()


def test_numba_equals_reference_on_random_rows():
    rng = np.random.default_rng(0)
    for _ in range(300):
        logits, mask = _case(rng, int(rng.integers(1, 2100)))
        want = masked_argmax_ref(logits, mask)
        assert masked_argmax(logits, mask) == want
        assert masked_argmax(logits, pack_mask(mask)) == want
        assert masked_argmax(logits.astype(np.float64), mask) == want
        if want >= 0:  # and the reference really is argmax over the allowed finite logits
            ok = mask & ~np.isnan(logits) & ~np.isneginf(logits)
            assert ok[want] and logits[want] == logits[ok].max()
            assert not (ok[:want] & (logits[:want] == logits[want])).any()


def test_edge_cases():
    x = np.array([5.0, np.nan, 9.0, 5.0, -np.inf, 9.0], dtype=np.float32)
    cases = [
        ([1, 1, 0, 1, 1, 0], 0),  # tie 0 vs 3 -> lowest; 2 and 5 masked out
        ([0, 1, 0, 0, 1, 0], -1),  # NaN and -inf are never chosen
        ([0, 0, 1, 0, 0, 1], 2),
        ([0] * 6, -1),
    ]
    for mask, want in cases:
        m = np.array(mask, dtype=bool)
        assert masked_argmax_ref(x, m) == masked_argmax(x, m) == masked_argmax(x, pack_mask(m))
        assert masked_argmax(x, m) == want
    x[1] = np.inf
    assert masked_argmax(x, np.ones(6, bool)) == 1 == int(np.argmax(np.nan_to_num(x, nan=0)))


def test_rows():
    rng = np.random.default_rng(1)
    rows = [_case(rng, 1000) for _ in range(9)]
    logits = np.stack([r[0] for r in rows])
    mask = np.stack([r[1] for r in rows])
    want = masked_argmax_ref(logits, mask)
    assert want.dtype == np.int32 and want.shape == (9,)
    assert (masked_argmax(logits, mask) == want).all()
    assert (masked_argmax(logits, pack_mask(mask)) == want).all()


def test_bad_masks():
    with pytest.raises(KernelError):
        masked_argmax(np.zeros(40, np.float32), np.zeros(39, bool))
    with pytest.raises(KernelError):
        masked_argmax(np.zeros(40, np.float32), np.zeros(1, np.uint32))
    with pytest.raises(KernelError):
        masked_argmax(np.zeros((2, 40), np.float32), np.zeros((3, 40), bool))


@pytest.fixture(scope="module")
def native_lib(tmp_path_factory):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    build = tmp_path_factory.mktemp("build")
    root = Path(__file__).resolve().parents[1]
    for cmd in (["cmake", "-S", str(root), "-B", str(build), "-DLLARA_CUDA=OFF"],
                ["cmake", "--build", str(build), "--target", "llara_kernels"]):
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return ctypes.CDLL(str(next(build.glob("libllara_kernels*.so"))))


def test_cpp_reference_through_ctypes(native_lib):
    lib = native_lib
    rng = np.random.default_rng(2)
    for _ in range(50):
        logits, mask = _case(rng, int(rng.integers(1, 3000)))
        bits = pack_mask(mask)
        out = np.full(1, -7, dtype=np.int32)
        rc = lib.llara_masked_argmax_ref(
            logits.ctypes.data_as(ctypes.c_void_p), bits.ctypes.data_as(ctypes.c_void_p),
            1, len(logits), out.ctypes.data_as(ctypes.c_void_p))
        assert rc == 0 and out[0] == masked_argmax_ref(logits, mask)
