"""Arrays of more than 2**31 elements: no 32-bit index overflows.

Every array here has 2**31 + 2**24 elements or more (8 GiB of float32). It
is zero-filled by calloc, so pages that are only read map the kernel's zero
page and cost no memory; random data sits in two windows, one straddling
element 2**31 and one at the very end, so that an index that wraps or
truncates reads zeros instead and changes the result. The expected values
are computed blockwise: the zero region analytically (one element's or one
row's reference value times the count) and the windows with the float64
reference.

* every elementwise loss, 'sum' and 'mean' (forward only: no 8 GiB output);
* cross-entropy forward ('none' and 'sum') on every row path: short rows
  (C = 16), long rows (C = 1000), split rows (C = 262144) and K-dimensional
  input (N, C, d);
* in-place gradients (out=input), which do write the 8 GiB: cross-entropy
  and the first elementwise loss, when MemAvailable allows (about 10 GiB).

Slow-marked: runs with ``pytest -m slow`` (or FASTLOSS_SLOW=1); about a
minute on two cores.
"""

import os
import re

import numpy as np
import pytest
from _support.registry import REGISTRY, assert_grad_close, assert_loss_close

BEYOND = 2**31 + 2**24  # elements: 16 Mi past the int32 limit
WINDOW = 2**20  # random elements around 2**31 and at the end
GIB = 2**30

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def slow_enabled(request):
    markexpr = request.config.getoption("markexpr", "") or ""
    if os.environ.get("FASTLOSS_SLOW") != "1" and not re.search(r"(?<!not )\bslow\b", markexpr):
        pytest.skip("slow: run with -m slow (or FASTLOSS_SLOW=1)")


def _mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _need(resident_bytes):
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if total < 16 * GIB or _mem_available() < resident_bytes * 1.25:
        pytest.skip(f"needs {resident_bytes * 1.25 / GIB:.1f} GiB available (total "
                    f"{total / GIB:.0f} GiB, available {_mem_available() / GIB:.1f} GiB)")


def _zeros(shape, dtype=np.float32):
    try:
        return np.zeros(shape, dtype)  # calloc: untouched pages cost nothing
    except MemoryError:
        pytest.skip(f"cannot reserve {np.prod(shape) * np.dtype(dtype).itemsize / GIB:.1f} GiB")


