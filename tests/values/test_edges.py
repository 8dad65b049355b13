"""Numerical edge cases of the kernels, each with its expected result stated.

All-equal rows, rows with one finite logit and the rest -inf, +inf and -inf
logits, NaN on ignored rows, denormal inputs, the largest float32 values, and
BCE-family targets outside [0, 1] (PyTorch computes those from the formula,
and so does fastloss). Every row states what fastloss must return; when
PyTorch is installed the same row is also compared against PyTorch in
float32 (the precision a PyTorch user sees), except where a row says why
fastloss deliberately differs.

The grid tests are registry-driven: every elementwise loss is compared
against PyTorch on a grid of special values. Last, zero-size dimensions:
every entry point gives PyTorch's results (NaN mean, zero sum, empty
per-sample losses and gradients) with fastloss's types.
"""

import math

import numpy as np
import pytest
from _support import argspace
from _support.registry import REGISTRY

import fastloss

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - torch is a test extra
    torch = None

F32_MAX = float(np.finfo(np.float32).max)
DENORMAL = float(np.float32(1e-40))  # subnormal in float32 (min normal ~1.18e-38)
TINY = float(np.float32(1e-45))  # the smallest subnormal
INF, NAN = math.inf, math.nan

CLASS = [c for c in REGISTRY if argspace.target_kind(c) == "class"]
ELEMENTWISE = [c for c in REGISTRY if argspace.target_kind(c) == "elementwise"]


def assert_values(got, expected, rtol=1e-6, what=""):
    """Equal within rtol (relative to max(1e-30, |expected|)); NaN matches NaN,
    an infinity the same infinity."""
    got = np.asarray(got, np.float64)
    expected = np.asarray(expected, np.float64)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    with np.errstate(invalid="ignore"):
        ok = (got == expected) | (np.isnan(got) & np.isnan(expected))
        ok |= np.abs(got - expected) <= rtol * np.maximum(np.abs(expected), 1e-30)
    assert ok.all(), f"{what}: got {got[~ok]} expected {expected[~ok]} (at {np.argwhere(~ok)[:4].tolist()})"


# ---------------------------------------------------------------------------
# Cross-entropy rows
# ---------------------------------------------------------------------------

def _ce(x, t, **options):
    """Per-row losses ('none') and the gradient of their sum."""
    x = np.asarray(x, np.float32)
    t = np.asarray(t, np.int64)
    loss, grad = fastloss.CrossEntropyLoss(reduction="none", **options).loss_and_grad(x, t)
    return loss, grad


def _ce_torch(x, t, **options):
    xt = torch.tensor(np.asarray(x, np.float32), requires_grad=True)
    loss = F.cross_entropy(xt, torch.as_tensor(np.asarray(t, np.int64)), reduction="none",
                           **options)
    loss.sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


def _check_ce(x, t, loss, grad, torch_too=True, **options):
    got_loss, got_grad = _ce(x, t, **options)
    assert_values(got_loss, loss, what="loss")
    assert_values(got_grad, grad, rtol=1e-6, what="grad")
    if torch_too and torch is not None:
        # PyTorch's float32 kernels sum C terms in float: allow their worst
        # case, C ulps (fastloss itself is held to the stated values above).
        rtol = max(1e-5, np.shape(x)[-1] * float(np.finfo(np.float32).eps))
        t_loss, t_grad = _ce_torch(x, t, **options)
        assert_values(got_loss, t_loss, rtol=rtol, what="loss vs torch")
        assert_values(got_grad, t_grad, rtol=rtol, what="grad vs torch")


CE_WIDTHS = [1, 3, 16, 17, 1000, 40000]  # short rows, long rows, split rows (c >= 32768)

NONFINITE_WIDTHS = CE_WIDTHS[1:]


@pytest.mark.parametrize("value", [0.0, 5.0, -1e4, 1e4, F32_MAX, -F32_MAX, DENORMAL, -TINY],
                         ids=repr)
