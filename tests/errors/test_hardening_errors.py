"""Bad arguments to every public function and loss class, table by table.

This extends tests/test_errors.py (which has the basic dtype, shape, reduction,
``out`` and ``grad_output`` cases) with the rest of the hardening table:
wrong Python types, class targets out of range on every kernel path, float
class targets, non-finite and misshapen weights, ``out=`` and ``lse_out=``
that overlap other arguments, zero-size dimensions, and every option's
invalid values. Each bad call must raise TypeError or ValueError with a
message naming the argument -- never crash, hang or return a number.

Everything is parametrised over tests/_registry.py: class-target losses and
elementwise losses are told apart by the registry's own data, and options by
the parameter names of each loss's function and class, so new losses and
options join the tables by themselves.

A bug found here is pinned with ``pytest.mark.xfail(strict=True, reason="BUG:
...")`` until its fix lands; each test asserts the behaviour we want.
"""

import inspect
import math
import warnings

import numpy as np
import pytest

import fastloss
from _support.registry import REGISTRY

from _support import argspace

CLASS = [c for c in REGISTRY if argspace.target_kind(c) == "class"]
ELEMENTWISE = [c for c in REGISTRY if argspace.target_kind(c) == "elementwise"]
MISSING = object()


def _params(case):
    return set(inspect.signature(case.func).parameters) & set(inspect.signature(case.cls).parameters)


def _with_param(name):
    return [c for c in REGISTRY if name in _params(c)]


def _ids(cases):
    return [c.name for c in cases]


def _data(case, shape=(6, 5), seed=0):
    x, t = case.make_data(shape, seed)
    return np.asarray(x), np.asarray(t)


def entry_points(case, x, t, *, options=None, out=MISSING, grad_output=MISSING,
                 reduction="sum", call_options=None):
    """(name, zero-argument callable) for each public way of calling the loss.

    The function, the object's __call__ and forward, loss_and_grad and
    backward; only the last two when ``out`` is given, only backward when
    ``grad_output`` is, and not backward with ``call_options`` (lse_out)."""
    options = dict(options or {})
    call_options = dict(call_options or {})

    def obj():
        return case.cls(reduction=reduction, **options)

    out_kw = {} if out is MISSING else {"out": out}
    go_kw = {} if grad_output is MISSING else {"grad_output": grad_output}
    calls = [
        ("func", lambda: case.func(x, t, reduction=reduction, **options, **call_options)),
        ("__call__", lambda: obj()(x, t, **call_options)),
        ("forward", lambda: obj().forward(x, t, **call_options)),
        ("loss_and_grad", lambda: obj().loss_and_grad(x, t, **out_kw, **call_options)),
        ("backward", lambda: obj().backward(x, t, **go_kw, **out_kw)),
    ]
    if out is not MISSING:
        calls = [c for c in calls if c[0] in ("loss_and_grad", "backward")]
    if grad_output is not MISSING:
        calls = [c for c in calls if c[0] == "backward"]
    if call_options:
        calls = [c for c in calls if c[0] != "backward"]
    return calls


def assert_refused(calls, name, *, not_yet_ok=False):
    """Every call raises TypeError or ValueError whose message names `name`.

    With not_yet_ok, a NotImplementedError naming the option skips the test
    (an option that is not implemented yet: the row enables itself once it is).
    """
    pattern = argspace.name_pattern(name)
    for label, call in calls:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                call()
            except NotImplementedError as exc:
                if not_yet_ok and argspace.names_argument(str(exc), [name]):
                    pytest.skip(f"{name} is not implemented yet: {exc}")
                raise
            except (TypeError, ValueError) as exc:
                assert argspace.names_argument(str(exc), [name]), (
                    f"{label}: the message does not name {name!r}: "
                    f"{type(exc).__name__}: {exc}  (pattern {pattern})")
            else:
                raise AssertionError(f"{label}: no error for a bad {name}")


# ---------------------------------------------------------------------------
# Wrong types for input and target
# ---------------------------------------------------------------------------

BAD_INPUTS = {
    "None": lambda x: None,
    "list-of-strings": lambda x: [["a"] * x.shape[-1]] * x.shape[0],
    "ragged-list": lambda x: [[1.0, 2.0], [3.0]],
    "dict": lambda x: {"input": 1.0},
    "set": lambda x: {1.0, 2.0},
    "bytes": lambda x: b"\x00\x01\x02",
    "datetime64": lambda x: np.zeros(x.shape, "M8[s]"),
    "timedelta64": lambda x: np.zeros(x.shape, "m8[s]"),
    "structured": lambda x: np.zeros(x.shape, [("a", "f4")]),
    "void": lambda x: np.zeros(x.shape, "V4"),
    "complex128": lambda x: x.astype(np.complex128),
    "bool-list": lambda x: (x > 0).tolist(),
    "object-of-None": lambda x: np.array([None, 1.0]),
}


