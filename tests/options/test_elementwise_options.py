"""Options of the elementwise losses, against the float64 reference and PyTorch.

* ``binary_cross_entropy_with_logits``: ``weight`` and ``pos_weight`` in every
  broadcast layout the kernels see -- read in place with a period (full shape,
  per class, scalar, trailing axes, a period > 256 that does not divide 256)
  or materialised by the Python layer ((N, 1), a middle or outer axis).
* ``mse_loss``, ``l1_loss``, ``huber_loss``: ``weight`` in the same layouts,
  and their different weighted means (sum(w) for MSE and L1, n for Huber).
* ``sigmoid_focal_loss``: ``alpha`` x ``gamma``; ``huber_loss``'s ``delta``;
  ``smooth_l1_loss``'s ``beta`` (0 is L1).

For each: the loss, the fused gradient and ``backward`` with a
``grad_output`` against the reference; PyTorch (float64, weights
materialised where torch requires the input's shape; torchvision's focal
formula in torch ops); fused == separate calls and ``out=input`` bitwise; one
thread == two threads bitwise on ~2^20 elements. (Invalid option values are
in tests/errors/test_option_errors.py.)
"""

import numpy as np
import pytest
from _support.registry import (
    BCE_WITH_LOGITS,
    HUBER,
    L1,
    MSE,
    REDUCTIONS,
    SIGMOID_FOCAL,
    SMOOTH_L1,
    assert_float32_array,
    assert_grad_close,
    assert_loss_close,
    assert_same,
    torch_loss_and_grad,
)

import fastloss

parametrize_reduction = pytest.mark.parametrize("reduction", REDUCTIONS)

# ---------------------------------------------------------------------------
# Weight layouts: (id, input shape, weight shape, pos_weight shape); None = no weight.
# ---------------------------------------------------------------------------

BCE_LAYOUTS = [
    ("full", (9, 7), (9, 7), None),
    ("class-pos", (9, 7), None, (7,)),
    ("class-both", (9, 7), (7,), (7,)),
    ("scalar-both", (9, 7), (), ()),
    ("1x1-both", (9, 7), (1, 1), (1, 7)),
    ("rows-class", (9, 7), (9, 1), (7,)),  # (N, 1) is materialised
    ("full-rows-pos", (9, 7), (9, 7), (9, 1)),
    ("3d-middle", (4, 5, 6), (5, 1), (6,)),  # a middle-axis weight, materialised
    ("3d-outer-trailing", (4, 5, 6), (4, 1, 1), (5, 6)),
    ("wrap-300", (5, 300), (300,), (300,)),  # period > 256, not a divisor of 256
    ("big-full", (1000003,), (1000003,), (1000003,)),
]
REGRESSION_LAYOUTS = [
    ("full", (9, 7), (9, 7)),
    ("class", (9, 7), (7,)),
    ("scalar", (9, 7), ()),
    ("1x7", (9, 7), (1, 7)),
    ("rows", (9, 7), (9, 1)),
    ("3d-middle", (4, 5, 6), (5, 1)),
    ("3d-outer", (4, 5, 6), (4, 1, 1)),
    ("3d-trailing", (4, 5, 6), (5, 6)),
    ("wrap-300", (5, 300), (300,)),
    ("big-full", (1000003,), (1000003,)),
]
WEIGHTED_REGRESSION = [MSE, L1, HUBER]


def _weight(shape, seed, low=0.0, high=2.0):
    if shape is None:
        return None
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=shape).astype(np.float32)


def _bce_options(layout):
    _, shape, w_shape, pw_shape = layout
    options = {}
    if w_shape is not None:
        options["weight"] = _weight(w_shape, sum(shape) + 1)
    if pw_shape is not None:
        options["pos_weight"] = _weight(pw_shape, sum(shape) + 2, 0.1, 4.0)
    return shape, options


def _regression_options(layout):
    _, shape, w_shape = layout
    return shape, {"weight": _weight(w_shape, sum(shape) + 3)}


def _torch_options(case, shape, options):
    """torch's mse/l1/huber want a weight of exactly the input's shape."""
    if case is BCE_WITH_LOGITS or "weight" not in options:
        return options
    return dict(options, weight=np.array(np.broadcast_to(options["weight"], shape)))


# ---------------------------------------------------------------------------
# The checks, shared by every option set
# ---------------------------------------------------------------------------


