"""fastloss against PyTorch itself: losses, autograd gradients, ignore_index,
unbatched input, the legacy size_average/reduce arguments, the loss classes.

PyTorch runs in float32 here, on the very same float32 arrays, so both sides
carry float32 rounding; the tolerances are those of the reference tests.
"""

import itertools
import warnings

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
    assert_same,
    shape_id,
    torch_loss_and_grad,
)

import fastloss

torch = pytest.importorskip("torch")

TORCH_SHAPES = {
    CROSS_ENTROPY: [(0, 5), (1, 1), (7, 3), (3, 33), (64, 10), (256, 1000)],
    NLL: [(0, 5), (1, 1), (7, 3), (3, 33), (64, 10), (256, 1000)],
    **{case: [(0, 5), (13,), (7, 3), (4, 5, 6), (64, 10), (256, 1000)] for case in ELEMENTWISE},
}
CASE_SHAPES = [
    pytest.param(case, shape, id=f"{case.name}-{shape_id(shape)}")
    for case in REGISTRY
    for shape in TORCH_SHAPES[case]
]

# float32 on both sides: allow twice the reference tolerance.
RTOL = 2e-5


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case,shape", CASE_SHAPES)
def test_matches_torch(case, shape, reduction):
    x, t = case.make_data(shape, 17)
    g = case.random_grad_output(reduction, shape, 17)
    expected_loss, expected_grad = torch_loss_and_grad(case, x, t, reduction, g, dtype="float32")
    obj = case.cls(reduction=reduction)
    loss = case.func(x, t, reduction=reduction)
    assert np.shape(loss) == expected_loss.shape
    assert_loss_close(loss, expected_loss, rtol=RTOL)
    assert_grad_close(obj.backward(x, t, grad_output=g), expected_grad, rtol=RTOL)
    # loss_and_grad is the gradient of the loss (of the sum of losses for 'none').
    _, expected_fused_grad = torch_loss_and_grad(case, x, t, reduction, 1.0, dtype="float32")
    assert_grad_close(obj.loss_and_grad(x, t)[1], expected_fused_grad, rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 2, -7])
