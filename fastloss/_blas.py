"""``C = A.T @ B + beta C`` in float32 through the BLAS that NumPy itself uses,
for the grad_weight accumulation of the fused linear cross-entropy
(fastloss/_linear_ce.py).

NumPy's matmul has no beta=1 form: accumulating ``grad_weight += g.T @ x``
chunk by chunk costs a GEMM into a (V, H) scratch and then a (V, H) add, a
memory-bound pass over 64 MiB per chunk at V = 32000, H = 512 (about 10% of
the whole head's time at 2048 tokens). The BLAS has the beta argument; NumPy's
wheels bundle OpenBLAS (``numpy.libs/libscipy_openblas*``, symbols
``scipy_cblas_sgemm64_`` with 64-bit integers, or ``scipy_cblas_sgemm`` with
32-bit ones), already loaded by ``import numpy``, so calling its
``cblas_sgemm`` through ctypes uses the same library and thread pool as
matmul, with the GIL released during the call (ctypes releases it).

Where that library is not found (NumPy built against a system BLAS, another
platform), :func:`sgemm_at_b` returns False and the caller falls back to
matmul and add; ``FASTLOSS_NUMPY_BLAS=0`` forces the fallback.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

__all__ = ["available", "sgemm_at_b"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# (symbol, integer type), in the order tried in each candidate library
_SYMBOLS = (("scipy_cblas_sgemm64_", ctypes.c_int64), ("cblas_sgemm64_", ctypes.c_int64),
            ("scipy_cblas_sgemm", ctypes.c_int), ("cblas_sgemm", ctypes.c_int))


def _find():
    """(function, integer type) of NumPy's bundled cblas_sgemm, or None."""
    if os.environ.get("FASTLOSS_NUMPY_BLAS", "1") == "0":
        return None
    libdir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(np.__file__))),
                          "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "libscipy_openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name, int_t in _SYMBOLS:
            fn = getattr(lib, name, None)
            if fn is None:
                continue
            ptr = ctypes.c_void_p
            fn.restype = None
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t,
                           ctypes.c_float, ptr, int_t, ptr, int_t, ctypes.c_float, ptr, int_t]
            return fn, int_t
    return None


_SGEMM = _find()


def available() -> bool:
    """Whether :func:`sgemm_at_b` reaches a BLAS (else it always returns False)."""
    return _SGEMM is not None


def sgemm_at_b(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float) -> bool:
    """``c = a.T @ b + beta * c`` for float32 arrays a (K, M), b (K, N) and
    c (M, N), each with unit stride along its rows (a row stride of its own),
    computed by one BLAS call; False, with nothing computed, when no BLAS was
    found, an array is empty, or an array does not have that layout."""
    if _SGEMM is None:
        return False
    arrays = (a, b, c)
    if any(x.dtype != np.float32 or x.ndim != 2 or 0 in x.shape for x in arrays):
        return False
    if any((x.shape[1] > 1 and x.strides[1] != 4)
           or (x.shape[0] > 1 and (x.strides[0] % 4 or x.strides[0] < 4 * x.shape[1]))
           for x in arrays) or not c.flags.writeable:
        return False
    k, m = a.shape
    n = b.shape[1]
    if b.shape[0] != k or c.shape != (m, n):
        raise ValueError(f"sgemm_at_b: shapes {a.shape}.T @ {b.shape} into {c.shape}")
    fn, _ = _SGEMM
    lda, ldb, ldc = (x.strides[0] // 4 if x.shape[0] > 1 else x.shape[1] for x in arrays)
    fn(_ROW_MAJOR, _TRANS, _NO_TRANS, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
       float(beta), c.ctypes.data, ldc)
    return True
