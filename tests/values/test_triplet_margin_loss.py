"""fastloss.triplet_margin_loss / TripletMarginLoss: against the float64
reference and PyTorch (every p x swap x margin x reduction, the three
gradients, an upstream gradient other than 1), fused == separate calls,
1 vs 2 threads bitwise, bad inputs, non-contiguous and empty inputs, and
PyTorch's quirks (eps added to the difference, the gradient at zero
distance, the ties of the hinge and of the swap's minimum, 1-d and
batched inputs). p other than 1 and 2 is refused (ValueError).

Not in the registry-driven tests: its three differentiable inputs do not
fit their (input, target) calls (tests/values/test_losses.py says so).
"""

import numpy as np
import pytest
from _support.registry import assert_grad_close, assert_loss_close, assert_same

import fastloss
from fastloss import reference as ref

REDUCTIONS = ("mean", "sum", "none")


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    a, p, n = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    if len(shape) == 2:
        p[::2] = a[::2] + 0.3 * p[::2]     # close positives: both sides of the hinge
        n[::4] = p[::4] + 0.1 * n[::4]     # negatives near the positive: swap picks d(p, n)
    return a, p, n


def _grad_output(reduction, shape, seed=1):
    if reduction != "none":
        return 0.7
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape[:-1]).astype(np.float32)


@pytest.mark.parametrize("shape", [(12, 6), (33, 17), (7,), (2, 3, 5)], ids=str)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_reference(shape, p, swap, margin, reduction):
    a, pos, neg = _data(shape)
    go = _grad_output(reduction, shape)
    opts = dict(margin=margin, p=p, eps=1e-6, swap=swap)
    crit = fastloss.TripletMarginLoss(**opts, reduction=reduction)
    want = ref.triplet_margin_loss(a, pos, neg, **opts, reduction=reduction)
    assert_loss_close(fastloss.triplet_margin_loss(a, pos, neg, **opts, reduction=reduction),
                      want)
    loss, grads = crit.loss_and_grad(a, pos, neg)
    assert_loss_close(loss, want)
    for got, r in zip(grads, ref.triplet_margin_loss_grad(a, pos, neg, **opts,
                                                          reduction=reduction)):
        assert_grad_close(got, r)
    back = crit.backward(a, pos, neg, grad_output=go)
    assert len(back) == 3
    for got, r in zip(back, ref.triplet_margin_loss_grad(a, pos, neg, **opts,
                                                         reduction=reduction, grad_output=go)):
        assert_grad_close(got, r)
        assert got.dtype == np.float32 and got.shape == a.shape


@pytest.mark.parametrize("shape", [(12, 6), (7,)], ids=str)
@pytest.mark.parametrize("p", [1, 2.0])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torch(shape, p, swap, reduction):
    torch = pytest.importorskip("torch")
    a, pos, neg = _data(shape, seed=3)
    go = _grad_output(reduction, shape)
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in (a, pos, neg)]
    want = torch.nn.functional.triplet_margin_loss(*ts, margin=0.8, p=p, swap=swap,
                                                   reduction=reduction)
    tgrads = torch.autograd.grad(want, ts, torch.tensor(go, dtype=torch.float64))
    crit = fastloss.TripletMarginLoss(margin=0.8, p=p, swap=swap, reduction=reduction)
    loss, _ = crit.loss_and_grad(a, pos, neg)
    assert_loss_close(loss, want.detach().numpy())
    for got, t in zip(crit.backward(a, pos, neg, grad_output=go), tgrads):
        assert_grad_close(got, t.numpy())


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_fused_equals_separate_calls(swap, reduction):
    a, pos, neg = _data((40, 13), seed=5)
    crit = fastloss.TripletMarginLoss(swap=swap, reduction=reduction)
    loss, grads = crit.loss_and_grad(a, pos, neg)
    assert_same(loss, crit(a, pos, neg))
    assert_same(loss, fastloss.triplet_margin_loss(a, pos, neg, swap=swap, reduction=reduction))
    for g, s in zip(grads, crit.backward(a, pos, neg)):
        assert_same(g, s)


