"""fastloss.torch against PyTorch: losses and autograd gradients of every loss
in the registry, every reduction, upstream gradients other than 1, options,
K-dimensional input, probability targets, non-contiguous input, the nn.Module
classes, gradcheck and the custom operators' opcheck.

Both sides compute in float32 on the same arrays; the tolerances are those of
tests/test_torch.py. Every test that claims the fused kernels ran checks it
(the ``kernel_calls`` fixture), so that a silent fallback to PyTorch cannot
pass for a match.
"""

import subprocess
import sys

import numpy as np
import pytest
from _support.registry import (
    BCE_WITH_LOGITS,
    CROSS_ENTROPY,
    ELEMENTWISE,
    HUBER,
    L1,
    MSE,
    NLL,
    REDUCTIONS,
    REGISTRY,
    SIGMOID_FOCAL,
    SMOOTH_L1,
    assert_grad_close,
    assert_loss_close,
    shape_id,
    torch_loss_and_grad,
)

torch = pytest.importorskip("torch")

from _support.torch_util import as_tensors, functional, kernel_calls, run_ours, torch_raises_in_cxx

import fastloss
import fastloss.torch as ft
import fastloss.torch.functional as FT
from fastloss import _spec

SPEC_LOSSES = [loss for loss in _spec.LOSSES if loss.family == _spec.ELEMENTWISE]

RTOL = 2e-5  # float32 on both sides, as in tests/test_torch.py

SHAPES = {
    CROSS_ENTROPY: [(0, 5), (7, 3), (64, 10), (256, 1000)],
    NLL: [(0, 5), (7, 3), (64, 10), (256, 1000)],
    **{case: [(13,), (4, 5, 6), (64, 10)] for case in ELEMENTWISE},
}
CASE_SHAPES = [pytest.param(case, shape, id=f"{case.name}-{shape_id(shape)}")
               for case in REGISTRY for shape in SHAPES[case]]


def check(case, x, t, reduction, grad_output, kernel_calls, **options):
    """fastloss.torch == PyTorch (float32) for one call; the kernel ran once."""
    before = len(kernel_calls)
    loss, grad = run_ours(case, x, t, reduction, grad_output, kernel_calls, **options)
    assert len(kernel_calls) == before + 1, "the fused kernel did not run"
    expected_loss, expected_grad = torch_loss_and_grad(case, x, t, reduction, grad_output,
                                                       dtype="float32", **options)
    assert loss.shape == expected_loss.shape
    assert_loss_close(loss, expected_loss, rtol=RTOL)
    assert_grad_close(grad, expected_grad, rtol=RTOL)
    return loss, grad


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case,shape", CASE_SHAPES)
def test_matches_torch(case, shape, reduction, kernel_calls):
    x, t = case.make_data(shape, 3)
    for g in (case.random_grad_output(reduction, shape, 3), 1.0):
        check(case, x, t, reduction, g, kernel_calls)
    assert all(kernel_calls.calls), "the kernel got a copy of the input, not a view"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_same_numbers_as_fastloss(case, reduction):
    # Upstream gradient 1: the loss and the gradient are fastloss's own,
    # bit for bit (the loss rounded to float32, PyTorch's dtype).
    x, t = case.make_data((64, 10), 4)
    xt, tt, _ = as_tensors(case, x, t, {})
    loss = functional(case)(xt, tt, reduction=reduction)
    loss.backward(torch.ones_like(loss))
    expected_loss, expected_grad = case.cls(reduction=reduction).loss_and_grad(x, t)
    assert np.array_equal(loss.detach().numpy(), np.float32(expected_loss))
    assert np.array_equal(xt.grad.numpy(), expected_grad)
    # The input is never written.
    assert np.array_equal(xt.detach().numpy(), x)


# ---------------------------------------------------------------------------
# Options

