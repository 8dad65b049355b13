"""Bad arguments raise TypeError or ValueError naming the argument."""

import numpy as np
import pytest

from _support.registry import CROSS_ENTROPY, ELEMENTWISE, REDUCTIONS, REGISTRY

parametrize_case = pytest.mark.parametrize("case", REGISTRY, ids=repr)
OUT = r"\bout\b"  # 'out', not 'output' or 'grad_output'


def _all_calls(case, x, t, reduction="mean"):
    """Every public entry point of a loss, as zero-argument callables."""
    obj = case.cls(reduction=reduction)
    return [
        lambda: case.func(x, t, reduction=reduction),
        lambda: obj(x, t),
        lambda: obj.loss_and_grad(x, t),
        lambda: obj.backward(x, t),
    ]


# ---------------------------------------------------------------------------
# input and target
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "convert",
    [
        lambda x: x > 0,
        lambda x: x.astype(np.complex64),
        lambda x: x.astype(object),
        lambda x: x.astype(str),
        lambda x: np.full(x.shape, None),
    ],
    ids=["bool", "complex", "object", "str", "none-objects"],
)
@parametrize_case
def test_non_real_input_is_a_type_error(case, convert):
    x, t = case.make_data((4, 5), 0)
    for call in _all_calls(case, convert(x), t):
        with pytest.raises(TypeError, match="input"):
            call()


@pytest.mark.parametrize("case", ELEMENTWISE, ids=repr)
@pytest.mark.parametrize("dtype", [bool, np.complex128, object, str])
def test_non_real_elementwise_target_is_a_type_error(case, dtype):
    x, t = case.make_data((4, 5), 0)
    for call in _all_calls(case, x, (t > 0.5).astype(dtype)):
        with pytest.raises(TypeError, match="target"):
            call()


def test_ragged_input_is_an_error():
    with pytest.raises((TypeError, ValueError), match="input"):
        CROSS_ENTROPY.func([[1.0, 2.0], [3.0]], [0, 1])


@pytest.mark.parametrize(
    "x_shape,t_shape",
    [((6, 5), (5,)), ((6, 5), (7,)), ((6, 5), (6, 1)), ((6, 5), ()), ((6, 5), (1, 6)), ((5,), (1,))],
    ids=str,
)
def test_cross_entropy_target_shape(x_shape, t_shape):
    x = np.zeros(x_shape, np.float32)
    t = np.zeros(t_shape, np.int64)
    for call in _all_calls(CROSS_ENTROPY, x, t):
        with pytest.raises(ValueError, match="target"):
            call()


def test_cross_entropy_scalar_input():
    for call in _all_calls(CROSS_ENTROPY, np.float32(1.0), np.int64(0)):
        with pytest.raises((TypeError, ValueError), match="input"):
            call()


@pytest.mark.parametrize("case", ELEMENTWISE, ids=repr)
@pytest.mark.parametrize(
    "x_shape,t_shape",
    [((6, 5), (5, 6)), ((6, 5), (5,)), ((6, 5), (1, 5)), ((6, 5), (6, 5, 1)), ((7,), ()), ((), (1,))],
    ids=str,
)
def test_elementwise_target_shape_must_match(case, x_shape, t_shape):
    # Unlike PyTorch's mse_loss, fastloss does not broadcast the target.
    x = np.zeros(x_shape, np.float32)
    t = np.zeros(t_shape, np.float32)
    for call in _all_calls(case, x, t):
        with pytest.raises(ValueError, match="target"):
            call()


# ---------------------------------------------------------------------------
# reduction
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["avg", "MEAN", "", None, 1, "elementwise_mean"])
@parametrize_case
def test_unknown_reduction(case, reduction):
    x, t = case.make_data((4, 5), 0)
    with pytest.raises(ValueError, match="reduction"):
        case.func(x, t, reduction=reduction)
    with pytest.raises(ValueError, match="reduction"):
        obj = case.cls(reduction=reduction)
        obj.loss_and_grad(x, t)


# ---------------------------------------------------------------------------
# out
# ---------------------------------------------------------------------------