@pytest.mark.parametrize("shape", [(9, 7), (64, 10), (2, 1023)], ids=shape_id)
def test_cross_entropy_ignore_index_matches_torch(shape, ignore_index, reduction):
    x, t = CROSS_ENTROPY.make_data(shape, 5)
    t[np.random.default_rng(5).random(shape[0]) < 0.4] = ignore_index
    g = CROSS_ENTROPY.random_grad_output(reduction, shape, 5)
    expected_loss, expected_grad = torch_loss_and_grad(
        CROSS_ENTROPY, x, t, reduction, g, dtype="float32", ignore_index=ignore_index
    )
    obj = fastloss.CrossEntropyLoss(ignore_index=ignore_index, reduction=reduction)
    assert_loss_close(
        fastloss.cross_entropy(x, t, ignore_index=ignore_index, reduction=reduction),
        expected_loss,
        rtol=RTOL,
    )
    assert_grad_close(obj.backward(x, t, grad_output=g), expected_grad, rtol=RTOL)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_all_ignored_matches_torch(reduction):
    x, _ = CROSS_ENTROPY.make_data((6, 5), 1)
    t = np.full(6, -100)
    expected_loss, expected_grad = torch_loss_and_grad(CROSS_ENTROPY, x, t, reduction, 1.0, dtype="float32")
    loss, grad = fastloss.CrossEntropyLoss(reduction=reduction).loss_and_grad(x, t)
    assert_loss_close(loss, expected_loss)
    assert np.array_equal(grad, expected_grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_unbatched_matches_torch(reduction):
    x, t = CROSS_ENTROPY.make_data((11,), 2)
    g = np.float32(0.37) if reduction != "none" else np.array(-0.8, np.float32)
    expected_loss, expected_grad = torch_loss_and_grad(CROSS_ENTROPY, x, t, reduction, g, dtype="float32")
    loss = fastloss.cross_entropy(x, t, reduction=reduction)
    assert np.shape(loss) == expected_loss.shape
    assert_loss_close(loss, expected_loss)
    grad = fastloss.CrossEntropyLoss(reduction=reduction).backward(x, t, grad_output=g)
    assert_grad_close(grad, expected_grad)


EDGE_INPUTS = [
    pytest.param(CROSS_ENTROPY, [[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], [1, 2], id="ce-huge"),
    pytest.param(CROSS_ENTROPY, [[0.0, -np.inf, 1.0], [-np.inf, -np.inf, 3.0]], [2, 2], id="ce-minus-inf"),
    pytest.param(CROSS_ENTROPY, [[0.0, np.nan, 1.0], [1.0, 2.0, 3.0]], [0, 1], id="ce-nan"),
    pytest.param(CROSS_ENTROPY, [[2.0], [-1e4], [1e4]], [0, 0, 0], id="ce-one-class"),
    pytest.param(BCE_WITH_LOGITS, [1e4, -1e4, 1e4, -1e4, 0.0], [0.0, 1.0, 1.0, 0.0, 0.5], id="bce-huge"),
    pytest.param(BCE_WITH_LOGITS, [np.nan, 1.0], [1.0, 0.0], id="bce-nan"),
    pytest.param(MSE, [np.nan, 1.0, 1e4], [1.0, np.nan, -1e4], id="mse-nan"),
    # (L1 with NaN: test_l1_nan_gradient_differs_from_torch)
    pytest.param(L1, [3.0, 1.0, 1e4, 2.5, -0.0], [1.0, -2.0, -1e4, 2.5, 0.0], id="l1-huge-tie"),
    pytest.param(HUBER, [np.nan, 1.0, 1e4, 2.0, 0.5], [1.0, np.nan, -1e4, 1.0, 0.5],
                 id="huber-nan-kink"),
    pytest.param(SMOOTH_L1, [np.nan, 1.0, 1e4, 2.0, 0.5], [1.0, np.nan, -1e4, 1.0, 0.5],
                 id="smooth_l1-nan-kink"),
    pytest.param(SIGMOID_FOCAL, [1e4, -1e4, 1e4, -1e4, 0.0, 20.0], [0.0, 1.0, 1.0, 0.0, 0.5, 1.0],
                 id="focal-huge"),
    pytest.param(SIGMOID_FOCAL, [np.nan, 1.0], [1.0, 0.0], id="focal-nan"),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case,x,t", EDGE_INPUTS)
def test_edge_values_match_torch(case, x, t, reduction):
    x = np.asarray(x, np.float32)
    t = np.asarray(t, np.float32 if case.elementwise else np.int64)
    expected_loss, expected_grad = torch_loss_and_grad(case, x, t, reduction, 1.0, dtype="float32")
    loss, grad = case.cls(reduction=reduction).loss_and_grad(x, t)
    assert_loss_close(loss, expected_loss)
    assert_grad_close(grad, expected_grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "case,options", [(L1, {}), (SMOOTH_L1, {"beta": 0.0})], ids=["l1", "smooth_l1-beta0"]
)
def test_l1_nan_gradient_differs_from_torch(case, options, reduction):
    # PyTorch 2.13's sign(NaN) is 0, so its L1 gradient at a NaN difference is
    # 0; fastloss keeps NaN in, NaN out (README).  Everything else matches.
    x = np.array([np.nan, 1.0, 0.0, -2.0, 1e4], np.float32)
    t = np.array([1.0, np.nan, 0.0, 3.0, -1e4], np.float32)
    expected_loss, expected_grad = torch_loss_and_grad(
        case, x, t, reduction, 1.0, dtype="float32", **options
    )
    loss, grad = case.cls(reduction=reduction, **options).loss_and_grad(x, t)
    assert_loss_close(loss, expected_loss)
    assert np.isnan(grad[:2]).all() and np.array_equal(expected_grad[:2], [0.0, 0.0])
    assert_grad_close(grad[2:], expected_grad[2:])


# ---------------------------------------------------------------------------
# Legacy size_average / reduce
# ---------------------------------------------------------------------------

LEGACY = [
    (size_average, reduce)
    for size_average, reduce in itertools.product([None, True, False], repeat=2)
    if (size_average, reduce) != (None, None)
]
LEGACY_CASES = [case for case in REGISTRY if case.has_legacy_args]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("size_average,reduce", LEGACY)
@pytest.mark.parametrize("case", LEGACY_CASES, ids=repr)
def test_legacy_size_average_and_reduce_match_torch(case, size_average, reduce, reduction):
    x, t = case.make_data((7, 3), 8)
    legacy = {"size_average": size_average, "reduce": reduce}
    # torch's mapping: None means True; both -> mean, reduce only -> sum,
    # reduce=False -> none; they override `reduction`.
    expected_loss, expected_grad = torch_loss_and_grad(
        case, x, t, reduction, 1.0, dtype="float32", **legacy
    )
    loss = case.func(x, t, reduction=reduction, **legacy)
    if expected_loss.ndim == 0:
        assert type(loss) is float
    else:
        assert isinstance(loss, np.ndarray) and loss.shape == expected_loss.shape
    assert_loss_close(loss, expected_loss)

    # The classes map the same way (checked against torch.nn's classes).
    torch_obj = getattr(torch.nn, case.cls_name)(reduction=reduction, **legacy)
    obj = case.cls(reduction=reduction, **legacy)
    assert obj.reduction == torch_obj.reduction
    assert_same(obj(x, t), loss)
    assert_grad_close(obj.loss_and_grad(x, t)[1], expected_grad)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("case", LEGACY_CASES, ids=repr)
def test_legacy_arguments_warn_like_torch(case):
    x, t = case.make_data((7, 3), 8)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        case.func(x, t, size_average=False)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        torch_loss_and_grad(case, x, t, "mean", 1.0, dtype="float32", size_average=False)
    assert len(theirs) >= 1
    assert any("deprecated" in str(w.message) for w in ours), [str(w.message) for w in ours]


@pytest.mark.parametrize("case", [case for case in REGISTRY if not case.has_legacy_args], ids=repr)
def test_no_legacy_arguments_where_torch_has_none(case):
    # huber_loss and sigmoid_focal_loss never had size_average/reduce: passing
    # them is a TypeError in torch (torchvision), and so in fastloss.
    import inspect

    x, t = case.make_data((7, 3), 8)
    for legacy in ({"size_average": False}, {"reduce": False}):
        with pytest.raises(TypeError, match=next(iter(legacy))):
            case.func(x, t, **legacy)
        with pytest.raises(TypeError, match=next(iter(legacy))):
            case.cls(**legacy)
        with pytest.raises(TypeError, match=next(iter(legacy))):
            torch_loss_and_grad(case, x, t, "mean", **legacy)
    assert not {"size_average", "reduce"} & set(inspect.signature(case.torch_function()).parameters)


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_default_reduction_matches_torch(case):
    import inspect

    params = inspect.signature(case.torch_function()).parameters
    assert params["reduction"].default == case.default_reduction
    if case.in_torch:
        assert getattr(torch.nn, case.cls_name)().reduction == case.default_reduction


# ---------------------------------------------------------------------------
# Classes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", [case for case in REGISTRY if case.in_torch], ids=repr)
def test_class_matches_torch_module(case, reduction):
    x, t = case.make_data((64, 10), 12)
    kwargs = {} if case.elementwise else {"ignore_index": 3}
    if not case.elementwise:
        t[::4] = 3
    module = getattr(torch.nn, case.cls_name)(reduction=reduction, **kwargs)
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.as_tensor(t)
    expected = module(xt, tt)
    expected.sum().backward()
    obj = case.cls(reduction=reduction, **kwargs)
    loss, grad = obj.loss_and_grad(x, t)
    assert_loss_close(loss, expected.detach().numpy(), rtol=RTOL)
    assert_grad_close(grad, xt.grad.numpy(), rtol=RTOL)
    assert obj.reduction == module.reduction
    assert_same(obj(x, t), case.func(x, t, reduction=reduction, **kwargs))
    assert_same(obj.forward(x, t), loss)