CE_OPTIONS = [
    pytest.param({"weight": np.linspace(0.5, 2.0, 10)}, id="weight"),
    pytest.param({"ignore_index": 3}, id="ignore_index"),
    pytest.param({"ignore_index": -100}, id="ignore_default"),
    pytest.param({"label_smoothing": 0.15}, id="label_smoothing"),
    pytest.param({"weight": np.linspace(2.0, 0.2, 10), "ignore_index": 1,
                  "label_smoothing": 0.3}, id="all"),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", CE_OPTIONS)
def test_cross_entropy_options(options, reduction, kernel_calls):
    x, t = CROSS_ENTROPY.make_data((64, 10), 5)
    t[::5] = options.get("ignore_index", -100)
    g = CROSS_ENTROPY.random_grad_output(reduction, (64, 10), 5)
    check(CROSS_ENTROPY, x, t, reduction, g, kernel_calls, **options)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", [{}, CE_OPTIONS[-1].values[0]], ids=["plain", "options"])
def test_cross_entropy_k_dim(options, reduction, kernel_calls):
    rng = np.random.default_rng(6)
    x = (2 * rng.standard_normal((3, 10, 4, 5))).astype(np.float32)
    t = rng.integers(0, 10, (3, 4, 5))
    t[0, ::2] = options.get("ignore_index", -100)
    g = 0.37 if reduction != "none" else rng.uniform(-2, 2, (3, 4, 5)).astype(np.float32)
    check(CROSS_ENTROPY, x, t, reduction, g, kernel_calls, **options)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(64, 10), (3, 10, 4, 5), (10,)], ids=shape_id)
@pytest.mark.parametrize("options", [{}, {"weight": np.linspace(0.5, 2.0, 10),
                                          "label_smoothing": 0.2}], ids=["plain", "options"])
