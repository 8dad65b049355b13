"""The binding's own refusals, called directly (fastloss._core: a private API).

fastloss/_validate.py checks everything a user passes, so the public API
never hands the binding a bad argument. The binding (fastloss/_core.pyx, and
the per-loss bindings generated into fastloss/_binding.pxi) still re-checks
what memory safety needs before it gives C a pointer: an ndarray, of the
kernel's dtype, C-contiguous and aligned, with the expected number of
elements, outputs writeable; a valid reduction code, per-sample outputs only
for reduction 'none'; for cross-entropy sizes >= 0 whose product fits in
int64 and n_threads >= 1; for an elementwise weight a period >= 1. Each
refusal is checked here on every array argument of every binding, and the
output buffer passed along is left untouched.

The elementwise bindings' parameters come from the spec, as tools/codegen.py
generates them: (x, y, the FLOAT and BOOL options, (weight, period) per WEIGHT
option, reduction, grad_scale, grad_per_sample, loss_out, grad_out,
n_threads).
"""

import functools

import numpy as np
import pytest
from _support.argspace import relayout
from _support.calls import misaligned
from _support.registry import ELEMENTWISE

from fastloss import _core, _spec

MEAN, NONE = 1, 0
N, C, D = 4, 5, 3  # cross-entropy: (N, C, D); the elementwise losses: N * C elements
DTYPE = r"must be a C-contiguous, aligned array of the kernel's dtype"
NOT_AN_ARRAY = r"must be a numpy\.ndarray"
INT64_MAX = np.iinfo(np.int64).max


def _x(size, seed=0):
    return np.random.default_rng(seed).standard_normal(size).astype(np.float32)


# ---------------------------------------------------------------------------
# Valid calls: (binding, keyword arguments, {parameter: (message name, dtype,
# size, kind)}) where kind is "in" or "out" (writeable)
# ---------------------------------------------------------------------------


def _ce(reduction=MEAN):
    samples = N * D
    args = dict(x=_x(N * C * D), target=np.arange(samples, dtype=np.int64) % C, n=N, c=C, d=D,
                ignore_index=-100, weight=np.ones(C, np.float32), label_smoothing=0.1,
                z_loss=1e-3, lse_out=np.zeros(samples, np.float32),
                correct_out=np.zeros(samples, np.int8), reduction=reduction, grad_scale=1.0,
                grad_per_sample=None, loss_out=None,
                grad_out=np.full(N * C * D, np.nan, np.float32),
                n_threads=1)
    arrays = {"x": ("input", np.float32, N * C * D, "in"),
              "target": ("target", np.int64, samples, "in"),
              "weight": ("weight", np.float32, C, "in"),
              "lse_out": ("lse_out", np.float32, samples, "out"),
              "correct_out": ("correct_out", np.int8, samples, "out"),
              "grad_out": ("out", np.float32, N * C * D, "out")}
    if reduction == NONE:
        args.update(grad_per_sample=np.ones(samples, np.float32),
                    loss_out=np.zeros(samples, np.float32))
        arrays.update(grad_per_sample=("grad_output", np.float32, samples, "in"),
                      loss_out=("loss_out", np.float32, samples, "out"))
    return _core.cross_entropy, args, arrays


def _ce_soft(reduction=MEAN):
    fn, args, arrays = _ce(reduction)
    y = np.random.default_rng(1).random(N * C * D).astype(np.float32)
    args = {k: v for k, v in args.items() if k not in ("target", "ignore_index", "correct_out")}
    args = dict(args, y=y)
    arrays = {k: v for k, v in arrays.items() if k not in ("target", "correct_out")}
    arrays["y"] = ("target", np.float32, N * C * D, "in")
    return _core.cross_entropy_soft, args, arrays


def _elementwise(case, reduction=MEAN):
    n = N * C
    x_name, y_name = case.spec.inputs
    x, y = (np.ravel(a) for a in case.make_data((N, C), 0))
    args = dict(x=x, y=y)
    arrays = {"x": (x_name, np.float32, n, "in"), "y": (y_name, np.float32, n, "in")}
    for opt in case.spec.c_options:  # the order tools/codegen.py gives the binding
        if opt.kind in (_spec.FLOAT, _spec.BOOL):
            args[opt.name] = opt.default
    for opt in case.spec.c_options:
        if opt.kind == _spec.WEIGHT:
            args[opt.name] = np.linspace(0.5, 1.5, C).astype(np.float32)
            args[opt.name + "_period"] = C
            arrays[opt.name] = (opt.name, np.float32, C, "in")
    args.update(reduction=reduction, grad_scale=1.0, grad_per_sample=None, loss_out=None,
                grad_out=np.full(n, np.nan, np.float32), n_threads=1)
    arrays["grad_out"] = ("out", np.float32, n, "out")
    if reduction == NONE:
        args.update(grad_per_sample=np.ones(n, np.float32), loss_out=np.zeros(n, np.float32))
        arrays.update(grad_per_sample=("grad_output", np.float32, n, "in"),
                      loss_out=("loss_out", np.float32, n, "out"))
    return getattr(_core, case.name), args, arrays