def _check_reference(case, x, t, reduction, options):
    """Loss, fused gradient and backward(grad_output) against the reference."""
    obj = case.cls(reduction=reduction, **options)
    loss, grad = obj.loss_and_grad(x, t)
    if reduction == "none":
        assert_float32_array(loss, x.shape)
    else:
        assert type(loss) is float
    assert_float32_array(grad, x.shape)
    assert_loss_close(loss, case.ref(x, t, reduction, **options))
    assert_grad_close(grad, case.ref_gradient(x, t, reduction, **options))
    g = case.random_grad_output(reduction, x.shape, 7)
    back = obj.backward(x, t, grad_output=g)
    assert_grad_close(back, case.ref_gradient(x, t, reduction, grad_output=g, **options))


def _check_torch(case, x, t, reduction, options):
    """fastloss (float32) against PyTorch autograd in float64 (skips the test
    without PyTorch)."""
    g = case.random_grad_output(reduction, x.shape, 8)
    torch_options = _torch_options(case, x.shape, options)
    expected_loss, expected_grad = torch_loss_and_grad(case, x, t, reduction, g, **torch_options)
    obj = case.cls(reduction=reduction, **options)
    loss = case.func(x, t, reduction=reduction, **options)
    assert np.shape(loss) == expected_loss.shape
    assert_loss_close(loss, expected_loss)
    assert_grad_close(obj.backward(x, t, grad_output=g), expected_grad)
    _, expected_fused = torch_loss_and_grad(case, x, t, reduction, 1.0, **torch_options)
    assert_grad_close(obj.loss_and_grad(x, t)[1], expected_fused)


def _check_fused_and_in_place(case, x, t, reduction, options):
    """Fused == separate calls == the function, and out=input, all bitwise."""
    obj = case.cls(reduction=reduction, **options)
    loss, grad = obj.loss_and_grad(x, t)
    assert_same(loss, obj(x, t))
    assert_same(loss, case.func(x, t, reduction=reduction, **options))
    assert_same(grad, obj.backward(x, t))
    g = case.random_grad_output(reduction, x.shape, 9)
    expected_back = obj.backward(x, t, grad_output=g)

    buf = x.copy()
    loss2, grad2 = obj.loss_and_grad(buf, t, out=buf)
    assert grad2 is buf
    assert_same(loss2, loss)
    assert_same(grad2, grad)
    buf = x.copy()
    back = obj.backward(buf, t, grad_output=g, out=buf)
    assert back is buf
    assert_same(back, expected_back)


CHECKS = {
    "reference": _check_reference,
    "torch": _check_torch,
    "fused-in-place": _check_fused_and_in_place,
}
parametrize_check = pytest.mark.parametrize("check", list(CHECKS))


# ---------------------------------------------------------------------------
# BCE weight and pos_weight
# ---------------------------------------------------------------------------


def _layout_checks(layouts):
    """(layout, check) pairs: every layout against every check, except the
    1000003-element one against torch (its layout, the full-shape weight, is
    covered at (9, 7); against the reference it runs at full size)."""
    return [
        pytest.param(layout, check, id=f"{layout[0]}-{check}")
        for layout in layouts
        for check in CHECKS
        if not (layout[0] == "big-full" and check == "torch")
    ]


@parametrize_reduction
@pytest.mark.parametrize("layout,check", _layout_checks(BCE_LAYOUTS))
def test_bce_weights(layout, reduction, check):
    shape, options = _bce_options(layout)
    x, y = BCE_WITH_LOGITS.make_data(shape, 31)
    CHECKS[check](BCE_WITH_LOGITS, x, y, reduction, options)


def test_bce_weighted_mean_divides_by_the_element_count():
    x, y = BCE_WITH_LOGITS.make_data((9, 7), 4)
    w = _weight((7,), 4)
    total = fastloss.binary_cross_entropy_with_logits(x, y, weight=w, reduction="sum")
    mean = fastloss.binary_cross_entropy_with_logits(x, y, weight=w)
    assert mean == pytest.approx(total / x.size, rel=1e-12)


# ---------------------------------------------------------------------------
# Regression weights
# ---------------------------------------------------------------------------


@parametrize_reduction
@pytest.mark.parametrize("layout,check", _layout_checks(REGRESSION_LAYOUTS))
@pytest.mark.parametrize("case", WEIGHTED_REGRESSION, ids=repr)
def test_regression_weights(case, layout, reduction, check):
    shape, options = _regression_options(layout)
    x, t = case.make_data(shape, 37)
    CHECKS[check](case, x, t, reduction, options)


