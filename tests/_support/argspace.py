"""The space of arguments the fuzzers explore, and the oracle that judges each call.

(A helper module in the package tests/_support, not collected: it holds no
tests. It lives under tests/ so that it travels with them -- the wheel test
copies tests/ alone -- and fuzz/fuzz_args.py imports it from there.)

A *call* is one use of a public fastloss entry point -- the function, or a
loss object's ``__call__``, ``loss_and_grad`` or ``backward`` -- assembled from
a stream of small integer choices, so that one space serves two drivers:

* ``tests/hardening/test_fuzz.py`` draws the choices with Hypothesis, which
  shrinks a failure to a minimal call;
* ``fuzz/fuzz_args.py`` draws them from atheris's byte stream, steered by the
  coverage of fastloss's Python layer (the argument parsing).

Every choice lists its plainest, valid option first: an exhausted byte stream
(atheris then answers the lower bound) and Hypothesis's shrinking both lead
towards the plainest valid call.

A call is either valid or carries deliberate *defects*: a wrong type, dtype,
shape, value or memory layout, or an invalid option value. The oracle:

* valid: the result matches the float64 reference (``fastloss.reference``)
  on the float32 data that fastloss itself sees, within the suite's
  tolerances; the result's type and shape, ``out=`` being the returned
  buffer, ``lse_out=``, and the input and target being left alone (unless
  ``out=input``) are checked as well.
* defective: ``TypeError`` or ``ValueError`` whose message names one of the
  defective arguments, with the input and target left alone.
* ``NotImplementedError`` is accepted only when its message names an option
  the call passed (a feature refused as "not supported yet").

Anything else -- another exception, a wrong result, a crash, a hang -- fails.

The losses come from ``registry.py`` (the spec's losses with test data): a
loss declared there joins with its data (``make_data``), every reduction,
dtype, layout, ``out=`` and ``grad_output``. Options are drawn by parameter
name, for the names that both the loss's function and its class accept: by
the hand-written draw in ``_OPTION_DRAWS`` where there is one, otherwise by
one derived from the option's kind and range in the spec (``_spec_draw``),
so a new loss's options are drawn without an entry here.

A bug found here is pinned by a test of its own in
tests/errors/test_errors.py or tests/values/test_edges.py, marked
``pytest.mark.xfail(strict=True, reason="BUG: ...")`` until it is fixed.
"""

import inspect
import math
import re
import warnings

import numpy as np

from fastloss import _spec

from .registry import REGISTRY, assert_grad_close, assert_loss_close

__all__ = ["Draw", "draw_call", "check", "REGISTRY", "target_kind", "relayout",
           "name_pattern", "names_argument", "per_sample_shape"]

MISSING = object()  # an argument left out of the call


class Draw:
    """Choices from ``int_in_range(lo, hi)`` (both ends included)."""

    def __init__(self, int_in_range):
        self._int = int_in_range

    def int(self, lo, hi):
        return int(self._int(lo, hi))

    def pick(self, options):
        return options[self.int(0, len(options) - 1)]

    def chance(self, k):
        """True one time in k; False when the stream is exhausted."""
        return self.int(0, k - 1) == k - 1


# ---------------------------------------------------------------------------
# How a message names each argument.

NAME_PATTERNS = {
    "input": r"\binputs?\b",
    "target": r"\btargets?\b",
    "out": r"\bout\b",
}


def name_pattern(name):
    """A regular expression that finds `name` in an error message."""
    return NAME_PATTERNS.get(name, rf"\b{re.escape(name)}\b")


def names_argument(message, names):
    return any(re.search(name_pattern(n), message) for n in names)


# ---------------------------------------------------------------------------
# Array layouts: each returns an array-like holding the same values.

def relayout(a, layout):
    a = np.asarray(a)
    if a.ndim == 0 and layout in ("F", "reversed"):
        layout = "C"  # (np.asfortranarray and np.ascontiguousarray make 0-d arrays 1-d)
    if layout == "list" and a.size == 0:
        layout = "C"  # (a list of nothing loses the shape and the dtype)
    if layout == "C":
        return np.array(a, order="C")
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "reversed":  # negative strides on every axis
        flip = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[flip])[flip]
    if layout == "offset":  # a C-contiguous view that starts inside a bigger buffer
        buf = np.empty(a.size + 3, a.dtype)
        view = buf[3:].reshape(a.shape)
        view[...] = a
        return view
    if layout == "strided":  # every other element of the last axis
        if a.ndim == 0:
            return a.copy()
        buf = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        view = buf[..., ::2]
        view[...] = a
        return view
    if layout == "unaligned":  # one byte past an aligned address
        buf = np.empty(a.nbytes + 1, np.uint8)
        view = buf[1:].view(a.dtype).reshape(a.shape)
        view[...] = a
        return view
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if layout == "list":
        return a.tolist()
    raise ValueError(layout)