@pytest.mark.parametrize("c", CE_WIDTHS)
def test_ce_all_equal_rows(c, value):
    # Every class equally likely: loss log(C), gradient softmax - onehot = 1/C - [j == t].
    n = 3
    x = np.full((n, c), value, np.float32)
    t = np.array([0, c // 2, c - 1])
    grad = np.full((n, c), 1.0 / c)
    grad[np.arange(n), t] -= 1.0
    _check_ce(x, t, np.full(n, math.log(c)), grad)


@pytest.mark.parametrize("c", CE_WIDTHS[1:])
def test_ce_one_finite_logit_the_rest_minus_inf(c):
    # Row 0 targets the finite logit: probability 1, loss 0, gradient 0.
    # Row 1 targets a -inf logit: probability 0, loss +inf; the gradient is
    # softmax - onehot = +1 at the finite logit, -1 at the target (PyTorch agrees).
    x = np.full((2, c), -INF, np.float32)
    x[:, 1] = 2.5
    t = np.array([1, 0])
    grad = np.zeros((2, c))
    grad[1, 1], grad[1, 0] = 1.0, -1.0
    _check_ce(x, t, [0.0, INF], grad)


@pytest.mark.parametrize("c", CE_WIDTHS[1:])
def test_ce_one_finite_logit_with_label_smoothing(c):
    # With smoothing, the -inf classes carry target mass: the loss is +inf
    # either way; the gradient is p - q (q the smoothed target), as in PyTorch.
    x = np.full((2, c), -INF, np.float32)
    x[:, 1] = 2.5
    t = np.array([1, 0])
    eps = 0.1
    q = np.full((2, c), eps / c)
    q[np.arange(2), t] += 1.0 - eps
    p = np.zeros((2, c))
    p[:, 1] = 1.0
    _check_ce(x, t, [INF, INF], p - q, label_smoothing=eps)


@pytest.mark.parametrize("c", NONFINITE_WIDTHS)
def test_ce_plus_inf_logit(c):
    # +inf - max = inf - inf: NaN loss and a NaN gradient row (PyTorch agrees),
    # whether the +inf is the target or not; other rows are untouched.
    x = np.zeros((3, c), np.float32)
    x[0, 0] = INF
    x[1, 1] = INF
    t = np.array([0, 0, 0])
    grad = np.full((3, c), 1.0 / c)
    grad[:2] = NAN
    grad[2, 0] -= 1.0
    _check_ce(x, t, [NAN, NAN, math.log(c)], grad)


@pytest.mark.parametrize("c", NONFINITE_WIDTHS)
def test_ce_all_minus_inf_row(c):
    # No finite logit: -inf - (-inf) = NaN, as in PyTorch.
    x = np.full((1, c), -INF, np.float32)
    _check_ce(x, [0], [NAN], np.full((1, c), NAN))


@pytest.mark.parametrize("c", NONFINITE_WIDTHS)
def test_ce_nan_logit(c):
    # NaN anywhere in a row (first or last 16384-wide chunk on the split-row
    # path): NaN loss, log-sum-exp and gradient row; other rows untouched.
    x = np.zeros((3, c), np.float32)
    x[0, c - 1] = NAN
    x[1, 0] = NAN
    t = np.array([0, c - 1, 0])
    grad = np.full((3, c), 1.0 / c)
    grad[:2] = NAN
    grad[2, 0] -= 1.0
    _check_ce(x, t, [NAN, NAN, math.log(c)], grad)
    lse = np.zeros(3, np.float32)
    fastloss.cross_entropy(x, t, reduction="sum", lse_out=lse)
    assert_values(lse, [NAN, NAN, math.log(c)], what="lse")


@pytest.mark.parametrize("bad", [INF, -INF, NAN], ids=repr)
@pytest.mark.parametrize("c", CE_WIDTHS[1:])
def test_ce_non_finite_logits_on_an_ignored_row(c, bad):
    # An ignored row contributes an exact 0 loss and 0 gradient whatever it
    # holds. PyTorch gives 0 loss but a NaN gradient row (softmax backward of
    # a NaN row times a zero upstream gradient): fastloss deliberately keeps
    # 0, so this row is not compared with PyTorch's gradient.
    x = np.zeros((2, c), np.float32)
    x[0, :2] = bad
    t = np.array([-100, 1])
    grad = np.full((2, c), 1.0 / c)
    grad[0] = 0.0
    grad[1, 1] -= 1.0
    _check_ce(x, t, [0.0, math.log(c)], grad, torch_too=False)


def test_ce_denormal_differences():
    # Logits that differ by subnormals: softmax is uniform to float32 precision.
    x = np.array([[DENORMAL, 0.0, -DENORMAL], [TINY, -TINY, 0.0]], np.float32)
    t = np.array([0, 2])
    grad = np.full((2, 3), 1.0 / 3)
    grad[0, 0] -= 1.0
    grad[1, 2] -= 1.0
    _check_ce(x, t, [math.log(3)] * 2, grad)


def test_ce_largest_logits():
    # Row [FLT_MAX, 0, -FLT_MAX]: per-sample losses 0, FLT_MAX and 2 FLT_MAX,
    # which overflows to inf in the float32 'none' output (PyTorch: same).
    x = np.array([[F32_MAX, 0.0, -F32_MAX]] * 3, np.float32)
    t = np.array([0, 1, 2])
    grad = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0], [1.0, 0.0, -1.0]])
    _check_ce(x, t, [0.0, F32_MAX, INF], grad)
    # 'sum' and 'mean' accumulate in double (documented), so they keep the
    # finite 3 FLT_MAX where PyTorch's float32 sum gives inf.
    total = fastloss.cross_entropy(x, t, reduction="sum")
    assert_values(total, 3.0 * F32_MAX, rtol=1e-7, what="sum")
    assert_values(fastloss.cross_entropy(x, t), F32_MAX, rtol=1e-7, what="mean")


