"""nll_loss / NLLLoss: its options against PyTorch and the float64 reference.

The registry-driven tests cover it as every loss (values, reductions, fused ==
separate, threads, ISA paths, errors); here: class weights, ignore_index,
K-dimensional and unbatched input, the legacy size_average/reduce, targets
out of range, every target ignored (and every kept weight 0), the streamed
long-row gradient path (gradients of 32 MiB and more), in-place gradients,
and PyTorch's quirks.
"""

import numpy as np
import pytest
from _support.registry import (
    BY_NAME,
    REDUCTIONS,
    assert_grad_close,
    assert_loss_close,
    assert_same,
    torch_loss_and_grad,
)

import fastloss
from fastloss import reference as ref

NLL = BY_NAME["nll_loss"]

SHAPES = [(7,), (1, 1), (9, 5), (64, 10), (3, 1000), (2, 5, 7), (3, 4, 8, 9), (2, 3, 1),
          (2, 17, 1100), (1, 2, 9000)]


def _data(shape, seed=0, ignored=0.15, ignore_index=-100):
    """Log-probabilities along axis 1 (axis 0 unbatched) and class targets, a
    share of them ignore_index."""
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.standard_normal(shape)
    axis = 0 if len(shape) == 1 else 1
    logp = z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
    c = shape[axis]
    tshape = () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])
    t = np.asarray(rng.integers(0, c, size=tshape), np.int64)
    if t.ndim:
        t[rng.random(tshape) < ignored] = ignore_index
        t.flat[0] = c - 1
    return logp.astype(np.float32), t


def _weight(c, seed=3):
    return np.random.default_rng(seed).uniform(0.2, 2.0, c).astype(np.float32)


def _check(x, t, reduction, grad_output=1.0, **opts):
    """fastloss (function, class forward, loss_and_grad, backward) against
    the reference and PyTorch."""
    loss = fastloss.nll_loss(x, t, reduction=reduction, **opts)
    crit = fastloss.NLLLoss(reduction=reduction, **opts)
    fused_loss, fused_grad = crit.loss_and_grad(x, t)
    grad = crit.backward(x, t, grad_output=grad_output)
    assert_same(crit(x, t), loss)
    assert_same(fused_loss, loss)
    r_loss = ref.nll_loss(x.astype(np.float64), t, reduction=reduction, **opts)
    r_grad1 = ref.nll_loss_grad(x.astype(np.float64), t, reduction=reduction, **opts)
    r_grad = ref.nll_loss_grad(x.astype(np.float64), t, reduction=reduction,
                               grad_output=np.asarray(grad_output, np.float64), **opts)
    assert_loss_close(loss, r_loss)
    assert_grad_close(fused_grad, r_grad1)
    assert_grad_close(grad, r_grad)
    t_loss, t_grad = torch_loss_and_grad(NLL, x, t, reduction, grad_output, **opts)
    assert_loss_close(loss, t_loss)
    assert_grad_close(grad, t_grad)
    return loss, grad


def _grad_output(reduction, shape, seed=5):
    if reduction != "none":
        return 0.37
    tshape = () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])
    return np.random.default_rng(seed).uniform(-2, 2, tshape).astype(np.float32)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weight"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_options_match_torch_and_reference(shape, ignore_index, weighted, reduction):
    x, t = _data(shape, ignore_index=ignore_index)
    c = shape[0] if len(shape) == 1 else shape[1]
    opts = {"ignore_index": ignore_index}
    if weighted:
        opts["weight"] = _weight(c)
    _check(x, t, reduction, _grad_output(reduction, shape), **opts)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_unbatched_shapes(reduction):
    x, t = _data((6,))
    loss = fastloss.nll_loss(x, t, reduction=reduction)
    _, grad = fastloss.NLLLoss(reduction=reduction).loss_and_grad(x, t)
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.shape == ()
    else:
        assert isinstance(loss, float)
    assert grad.shape == (6,) and grad.dtype == np.float32
    assert np.count_nonzero(grad) == 1
    assert grad[int(t)] != 0.0


def test_kdim_none_shape_and_single_nonzero_per_sample():
    x, t = _data((3, 4, 8, 9), ignored=0.0)
    loss = fastloss.nll_loss(x, t, reduction="none")
    assert loss.shape == (3, 8, 9) and loss.dtype == np.float32
    _, grad = fastloss.NLLLoss(reduction="sum").loss_and_grad(x, t)
    # one -1 per (sample, position), at its target class, zeros elsewhere
    assert np.count_nonzero(grad) == t.size
    picked = np.take_along_axis(grad, t[:, np.newaxis], axis=1)
    assert np.all(picked == -1.0)