def _layouts():
    return ["C", "F", "reversed", "offset", "strided", "list", "readonly", "unaligned"]


def _convert(a, dtype):
    """a's values in dtype (rounded, and folded into range, for integer dtypes)."""
    a = np.asarray(a)
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        r = np.round(a.astype(np.float64))
        if dtype.kind == "u":
            r = np.abs(r)
        return np.clip(r, info.min, info.max).astype(dtype)
    return a.astype(dtype)


_FLOAT_DTYPES = [np.float32, np.float64, np.float16]
_INPUT_DTYPES = _FLOAT_DTYPES + [np.int32, np.int64, np.int16, np.int8, np.uint8]
_INDEX_DTYPES = [np.int64, np.int32, np.int16, np.int8, np.uint8, np.uint16, np.uint32,
                 np.uint64, np.intp]


def _fits(values, dtype):
    info = np.iinfo(dtype)
    values = np.asarray(values)
    return values.size == 0 or (values.min() >= info.min and values.max() <= info.max)


# ---------------------------------------------------------------------------
# Kinds of loss, told apart by the registry's own data.

def target_kind(case):
    """'class' (integer class targets, classes on axis 1) or 'elementwise'."""
    return "elementwise" if case.elementwise else "class"


def _params(case):
    func = set(inspect.signature(case.func).parameters)
    cls = set(inspect.signature(case.cls).parameters)
    return func & cls


def per_sample_shape(case, shape):
    if target_kind(case) == "class":
        return tuple(shape[:1]) + tuple(shape[2:]) if len(shape) >= 2 else ()
    return tuple(case.per_sample_shape(shape))


# ---------------------------------------------------------------------------
# A call.

class Call:
    def __init__(self, case, entry):
        self.case = case
        self.entry = entry
        self.kind = target_kind(case)
        self.input = None
        self.target = None
        self.options = {}  # keyword options for the function / the class
        self.call_options = {}  # keyword options of the call itself (lse_out)
        self.grad_output = MISSING
        self.out = MISSING
        self.defects = []  # names of the defective arguments
        self.passed = []  # non-default options passed (NotImplementedError may name them)
        self.notes = []
        # The oracle's view of a valid call.
        self.reduction = getattr(case, "default_reduction", "mean")
        self.ref_options = {}
        self.in_place = False

    def note(self, text):
        self.notes.append(text)

    def defect(self, name, text):
        self.defects.append(name)
        self.note(f"DEFECT {name}: {text}")

    def __repr__(self):
        head = f"{self.case.name}.{self.entry}"
        return head + "\n  " + "\n  ".join(self.notes) + f"\n  defects={self.defects}"


def describe(obj):
    if isinstance(obj, np.ndarray):
        flags = "C" if obj.flags.c_contiguous else ("F" if obj.flags.f_contiguous else "strided")
        extra = "" if obj.flags.writeable else " readonly"
        extra += "" if obj.flags.aligned else " unaligned"
        return f"ndarray {obj.dtype} {obj.shape} {flags}{extra}"
    if isinstance(obj, list):
        return f"list (len {len(obj)})"
    return f"{type(obj).__name__} {obj!r:.60}"


# ---------------------------------------------------------------------------
# Shapes and data.

def _draw_shape(d, call):
    if call.kind == "class":
        path = d.pick(["short", "long", "kdim", "split"])
        if path == "short":  # c <= 16: the columns-in-SIMD-lanes kernel
            c, n = d.int(1, 16), d.int(0, 12)
        elif path == "long":  # one row at a time
            c, n = d.int(17, 70), d.int(0, 12)
        elif path == "kdim":  # (N, C, d1, ..., dk)
            spatial = tuple(d.int(0, 5) for _ in range(d.int(1, 2)))
            return (d.int(0, 4), d.int(1, 20)) + spatial
        else:  # c >= 32768 with few rows: rows split into chunks
            c, n = d.int(32768, 32800), d.int(0, 3)
        return (n, c) if d.pick([2, 1]) == 2 else (c,)
    if d.chance(8):  # big enough for the OpenMP block driver
        return (d.int(32768, 40000),)
    ndim = d.pick([2, 1, 0, 3])
    return tuple(d.int(0, 6) for _ in range(ndim))


