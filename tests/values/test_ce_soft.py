"""Cross-entropy with probability ("soft") targets of the input's shape:
weights, label smoothing, z-loss, K-dimensional input, against PyTorch and a
float64 formula, and the options PyTorch refuses with them."""

import numpy as np
import pytest
from _support.registry import REDUCTIONS, assert_grad_close, assert_loss_close, assert_same

import fastloss

SHAPES = [(6, 5), (5,), (4, 300), (3, 40000), (3, 4, 7), (2, 40, 9, 5), (70, 3)]
OPTIONS = {
    "plain": {},
    "weight": dict(weight=True),
    "smoothing": dict(label_smoothing=0.3),
    "all": dict(weight=True, label_smoothing=0.1, z_loss=1e-2),
}


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    y = rng.random(shape).astype(np.float32)
    axis = 1 if len(shape) > 1 else 0
    y /= y.sum(axis=axis, keepdims=True)
    return x, y


def _options(name, c):
    opts = dict(OPTIONS[name])
    if opts.pop("weight", False):
        opts["weight"] = np.random.default_rng(2).uniform(0.2, 2.0, c).astype(np.float32)
    return opts


def _reference(x, y, reduction, weight=None, label_smoothing=0.0, z_loss=0.0, grad_output=1.0):
    """float64 loss and gradient, written out from the definition."""
    axis = 1 if x.ndim > 1 else 0
    c = x.shape[axis]
    x = x.astype(np.float64)
    yy = (1.0 - label_smoothing) * y.astype(np.float64) + label_smoothing / c
    shape = [1] * x.ndim
    shape[axis] = c
    w = np.ones(shape) if weight is None else np.asarray(weight, np.float64).reshape(shape)
    m = x.max(axis=axis, keepdims=True)
    lse = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    p = np.exp(x - lse)
    per = (-(w * yy * (x - lse)).sum(axis=axis, keepdims=True) + z_loss * lse**2)
    wy = w * yy
    local = p * (wy.sum(axis=axis, keepdims=True) + 2 * z_loss * lse) - wy
    per = np.squeeze(per, axis)
    if reduction == "none":
        go = np.asarray(grad_output, np.float64)
        return per, local * (np.expand_dims(go, axis) if go.ndim else go)
    count = per.size
    scale = grad_output / count if reduction == "mean" else grad_output
    return (per.sum() / count if reduction == "mean" else per.sum()), local * scale


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_soft_targets_match_reference(shape, name, reduction):
    x, y = _data(shape)
    c = shape[1] if len(shape) > 1 else shape[0]
    opts = _options(name, c)
    obj = fastloss.CrossEntropyLoss(reduction=reduction, **opts)
    loss, grad = obj.loss_and_grad(x, y)
    ref_loss, ref_grad = _reference(x, y, reduction, **opts)
    assert_loss_close(loss, ref_loss)
    assert_grad_close(grad, ref_grad)
    assert_same(fastloss.cross_entropy(x, y, reduction=reduction, **opts), loss)
    assert_same(obj.backward(x, y), grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_soft_targets_match_torch(shape, reduction):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    x, y = _data(shape)
    c = shape[1] if len(shape) > 1 else shape[0]
    w = _options("weight", c)["weight"]
    loss, grad = fastloss.CrossEntropyLoss(reduction=reduction, weight=w,
                                           label_smoothing=0.2).loss_and_grad(x, y)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(y, dtype=torch.float64), reduction=reduction,
                         weight=torch.tensor(w, dtype=torch.float64), label_smoothing=0.2)
    lt.sum().backward()
    assert_loss_close(loss, lt.detach().numpy())
    assert_grad_close(grad, xt.grad.numpy())


def test_soft_targets_grad_output_threads_and_in_place():
    shape = (300, 1000)
    x, y = _data(shape)
    go = np.random.default_rng(4).standard_normal(shape[0]).astype(np.float32)
    obj = fastloss.CrossEntropyLoss(reduction="none", label_smoothing=0.05)
    grad = obj.backward(x, y, grad_output=go)
    assert_grad_close(grad, _reference(x, y, "none", label_smoothing=0.05, grad_output=go)[1])
    with fastloss.threads(1):
        one = obj.loss_and_grad(x, y)
    with fastloss.threads(2):
        two = obj.loss_and_grad(x, y)
    assert_same(one[0], two[0])
    assert_same(one[1], two[1])
    buf = x.copy()
    loss, g = obj.loss_and_grad(buf, y, out=buf)
    assert g is buf
    assert_same(loss, one[0])
    assert_same(g, one[1])
    lse = np.empty(shape[0], np.float32)
    obj(x, y, lse_out=lse)
    m = x.astype(np.float64).max(axis=1)
    expected = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
    assert np.all(np.abs(lse - expected) <= 1e-6 * np.maximum(1, np.abs(expected)))


def test_soft_target_refusals_match_torch():
    x, y = _data((4, 3))
    with pytest.raises(ValueError, match="ignore_index is not supported for floating point"):
        fastloss.cross_entropy(x, y, ignore_index=1)
    with pytest.raises(ValueError, match="return_correct"):
        fastloss.cross_entropy(x, y, return_correct=True)
    with pytest.raises(TypeError, match="target"):
        fastloss.cross_entropy(x, y[:, :2])  # float, not the input's shape
    with pytest.raises(ValueError, match="class"):
        fastloss.cross_entropy(np.zeros((3, 0), np.float32), np.zeros((3, 0), np.float32))
