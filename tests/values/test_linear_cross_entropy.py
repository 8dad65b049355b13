"""fastloss.linear_cross_entropy (NumPy): the chunked linear + cross-entropy
against a float64 reference built from fastloss.reference's cross-entropy on
float64 logits, for every reduction and option, with and without a bias,
chunk sizes that do and do not divide N, an odd vocabulary; the global mean;
the edge cases (every target ignored, no tokens, unbatched input); the
argument errors; thread-count determinism of fastloss's own part.
(fastloss.torch's version: tests/pytorch/test_torch_linear_cross_entropy.py.)
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from numpy.testing import assert_allclose
from threadpoolctl import threadpool_limits

import fastloss
from fastloss import _blas, _linear_ce, reference

N, H, V = 50, 12, 33          # V odd; N not a multiple of the chunk sizes below

OPTIONS = {
    "plain": {},
    "weight": {"weight": "w"},
    "smoothing": {"label_smoothing": 0.15},
    "all": {"weight": "w", "label_smoothing": 0.3, "ignore_index": 4},
    "z_loss": {"weight": "w", "z_loss": 1e-3},    # fastloss's option, not PyTorch's
}


def make(n=N, h=H, c=V, seed=0, ignore_index=-100):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h)).astype(np.float32)
    W = (rng.standard_normal((c, h)) / np.sqrt(h)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    t = rng.integers(0, c, n)
    t[::7] = ignore_index
    w = rng.uniform(0.2, 2.0, c).astype(np.float32)
    return x, W, b, t, w


def options_of(name, w):
    return {k: (w if val == "w" else val) for k, val in OPTIONS[name].items()}


def ref(x, W, b, t, reduction="mean", grad_output=1.0, weight=None, ignore_index=-100,
        label_smoothing=0.0, z_loss=0.0):
    """(loss, grad_input, grad_weight, grad_bias) in float64 from the logits."""
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    z = x64 @ W64.T + (0.0 if b is None else b.astype(np.float64))
    kw = dict(weight=weight, ignore_index=ignore_index, reduction=reduction,
              label_smoothing=label_smoothing, z_loss=z_loss)
    loss = reference.cross_entropy(z, t, **kw)
    g = reference.cross_entropy_grad(z, t, grad_output=grad_output, **kw)
    return loss, g @ W64, g.T @ x64, None if b is None else g.sum(0)


def assert_lce_close(ours, expected, scale=1.0):
    """Float32 against float64: relative 2e-5 of the values plus an absolute
    term relative to the largest magnitude (sums of many float32 products)."""
    for a, e in zip(ours, expected):
        if e is None:
            assert a is None
            continue
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape
        assert a.dtype == np.float32 or a.shape == ()
        tol = 2e-5 * (np.max(np.abs(e)) if e.size else 1.0) * scale + 1e-7
        assert_allclose(a, e, rtol=2e-5, atol=tol)


@pytest.fixture(params=["blas", "matmul"])
def grad_weight_route(request, monkeypatch):
    """grad_weight accumulated by NumPy's bundled BLAS with beta=1
    (fastloss/_blas.py), or by its fallback, matmul into a scratch and add."""
    if request.param == "blas":
        if not _blas.available():
            pytest.skip("NumPy's bundled cblas_sgemm was not found")
    else:
        monkeypatch.setattr(_blas, "_SGEMM", None)
    return request.param


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("opts", sorted(OPTIONS))
@pytest.mark.parametrize("chunk_size", [None, 1, 8, 17, N + 5])
def test_against_float64_reference(reduction, bias, opts, chunk_size, grad_weight_route):
    x, W, b, t, w = make(ignore_index=OPTIONS[opts].get("ignore_index", -100))
    b = b if bias else None
    kw = options_of(opts, w)
    crit = fastloss.LinearCrossEntropyLoss(reduction=reduction, chunk_size=chunk_size, **kw)
    got = crit.loss_and_grad(x, W, t, b)
    assert_lce_close(got, ref(x, W, b, t, reduction, **kw))
    # the function and the forward give the same loss as loss_and_grad, bitwise
    loss = fastloss.linear_cross_entropy(x, W, t, linear_bias=b, reduction=reduction,
                                         chunk_size=chunk_size, **kw)
    assert_allclose(loss, got[0], rtol=0, atol=0)
    assert_allclose(crit(x, W, t, b), got[0], rtol=0, atol=0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_backward_with_grad_output(reduction):
    x, W, b, t, w = make(seed=1)
    rng = np.random.default_rng(5)
    go = rng.standard_normal(N).astype(np.float32) if reduction == "none" else 0.75
    crit = fastloss.LinearCrossEntropyLoss(weight=w, label_smoothing=0.1, reduction=reduction,
                                           chunk_size=16)
    got = crit.backward(x, W, t, b, grad_output=go)
    assert len(got) == 3
    expected = ref(x, W, b, t, reduction, grad_output=np.asarray(go, np.float64), weight=w,
                   label_smoothing=0.1)[1:]
    assert_lce_close(got, expected)
    if reduction != "none":
        # backward scales loss_and_grad's gradients (the scale enters before
        # the GEMMs: equal up to their rounding)
        _, *g1 = crit.loss_and_grad(x, W, t, b)
        for a, e in zip(got, g1):
            assert_allclose(a, np.float32(go) * e, rtol=1e-6, atol=1e-6 * np.abs(e).max())


def test_mean_is_global_not_per_chunk():
    # chunk 1 puts one token in each chunk: a per-chunk mean would weigh each
    # token 1 instead of w_t / sum(w)
    x, W, b, t, w = make(seed=2)
    for cs in (1, 3, None):
        loss, *_ = fastloss.LinearCrossEntropyLoss(weight=w, chunk_size=cs).loss_and_grad(
            x, W, t, b)
        assert_allclose(loss, ref(x, W, b, t, weight=w)[0], rtol=1e-5)
    kept = t != -100
    assert_allclose(_linear_ce.mean_denominator(t, w, -100), w[t[kept]].sum(dtype=np.float64))
    assert _linear_ce.mean_denominator(t, None, -100) == kept.sum()


def test_matches_cross_entropy_on_the_logits():
    # the same kernel on the materialised logits: the loss and the logits'
    # gradient chained through the linear layer agree
    x, W, b, t, w = make(seed=3)
    z = x @ W.T + b
    loss, g = fastloss.CrossEntropyLoss(weight=w, label_smoothing=0.2).loss_and_grad(z, t)
    got = fastloss.LinearCrossEntropyLoss(weight=w, label_smoothing=0.2,
                                          chunk_size=9).loss_and_grad(x, W, t, b)
    assert_allclose(got[0], loss, rtol=1e-6)
    assert_allclose(got[1], g @ W, rtol=1e-5, atol=1e-7)
    assert_allclose(got[2], g.T @ x, rtol=1e-5, atol=1e-7)
    assert_allclose(got[3], g.sum(0), rtol=1e-5, atol=1e-7)


def test_long_rows_kernel_and_uneven_chunks():
    # a vocabulary long enough for the kernel's long-row strategies
    x, W, b, t, w = make(n=70, h=8, c=4099, seed=4)
    got = fastloss.LinearCrossEntropyLoss(label_smoothing=0.05, chunk_size=32).loss_and_grad(
        x, W, t, b)
    assert_lce_close(got, ref(x, W, b, t, label_smoothing=0.05))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_target_ignored(reduction):
    x, W, b, t, w = make(seed=5)
    t[:] = -100
    for kw in ({}, {"weight": w, "label_smoothing": 0.1}):
        loss, gx, gW, gb = fastloss.LinearCrossEntropyLoss(
            reduction=reduction, chunk_size=8, **kw).loss_and_grad(x, W, t, b)
        if reduction == "mean":
            assert np.isnan(loss)      # 0 / 0, as PyTorch
        else:
            assert_allclose(loss, 0.0 if reduction == "sum" else np.zeros(N), atol=0)
        for g in (gx, gW, gb):
            assert not np.any(g)


def test_zero_class_weights_give_nan_like_pytorch():
    # D = 0 with kept targets: PyTorch's 0/0 loss and NaN gradients of kept rows
    x, W, b, t, w = make(seed=6)
    w[:] = 0.0
    loss, gx, _, _ = fastloss.LinearCrossEntropyLoss(weight=w).loss_and_grad(x, W, t, b)
    z = x @ W.T + b
    ce, g = fastloss.CrossEntropyLoss(weight=w).loss_and_grad(z, t)
    assert np.isnan(loss) and np.isnan(ce)
    assert_allclose(gx, g @ W)   # NaN where the full cross-entropy's chain gives NaN
    assert np.isnan(gx[t != -100]).all() and not np.any(gx[t == -100])


def test_no_tokens():
    _, W, b, _, _ = make()
    x = np.zeros((0, H), np.float32)
    t = np.zeros(0, np.int64)
    loss, gx, gW, gb = fastloss.LinearCrossEntropyLoss().loss_and_grad(x, W, t, b)
    assert np.isnan(loss)
    assert gx.shape == (0, H) and gW.shape == (V, H) and gb.shape == (V,)
    assert not gW.any() and not gb.any()
    assert fastloss.linear_cross_entropy(x, W, t, reduction="sum") == 0.0
    assert fastloss.linear_cross_entropy(x, W, t, reduction="none").shape == (0,)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_unbatched_input(reduction):
    x, W, b, t, w = make(seed=7)
    t[0] = 3
    got = fastloss.LinearCrossEntropyLoss(reduction=reduction).loss_and_grad(x[0], W, t[0], b)
    assert got[1].shape == (H,)
    assert np.shape(got[0]) == ()
    batched = fastloss.LinearCrossEntropyLoss(reduction=reduction).loss_and_grad(
        x[:1], W, t[:1], b)
    assert_allclose(np.reshape(got[0], ()), np.reshape(batched[0], ()), rtol=1e-6)
    assert_allclose(got[1], batched[1][0], rtol=1e-6)
    assert_allclose(got[2], batched[2], rtol=1e-6)


def test_without_bias_grad_bias_is_none_and_inputs_untouched():
    x, W, b, t, w = make(seed=8)
    copies = [a.copy() for a in (x, W, b, t, w)]
    loss, gx, gW, gb = fastloss.LinearCrossEntropyLoss(weight=w).loss_and_grad(x, W, t)
    assert gb is None
    assert fastloss.LinearCrossEntropyLoss().backward(x, W, t)[2] is None
    fastloss.LinearCrossEntropyLoss(weight=w).loss_and_grad(x, W, t, b)
    for a, c in zip((x, W, b, t, w), copies):
        assert_allclose(a, c, rtol=0, atol=0)


def test_other_dtypes_and_layouts_are_converted():
    x, W, b, t, w = make(seed=9)
    expected = fastloss.LinearCrossEntropyLoss(chunk_size=8).loss_and_grad(x, W, t, b)
    got = fastloss.LinearCrossEntropyLoss(chunk_size=8).loss_and_grad(
        x.astype(np.float64), np.asfortranarray(W), t.astype(np.int32), list(b))
    for a, e in zip(got, expected):
        assert_allclose(a, e, rtol=0, atol=0)


def test_chunk_size_changes_nothing_but_rounding():
    x, W, b, t, w = make(seed=10)
    base = fastloss.LinearCrossEntropyLoss(chunk_size=N).loss_and_grad(x, W, t, b)
    for cs in (1, 5, 49):
        got = fastloss.LinearCrossEntropyLoss(chunk_size=cs).loss_and_grad(x, W, t, b)
        assert_allclose(got[0], base[0], rtol=1e-6)
        # the cross-entropy gradient of a row does not depend on the chunking;
        # the BLAS's rounding does (its kernels differ with the GEMM's shape)
        for a, e in zip(got[1:], base[1:]):
            assert_allclose(a, e, rtol=1e-5, atol=1e-6 * np.abs(e).max())


def test_thread_count_does_not_change_fastloss_results():
    # fastloss's part (the chunk loop and the cross-entropy kernel) is bitwise
    # the same for any thread count; the BLAS is held at one thread here
    # because whether its GEMMs are is up to that library
    x, W, b, t, w = make(n=300, h=16, c=2001, seed=11)
    results = []
    with threadpool_limits(1, user_api="blas"):
        for n_threads in (1, 2, 3):
            with fastloss.threads(n_threads):
                results.append(fastloss.LinearCrossEntropyLoss(
                    weight=w, label_smoothing=0.1, chunk_size=64).loss_and_grad(x, W, t, b))
    for other in results[1:]:
        for a, e in zip(other, results[0]):
            assert_allclose(a, e, rtol=0, atol=0)


def test_default_chunk_size_rule():
    assert _linear_ce.default_chunk_size(8192, 32000) == _linear_ce.CHUNK_BYTES // (4 * 32000)
    assert _linear_ce.default_chunk_size(100, 32000) == 100          # at most N
    assert _linear_ce.default_chunk_size(10**6, 10**7) == _linear_ce.MIN_CHUNK_ROWS
    assert _linear_ce.default_chunk_size(0, 10) == 1
    # another target size (fastloss.torch's: half, torch accumulates grad_weight in place)
    assert _linear_ce.default_chunk_size(8192, 32000, 16 << 20) == (16 << 20) // (4 * 32000)
    # about CHUNK_BYTES of logits
    rows = _linear_ce.default_chunk_size(10**6, 128256)
    assert rows * 128256 * 4 <= max(_linear_ce.CHUNK_BYTES, 64 * 128256 * 4)


def test_class_options_are_checked_when_set_and_repr():
    crit = fastloss.LinearCrossEntropyLoss(ignore_index=None, label_smoothing=0.25)
    assert crit.ignore_index == -100
    assert repr(crit) == ("LinearCrossEntropyLoss(ignore_index=-100, reduction='mean', "
                          "label_smoothing=0.25)")
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        crit.label_smoothing = 1.5
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum'"):
        crit.reduction = "avg"
    with pytest.raises(ValueError, match="chunk_size must be at least 1, got 0"):
        crit.chunk_size = 0
    with pytest.raises(TypeError, match="ignore_index must be an integer"):
        crit.ignore_index = 1.5
    with pytest.raises(ValueError, match="z_loss must be a number >= 0.0"):
        crit.z_loss = -0.5
    crit.z_loss = 0.01
    assert repr(crit).endswith("label_smoothing=0.25, z_loss=0.01)")


# --------------------------------------------------------------------------
# Argument errors: each names the argument.

def _call(**over):
    x, W, b, t, w = make(n=6, h=4, c=5)
    args = dict(input=x, linear_weight=W, target=t % 5, linear_bias=b, weight=None)
    args.update(over)
    kw = {k: args.pop(k) for k in list(args) if k not in ("input", "linear_weight", "target")}
    return fastloss.linear_cross_entropy(args["input"], args["linear_weight"], args["target"],
                                         **kw)


@pytest.mark.parametrize("over,error,match", [
    ({"input": np.zeros((2, 3, 4), np.float32)}, ValueError,
     r"input must have shape \(N, H\) or \(H,\), got shape \(2, 3, 4\)"),
    ({"input": np.zeros((), np.float32)}, ValueError, r"input must have shape \(N, H\)"),
    ({"input": np.array([["a"] * 4] * 6)}, TypeError, "input must hold real numbers"),
    ({"linear_weight": np.zeros((5, 3), np.float32)}, ValueError,
     r"linear_weight must have shape \(V, 4\) .* got shape \(5, 3\)"),
    ({"linear_weight": np.zeros(4, np.float32)}, ValueError,
     r"linear_weight must have shape \(V, 4\)"),
    ({"linear_weight": np.zeros((0, 4), np.float32), "linear_bias": None}, ValueError,
     "linear_weight must have at least one row"),
    ({"linear_bias": np.zeros(4, np.float32)}, ValueError,
     r"linear_bias must have shape \(5,\) .* got shape \(4,\)"),
    ({"linear_bias": "x"}, TypeError, "linear_bias must hold real numbers"),
    ({"target": np.zeros(5, np.int64)}, ValueError,
     r"target has shape \(5,\), expected \(6,\)"),
    ({"target": np.zeros(6, np.float32)}, TypeError, "target must hold integer class indices"),
    ({"target": np.array([0, 1, 5, 2, 3, 4])}, ValueError,
     r"target\[2\] = 5 is out of range for 5 classes"),
    ({"target": np.array([0, 1, 2, -1, 3, 4])}, ValueError,
     r"target\[3\] = -1 is out of range for 5 classes .*ignore_index=-100"),
    ({"weight": np.ones(4, np.float32)}, ValueError, r"weight must have shape \(5,\)"),
    ({"weight": np.array([1, 1, np.nan, 1, 1], np.float32)}, ValueError,
     "weight must be finite"),
    ({"reduction": "avg"}, ValueError, "reduction must be 'none', 'mean' or 'sum'"),
    ({"label_smoothing": -0.1}, ValueError, r"label_smoothing must be a number in \[0.0, 1.0\]"),
    ({"label_smoothing": "0.1"}, TypeError, "label_smoothing must be a real number"),
    ({"ignore_index": 2.5}, TypeError, "ignore_index must be an integer"),
    ({"chunk_size": 0}, ValueError, "chunk_size must be at least 1, got 0"),
    ({"chunk_size": 2.0}, TypeError, "chunk_size must be an integer"),
    ({"z_loss": -1.0}, ValueError, "z_loss must be a number >= 0.0"),
])
def test_argument_errors(over, error, match):
    with pytest.raises(error, match=match):
        _call(**over)


def test_unbatched_target_errors():
    x, W, b, t, w = make(n=1, h=4, c=5)
    with pytest.raises(ValueError, match=r"target has shape \(1,\), expected \(\)"):
        fastloss.linear_cross_entropy(x[0], W, t[:1] % 5)
    with pytest.raises(ValueError, match=r"target = 7 is out of range for 5 classes"):
        fastloss.linear_cross_entropy(x[0], W, np.int64(7))


def test_grad_output_errors():
    x, W, b, t, w = make(n=6, h=4, c=5)
    t = t % 5
    with pytest.raises(ValueError, match="grad_output must be a scalar for a reduced loss"):
        fastloss.LinearCrossEntropyLoss().backward(x, W, t, grad_output=np.ones(6))
    with pytest.raises(ValueError, match=r"grad_output has shape \(5,\), expected the "
                                         r"per-sample loss shape \(6,\)"):
        fastloss.LinearCrossEntropyLoss(reduction="none").backward(x, W, t,
                                                                   grad_output=np.ones(5))


def test_blas_sgemm_at_b_against_float64():
    """c = a.T @ b + beta c, on contiguous arrays and on row views whose row
    stride is longer than the row (a column slice), for beta 0 and 1."""
    if not _blas.available():
        pytest.skip("NumPy's bundled cblas_sgemm was not found")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((37, 301)).astype(np.float32)
    b_wide = rng.standard_normal((37, 64)).astype(np.float32)
    b = b_wide[:, 5:50]                     # row stride 64 floats, 45 columns
    for beta in (0.0, 1.0):
        c0 = rng.standard_normal((301, 45)).astype(np.float32)
        c = c0.copy()
        assert _blas.sgemm_at_b(a, b, c, beta) is True
        want = a.T.astype(np.float64) @ b.astype(np.float64) + beta * c0
        assert_allclose(c, want, rtol=0, atol=1e-4)


def test_blas_sgemm_at_b_declines_what_it_cannot_do():
    """False, and c untouched, for another dtype, a transposed (column-major)
    array, an empty one, or a read-only output; a ValueError for shapes that
    do not multiply."""
    a = np.ones((4, 3), np.float32)
    b = np.ones((4, 2), np.float32)
    c = np.zeros((3, 2), np.float32)
    assert not _blas.sgemm_at_b(a.astype(np.float64), b, c, 0.0)
    assert not _blas.sgemm_at_b(np.ones((3, 4), np.float32).T, b, c, 0.0)
    assert not _blas.sgemm_at_b(a[:0], b[:0], c, 0.0)
    ro = np.zeros((3, 2), np.float32)
    ro.flags.writeable = False
    assert not _blas.sgemm_at_b(a, b, ro, 0.0)
    assert not c.any()
    if _blas.available():
        with pytest.raises(ValueError, match=r"sgemm_at_b: shapes \(4, 3\)\.T @ \(4, 2\) into \(2, 3\)"):
            _blas.sgemm_at_b(a, b, np.zeros((2, 3), np.float32), 0.0)
    else:
        assert not _blas.sgemm_at_b(a, b, c, 0.0)


def test_blas_can_be_switched_off_by_environment():
    """FASTLOSS_NUMPY_BLAS=0 makes fastloss use matmul and add (a fresh
    interpreter: the library is looked up once, at import; run from a neutral
    folder, so that the installed fastloss is imported, not a source checkout
    in the working directory)."""
    code = "from fastloss import _blas; print(_blas.available())"
    env = dict(os.environ, FASTLOSS_NUMPY_BLAS="0")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