def _make_data(case, call, shape, seed):
    if call.kind == "class" and len(shape) > 2:
        # The registry's data is (N, C) or (C,); K-dimensional data is made
        # here the same way (classes on axis 1).
        rng = np.random.default_rng(seed)
        x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
        t = rng.integers(0, shape[1], size=shape[:1] + shape[2:], dtype=np.int64)
        return x, t
    x, t = case.make_data(shape, seed)
    return np.asarray(x), np.asarray(t)


def _draw_input(d, call, x):
    if d.chance(6):
        bad = d.pick(["bool", "complex", "object", "str", "None", "ragged", "datetime"])
        if bad == "None":
            value = None
        elif bad == "ragged":
            value = [[1.0, 2.0], [3.0]]
        elif bad == "bool":
            value = x > 0
        elif bad == "complex":
            value = x.astype(np.complex64)
        elif bad == "object":
            value = x.astype(object)
        elif bad == "str":
            value = x.astype(str)
        else:
            value = np.zeros(x.shape, "M8[D]")
        call.input = value
        call.defect("input", f"{bad}: {describe(value)}")
        return
    if call.kind == "class" and d.chance(16):
        call.input = np.float32(1.5)
        call.defect("input", "a scalar for a loss that needs (N, C) or (C,)")
        return
    dtype = d.pick(_INPUT_DTYPES)
    layout = d.pick(_layouts())
    value = relayout(_convert(x, dtype), layout)
    if x.ndim == 0 and d.chance(4):
        value = float(np.asarray(value))
    call.input = value
    call.note(f"input: {np.dtype(dtype)} {layout} -> {describe(value)}")


def _draw_class_target(d, call, t, n_classes, ignore_index):
    t = np.array(t, dtype=np.int64)
    if d.chance(6):
        choices = ["float-fraction", "float-integral", "bool", "complex", "str", "None",
                   "shape-extra", "shape-axis"]
        if t.size:
            choices += ["too-big", "negative", "uint64-huge"]
        if t.ndim and t.shape[0]:
            choices.append("shape-short")
        bad = d.pick(choices)
        i = d.int(0, t.size - 1) if t.size else 0
        if bad == "float-fraction":
            value = t.astype(np.float64) + 0.5
        elif bad == "float-integral":
            value = t.astype(np.float64)
        elif bad == "bool":
            value = t > 0
        elif bad == "complex":
            value = t.astype(np.complex128)
        elif bad == "str":
            value = t.astype(str)
        elif bad == "None":
            value = None
        elif bad == "shape-extra":
            value = np.zeros((t.shape[0] + 1,) + t.shape[1:] if t.ndim else (1,), np.int64)
        elif bad == "shape-axis":
            value = t[..., None]
        elif bad == "shape-short":
            value = t[:-1]
        elif bad == "uint64-huge":
            value = t.astype(np.uint64) if (t >= 0).all() else np.zeros(t.shape, np.uint64)
            value.reshape(-1)[i] = np.uint64(2**63 + 5)
        else:
            value = t.copy()
            wrong = [n_classes + k for k in range(3)] if bad == "too-big" else \
                [-1, -100, -(2**40)]
            value.reshape(-1)[i] = d.pick([w for w in wrong if w != ignore_index])
        call.target = value
        call.defect("target", f"{bad}: {describe(value)}")
        return
    dtype = d.pick([dt for dt in _INDEX_DTYPES if _fits(t, dt)])
    layout = d.pick([lay for lay in _layouts() if lay != "list" or t.size])
    value = relayout(t.astype(dtype), layout)
    if t.ndim == 0 and d.chance(4):
        value = int(np.asarray(value))
    call.target = value
    call.note(f"target: {np.dtype(dtype)} {layout} -> {describe(value)}")


def _draw_elementwise_target(d, call, y):
    if d.chance(6):
        bad = d.pick(["bool", "complex", "object", "str", "None", "shape-extra", "shape-axis",
                      "shape-short"])
        if bad == "bool":
            value = y > 0.5
        elif bad == "complex":
            value = y.astype(np.complex64)
        elif bad == "object":
            value = y.astype(object)
        elif bad == "str":
            value = y.astype(str)
        elif bad == "None":
            value = None
        elif bad == "shape-extra":
            value = np.zeros(y.shape + (2,), np.float32)
        elif bad == "shape-axis":
            value = np.zeros((2,) + y.shape, np.float32)
        else:
            value = np.zeros((y.shape[0] + 1,) + y.shape[1:], np.float32) if y.ndim else \
                np.zeros(3, np.float32)
        call.target = value
        call.defect("target", f"{bad}: {describe(value)}")
        return
    dtype = d.pick(_FLOAT_DTYPES + [np.int32])
    layout = d.pick(_layouts())
    value = relayout(_convert(y, dtype), layout)
    if y.ndim == 0 and d.chance(4):
        value = float(np.asarray(value))
    call.target = value
    call.note(f"target: {np.dtype(dtype)} {layout} -> {describe(value)}")


