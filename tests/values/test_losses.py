"""Every loss x reduction x shape against the float64 reference.

Also: the return types, fused == separate calls (bitwise), inputs left
untouched, ``out=`` (a separate buffer, and the input itself), and the
registry itself: every loss declared in fastloss/_spec/ has test data, a
reference and a PyTorch function.
"""

import dataclasses
import math

import numpy as np
import pytest
from _support.loss_data import DATA
from _support.registry import (
    MISSING_DATA,
    MSE,
    OWN_TESTS,
    REDUCTIONS,
    REGISTRY,
    UNKNOWN_DATA,
    assert_float32_array,
    assert_grad_close,
    assert_in_place,
    assert_loss_close,
    assert_same,
    build,
    case_shapes,
    shape_id,
)

from fastloss import _spec

CASE_SHAPES = [
    pytest.param(case, shape, id=f"{case.name}-{shape_id(shape)}")
    for case, shape in case_shapes()
]

parametrize_case_shape = pytest.mark.parametrize("case,shape", CASE_SHAPES)
parametrize_reduction = pytest.mark.parametrize("reduction", REDUCTIONS)


def _seed(shape):
    return 1 + sum(shape) % 97


def _check_loss_type(case, loss, reduction, input_shape):
    if reduction == "none":
        assert_float32_array(loss, case.per_sample_shape(input_shape))
    else:
        assert type(loss) is float, type(loss)


@parametrize_reduction
@parametrize_case_shape
def test_loss_matches_reference(case, shape, reduction):
    x, t = case.make_data(shape, _seed(shape))
    loss = case.func(x, t, reduction=reduction)
    _check_loss_type(case, loss, reduction, shape)
    assert_loss_close(loss, case.ref(x, t, reduction))


@parametrize_reduction
@parametrize_case_shape
def test_loss_and_grad_matches_reference(case, shape, reduction):
    x, t = case.make_data(shape, _seed(shape))
    loss, grad = case.cls(reduction=reduction).loss_and_grad(x, t)
    _check_loss_type(case, loss, reduction, shape)
    assert_float32_array(grad, shape)
    assert grad.flags.c_contiguous
    assert_loss_close(loss, case.ref(x, t, reduction))
    # For 'none' the fused gradient is that of the sum of the per-sample losses.
    assert_grad_close(grad, case.ref_gradient(x, t, reduction, grad_output=1.0))


@parametrize_reduction
@parametrize_case_shape
def test_backward_with_grad_output_matches_reference(case, shape, reduction):
    x, t = case.make_data(shape, _seed(shape))
    g = case.random_grad_output(reduction, shape, _seed(shape))
    grad = case.cls(reduction=reduction).backward(x, t, grad_output=g)
    assert_float32_array(grad, shape)
    assert_grad_close(grad, case.ref_gradient(x, t, reduction, grad_output=g))


@parametrize_reduction
@parametrize_case_shape
def test_fused_equals_separate_calls(case, shape, reduction):
    x, t = case.make_data(shape, _seed(shape))
    obj = case.cls(reduction=reduction)
    loss, grad = obj.loss_and_grad(x, t)
    assert_same(loss, obj(x, t))
    assert_same(loss, obj.forward(x, t))
    assert_same(loss, case.func(x, t, reduction=reduction))
    assert_same(grad, obj.backward(x, t))
    if reduction == "none":
        ones = np.ones(case.per_sample_shape(shape), np.float32)
        assert_same(grad, obj.backward(x, t, grad_output=ones))
    else:
        assert_same(grad, obj.backward(x, t, grad_output=1.0))
        assert_same(grad, obj.backward(x, t, grad_output=np.float32(1.0)))


@parametrize_reduction
@parametrize_case_shape
def test_inputs_are_not_modified(case, shape, reduction):
    x, t = case.make_data(shape, _seed(shape))
    g = case.random_grad_output(reduction, shape, _seed(shape))
    x0, t0, g0 = x.copy(), np.copy(t), np.copy(g)
    obj = case.cls(reduction=reduction)
    calls = [
        lambda: case.func(x, t, reduction=reduction),
        lambda: obj(x, t),
        lambda: obj.loss_and_grad(x, t),
        lambda: obj.backward(x, t, grad_output=g),
        lambda: obj.loss_and_grad(x, t, out=np.empty_like(x)),
        lambda: obj.backward(x, t, grad_output=g, out=np.empty_like(x)),
    ]
    for call in calls:
        call()
        assert np.array_equal(x, x0, equal_nan=True)
        assert np.array_equal(t, t0, equal_nan=True)
        assert np.array_equal(g, g0)


@parametrize_reduction
@parametrize_case_shape
def test_out_buffer_is_filled_and_returned(case, shape, reduction):
    x, t = case.make_data(shape, _seed(shape))
    g = case.random_grad_output(reduction, shape, _seed(shape))
    obj = case.cls(reduction=reduction)
    expected_loss, expected_grad = obj.loss_and_grad(x, t)
    expected_backward = obj.backward(x, t, grad_output=g)

    out = np.full(shape, np.nan, np.float32)
    loss, grad = obj.loss_and_grad(x, t, out=out)
    assert grad is out
    assert out.size == 0 or np.shares_memory(grad, out)
    assert_same(loss, expected_loss)
    assert_same(grad, expected_grad)

    out = np.full(shape, np.nan, np.float32)
    grad = obj.backward(x, t, grad_output=g, out=out)
    assert grad is out
    assert_same(grad, expected_backward)