@pytest.mark.parametrize("case", WEIGHTED_REGRESSION, ids=repr)
def test_weighted_mean_denominators(case):
    # PyTorch 2.13: sum(w * e) / sum(w) for mse and l1, sum(w * e) / n for
    # huber; a broadcast weight counts as its materialised copy.
    x, t = case.make_data((9, 7), 5)
    w = _weight((9, 1), 5, 0.5, 2.0)
    total = case.func(x, t, reduction="sum", weight=w)
    mean = case.func(x, t, reduction="mean", weight=w)
    weight_sum = float(np.sum(np.broadcast_to(w.astype(np.float64), x.shape)))
    denominator, other = (x.size, weight_sum) if case is HUBER else (weight_sum, x.size)
    assert mean == pytest.approx(total / denominator, rel=1e-12)
    assert mean != pytest.approx(total / other, rel=1e-3)


@pytest.mark.parametrize("case", WEIGHTED_REGRESSION, ids=repr)
def test_zero_weights(case):
    # All-zero weights: mse and l1 'mean' is 0/0 = NaN with a NaN gradient (as
    # PyTorch's autograd: 0 * (1/0)); huber's is 0 with a zero gradient.
    x, t = case.make_data((6, 5), 6)
    w = np.zeros(5, np.float32)
    for reduction in REDUCTIONS:
        _check_reference(case, x, t, reduction, {"weight": w})
    loss, grad = case.cls(weight=w).loss_and_grad(x, t)
    if case is HUBER:
        assert loss == 0.0 and np.all(grad == 0.0)
    else:
        assert np.isnan(loss) and np.isnan(grad).all()
    for reduction in REDUCTIONS:  # last: skipped without PyTorch
        _check_torch(case, x, t, reduction, {"weight": w})


@pytest.mark.parametrize("case", [BCE_WITH_LOGITS] + WEIGHTED_REGRESSION, ids=repr)
def test_weights_on_an_empty_input(case):
    x, t = case.make_data((0, 5), 0)
    w = np.ones(5, np.float32)
    for reduction in REDUCTIONS:
        _check_reference(case, x, t, reduction, {"weight": w})
    assert np.isnan(case.func(x, t, weight=w))
    assert case.func(x, t, reduction="sum", weight=w) == 0.0


# ---------------------------------------------------------------------------
# Focal loss: alpha x gamma
# ---------------------------------------------------------------------------

ALPHAS = [0.25, -1.0, 0.9]
GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.0]


@parametrize_check
@parametrize_reduction
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_focal_alpha_gamma(alpha, gamma, reduction, check):
    x, y = SIGMOID_FOCAL.make_data((37, 29), 41)
    CHECKS[check](SIGMOID_FOCAL, x, y, reduction, {"alpha": alpha, "gamma": gamma})


@pytest.mark.parametrize("gamma", GAMMAS)
def test_focal_confident_predictions(gamma):
    # |x| up to 30 with hard labels: 1 - p_t is sigmoid(-|x|), which the
    # kernel forms without cancellation (float32 torch would round it to 0).
    rng = np.random.default_rng(3)
    x = rng.uniform(-30.0, 30.0, size=(8, 125)).astype(np.float32)
    y = (rng.random((8, 125)) < 0.5).astype(np.float32)
    options = {"alpha": 0.25, "gamma": gamma}
    for reduction in REDUCTIONS:
        _check_reference(SIGMOID_FOCAL, x, y, reduction, options)
    for reduction in REDUCTIONS:  # last: skipped without PyTorch
        _check_torch(SIGMOID_FOCAL, x, y, reduction, options)


def test_focal_gamma_zero_without_alpha_is_bce():
    x, y = BCE_WITH_LOGITS.make_data((13, 11), 2)
    focal = fastloss.SigmoidFocalLoss(alpha=-1.0, gamma=0.0, reduction="sum").loss_and_grad(x, y)
    bce = fastloss.BCEWithLogitsLoss(reduction="sum").loss_and_grad(x, y)
    assert focal[0] == pytest.approx(bce[0], rel=1e-6)
    assert_grad_close(focal[1], bce[1])


# ---------------------------------------------------------------------------
# Huber delta and smooth L1 beta
# ---------------------------------------------------------------------------