# ---------------------------------------------------------------------------
# Options, by parameter name: each returns (value, defective).

_BAD_REDUCTIONS = ["avg", "MEAN", "", None, 1, b"mean", ["mean"], "elementwise_mean"]


def _bad_scalar(d, *bad):
    values = list(bad) + [math.nan, math.inf, "1", None, True, np.ones(1), 1j, 1e39, 1e300,
                          10**400]  # (the last beyond float64 too)
    return d.pick(values)


def _draw_weight(d, call, shape, n_classes):
    if call.kind == "class":
        good = [np.linspace(0.5, 2.0, n_classes), np.linspace(2.0, 0.1, n_classes).tolist(),
                np.linspace(0.5, 2.0, n_classes).astype(np.float32)]
        bad = [np.ones(n_classes + 1), np.where(np.arange(n_classes) == 0, np.nan, 1.0),
               np.where(np.arange(n_classes) == 0, np.inf, 1.0), np.ones((n_classes, 1)),
               np.ones(n_classes).astype(str), np.ones(n_classes, bool), None if False else "w"]
    else:
        last = shape[-1] if shape else 1
        good = [np.linspace(0.0, 2.0, int(np.prod(shape))).reshape(shape),
                np.linspace(0.5, 1.5, last) if shape else np.array(1.3), np.float32(0.7)]
        bad = [np.ones(last + 2), np.full(shape, "w"), np.ones(shape, bool),
               np.ones((2,) + tuple(shape) + (3,))]
        if np.prod(shape):  # (NaN in an empty weight is no NaN at all)
            bad += [np.full(shape, np.nan), np.full(shape, -np.inf)]
    if d.chance(3):
        return d.pick(bad), True
    return d.pick(good), False


def _draw_pos_weight(d, call, shape, n_classes):
    last = shape[-1] if shape else 1
    if d.chance(3):
        bad = [np.ones(last + 2), np.full(last, "p")]
        if last and np.prod(shape):
            bad += [np.full(last, np.nan), np.full(last, np.inf)]
        return d.pick(bad), True
    good = np.linspace(0.5, 3.0, last) if shape else np.array(1.5)
    return d.pick([good, np.float32(2.0)]), False


def _scalar_option(good, bad):
    def draw(d, call, shape, n_classes):
        if d.chance(3):
            return _bad_scalar(d, *bad), True
        return d.pick(good), False

    return draw


_OPTION_DRAWS = {
    "weight": _draw_weight,
    "pos_weight": _draw_pos_weight,
    "label_smoothing": _scalar_option([0.1, 1.0, 0.0, np.float32(0.25)], [-0.1, 1.5]),
    "z_loss": _scalar_option([1e-4, 0.0, 0.5], [-1.0]),
    "alpha": _scalar_option([0.25, -1.0, 0.9, 1], []),
    "gamma": _scalar_option([2.0, 0.0, 1.0, 3.3], [-1.0]),
    "delta": _scalar_option([1.0, 0.5, 2.5, 2], [0.0, -1.0]),
    "beta": _scalar_option([1.0, 0.0, 0.3], [-1.0]),
}


def _spec_draw(opt):
    """A draw for an option that _OPTION_DRAWS does not name, from its kind and
    range in the spec (None for kinds drawn elsewhere or not at all: the
    class targets' ignore_index, lse_out, return_correct)."""
    if opt.kind in (_spec.WEIGHT, _spec.CLASS_WEIGHT):
        return _draw_weight
    if opt.kind != _spec.FLOAT:
        return None
    good = [opt.default]
    if opt.low is not None and not opt.positive:
        good.append(opt.low)
    if opt.high is not None:
        good.append(opt.high)
    bad = []
    if opt.low is not None:
        bad.append(opt.low - 1.0)
        if opt.positive:
            bad.append(opt.low)
    if opt.high is not None:
        bad.append(opt.high + 0.5)
    return _scalar_option(good, bad)


def _option_draws(case):
    """name -> draw for every option of `case` that a call can pass."""
    draws = {}
    for opt in case.options:
        draw = _OPTION_DRAWS.get(opt.name) or _spec_draw(opt)
        if draw is not None and not opt.per_call:
            draws[opt.name] = draw
    return draws