ELEMENTWISE_NAMES = {case.name for case in ELEMENTWISE}
BINDINGS = {"cross_entropy": _ce, "cross_entropy_soft": _ce_soft}
BINDINGS.update({case.name: functools.partial(_elementwise, case) for case in ELEMENTWISE})


def _refused(fn, args, error, match):
    """fn(**args) raises error(match), and leaves its gradient buffer alone."""
    out = args.get("grad_out")
    before = out.copy() if isinstance(out, np.ndarray) else None
    with pytest.raises(error, match=match):
        fn(**args)
    if before is not None:
        np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize("reduction", [NONE, MEAN, 2])
@pytest.mark.parametrize("binding", BINDINGS)
def test_valid_direct_call(binding, reduction):
    # The baseline of every test below: the same arguments, all valid, compute.
    fn, args, _ = BINDINGS[binding](reduction)
    result = fn(**args)
    if reduction == NONE:
        assert result is None and np.isfinite(args["loss_out"]).all()
    else:
        assert type(result) is float and np.isfinite(result)
    assert np.isfinite(args["grad_out"]).all()


# ---------------------------------------------------------------------------
# Array arguments: type, dtype, layout, alignment, size, writeability
# ---------------------------------------------------------------------------


def _strided(a):
    view = relayout(a, "strided")  # every other element of a buffer twice as long
    assert not view.flags.c_contiguous
    return view


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


# kind: (make the bad array from the good one, exception, message after the name)
BAD_ARRAYS = {
    "list": (lambda a: a.tolist(), TypeError, NOT_AN_ARRAY),
    "dtype": (lambda a: a.astype(np.float64 if a.dtype != np.float64 else np.float32),
              TypeError, DTYPE),
    "strided": (_strided, TypeError, DTYPE),
    "misaligned": (misaligned, TypeError, DTYPE),
    "one-more": (lambda a: np.append(a, a[:1]), ValueError, r"has \d+ elements, expected \d+"),
    "one-less": (lambda a: a[:-1].copy(), ValueError, r"has \d+ elements, expected \d+"),
    "read-only": (_read_only, ValueError, "is read-only"),
}


def _array_rows():
    rows = []
    for binding, make in BINDINGS.items():
        for reduction in (NONE, MEAN):
            _, _, arrays = make(reduction)
            for param, (_, dtype, _, kind) in arrays.items():
                if reduction == MEAN and param in ("grad_per_sample", "loss_out"):
                    continue
                for bad in BAD_ARRAYS:
                    if bad == "read-only" and kind != "out":
                        continue
                    if bad == "misaligned" and np.dtype(dtype).itemsize == 1:
                        continue  # (an int8 array is always aligned)
                    if bad.startswith("one-") and param == "x" and binding in ELEMENTWISE_NAMES:
                        continue  # an elementwise input's size is n: the others must match it
                    if reduction == NONE and param not in ("grad_per_sample", "loss_out") \
                            and bad != "read-only":
                        continue  # the other arguments are covered with reduction 'mean'
                    rows.append(pytest.param(binding, reduction, param, bad,
                                             id=f"{binding}-{param}-{bad}"))
    return rows


@pytest.mark.parametrize("binding,reduction,param,bad", _array_rows())
def test_bad_array_is_refused(binding, reduction, param, bad):
    fn, args, arrays = BINDINGS[binding](reduction)
    name, _, _, _ = arrays[param]
    make, error, message = BAD_ARRAYS[bad]
    args[param] = make(args[param])
    _refused(fn, args, error, rf"^{name} {message}")


@pytest.mark.parametrize("value", [None, 3.0, "x"], ids=["None", "float", "str"])
@pytest.mark.parametrize("binding,param", [
    pytest.param(b, p, id=f"{b}-{p}") for b in BINDINGS
    for p in ("x", "target" if b == "cross_entropy" else "y")])
def test_input_that_is_not_an_array(binding, param, value):
    # None means "absent" to an optional array (a weight, an output); the
    # inputs are never optional (None was a NULL pointer for the C).
    fn, args, arrays = BINDINGS[binding]()
    args[param] = value
    _refused(fn, args, TypeError, rf"^{arrays[param][0]} {NOT_AN_ARRAY}")


# ---------------------------------------------------------------------------
# Reduction codes and per-sample outputs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", [3, -1, 100])
@pytest.mark.parametrize("binding", BINDINGS)
def test_bad_reduction_code(binding, code):
    fn, args, _ = BINDINGS[binding]()
    args["reduction"] = code
    _refused(fn, args, ValueError, rf"^reduction code {code} is not 0, 1 or 2")