def _windows(n):
    """Two [start, stop) element ranges: across 2**31, and the end."""
    return [(2**31 - WINDOW // 2, 2**31 + WINDOW // 2), (n - WINDOW, n)]


# ---------------------------------------------------------------------------
# Elementwise losses
# ---------------------------------------------------------------------------

ELEMENTWISE = [c for c in REGISTRY if np.asarray(c.make_data((3, 4), 0)[1]).dtype.kind == "f"]


def _elementwise_problem(case, n):
    x, y = _zeros(n), _zeros(n)
    for k, (a, b) in enumerate(_windows(n)):
        xw, yw = case.make_data((b - a,), 50 + k)
        x[a:b], y[a:b] = xw, yw
    return x, y


def _elementwise_expected_sum(case, x, y, n):
    zero = float(case.ref(np.zeros(1, np.float32), np.zeros(1, np.float32), "sum"))
    total, covered = 0.0, 0
    for a, b in _windows(n):
        total += case.ref(x[a:b], y[a:b], "sum")
        covered += b - a
    return total + (n - covered) * zero


@pytest.mark.parametrize("case", ELEMENTWISE, ids=[c.name for c in ELEMENTWISE])
def test_elementwise_forward_beyond_2_31(case):
    _need(0.2 * GIB)
    n = BEYOND
    x, y = _elementwise_problem(case, n)
    expected = _elementwise_expected_sum(case, x, y, n)
    assert_loss_close(case.func(x, y, reduction="sum"), expected)
    assert_loss_close(case.func(x, y, reduction="mean"), expected / n)


def test_elementwise_in_place_gradient_beyond_2_31():
    case = ELEMENTWISE[0]
    _need(8.3 * GIB)
    n = BEYOND
    x, y = _elementwise_problem(case, n)
    windows = [(x[a:b].copy(), y[a:b].copy()) for a, b in _windows(n)]
    expected_sum = _elementwise_expected_sum(case, x, y, n)
    loss, grad = case.cls(reduction="sum").loss_and_grad(x, y, out=x)
    assert grad is x
    assert_loss_close(loss, expected_sum)
    zero_grad = case.ref_gradient(np.zeros(1, np.float32), np.zeros(1, np.float32), "sum")[0]
    for (a, b), (xw, yw) in zip(_windows(n), windows):
        assert_grad_close(grad[a:b], case.ref_gradient(xw, yw, "sum"))
    # The zero region: just below the first window, between, and strided samples.
    for a, b in [(2**31 - WINDOW // 2 - 4096, 2**31 - WINDOW // 2),
                 (2**31 + WINDOW // 2, 2**31 + WINDOW // 2 + 4096)]:
        assert_grad_close(grad[a:b], np.full(b - a, zero_grad))
    sample = np.arange(0, n, 9973)
    for a, b in _windows(n):
        sample = sample[(sample < a) | (sample >= b)]
    assert_grad_close(grad[sample], np.full(sample.size, zero_grad))


# ---------------------------------------------------------------------------
# Cross-entropy
# ---------------------------------------------------------------------------

CE = [c for c in REGISTRY if not c.elementwise]

CE_SHAPES = {
    "short-rows": (BEYOND // 16 + 1, 16),
    "long-rows": (BEYOND // 1000 + 1, 1000),
    "split-rows": (BEYOND // 262144 + 1, 262144),
    # (N, C, d): a window of contiguous elements touches every position d of
    # one or two batch items, so d stays small enough for the reference.
    "k-dim": (2048, 1000, BEYOND // 2048000 + 1),
}


def _ce_problem(shape, seed=0):
    """Zero logits with random rows in the windows; random targets everywhere."""
    rng = np.random.default_rng(seed)
    x = _zeros(shape)
    c = shape[1]
    n_samples = shape[0] * (shape[2] if len(shape) == 3 else 1)
    t = rng.integers(0, c, size=(shape[0],) + shape[2:], dtype=np.int64)
    flat = x.reshape(-1)
    for a, b in _windows(flat.size):
        flat[a:b] = (3.0 * rng.standard_normal(b - a)).astype(np.float32)
    return x, t, n_samples


def _sample_rows(x):
    """(N*d, C) view-like access: the logits of sample s, for 2-D and K-dim input."""
    if x.ndim == 2:
        return lambda s: x[s]
    d = x.shape[2]
    return lambda s: x[s // d, :, s % d]


def _ce_reference_rows(case, x, t, samples):
    row = _sample_rows(x)
    tf = t.reshape(-1)
    xs = np.stack([row(s) for s in samples]).astype(np.float64)
    return case.ref(xs, tf[samples], "none"), xs


@pytest.mark.parametrize("path", CE_SHAPES)
@pytest.mark.parametrize("case", CE, ids=[c.name for c in CE])
def test_cross_entropy_forward_beyond_2_31(case, path):
    shape = CE_SHAPES[path]
    x, t, n_samples = _ce_problem(shape)
    _need(n_samples * 12 + 0.5 * GIB)  # int64 targets and float32 losses are real memory
    c = shape[1]
    assert x.size > 2**31
    losses = case.func(x, t, reduction="none")
    flat_losses = losses.reshape(-1)
    # Samples whose logits are all zero: log(C) whatever the target.
    zero_loss = float(case.ref(np.zeros((1, c)), np.zeros(1, np.int64), "sum"))
    window_samples = _window_samples(x)
    zero_samples = np.setdiff1d(np.arange(0, n_samples, 997), window_samples)
    assert_loss_close(flat_losses[zero_samples], np.full(zero_samples.size, zero_loss))
    # Every sample just around the 2**31 boundary, and the window samples.
    expected_windows, _ = _ce_reference_rows(case, x, t, window_samples)
    assert_loss_close(flat_losses[window_samples], expected_windows)
    expected_sum = (n_samples - len(window_samples)) * zero_loss + float(np.sum(expected_windows))
    assert_loss_close(case.func(x, t, reduction="sum"), expected_sum)
    assert_loss_close(float(np.sum(flat_losses, dtype=np.float64)), expected_sum, rtol=1e-5)


def _window_samples(x):
    """Every sample (row, or (n, position) for K-dim) holding window data."""
    c = x.shape[1]
    samples = set()
    for a, b in _windows(x.size):
        if x.ndim == 2:
            samples.update(range(a // c, (b - 1) // c + 1))
        else:
            cd, d = c * x.shape[2], x.shape[2]
            for i in range(a // cd, (b - 1) // cd + 1):
                lo, hi = max(a, i * cd), min(b, (i + 1) * cd)  # elements of batch i
                offsets = np.arange(lo, hi) - i * cd
                samples.update((i * d + np.unique(offsets % d)).tolist())
    return np.array(sorted(samples), dtype=np.int64)


@pytest.mark.parametrize("case", CE, ids=[c.name for c in CE])
def test_cross_entropy_in_place_gradient_beyond_2_31(case):
    shape = CE_SHAPES["long-rows"]
    _need(8.3 * GIB)
    x, t, n = _ce_problem(shape, seed=1)
    c = shape[1]
    window_samples = _window_samples(x)
    expected_windows, xs = _ce_reference_rows(case, x, t, window_samples)
    expected_grads = case.ref_gradient(xs, t[window_samples], "none")
    losses, grad = case.cls(reduction="none").loss_and_grad(x, t, out=x)
    assert grad is x
    assert_loss_close(losses[window_samples], expected_windows)
    assert_grad_close(grad[window_samples], expected_grads)
    # Zero rows (cross-entropy: softmax is uniform, gradient 1/C - onehot(target),
    # loss log C; nll_loss: gradient -onehot(target), loss 0), from the case's
    # reference on zeros: every row next to the windows and a strided sample of
    # the rest.
    boundary = 2**31 // c
    rows = np.r_[boundary - 2000: boundary - WINDOW // (2 * c) - 1,
                 np.arange(0, n, 997)]
    rows = np.setdiff1d(rows, window_samples)
    zeros = np.zeros((rows.size, c))
    assert_grad_close(grad[rows], case.ref_gradient(zeros, t[rows], "none"))
    assert_loss_close(losses[rows], case.ref(zeros, t[rows], "none"))