def _spread_data(shape, seed, threshold):
    """|x - y| on both sides of the threshold, with exact ties (d = 0)."""
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    y = rng.standard_normal(shape).astype(np.float32)
    tie = rng.random(shape) < 0.1
    y[tie] = x[tie]
    d = np.abs(x.astype(np.float64) - y)
    if threshold > 0:
        assert np.count_nonzero(d < threshold) > 20 and np.count_nonzero(d > threshold) > 20
    return x, y


@parametrize_check
@parametrize_reduction
@pytest.mark.parametrize("delta", [0.3, 1.0, 5.0])
def test_huber_delta(delta, reduction, check):
    x, y = _spread_data((37, 29), 43, delta)
    CHECKS[check](HUBER, x, y, reduction, {"delta": delta})


@parametrize_check
@parametrize_reduction
@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0])
def test_smooth_l1_beta(beta, reduction, check):
    x, y = _spread_data((37, 29), 47, beta)
    CHECKS[check](SMOOTH_L1, x, y, reduction, {"beta": beta})


@parametrize_check
@parametrize_reduction
def test_huber_delta_with_weight(reduction, check):
    x, y = _spread_data((5, 300), 53, 2.5)
    CHECKS[check](HUBER, x, y, reduction, {"delta": 2.5, "weight": _weight((300,), 53)})


def test_smooth_l1_beta_zero_is_l1():
    x, y = _spread_data((37, 29), 59, 0.0)
    for reduction in REDUCTIONS:
        smooth = fastloss.SmoothL1Loss(beta=0.0, reduction=reduction).loss_and_grad(x, y)
        l1 = fastloss.L1Loss(reduction=reduction).loss_and_grad(x, y)
        assert_same(smooth[1], l1[1])  # sign(d), sign(0) = 0 at the ties
        assert_loss_close(smooth[0], l1[0], rtol=1e-6)
    grad = fastloss.SmoothL1Loss(beta=0.0, reduction="sum").backward(x, y)
    assert np.all(grad[x == y] == 0.0)


def test_huber_is_delta_times_smooth_l1():
    x, y = _spread_data((37, 29), 61, 0.5)
    huber = fastloss.HuberLoss(delta=0.5, reduction="none").loss_and_grad(x, y)
    smooth = fastloss.SmoothL1Loss(beta=0.5, reduction="none").loss_and_grad(x, y)
    assert_loss_close(huber[0], 0.5 * smooth[0].astype(np.float64), rtol=1e-6)
    assert_grad_close(huber[1], 0.5 * smooth[1].astype(np.float64), rtol=1e-6)


# ---------------------------------------------------------------------------
# One thread == two threads, bitwise, with options, on ~2^20 elements
# ---------------------------------------------------------------------------

BIG = (1025, 1023)  # 1,048,575 elements; a 1023 period wraps unevenly in 256-element chunks
THREAD_CONFIGS = [
    ("bce-class-wrap-full-pos", BCE_WITH_LOGITS,
     lambda: {"weight": _weight((1023,), 1), "pos_weight": _weight(BIG, 2, 0.1, 4.0)}),
    ("bce-rows-scalar-pos", BCE_WITH_LOGITS,
     lambda: {"weight": _weight((1025, 1), 3), "pos_weight": np.float32(2.5)}),
    ("mse-class", MSE, lambda: {"weight": _weight((1023,), 4)}),
    ("l1-full", L1, lambda: {"weight": _weight(BIG, 5)}),
    ("huber-class-delta", HUBER, lambda: {"weight": _weight((1023,), 6), "delta": 0.3}),
    ("smooth_l1-beta", SMOOTH_L1, lambda: {"beta": 0.5}),
    ("focal-alpha-gamma", SIGMOID_FOCAL, lambda: {"alpha": 0.9, "gamma": 0.5}),
]


@parametrize_reduction
@pytest.mark.parametrize(
    "case,make_options",
    [pytest.param(case, make, id=name) for name, case, make in THREAD_CONFIGS],
)
def test_thread_count_does_not_change_a_bit(case, make_options, reduction):
    options = make_options()
    x, t = case.make_data(BIG, 67)
    g = case.random_grad_output(reduction, BIG, 67)
    obj = case.cls(reduction=reduction, **options)

    def everything():
        loss, grad = obj.loss_and_grad(x, t)
        return [loss, grad, case.func(x, t, reduction=reduction, **options),
                obj.backward(x, t, grad_output=g)]

    with fastloss.threads(1):
        serial = everything()
    with fastloss.threads(2):
        parallel = everything()
    for a, b in zip(serial, parallel):
        assert_same(a, b)