def _draw_options(d, call, params, shape, n_classes):
    # The deprecated size_average / reduce pair overrides reduction (as in PyTorch).
    legacy = {}
    if {"size_average", "reduce"} <= params and d.chance(8):
        legacy = {"size_average": d.pick([None, True, False]), "reduce": d.pick([None, True, False])}
        legacy = {k: v for k, v in legacy.items() if v is not None}
    if legacy:
        size_average = legacy.get("size_average", True)
        reduce = legacy.get("reduce", True)
        call.reduction = "mean" if (size_average and reduce) else ("sum" if reduce else "none")
        call.options.update(legacy)
        call.note(f"legacy {legacy} -> {call.reduction}")
    how = d.pick(["valid", "omitted", "bad"] if not legacy else ["valid", "omitted"])
    if how == "valid":
        r = d.pick(["mean", "sum", "none"])
        call.options["reduction"] = r
        if not legacy:
            call.reduction = r
        call.note(f"reduction={r!r}")
    elif how == "bad" and d.chance(2):
        r = d.pick(_BAD_REDUCTIONS)
        call.options["reduction"] = r
        call.defect("reduction", repr(r))
    else:
        call.note(f"reduction omitted ({call.reduction})")

    draws = _option_draws(call.case)
    for name in sorted(params & set(draws)):
        if not d.chance(5):
            continue
        value, defective = draws[name](d, call, shape, n_classes)
        call.options[name] = value
        call.passed.append(name)
        if defective:
            call.defect(name, describe(value))
        else:
            call.ref_options[name] = value
            call.note(f"{name}={describe(value)}")


def _draw_ignore_index(d, call, params, n_classes):
    """The effective ignore_index (-100 when the loss has none)."""
    if "ignore_index" not in params:
        return -100
    how = d.pick(["omitted", "valid", "bad"])
    if how == "omitted":
        return -100
    if how == "valid":
        value = d.pick([-100, -1, 0, n_classes, 2**40, np.int32(-5), np.uint8(3)])
        call.options["ignore_index"] = value
        call.ref_options["ignore_index"] = int(value)
        call.note(f"ignore_index={value!r}")
        return int(value)
    value = d.pick([None, 1.5, "3", 2**70, -(2**70), np.float64(2.0), [1]])
    call.options["ignore_index"] = value
    call.defect("ignore_index", repr(value))
    return -100


# ---------------------------------------------------------------------------
# grad_output, out and lse_out.

def _draw_grad_output(d, call, ps_shape):
    if d.chance(5):
        if call.reduction == "none":
            bad = d.pick(["shape-axis", "shape-extra", "str", "None", "complex", "bool"])
            if bad == "shape-axis":
                value = np.ones(ps_shape + (2,), np.float32)
            elif bad == "shape-extra":
                value = np.ones((ps_shape[0] + 1,) + ps_shape[1:], np.float32) \
                    if ps_shape else np.ones(2, np.float32)
            elif bad == "complex":
                value = np.ones(ps_shape, np.complex64)
            elif bad == "bool":
                value = np.ones(ps_shape, bool)
            else:
                value = {"str": "1.0", "None": None}[bad]
        else:
            value = d.pick([np.ones(2, np.float32), np.ones(1, np.float32), [1.0, 2.0], "1.0",
                            None, 1j, np.ones(3, bool)])
        call.grad_output = value
        call.defect("grad_output", describe(value))
        return
    if call.reduction == "none":
        rng = np.random.default_rng(d.int(0, 1000))
        g = rng.uniform(-2.0, 2.0, ps_shape).astype(np.float32)
        how = d.pick(["array", "omitted", "scalar", "float64", "list", "int32", "F", "strided"])
        if how == "omitted":
            return
        value = {
            "array": lambda: g,
            "scalar": lambda: 0.37,
            "float64": lambda: g.astype(np.float64),
            "list": lambda: relayout(g, "list"),
            "int32": lambda: _convert(g, np.int32),
            "F": lambda: relayout(g, "F"),
            "strided": lambda: relayout(g, "strided"),
        }[how]()
    else:
        value = d.pick([MISSING, 0.37, 2, np.float32(0.5), np.array(1.5), -1.0, np.int64(3)])
        if value is MISSING:
            return
    call.grad_output = value
    call.note(f"grad_output: {describe(value)}")


def _suitable_in_place(x):
    return (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous
            and x.flags.writeable and x.flags.aligned)


