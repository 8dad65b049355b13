"""kl_div's reductions ('batchmean'), log_target, zero targets and PyTorch
quirks (the registry-driven tests cover the default options with 'mean',
'sum' and 'none': values, gradients, threads, ISA paths and errors)."""

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

CASE = BY_NAME["kl_div"]
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")


def _data(shape, log_target, seed=3):
    x, y = CASE.make_data(shape, seed)
    if log_target:
        y = np.log(y).astype(np.float32)
    return x, y


@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 6), (1000, 3)], ids=str)
def test_every_reduction_and_log_target(shape, log_target, reduction):
    x, y = _data(shape, log_target)
    g = 0.37 if reduction != "none" else CASE.random_grad_output("none", shape, 3)
    obj = fastloss.KLDivLoss(reduction=reduction, log_target=log_target)
    loss, grad = obj.loss_and_grad(x, y)
    opts = dict(reduction=reduction, log_target=log_target)
    assert_loss_close(loss, reference.kl_div(x, y, **opts))
    assert_grad_close(grad, reference.kl_div_grad(x, y, **opts))
    back = obj.backward(x, y, grad_output=g)
    assert_grad_close(back, reference.kl_div_grad(x, y, grad_output=g, **opts))
    assert obj(x, y) == loss if reduction != "none" else np.array_equal(obj(x, y), loss)
    if reduction == "batchmean":
        assert_loss_close(loss, fastloss.kl_div(x, y, reduction="sum",
                                                log_target=log_target) / shape[0])
    pytest.importorskip("torch")
    t_loss, t_grad = torch_loss_and_grad(CASE, x, y, reduction, g, dtype="float32",
                                         log_target=log_target)
    assert_loss_close(obj(x, y), t_loss, rtol=2e-5)
    assert_grad_close(back, t_grad, rtol=2e-5)


def test_batchmean_of_a_scalar_and_of_an_empty_batch():
    # PyTorch divides by input.size(0) only for input.dim() != 0
    x, y = np.float32(-1.0), np.float32(0.5)
    assert fastloss.kl_div(x, y, reduction="batchmean") == fastloss.kl_div(x, y, reduction="sum")
    empty = np.zeros((0, 3), np.float32)
    assert np.isnan(fastloss.kl_div(empty, empty, reduction="batchmean"))
    loss, grad = fastloss.KLDivLoss(reduction="batchmean").loss_and_grad(empty, empty)
    assert np.isnan(loss) and grad.shape == (0, 3)


def test_zero_targets_contribute_zero_and_nan_propagates():
    x = np.float32([-1.0, -3.0, -np.inf, np.nan, -1.0, -1.0])
    y = np.float32([0.0, 0.0, 0.0, 0.5, -0.1, np.nan])
    loss, grad = fastloss.KLDivLoss(reduction="none").loss_and_grad(x, y)
    assert loss[0] == 0.0 and loss[1] == 0.0
    assert np.isnan(loss[2])            # 0 * -inf, as PyTorch
    assert np.isnan(loss[3:]).all()     # NaN input, negative target, NaN target
    assert np.array_equal(grad[:3], np.float32([-0.0, -0.0, -0.0]))
    assert np.isnan(grad[3]) and grad[4] == np.float32(0.1) and np.isnan(grad[5])
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.kl_div(xt, torch.tensor(y), reduction="none")
    theirs.sum().backward()
    np.testing.assert_array_equal(np.isnan(loss), np.isnan(theirs.detach().numpy()))
    # PyTorch's gradient -y ignores a NaN input; fastloss's is NaN there
    assert xt.grad[3] == -0.5


def test_subnormal_targets_and_big_log_targets():
    loss = fastloss.kl_div(np.float32([-1.0]), np.float32([1e-40]), reduction="none")
    y = np.float64(np.float32(1e-40))
    np.testing.assert_allclose(loss, y * (np.log(y) + 1.0), rtol=1e-5)
    x = np.float32([0.0, 0.0, 0.0])
    y = np.float32([88.5, 88.7, 89.0])    # exp(y) finite up to float32's own overflow
    loss, grad = fastloss.KLDivLoss(reduction="none", log_target=True).loss_and_grad(x, y)
    e = np.exp(y.astype(np.float64))
    np.testing.assert_allclose(grad[:2], -e[:2], rtol=1e-6)
    assert np.isinf(grad[2]) and np.isinf(loss[2])


def test_reduction_errors_and_legacy_arguments():
    x, y = CASE.make_data((4, 3), 1)
    with pytest.raises(ValueError, match="'none', 'mean', 'batchmean' or 'sum', got 'avg'"):
        fastloss.kl_div(x, y, reduction="avg")
    with pytest.raises(ValueError, match="'none', 'mean' or 'sum', got 'batchmean'"):
        fastloss.mse_loss(x, y, reduction="batchmean")        # only kl_div takes it
    obj = fastloss.KLDivLoss()
    obj.reduction = "batchmean"
    assert obj(x, y) == fastloss.kl_div(x, y, reduction="batchmean")
    with pytest.warns(UserWarning, match="deprecated"):
        got = fastloss.kl_div(x, y, False)                    # size_average=False: sum
    assert got == fastloss.kl_div(x, y, reduction="sum")


@pytest.mark.parametrize("log_target", [False, True])
def test_torch_forms_eager_compiled_and_module(log_target):
    torch = pytest.importorskip("torch")
    import fastloss.torch as ft
    import fastloss.torch.functional as FT

    x, y = _data((8, 5), log_target, 6)

    def ours(a, b):
        return FT.kl_div(a, b, reduction="batchmean", log_target=log_target)

    results = []
    for fn in (ours, torch.compile(ours, fullgraph=True, backend="aot_eager"),
               lambda a, b: torch.nn.functional.kl_div(a, b, reduction="batchmean",
                                                       log_target=log_target),
               ft.KLDivLoss(reduction="batchmean", log_target=log_target)):
        xt = torch.tensor(x, requires_grad=True)
        loss = fn(xt, torch.tensor(y))
        (loss * 0.37).backward()
        results.append((loss.detach().numpy(), xt.grad.numpy()))
    (eager, eager_g), (compiled, compiled_g), (theirs, theirs_g), (module, module_g) = results
    assert np.array_equal(eager, compiled) and np.array_equal(eager_g, compiled_g)
    assert np.array_equal(eager, module) and np.array_equal(eager_g, module_g)
    assert_loss_close(eager, theirs, rtol=2e-5)
    assert_grad_close(eager_g, theirs_g, rtol=2e-5)
    mod = ft.KLDivLoss(reduction="batchmean", log_target=log_target)
    assert isinstance(mod, torch.nn.KLDivLoss) and mod.log_target is log_target
    assert repr(mod) == repr(torch.nn.KLDivLoss(reduction="batchmean", log_target=log_target))