def test_cross_entropy_probability_targets(shape, options, reduction, kernel_calls):
    rng = np.random.default_rng(7)
    x = (2 * rng.standard_normal(shape)).astype(np.float32)
    p = rng.random(shape).astype(np.float32)
    p /= p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    per_sample = () if len(shape) == 1 else (shape[0], *shape[2:])
    g = 0.37 if reduction != "none" else rng.uniform(-2, 2, per_sample).astype(np.float32)
    loss, grad = run_ours(CROSS_ENTROPY, x, p, reduction, g, kernel_calls, **options)
    assert kernel_calls.calls == [True]
    # PyTorch on the same float32 arrays (the registry's helper makes class targets).
    xt = torch.tensor(x, requires_grad=True)
    w = options.get("weight")
    expected = torch.nn.functional.cross_entropy(
        xt, torch.tensor(p), None if w is None else torch.tensor(w, dtype=torch.float32),
        reduction=reduction, label_smoothing=options.get("label_smoothing", 0.0))
    (expected * torch.tensor(g)).sum().backward()
    assert_loss_close(loss, expected.detach().numpy(), rtol=RTOL)
    assert_grad_close(grad, xt.grad.numpy(), rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_unbatched(reduction, kernel_calls):
    x, t = CROSS_ENTROPY.make_data((11,), 8)
    g = 0.37 if reduction != "none" else np.float32(-0.8)
    check(CROSS_ENTROPY, x, t, reduction, g, kernel_calls, label_smoothing=0.1)


ELEMENTWISE_OPTIONS = [
    (BCE_WITH_LOGITS, {"weight": np.linspace(0.5, 2.0, 10)}),
    (BCE_WITH_LOGITS, {"pos_weight": np.linspace(3.0, 0.5, 10)}),
    (BCE_WITH_LOGITS, {"weight": np.linspace(0.1, 1.0, 640).reshape(64, 10),
                       "pos_weight": np.full(10, 4.0)}),
    (MSE, {"weight": np.linspace(0.1, 2.0, 640).reshape(64, 10)}),
    (L1, {"weight": np.linspace(0.1, 2.0, 640).reshape(64, 10)}),
    (HUBER, {"delta": 0.5}),
    (HUBER, {"delta": 2.0, "weight": np.linspace(0.1, 2.0, 640).reshape(64, 10)}),
    (SMOOTH_L1, {"beta": 0.5}),
    (SMOOTH_L1, {"beta": 0.0}),
    (SIGMOID_FOCAL, {"alpha": 0.6, "gamma": 1.5}),
    (SIGMOID_FOCAL, {"alpha": -1.0, "gamma": 0.0}),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case,options", ELEMENTWISE_OPTIONS,
                         ids=[f"{c.name}-{'-'.join(o)}" for c, o in ELEMENTWISE_OPTIONS])
def test_elementwise_options(case, options, reduction, kernel_calls):
    x, t = case.make_data((64, 10), 9)
    g = case.random_grad_output(reduction, (64, 10), 9)
    check(case, x, t, reduction, g, kernel_calls, **options)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", [c for c in REGISTRY if c.has_legacy_args], ids=repr)
def test_legacy_size_average_and_reduce(case, kernel_calls):
    x, t = case.make_data((7, 3), 10)
    for legacy in ({"size_average": False}, {"reduce": False}, {"size_average": True,
                                                                 "reduce": True}):
        expected_loss, expected_grad = torch_loss_and_grad(case, x, t, "mean", 1.0,
                                                           dtype="float32", **legacy)
        xt, tt, _ = as_tensors(case, x, t, {})
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            loss = functional(case)(xt, tt, **legacy)
        loss.sum().backward()
        assert_loss_close(loss.detach().numpy(), expected_loss, rtol=RTOL)
        assert_grad_close(xt.grad.numpy(), expected_grad, rtol=RTOL)
    assert len(kernel_calls) == 3


# ---------------------------------------------------------------------------
# Memory: no copy in, nothing written, only the gradient saved.

@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_non_contiguous_input(case, kernel_calls):
    x, t = case.make_data((10, 64), 11)   # transposed below: a (64, 10) view
    if not case.elementwise:
        t = np.random.default_rng(11).integers(0, 10, 64)
    else:
        t = np.ascontiguousarray(t.T)
    xt = torch.tensor(x).t().requires_grad_()
    assert not xt.is_contiguous()
    kwargs = {}
    tt = torch.as_tensor(t)
    loss = functional(case)(xt, tt, reduction="mean", **kwargs)
    (loss * 0.37).backward()
    assert len(kernel_calls) == 1
    ref = torch.tensor(x).t().requires_grad_()
    expected = case.torch_function()(ref, tt, reduction="mean")
    (expected * 0.37).backward()
    assert_loss_close(loss.detach().numpy(), expected.detach().numpy(), rtol=RTOL)
    assert_grad_close(xt.grad.numpy(), ref.grad.numpy(), rtol=RTOL)
    assert np.array_equal(xt.detach().numpy(), x.T)   # the caller's input is untouched


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_saves_only_the_gradient(case):
    x, t = case.make_data((64, 10), 12)
    xt, tt, _ = as_tensors(case, x, t, {})
    loss = functional(case)(xt, tt, reduction="sum")
    saved = loss.grad_fn.saved_tensors
    assert len(saved) == 1 and saved[0].shape == xt.shape
    assert not np.shares_memory(saved[0].numpy(), xt.detach().numpy())
    # Without grad nothing is recorded, and the loss is the same.
    with torch.no_grad():
        plain = functional(case)(xt, tt, reduction="sum")
    assert plain.grad_fn is None
    assert torch.equal(plain, loss.detach())


def _backward_ops(loss, grad_output):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        loss.backward(grad_output)
    return [e.name for e in prof.events()]


def test_backward_skips_the_scaling_when_grad_output_is_one():
    x, t = CROSS_ENTROPY.make_data((64, 10), 13)
    xt, tt, _ = as_tensors(CROSS_ENTROPY, x, t, {})
    ops = _backward_ops(FT.cross_entropy(xt, tt), torch.tensor(1.0))
    assert "aten::mul" not in ops, ops
    grad_1 = xt.grad.clone()
    xt.grad = None
    ops = _backward_ops(FT.cross_entropy(xt, tt), torch.tensor(0.5))
    assert "aten::mul" in ops, ops
    assert torch.equal(xt.grad, grad_1 * 0.5)
    # reduction='none' with loss.sum().backward(): an expanded 1, no scaling either.
    xt.grad = None
    per_sample = FT.cross_entropy(xt, tt, reduction="none")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        per_sample.sum().backward()
    assert "aten::mul" not in [e.name for e in prof.events()]
    assert torch.equal(xt.grad, grad_1 * 64)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_retain_graph_backward_twice(scale):
    # The saved gradient is never scaled in place: a second backward through
    # the same graph gets the same gradient again.
    x, t = CROSS_ENTROPY.make_data((64, 10), 20)
    xt = torch.tensor(x, requires_grad=True)
    loss = FT.cross_entropy(xt, torch.as_tensor(t)) * scale
    loss.backward(retain_graph=True)
    once = xt.grad.clone()
    loss.backward()
    assert torch.equal(xt.grad, once + once)
    _, expected = torch_loss_and_grad(CROSS_ENTROPY, x, t, "mean", scale, dtype="float32")
    assert_grad_close(once.numpy(), expected, rtol=RTOL)


def test_large_gradient_buffers_are_reused_only_when_free():
    # (1024, 1024) float32 is 4 MiB: pooled (fastloss/torch/_autograd.py).
    from fastloss.torch import _autograd

    ft.empty_cache()
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 1024, (1024,), generator=g)
    x1 = torch.randn(1024, 1024, generator=g, requires_grad=True)
    x2 = torch.randn(1024, 1024, generator=g, requires_grad=True)
    FT.cross_entropy(x1, t).backward()
    kept = x1.grad                       # the caller keeps this gradient
    kept_copy = kept.clone()
    FT.cross_entropy(x2, t).backward()   # must not reuse kept's memory
    assert x2.grad.data_ptr() != kept.data_ptr()
    assert torch.equal(kept, kept_copy)
    expected = x2.detach().clone().requires_grad_()
    torch.nn.functional.cross_entropy(expected, t).backward()
    assert_grad_close(x2.grad.numpy(), expected.grad.numpy(), rtol=RTOL)
    # Once no tensor refers to a buffer it is handed out again: no new pages.
    pointers = {kept.data_ptr(), x2.grad.data_ptr()}
    del kept
    x1.grad = x2.grad = None
    FT.cross_entropy(x1, t).backward()
    assert x1.grad.data_ptr() in pointers
    assert torch.equal(x1.grad, kept_copy)   # same input, same bits
    # A loss whose gradient is still saved for backward keeps its buffer too.
    loss_a = FT.cross_entropy(x2, t)
    loss_b = FT.cross_entropy(x2 * 1.0, t)
    assert loss_a.grad_fn.saved_tensors[0].data_ptr() != \
        loss_b.grad_fn.saved_tensors[0].data_ptr()
    assert len(_autograd._pool) <= _autograd._POOL_SIZE
    ft.empty_cache()
    assert _autograd._pool == []


