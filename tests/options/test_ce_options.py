"""Cross-entropy options in the kernels: class weights, label smoothing,
ignore_index, z-loss, and the same-pass extras (log-sum-exp, correct count).

Every option runs on each of the kernel's three row strategies: short rows
(C <= 16, vectorised across rows), long rows, and split rows (few rows of
C >= 32768, cut into chunks merged in a fixed order).
"""

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

# short rows, long rows, split rows
SHAPES = [(37, 7), (29, 300), (3, 40000)]
OPTIONS = {
    "weight": dict(weight=True),
    "smoothing": dict(label_smoothing=0.2),
    "weight+smoothing": dict(weight=True, label_smoothing=0.35),
    "z_loss": dict(z_loss=1e-3),
    "all": dict(weight=True, label_smoothing=0.1, z_loss=2e-2),
    "smoothing=1": dict(label_smoothing=1.0),
}


def _data(shape, seed=0, ignore_index=-100):
    rng = np.random.default_rng(seed)
    x, t = CROSS_ENTROPY.make_data(shape, seed)
    t[rng.random(shape[0]) < 0.2] = ignore_index  # some ignored rows
    t[0] = 0  # at least one kept row
    return x, t


def _options(name, c, seed=1):
    opts = dict(OPTIONS[name])
    if opts.pop("weight", False):
        opts["weight"] = np.random.default_rng(seed).uniform(0.1, 2.0, c).astype(np.float32)
    return opts


