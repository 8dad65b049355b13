"""hinge_embedding_loss's margin, ties, labels and PyTorch quirks (the
registry-driven tests cover the default margin: values, reductions,
gradients, threads, ISA paths and errors)."""

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

CASE = BY_NAME["hinge_embedding"]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("margin", [1.0, 0.0, 2.5, -0.5])
def test_margins_match_the_reference_and_torch(margin, reduction):
    x, y = CASE.make_data((29, 7), 4)
    x.reshape(-1)[::5] = margin       # exact ties: PyTorch passes the gradient (-1)
    g = CASE.random_grad_output(reduction, x.shape, 4)
    obj = fastloss.HingeEmbeddingLoss(margin=margin, reduction=reduction)
    loss, grad = obj.loss_and_grad(x, y)
    assert_loss_close(loss, reference.hinge_embedding_loss(x, y, margin, reduction=reduction))
    assert_grad_close(grad, reference.hinge_embedding_loss_grad(x, y, margin,
                                                                reduction=reduction))
    back = obj.backward(x, y, grad_output=g)
    pytest.importorskip("torch")
    t_loss, t_grad = torch_loss_and_grad(CASE, x, y, reduction, g, dtype="float32",
                                         margin=margin)
    assert_loss_close(obj(x, y), t_loss, rtol=2e-5)
    assert_grad_close(back, t_grad, rtol=2e-5)


def test_labels_and_the_tie():
    # y = 1: x; y = -1: max(margin - x, 0); any other label: both terms.
    x = np.float32([0.5, 0.5, 0.5, 1.0, 1.0, 3.0, -2.0])
    y = np.float32([1.0, -1.0, 0.0, -1.0, 2.0, -1.0, 1.0])
    loss, grad = fastloss.HingeEmbeddingLoss(reduction="none").loss_and_grad(x, y)
    assert np.array_equal(loss, np.float32([0.5, 0.5, 1.0, 0.0, 1.0, 0.0, -2.0]))
    assert np.array_equal(grad, np.float32([1.0, -1.0, 0.0, -1.0, 0.0, 0.0, 1.0]))


def test_nan_in_nan_out_where_torch_masks_it():
    x = np.float32([np.nan, np.nan, 0.3, 0.3])
    y = np.float32([1.0, -1.0, np.nan, 1.0])
    loss, grad = fastloss.HingeEmbeddingLoss(reduction="none").loss_and_grad(x, y)
    assert np.isnan(loss[:3]).all() and np.isnan(grad[:3]).all()
    assert loss[3] == np.float32(0.3) and grad[3] == 1.0
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.hinge_embedding_loss(xt, torch.tensor(y), reduction="none")
    theirs.sum().backward()
    # PyTorch: a NaN label takes both terms (finite), a NaN input has gradient 1 or 0
    assert np.isfinite(theirs.detach().numpy()[2])
    assert np.array_equal(xt.grad.numpy(), np.float32([1.0, 0.0, 0.0, 1.0]))


def test_margin_is_checked_and_legacy_arguments():
    x, y = CASE.make_data((4, 3), 1)
    with pytest.raises(ValueError, match="margin must be a number"):
        fastloss.hinge_embedding_loss(x, y, margin=float("inf"))
    with pytest.raises(TypeError, match="margin must be a real number"):
        fastloss.HingeEmbeddingLoss(margin="1")
    with pytest.warns(UserWarning, match="deprecated"):
        got = fastloss.hinge_embedding_loss(x, y, 2.0, False)      # size_average=False
    assert got == fastloss.hinge_embedding_loss(x, y, margin=2.0, reduction="sum")


def test_torch_forms_eager_compiled_and_module():
    torch = pytest.importorskip("torch")
    import fastloss.torch as ft
    import fastloss.torch.functional as FT

    x, y = CASE.make_data((8, 5), 6)

    def ours(a, b):
        return FT.hinge_embedding_loss(a, b, margin=0.7, reduction="none")

    results = []
    for fn in (ours, torch.compile(ours, fullgraph=True, backend="aot_eager"),
               lambda a, b: torch.nn.functional.hinge_embedding_loss(a, b, margin=0.7,
                                                                     reduction="none"),
               ft.HingeEmbeddingLoss(margin=0.7, reduction="none")):
        xt = torch.tensor(x, requires_grad=True)
        loss = fn(xt, torch.tensor(y))
        loss.backward(torch.linspace(-1.0, 2.0, loss.numel()).reshape(loss.shape))
        results.append((loss.detach().numpy(), xt.grad.numpy()))
    (eager, eager_g), (compiled, compiled_g), (theirs, theirs_g), (module, module_g) = results
    assert np.array_equal(eager, compiled) and np.array_equal(eager_g, compiled_g)
    assert np.array_equal(eager, module) and np.array_equal(eager_g, module_g)
    assert_loss_close(eager, theirs, rtol=2e-5)
    assert_grad_close(eager_g, theirs_g, rtol=2e-5)
    mod = ft.HingeEmbeddingLoss(margin=0.7)
    assert isinstance(mod, torch.nn.HingeEmbeddingLoss) and mod.margin == 0.7
    assert repr(mod) == repr(torch.nn.HingeEmbeddingLoss(margin=0.7))