def _draw_out(d, call, shape):
    how = d.pick(["omitted", "None", "fresh", "input", "bad"])
    if how == "omitted":
        return
    if how == "None":
        call.out = None
        return
    if how == "fresh":
        call.out = np.full(shape, np.nan, np.float32)
        call.note("out: a fresh float32 array")
        return
    if how == "input":
        call.out = call.input
        if "input" not in call.defects and _suitable_in_place(call.input):
            call.in_place = True
            call.note("out=input (in place)")
        else:
            call.defect("out", f"out=input, which is {describe(call.input)}")
        return
    size = int(np.prod(shape))
    choices = ["float64", "float16", "int32", "shape", "readonly", "list"]
    if size >= 1:
        choices.append("unaligned")
    if size >= 2:
        choices.append("strided")
    if size >= 2 and "input" not in call.defects:
        choices.append("overlaps-input")  # (one element apart: overlaps from size 2)
    if size >= 1 and call.kind == "elementwise" and "target" not in call.defects:
        choices.append("is-target")
    if size >= 1:
        g = call.grad_output
        # (a 0-d grad_output is a scalar, read before the kernel runs: it
        # may share memory with out)
        if isinstance(g, np.ndarray) and g.ndim and g.size and "grad_output" not in call.defects:
            choices.append("overlaps-grad_output")
        w = call.options.get("weight")
        if isinstance(w, np.ndarray) and w.size and "weight" not in call.defects:
            choices.append("overlaps-weight")
    bad = d.pick(choices)
    if bad in ("float64", "float16", "int32"):
        value = np.zeros(shape, bad)
    elif bad == "shape":
        value = np.zeros(shape + (1,), np.float32)
    elif bad == "readonly":
        value = np.zeros(shape, np.float32)
        value.flags.writeable = False
    elif bad == "unaligned":
        value = relayout(np.zeros(shape, np.float32), "unaligned")
    elif bad == "list":
        value = np.zeros(shape, np.float32).tolist()
    elif bad == "strided":  # every other float: not contiguous once size >= 2
        value = np.zeros(shape + (2,), np.float32)[..., 0]
    elif bad == "overlaps-input":
        # The input moves into a float32 buffer, one element after the out array.
        x32 = np.array(np.asarray(call.input), dtype=np.float32)
        buf = np.zeros(size + 1, np.float32)
        view = buf[1:].reshape(shape)
        view[...] = x32
        call.input = view
        call.note(f"input moved into a shared buffer: {describe(view)}")
        value = buf[:-1].reshape(shape)
    elif bad in ("overlaps-grad_output", "overlaps-weight"):
        # grad_output (or weight) moves into a float32 buffer whose first
        # element is the last one of out.
        name = bad.split("-")[1]
        other = np.asarray(call.grad_output if name == "grad_output" else call.options[name],
                           np.float32)
        buf = np.zeros(size - 1 + other.size, np.float32)
        value = buf[:size].reshape(shape)
        view = buf[size - 1:].reshape(other.shape)
        view[...] = other
        if name == "grad_output":
            call.grad_output = view
        else:
            call.options[name] = view
        call.note(f"{name} moved into out's buffer: {describe(view)}")
    else:  # is-target (elementwise)
        t32 = np.array(np.asarray(call.target, np.float32), order="C")
        call.target = t32
        call.note("target made float32 C-contiguous (to be out as well)")
        value = t32
    call.out = value
    call.defect("out", f"{bad}: {describe(value)}")


def _draw_lse_out(d, call, ps_shape):
    """cross_entropy's lse_out= (a per-sample float32 output), now and then."""
    if not d.chance(6):
        return
    if d.chance(3):
        value = d.pick([np.zeros(ps_shape, np.float64), np.zeros(ps_shape + (1,), np.float32),
                        np.zeros(ps_shape, np.float32).tolist(), "lse",
                        np.zeros(ps_shape, np.int32)])
        if isinstance(value, np.ndarray) and value.dtype == np.float32 and d.chance(2):
            value = np.zeros(ps_shape, np.float32)
            value.flags.writeable = False
        call.call_options["lse_out"] = value
        call.defect("lse_out", describe(value))
        return
    size = int(np.prod(ps_shape))
    if size and "input" not in call.defects and d.chance(3):
        # lse_out over the first elements of the input (moved to float32 C
        # order, which fastloss uses as is: a copy, e.g. of Fortran-ordered
        # input, would leave lse_out overlapping nothing the kernel reads).
        x32 = np.array(np.asarray(call.input), dtype=np.float32, order="C")
        if x32.size >= size:
            call.input = x32
            value = x32.reshape(-1)[:size].reshape(ps_shape)
            call.call_options["lse_out"] = value
            call.defect("lse_out", f"overlaps the input: {describe(value)}")
            return
    call.call_options["lse_out"] = np.full(ps_shape, -1.0, np.float32)
    call.note("lse_out: a fresh float32 array")


# ---------------------------------------------------------------------------
# Drawing a whole call.

