"""Every loss x reduction x shape against the float64 reference.

Also: the return types, fused == separate calls (bitwise), inputs left
untouched, and ``out=`` (a separate buffer, and the input itself).
"""

import math

import numpy as np
import pytest

from _support.registry import (
    REDUCTIONS,
    REGISTRY,
    assert_float32_array,
    assert_grad_close,
    assert_loss_close,
    assert_same,
    case_shapes,
    shape_id,
)

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

    inplace = x.copy()
    loss, grad = obj.loss_and_grad(inplace, t, out=inplace)
    assert grad is inplace
    assert_same(loss, expected_loss)
    assert_same(grad, expected_grad)

    inplace = x.copy()
    grad = obj.backward(inplace, t, grad_output=g, out=inplace)
    assert grad is inplace
    assert_same(grad, expected_backward)


def test_registry_names_every_public_loss():
    import fastloss

    assert {c.func_name for c in REGISTRY} == {
        "cross_entropy",
        "binary_cross_entropy_with_logits",
        "mse_loss",
        "l1_loss",
        "huber_loss",
        "smooth_l1_loss",
        "sigmoid_focal_loss",
    }
    # ... and every public loss class: nothing in __all__ escapes the registry.
    assert {c.cls_name for c in REGISTRY} == {
        name for name in fastloss.__all__ if name.endswith("Loss")
    }
    for c in REGISTRY:
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
