"""K-dimensional cross-entropy, (N, C, d1, ..., dk) logits with (N, d1, ..., dk)
targets (PyTorch's segmentation layout), computed in place without
transposing: checked against the reference on the transposed 2-D problem
and against PyTorch, with every option."""

import numpy as np
import pytest
from _support.registry import (
    CROSS_ENTROPY,
    REDUCTIONS,
    assert_grad_close,
    assert_loss_close,
    assert_same,
    torch_loss_and_grad,
)

import fastloss
from fastloss import reference as ref

SHAPES = [(2, 5, 7), (3, 4, 8, 9), (1, 300, 70), (2, 1, 5), (4, 17, 129), (2, 3, 1)]
OPTIONS = {
    "plain": {},
    "weight": dict(weight=True),
    "smoothing": dict(label_smoothing=0.15),
    "all": dict(weight=True, label_smoothing=0.2, z_loss=1e-2),
}


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    tshape = (shape[0],) + shape[2:]
    t = rng.integers(0, shape[1], size=tshape)
    t[rng.random(tshape) < 0.15] = -100
    t.flat[0] = 0
    return x, t


def _options(name, c):
    opts = dict(OPTIONS[name])
    if opts.pop("weight", False):
        opts["weight"] = np.random.default_rng(3).uniform(0.2, 2.0, c).astype(np.float32)
    return opts


def _flat(x, t):
    """The same problem as 2-D: one row per (sample, position)."""
    c = x.shape[1]
    return np.moveaxis(x, 1, -1).reshape(-1, c).astype(np.float64), t.reshape(-1)


def _unflat_grad(g2, shape):
    c = shape[1]
    return np.moveaxis(g2.reshape((shape[0],) + shape[2:] + (c,)), -1, 1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_kdim_matches_reference(shape, name, reduction):
    x, t = _data(shape)
    opts = _options(name, shape[1])
    loss, grad = fastloss.CrossEntropyLoss(reduction=reduction, **opts).loss_and_grad(x, t)
    x2, t2 = _flat(x, t)
    expected = ref.cross_entropy(x2, t2, reduction=reduction, **opts)
    if reduction == "none":
        expected = expected.reshape(t.shape)
        assert loss.shape == t.shape
    assert_loss_close(loss, expected)
    g2 = ref.cross_entropy_grad(x2, t2, reduction=reduction, **opts)
    assert grad.shape == x.shape
    assert_grad_close(grad, _unflat_grad(g2, shape))
    assert_same(fastloss.cross_entropy(x, t, reduction=reduction, **opts), loss)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_kdim_matches_torch(shape, reduction):
    pytest.importorskip("torch")
    x, t = _data(shape)
    opts = {"weight": _options("weight", shape[1])["weight"], "label_smoothing": 0.1}
    loss, grad = fastloss.CrossEntropyLoss(reduction=reduction, **opts).loss_and_grad(x, t)
    t_loss, t_grad = torch_loss_and_grad(CROSS_ENTROPY, x, t, reduction, **opts)
    assert_loss_close(loss, t_loss)
    assert_grad_close(grad, t_grad)


def test_kdim_backward_grad_output_and_extras():
    shape = (3, 6, 5, 4)
    x, t = _data(shape)
    go = np.random.default_rng(1).standard_normal(t.shape).astype(np.float32)
    obj = fastloss.CrossEntropyLoss(reduction="none")
    grad = obj.backward(x, t, grad_output=go)
    x2, t2 = _flat(x, t)
    g2 = ref.cross_entropy_grad(x2, t2, reduction="none", grad_output=go.reshape(-1))
    assert_grad_close(grad, _unflat_grad(g2, shape))
    lse = np.empty(t.shape, np.float32)
    loss, n_correct = obj(x, t, lse_out=lse, return_correct=True)
    kept = t != -100
    m = x2.max(axis=1)
    expected = (m + np.log(np.exp(x2 - m[:, None]).sum(axis=1))).reshape(t.shape)
    assert np.all(np.abs(lse[kept] - expected[kept]) <= 1e-6 * np.maximum(1, np.abs(expected[kept])))
    assert np.isnan(lse[~kept]).all()
    assert n_correct == int(np.sum(kept & (np.argmax(x, axis=1) == t)))


def test_kdim_in_place_and_threads():
    shape = (4, 7, 100, 90)
    x, t = _data(shape)
    opts = _options("all", shape[1])
    obj = fastloss.CrossEntropyLoss(reduction="sum", **opts)
    with fastloss.threads(1):
        one = obj.loss_and_grad(x, t)
    with fastloss.threads(2):
        two = obj.loss_and_grad(x, t)
    assert_same(one[0], two[0])
    assert_same(one[1], two[1])
    buf = x.copy()
    loss, grad = obj.loss_and_grad(buf, t, out=buf)
    assert grad is buf
    assert_same(loss, one[0])
    assert_same(grad, one[1])


def test_kdim_target_errors_name_the_position():
    x, t = _data((2, 3, 4, 5))
    t[1, 2, 3] = 7
    with pytest.raises(ValueError, match=r"target\[1, 2, 3\] = 7 is out of range for 3 classes"):
        fastloss.cross_entropy(x, t)
    with pytest.raises(ValueError, match="target"):
        fastloss.cross_entropy(x, t[:, :, :4])
    with pytest.raises(ValueError, match="target"):
        fastloss.cross_entropy(x, t.reshape(2, 20))


def test_kdim_empty_and_all_ignored():
    x = np.zeros((0, 3, 4), np.float32)
    t = np.zeros((0, 4), np.int64)
    assert np.isnan(fastloss.cross_entropy(x, t))
    assert fastloss.cross_entropy(x, t, reduction="sum") == 0.0
    x, t = _data((2, 3, 4))
    t[:] = -100
    loss, grad = fastloss.CrossEntropyLoss().loss_and_grad(x, t)
    assert np.isnan(loss)
    assert not grad.any()
