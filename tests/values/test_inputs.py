"""Array-likes of any real dtype and layout give the same bits as the
C-contiguous float32 array they convert to; edge values (huge logits, -inf,
one class, NaN) give what the reference and PyTorch give.
"""

import numpy as np
import pytest
from _support.registry import (
    BCE_WITH_LOGITS,
    CROSS_ENTROPY,
    ELEMENTWISE,
    REDUCTIONS,
    REGISTRY,
    SIGMOID_FOCAL,
    assert_grad_close,
    assert_loss_close,
    assert_same,
)

parametrize_case = pytest.mark.parametrize("case", REGISTRY, ids=repr)
parametrize_reduction = pytest.mark.parametrize("reduction", REDUCTIONS)


def _results(case, x, t, reduction):
    """Loss, fused (loss, grad) and backward with a grad_output, for comparing bitwise."""
    obj = case.cls(reduction=reduction)
    g = case.random_grad_output(reduction, np.shape(x), 9)
    loss, grad = obj.loss_and_grad(x, t)
    return [case.func(x, t, reduction=reduction), loss, grad, obj.backward(x, t, grad_output=g)]


def _assert_all_same(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert_same(a, b)


# ---------------------------------------------------------------------------
# Input dtype and layout
# ---------------------------------------------------------------------------


def _integer_valued(case, shape, seed):
    x, t = case.make_data(shape, seed)
    return np.round(x).astype(np.float32), t


INPUT_VARIANTS = {
    "float64": lambda x: x.astype(np.float64),
    "fortran": np.asfortranarray,
    "strided": lambda x: np.repeat(x, 2, axis=-1)[..., ::2],
    "reversed": lambda x: np.ascontiguousarray(x[::-1])[::-1],
    "list": lambda x: x.tolist(),
    "readonly": lambda x: _readonly(x),
}


def _readonly(x):
    x = x.copy()
    x.flags.writeable = False
    return x


@parametrize_reduction
@pytest.mark.parametrize("variant", INPUT_VARIANTS)
@pytest.mark.parametrize("shape", [(7, 3), (5, 17), (64, 10)], ids=str)
@parametrize_case
def test_input_layouts_and_dtypes(case, shape, variant, reduction):
    x, t = case.make_data(shape, 3)
    expected = _results(case, x, t, reduction)
    _assert_all_same(_results(case, INPUT_VARIANTS[variant](x), t, reduction), expected)


@parametrize_reduction
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.float16, np.float64])
@parametrize_case
def test_integer_valued_input_of_other_dtypes(case, dtype, reduction):
    x, t = _integer_valued(case, (9, 7), 4)
    if np.issubdtype(dtype, np.unsignedinteger):
        x = np.abs(x)
    expected = _results(case, x, t, reduction)
    _assert_all_same(_results(case, x.astype(dtype), t, reduction), expected)


@pytest.mark.parametrize("case", ELEMENTWISE, ids=repr)
@pytest.mark.parametrize(
    "variant",
    ["float64", "fortran", "strided", "list", "int"],
)
@parametrize_reduction
def test_elementwise_target_layouts_and_dtypes(case, variant, reduction):
    x, t = case.make_data((6, 11), 5)
    if variant == "int":
        t = np.round(t).astype(np.float32)
        other = t.astype(np.int16)
    elif variant == "float64":
        other = t.astype(np.float64)
    elif variant == "fortran":
        other = np.asfortranarray(t)
    elif variant == "strided":
        other = np.repeat(t, 3, axis=0)[::3]
    else:
        other = t.tolist()
    expected = _results(case, x, t, reduction)
    _assert_all_same(_results(case, x, other, reduction), expected)


@pytest.mark.parametrize("shape", [(), (1,)], ids=["0d", "1"])
@pytest.mark.parametrize("case", ELEMENTWISE, ids=repr)
@parametrize_reduction
def test_elementwise_single_element(case, shape, reduction):
    x, t = case.make_data(shape, 6)
    x, t = np.asarray(x, np.float32), np.asarray(t, np.float32)
    loss, grad = case.cls(reduction=reduction).loss_and_grad(x, t)
    assert_loss_close(loss, case.ref(x, t, reduction))
    assert grad.shape == shape
    assert_grad_close(grad, case.ref_gradient(x, t, reduction))
    # Other dtypes, and Python scalars for the 0-d case, keep the shape.
    variants = [(x.astype(np.float64), t), (x, t.astype(np.float64))]
    if shape == ():
        variants += [(float(x), float(t)), (x, float(t)), (float(x), t)]
    expected = _results(case, x, t, reduction)
    for xv, tv in variants:
        _assert_all_same(_results(case, xv, tv, reduction), expected)