@pytest.mark.parametrize("bad", BAD_INPUTS)
@pytest.mark.parametrize("case", REGISTRY, ids=_ids(REGISTRY))
def test_input_of_a_wrong_type(case, bad):
    x, t = _data(case)
    assert_refused(entry_points(case, BAD_INPUTS[bad](x), t), "input")


@pytest.mark.parametrize("scalar", [1.5, 3, np.float64(2.0), True], ids=repr)
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_scalar_input_where_a_class_loss_needs_an_array(case, scalar):
    x, t = _data(case)
    assert_refused(entry_points(case, scalar, t[0]), "input")


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
    x, t = _data(case)
    assert_refused(entry_points(case, x, BAD_CLASS_TARGETS[bad](t)), "target")


BAD_ELEMENTWISE_TARGETS = {
    "None": lambda y: None,
    "list-of-strings": lambda y: [["a"] * y.shape[-1]] * y.shape[0],
    "ragged-list": lambda y: [[1.0, 2.0], [3.0]],
    "dict": lambda y: {"target": 1.0},
    "datetime64": lambda y: np.zeros(y.shape, "M8[s]"),
    "structured": lambda y: np.zeros(y.shape, [("a", "f4")]),
}


@pytest.mark.parametrize("bad", BAD_ELEMENTWISE_TARGETS)
@pytest.mark.parametrize("case", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_elementwise_target_of_a_wrong_type(case, bad):
    x, y = _data(case)
    assert_refused(entry_points(case, x, BAD_ELEMENTWISE_TARGETS[bad](y)), "target")


# ---------------------------------------------------------------------------
# Wrong ndim and mismatched shapes (beyond test_errors.py)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "x_shape,t_shape",
    [((7,), (1,)), ((7,), (7,)), ((2, 3, 4), (2, 3)), ((2, 3, 4), (2, 4, 1)), ((2, 3, 4), (2,)),
     ((2, 3, 4, 5), (2, 4)), ((2, 3, 4), ()), ((6, 5), (6, 5))],
    ids=str,
)
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_class_target_shape_does_not_fit_the_input(case, x_shape, t_shape):
    x = np.zeros(x_shape, np.float32)
    t = np.zeros(t_shape, np.int64)
    assert_refused(entry_points(case, x, t), "target")


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


# ---------------------------------------------------------------------------
# Weights: NaN, infinities, wrong shapes and types
# ---------------------------------------------------------------------------

def _bad_weights(case, shape):
    if argspace.target_kind(case) == "class":
        c = shape[1]
        return {
            "nan": np.where(np.arange(c) == 2, np.nan, 1.0),
            "inf": np.where(np.arange(c) == 0, np.inf, 1.0),
            "-inf": np.where(np.arange(c) == c - 1, -np.inf, 1.0),
            "float32-nan": np.full(c, np.nan, np.float32),
            "too-long": np.ones(c + 1),
            "too-short": np.ones(c - 1),
            "2-d": np.ones((c, 1)),
            "scalar": 2.0,
            "strings": np.ones(c).astype(str),
            "bool": np.ones(c, bool),
            "complex": np.ones(c, np.complex64),
            "None-objects": np.full(c, None),
        }
    last = shape[-1]
    return {
        "nan": np.where(np.arange(last) == 2, np.nan, 1.0),
        "inf": np.full(shape, np.inf),
        "-inf": np.where(np.arange(last) == 0, -np.inf, 1.0),
        "float32-nan": np.full(shape, np.nan, np.float32),
        "not-broadcastable": np.ones(last + 2),
        "more-dims": np.ones((2,) + shape),
        "wrong-rows": np.ones((shape[0] + 1, 1)),
        "strings": np.ones(last).astype(str),
        "bool": np.ones(shape, bool),
        "complex": np.ones(shape, np.complex64),
    }


WEIGHT_CASES = [(c, name) for name in ("weight", "pos_weight") for c in _with_param(name)]