def _out_calls(case, x, t, out):
    obj = case.cls(reduction="sum")
    return [lambda: obj.loss_and_grad(x, t, out=out), lambda: obj.backward(x, t, out=out)]


@parametrize_case
@pytest.mark.parametrize(
    "make_out",
    [
        lambda s: np.empty((s[0] + 1,) + s[1:], np.float32),
        lambda s: np.empty(s[::-1], np.float32),
        lambda s: np.empty(s[0] * s[1], np.float32),
        lambda s: np.empty(s + (1,), np.float32),
    ],
    ids=["more-rows", "transposed-shape", "flat", "extra-axis"],
)
def test_out_of_wrong_shape(case, make_out):
    x, t = case.make_data((6, 5), 0)
    for call in _out_calls(case, x, t, make_out(x.shape)):
        with pytest.raises((TypeError, ValueError), match=OUT):
            call()


@parametrize_case
@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.complex64])
def test_out_of_wrong_dtype(case, dtype):
    x, t = case.make_data((6, 5), 0)
    for call in _out_calls(case, x, t, np.empty(x.shape, dtype)):
        with pytest.raises(TypeError, match=OUT):
            call()


@parametrize_case
def test_out_not_an_array(case):
    x, t = case.make_data((6, 5), 0)
    for call in _out_calls(case, x, t, np.empty(x.shape, np.float32).tolist()):
        with pytest.raises(TypeError, match=OUT):
            call()


@parametrize_case
@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_out_not_c_contiguous(case, layout):
    x, t = case.make_data((6, 5), 0)
    if layout == "fortran":
        out = np.asfortranarray(np.empty(x.shape, np.float32))
    else:
        out = np.empty((6, 10), np.float32)[:, ::2]
    assert out.shape == x.shape and not out.flags.c_contiguous
    for call in _out_calls(case, x, t, out):
        with pytest.raises((TypeError, ValueError), match=OUT):
            call()


@parametrize_case
def test_out_read_only(case):
    x, t = case.make_data((6, 5), 0)
    out = np.zeros(x.shape, np.float32)
    out.flags.writeable = False
    for call in _out_calls(case, x, t, out):
        with pytest.raises((TypeError, ValueError), match=OUT):
            call()
    assert np.all(out == 0.0)


@parametrize_case
def test_out_is_input_of_another_dtype(case):
    # out=input only works in place when the input already is float32 C-contiguous.
    x, t = case.make_data((6, 5), 0)
    x64 = x.astype(np.float64)
    for call in _out_calls(case, x64, t, x64):
        with pytest.raises(TypeError, match=OUT):
            call()


# ---------------------------------------------------------------------------
# grad_output
# ---------------------------------------------------------------------------


@parametrize_case
@pytest.mark.parametrize("shape", [(5,), (7,), (6, 1), (1, 6), (6, 5, 1)], ids=str)
def test_grad_output_of_wrong_shape_for_none(case, shape):
    x, t = case.make_data((6, 5), 0)
    if shape == case.per_sample_shape(x.shape):
        pytest.skip("that is the right shape for this loss")
    with pytest.raises(ValueError, match="grad_output"):
        case.cls(reduction="none").backward(x, t, grad_output=np.ones(shape, np.float32))


@parametrize_case
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_grad_output_must_be_a_scalar_when_reduced(case, reduction):
    x, t = case.make_data((6, 5), 0)
    per_sample = np.ones(case.per_sample_shape(x.shape), np.float32)
    for g in (per_sample, np.ones(2, np.float32), [1.0, 2.0]):
        with pytest.raises((TypeError, ValueError), match="grad_output"):
            case.cls(reduction=reduction).backward(x, t, grad_output=g)


@parametrize_case
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("bad", ["1.0", None, 1j, np.ones(3, bool)], ids=["str", "None", "complex", "bool"])
def test_grad_output_of_wrong_type(case, reduction, bad):
    x, t = case.make_data((6, 5), 0)
    if reduction == "none" and isinstance(bad, np.ndarray):
        bad = np.ones(case.per_sample_shape(x.shape), bool)
    with pytest.raises((TypeError, ValueError), match="grad_output"):
        case.cls(reduction=reduction).backward(x, t, grad_output=bad)
