"""poisson_nll_loss's options, edge cases and PyTorch quirks (the
registry-driven tests cover the default options: values, reductions,
gradients, threads, ISA paths and errors).

The options select one of four modes (log_input x full); each is compared
here with the float64 reference and with PyTorch 2.13, forward and gradient,
with an upstream gradient other than 1.
"""

import numpy as np
import pytest
from _support.registry import (
    BY_NAME,
    assert_grad_close,
    assert_loss_close,
    torch_loss_and_grad,
)

import fastloss
from fastloss import reference

CASE = BY_NAME["poisson_nll"]
MODES = [pytest.param(li, full, id=f"log_input={li}-full={full}")
         for li in (True, False) for full in (False, True)]


def _data(log_input, shape=(37, 11), seed=5):
    x, y = CASE.make_data(shape, seed)
    if not log_input:   # rates, some at 0 (log(eps)) and near it
        x = np.exp(x).astype(np.float32)
        x.ravel()[::13] = 0.0
    return x, y


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("log_input,full", MODES)
def test_every_mode_matches_the_reference_and_torch(log_input, full, reduction):
    x, y = _data(log_input)
    opts = dict(log_input=log_input, full=full, eps=1e-3 if not log_input else 1e-8)
    g = CASE.random_grad_output(reduction, x.shape, 2)
    obj = fastloss.PoissonNLLLoss(reduction=reduction, **opts)
    loss, grad = obj.loss_and_grad(x, y)
    assert_loss_close(loss, reference.poisson_nll_loss(x, y, reduction=reduction, **opts))
    assert_grad_close(grad, reference.poisson_nll_loss_grad(x, y, reduction=reduction, **opts))
    back = obj.backward(x, y, grad_output=g)
    assert_grad_close(back, reference.poisson_nll_loss_grad(x, y, reduction=reduction,
                                                            grad_output=g, **opts))
    assert np.array_equal(fastloss.poisson_nll_loss(x, y, reduction=reduction, **opts),
                          obj(x, y))
    pytest.importorskip("torch")
    t_loss, t_grad = torch_loss_and_grad(CASE, x, y, reduction, g, dtype="float32", **opts)
    assert_loss_close(obj(x, y), t_loss, rtol=2e-5)
    assert_grad_close(back, t_grad, rtol=2e-5)


def test_stirling_term_only_above_one():
    y = np.float32([0.0, 0.5, 1.0, 1.5, 2.0, 10.0, np.nan])
    x = np.zeros_like(y)
    plain = fastloss.poisson_nll_loss(x, y, reduction="none")
    full = fastloss.poisson_nll_loss(x, y, full=True, reduction="none")
    assert np.array_equal(full[:3], plain[:3])                  # t <= 1: no term
    yy = y[3:6].astype(np.float64)
    term = yy * np.log(yy) - yy + 0.5 * np.log(2 * np.pi * yy)
    np.testing.assert_allclose(full[3:6] - plain[3:6], term, rtol=1e-5)
    assert np.isnan(full[6])
    # and no gradient from it
    g_plain = fastloss.PoissonNLLLoss(reduction="sum").backward(x, y)
    g_full = fastloss.PoissonNLLLoss(full=True, reduction="sum").backward(x, y)
    assert np.array_equal(g_plain, g_full, equal_nan=True)


def test_exp_is_finite_up_to_float32s_own_overflow():
    x = np.float32([88.0, 88.3, 88.5, 88.7, 88.72, 88.73, 100.0])
    loss, grad = fastloss.PoissonNLLLoss(reduction="none").loss_and_grad(x, np.zeros_like(x))
    expected = np.exp(x.astype(np.float64))
    finite = expected < np.finfo(np.float32).max
    assert finite[:5].all() and not finite[5:].any()
    np.testing.assert_allclose(loss[finite], expected[finite], rtol=1e-6)
    np.testing.assert_allclose(grad[finite], expected[finite], rtol=1e-6)
    assert np.isinf(loss[~finite]).all() and np.isinf(grad[~finite]).all()