@pytest.mark.skipif(not fastloss.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_thread_counts_are_bitwise_identical(p, reduction):
    # 300 x 203 floats per input: 4 blocks of 80 rows, above the parallel threshold
    a, pos, neg = _data((300, 203), seed=7)
    go = _grad_output(reduction, a.shape)
    crit = fastloss.TripletMarginLoss(margin=3.0, p=p, swap=True, reduction=reduction)
    results = []
    for n in (1, 2):
        with fastloss.threads(n):
            loss, grads = crit.loss_and_grad(a, pos, neg)
            results.append((loss, *grads, *crit.backward(a, pos, neg, grad_output=go)))
    for x, y in zip(*results):
        assert_same(x, y)


def test_non_contiguous_inputs_equal_contiguous_copies():
    a, pos, neg = _data((10, 12), seed=9)
    wide = np.zeros((10, 24), np.float32)
    wide[:, 1::2] = a
    loss, grads = fastloss.TripletMarginLoss(reduction="none").loss_and_grad(
        wide[:, 1::2], np.asfortranarray(pos), neg[::-1][::-1])
    want, wgrads = fastloss.TripletMarginLoss(reduction="none").loss_and_grad(a, pos, neg)
    assert_same(loss, want)
    for x, y in zip(grads, wgrads):
        assert_same(x, y)
    assert_same(fastloss.triplet_margin_loss(a.astype(np.float64), pos, neg),
                fastloss.triplet_margin_loss(a, pos, neg))


def test_empty_batch_and_empty_rows():
    e = np.zeros((0, 4), np.float32)
    assert np.isnan(fastloss.triplet_margin_loss(e, e, e))
    assert fastloss.triplet_margin_loss(e, e, e, reduction="sum") == 0.0
    loss, grads = fastloss.TripletMarginLoss(reduction="none").loss_and_grad(e, e, e)
    assert loss.shape == (0,) and all(g.shape == (0, 4) for g in grads)
    # D = 0: every distance is 0, the loss is the margin (as PyTorch)
    z = np.zeros((3, 0), np.float32)
    loss, grads = fastloss.TripletMarginLoss(margin=0.5, reduction="none").loss_and_grad(z, z, z)
    np.testing.assert_array_equal(loss, np.full(3, 0.5, np.float32))
    assert all(g.shape == (3, 0) for g in grads)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("eps", [1e-6, 0.0])
def test_zero_distance_gradient_matches_torch(p, eps):
    # anchor == positive: with eps the distance is ||eps||, its gradient the
    # direction of eps; without, PyTorch's norm backward gives 0 (p = 2, masked)
    # and sign(0) = 0 (p = 1).
    torch = pytest.importorskip("torch")
    a = np.ones((1, 3), np.float32)
    n = np.zeros((1, 3), np.float32)
    crit = fastloss.TripletMarginLoss(margin=5.0, p=p, eps=eps)
    loss, grads = crit.loss_and_grad(a, a.copy(), n)
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in (a, a, n)]
    want = torch.nn.functional.triplet_margin_loss(*ts, margin=5.0, p=p, eps=eps)
    want.backward()
    assert_loss_close(loss, want.item())
    for got, t in zip(grads, ts):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_hinge_tie_passes_the_gradient():
    # margin + d(a, p) - d(a, n) = 1 + 1 - 2 = 0 exactly: PyTorch's clamp_min
    # passes the gradient there.
    torch = pytest.importorskip("torch")
    a = np.array([[0.0, 0.0]], np.float32)
    pos = np.array([[1.0, 0.0]], np.float32)
    neg = np.array([[2.0, 0.0]], np.float32)
    loss, (ga, gp, gn) = fastloss.TripletMarginLoss(eps=0.0).loss_and_grad(a, pos, neg)
    assert loss == 0.0
    np.testing.assert_array_equal(gp, [[1.0, 0.0]])
    np.testing.assert_array_equal(gn, [[-1.0, 0.0]])
    ts = [torch.tensor(x, requires_grad=True) for x in (a, pos, neg)]
    torch.nn.functional.triplet_margin_loss(*ts, eps=0.0).backward()
    for got, t in zip((ga, gp, gn), ts):
        np.testing.assert_array_equal(got, t.grad.numpy())
    # below the tie: no gradient
    _, grads = fastloss.TripletMarginLoss(margin=0.5, eps=0.0).loss_and_grad(a, pos, neg)
    assert not any(g.any() for g in grads)


def test_swap_tie_splits_the_gradient():
    # d(a, n) == d(p, n): torch.minimum's backward gives each side half.
    torch = pytest.importorskip("torch")
    a = np.array([[0.0, 0.0]], np.float32)
    pos = np.array([[2.0, 0.0]], np.float32)
    neg = np.array([[1.0, 0.0]], np.float32)
    loss, grads = fastloss.TripletMarginLoss(margin=5.0, eps=0.0, swap=True).loss_and_grad(
        a, pos, neg)
    ts = [torch.tensor(x, requires_grad=True) for x in (a, pos, neg)]
    want = torch.nn.functional.triplet_margin_loss(*ts, margin=5.0, eps=0.0, swap=True)
    want.backward()
    assert loss == want.item() == 6.0
    np.testing.assert_array_equal(grads[0], [[-0.5, 0.0]])
    for got, t in zip(grads, ts):
        np.testing.assert_array_equal(got, t.grad.numpy())


def test_one_dimensional_and_batched_inputs():
    a, pos, neg = _data((6, 5), seed=13)
    loss = fastloss.triplet_margin_loss(a[2], pos[2], neg[2], reduction="none")
    assert isinstance(loss, np.ndarray) and loss.shape == ()
    rows = fastloss.triplet_margin_loss(a, pos, neg, reduction="none")
    assert_same(loss, rows[2:3].reshape(()))
    # leading axes are rows too, as torch.pairwise_distance's last-axis norm
    batched = fastloss.triplet_margin_loss(a.reshape(2, 3, 5), pos.reshape(2, 3, 5),
                                           neg.reshape(2, 3, 5), reduction="none")
    assert_same(batched, rows.reshape(2, 3))