# ---------------------------------------------------------------------------
# BCE with logits rows
# ---------------------------------------------------------------------------

def _bce_formula(x, y):
    """max(x, 0) - x y + log(1 + exp(-|x|)) and sigmoid(x) - y, in float64."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    loss = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    return loss, 1.0 / (1.0 + np.exp(-x)) - y


def _check_elementwise(cls, x, y, loss, grad, torch_fn=None, rtol=1e-6):
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    got_loss, got_grad = cls(reduction="none").loss_and_grad(x, y)
    assert_values(got_loss, loss, rtol=rtol, what="loss")
    assert_values(got_grad, grad, rtol=rtol, what="grad")
    if torch_fn is not None and torch is not None:
        xt = torch.tensor(x, requires_grad=True)
        t_loss = torch_fn(xt, torch.tensor(y), reduction="none")
        t_loss.sum().backward()
        assert_values(got_loss, t_loss.detach().numpy(), rtol=1e-5, what="loss vs torch")
        assert_values(got_grad, xt.grad.numpy(), rtol=1e-5, what="grad vs torch")


BCE_OUTSIDE_X = [-30.0, -3.0, -0.5, 0.0, 0.5, 3.0, 30.0]
BCE_OUTSIDE_Y = [-1.0, -0.5, 1.5, 2.0, 10.0]


def test_bce_targets_outside_zero_one():
    # PyTorch applies the formula to any target; so does fastloss.
    x, y = np.meshgrid(BCE_OUTSIDE_X, BCE_OUTSIDE_Y)
    loss, grad = _bce_formula(np.float32(x), np.float32(y))
    _check_elementwise(fastloss.BCEWithLogitsLoss, x.ravel(), y.ravel(), loss.ravel(),
                       grad.ravel(), F.binary_cross_entropy_with_logits if torch else None,
                       rtol=2e-6)


def test_bce_plus_inf_logits():
    # x = +inf: loss x (1 - y) + 0, gradient 1 - y; at y = 1 that is inf * 0
    # = NaN (PyTorch: the same NaN).
    _check_elementwise(fastloss.BCEWithLogitsLoss, [INF, INF, INF], [0.0, 0.5, 1.0],
                       [INF, INF, NAN], [1.0, 0.5, 0.0],
                       F.binary_cross_entropy_with_logits if torch else None)


def test_bce_minus_inf_logits():
    # x = -inf: loss -x y = inf * y, gradient -y. At y = 0 that is inf * 0 =
    # NaN (PyTorch: NaN too). For y > 0 fastloss returns +inf, the limit of
    # the loss; PyTorch's float32 kernel returns NaN there (it forms
    # (1 - y) x + max(-x, 0) = -inf + inf): so no PyTorch comparison here.
    _check_elementwise(fastloss.BCEWithLogitsLoss, [-INF, -INF, -INF], [0.0, 0.5, 1.0],
                       [NAN, INF, INF], [0.0, -0.5, -1.0])


def test_bce_denormal_logits():
    x = np.array([DENORMAL, -DENORMAL, TINY, -TINY, 0.0], np.float32)
    y = np.array([0.0, 1.0, 0.5, 0.25, 0.0], np.float32)
    loss, grad = _bce_formula(x, y)
    _check_elementwise(fastloss.BCEWithLogitsLoss, x, y, loss, grad,
                       F.binary_cross_entropy_with_logits if torch else None)


def test_bce_largest_logits():
    x = [F32_MAX, -F32_MAX, F32_MAX, -F32_MAX, F32_MAX]
    y = [0.0, 1.0, 1.0, 0.0, 0.5]
    _check_elementwise(fastloss.BCEWithLogitsLoss, x, y,
                       [F32_MAX, F32_MAX, 0.0, 0.0, F32_MAX / 2], [1.0, -1.0, 0.0, 0.0, 0.5],
                       F.binary_cross_entropy_with_logits if torch else None)


def test_bce_largest_negative_logit_with_a_denormal_target():
    # -x y = FLT_MAX * 1e-40 = 0.034 exactly; PyTorch's float32 kernel gets 0
    # from (1 - y) x + max(-x, 0) = -FLT_MAX + FLT_MAX. fastloss keeps it.
    x, y = [-F32_MAX], [DENORMAL]
    _check_elementwise(fastloss.BCEWithLogitsLoss, x, y, [F32_MAX * DENORMAL], [-DENORMAL])


# ---------------------------------------------------------------------------
# MSE rows
# ---------------------------------------------------------------------------

def test_mse_denormals_are_not_flushed():
    # (1e-40)^2 underflows to 0 in float32 (PyTorch too), but the gradient
    # 2 (x - y) = 2e-40 is a subnormal that must survive: no flush-to-zero.
    x = np.array([DENORMAL, TINY, 0.0, -DENORMAL], np.float32)
    y = np.array([0.0, 0.0, DENORMAL, DENORMAL], np.float32)
    d = x.astype(np.float64) - y
    _check_elementwise(fastloss.MSELoss, x, y, np.zeros(4), 2 * d,
                       F.mse_loss if torch else None)
    assert np.all(fastloss.MSELoss(reduction="none").backward(x, y)[[0, 1, 3]] != 0.0)


def test_mse_largest_values():
    # (FLT_MAX - (-FLT_MAX))^2 and FLT_MAX^2 overflow to inf in float32, as in PyTorch.
    x = [F32_MAX, F32_MAX, -F32_MAX, F32_MAX]
    y = [-F32_MAX, 0.0, -F32_MAX, F32_MAX]
    _check_elementwise(fastloss.MSELoss, x, y, [INF, INF, 0.0, 0.0], [INF, INF, 0.0, 0.0],
                       F.mse_loss if torch else None)


def test_mse_mean_gradient_of_the_largest_difference():
    x = np.array([F32_MAX, 0.0, 0.0], np.float32)
    y = np.array([0.0, F32_MAX, 0.0], np.float32)
    grad = fastloss.MSELoss(reduction="mean").loss_and_grad(x, y)[1]
    assert_values(grad, [2 * F32_MAX / 3, -2 * F32_MAX / 3, 0.0], rtol=1e-6, what="grad")
    # The same with weights and an upstream gradient: 2 d w g / sum(w) stays finite.
    w = np.array([0.5, 0.25, 1.0], np.float32)
    grad = fastloss.MSELoss(reduction="mean", weight=w).backward(x, y, grad_output=0.5)
    assert_values(grad, [2 * F32_MAX * 0.5 * 0.5 / 1.75, -2 * F32_MAX * 0.25 * 0.5 / 1.75,
                         0.0], rtol=1e-6, what="weighted grad")
    # Per-sample upstream gradients ('none'): 2 d g.
    grad = fastloss.MSELoss(reduction="none").backward(x, y, grad_output=np.float32([0.25] * 3))
    assert_values(grad, [F32_MAX / 2, -F32_MAX / 2, 0.0], rtol=1e-6, what="'none' grad")


# ---------------------------------------------------------------------------
# Registry-driven grids against PyTorch
# ---------------------------------------------------------------------------

def _probability_targets(case):
    """True for the BCE family (the registry's targets lie in [0, 1])."""
    _, y = case.make_data((64,), 0)
    y = np.asarray(y)
    return bool(y.min() >= 0.0 and y.max() <= 1.0)


def _torch_fn(case):
    return case.torch_function()


GRIDS = {
    "moderate": [0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0, 30.0, -30.0],
    "denormal": [0.0, DENORMAL, -DENORMAL, TINY, -TINY, 1.0, -1.0],
    "largest": [0.0, 1.0, -1.0, F32_MAX, -F32_MAX, F32_MAX / 2, -F32_MAX / 2],
}



@pytest.mark.skipif(torch is None, reason="needs PyTorch")
@pytest.mark.parametrize(
    "case,grid",
    [pytest.param(c, g, id=f"{c.name}-{g}") for c in ELEMENTWISE for g in GRIDS],
)
def test_elementwise_grid_matches_torch(case, grid):
    # (an input with a range in the spec, BCE's probabilities: its values in
    # it; outside, both raise: test_probability_targets_outside_zero_one...)
    values = [v for v in GRIDS[grid]
              if all(lo <= v <= hi for name, lo, hi in case.spec.ranges
                     if name == case.spec.inputs[0])]
    targets = [0.0, 0.25, 0.5, 1.0] if _probability_targets(case) else values
    x, y = (a.ravel().astype(np.float32) for a in np.meshgrid(values, targets))
    got_loss, got_grad = case.cls(reduction="none").loss_and_grad(x, y)
    xt = torch.tensor(x, requires_grad=True)
    t_loss = _torch_fn(case)(xt, torch.tensor(y), reduction="none")
    t_loss.sum().backward()
    # Each value matches PyTorch's float32 result, or the float64 reference
    # rounded to float32 where PyTorch's float32 arithmetic cancels (BCE at
    # x = 30, y = 1: fastloss keeps log1p(e^-30) = 9.4e-14, PyTorch gets 0).
    with np.errstate(over="ignore", invalid="ignore"):
        ref_loss = np.float32(case.ref(x, y, "none"))
        ref_grad = np.float32(case.ref_gradient(x, y, "none"))
    _close_to_either(got_loss, t_loss.detach().numpy(), ref_loss, f"{case.name} loss")
    _close_to_either(got_grad, xt.grad.numpy(), ref_grad, f"{case.name} grad")


def _close_to_either(got, a, b, what, rtol=1e-5):
    got, a, b = (np.asarray(v, np.float64) for v in (got, a, b))
    with np.errstate(invalid="ignore", over="ignore"):
        def close(e):
            return (got == e) | (np.isnan(got) & np.isnan(e)) | (
                np.abs(got - e) <= rtol * np.maximum(np.abs(e), 1e-30))
        ok = close(a) | close(b)
    assert ok.all(), (f"{what}: got {got[~ok][:6]}, PyTorch {a[~ok][:6]}, reference "
                      f"{b[~ok][:6]} (at {np.flatnonzero(~ok)[:6].tolist()})")


@pytest.mark.skipif(torch is None, reason="needs PyTorch")
@pytest.mark.parametrize(
    "case", [c for c in ELEMENTWISE if _probability_targets(c)],
    ids=[c.name for c in ELEMENTWISE if _probability_targets(c)],
)
def test_probability_targets_outside_zero_one_match_torch(case):
    x, y = (a.ravel().astype(np.float32) for a in np.meshgrid(BCE_OUTSIDE_X, BCE_OUTSIDE_Y))
    if case.spec.ranges:   # BCE on probabilities: both refuse, as PyTorch requires
        x = np.full_like(x, 0.5)
        with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
            case.cls(reduction="none").loss_and_grad(x, y)
        with pytest.raises(RuntimeError, match="should be between 0 and 1"):
            _torch_fn(case)(torch.tensor(x), torch.tensor(y), reduction="none")
        return
    got_loss, got_grad = case.cls(reduction="none").loss_and_grad(x, y)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    t_loss = _torch_fn(case)(xt, torch.tensor(y.astype(np.float64)), reduction="none")
    t_loss.sum().backward()
    assert_values(got_loss, t_loss.detach().numpy(), rtol=2e-5, what=f"{case.name} loss")
    scale = float(np.abs(xt.grad.numpy()).max())
    np.testing.assert_allclose(got_grad, xt.grad.numpy(), rtol=0, atol=2e-5 * scale)


@pytest.mark.skipif(torch is None, reason="needs PyTorch")
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 3.0, 1.5])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
def test_focal_targets_outside_zero_one_any_gamma(gamma, alpha):
    # q = 1 - p_t < 0 for some of these targets: q ** gamma is torch.pow's,
    # real with the sign (-1) ** gamma for an integral gamma, NaN for 1.5.
    from _support.registry import torch_sigmoid_focal_loss

    x, y = (a.ravel().astype(np.float32) for a in np.meshgrid(BCE_OUTSIDE_X, BCE_OUTSIDE_Y))
    loss, grad = fastloss.SigmoidFocalLoss(alpha=alpha, gamma=gamma).loss_and_grad(x, y)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    t_loss = torch_sigmoid_focal_loss(xt, torch.tensor(y.astype(np.float64)), alpha=alpha,
                                      gamma=gamma)
    t_loss.sum().backward()
    if gamma == 1.5:
        assert np.isnan(t_loss.detach().numpy()).any()  # the case is exercised
    assert_values(loss, t_loss.detach().numpy(), rtol=2e-5, what="loss")
    t_grad = xt.grad.numpy()
    finite = np.isfinite(t_grad)
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(t_grad))
    scale = float(np.abs(t_grad[finite]).max())
    np.testing.assert_allclose(grad[finite], t_grad[finite], rtol=0, atol=2e-5 * scale)
    ref = fastloss.reference.sigmoid_focal_loss_grad(x, y, alpha=alpha, gamma=gamma)
    np.testing.assert_array_equal(np.isnan(ref), np.isnan(t_grad))
    np.testing.assert_allclose(ref[finite], t_grad[finite], rtol=1e-9, atol=1e-12 * scale)