@pytest.mark.parametrize(("size_average", "reduce", "reduction"), [
    (None, False, "none"), (True, None, "mean"), (False, None, "sum"), (False, True, "sum"),
    (True, False, "none"), (None, True, "mean"),
])
@pytest.mark.filterwarnings("ignore:size_average and reduce args:UserWarning")
def test_legacy_size_average_reduce(size_average, reduce, reduction):
    torch = pytest.importorskip("torch")
    x, t = _data((9, 5))
    w = _weight(5)
    got = fastloss.nll_loss(x, t, w, size_average, -100, reduce)
    want = fastloss.nll_loss(x, t, w, reduction=reduction)
    assert_same(got, want)
    crit = fastloss.NLLLoss(w, size_average, -100, reduce)
    assert_same(crit(x, t), want)
    expected = torch.nn.functional.nll_loss(torch.from_numpy(x), torch.from_numpy(t),
                                            torch.from_numpy(w), size_average, -100, reduce)
    assert_loss_close(got, expected.numpy())


@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)])
def test_out_of_range_target_names_index_and_value(shape):
    x, t = _data(shape, ignored=0.0)
    bad = t.copy()
    if bad.ndim == 0:
        bad = np.int64(4)
        match = r"target\[\] = 4 is out of range for 4 classes"
    elif bad.ndim == 1:
        bad[3] = 7
        bad[4] = -1
        match = r"target\[3\] = 7 is out of range for 4 classes"
    else:
        bad[1, 2] = -5
        match = r"target\[1, 2\] = -5 is out of range for 4 classes"
    with pytest.raises(ValueError, match=match):
        fastloss.nll_loss(x, bad)
    with pytest.raises(ValueError, match=match):
        fastloss.NLLLoss(reduction="none").loss_and_grad(x, bad)
    with pytest.raises(ValueError, match=match):
        fastloss.NLLLoss(reduction="sum").backward(x, bad)
    with pytest.raises(ValueError, match=r"out of range for 4 classes"):
        ref.nll_loss(x, bad)


def test_ignore_index_may_lie_outside_the_classes():
    x, t = _data((6, 3), ignored=0.0)
    t[[1, 4]] = 3   # == C: out of range unless ignored
    with pytest.raises(ValueError, match=r"target\[1\] = 3 is out of range"):
        fastloss.nll_loss(x, t)
    _check(x, t, "mean", ignore_index=3)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_targets_ignored(reduction):
    x, t = _data((4, 5), ignored=1.0)
    t[:] = -100
    loss, grad = _check(x, t, reduction, _grad_output(reduction, (4, 5)))
    if reduction == "mean":
        assert np.isnan(loss)   # 0 / 0, as PyTorch
    elif reduction == "sum":
        assert loss == 0.0
    else:
        assert np.all(loss == 0.0)
    assert np.all(grad == 0.0)


def test_kept_weights_summing_to_zero():
    """Mean over a weight sum of 0 is NaN, as PyTorch; so is the gradient of
    the kept samples (-0 * (1/0)), as PyTorch's autograd gives."""
    x, t = _data((4, 3), ignored=0.0)
    t[:] = [0, 0, 1, 1]
    w = np.array([0.0, 0.0, 1.0], np.float32)
    _check(x, t, "mean", weight=w)
    assert np.isnan(fastloss.nll_loss(x, t, weight=w))


def test_empty_batch():
    x = np.zeros((0, 4), np.float32)
    t = np.zeros(0, np.int64)
    assert np.isnan(fastloss.nll_loss(x, t))
    assert fastloss.nll_loss(x, t, reduction="sum") == 0.0
    loss, grad = fastloss.NLLLoss(reduction="none").loss_and_grad(x, t)
    assert loss.shape == (0,) and grad.shape == (0, 4)


def test_nan_and_inf_log_probabilities():
    """-w x propagates NaN and -inf (log 0) as PyTorch; the gradient does not
    depend on x."""
    x, t = _data((4, 3), ignored=0.0)
    t[:] = [0, 1, 2, 0]
    x[0, 0] = np.nan
    x[1, 1] = -np.inf
    _check(x, t, "none")
    loss = fastloss.nll_loss(x, t, reduction="none")
    assert np.isnan(loss[0]) and loss[1] == np.inf
    assert np.isnan(fastloss.nll_loss(x, t))