# ---------------------------------------------------------------------------
# overwrite_input=True: the gradient over the input's memory.

@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_overwrite_input(case, kernel_calls):
    x, t = case.make_data((64, 10), 14)
    xt, tt, _ = as_tensors(case, x, t, {})
    logits = xt * 1.0     # computed by the model: not a leaf
    kernel_calls.watch(logits)
    version = logits._version
    loss = functional(case)(logits, tt, reduction="mean", overwrite_input=True)
    assert kernel_calls.calls == [True]
    assert logits._version > version          # autograd knows it was written
    (loss * 0.37).backward()
    expected_loss, expected_grad = torch_loss_and_grad(case, x, t, "mean", 0.37,
                                                       dtype="float32")
    assert_loss_close(loss.detach().numpy(), expected_loss, rtol=RTOL)
    assert_grad_close(xt.grad.numpy(), expected_grad, rtol=RTOL)
    # The logits now hold the (unscaled) gradient of the loss.
    assert_grad_close(logits.detach().numpy(), expected_grad / 0.37, rtol=RTOL)


@torch_raises_in_cxx   # (errors raised in backward pass through libtorch's C++)
def test_overwrite_input_fails_loudly_where_the_input_was_saved():
    x, t = CROSS_ENTROPY.make_data((64, 10), 15)
    z = torch.tensor(x, requires_grad=True)
    logits = torch.relu(z)          # relu saves its output
    loss = FT.cross_entropy(logits, torch.as_tensor(t), overwrite_input=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    # Double backward needs the input, which is gone.
    logits = torch.tensor(x, requires_grad=True) * 1.0
    loss = FT.cross_entropy(logits, torch.as_tensor(t), overwrite_input=True)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(loss, logits, create_graph=True)


def test_overwrite_input_hazards():
    x, t = CROSS_ENTROPY.make_data((64, 10), 15)
    tt = torch.as_tensor(t)
    # A leaf that requires grad is refused (it would hold its own gradient).
    leaf = torch.tensor(x, requires_grad=True)
    with pytest.raises(RuntimeError, match="overwrite_input=True on a leaf tensor"):
        FT.cross_entropy(leaf, tt, overwrite_input=True)
    assert np.array_equal(leaf.detach().numpy(), x)
    # Without grad, nothing is written.
    xt = torch.tensor(x)
    FT.cross_entropy(xt, tt, overwrite_input=True)
    assert np.array_equal(xt.numpy(), x)


def test_inplace_change_after_forward_does_not_break_backward():
    # The first-order backward never reads the input (only the saved
    # gradient), so it does not need the input unchanged; PyTorch's own
    # cross-entropy saves its log-softmax output instead, with the same effect.
    x, t = CROSS_ENTROPY.make_data((64, 10), 16)
    xt = torch.tensor(x, requires_grad=True)
    logits = xt * 1.0
    loss = FT.cross_entropy(logits, torch.as_tensor(t))
    with torch.no_grad():
        logits.mul_(0.0)
    loss.backward()
    expected_loss, expected_grad = torch_loss_and_grad(CROSS_ENTROPY, x, t, "mean", 1.0,
                                                       dtype="float32")
    assert_grad_close(xt.grad.numpy(), expected_grad, rtol=RTOL)


# ---------------------------------------------------------------------------
# Modules

def _torch_module(case, **kwargs):
    if case is SIGMOID_FOCAL:
        return None
    return getattr(torch.nn, case.cls_name)(**kwargs)


MODULE_KWARGS = {
    CROSS_ENTROPY: {"weight": torch.linspace(0.5, 2.0, 10), "ignore_index": 2,
                    "label_smoothing": 0.1, "reduction": "sum"},
    NLL: {"weight": torch.linspace(0.5, 2.0, 10), "ignore_index": 2, "reduction": "sum"},
    BCE_WITH_LOGITS: {"weight": torch.linspace(0.5, 2.0, 10),
                      "pos_weight": torch.linspace(2.0, 1.0, 10)},
    MSE: {"reduction": "none"},
    L1: {"reduction": "sum"},
    HUBER: {"delta": 0.7},
    SMOOTH_L1: {"beta": 0.3},
    SIGMOID_FOCAL: {"alpha": 0.4, "gamma": 1.0, "reduction": "mean"},
}
# A loss without a row here is built with its default options.


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_module_matches_torch_module(case, kernel_calls):
    kwargs = MODULE_KWARGS.get(case, {})
    ours = getattr(ft, case.cls_name)(**kwargs)
    x, t = case.make_data((64, 10), 17)
    if not case.elementwise:
        t[::3] = 2
    xt, tt, _ = as_tensors(case, x, t, {})
    loss = ours(xt, tt)
    loss.sum().backward()
    assert len(kernel_calls) == 1
    ref_x = torch.tensor(x, requires_grad=True)
    theirs = _torch_module(case, **kwargs)
    if theirs is None:
        expected = case.torch_function()(ref_x, tt, **kwargs)
        assert repr(ours) == "SigmoidFocalLoss(alpha=0.4, gamma=1.0, reduction='mean')"
    else:
        expected = theirs(ref_x, tt)
        assert isinstance(ours, type(theirs))
        assert repr(ours) == repr(theirs)
        assert ours.state_dict().keys() == theirs.state_dict().keys()
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value)
        for name in ("reduction", "ignore_index", "label_smoothing", "delta", "beta"):
            assert getattr(ours, name, None) == getattr(theirs, name, None)
    expected.sum().backward()
    assert_loss_close(loss.detach().numpy(), expected.detach().numpy(), rtol=RTOL)
    assert_grad_close(xt.grad.numpy(), ref_x.grad.numpy(), rtol=RTOL)