@pytest.mark.parametrize("param", ["loss_out", "grad_per_sample"])
@pytest.mark.parametrize("code", [MEAN, 2])
@pytest.mark.parametrize("binding", BINDINGS)
def test_per_sample_arrays_need_reduction_none(binding, code, param):
    fn, args, _ = BINDINGS[binding](NONE)
    args["reduction"] = code
    args["loss_out" if param == "grad_per_sample" else "grad_per_sample"] = None
    _refused(fn, args, ValueError,
             r"^per-sample loss_out and grad_per_sample need reduction 'none'")


# ---------------------------------------------------------------------------
# Sizes and threads (cross-entropy's n, c, d are arguments, not array sizes)
# ---------------------------------------------------------------------------

BAD_SIZES = {
    "n=-1": dict(n=-1),
    "c=-1": dict(c=-1),
    "d=-1": dict(d=-1),
    "n=int64-min": dict(n=-INT64_MAX - 1),
    "n_threads=0": dict(n_threads=0),
    "n_threads=-4": dict(n_threads=-4),
}
# n * c * d is a multiple of 2**64, which wraps around to 0 in int64: arrays of no elements
# would pass the size checks while the C walks 2**31 rows or more (a
# segmentation fault before the binding checked the product).
WRAPPING = {
    "n*d=2**64": dict(n=2**32, c=5, d=2**32),
    "n*d*c=2**64": dict(n=2**31, c=4, d=2**31),
    "n*c=2**64": dict(n=2**40, c=2**24, d=1),
}


@pytest.mark.parametrize("bad", BAD_SIZES)
@pytest.mark.parametrize("binding", ["cross_entropy", "cross_entropy_soft"])
def test_bad_sizes(binding, bad):
    fn, args, _ = BINDINGS[binding]()
    args.update(BAD_SIZES[bad])
    _refused(fn, args, ValueError, r"^sizes must be >= 0 and n_threads >= 1, got n=-?\d+, "
                                   r"c=-?\d+, d=-?\d+, n_threads=-?\d+$")


@pytest.mark.parametrize("bad", WRAPPING)
@pytest.mark.parametrize("binding", ["cross_entropy", "cross_entropy_soft"])
def test_sizes_whose_product_wraps_around(binding, bad):
    fn, args, _ = BINDINGS[binding]()
    sizes = WRAPPING[bad]
    assert sizes["n"] * sizes["c"] * sizes["d"] % 2**64 == 0
    args.update(sizes)
    for key in ("weight", "lse_out", "correct_out"):
        if key in args:
            args[key] = None
    for key in ("x", "y", "target", "grad_out"):
        if key in args:
            args[key] = args[key][:0]
    _refused(fn, args, ValueError,
             r"^sizes n=\d+, c=\d+, d=\d+: n \* c \* d does not fit in int64$")


def test_probability_targets_need_a_class():
    fn, args, _ = _ce_soft()
    args.update(c=0, x=args["x"][:0], y=args["y"][:0], weight=None, grad_out=args["grad_out"][:0])
    _refused(fn, args, ValueError, r"^probability targets need c >= 1")


@pytest.mark.parametrize("period", [0, -1, -(2**40)])
@pytest.mark.parametrize(
    "binding,name", [pytest.param(c.name, o.name, id=f"{c.name}-{o.name}") for c in ELEMENTWISE
                     for o in c.options_of_kind(_spec.WEIGHT)])
def test_weight_period_below_one(binding, name, period):
    # The C reads w[i % period]: an empty weight of period 0 was a SIGFPE.
    fn, args, _ = BINDINGS[binding]()
    args[name] = args[name][:0] if period == 0 else args[name]
    args[name + "_period"] = period
    _refused(fn, args, ValueError, rf"^{name}_period must be >= 1 with a {name}, got {period}$")


@pytest.mark.parametrize(
    "binding,name", [pytest.param(c.name, o.name, id=f"{c.name}-{o.name}") for c in ELEMENTWISE
                     for o in c.options_of_kind(_spec.WEIGHT)])
def test_weight_period_is_its_size(binding, name):
    fn, args, _ = BINDINGS[binding]()
    args[name + "_period"] = C - 1
    _refused(fn, args, ValueError, rf"^{name} has {C} elements, expected {C - 1}$")


# ---------------------------------------------------------------------------
# What only the C sees: class targets out of range
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [C, -1, 2**62, -100])
def test_target_out_of_range_is_a_target_error(value):
    fn, args, _ = _ce()
    args["target"][7] = value
    args["ignore_index"] = -5
    with pytest.raises(_core.TargetError) as info:
        fn(**args)
    assert isinstance(info.value, ValueError)
    assert info.value.args == (7, value, C, -5)


def test_unknown_instruction_set():
    before = _core.isa_name()
    assert not _core.isa_available("sse9")
    with pytest.raises(ValueError, match=r"^instruction set 'sse9' is not available"):
        _core.set_isa("sse9")
    assert _core.isa_name() == before