def draw_call(d, cases=REGISTRY):
    case = d.pick(list(cases))
    entry = d.pick(["loss_and_grad", "func", "call", "backward"])
    call = Call(case, entry)
    params = _params(case)
    shape = _draw_shape(d, call)
    seed = d.int(0, 2**16)
    x, t = _make_data(case, call, shape, seed)
    n_classes = shape[1] if (call.kind == "class" and len(shape) >= 2) else (
        shape[0] if shape else 0)
    call.note(f"shape {shape}, seed {seed}")

    ignore_index = _draw_ignore_index(d, call, params, n_classes) \
        if call.kind == "class" else None
    _draw_options(d, call, params, shape, n_classes)
    if call.kind == "class" and t.size:
        flat = t.reshape(-1)
        for i in range(min(flat.size, 16)):
            if d.chance(5):
                flat[i] = ignore_index
    _draw_input(d, call, x)
    if call.kind == "class":
        _draw_class_target(d, call, t, n_classes, ignore_index)
    else:
        _draw_elementwise_target(d, call, t)
    ps_shape = per_sample_shape(case, shape)
    if entry == "backward":
        _draw_grad_output(d, call, ps_shape)
    if entry in ("loss_and_grad", "backward"):
        _draw_out(d, call, shape)
    if entry != "backward" and "lse_out" in inspect.signature(case.func).parameters:
        _draw_lse_out(d, call, ps_shape)
    return call


# ---------------------------------------------------------------------------
# Running and judging a call.

def invoke(call):
    kw = dict(call.options)
    if call.entry == "func":
        return call.case.func(call.input, call.target, **kw, **call.call_options)
    obj = call.case.cls(**kw)
    if call.entry == "call":
        return obj(call.input, call.target, **call.call_options)
    extra = {} if call.out is MISSING else {"out": call.out}
    if call.entry == "loss_and_grad":
        return obj.loss_and_grad(call.input, call.target, **extra, **call.call_options)
    if call.grad_output is not MISSING:
        extra["grad_output"] = call.grad_output
    return obj.backward(call.input, call.target, **extra)


def _snapshot(a):
    return np.array(a, copy=True) if isinstance(a, np.ndarray) else None


def _unchanged(before, after):
    return before is None or (before.shape == after.shape and before.tobytes() == after.tobytes())


def check(call):
    """Run `call` and judge it: 'ok', 'refused' or 'not_yet', or AssertionError."""
    x_before, t_before = _snapshot(call.input), _snapshot(call.target)
    oracle = None
    if not call.defects:  # what fastloss will see, before anything can change it
        oracle = (np.array(np.asarray(call.input), dtype=np.float32), _ref_target(call))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = invoke(call)
        except NotImplementedError as exc:
            if call.passed and names_argument(str(exc), call.passed):
                return "not_yet"
            raise AssertionError(f"NotImplementedError for no option passed: {exc}\n"
                                 f"{call!r}") from exc
        except (TypeError, ValueError) as exc:
            if not call.defects:
                raise AssertionError(f"a valid call raised {type(exc).__name__}: {exc}\n"
                                     f"{call!r}") from exc
            if not names_argument(str(exc), call.defects):
                raise AssertionError(f"the message names none of {call.defects}: "
                                     f"{type(exc).__name__}: {exc}\n{call!r}") from exc
            if call.out is not call.input:  # (a refused in-place call may have begun)
                assert _unchanged(x_before, call.input), f"refused call changed its input\n{call!r}"
            assert _unchanged(t_before, call.target), f"refused call changed its target\n{call!r}"
            return "refused"
    if call.defects:
        first = result[0] if isinstance(result, tuple) else result
        raise AssertionError(f"a call with defects {call.defects} returned {describe(first)}"
                             f"\n{call!r}")
    _verify(call, result, oracle, x_before, t_before)
    return "ok"


def _ref_target(call):
    if call.kind == "class":
        return np.asarray(call.target)
    return np.asarray(call.target, dtype=np.float32)


def _as_rows(x, t):
    """K-dimensional class data as the equivalent (N*d, C) problem."""
    if x.ndim <= 2:
        return x, t
    c = x.shape[1]
    return np.moveaxis(x, 1, -1).reshape(-1, c), np.asarray(t).reshape(-1)


def _from_rows(a, x_shape):
    if len(x_shape) <= 2:
        return a
    moved = (x_shape[0],) + tuple(x_shape[2:]) + (x_shape[1],)
    return np.moveaxis(np.asarray(a).reshape(moved), -1, 1)


