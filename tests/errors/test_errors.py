"""Bad arguments to every public function and loss class: TypeError or
ValueError with a message naming the argument -- never a crash, a hang or a
number.

Input and target: wrong types, dtypes and shapes; class targets out of range
on every kernel path and with no classes at all. Outputs: ``grad_output``,
``out=`` and ``lse_out=`` of a wrong type, dtype, shape or layout, read-only
or overlapping what the kernel reads; misaligned arrays, which never reach
the kernels. The options' invalid values are in test_option_errors.py, the
binding's own refusals (its private API) in test_binding.py.

Everything is parametrised over tests/_support/registry.py: class-target
losses and elementwise losses are told apart by the spec's family, so new
losses join the tables by themselves. Each row runs on every entry point
(tests/_support/calls.py: the function, ``__call__``, ``forward``,
``loss_and_grad``, ``backward``) unless it says otherwise; a row with an
exception type demands that type, the others accept TypeError or ValueError.

A bug found here is pinned with ``pytest.mark.xfail(strict=True, reason="BUG:
...")`` until its fix lands; each test asserts the behaviour we want.
"""

import numpy as np
import pytest
from _support import argspace
from _support.calls import ERRORS, assert_refused, data, entry_points, misaligned
from _support.registry import ELEMENTWISE, REDUCTIONS, REGISTRY

from fastloss import _spec

CLASS = [c for c in REGISTRY if not c.elementwise]
OUT = r"\bout\b"  # 'out', not 'output' or 'grad_output'


def _ids(cases):
    return [c.name for c in cases]


# The type errors are checked at both shapes and reductions their rows came with.
SHAPES_REDUCTIONS = [(shape, r) for shape in ((4, 5), (6, 5)) for r in ("mean", "sum")]


def test_assert_refused_fails_where_it_must():
    # The helper every table here relies on: a call that returns, raises the
    # other exception type, or does not name the argument fails the test.
    def returns():
        return 1.0

    def raises(error, message):
        def call():
            raise error(message)
        return call

    assert_refused([("ok", raises(ValueError, "out is read-only"))], "out", error=ValueError,
                   match="read-only")
    for calls, kw in [
        ([("returns", returns)], {}),
        ([("type", raises(TypeError, "out is read-only"))], {"error": ValueError}),
        ([("unnamed", raises(ValueError, "output is read-only"))], {}),
        ([("pattern", raises(ValueError, "out is read-only"))], {"match": "^input"}),
    ]:
        with pytest.raises(AssertionError, match=calls[0][0]):
            assert_refused(calls, "out", **kw)


# ---------------------------------------------------------------------------
# Wrong types for input and target
# ---------------------------------------------------------------------------

# label: (make the bad input from the good one, the exception it must raise)
BAD_INPUTS = {
    "bool": (lambda x: x > 0, TypeError),
    "complex": (lambda x: x.astype(np.complex64), TypeError),
    "object": (lambda x: x.astype(object), TypeError),
    "str": (lambda x: x.astype(str), TypeError),
    "none-objects": (lambda x: np.full(x.shape, None), TypeError),
    "None": (lambda x: None, ERRORS),
    "list-of-strings": (lambda x: [["a"] * x.shape[-1]] * x.shape[0], ERRORS),
    "ragged-list": (lambda x: [[1.0, 2.0], [3.0]], ERRORS),
    "dict": (lambda x: {"input": 1.0}, ERRORS),
    "set": (lambda x: {1.0, 2.0}, ERRORS),
    "bytes": (lambda x: b"\x00\x01\x02", ERRORS),
    "datetime64": (lambda x: np.zeros(x.shape, "M8[s]"), ERRORS),
    "timedelta64": (lambda x: np.zeros(x.shape, "m8[s]"), ERRORS),
    "structured": (lambda x: np.zeros(x.shape, [("a", "f4")]), ERRORS),
    "void": (lambda x: np.zeros(x.shape, "V4"), ERRORS),
    "complex128": (lambda x: x.astype(np.complex128), ERRORS),
    "bool-list": (lambda x: (x > 0).tolist(), ERRORS),
    "object-of-None": (lambda x: np.array([None, 1.0]), ERRORS),
}


def _refused_at_both_shapes(case, which, make, error):
    """The input (which='input') or the target that `make` spoils is refused
    at each of SHAPES_REDUCTIONS."""
    for shape, reduction in SHAPES_REDUCTIONS:
        x, t = data(case, shape)
        x, t = (make(x), t) if which == "input" else (x, make(t))
        assert_refused(entry_points(case, x, t, reduction=reduction), which, error=error)


