"""fastloss.cosine_embedding_loss / CosineEmbeddingLoss: against the float64
reference and PyTorch (every margin x reduction, both gradients, an upstream
gradient other than 1), fused == separate calls, 1 vs 2 threads bitwise, bad
inputs, non-contiguous and empty inputs, and PyTorch's quirks (targets other
than +-1, a zero row, the tie cos == margin, 1-d inputs with a 0-d target).

Not in the registry-driven tests: its two differentiable inputs do not fit
their (input, target) calls (tests/values/test_losses.py says so).
"""

import numpy as np
import pytest
from _support.registry import assert_grad_close, assert_loss_close, assert_same

import fastloss
from fastloss import reference as ref

REDUCTIONS = ("mean", "sum", "none")
MARGINS = (0.0, -0.4, 0.5)


def _data(shape, seed=0, targets=(1, -1)):
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(shape).astype(np.float32)
    x2 = rng.standard_normal(shape).astype(np.float32)
    # some rows nearly parallel, so that 'cos - margin' takes both signs
    if x1.ndim == 2:
        x2[::3] = x1[::3] + 0.1 * x2[::3]
    t = rng.choice(targets, size=shape[:1] if len(shape) == 2 else ())
    return x1, x2, np.asarray(t)


def _grad_output(reduction, shape, seed=1):
    if reduction != "none":
        return 0.7
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape[:1] if len(shape) == 2 else ()
                                               ).astype(np.float32)


@pytest.mark.parametrize("shape", [(9, 6), (33, 17), (7,)], ids=str)
@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_reference(shape, margin, reduction):
    x1, x2, t = _data(shape, targets=(1, -1, 0, 2))
    go = _grad_output(reduction, shape)
    crit = fastloss.CosineEmbeddingLoss(margin=margin, reduction=reduction)
    want = ref.cosine_embedding_loss(x1, x2, t, margin, reduction)
    assert_loss_close(fastloss.cosine_embedding_loss(x1, x2, t, margin, reduction=reduction),
                      want)
    loss, (g1, g2) = crit.loss_and_grad(x1, x2, t)
    assert_loss_close(loss, want)
    r1, r2 = ref.cosine_embedding_loss_grad(x1, x2, t, margin, reduction)
    assert_grad_close(g1, r1)
    assert_grad_close(g2, r2)
    b1, b2 = crit.backward(x1, x2, t, grad_output=go)
    r1, r2 = ref.cosine_embedding_loss_grad(x1, x2, t, margin, reduction, grad_output=go)
    assert_grad_close(b1, r1)
    assert_grad_close(b2, r2)
    for g in (g1, g2, b1, b2):
        assert g.dtype == np.float32 and g.shape == x1.shape