@pytest.mark.parametrize(
    "case,name,bad",
    [pytest.param(c, n, b, id=f"{c.name}-{n}-{b}") for c, n in WEIGHT_CASES
     for b in _bad_weights(c, (6, 5))],
)
def test_bad_weight(case, name, bad):
    x, t = _data(case)
    w = _bad_weights(case, x.shape)[bad]
    assert_refused(entry_points(case, x, t, options={name: w}), name, not_yet_ok=True)


# ---------------------------------------------------------------------------
# Options: every invalid value of every option
# ---------------------------------------------------------------------------

BAD_OPTIONS = {
    "reduction": ["none ", b"sum", ["mean"], "elementwise_mean", 0, math.nan],
    "ignore_index": [None, 1.5, "3", 2**70, -(2**70), [1], np.float64(2.0)],
    "label_smoothing": [-0.1, 1.5, math.nan, math.inf, "0.1", None, True, np.ones(2), 1e39],
    "z_loss": [-1.0, math.nan, math.inf, "0", None, True, 1j, 1e39, 1e300],
    "alpha": [math.nan, math.inf, -math.inf, "a", None, True, [0.25], 1e39, -1e300],
    "gamma": [-1.0, math.nan, math.inf, None, "2", 2j, 1e39],
    "delta": [0.0, -1.0, math.nan, math.inf, None, "1", np.ones(1), 1e39, 1e-46],
    "beta": [-1.0, math.nan, math.inf, None, "1", -0.0 - 1e-9, 1e39],
}

OPTION_ROWS = [
    pytest.param(c, name, v, id=f"{c.name}-{name}={v!r}")
    for name, values in BAD_OPTIONS.items()
    for c in _with_param(name)
    for v in values
]


def _option_calls(case, name, value, x, t):
    """The calls that take the option: the function and the class constructor."""
    options = {} if name == "reduction" else {name: value}
    reduction = value if name == "reduction" else "mean"
    calls = entry_points(case, x, t, options=options, reduction=reduction)
    return [calls[0], calls[3]]  # func, loss_and_grad (the constructor runs inside)


@pytest.mark.parametrize("case,name,value", OPTION_ROWS)
def test_invalid_option_value(case, name, value):
    x, t = _data(case)
    assert_refused(_option_calls(case, name, value, x, t), name, not_yet_ok=True)


OVERFLOWING = ["label_smoothing", "z_loss", "alpha", "gamma", "delta", "beta"]


@pytest.mark.parametrize(
    "case,name,value",
    [pytest.param(c, n, 10**400, id=f"{c.name}-{n}=10**400")
     for n in OVERFLOWING for c in _with_param(n)],
)
def test_option_beyond_float_is_refused(case, name, value):
    x, t = _data(case)
    assert_refused(_option_calls(case, name, value, x, t), name)


@pytest.mark.parametrize("name", ["size_average", "reduce", "return_correct"])
def test_ambiguous_truth_value_names_the_argument(name):
    cases = [c for c in REGISTRY if name in inspect.signature(c.func).parameters]
    if not cases:
        pytest.skip(f"no loss takes {name}")
    x, t = _data(cases[0])
    with pytest.raises((TypeError, ValueError), match=name):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cases[0].func(x, t, **{name: np.array([True, False])})


# ---------------------------------------------------------------------------
# out= and lse_out=: overlaps and bad buffers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_out_is_the_target(case):
    x, y = _data(case)
    y = np.ascontiguousarray(y, np.float32)
    assert_refused(entry_points(case, x, y, out=y), "out")