@pytest.mark.parametrize("bad", BAD_INPUTS)
@pytest.mark.parametrize("case", REGISTRY, ids=_ids(REGISTRY))
def test_input_of_a_wrong_type(case, bad):
    _refused_at_both_shapes(case, "input", *BAD_INPUTS[bad])


@pytest.mark.parametrize("scalar", [1.5, 3, np.float64(2.0), True, np.float32(1.0)], ids=repr)
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_scalar_input_where_a_class_loss_needs_an_array(case, scalar):
    x, t = data(case)
    for reduction in ("mean", "sum"):
        assert_refused(entry_points(case, scalar, t[0], reduction=reduction), "input")


BAD_CLASS_TARGETS = {
    "None": lambda t: None,
    "list-of-strings": lambda t: ["a"] * len(t),
    "strings": lambda t: t.astype(str),
    "bool": lambda t: t > 1,
    "complex": lambda t: t.astype(np.complex64),
    "float-fractions": lambda t: t + 0.5,
    "float-integral": lambda t: t.astype(np.float64),
    "float32": lambda t: t.astype(np.float32),
    "object-ints": lambda t: t.astype(object),
    "datetime64": lambda t: t.astype("M8[s]"),
    "dict": lambda t: {0: 1},
    "ragged-list": lambda t: [[0], [1, 2]],
}


@pytest.mark.parametrize("bad", list(BAD_CLASS_TARGETS))
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_class_target_of_a_wrong_type(case, bad):
    x, t = data(case)
    assert_refused(entry_points(case, x, BAD_CLASS_TARGETS[bad](t)), "target")


# label: (make the bad target from the good one, the exception it must raise)
BAD_ELEMENTWISE_TARGETS = {
    "bool": (lambda y: (y > 0.5).astype(bool), TypeError),
    "complex128": (lambda y: (y > 0.5).astype(np.complex128), TypeError),
    "object": (lambda y: (y > 0.5).astype(object), TypeError),
    "str": (lambda y: (y > 0.5).astype(str), TypeError),
    "None": (lambda y: None, ERRORS),
    "list-of-strings": (lambda y: [["a"] * y.shape[-1]] * y.shape[0], ERRORS),
    "ragged-list": (lambda y: [[1.0, 2.0], [3.0]], ERRORS),
    "dict": (lambda y: {"target": 1.0}, ERRORS),
    "datetime64": (lambda y: np.zeros(y.shape, "M8[s]"), ERRORS),
    "structured": (lambda y: np.zeros(y.shape, [("a", "f4")]), ERRORS),
}