@pytest.mark.parametrize("shape", [(9, 6), (7,)], ids=str)
@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torch(shape, margin, reduction):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x1, x2, t = _data(shape, seed=3, targets=(1, -1, 0))
    go = _grad_output(reduction, shape)
    a = torch.tensor(x1, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(x2, dtype=torch.float64, requires_grad=True)
    want = F.cosine_embedding_loss(a, b, torch.tensor(t), margin=margin, reduction=reduction)
    ga, gb = torch.autograd.grad(want, (a, b), torch.tensor(go, dtype=torch.float64))
    crit = fastloss.CosineEmbeddingLoss(margin, reduction=reduction)
    loss, _ = crit.loss_and_grad(x1, x2, t)
    assert_loss_close(loss, want.detach().numpy())
    g1, g2 = crit.backward(x1, x2, t, grad_output=go)
    assert_grad_close(g1, ga.numpy())
    assert_grad_close(g2, gb.numpy())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_fused_equals_separate_calls(reduction):
    x1, x2, t = _data((40, 13), seed=5)
    crit = fastloss.CosineEmbeddingLoss(margin=0.2, reduction=reduction)
    loss, (g1, g2) = crit.loss_and_grad(x1, x2, t)
    assert_same(loss, crit(x1, x2, t))
    assert_same(loss, fastloss.cosine_embedding_loss(x1, x2, t, 0.2, reduction=reduction))
    s1, s2 = crit.backward(x1, x2, t)
    assert_same(g1, s1)
    assert_same(g2, s2)


@pytest.mark.skipif(not fastloss.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_thread_counts_are_bitwise_identical(reduction):
    # 300 x 203 floats per input: 4 blocks of 80 rows, above the parallel threshold
    x1, x2, t = _data((300, 203), seed=7)
    go = _grad_output(reduction, x1.shape)
    crit = fastloss.CosineEmbeddingLoss(margin=-0.1, reduction=reduction)
    results = []
    for n in (1, 2):
        with fastloss.threads(n):
            loss, grads = crit.loss_and_grad(x1, x2, t)
            results.append((loss, *grads, *crit.backward(x1, x2, t, grad_output=go)))
    for a, b in zip(*results):
        assert_same(a, b)


def test_non_contiguous_inputs_equal_contiguous_copies():
    x1, x2, t = _data((10, 12), seed=9)
    big1 = np.zeros((10, 24), np.float32)
    big1[:, ::2] = x1
    big2 = np.asfortranarray(x2)
    tt = np.repeat(t, 2)[::2]
    loss, grads = fastloss.CosineEmbeddingLoss(reduction="none").loss_and_grad(
        big1[:, ::2], big2, tt)
    want, wgrads = fastloss.CosineEmbeddingLoss(reduction="none").loss_and_grad(x1, x2, t)
    assert_same(loss, want)
    for a, b in zip(grads, wgrads):
        assert_same(a, b)
    # float64 and integer inputs are converted to float32
    assert_same(fastloss.cosine_embedding_loss(x1.astype(np.float64), x2, t),
                fastloss.cosine_embedding_loss(x1, x2, t))


def test_empty_batch_and_empty_rows():
    e = np.zeros((0, 4), np.float32)
    t = np.zeros(0)
    assert np.isnan(fastloss.cosine_embedding_loss(e, e, t))
    assert fastloss.cosine_embedding_loss(e, e, t, reduction="sum") == 0.0
    loss, (g1, g2) = fastloss.CosineEmbeddingLoss(reduction="none").loss_and_grad(e, e, t)
    assert loss.shape == (0,) and g1.shape == (0, 4) and g2.shape == (0, 4)
    # D = 0: cos = 0, so loss 1 for target 1 and max(0, -margin) for -1
    z = np.zeros((3, 0), np.float32)
    loss, (g1, g2) = fastloss.CosineEmbeddingLoss(margin=-0.25, reduction="none").loss_and_grad(
        z, z, np.array([1, -1, 0]))
    np.testing.assert_array_equal(loss, np.array([1.0, 0.25, 0.0], np.float32))
    assert g1.shape == (3, 0) and g2.shape == (3, 0)


def test_targets_other_than_plus_minus_one_contribute_zero():
    # PyTorch: where(target == 1, 1 - cos, 0) + where(target == -1, ..., 0)
    x1, x2, _ = _data((4, 5), seed=11)
    t = np.array([0.0, 2.0, 0.5, -3.0])
    loss, (g1, g2) = fastloss.CosineEmbeddingLoss(reduction="none").loss_and_grad(x1, x2, t)
    np.testing.assert_array_equal(loss, np.zeros(4, np.float32))
    assert not g1.any() and not g2.any()
    # integer and boolean targets are compared by value, as PyTorch does
    for tt in (np.array([1, -1, 1, -1], np.int64), np.array([1, -1, 1, -1], np.int8)):
        assert_same(fastloss.cosine_embedding_loss(x1, x2, tt),
                    fastloss.cosine_embedding_loss(x1, x2, tt.astype(np.float32)))
    assert_same(fastloss.cosine_embedding_loss(x1, x2, np.array([True, True, False, True])),
                fastloss.cosine_embedding_loss(x1, x2, np.array([1, 1, 0, 1])))


def test_a_zero_row_gives_loss_one_and_a_finite_gradient():
    torch = pytest.importorskip("torch")
    x1 = np.zeros((1, 4), np.float32)
    x2 = np.array([[0.5, -1.0, 2.0, 0.25]], np.float32)
    loss, (g1, g2) = fastloss.CosineEmbeddingLoss().loss_and_grad(x1, x2, np.array([1]))
    assert loss == 1.0
    assert np.isfinite(g1).all() and np.abs(g1).max() > 1e5   # 1 / (1e-6 |x2|) scale
    np.testing.assert_array_equal(g2, np.zeros_like(g2))
    a = torch.tensor(x1, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(x2, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.cosine_embedding_loss(a, b, torch.tensor([1])).backward()
    assert_grad_close(g1, a.grad.numpy())


def test_tie_cos_equal_to_margin_passes_the_gradient():
    # cos = 0 exactly; margin 0; target -1: PyTorch's clamp_min(cos - margin, 0)
    # passes the gradient at the tie (its backward masks cos - margin >= 0).
    torch = pytest.importorskip("torch")
    x1 = np.array([[1.0, 0.0, 0.0]], np.float32)
    x2 = np.array([[0.0, 2.0, 0.0]], np.float32)
    loss, (g1, g2) = fastloss.CosineEmbeddingLoss().loss_and_grad(x1, x2, np.array([-1]))
    assert loss == 0.0
    a = torch.tensor(x1, requires_grad=True)
    b = torch.tensor(x2, requires_grad=True)
    torch.nn.functional.cosine_embedding_loss(a, b, torch.tensor([-1.0])).backward()
    assert a.grad.abs().sum() > 0
    np.testing.assert_allclose(g1, a.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(g2, b.grad.numpy(), rtol=1e-6, atol=1e-7)
    # just below the tie: no gradient
    _, (h1, h2) = fastloss.CosineEmbeddingLoss(margin=1e-6).loss_and_grad(x1, x2,
                                                                          np.array([-1]))
    assert not h1.any() and not h2.any()


def test_one_dimensional_inputs_take_a_scalar_target():
    x1, x2, _ = _data((6, 5), seed=13)
    for y in (1, -1):
        loss = fastloss.cosine_embedding_loss(x1[2], x2[2], np.array(y), reduction="none")
        assert isinstance(loss, np.ndarray) and loss.shape == ()
        rows = fastloss.cosine_embedding_loss(x1, x2, np.full(6, y), reduction="none")
        assert_same(loss, rows[2:3].reshape(()))
        _, (g1, g2) = fastloss.CosineEmbeddingLoss().loss_and_grad(x1[2], x2[2], y)
        assert g1.shape == (5,) and g2.shape == (5,)


def test_nan_in_means_nan_out_and_large_values_do_not_overflow():
    x1, x2, _ = _data((3, 4), seed=15)
    x1[1, 2] = np.nan
    loss, (g1, g2) = fastloss.CosineEmbeddingLoss(reduction="none").loss_and_grad(
        x1, x2, np.array([1, 1, 0]))
    assert np.isnan(loss[1]) and np.isfinite(loss[[0, 2]]).all()
    assert np.isnan(g1[1]).all() and np.isnan(g2[1]).all()
    assert np.isfinite(g1[[0, 2]]).all()
    # a float32 sum of squares would overflow at |x| ~ 1e19; the kernel sums in double
    big = np.array([[3e38, -2e38, 1e38]], np.float32)
    other = np.array([[1e38, 1e38, -3e38]], np.float32)
    for y in (1, -1):
        t = np.array([y])
        loss, (g1, g2) = fastloss.CosineEmbeddingLoss().loss_and_grad(big, other, t)
        assert_loss_close(loss, ref.cosine_embedding_loss(big, other, t))
        r1, r2 = ref.cosine_embedding_loss_grad(big, other, t)
        assert_grad_close(g1, r1)
        assert_grad_close(g2, r2)


def test_legacy_reduction_arguments():
    x1, x2, t = _data((5, 3), seed=17)
    with pytest.warns(UserWarning, match="deprecated"):
        assert_same(fastloss.cosine_embedding_loss(x1, x2, t, size_average=False),
                    fastloss.cosine_embedding_loss(x1, x2, t, reduction="sum"))
    with pytest.warns(UserWarning, match="deprecated"):
        assert_same(fastloss.cosine_embedding_loss(x1, x2, t, reduce=False),
                    fastloss.cosine_embedding_loss(x1, x2, t, reduction="none"))
    with pytest.warns(UserWarning, match="deprecated"):
        crit = fastloss.CosineEmbeddingLoss(size_average=True, reduce=True)
    assert crit.reduction == "mean"


def test_class_options_and_repr():
    crit = fastloss.CosineEmbeddingLoss(margin=0.5, reduction="sum")
    assert crit.margin == 0.5 and crit.reduction == "sum"
    assert repr(crit) == "CosineEmbeddingLoss(margin=0.5, reduction='sum')"
    crit.reduction = "none"
    assert crit.reduction == "none"
    with pytest.raises(ValueError, match="margin must be a number"):
        crit.margin = float("nan")
    with pytest.raises(ValueError, match="reduction must be"):
        crit.reduction = "avg"


@pytest.mark.parametrize("args,error,match", [
    (((3, 4), (3, 5), (3,)), ValueError, r"input2 has shape \(3, 5\), expected input1's"),
    (((3, 4), (4, 4), (3,)), ValueError, r"input2 has shape \(4, 4\)"),
    (((2, 3, 4), (2, 3, 4), (2,)), ValueError, r"input1 and input2 must have shape \(N, D\)"),
    (((), (), ()), ValueError, r"input1 and input2 must have shape \(N, D\) or \(D,\)"),
    (((3, 4), (3, 4), (4,)), ValueError, r"target has shape \(4,\), expected \(3,\)"),
    (((3, 4), (3, 4), ()), ValueError, r"target has shape \(\), expected \(3,\)"),
    (((4,), (4,), (1,)), ValueError, r"target has shape \(1,\), expected \(\)"),
    (((3, 4), (3, 4), (3, 1)), ValueError, "multi-target not supported"),
])
def test_bad_shapes_are_refused(args, error, match):
    s1, s2, st = args
    x1 = np.ones(s1, np.float32)
    x2 = np.ones(s2, np.float32)
    t = np.ones(st)
    with pytest.raises(error, match=match):
        fastloss.cosine_embedding_loss(x1, x2, t)
    with pytest.raises(error, match=match):
        fastloss.CosineEmbeddingLoss().loss_and_grad(x1, x2, t)


def test_bad_values_are_refused():
    x = np.ones((2, 3), np.float32)
    t = np.ones(2)
    with pytest.raises(TypeError, match="target must hold real numbers"):
        fastloss.cosine_embedding_loss(x, x, np.array(["a", "b"]))
    with pytest.raises(TypeError, match="input1 must hold real numbers"):
        fastloss.cosine_embedding_loss(x.astype(complex), x, t)
    with pytest.raises(TypeError, match="input2 must hold real numbers"):
        fastloss.cosine_embedding_loss(x, np.full((2, 3), "x"), t)
    with pytest.raises(ValueError, match="margin must be a number that is finite"):
        fastloss.cosine_embedding_loss(x, x, t, margin=float("inf"))
    with pytest.raises(TypeError, match="margin must be a real number"):
        fastloss.CosineEmbeddingLoss(margin="0.5")
    with pytest.raises(ValueError, match="reduction must be"):
        fastloss.cosine_embedding_loss(x, x, t, reduction="batchmean")
    with pytest.raises(ValueError, match=r"grad_output must be a scalar for a reduced loss"):
        fastloss.CosineEmbeddingLoss().backward(x, x, t, grad_output=np.ones(2))
    with pytest.raises(ValueError, match=r"grad_output has shape \(3,\), expected"):
        fastloss.CosineEmbeddingLoss(reduction="none").backward(x, x, t,
                                                                grad_output=np.ones(3))
