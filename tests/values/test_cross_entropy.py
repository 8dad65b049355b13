"""Cross-entropy specifics: ignore_index, target dtypes and ranges, unbatched
input.  (weight and label_smoothing: test_options.py.)
"""

import math
import re

import numpy as np
import pytest
from _support.registry import (
    CROSS_ENTROPY,
    REDUCTIONS,
    assert_float32_array,
    assert_grad_close,
    assert_in_place,
    assert_loss_close,
    assert_same,
)

import fastloss
from fastloss import reference as ref

parametrize_reduction = pytest.mark.parametrize("reduction", REDUCTIONS)


def _data(shape, seed=0):
    return CROSS_ENTROPY.make_data(shape, seed)


# ---------------------------------------------------------------------------
# ignore_index
# ---------------------------------------------------------------------------

IGNORE_CASES = [
    # (shape, ignore_index, explicit?)
    pytest.param((9, 7), -100, False, id="default-9x7"),
    pytest.param((64, 10), -100, True, id="minus100-64x10"),
    pytest.param((9, 7), 2, True, id="in-range-2"),
    pytest.param((9, 7), -3, True, id="negative-3"),
    pytest.param((5, 4), 1000, True, id="far-above-C"),
    pytest.param((256, 1000), -100, False, id="default-256x1000"),
    pytest.param((4, 131072), 5, True, id="in-range-4x131072"),
]


def _with_ignored(shape, ignore_index, seed=1):
    x, t = _data(shape, seed)
    rng = np.random.default_rng(seed)
    ignored = rng.random(shape[0]) < 0.35
    ignored[0] = True  # at least one ignored row ...
    ignored[-1] = False  # ... and at least one kept row
    t[ignored] = ignore_index
    if 0 <= ignore_index < shape[1]:
        ignored = t == ignore_index
    return x, t, ignored


@parametrize_reduction
@pytest.mark.parametrize("shape,ignore_index,explicit", IGNORE_CASES)
def test_ignore_index_matches_reference(shape, ignore_index, explicit, reduction):
    x, t, ignored = _with_ignored(shape, ignore_index)
    kwargs = {"ignore_index": ignore_index} if explicit else {}
    obj = fastloss.CrossEntropyLoss(reduction=reduction, **kwargs)
    loss = fastloss.cross_entropy(x, t, reduction=reduction, **kwargs)
    expected = ref.cross_entropy(x.astype(np.float64), t, reduction=reduction, ignore_index=ignore_index)
    assert_loss_close(loss, expected)
    fused_loss, grad = obj.loss_and_grad(x, t)
    assert_same(fused_loss, loss)
    assert_grad_close(
        grad,
        ref.cross_entropy_grad(x.astype(np.float64), t, reduction=reduction, ignore_index=ignore_index),
    )
    # Ignored rows: zero loss, exactly zero gradient (also through backward).
    assert np.all(grad[ignored] == 0.0)
    g = CROSS_ENTROPY.random_grad_output(reduction, shape, 3)
    assert np.all(obj.backward(x, t, grad_output=g)[ignored] == 0.0)
    if reduction == "none":
        assert np.all(loss[ignored] == 0.0)


@pytest.mark.parametrize("shape", [(1, 3), (6, 5), (300, 40)])
@pytest.mark.parametrize("ignore_index", [-100, 0, -1])
def test_all_rows_ignored(shape, ignore_index):
    x, _ = _data(shape)
    t = np.full(shape[0], ignore_index)
    kwargs = {"ignore_index": ignore_index}
    mean = fastloss.cross_entropy(x, t, **kwargs)
    assert type(mean) is float and math.isnan(mean)
    assert fastloss.cross_entropy(x, t, reduction="sum", **kwargs) == 0.0
    none = fastloss.cross_entropy(x, t, reduction="none", **kwargs)
    assert_float32_array(none, (shape[0],))
    assert np.all(none == 0.0)
    for reduction in REDUCTIONS:
        obj = fastloss.CrossEntropyLoss(reduction=reduction, **kwargs)
        loss, grad = obj.loss_and_grad(x, t)
        # PyTorch's autograd gives a zero gradient even for the NaN mean.
        assert np.all(grad == 0.0), f"{reduction}: {grad}"
        g = 0.5 if reduction != "none" else np.ones(shape[0], np.float32)
        assert np.all(obj.backward(x, t, grad_output=g) == 0.0)


def test_ignore_index_accepts_numpy_integers():
    x, t, _ = _with_ignored((9, 7), 3)
    expected = fastloss.cross_entropy(x, t, ignore_index=3, reduction="none")
    for value in (np.int64(3), np.int8(3), np.uint16(3)):
        assert_same(fastloss.cross_entropy(x, t, ignore_index=value, reduction="none"), expected)


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
)
@parametrize_reduction
def test_integer_target_dtypes(dtype, reduction):
    x, t = _data((33, 17), 4)
    obj = fastloss.CrossEntropyLoss(reduction=reduction)
    expected_loss, expected_grad = obj.loss_and_grad(x, t)
    t_cast = t.astype(dtype)
    loss, grad = obj.loss_and_grad(x, t_cast)
    assert_same(loss, expected_loss)
    assert_same(grad, expected_grad)
    assert_same(fastloss.cross_entropy(x, t_cast, reduction=reduction), expected_loss)
    # Signed targets can carry ignore_index.
    if np.issubdtype(dtype, np.signedinteger):
        t_ign = t.copy()
        t_ign[::3] = -100
        assert_same(
            fastloss.cross_entropy(x, t_ign.astype(dtype), reduction=reduction),
            fastloss.cross_entropy(x, t_ign, reduction=reduction),
        )