def _reference(call, x, t, grad_output=None):
    """The reference loss (grad_output None) or gradient, K-dim folded into rows."""
    case, reduction, kw = call.case, call.reduction, call.ref_options
    if call.kind == "class" and x.ndim > 2:
        xr, tr = _as_rows(x, t)
        ps = per_sample_shape(case, x.shape)
        if grad_output is None:
            value = case.ref(xr, tr, reduction, **kw)
            return np.reshape(value, ps) if reduction == "none" else value
        g = grad_output if np.ndim(grad_output) == 0 else np.reshape(grad_output, -1)
        return _from_rows(case.ref_gradient(xr, tr, reduction, grad_output=g, **kw), x.shape)
    if grad_output is None:
        return case.ref(x, t, reduction, **kw)
    return case.ref_gradient(x, t, reduction, grad_output=grad_output, **kw)


def _scale(call, x, t, g):
    """Largest factor multiplying a per-sample gradient (see assert_grad_close)."""
    g = np.abs(np.asarray(g, np.float64))
    w = np.abs(np.asarray(call.ref_options.get("weight", 1.0), np.float64))
    w_max = float(w.max()) if w.size else 1.0
    if call.reduction == "none":
        return (float(g.max()) if g.size else 0.0) * max(w_max, 1.0)
    if call.reduction == "sum":
        return float(g) * max(w_max, 1.0)
    if call.kind == "class":
        ignore = call.ref_options.get("ignore_index", -100)
        _, tr = _as_rows(x, t)
        kept = np.asarray(tr).reshape(-1)
        kept = kept[kept != ignore]
        denom = float(w[kept].sum()) if w.ndim == 1 and w.size > 1 else kept.size * w_max
    else:
        # the spec's rule: the weight's sum (MSE, L1) or the element count
        denom = float(np.broadcast_to(w, x.shape).sum()) if "weight" in call.ref_options \
            and call.case.spec.mean == _spec.MEAN_WEIGHT_SUM else x.size
    return float(g) * max(w_max, 1.0) / max(abs(denom), 1e-30)


def _verify(call, result, oracle, x_before, t_before):
    x, t = oracle
    where = f"\n{call!r}"
    loss = grad = None
    if call.entry in ("func", "call"):
        loss = result
    elif call.entry == "loss_and_grad":
        assert isinstance(result, tuple) and len(result) == 2, f"{type(result)}{where}"
        loss, grad = result
    else:
        grad = result
    ps_shape = per_sample_shape(call.case, x.shape)
    if call.entry != "backward":
        expected = _reference(call, x, t)
        if call.reduction == "none":
            assert isinstance(loss, np.ndarray) and loss.dtype == np.float32, describe(loss) + where
            assert loss.shape == ps_shape, f"{loss.shape} != {ps_shape}{where}"
        else:
            assert type(loss) is float, f"{type(loss)}{where}"
        try:
            assert_loss_close(loss, expected)
        except AssertionError as exc:
            raise AssertionError(f"loss: {exc}{where}") from None
    if grad is not None:
        assert isinstance(grad, np.ndarray) and grad.dtype == np.float32, describe(grad) + where
        assert grad.shape == x.shape, f"grad shape {grad.shape} != {x.shape}{where}"
        if isinstance(call.out, np.ndarray):
            assert grad is call.out, f"the gradient is not the out= array{where}"
        g = 1.0
        if call.entry == "backward" and call.grad_output is not MISSING:
            g = np.asarray(call.grad_output, dtype=np.float32)
            g = float(g) if g.ndim == 0 else g
        expected = _reference(call, x, t, grad_output=g)
        try:
            assert_grad_close(grad, expected, scale=_scale(call, x, t, g))
        except AssertionError as exc:
            raise AssertionError(f"gradient: {exc}{where}") from None
    lse = call.call_options.get("lse_out")
    if lse is not None:
        _verify_lse(call, lse, x, t, where)
    if not call.in_place:
        assert _unchanged(x_before, call.input), f"the call changed its input{where}"
    assert _unchanged(t_before, call.target), f"the call changed its target{where}"


def _verify_lse(call, lse, x, t, where):
    xr, tr = _as_rows(x.astype(np.float64), t)
    xr = xr.reshape(-1, xr.shape[-1])
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(xr, axis=1, keepdims=True) if xr.shape[1] else np.zeros((xr.shape[0], 1))
        expected = (m + np.log(np.sum(np.exp(xr - m), axis=1, keepdims=True)))[:, 0]
    ignore = call.ref_options.get("ignore_index", -100)
    expected = np.where(np.asarray(tr).reshape(-1) == ignore, np.nan, expected)
    got = np.asarray(lse, np.float64).reshape(-1)
    try:
        assert_loss_close(got, expected)
    except AssertionError as exc:
        raise AssertionError(f"lse_out: {exc}{where}") from None