def test_module_state_dict_to_and_repr():
    crit = ft.CrossEntropyLoss(weight=torch.ones(10), overwrite_input=True)
    assert repr(crit) == "CrossEntropyLoss(overwrite_input=True)"
    other = ft.CrossEntropyLoss(weight=torch.zeros(10))
    other.load_state_dict(crit.state_dict())
    assert torch.equal(other.weight, torch.ones(10))
    assert other.to(torch.float64).weight.dtype == torch.float64
    bce = ft.BCEWithLogitsLoss(pos_weight=torch.full((3,), 2.0))
    assert list(bce.state_dict()) == list(
        torch.nn.BCEWithLogitsLoss(pos_weight=torch.full((3,), 2.0)).state_dict())
    # In an nn.Sequential-style container, moved with the model.
    model = torch.nn.ModuleDict({"head": torch.nn.Linear(3, 10), "loss": other})
    assert model.to(torch.float32)["loss"].weight.dtype == torch.float32


# ---------------------------------------------------------------------------
# gradcheck

@pytest.mark.filterwarnings("ignore:Input #0 requires gradient and is not a double")
@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_gradcheck_float32_kernels(case, kernel_calls):
    # The kernels are float32: finite differences in float32 with a step and
    # tolerances to match (a wrong gradient is off by O(1), not by 1e-3).
    x, t = _interior(case, *case.make_data((6, 4), 18))
    if case in (L1, HUBER, SMOOTH_L1):   # keep every difference away from the kinks
        x = (t + np.where(np.arange(24).reshape(6, 4) % 2, 1.3, -0.4)).astype(np.float32)
    _, tt, _ = as_tensors(case, x, t, {})
    for reduction in REDUCTIONS:
        xt = torch.tensor(x, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda inp: functional(case)(inp, tt, reduction=reduction), (xt,),
            eps=1e-2 if case in (L1, HUBER, SMOOTH_L1) else 1e-3, atol=2e-3, rtol=1e-2,
            nondet_tol=0.0)
    assert len(kernel_calls) > 0


