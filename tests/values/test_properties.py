"""Property-based checks: random shapes and values (Hypothesis) against the
reference, and fused == separate calls.

The value ranges are those where float32 itself can meet the 1e-5 tolerance:
BCE's ``x - x*y`` cancels for |x| much above 50 with a soft y near 1, so
soft-target BCE stays within [-50, 50] (hard targets and +-1e4 logits are
covered in test_inputs.py).  Gradients get the float32 floor of
``assert_grad_close(scale=...)``: Hypothesis finds confident predictions whose
every gradient entry is ``1 - p`` with ``p`` within a few ulps of 1.
"""

import numpy as np
from _support.registry import (
    BCE_WITH_LOGITS,
    CROSS_ENTROPY,
    HUBER,
    L1,
    MSE,
    REDUCTIONS,
    SIGMOID_FOCAL,
    SMOOTH_L1,
    assert_grad_close,
    assert_loss_close,
    assert_same,
)
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def _floats(bound):
    return st.floats(-bound, bound, width=32, allow_nan=False, allow_infinity=False)


def _scale(case, x, t, reduction, g):
    """Largest factor multiplying a per-sample gradient (see assert_grad_close)."""
    g = np.abs(np.asarray(g, np.float64))
    if reduction == "none":
        return float(g.max()) if g.size else 0.0
    if reduction == "sum":
        return float(g)
    count = np.count_nonzero(t != -100) if not case.elementwise else x.size
    return float(g) / max(count, 1)


def _check(case, x, t, reduction, g, **options):
    obj = case.cls(reduction=reduction, **options)
    loss, grad = obj.loss_and_grad(x, t)
    assert_loss_close(loss, case.ref(x, t, reduction, **options))
    assert_grad_close(
        grad,
        case.ref_gradient(x, t, reduction, **options),
        scale=_scale(case, x, t, reduction, 1.0),
    )
    back = obj.backward(x, t, grad_output=g)
    assert_grad_close(
        back,
        case.ref_gradient(x, t, reduction, grad_output=g, **options),
        scale=_scale(case, x, t, reduction, g),
    )
    assert_same(obj(x, t), loss)


@st.composite
def _cross_entropy_data(draw):
    n = draw(st.integers(0, 12))
    c = draw(st.integers(1, 70))
    bound = draw(st.sampled_from([1.0, 30.0, 1e4]))
    x = draw(hnp.arrays(np.float32, (n, c), elements=_floats(bound)))
    t = draw(hnp.arrays(np.int64, (n,), elements=st.integers(-1, c - 1)))
    t[t == -1] = -100  # about one row in c+1 ignored
    return x, t


@given(data=_cross_entropy_data(), reduction=st.sampled_from(REDUCTIONS), seed=st.integers(0, 2**16))
def test_cross_entropy_property(data, reduction, seed):
    x, t = data
    _check(CROSS_ENTROPY, x, t, reduction, CROSS_ENTROPY.random_grad_output(reduction, x.shape, seed))


@st.composite
def _elementwise_data(draw, bound, target):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=40))
    x = draw(hnp.arrays(np.float32, shape, elements=_floats(bound)))
    y = draw(hnp.arrays(np.float32, shape, elements=target))
    return x, y


@given(
    data=_elementwise_data(50.0, st.floats(0.0, 1.0, width=32)),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_bce_with_logits_property(data, reduction, seed):
    x, y = data
    _check(BCE_WITH_LOGITS, x, y, reduction, BCE_WITH_LOGITS.random_grad_output(reduction, x.shape, seed))


@given(
    data=_elementwise_data(1e3, _floats(1e3)),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_mse_property(data, reduction, seed):
    x, y = data
    _check(MSE, x, y, reduction, MSE.random_grad_output(reduction, x.shape, seed))


@given(
    data=_elementwise_data(1e3, _floats(1e3)),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_l1_property(data, reduction, seed):
    x, y = data
    _check(L1, x, y, reduction, L1.random_grad_output(reduction, x.shape, seed))


# Thresholds are float32 values, so that the kernel and the reference agree on
# which side of delta (beta) an exactly representable |d| falls.
_THRESHOLDS = st.floats(2.0**-10, 1e3, width=32)


@given(
    data=_elementwise_data(1e3, _floats(1e3)),
    delta=_THRESHOLDS,
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_huber_property(data, delta, reduction, seed):
    x, y = data
    _check(HUBER, x, y, reduction, HUBER.random_grad_output(reduction, x.shape, seed), delta=delta)


@given(
    data=_elementwise_data(1e3, _floats(1e3)),
    beta=st.one_of(st.just(0.0), _THRESHOLDS),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_smooth_l1_property(data, beta, reduction, seed):
    x, y = data
    g = SMOOTH_L1.random_grad_output(reduction, x.shape, seed)
    _check(SMOOTH_L1, x, y, reduction, g, beta=beta)


@given(
    data=_elementwise_data(50.0, st.floats(0.0, 1.0, width=32)),
    alpha=st.one_of(st.just(-1.0), st.floats(0.0, 1.0, width=32)),
    gamma=st.one_of(st.sampled_from([0.0, 1.0, 2.0]), st.floats(0.0, 5.0, width=32)),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_sigmoid_focal_property(data, alpha, gamma, reduction, seed):
    x, y = data
    g = SIGMOID_FOCAL.random_grad_output(reduction, x.shape, seed)
    _check(SIGMOID_FOCAL, x, y, reduction, g, alpha=alpha, gamma=gamma)