def test_non_contiguous_and_list_targets():
    x, t = _data((20, 6), 5)
    expected = fastloss.cross_entropy(x, t, reduction="none")
    wide = np.zeros(40, np.int32)
    wide[::2] = t
    assert_same(fastloss.cross_entropy(x, wide[::2], reduction="none"), expected)
    assert_same(fastloss.cross_entropy(x, t.tolist(), reduction="none"), expected)


@pytest.mark.parametrize(
    "row,value,n_rows,n_classes",
    [(3, 7, 6, 5), (0, 5, 6, 5), (5, -3, 6, 5), (2, -1, 4, 1), (301, 1000, 512, 1000), (3, 200, 6, 5)],
)
def test_target_out_of_range_names_row_and_value(row, value, n_rows, n_classes):
    x, t = _data((n_rows, n_classes), 2)
    t[row] = value
    t_int = t.astype(np.uint8) if value == 200 else t
    for call in (
        lambda: fastloss.cross_entropy(x, t_int),
        lambda: fastloss.cross_entropy(x, t_int, reduction="none"),
        lambda: fastloss.CrossEntropyLoss(reduction="sum").loss_and_grad(x, t_int),
        lambda: fastloss.CrossEntropyLoss().backward(x, t_int),
    ):
        with pytest.raises(ValueError, match="target") as info:
            call()
        message = str(info.value)
        assert re.search(rf"(?<![\d-]){row}(?!\d)", message), message
        assert re.search(rf"(?<![\d]){re.escape(str(value))}(?!\d)", message), message


def test_target_out_of_range_when_ignore_index_moved():
    # With ignore_index=2, the default -100 is an ordinary (out-of-range) value.
    x, t = _data((6, 5), 2)
    t[4] = -100
    with pytest.raises(ValueError, match=r"-100"):
        fastloss.cross_entropy(x, t, ignore_index=2)


def test_out_of_range_target_leaves_input_unchanged():
    x, t = _data((6, 5), 2)
    t[2] = 9
    x0 = x.copy()
    with pytest.raises(ValueError, match="target"):
        fastloss.CrossEntropyLoss().loss_and_grad(x, t, out=np.empty_like(x))
    assert np.array_equal(x, x0)


@pytest.mark.parametrize("target", [np.zeros(6), np.zeros(6, np.float32), [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]])
def test_float_class_target_is_a_type_error(target):
    x, _ = _data((6, 5))
    with pytest.raises(TypeError, match="target"):
        fastloss.cross_entropy(x, target)


# ---------------------------------------------------------------------------
# Unbatched input: (C,) logits and a 0-d target
# ---------------------------------------------------------------------------


@parametrize_reduction
@pytest.mark.parametrize("n_classes", [1, 7, 1023])
@pytest.mark.parametrize(
    "make_target", [int, np.int64, np.int8, np.array], ids=["int", "int64", "int8", "0d-array"]
)
def test_unbatched(n_classes, make_target, reduction):
    x, t = _data((n_classes,), n_classes)
    target = make_target(int(t))
    obj = fastloss.CrossEntropyLoss(reduction=reduction)
    loss = fastloss.cross_entropy(x, target, reduction=reduction)
    expected = ref.cross_entropy(x.astype(np.float64), int(t), reduction=reduction)
    if reduction == "none":
        # As PyTorch: the per-sample loss of one unbatched sample is 0-d.
        assert_float32_array(loss, ())
    else:
        assert type(loss) is float
    assert_loss_close(loss, expected)
    fused, grad = obj.loss_and_grad(x, target)
    assert_same(fused, loss)
    assert_float32_array(grad, (n_classes,))
    assert_grad_close(grad, ref.cross_entropy_grad(x.astype(np.float64), int(t), reduction=reduction))
    g = np.float32(0.37) if reduction != "none" else np.array(-1.5, np.float32)
    assert_grad_close(
        obj.backward(x, target, grad_output=g),
        ref.cross_entropy_grad(x.astype(np.float64), int(t), reduction=reduction, grad_output=float(g)),
    )


def test_unbatched_matches_batch_of_one():
    x, t = _data((31,), 3)
    loss, grad = fastloss.CrossEntropyLoss(reduction="sum").loss_and_grad(x, t)
    loss1, grad1 = fastloss.CrossEntropyLoss(reduction="sum").loss_and_grad(x[None, :], np.array([t]))
    assert_same(loss, loss1)
    assert_same(grad, grad1[0])


def test_unbatched_ignored_target():
    x, _ = _data((5,))
    assert math.isnan(fastloss.cross_entropy(x, -100))
    assert fastloss.cross_entropy(x, -100, reduction="sum") == 0.0
    assert np.all(fastloss.CrossEntropyLoss().loss_and_grad(x, -100)[1] == 0.0)


@pytest.mark.parametrize("target", [np.zeros(1, np.int64), np.zeros((1, 1), np.int64), 1.0])
def test_unbatched_target_must_be_an_integer_scalar(target):
    x, _ = _data((5,))
    with pytest.raises((TypeError, ValueError), match="target"):
        fastloss.cross_entropy(x, target)


@parametrize_reduction
@pytest.mark.parametrize("shape", [(9, 7), (256, 1000)], ids=str)
def test_in_place_with_ignored_rows(shape, reduction):
    x, t, ignored = _with_ignored(shape, -100)
    obj = fastloss.CrossEntropyLoss(reduction=reduction)
    expected_loss, expected_grad = obj.loss_and_grad(x, t)
    grad = assert_in_place(obj, x, t, expected_loss, expected_grad)
    assert np.all(grad[ignored] == 0.0)


def test_uint64_target_beyond_int64_is_out_of_range():
    x, _ = _data((3, 4))
    t = np.array([0, 2**63 + 5, 1], np.uint64)
    with pytest.raises(ValueError, match=r"target\[1\]"):
        fastloss.cross_entropy(x, t)