def _interior(case, x, t):
    """x and t, each array with a range in the spec (BCE's [0, 1]) moved into
    the middle 60% of it: finite differences must not step outside."""
    arrays = {case.spec.inputs[0]: x, case.spec.inputs[1]: t}
    for name, low, high in case.spec.ranges:
        a = arrays[name]
        a = low + (high - low) * (0.2 + 0.6 * (a - a.min()) / max(float(a.max() - a.min()),
                                                                  1e-30))
        arrays[name] = a.astype(np.float32)
    return tuple(arrays[n] for n in case.spec.inputs)


def _target_differentiable(case):
    """PyTorch takes a target that requires grad (soft_margin_loss does not)."""
    x, t = case.make_data((2, 3), 0)
    try:
        case.torch_function()(torch.tensor(x), torch.tensor(t, requires_grad=True))
    except RuntimeError as exc:
        assert "not differentiable with respect to argument 'target'" in str(exc)
        return False
    return True


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_gradcheck_and_gradgradcheck_float64(case, kernel_calls):
    # float64 runs PyTorch's function: the routing keeps its gradients, first
    # and second order, with respect to every differentiable argument.
    x, t = _interior(case, *case.make_data((5, 3), 19))
    if case in (L1, HUBER, SMOOTH_L1):
        x = (t + np.where(np.arange(15).reshape(5, 3) % 2, 1.3, -0.4)).astype(np.float32)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    if not case.elementwise:
        inputs = (xt,)
        tt = torch.as_tensor(t)
        kwargs = {"label_smoothing": 0.1} if case is CROSS_ENTROPY else {"reduction": "sum"}

        def fn(inp):
            return functional(case)(inp, tt, **kwargs)
    else:
        yt = torch.tensor(t, dtype=torch.float64,
                          requires_grad=case is not SIGMOID_FOCAL and _target_differentiable(case))
        inputs = (xt, yt) if yt.requires_grad else (xt,)

        def fn(inp, tgt=yt):
            return functional(case)(inp, tgt, reduction="sum")
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)
    assert len(kernel_calls) == 0


# ---------------------------------------------------------------------------
# The custom operators (the torch.compile route).