@pytest.mark.parametrize("bad", BAD_ELEMENTWISE_TARGETS)
@pytest.mark.parametrize("case", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_elementwise_target_of_a_wrong_type(case, bad):
    _refused_at_both_shapes(case, "target", *BAD_ELEMENTWISE_TARGETS[bad])


# ---------------------------------------------------------------------------
# Wrong ndim and mismatched shapes
# ---------------------------------------------------------------------------

# (input shape, target shape, the exception it must raise)
CLASS_TARGET_SHAPES = [
    ((6, 5), (5,), ValueError),
    ((6, 5), (7,), ValueError),
    ((6, 5), (6, 1), ValueError),
    ((6, 5), (), ValueError),
    ((6, 5), (1, 6), ValueError),
    ((5,), (1,), ValueError),
    ((7,), (1,), ERRORS),
    ((7,), (7,), ERRORS),
    ((2, 3, 4), (2, 3), ERRORS),
    ((2, 3, 4), (2, 4, 1), ERRORS),
    ((2, 3, 4), (2,), ERRORS),
    ((2, 3, 4, 5), (2, 4), ERRORS),
    ((2, 3, 4), (), ERRORS),
    ((6, 5), (6, 5), ERRORS),
]


@pytest.mark.parametrize("x_shape,t_shape,error", CLASS_TARGET_SHAPES,
                         ids=[f"{x}-{t}" for x, t, _ in CLASS_TARGET_SHAPES])
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_class_target_shape_does_not_fit_the_input(case, x_shape, t_shape, error):
    x = np.zeros(x_shape, np.float32)
    t = np.zeros(t_shape, np.int64)
    for reduction in ("mean", "sum"):
        assert_refused(entry_points(case, x, t, reduction=reduction), "target", error=error)


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
    for reduction in ("mean", "sum"):
        assert_refused(entry_points(case, x, t, reduction=reduction), "target", error=ValueError)


# ---------------------------------------------------------------------------
# Class targets out of range, on every kernel path
# ---------------------------------------------------------------------------

CE_PATHS = {
    "short-rows": (6, 5),  # c <= 16: columns in SIMD lanes
    "long-rows": (6, 40),  # one row at a time
    "split-rows": (2, 40000),  # c >= 32768, few rows: rows cut into chunks
    "k-dim": (2, 3, 4),  # (N, C, d)
    "unbatched": (5,),  # (C,)
}


def _class_data(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    c = shape[1] if len(shape) >= 2 else shape[0]
    t_shape = shape[:1] + shape[2:] if len(shape) >= 2 else ()
    return x, rng.integers(0, c, size=t_shape).astype(np.int64), c


@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize(
    "value", ["C", "C+100", "-1", "-100 (ignore_index=-1)", "int64-min", "2**62"]
)
@pytest.mark.parametrize("path", CE_PATHS)
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_class_target_out_of_range(case, path, value, where):
    x, t, c = _class_data(CE_PATHS[path])
    options = {}
    bad = {"C": c, "C+100": c + 100, "-1": -1, "int64-min": np.iinfo(np.int64).min,
           "2**62": 2**62}.get(value)
    if value.startswith("-100"):
        bad, options = -100, {"ignore_index": -1}
    flat = t.reshape(-1)
    flat[0 if where == "first" else -1] = bad
    for label, call in entry_points(case, x, t, options=options):
        with pytest.raises(ValueError, match=r"\btarget\b") as info:
            call()
        assert str(bad) in str(info.value), f"{label}: {info.value}"


@pytest.mark.parametrize("path", CE_PATHS)
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_uint64_class_target_beyond_int64(case, path):
    x, t, c = _class_data(CE_PATHS[path])
    t = t.astype(np.uint64)
    t.reshape(-1)[-1] = np.uint64(2**63 + 1)
    assert_refused(entry_points(case, x, t), "target")


@pytest.mark.parametrize("shape", [(5, 0), (0,)], ids=str)
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_class_targets_with_no_classes(case, shape):
    # Zero classes and a target that is not ignored: out of range.
    x = np.zeros(shape, np.float32)
    t = np.zeros(shape[:1] if len(shape) == 2 else (), np.int64)
    assert_refused(entry_points(case, x, t), "target")


# ---------------------------------------------------------------------------
# grad_output
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
@pytest.mark.parametrize("shape", [(5,), (7,), (6, 1), (1, 6), (6, 5, 1)], ids=str)
def test_grad_output_of_wrong_shape_for_none(case, shape):
    x, t = case.make_data((6, 5), 0)
    if shape == case.per_sample_shape(x.shape):
        pytest.skip("that is the right shape for this loss")
    with pytest.raises(ValueError, match="grad_output"):
        case.cls(reduction="none").backward(x, t, grad_output=np.ones(shape, np.float32))


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_grad_output_must_be_a_scalar_when_reduced(case, reduction):
    x, t = case.make_data((6, 5), 0)
    per_sample = np.ones(case.per_sample_shape(x.shape), np.float32)
    for g in (per_sample, np.ones(2, np.float32), [1.0, 2.0]):
        with pytest.raises((TypeError, ValueError), match="grad_output"):
            case.cls(reduction=reduction).backward(x, t, grad_output=g)


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("bad", ["1.0", None, 1j, np.ones(3, bool)], ids=["str", "None", "complex", "bool"])
def test_grad_output_of_wrong_type(case, reduction, bad):
    x, t = case.make_data((6, 5), 0)
    if reduction == "none" and isinstance(bad, np.ndarray):
        bad = np.ones(case.per_sample_shape(x.shape), bool)
    with pytest.raises((TypeError, ValueError), match="grad_output"):
        case.cls(reduction=reduction).backward(x, t, grad_output=bad)


@pytest.mark.parametrize("case", REGISTRY, ids=_ids(REGISTRY))
def test_grad_output_beyond_float(case):
    x, t = data(case)
    assert_refused(entry_points(case, x, t, grad_output=10**400), "grad_output")


# ---------------------------------------------------------------------------
# out=: bad buffers
# ---------------------------------------------------------------------------


def _out_calls(case, x, t, out):
    obj = case.cls(reduction="sum")
    return [lambda: obj.loss_and_grad(x, t, out=out), lambda: obj.backward(x, t, out=out)]


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
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


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.complex64])
def test_out_of_wrong_dtype(case, dtype):
    x, t = case.make_data((6, 5), 0)
    for call in _out_calls(case, x, t, np.empty(x.shape, dtype)):
        with pytest.raises(TypeError, match=OUT):
            call()


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_out_not_an_array(case):
    x, t = case.make_data((6, 5), 0)
    for call in _out_calls(case, x, t, np.empty(x.shape, np.float32).tolist()):
        with pytest.raises(TypeError, match=OUT):
            call()


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
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


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_out_read_only(case):
    x, t = case.make_data((6, 5), 0)
    out = np.zeros(x.shape, np.float32)
    out.flags.writeable = False
    for call in _out_calls(case, x, t, out):
        with pytest.raises((TypeError, ValueError), match=OUT):
            call()
    assert np.all(out == 0.0)


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_out_is_input_of_another_dtype(case):
    # out=input only works in place when the input already is float32 C-contiguous.
    x, t = case.make_data((6, 5), 0)
    x64 = x.astype(np.float64)
    for call in _out_calls(case, x64, t, x64):
        with pytest.raises(TypeError, match=OUT):
            call()


