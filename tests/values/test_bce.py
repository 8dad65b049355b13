"""binary_cross_entropy's own edge cases and PyTorch quirks (the registry-driven
tests cover values, reductions, gradients, threads, ISA paths and errors).

PyTorch 2.13 (aten/src/ATen/native/Loss.cpp) clamps each log at -100, takes
(x - y) / max(x (1 - x), 1e-12) as the gradient (not the derivative of the
clamped loss), divides 'mean' by the number of elements with or without a
weight, and raises for an input or target outside [0, 1], NaN included.
fastloss raises ValueError naming the argument and the element, and lets
NaN through (NaN in, NaN out).
"""

import re

import numpy as np
import pytest
from _support.registry import BY_NAME, assert_grad_close, assert_loss_close

import fastloss
from fastloss import reference

CASE = BY_NAME["bce"]
TINY = float(np.float32(1e-45))
DENORMAL = float(np.float32(1e-40))

# Probabilities at and next to the ends, where the clamps act.
X = np.array([0.0, -0.0, TINY, DENORMAL, 1e-30, 1e-7, 0.5, 1.0 - 2.0**-24, 1.0], np.float32)
Y = np.array([0.0, 0.3, 1.0], np.float32)


def _grid():
    x, y = np.meshgrid(X, Y)
    return x.ravel(), y.ravel()


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_clamps_at_the_ends_match_the_reference(reduction):
    x, y = _grid()
    loss, grad = fastloss.BCELoss(reduction=reduction).loss_and_grad(x, y)
    assert_loss_close(loss, reference.binary_cross_entropy(x, y, reduction=reduction))
    ref_grad = reference.binary_cross_entropy_grad(x, y, reduction=reduction)
    # every gradient to float32 rounding, the 1e12-sized ones included
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=0)
    if reduction == "none":
        assert np.all(np.isfinite(loss)) and loss.max() == np.float32(100.0)
        at_zero = (x == 0) & (y == 1)
        assert np.all(loss[at_zero] == 100.0) and np.all(grad[at_zero] == -1e12)


def test_log_of_a_subnormal_probability_is_not_clamped_early():
    # log(1e-40) = -92.1 > -100: the exact value, not the clamp
    loss = fastloss.binary_cross_entropy(np.float32([DENORMAL]), np.float32([1.0]),
                                         reduction="none")
    assert_loss_close(loss, [-np.log(np.float64(np.float32(DENORMAL)))])
    assert 92.0 < loss[0] < 92.2


def test_log1p_accuracy_for_small_probabilities():
    # log(1 - x) for x = 1e-6 is -1e-6 - 5e-13: 1 - x rounded would lose ~3%.
    x = np.float32([1e-6, 3e-5, 1e-3])
    loss = fastloss.binary_cross_entropy(x, np.zeros(3, np.float32), reduction="none")
    expected = -np.log1p(-x.astype(np.float64))
    np.testing.assert_allclose(loss, expected, rtol=2e-6)


@pytest.mark.parametrize("bad,name,where", [
    ("input", "input", "input[1, 2] = 1.5"),
    ("input-negative", "input", "input[1, 2] = -0.25"),
    ("target", "target", "target[1, 2] = 1.5"),
])
def test_out_of_range_raises_naming_the_element(bad, name, where):
    x, t = CASE.make_data((3, 4), 7)
    value = -0.25 if bad == "input-negative" else 1.5
    if name == "input":
        x[1, 2] = value
    else:
        t[1, 2] = value
    obj = fastloss.BCELoss(reduction="sum")
    match = re.escape(f"{name} must lie in [0, 1] (as PyTorch requires), got {where}")
    calls = [lambda: obj(x, t), lambda: obj.loss_and_grad(x, t),
             lambda: obj.backward(x, t, grad_output=2.0),
             lambda: fastloss.binary_cross_entropy(x, t, weight=np.ones(4, np.float32)),
             lambda: obj(np.asfortranarray(x), t),               # the general path
             lambda: fastloss.binary_cross_entropy(x.tolist(), t.tolist())]
    for call in calls:
        with pytest.raises(ValueError, match=match):
            call()