@pytest.mark.parametrize("shape", [(64, 131072), (257, 32771)], ids=["aligned", "odd"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_streamed_gradient(shape, reduction):
    """Gradients of 32 MiB and more of long rows are written with streaming
    stores (src/nll/nll.c): the same values, one nonzero per kept row,
    bitwise the same for 1 and 2 threads and into a caller's buffer."""
    rng = np.random.default_rng(11)
    n, c = shape
    x = rng.standard_normal(shape).astype(np.float32) - 10.0
    t = rng.integers(0, c, n)
    t[::7] = -100
    t[1] = c - 1
    t[2] = 0
    w = _weight(c)
    go = _grad_output(reduction, shape)
    crit = fastloss.NLLLoss(weight=w, reduction=reduction)
    with fastloss.threads(1):
        loss1, grad1 = crit.loss_and_grad(x, t)
    with fastloss.threads(2):
        loss2, grad2 = crit.loss_and_grad(x, t)
        out = np.full(shape, 7.0, np.float32)
        loss3, grad3 = crit.loss_and_grad(x, t, out=out)
        back = crit.backward(x, t, grad_output=go)
    assert_same(loss1, loss2)
    assert_same(grad1, grad2)
    assert_same(loss3, loss1)
    assert grad3 is out
    assert_same(grad3, grad1)
    kept = np.flatnonzero(t != -100)
    assert np.count_nonzero(grad1) == kept.size
    r_grad = ref.nll_loss_grad(x, t, weight=w, reduction=reduction,
                               grad_output=np.asarray(go, np.float64))
    nz = np.nonzero(r_grad)
    assert_grad_close(back[nz], r_grad[nz])
    assert np.count_nonzero(back) == kept.size
    assert_loss_close(loss1, ref.nll_loss(x, t, weight=w, reduction=reduction))


@pytest.mark.parametrize("shape", [(9, 5), (2, 4, 3), (6, 40000)])
def test_in_place_gradient(shape):
    """out=input: the loss is read before the gradient overwrites it."""
    x, t = _data(shape)
    want_loss, want_grad = fastloss.NLLLoss(reduction="sum").loss_and_grad(x, t)
    buf = x.copy()
    loss, grad = fastloss.NLLLoss(reduction="sum").loss_and_grad(buf, t, out=buf)
    assert grad is buf
    assert_same(loss, want_loss)
    assert_same(grad, want_grad)


def test_argument_errors():
    x, t = _data((4, 3))
    with pytest.raises(TypeError, match="target must hold integer class indices, got dtype"):
        fastloss.nll_loss(x, t.astype(np.float32))
    with pytest.raises(ValueError, match=r"target has shape \(3,\), expected \(4,\)"):
        fastloss.nll_loss(x, t[:3])
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        fastloss.nll_loss(x, t, weight=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="weight must be finite"):
        fastloss.nll_loss(x, t, weight=np.array([1.0, np.inf, 1.0]))
    with pytest.raises(ValueError, match="got a scalar"):
        fastloss.nll_loss(np.float32(1.0), np.int64(0))
    with pytest.raises(ValueError, match="reduction"):
        fastloss.nll_loss(x, t, reduction="average")
    with pytest.raises(TypeError, match="ignore_index"):
        fastloss.NLLLoss(ignore_index=1.5)


@pytest.mark.parametrize("shape", [(4, 17, 2000), (64, 7, 300)],
                         ids=["position-chunks", "whole-rows"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kdim_thread_counts_bitwise(shape, reduction):
    """Both K-dimensional block layouts (chunks of positions of a row longer
    than a block; several whole rows per block) give the same bits on 1 and
    2 threads, and the reference's values."""
    x, t = _data(shape, seed=4)
    w = _weight(shape[1])
    crit = fastloss.NLLLoss(weight=w, reduction=reduction)
    go = _grad_output(reduction, shape)
    with fastloss.threads(1):
        one = crit.loss_and_grad(x, t), crit.backward(x, t, grad_output=go)
    with fastloss.threads(2):
        two = crit.loss_and_grad(x, t), crit.backward(x, t, grad_output=go)
    assert_same(one[0][0], two[0][0])
    assert_same(one[0][1], two[0][1])
    assert_same(one[1], two[1])
    assert_loss_close(one[0][0], ref.nll_loss(x, t, weight=w, reduction=reduction))
    assert_grad_close(one[1], ref.nll_loss_grad(x, t, weight=w, reduction=reduction,
                                                grad_output=np.asarray(go, np.float64)))