# ---------------------------------------------------------------------------
# out=: overlaps with what the kernel reads
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_out_is_the_target(case):
    x, y = data(case)
    y = np.ascontiguousarray(y, np.float32)
    assert_refused(entry_points(case, x, y, out=y), "out")


@pytest.mark.parametrize("case", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_out_overlaps_the_target(case):
    x, y = data(case)
    buf = np.zeros(y.size + 1, np.float32)
    target = buf[1:].reshape(y.shape)
    target[...] = y
    assert_refused(entry_points(case, x, target, out=buf[:-1].reshape(y.shape)), "out")


@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_out_overlaps_the_class_target(case):
    x, t = data(case)  # (6, 5) logits, (6,) int64 targets
    buf = np.zeros(x.size, np.float32)
    out = buf.reshape(x.shape)
    target = buf[: 2 * t.size].view(np.int64)  # the same bytes as out's first rows
    target[...] = t
    assert_refused(entry_points(case, x, target, out=out), "out")


@pytest.mark.parametrize("offset", [1, 4])
@pytest.mark.parametrize("case", REGISTRY, ids=_ids(REGISTRY))
def test_out_partially_overlaps_the_input(case, offset):
    x, t = data(case)
    buf = np.zeros(x.size + offset, np.float32)
    view = buf[offset:].reshape(x.shape)
    view[...] = x
    assert_refused(entry_points(case, view, t, out=buf[:-offset].reshape(x.shape)), "out")


@pytest.mark.parametrize("case", REGISTRY, ids=_ids(REGISTRY))
def test_out_overlaps_grad_output(case):
    x, t = data(case)
    ps = argspace.per_sample_shape(case, x.shape)
    size, n = x.size, int(np.prod(ps))
    buf = np.zeros(size + n - 1, np.float32)  # grad_output starts on out's last element
    out = buf[:size].reshape(x.shape)
    g = buf[size - 1:].reshape(ps)
    g[...] = 2.0
    ((_, call),) = entry_points(case, x, t, out=out, grad_output=g, reduction="none")
    with pytest.raises(ValueError, match=r"\bout\b|grad_output"):
        call()


WEIGHT_CASES = [(c, o.name) for c in REGISTRY
                for o in c.options_of_kind(_spec.WEIGHT, _spec.CLASS_WEIGHT)]


@pytest.mark.parametrize(
    "case,name", [pytest.param(c, n, id=f"{c.name}-{n}") for c, n in WEIGHT_CASES]
)
def test_out_overlaps_a_weight(case, name):
    x, t = data(case)
    good = np.linspace(0.5, 2.0, x.shape[-1] if argspace.target_kind(case) == "elementwise"
                       else x.shape[1])
    buf = np.zeros(x.size, np.float32)
    out = buf.reshape(x.shape)
    w = buf[: good.size]  # the weights are out's first row
    w[...] = good
    for _, call in entry_points(case, x, t, options={name: w}, out=out):
        with pytest.raises(ValueError, match=rf"\bout\b|{name}"):
            call()


# ---------------------------------------------------------------------------
# lse_out= (the per-sample output buffers, BUFFER options in the spec)
# ---------------------------------------------------------------------------

BUFFER_CASES = [(c, o.name) for c in REGISTRY for o in c.options_of_kind(_spec.BUFFER)]
LSE_CASES = [c for c, name in BUFFER_CASES if name == "lse_out"]

# label: (the bad buffer for n per-sample losses, the exception it must raise)
BAD_BUFFERS = {
    "float64": (lambda n: np.zeros(n), TypeError),
    "int32": (lambda n: np.zeros(n, np.int32), ERRORS),
    "extra-axis": (lambda n: np.zeros((n, 1), np.float32), ERRORS),
    "too-long": (lambda n: np.zeros(n + 1, np.float32), ERRORS),
    "too-short": (lambda n: np.empty(n // 2, np.float32), ValueError),
    "readonly": (lambda n: _read_only(np.zeros(n, np.float32).view()), ERRORS),
    "strided": (lambda n: np.zeros(2 * n, np.float32)[::2], ERRORS),
    "list": (lambda n: [0.0] * n, ERRORS),
    "str": (lambda n: "lse", ERRORS),
}


def _read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("bad", list(BAD_BUFFERS))
@pytest.mark.parametrize(
    "case,name", [pytest.param(c, n, id=c.name if n == "lse_out" else f"{c.name}-{n}")
                  for c, n in BUFFER_CASES])
def test_bad_lse_out(case, name, bad):
    x, t = data(case)
    make, error = BAD_BUFFERS[bad]
    buf = make(x.shape[0])
    assert_refused(entry_points(case, x, t, call_options={name: buf}), name, error=error)


@pytest.mark.parametrize("over", ["input", "out"])
@pytest.mark.parametrize("case", LSE_CASES, ids=_ids(LSE_CASES))
def test_lse_out_overlapping_input_or_out_is_refused(case, over):
    x, t = data(case, (4, 20))
    if over == "input":
        lse = x[3, :4]  # inside the last row
        call = lambda: case.func(x, t, reduction="none", lse_out=lse)  # noqa: E731
    else:
        out = np.zeros_like(x)
        lse = out[3, :4]
        call = lambda: case.cls(reduction="sum").loss_and_grad(x, t, out=out, lse_out=lse)  # noqa
    with pytest.raises(ValueError, match="lse_out"):
        call()


@pytest.mark.parametrize("over", ["target", "weight"])
@pytest.mark.parametrize("case", LSE_CASES, ids=_ids(LSE_CASES))
def test_lse_out_overlapping_what_the_kernel_reads_is_refused(case, over):
    # lse_out over the class targets' bytes or over the class weights: the
    # kernel would read what it writes.
    x, t = data(case, (4, 20))
    buf = np.zeros(40, np.float32)
    lse = buf[:4]
    options = {}
    if over == "target":
        t = buf.view(np.int64)[:4]  # lse_out is the first two targets' bytes
        t[...] = [1, 2, 3, 4]
    else:
        buf[:20] = 1.0
        options["weight"] = buf[:20]
    obj = case.cls(reduction="none", **options)
    for call in (lambda: obj(x, t, lse_out=lse), lambda: obj.loss_and_grad(x, t, lse_out=lse)):
        with pytest.raises(ValueError, match=f"lse_out must not overlap {over}"):
            call()


# ---------------------------------------------------------------------------
# Misaligned arrays
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["input", "target", "out"])
@pytest.mark.parametrize("case", REGISTRY, ids=_ids(REGISTRY))
def test_misaligned_arrays_never_reach_the_kernels(case, which, monkeypatch):
    """A C-contiguous but misaligned array (a view one byte into a buffer) is
    copied, or refused (out=), but never handed to C: the kernels load floats
    as aligned, and a misaligned load is undefined behaviour (UBSan stops on it)."""
    from fastloss import _core

    seen = []

    def checking(kernel):
        def wrapper(*args):
            aligned = [a.flags.aligned for a in args if isinstance(a, np.ndarray)]
            seen.extend(aligned)
            # Stop before the C call: a misaligned load is undefined behaviour
            # (and UBSan ends the process under tools/sanitize.sh).
            assert all(aligned), "a misaligned array reached the C kernel"
            return kernel(*args)
        return wrapper

    # every binding a loss can reach: cross-entropy's two, and each elementwise loss's
    for name in ("cross_entropy", "cross_entropy_soft", case.name):
        if hasattr(_core, name):
            monkeypatch.setattr(_core, name, checking(getattr(_core, name)))
    x, t = data(case)
    x = np.ascontiguousarray(x, np.float32)
    t = np.ascontiguousarray(t, np.int64 if argspace.target_kind(case) == "class" else np.float32)
    out = np.zeros_like(x)
    if which == "input":
        x = misaligned(x)
    elif which == "target":
        t = misaligned(t)
    else:
        out = misaligned(out)
        assert_refused(entry_points(case, x, t, out=out), "out")
        return
    expected = case.cls(reduction="sum").loss_and_grad(np.array(x), np.array(t))
    got = case.cls(reduction="sum").loss_and_grad(x, t, out=out)
    assert seen and all(seen), "a misaligned array reached the C kernel"
    assert got[0] == expected[0] and np.array_equal(got[1], expected[1])