# ---------------------------------------------------------------------------
# Edge values
# ---------------------------------------------------------------------------


def _check_against_reference(case, x, t, reduction, finite=True):
    obj = case.cls(reduction=reduction)
    loss, grad = obj.loss_and_grad(x, t)
    g = case.random_grad_output(reduction, x.shape, 2)
    back = obj.backward(x, t, grad_output=g)
    if finite:
        assert np.all(np.isfinite(loss))
        assert np.all(np.isfinite(grad)) and np.all(np.isfinite(back))
    assert_loss_close(loss, case.ref(x, t, reduction))
    assert_grad_close(grad, case.ref_gradient(x, t, reduction))
    assert_grad_close(back, case.ref_gradient(x, t, reduction, grad_output=g))


@parametrize_reduction
@pytest.mark.parametrize("shape", [(7, 3), (5, 17), (3, 33), (4, 1000), (2, 1023)], ids=str)
@pytest.mark.parametrize("pattern", ["signs", "scaled", "tie", "one-hot"])
def test_cross_entropy_huge_logits(shape, pattern, reduction):
    rng = np.random.default_rng(sum(shape))
    x, t = CROSS_ENTROPY.make_data(shape, 1)
    if pattern == "signs":  # every logit +-1e4
        x = rng.choice(np.float32([-1e4, 1e4]), size=shape)
    elif pattern == "scaled":  # spread over [-1e4, 1e4]
        x = rng.uniform(-1e4, 1e4, size=shape).astype(np.float32)
    elif pattern == "tie":  # every logit 1e4 but one -1e4 per row
        x = np.full(shape, 1e4, np.float32)
        x[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = -1e4
    else:  # one 1e4 per row, the rest -1e4, the target often elsewhere
        x = np.full(shape, -1e4, np.float32)
        x[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 1e4
    _check_against_reference(CROSS_ENTROPY, x, t, reduction)


@parametrize_reduction
@pytest.mark.parametrize("shape", [(9, 7), (3, 33), (2, 1023), (16, 64)], ids=str)
def test_cross_entropy_minus_inf_entries(shape, reduction):
    rng = np.random.default_rng(sum(shape))
    x, t = CROSS_ENTROPY.make_data(shape, 2)
    mask = rng.random(shape) < 0.4
    mask[np.arange(shape[0]), t] = False  # never the target ...
    x[mask] = -np.inf
    x[0, :] = -np.inf  # ... and one row with every entry but the target at -inf
    x[0, t[0]] = 0.5
    _check_against_reference(CROSS_ENTROPY, x, t, reduction)


@parametrize_reduction
@pytest.mark.parametrize("n_rows", [1, 5, 1000])
def test_cross_entropy_single_class(n_rows, reduction):
    rng = np.random.default_rng(n_rows)
    x = rng.choice(np.float32([-1e4, -3.5, 0.0, 2.0, 1e4]), size=(n_rows, 1))
    t = np.zeros(n_rows, np.int64)
    obj = CROSS_ENTROPY.cls(reduction=reduction)
    loss, grad = obj.loss_and_grad(x, t)
    # log_softmax of one class is 0: zero loss, zero gradient.
    assert np.all(np.asarray(loss) == 0.0)
    assert np.all(grad == 0.0)


@parametrize_reduction
@pytest.mark.parametrize("shape", [(13,), (4, 5, 6), (3, 1000)], ids=str)
@pytest.mark.parametrize("case", [BCE_WITH_LOGITS, SIGMOID_FOCAL], ids=repr)
def test_logit_losses_huge_logits(case, shape, reduction):
    rng = np.random.default_rng(sum(shape))
    x = rng.choice(np.float32([-1e4, -50.0, -20.0, 20.0, 50.0, 1e4]), size=shape)
    # Hard labels: with a soft label y near 1, x - x*y cancels in float32
    # whatever the kernel does, so only 0/1 (and 0.5) targets are exact.
    y = rng.choice(np.float32([0.0, 0.5, 1.0]), size=shape)
    _check_against_reference(case, x, y, reduction)


@parametrize_reduction
@pytest.mark.parametrize("shape", [(9, 7), (5, 17), (64, 10), (4, 1000)], ids=str)
def test_cross_entropy_nan_propagates(shape, reduction):
    x, t = CROSS_ENTROPY.make_data(shape, 3)
    x[2, shape[1] // 2] = np.nan
    obj = CROSS_ENTROPY.cls(reduction=reduction)
    loss, grad = obj.loss_and_grad(x, t)
    if reduction == "none":
        assert np.isnan(loss[2]) and np.all(np.isfinite(np.delete(loss, 2)))
    else:
        assert np.isnan(loss)
    assert np.all(np.isnan(grad[2]))
    assert np.all(np.isfinite(np.delete(grad, 2, axis=0)))
    assert_loss_close(loss, CROSS_ENTROPY.ref(x, t, reduction))
    assert_grad_close(grad, CROSS_ENTROPY.ref_gradient(x, t, reduction))


@parametrize_reduction
@pytest.mark.parametrize("where", ["input", "target"])
@pytest.mark.parametrize("case", ELEMENTWISE, ids=repr)
def test_elementwise_nan_propagates(case, where, reduction):
    x, t = case.make_data((5, 17), 3)
    (x if where == "input" else t)[3, 16] = np.nan
    loss, grad = case.cls(reduction=reduction).loss_and_grad(x, t)
    if reduction == "none":
        assert np.isnan(loss[3, 16])
        assert np.isnan(loss).sum() == 1
    else:
        assert np.isnan(loss)
    assert np.isnan(grad[3, 16]) and np.isnan(grad).sum() == 1
    assert_loss_close(loss, case.ref(x, t, reduction))
    assert_grad_close(grad, case.ref_gradient(x, t, reduction))


# ---------------------------------------------------------------------------
# No hidden copies
# ---------------------------------------------------------------------------


@parametrize_reduction
@parametrize_case
def test_float32_c_contiguous_input_is_not_copied(case, reduction):
    # NumPy reports its allocations to tracemalloc: a copy of the input (or of
    # an elementwise target) would show up as a peak of x.nbytes.
    import tracemalloc

    x, t = case.make_data((64, 8192), 13)
    obj = case.cls(reduction=reduction)
    out = np.empty_like(x)
    g = case.random_grad_output(reduction, x.shape, 13)
    calls = {
        "forward": lambda: obj(x, t),
        "loss_and_grad(out=)": lambda: obj.loss_and_grad(x, t, out=out),
        "backward(out=)": lambda: obj.backward(x, t, grad_output=g, out=out),
        "in place": lambda: (np.copyto(out, x), obj.loss_and_grad(out, t, out=out)),
    }
    per_sample = np.zeros(case.per_sample_shape(x.shape), np.float32).nbytes
    for name, call in calls.items():
        call()  # warm-up: first-call allocations are not the point
        tracemalloc.start()
        try:
            call()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        allowed = x.nbytes // 4 + (per_sample if reduction == "none" else 0)
        assert peak < allowed, f"{name}: peak {peak} bytes for a {x.nbytes}-byte input"


@parametrize_case
def test_converted_input_is_copied_once_and_gradient_allocated(case):
    import tracemalloc

    x, t = case.make_data((64, 8192), 13)
    x64 = x.astype(np.float64)
    obj = case.cls(reduction="sum")
    obj.loss_and_grad(x64, t)
    tracemalloc.start()
    try:
        obj.loss_and_grad(x64, t)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One float32 copy of the input plus the float32 gradient, nothing more.
    assert x.nbytes <= peak < 2 * x.nbytes + x.nbytes // 4


GRAD_OUTPUT_VARIANTS = [
    # (reduction, id, conversion); 'none' converts an integer-valued float32
    # array, 'mean'/'sum' convert a Python number and must match passing it.
    ("none", "float64", lambda g: g.astype(np.float64)),
    ("none", "list", lambda g: g.tolist()),
    ("none", "strided", lambda g: np.repeat(g, 2, axis=-1)[..., ::2]),
    ("none", "int32", lambda g: g.astype(np.int32)),
    ("none", "fortran", np.asfortranarray),
    ("mean", "float64", np.float64),
    ("mean", "0d-array", np.array),
    ("sum", "0d-array", np.array),
    ("sum", "int32", lambda g: np.int32(round(g))),
    ("sum", "python-int", lambda g: int(round(g))),
]


@pytest.mark.parametrize(
    "reduction,variant,convert",
    [pytest.param(*v, id=f"{v[0]}-{v[1]}") for v in GRAD_OUTPUT_VARIANTS],
)
@parametrize_case
def test_grad_output_conversions(case, reduction, variant, convert):
    x, t = case.make_data((9, 7), 14)
    obj = case.cls(reduction=reduction)
    if reduction == "none":
        # Integer-valued, and + 0.0 turns round()'s -0.0 into the 0 an int holds.
        g = np.round(case.random_grad_output(reduction, x.shape, 14)) + np.float32(0.0)
    else:
        g = 2.0 if "int" in variant else 0.37
    assert_same(obj.backward(x, t, grad_output=convert(g)), obj.backward(x, t, grad_output=g))