def test_rates_at_and_below_minus_eps():
    # x + eps < 0: log is NaN, so is the loss; PyTorch's gradient 1 - t/(x+eps)
    # stays finite. eps = 0 and x = 0: log 0 = -inf, the loss +inf (t > 0)
    # or NaN (t = 0, 0 * inf).
    x = np.float32([-2.0, 0.0, 0.0, 1e-40])
    y = np.float32([1.0, 2.0, 0.0, 3.0])
    loss, grad = fastloss.PoissonNLLLoss(log_input=False, eps=0.0,
                                         reduction="none").loss_and_grad(x, y)
    assert np.isnan(loss[0]) and grad[0] == 1.5
    assert loss[1] == np.inf and np.isnan(loss[2])
    # log of a subnormal rate, exactly: 1e-40 - 3 log(1e-40)
    np.testing.assert_allclose(loss[3], -3 * np.log(np.float64(np.float32(1e-40))), rtol=1e-6)
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    t_loss = torch.nn.functional.poisson_nll_loss(xt, torch.tensor(y), log_input=False,
                                                  eps=0.0, reduction="none")
    t_loss.sum().backward()
    np.testing.assert_array_equal(np.isnan(loss), np.isnan(t_loss.detach().numpy()))
    np.testing.assert_allclose(loss[~np.isnan(loss)], t_loss.detach().numpy()[~np.isnan(loss)],
                               rtol=1e-6)
    np.testing.assert_allclose(grad[:2], xt.grad.numpy()[:2], rtol=1e-6)


def test_options_are_checked():
    x, y = CASE.make_data((4, 3), 1)
    with pytest.raises(ValueError, match="eps must be a number"):
        fastloss.poisson_nll_loss(x, y, eps=float("nan"))
    # flags take anything with a truth value, as PyTorch's do; not an array of several
    assert fastloss.poisson_nll_loss(np.exp(x), y, log_input=0) == \
        fastloss.poisson_nll_loss(np.exp(x), y, log_input=False)
    with pytest.raises(TypeError, match="log_input must be True or False"):
        fastloss.poisson_nll_loss(x, y, log_input=np.array([True, False]))
    with pytest.raises(TypeError, match="full must be True or False"):
        fastloss.PoissonNLLLoss(full=np.array([True, False]))
    with pytest.raises(ValueError, match="reduction"):
        fastloss.poisson_nll_loss(x, y, reduction="batchmean")


def test_legacy_arguments_in_torchs_positions():
    x, y = CASE.make_data((5, 4), 3)
    with pytest.warns(UserWarning, match="deprecated"):
        got = fastloss.poisson_nll_loss(x, y, True, False, False)   # size_average=False: sum
    assert got == fastloss.poisson_nll_loss(x, y, reduction="sum")


# ---------------------------------------------------------------------------
# fastloss.torch

@pytest.mark.parametrize("log_input,full", MODES)
def test_torch_forms_eager_compiled_and_module(log_input, full):
    torch = pytest.importorskip("torch")
    import fastloss.torch as ft
    import fastloss.torch.functional as FT

    x, y = _data(log_input, (8, 5), 6)
    opts = dict(log_input=log_input, full=full, eps=1e-3)

    def ours(a, b):
        return FT.poisson_nll_loss(a, b, reduction="sum", **opts)

    results = []
    for fn in (ours, torch.compile(ours, fullgraph=True, backend="aot_eager"),
               lambda a, b: torch.nn.functional.poisson_nll_loss(a, b, reduction="sum",
                                                                 **opts),
               ft.PoissonNLLLoss(reduction="sum", **opts)):
        xt = torch.tensor(x, requires_grad=True)
        loss = fn(xt, torch.tensor(y))
        (loss * 0.37).backward()
        results.append((loss.detach().numpy(), xt.grad.numpy()))
    (eager, eager_g), (compiled, compiled_g), (theirs, theirs_g), (module, module_g) = results
    assert np.array_equal(eager, compiled) and np.array_equal(eager_g, compiled_g)
    assert np.array_equal(eager, module) and np.array_equal(eager_g, module_g)
    assert_loss_close(eager, theirs, rtol=2e-5)
    assert_grad_close(eager_g, theirs_g, rtol=2e-5)
    mod = ft.PoissonNLLLoss(**opts)
    assert isinstance(mod, torch.nn.PoissonNLLLoss)
    assert (mod.log_input, mod.full, mod.eps) == (log_input, full, 1e-3)
    assert repr(mod) == repr(torch.nn.PoissonNLLLoss(**opts))