def _torch_opts(opts):
    return {k: v for k, v in opts.items() if k != "z_loss"}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_options_match_reference(shape, name, reduction):
    x, t = _data(shape)
    opts = _options(name, shape[1])
    obj = fastloss.CrossEntropyLoss(reduction=reduction, **opts)
    loss, grad = obj.loss_and_grad(x, t)
    x64 = x.astype(np.float64)
    assert_loss_close(loss, ref.cross_entropy(x64, t, reduction=reduction, **opts))
    assert_grad_close(grad, ref.cross_entropy_grad(x64, t, reduction=reduction, **opts))
    # the functional form and the separate forward/backward give the same bits
    assert_same(fastloss.cross_entropy(x, t, reduction=reduction, **opts), loss)
    assert_same(obj.backward(x, t), grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", [k for k in OPTIONS if k != "z_loss"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_options_match_torch(shape, name, reduction):
    pytest.importorskip("torch")
    x, t = _data(shape)
    opts = _torch_opts(_options(name, shape[1]))
    loss, grad = fastloss.CrossEntropyLoss(reduction=reduction, **opts).loss_and_grad(x, t)
    t_loss, t_grad = torch_loss_and_grad(CROSS_ENTROPY, x, t, reduction, **opts)
    assert_loss_close(loss, t_loss)
    assert_grad_close(grad, t_grad)


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_backward_with_grad_output(shape, name):
    x, t = _data(shape)
    opts = _options(name, shape[1])
    go = np.random.default_rng(5).standard_normal(shape[0]).astype(np.float32)
    grad = fastloss.CrossEntropyLoss(reduction="none", **opts).backward(x, t, grad_output=go)
    expected = ref.cross_entropy_grad(x.astype(np.float64), t, reduction="none",
                                      grad_output=go.astype(np.float64), **opts)
    assert_grad_close(grad, expected)
    grad = fastloss.CrossEntropyLoss(**opts).backward(x, t, grad_output=0.37)
    expected = ref.cross_entropy_grad(x.astype(np.float64), t, grad_output=0.37, **opts)
    assert_grad_close(grad, expected)


@pytest.mark.parametrize("shape", [(2048, 9), (300, 1000), (5, 70000)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_options_bitwise_across_threads(shape):
    x, t = _data(shape)
    opts = _options("all", shape[1])
    obj = fastloss.CrossEntropyLoss(reduction="sum", **opts)
    lse1, lse2 = np.empty(shape[0], np.float32), np.empty(shape[0], np.float32)
    with fastloss.threads(1):
        one = obj.loss_and_grad(x, t, lse_out=lse1, return_correct=True)
    with fastloss.threads(2):
        two = obj.loss_and_grad(x, t, lse_out=lse2, return_correct=True)
    assert_same(one[0], two[0])
    assert_same(one[1], two[1])
    assert one[2] == two[2]
    assert_same(lse1, lse2)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_in_place_gradient_with_options(shape):
    x, t = _data(shape)
    opts = _options("all", shape[1])
    obj = fastloss.CrossEntropyLoss(**opts)
    loss, grad = obj.loss_and_grad(x, t)
    buf = x.copy()
    loss2, grad2 = obj.loss_and_grad(buf, t, out=buf)
    assert grad2 is buf
    assert_same(loss, loss2)
    assert_same(grad, grad2)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_lse_out_and_correct_count(shape):
    x, t = _data(shape)
    n = shape[0]
    # ties: in a few rows the target's logit equals an earlier maximum, so
    # argmax (the first maximum) is not the target even though x_t == max
    x[1, :] = 0.0
    x[1, 0] = x[1, 2] = 5.0
    t[1] = 2
    x[2, 3] = x[2].max() + 1.0
    t[2] = 3
    lse = np.full(n, -1.0, np.float32)
    loss, n_correct = fastloss.cross_entropy(x, t, lse_out=lse, return_correct=True)
    kept = t != -100
    x64 = x.astype(np.float64)
    m = x64.max(axis=1)
    expected_lse = m + np.log(np.exp(x64 - m[:, None]).sum(axis=1))
    assert_allclose_rows = np.abs(lse[kept] - expected_lse[kept]) <= 1e-6 * np.maximum(
        1.0, np.abs(expected_lse[kept]))
    assert assert_allclose_rows.all()
    assert np.isnan(lse[~kept]).all()
    assert n_correct == int(np.sum(kept & (np.argmax(x, axis=1) == t)))
    assert_same(loss, fastloss.cross_entropy(x, t))
    # the classes return the count after the loss (and the gradient)
    obj = fastloss.CrossEntropyLoss(reduction="sum")
    loss2, count2 = obj(x, t, return_correct=True)
    loss3, grad3, count3 = obj.loss_and_grad(x, t, return_correct=True)
    assert count2 == count3 == n_correct
    assert_same(loss2, loss3)
    assert_same(grad3, obj.backward(x, t))


def test_nan_row_is_not_correct():
    x = np.zeros((3, 5), np.float32)
    x[:, 1] = 1.0
    x[0, 3] = np.nan
    t = np.array([1, 1, 1])
    loss, n_correct = fastloss.cross_entropy(x, t, reduction="none", return_correct=True)
    assert np.isnan(loss[0]) and np.isfinite(loss[1:]).all()
    assert n_correct == 2


def test_zero_weight_of_every_kept_target_gives_nan_mean_like_torch():
    x, t = CROSS_ENTROPY.make_data((6, 4), 0)
    t[:] = 2
    w = np.ones(4, np.float32)
    w[2] = 0.0
    loss, grad = fastloss.CrossEntropyLoss(weight=w).loss_and_grad(x, t)
    assert np.isnan(loss)
    assert np.isnan(grad).all()
    pytest.importorskip("torch")
    t_loss, t_grad = torch_loss_and_grad(CROSS_ENTROPY, x, t, "mean", weight=w)
    assert np.isnan(t_loss) and np.isnan(t_grad).all()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_minus_inf_logit_with_smoothing_gives_inf_loss_and_finite_grad(shape):
    x, t = _data(shape)
    t[:] = 0
    x[:, -1] = -np.inf
    loss, grad = fastloss.CrossEntropyLoss(label_smoothing=0.1, reduction="none").loss_and_grad(x, t)
    assert np.isposinf(loss).all()
    assert np.isfinite(grad).all()
    loss0 = fastloss.cross_entropy(x, t, reduction="none")
    assert np.isfinite(loss0).all()
