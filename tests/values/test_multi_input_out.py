"""``out=`` of the loss classes of several differentiable arrays (margin
ranking, Gaussian NLL, cosine embedding, triplet margin): a tuple with one
float32 buffer per gradient, written by the kernel and returned; None in it
allocates; the same bits as without; in place where the kernel allows it;
every misuse refused with an error naming the buffer."""

import numpy as np
import pytest

import fastloss


def _f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _cases():
    rng = np.random.default_rng(0)
    x1, x2 = _f32(rng, (6, 5)), _f32(rng, (6, 5))
    sign = np.where(rng.random((6, 5)) < 0.5, -1.0, 1.0).astype(np.float32)
    rows = np.where(rng.random(6) < 0.5, -1.0, 1.0).astype(np.float32)
    var = rng.uniform(0.1, 2.0, (6, 5)).astype(np.float32)
    return {
        "margin_ranking": (fastloss.MarginRankingLoss(margin=0.2), (x1, x2, sign), (0, 1)),
        "gaussian_nll": (fastloss.GaussianNLLLoss(full=True), (x1, x2, var), (0, 2)),
        "cosine_embedding": (fastloss.CosineEmbeddingLoss(margin=0.1), (x1, x2, rows), (0, 1)),
        "triplet_margin": (fastloss.TripletMarginLoss(), (x1, x2, _f32(rng, (6, 5))),
                           (0, 1, 2)),
    }


CASES = _cases()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(CASES))
def test_out_is_written_and_returned(name, reduction):
    loss, arrays, diff = CASES[name]
    loss.reduction = reduction
    want_value, want = loss.loss_and_grad(*arrays)
    bufs = tuple(np.full(arrays[i].shape, np.nan, np.float32) for i in diff)
    value, got = loss.loss_and_grad(*arrays, out=bufs)
    assert all(g is b for g, b in zip(got, bufs, strict=True))
    np.testing.assert_array_equal(value, want_value)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    go = 0.5 if reduction != "none" else np.full(np.shape(want_value), 0.5, np.float32)
    back = loss.backward(*arrays, grad_output=go, out=bufs)
    assert all(g is b for g, b in zip(back, bufs, strict=True))
    for g, w in zip(back, loss.backward(*arrays, grad_output=go), strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("name", list(CASES))
def test_none_in_out_allocates(name):
    loss, arrays, diff = CASES[name]
    loss.reduction = "mean"
    bufs = [None] * len(diff)
    bufs[-1] = np.empty(arrays[diff[-1]].shape, np.float32)
    _, got = loss.loss_and_grad(*arrays, out=tuple(bufs))
    assert got[-1] is bufs[-1] and got[0] is not None and got[0] is not bufs[-1]
    np.testing.assert_array_equal(got[0], loss.loss_and_grad(*arrays)[1][0])


@pytest.mark.parametrize("name", ["margin_ranking", "gaussian_nll"])
def test_first_gradient_in_place(name):
    """The pairwise kernels read each element before writing it: the first
    gradient may overwrite the first input."""
    loss, arrays, _ = CASES[name]
    loss.reduction = "sum"
    want_value, want = loss.loss_and_grad(*arrays)
    x = arrays[0].copy()
    value, got = loss.loss_and_grad(x, *arrays[1:], out=(x, None))
    assert got[0] is x
    assert value == want_value
    np.testing.assert_array_equal(x, want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_broadcast_gradients_are_summed_into_out():
    rng = np.random.default_rng(1)
    x1, x2 = _f32(rng, (6, 1)), _f32(rng, (6, 4))
    y = np.ones((1, 4), np.float32)
    loss = fastloss.MarginRankingLoss(margin=0.5, reduction="sum")
    _, want = loss.loss_and_grad(x1, x2, y)
    bufs = (np.empty((6, 1), np.float32), np.empty((6, 4), np.float32))
    _, got = loss.loss_and_grad(x1, x2, y, out=bufs)
    assert got[0] is bufs[0] and got[1] is bufs[1]
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    var = rng.uniform(0.5, 1.0, (6, 1)).astype(np.float32)
    g = fastloss.GaussianNLLLoss(reduction="sum")
    _, want = g.loss_and_grad(x2, x2 + 1.0, var)
    gv = np.empty((6, 1), np.float32)
    _, got = g.loss_and_grad(x2, x2 + 1.0, var, out=(None, gv))
    assert got[1] is gv
    np.testing.assert_array_equal(gv, want[1])


def _bufs(arrays, diff):
    return [np.empty(arrays[i].shape, np.float32) for i in diff]


@pytest.mark.parametrize("name", list(CASES))
def test_out_errors(name):
    loss, arrays, diff = CASES[name]
    with pytest.raises(TypeError, match=r"out must be a tuple of \d arrays"):
        loss.loss_and_grad(*arrays, out=np.empty(arrays[0].shape, np.float32))
    with pytest.raises(ValueError, match=rf"out must hold {len(diff)} arrays"):
        loss.loss_and_grad(*arrays, out=tuple(_bufs(arrays, diff)) + (None,))
    bad = _bufs(arrays, diff)
    bad[1] = np.empty((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"out\[1\] has shape \(2, 2\), expected the"):
        loss.backward(*arrays, out=tuple(bad))
    bad = _bufs(arrays, diff)
    bad[0] = bad[0].astype(np.float64)
    with pytest.raises(TypeError, match=r"out\[0\] must have dtype float32"):
        loss.loss_and_grad(*arrays, out=tuple(bad))
    bad = _bufs(arrays, diff)
    bad[1].flags.writeable = False
    with pytest.raises(ValueError, match=r"out\[1\] is read-only"):
        loss.loss_and_grad(*arrays, out=tuple(bad))
    bad = _bufs(arrays, diff)
    bad[1] = bad[0]
    with pytest.raises(ValueError, match=r"out\[1\] must not overlap out\[0\]"):
        loss.loss_and_grad(*arrays, out=tuple(bad))
    bad = _bufs(arrays, diff)
    bad[1] = arrays[diff[1]]
    with pytest.raises(ValueError, match=r"out\[1\] must not overlap"):
        loss.loss_and_grad(*arrays, out=tuple(bad))


@pytest.mark.parametrize("name", ["cosine_embedding", "triplet_margin"])
def test_embedding_gradients_not_in_place(name):
    """A row's gradients are written from both inputs: no buffer may be an input."""
    loss, arrays, diff = CASES[name]
    bufs = _bufs(arrays, diff)
    bufs[0] = arrays[0]
    with pytest.raises(ValueError, match=r"out\[0\] must not overlap input1|out\[0\] must not "
                                         r"overlap anchor"):
        loss.loss_and_grad(*arrays, out=tuple(bufs))


def test_float_var_has_no_gradient_buffer():
    loss, (x, t, _), _ = CASES["gaussian_nll"]
    with pytest.raises(ValueError, match=r"out\[1\] must be None: var has no gradient"):
        loss.loss_and_grad(x, t, 0.5, out=(None, np.empty(x.shape, np.float32)))
    gx = np.empty(x.shape, np.float32)
    _, (got, gv) = loss.loss_and_grad(x, t, 0.5, out=(gx, None))
    assert got is gx and gv is None