OPCHECK_CASES = [
    ("cross_entropy", lambda x, t: (x, t, None, -100, "mean", 0.1, True)),
    ("cross_entropy", lambda x, t: (x, t, torch.linspace(0.5, 2, 5), 1, "none", 0.0, True)),
    ("cross_entropy", lambda x, t: (x, torch.softmax(torch.randn(8, 5), 1), None, -100, "sum",
                                    0.2, True)),
    ("cross_entropy", lambda x, t: (x, t, None, -100, "mean", 0.0, False)),
    ("nll_loss", lambda x, t: (x, t, None, -100, "mean", True)),
    ("nll_loss", lambda x, t: (x, t, torch.linspace(0.5, 2, 5), 1, "none", True)),
    ("nll_loss", lambda x, t: (x, t, torch.linspace(0.5, 2, 5), -100, "sum", False)),
    ("binary_cross_entropy_with_logits",
     lambda x, y: (x, y, torch.linspace(0.5, 2, 5), torch.full((5,), 3.0), "mean", True)),
    ("binary_cross_entropy_with_logits", lambda x, y: (x, y, None, None, "none", True)),
    ("mse_loss", lambda x, y: (x, y, None, "mean", True)),
    ("mse_loss", lambda x, y: (x, y, torch.rand(8, 5), "none", True)),
    ("l1_loss", lambda x, y: (x, y, None, "sum", True)),
    ("huber_loss", lambda x, y: (x, y, torch.rand(8, 5), "mean", 0.5, True)),
    ("smooth_l1_loss", lambda x, y: (x, y, "none", 0.5, True)),
    ("sigmoid_focal_loss", lambda x, y: (x, y, 0.25, 2.0, "mean", True)),
]


@pytest.mark.parametrize("name,make_args", OPCHECK_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPCHECK_CASES)])
def test_opcheck(name, make_args):
    torch.manual_seed(0)
    x = torch.randn(8, 5, requires_grad=True)
    target = torch.randint(0, 5, (8,)) if name in ("cross_entropy", "nll_loss") else \
        torch.rand(8, 5)
    if make_args(x, target)[-1] is False:
        x = x.detach()   # need_grad=False: for inputs that need no gradient
    args = make_args(x, target)
    op = getattr(torch.ops.fastloss, name).default
    result = torch.library.opcheck(op, args)
    assert all(v == "SUCCESS" for v in result.values()), result
    loss, grad = op(*args)
    assert grad.shape == (x.shape if args[-1] else (0,))


def test_operators_are_registered_under_fastloss():
    for name in ("cross_entropy", "nll_loss", *(loss.func for loss in SPEC_LOSSES), "linear_cross_entropy",
                 "linear_cross_entropy_backward"):
        assert hasattr(torch.ops.fastloss, name)


# ---------------------------------------------------------------------------
# import fastloss never imports torch.

def test_import_fastloss_does_not_import_torch():
    code = ("import sys, fastloss, numpy as np; fastloss.cross_entropy("
            "np.zeros((2, 3), np.float32), np.zeros(2, np.int64)); "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# the embedding losses' forms (fastloss/torch/_embedding.py), tested in
# test_torch_cosine_embedding.py and test_torch_triplet_margin.py
EMBEDDING_CLASSES = {"CosineEmbeddingLoss", "TripletMarginLoss"}
EMBEDDING_FUNCS = {"cosine_embedding_loss", "triplet_margin_loss"}


def test_fastloss_torch_exports():
    rows = [loss for loss in _spec.LOSSES if loss.family == _spec.ROWS]   # fastloss/torch/_rows.py
    assert set(ft.__all__) == {"CrossEntropyLoss", "NLLLoss",
                               *(loss.cls for loss in SPEC_LOSSES),
                               *(loss.cls for loss in rows),
                               "LinearCrossEntropyLoss", "functional", "empty_cache",
                               "MarginRankingLoss", "GaussianNLLLoss", *EMBEDDING_CLASSES}
    assert set(FT.__all__) == {"cross_entropy", "nll_loss", *(loss.func for loss in SPEC_LOSSES),
                               *(loss.func for loss in rows), "linear_cross_entropy",
                               "margin_ranking_loss", "gaussian_nll_loss", *EMBEDDING_FUNCS}
    assert ft.functional is FT
    assert fastloss.torch is ft