@pytest.mark.parametrize("p", [1, 2])
def test_nan_in_means_nan_out_and_large_values_do_not_overflow(p):
    a, pos, neg = _data((3, 4), seed=15)
    a[1, 2] = np.nan
    loss, grads = fastloss.TripletMarginLoss(p=p, reduction="none").loss_and_grad(a, pos, neg)
    assert np.isnan(loss[1]) and np.isfinite(loss[[0, 2]]).all()
    # PyTorch gives zeros here for p = 1 (sign(NaN) = 0 there); fastloss keeps NaN
    for g in grads:
        assert np.isnan(g[1]).any() and np.isfinite(g[[0, 2]]).all()
    # a - n overflows float32 (6e38); the kernel works in double
    big_a = np.array([[3e38, -3e38, 1.0]], np.float32)
    big_p = np.array([[2e38, -3e38, 0.0]], np.float32)
    big_n = np.array([[-3e38, 3e38, 0.0]], np.float32)
    crit = fastloss.TripletMarginLoss(margin=1e38, p=p, swap=True)
    loss, grads = crit.loss_and_grad(big_a, big_p, big_n)
    assert np.isfinite(loss)
    assert_loss_close(loss, ref.triplet_margin_loss(big_a, big_p, big_n, 1e38, p, 1e-6, True))
    for got, r in zip(grads, ref.triplet_margin_loss_grad(big_a, big_p, big_n, 1e38, p, 1e-6,
                                                          True)):
        assert_grad_close(got, r)


def test_legacy_reduction_arguments():
    a, pos, neg = _data((5, 3), seed=17)
    with pytest.warns(UserWarning, match="deprecated"):
        assert_same(fastloss.triplet_margin_loss(a, pos, neg, size_average=False),
                    fastloss.triplet_margin_loss(a, pos, neg, reduction="sum"))
    with pytest.warns(UserWarning, match="deprecated"):
        crit = fastloss.TripletMarginLoss(reduce=False)
    assert crit.reduction == "none"


def test_class_options_and_repr():
    crit = fastloss.TripletMarginLoss(margin=0.5, p=1.0, eps=0.0, swap=True, reduction="sum")
    assert (crit.margin, crit.p, crit.eps, crit.swap) == (0.5, 1, 0.0, True)
    assert repr(crit) == ("TripletMarginLoss(margin=0.5, p=1, eps=0.0, swap=True, "
                          "reduction='sum')")
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        crit.margin = 0.0
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        crit.p = 3
    assert crit.p == 1


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(margin=0.0), ValueError, "margin must be greater than 0, got 0.0"),
    (dict(margin=-1.0), ValueError, "margin must be greater than 0"),
    (dict(margin=float("nan")), ValueError, "margin must be a number"),
    (dict(p=3), ValueError, r"p must be 1 or 2 \(fastloss has the 1- and 2-norm"),
    (dict(p=0.5), ValueError, "p must be 1 or 2"),
    (dict(p=float("inf")), ValueError, "p must be 1 or 2"),
    (dict(p=True), TypeError, "p must be a real number"),
    (dict(p="2"), TypeError, "p must be a real number"),
    (dict(eps=float("inf")), ValueError, "eps must be a number that is finite"),
    (dict(swap=np.ones(2)), TypeError, "swap must be True or False"),
    (dict(reduction="avg"), ValueError, "reduction must be"),
])
def test_bad_options_are_refused(kwargs, error, match):
    a, pos, neg = _data((3, 4))
    with pytest.raises(error, match=match):
        fastloss.triplet_margin_loss(a, pos, neg, **kwargs)
    with pytest.raises(error, match=match):
        fastloss.TripletMarginLoss(**kwargs)


def test_bad_arrays_are_refused():
    a, pos, neg = _data((3, 4))
    with pytest.raises(ValueError, match=r"positive has shape \(3, 5\), expected anchor's"):
        fastloss.triplet_margin_loss(a, np.ones((3, 5), np.float32), neg)
    with pytest.raises(ValueError, match=r"negative has shape \(1, 4\), expected anchor's"):
        fastloss.triplet_margin_loss(a, pos, neg[:1])   # no broadcasting
    with pytest.raises(ValueError, match="must have at least one dimension"):
        fastloss.triplet_margin_loss(np.float32(1), np.float32(2), np.float32(3))
    with pytest.raises(TypeError, match="anchor must hold real numbers"):
        fastloss.triplet_margin_loss(a.astype(complex), pos, neg)
    with pytest.raises(TypeError, match="negative must hold real numbers"):
        fastloss.triplet_margin_loss(a, pos, np.full((3, 4), "x"))
    crit = fastloss.TripletMarginLoss()
    with pytest.raises(ValueError, match="grad_output must be a scalar for a reduced loss"):
        crit.backward(a, pos, neg, grad_output=np.ones(3))
    with pytest.raises(ValueError, match=r"grad_output has shape \(4,\), expected"):
        fastloss.TripletMarginLoss(reduction="none").backward(a, pos, neg,
                                                              grad_output=np.ones(4))