def test_nan_in_nan_out_and_negative_zero_is_in_range():
    x = np.float32([np.nan, 0.5, 0.5, -0.0])
    y = np.float32([0.5, np.nan, 0.5, 0.5])
    loss, grad = fastloss.BCELoss(reduction="none").loss_and_grad(x, y)
    assert np.isnan(loss[:2]).all() and np.isnan(grad[:2]).all()
    assert np.isfinite(loss[2:]).all()
    assert loss[3] == 50.0 and grad[3] == -0.5e12
    assert np.isnan(fastloss.binary_cross_entropy(x, y))


def test_weight_broadcasts_and_mean_divides_by_the_element_count():
    x, t = CASE.make_data((6, 5), 3)
    w = np.linspace(0.5, 2.0, 5).astype(np.float32)
    loss, grad = fastloss.BCELoss(weight=w).loss_and_grad(x, t)
    assert_loss_close(loss, reference.binary_cross_entropy(x, t, w))
    assert_loss_close(loss, float((w * reference.binary_cross_entropy(x, t, reduction="none"))
                                  .sum() / x.size))
    assert_grad_close(grad, reference.binary_cross_entropy_grad(x, t, w))
    with pytest.raises(ValueError, match="weight"):
        fastloss.binary_cross_entropy(x, t, weight=np.ones(4, np.float32))


# ---------------------------------------------------------------------------
# PyTorch

def test_matches_torch_at_the_ends_bitwise_close():
    torch = pytest.importorskip("torch")
    x, y = _grid()
    xt = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.binary_cross_entropy(xt, torch.tensor(y), reduction="none")
    theirs.sum().backward()
    loss, grad = fastloss.BCELoss(reduction="none").loss_and_grad(x, y)
    assert_loss_close(loss, theirs.detach().numpy(), rtol=2e-5)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=2e-5, atol=0)


def test_torch_refuses_what_fastloss_refuses():
    torch = pytest.importorskip("torch")
    import fastloss.torch.functional as FT

    for x, y, name in (([0.5, 1.5], [0.5, 0.5], "input"), ([0.5, 0.5], [0.5, -1.0], "target"),
                       ([np.nan, 0.5], [0.5, 0.5], "input")):
        error = f"all elements of {name} should be between 0 and 1"
        with pytest.raises(RuntimeError, match=error):
            torch.nn.functional.binary_cross_entropy(torch.tensor(x), torch.tensor(y))
        xt = torch.tensor(x, requires_grad=True)
        if np.isnan(x).any():
            # the one difference: NaN in, NaN out (PyTorch raises)
            assert torch.isnan(FT.binary_cross_entropy(xt, torch.tensor(y)))
            continue
        # fastloss.torch leaves the call to PyTorch, which raises its own error
        with pytest.raises(RuntimeError, match=error):
            FT.binary_cross_entropy(xt, torch.tensor(y))


def test_torch_forms_with_weight_eager_and_compiled():
    torch = pytest.importorskip("torch")
    import fastloss.torch as ft
    import fastloss.torch.functional as FT

    x, t = CASE.make_data((8, 5), 4)
    w = torch.linspace(0.5, 2.0, 5)
    results = []
    for fn in (lambda a, b: FT.binary_cross_entropy(a, b, weight=w, reduction="sum"),
               torch.compile(lambda a, b: FT.binary_cross_entropy(a, b, weight=w,
                                                                  reduction="sum"),
                             fullgraph=True, backend="aot_eager"),
               lambda a, b: torch.nn.functional.binary_cross_entropy(a, b, weight=w,
                                                                     reduction="sum")):
        xt = torch.tensor(x, requires_grad=True)
        loss = fn(xt, torch.tensor(t))
        (loss * 0.37).backward()
        results.append((loss.detach().numpy(), xt.grad.numpy()))
    (eager, eager_g), (compiled, compiled_g), (theirs, theirs_g) = results
    assert np.array_equal(eager, compiled) and np.array_equal(eager_g, compiled_g)
    assert_loss_close(eager, theirs, rtol=2e-5)
    assert_grad_close(eager_g, theirs_g, rtol=2e-5)
    module = ft.BCELoss(weight=w, reduction="none")
    assert isinstance(module, torch.nn.BCELoss)
    assert repr(module) == repr(torch.nn.BCELoss(weight=w, reduction="none"))
    assert torch.equal(module.state_dict()["weight"], w)