@pytest.mark.parametrize("case", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_out_overlaps_the_target(case):
    x, y = _data(case)
    buf = np.zeros(y.size + 1, np.float32)
    target = buf[1:].reshape(y.shape)
    target[...] = y
    assert_refused(entry_points(case, x, target, out=buf[:-1].reshape(y.shape)), "out")


@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_out_overlaps_the_class_target(case):
    x, t = _data(case)  # (6, 5) logits, (6,) int64 targets
    buf = np.zeros(x.size, np.float32)
    out = buf.reshape(x.shape)
    target = buf[: 2 * t.size].view(np.int64)  # the same bytes as out's first rows
    target[...] = t
    assert_refused(entry_points(case, x, target, out=out), "out")


@pytest.mark.parametrize("offset", [1, 4])
@pytest.mark.parametrize("case", REGISTRY, ids=_ids(REGISTRY))
def test_out_partially_overlaps_the_input(case, offset):
    x, t = _data(case)
    buf = np.zeros(x.size + offset, np.float32)
    view = buf[offset:].reshape(x.shape)
    view[...] = x
    assert_refused(entry_points(case, view, t, out=buf[:-offset].reshape(x.shape)), "out")


@pytest.mark.parametrize("case", REGISTRY, ids=_ids(REGISTRY))
def test_out_overlaps_grad_output(case):
    x, t = _data(case)
    ps = argspace.per_sample_shape(case, x.shape)
    size, n = x.size, int(np.prod(ps))
    buf = np.zeros(size + n - 1, np.float32)  # grad_output starts on out's last element
    out = buf[:size].reshape(x.shape)
    g = buf[size - 1:].reshape(ps)
    g[...] = 2.0
    ((_, call),) = entry_points(case, x, t, out=out, grad_output=g, reduction="none")
    with pytest.raises(ValueError, match=r"\bout\b|grad_output"):
        call()


@pytest.mark.parametrize(
    "case,name", [pytest.param(c, n, id=f"{c.name}-{n}") for c, n in WEIGHT_CASES]
)
def test_out_overlaps_a_weight(case, name):
    x, t = _data(case)
    good = np.linspace(0.5, 2.0, x.shape[-1] if argspace.target_kind(case) == "elementwise"
                       else x.shape[1])
    buf = np.zeros(x.size, np.float32)
    out = buf.reshape(x.shape)
    w = buf[: good.size]  # the weights are out's first row
    w[...] = good
    for _, call in entry_points(case, x, t, options={name: w}, out=out):
        with pytest.raises(ValueError, match=rf"\bout\b|{name}"):
            call()


LSE_CASES = [c for c in REGISTRY if "lse_out" in inspect.signature(c.func).parameters]


@pytest.mark.parametrize(
    "bad",
    ["float64", "int32", "extra-axis", "too-long", "readonly", "strided", "list", "str"],
)
@pytest.mark.parametrize("case", LSE_CASES, ids=_ids(LSE_CASES))
def test_bad_lse_out(case, bad):
    x, t = _data(case)
    n = x.shape[0]
    lse = {
        "float64": lambda: np.zeros(n),
        "int32": lambda: np.zeros(n, np.int32),
        "extra-axis": lambda: np.zeros((n, 1), np.float32),
        "too-long": lambda: np.zeros(n + 1, np.float32),
        "readonly": lambda: np.zeros(n, np.float32).view(),
        "strided": lambda: np.zeros(2 * n, np.float32)[::2],
        "list": lambda: [0.0] * n,
        "str": lambda: "lse",
    }[bad]()
    if bad == "readonly":
        lse.flags.writeable = False
    assert_refused(entry_points(case, x, t, call_options={"lse_out": lse}), "lse_out")


@pytest.mark.parametrize("over", ["input", "out"])
@pytest.mark.parametrize("case", LSE_CASES, ids=_ids(LSE_CASES))
def test_lse_out_overlapping_input_or_out_is_refused(case, over):
    x, t = _data(case, (4, 20))
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
    x, t = _data(case, (4, 20))
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
# Zero-size dimensions
# ---------------------------------------------------------------------------

def _torch_reference(case, x, t, reduction):
    torch = pytest.importorskip("torch")
    fn = case.torch_function() if hasattr(case, "torch_function") else getattr(
        __import__("torch.nn.functional", fromlist=["F"]), case.func_name)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tt = torch.as_tensor(np.asarray(t, np.int64)) if argspace.target_kind(case) == "class" \
        else torch.tensor(t, dtype=torch.float64)
    loss = fn(xt, tt, reduction=reduction)
    (grad,) = torch.autograd.grad(loss.sum(), xt, allow_unused=True)
    return loss.detach().numpy(), (np.zeros(x.shape) if grad is None else grad.numpy())


def _check_empty(case, x, t):
    """Every entry point on a zero-size problem: PyTorch's results (mean NaN,
    sum 0, empty per-sample losses and gradients), with fastloss's types."""
    for reduction in ("mean", "sum", "none"):
        obj = case.cls(reduction=reduction)
        loss, grad = obj.loss_and_grad(x, t)
        expected_loss, expected_grad = _torch_reference(case, x, t, reduction)
        if reduction == "none":
            assert isinstance(loss, np.ndarray) and loss.dtype == np.float32
            assert loss.shape == expected_loss.shape == argspace.per_sample_shape(case, x.shape)
        else:
            assert type(loss) is float
            assert (math.isnan(loss) and np.isnan(expected_loss)) or loss == expected_loss, (
                loss, expected_loss)
        assert grad.dtype == np.float32 and grad.shape == x.shape
        np.testing.assert_array_equal(grad, expected_grad)
        np.testing.assert_array_equal(obj.backward(x, t), grad)
        np.testing.assert_array_equal(case.func(x, t, reduction=reduction), loss)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (5, 0), (0, 0, 3), (2, 0, 3)], ids=str)