# ---------------------------------------------------------------------------
# Zero-size dimensions
# ---------------------------------------------------------------------------

def _torch_reference(case, x, t, reduction):
    torch = pytest.importorskip("torch")
    fn = case.torch_function()
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tt = torch.as_tensor(np.asarray(t, np.int64)) if argspace.target_kind(case) == "class" \
        else torch.tensor(t, dtype=torch.float64)
    loss = fn(xt, tt, reduction=reduction)
    (grad,) = torch.autograd.grad(loss.sum(), xt, allow_unused=True)
    return loss.detach().numpy(), (np.zeros(x.shape) if grad is None else grad.numpy())


def _check_empty(case, x, t):
    """Every entry point on a zero-size problem: PyTorch's results (mean NaN,
    sum 0, empty per-sample losses and gradients), with fastloss's types."""
    for reduction in ("mean", "sum", "none"):
        obj = case.cls(reduction=reduction)
        loss, grad = obj.loss_and_grad(x, t)
        expected_loss, expected_grad = _torch_reference(case, x, t, reduction)
        if reduction == "none":
            assert isinstance(loss, np.ndarray) and loss.dtype == np.float32
            assert loss.shape == expected_loss.shape == argspace.per_sample_shape(case, x.shape)
        else:
            assert type(loss) is float
            assert (math.isnan(loss) and np.isnan(expected_loss)) or loss == expected_loss, (
                loss, expected_loss)
        assert grad.dtype == np.float32 and grad.shape == x.shape
        np.testing.assert_array_equal(grad, expected_grad)
        np.testing.assert_array_equal(obj.backward(x, t), grad)
        np.testing.assert_array_equal(case.func(x, t, reduction=reduction), loss)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (5, 0), (0, 0, 3), (2, 0, 3)], ids=str)