@parametrize_reduction
@parametrize_case_shape
def test_out_is_input_computes_in_place(case, shape, reduction):
    x, t = case.make_data(shape, _seed(shape))
    g = case.random_grad_output(reduction, shape, _seed(shape))
    obj = case.cls(reduction=reduction)
    expected_loss, expected_grad = obj.loss_and_grad(x, t)
    expected_backward = obj.backward(x, t, grad_output=g)

    assert_in_place(obj, x, t, expected_loss, expected_grad)

    inplace = x.copy()
    grad = obj.backward(inplace, t, grad_output=g, out=inplace)
    assert grad is inplace
    assert_same(grad, expected_backward)


def test_every_declared_loss_has_test_data():
    # The registry is the spec's losses that have a row in
    # tests/_support/loss_data.py: a declared loss without one would run in
    # no registry-driven test.
    assert not MISSING_DATA, (
        f"declared in fastloss/_spec/ but without test data: {', '.join(MISSING_DATA)}; "
        "add a row for each to DATA in tests/_support/loss_data.py")
    assert not UNKNOWN_DATA, (
        f"rows of tests/_support/loss_data.py that name no declared loss: "
        f"{', '.join(UNKNOWN_DATA)}")
    assert [c.name for c in REGISTRY] == [loss.name for loss in _spec.LOSSES
                                          if loss.family not in OWN_TESTS]


def test_a_declared_loss_without_test_data_is_left_out_and_named():
    # What the test above relies on: the registry is built from whatever the
    # spec declares (here one loss more, and a row for no loss).
    new = dataclasses.replace(MSE.spec, name="new_loss", func="new_loss", cls="NewLoss")
    covered = tuple(loss for loss in _spec.LOSSES if loss.name in DATA)
    data = dict(DATA, stale_row=DATA["mse"])
    cases, missing, unknown = build(covered + (new,), data)
    assert [c.name for c in cases] == [loss.name for loss in covered]
    assert missing == ("new_loss",) and unknown == ("stale_row",)
    cases, missing, unknown = build(covered + (new,), dict(DATA, new_loss=DATA["mse"]))
    assert cases[-1].spec is new and cases[-1].func_name == "new_loss" and not missing


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_every_loss_has_a_reference_and_a_torch_function(case):
    # The float64 reference by name (<func> and <func>_grad), and PyTorch's
    # function: torch.nn.functional's, or a formula in loss_data.py.
    assert callable(case.ref_loss) and callable(case.ref_grad)
    assert case.in_torch or case.torch_func is not None, (
        f"{case.name}: {case.spec.torch} is not in torch.nn.functional; give its formula "
        "in torch ops as torch_func in tests/_support/loss_data.py")


def test_registry_names_every_public_loss():
    import fastloss

    EMBEDDING_CLASSES = {"CosineEmbeddingLoss", "TripletMarginLoss"}

    # The losses of fastloss 0.1 stay public (a loss added to the spec joins them) ...
    assert {c.func_name for c in REGISTRY} >= {
        "cross_entropy",
        "binary_cross_entropy_with_logits",
        "mse_loss",
        "l1_loss",
        "huber_loss",
        "smooth_l1_loss",
        "sigmoid_focal_loss",
    }
    # ... and every public loss class: nothing in __all__ escapes the registry
    # but the linear cross-entropy, a loop around cross-entropy's kernel
    # (fastloss/_linear_ce.py, tests/values/test_linear_cross_entropy.py),
    # the families with tests of their own (registry.OWN_TESTS), the pairwise
    # family, three arrays and a gradient per float input, which the
    # registry's (input, target) cases cannot express (fastloss/_pairwise.py;
    # tests/values/test_margin_ranking_loss.py, test_gaussian_nll_loss.py), and
    # the embedding losses, whose several differentiable inputs the registry's
    # (input, target) calls cannot express either (fastloss/_embedding.py,
    # tests/values/test_cosine_embedding_loss.py, test_triplet_margin_loss.py).
    own = {loss.cls for loss in _spec.LOSSES if loss.family in OWN_TESTS}
    pairwise = {"MarginRankingLoss", "GaussianNLLLoss"}
    assert {c.cls_name for c in REGISTRY} | {"LinearCrossEntropyLoss"} | own | pairwise \
        | EMBEDDING_CLASSES == {
        name for name in fastloss.__all__ if name.endswith("Loss")
    }
    for c in REGISTRY:
        assert c.func_name in fastloss.__all__ and c.cls_name in fastloss.__all__
        assert callable(getattr(fastloss, c.func_name))
        assert isinstance(getattr(fastloss, c.cls_name), type)


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_default_reduction(case):
    # 'mean' everywhere but the focal loss, whose torchvision default is 'none'.
    import inspect

    x, t = case.make_data((6, 5), 2)
    assert case.cls().reduction == case.default_reduction
    assert_same(case.func(x, t), case.func(x, t, reduction=case.default_reduction))
    assert_same(case.cls()(x, t), case.func(x, t, reduction=case.default_reduction))
    for fn in (case.func, case.cls, case.ref_loss):
        assert inspect.signature(fn).parameters["reduction"].default == case.default_reduction


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_empty_batch(case):
    x, t = case.make_data((0, 5), 0)
    mean = case.func(x, t, reduction="mean")
    assert type(mean) is float and math.isnan(mean)
    total = case.func(x, t, reduction="sum")
    assert type(total) is float and total == 0.0
    assert_float32_array(case.func(x, t, reduction="none"), case.per_sample_shape((0, 5)))
    for reduction in REDUCTIONS:
        obj = case.cls(reduction=reduction)
        loss, grad = obj.loss_and_grad(x, t)
        assert_same(loss, case.func(x, t, reduction=reduction))
        assert_float32_array(grad, (0, 5))
        assert_float32_array(obj.backward(x, t), (0, 5))