@pytest.mark.parametrize("case", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_elementwise_zero_size(case, shape):
    x = np.zeros(shape, np.float32)
    _check_empty(case, x, np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(0, 5), (0, 1), (0, 3, 4), (5, 0), (0, 0)], ids=str)
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_class_zero_size(case, shape):
    # (5, 0): no classes, every row ignored -- PyTorch gives NaN / 0 / zeros(5).
    x = np.zeros(shape, np.float32)
    t_shape = shape[:1] + shape[2:]
    _check_empty(case, x, np.full(t_shape, -100, np.int64))


@pytest.mark.parametrize("shape", [(2, 3, 0), (2, 3, 4, 0)], ids=str)
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_class_zero_size_spatial(case, shape):
    x = np.zeros(shape, np.float32)
    _check_empty(case, x, np.zeros(shape[:1] + shape[2:], np.int64))


@pytest.mark.parametrize("shape", [(2, 3, 0), (2, 3, 4, 0), (0, 3, 2)], ids=str)
def test_soft_targets_zero_size_spatial(shape):
    # Probability targets of the input's shape: PyTorch gives NaN (mean), 0
    # (sum) and an empty per-sample loss.
    torch = pytest.importorskip("torch")
    x = np.zeros(shape, np.float32)
    y = np.zeros(shape, np.float32)
    for reduction in ("mean", "sum", "none"):
        loss, grad = fastloss.CrossEntropyLoss(reduction=reduction).loss_and_grad(x, y)
        expected = torch.nn.functional.cross_entropy(
            torch.zeros(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64),
            reduction=reduction).numpy()
        if reduction == "none":
            assert loss.dtype == np.float32 and loss.shape == expected.shape
        else:
            assert type(loss) is float
            assert (math.isnan(loss) and np.isnan(expected)) or loss == expected
        assert grad.shape == shape and grad.dtype == np.float32


@pytest.mark.parametrize("shape", [(5, 0), (0,)], ids=str)
@pytest.mark.parametrize("case", CLASS, ids=_ids(CLASS))
def test_class_targets_with_no_classes(case, shape):
    # Zero classes and a target that is not ignored: out of range.
    x = np.zeros(shape, np.float32)
    t = np.zeros(shape[:1] if len(shape) == 2 else (), np.int64)
    assert_refused(entry_points(case, x, t), "target")


# ---------------------------------------------------------------------------
# Scalars that do not fit: grad_output and the thread count
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", REGISTRY, ids=_ids(REGISTRY))
def test_grad_output_beyond_float(case):
    x, t = _data(case)
    assert_refused(entry_points(case, x, t, grad_output=10**400), "grad_output")


@pytest.mark.parametrize("n", [2**31, 2**40])
def test_set_num_threads_beyond_c_int(n):
    before = fastloss.get_num_threads()
    x, t = _data(REGISTRY[0])
    try:
        try:
            fastloss.set_num_threads(n)
        except (TypeError, ValueError) as exc:
            assert "n" in str(exc)
            return
        REGISTRY[0].func(x, t)  # either refuse n, or keep working
    finally:
        fastloss.set_num_threads(before)


# ---------------------------------------------------------------------------
# Misaligned arrays
# ---------------------------------------------------------------------------

def _unaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    view = buf[1:].view(a.dtype).reshape(a.shape)
    view[...] = a
    assert not view.flags.aligned and view.flags.c_contiguous
    return view


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
    x, t = _data(case)
    x = np.ascontiguousarray(x, np.float32)
    t = np.ascontiguousarray(t, np.int64 if argspace.target_kind(case) == "class" else np.float32)
    out = np.zeros_like(x)
    if which == "input":
        x = _unaligned(x)
    elif which == "target":
        t = _unaligned(t)
    else:
        out = _unaligned(out)
        assert_refused(entry_points(case, x, t, out=out), "out")
        return
    expected = case.cls(reduction="sum").loss_and_grad(np.array(x), np.array(t))
    got = case.cls(reduction="sum").loss_and_grad(x, t, out=out)
    assert seen and all(seen), "a misaligned array reached the C kernel"
    assert got[0] == expected[0] and np.array_equal(got[1], expected[1])
