"""soft_margin_loss's own edge cases and PyTorch quirks (the registry-driven
tests cover values, reductions, gradients, threads, ISA paths and errors).

PyTorch computes log(1 + exp(-y x)) as written: past -y x of about 88.7 the
float32 loss is +inf and its gradient NaN (inf / inf). fastloss's log-space
form is finite and exact there; it is compared with the float64 reference
everywhere and with PyTorch where PyTorch is finite.
"""

import numpy as np
import pytest
from _support.registry import BY_NAME, assert_grad_close, assert_loss_close

import fastloss
from fastloss import reference

CASE = BY_NAME["soft_margin"]
F32_MAX = float(np.finfo(np.float32).max)

# Margins across the float32 range, both signs, both labels and soft labels.
X = np.array([0.0, 1.0, -1.0, 20.0, -20.0, 88.0, -88.0, 89.0, -89.0, 100.0, -100.0,
              1e4, -1e4, 1e30, -1e30, 1e38, -1e38], np.float32)


def _grid():
    x = np.repeat(X, 4)
    y = np.tile(np.array([1.0, -1.0, 0.5, -0.25], np.float32), X.size)
    return x, y


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_finite_and_exact_where_exp_overflows(reduction):
    x, y = _grid()
    loss, grad = fastloss.SoftMarginLoss(reduction=reduction).loss_and_grad(x, y)
    ref = reference.soft_margin_loss(x.astype(np.float64), y.astype(np.float64), reduction)
    ref_grad = reference.soft_margin_loss_grad(x.astype(np.float64), y.astype(np.float64),
                                               reduction)
    assert_loss_close(loss, ref)
    assert_grad_close(grad, ref_grad)
    assert np.all(np.isfinite(grad))
    if reduction == "none":
        # finite everywhere, and -y x itself once exp(-|y x|) is below an ulp
        z = -(y.astype(np.float64) * x.astype(np.float64))
        assert np.all(np.isfinite(loss))
        big = z > 30
        assert np.array_equal(loss[big], z[big].astype(np.float32))


def test_beyond_float32():
    # -y x beyond FLT_MAX: the true loss is too, so +inf; the gradient stays -y.
    x = np.array([F32_MAX, -F32_MAX, F32_MAX], np.float32)
    y = np.array([-2.0, 2.0, 2.0], np.float32)
    loss, grad = fastloss.SoftMarginLoss(reduction="none").loss_and_grad(x, y)
    assert np.array_equal(loss, np.array([np.inf, np.inf, 0.0], np.float32))
    assert np.array_equal(grad, np.array([2.0, -2.0, 0.0], np.float32))


def test_nan_in_nan_out():
    x = np.array([np.nan, 1.0, np.nan, 2.0], np.float32)
    y = np.array([1.0, np.nan, np.nan, -1.0], np.float32)
    loss, grad = fastloss.SoftMarginLoss(reduction="none").loss_and_grad(x, y)
    assert np.isnan(loss[:3]).all() and np.isnan(grad[:3]).all()
    assert np.isfinite(loss[3]) and np.isfinite(grad[3])
    assert np.isnan(fastloss.soft_margin_loss(x, y))


def test_zero_label_gives_log2_and_a_positive_zero_gradient():
    # -0 and +0 labels give the same bits (the kernel's gradient zero is +0).
    x = np.array([-3.0, 0.0, 5.0, 1e30], np.float32)
    for zero in (0.0, -0.0):
        y = np.full(4, zero, np.float32)
        loss, grad = fastloss.SoftMarginLoss(reduction="none").loss_and_grad(x, y)
        assert np.array_equal(loss, np.full(4, np.log(2.0), np.float32))
        assert np.array_equal(grad, np.zeros(4, np.float32))
        assert not np.signbit(grad).any()


@pytest.mark.parametrize("size_average,reduce,reduction", [
    (True, None, "mean"), (False, None, "sum"), (None, False, "none"), (True, True, "mean"),
    (False, True, "sum"),
])
def test_legacy_arguments(size_average, reduce, reduction):
    # They override `reduction`, with PyTorch's deprecation warning.
    x, y = CASE.make_data((7, 3), 2)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        got = fastloss.soft_margin_loss(x, y, size_average=size_average, reduce=reduce,
                                        reduction="sum" if reduction == "mean" else "mean")
    expected = fastloss.soft_margin_loss(x, y, reduction=reduction)
    if reduction == "none":
        assert np.array_equal(got, expected)
    else:
        assert got == expected


def test_bad_arguments():
    x, y = CASE.make_data((4, 3), 1)
    with pytest.raises(ValueError, match="reduction"):
        fastloss.soft_margin_loss(x, y, reduction="batchmean")
    with pytest.raises(ValueError, match="shape"):
        fastloss.soft_margin_loss(x, y[:, :2])


# ---------------------------------------------------------------------------
# PyTorch

def test_torch_overflows_where_fastloss_is_exact():
    torch = pytest.importorskip("torch")
    x, y = _grid()
    xt = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.soft_margin_loss(xt, torch.tensor(y), reduction="none")
    theirs.sum().backward()
    ours, grad = fastloss.SoftMarginLoss(reduction="none").loss_and_grad(x, y)
    theirs = theirs.detach().numpy()
    over = -(y.astype(np.float64) * x) > 89.0
    assert over.any() and np.isinf(theirs[over]).all()    # PyTorch's overflow
    assert np.isnan(xt.grad.numpy()[over]).all()          # and its gradient, inf / inf
    assert np.isfinite(ours[over]).all()
    finite = np.isfinite(theirs)
    assert_loss_close(ours[finite], theirs[finite], rtol=2e-5)
    ok = np.isfinite(xt.grad.numpy())
    assert_grad_close(grad[ok], xt.grad.numpy()[ok], rtol=2e-5)


def test_torch_forms_finite_past_the_overflow_and_legacy_arguments():
    torch = pytest.importorskip("torch")
    import fastloss.torch as ft
    import fastloss.torch.functional as FT

    x = torch.tensor([100.0, -100.0, 3.0], requires_grad=True)
    y = torch.tensor([-1.0, 1.0, 1.0])
    loss = FT.soft_margin_loss(x, y, reduction="sum")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert_loss_close(loss.item(), reference.soft_margin_loss(x.detach().double().numpy(),
                                                              y.double().numpy(), "sum"))
    xs, ys = CASE.make_data((5, 4), 3)
    for kwargs in ({"size_average": False}, {"reduce": False}, {"size_average": True}):
        with pytest.warns(UserWarning, match="deprecated"):
            ours = FT.soft_margin_loss(torch.tensor(xs), torch.tensor(ys), **kwargs)
        with pytest.warns(UserWarning, match="deprecated"):
            theirs = torch.nn.functional.soft_margin_loss(torch.tensor(xs), torch.tensor(ys),
                                                          **kwargs)
        assert ours.shape == theirs.shape
        assert_loss_close(ours.numpy(), theirs.numpy(), rtol=2e-5)
    module = ft.SoftMarginLoss(reduction="none", overwrite_input=True)
    assert isinstance(module, torch.nn.SoftMarginLoss)
    assert repr(module) == "SoftMarginLoss(overwrite_input=True)"
    with pytest.warns(UserWarning, match="deprecated"):
        assert ft.SoftMarginLoss(size_average=False).reduction == "sum"