@pytest.mark.parametrize("case", ELEMENTWISE, ids=[c.name for c in ELEMENTWISE])
def test_elementwise_zero_size(case, shape):
    x = np.zeros(shape, np.float32)
    _check_empty(case, x, np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(0, 5), (0, 1), (0, 3, 4), (5, 0), (0, 0)], ids=str)
@pytest.mark.parametrize("case", CLASS, ids=[c.name for c in CLASS])
def test_class_zero_size(case, shape):
    # (5, 0): no classes, every row ignored -- PyTorch gives NaN / 0 / zeros(5).
    x = np.zeros(shape, np.float32)
    t_shape = shape[:1] + shape[2:]
    _check_empty(case, x, np.full(t_shape, -100, np.int64))


@pytest.mark.parametrize("shape", [(2, 3, 0), (2, 3, 4, 0)], ids=str)
@pytest.mark.parametrize("case", CLASS, ids=[c.name for c in CLASS])
def test_class_zero_size_spatial(case, shape):
    x = np.zeros(shape, np.float32)
    _check_empty(case, x, np.zeros(shape[:1] + shape[2:], np.int64))


@pytest.mark.parametrize("shape", [(2, 3, 0), (2, 3, 4, 0), (0, 3, 2)], ids=str)
def test_soft_targets_zero_size_spatial(shape):
    # Probability targets of the input's shape: PyTorch gives NaN (mean), 0
    # (sum) and an empty per-sample loss.
    torch = pytest.importorskip("torch")
    x = np.zeros(shape, np.float32)
    y = np.zeros(shape, np.float32)
    for reduction in ("mean", "sum", "none"):
        loss, grad = fastloss.CrossEntropyLoss(reduction=reduction).loss_and_grad(x, y)
        expected = torch.nn.functional.cross_entropy(
            torch.zeros(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64),
            reduction=reduction).numpy()
        if reduction == "none":
            assert loss.dtype == np.float32 and loss.shape == expected.shape
        else:
            assert type(loss) is float
            assert (math.isnan(loss) and np.isnan(expected)) or loss == expected
        assert grad.shape == shape and grad.dtype == np.float32
