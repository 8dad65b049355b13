"""Invalid option values, for every option of every loss, and the reduction.

Each row is refused by every entry point (the function, and the class --
constructed inside the call -- through ``__call__``, ``forward``,
``loss_and_grad`` and ``backward``) with TypeError or ValueError naming the
option; a row that says which of the two (or more of the message) demands it.

The rows come from three places, merged (a value listed twice for the same
option is one row, with the stricter expectation):

* the spec (``fastloss._spec``): every FLOAT option gets NaN, infinities, a
  string, None, a bool, a complex, an array, a list, values beyond float32
  (1e39) and beyond float (10**400); below its ``low`` (-1 and just below),
  ``low`` itself when ``positive`` (and 1e-46, which rounds to 0 in float32),
  above its ``high``. INT options get non-integers and values beyond int64.
  A new loss's options are covered without editing this file;
* the hand-written tables below, kept as they were written (by option
  name: they apply to every loss with that option);
* the rows with an exact exception type and message, per loss.

Array options (the spec's WEIGHT and CLASS_WEIGHT kinds) get NaN,
infinities, wrong shapes and dtypes by kind, plus the hand-written rows.
"""

import inspect
import math
import warnings

import numpy as np
import pytest
from _support.calls import ERRORS, assert_refused, data, entry_points
from _support.registry import (
    BCE_WITH_LOGITS,
    CROSS_ENTROPY,
    HUBER,
    L1,
    MSE,
    REGISTRY,
    SIGMOID_FOCAL,
    SMOOTH_L1,
)

from fastloss import _spec

NAN, INF = math.nan, math.inf


# ---------------------------------------------------------------------------
# The rows
# ---------------------------------------------------------------------------


class Rows:
    """Rows (case, option, label, value, error, match, not_yet_ok), one per
    distinct value of an option of a loss: adding a value twice keeps one
    row, with the exact exception type, the message pattern and no
    not-implemented-yet skip, if either addition asked for them."""

    def __init__(self):
        self._rows = {}

    def add(self, case, name, value, error=ERRORS, match=None, not_yet_ok=True, label=None):
        key = (case.name, name, _key(value))
        label = _label(value) if label is None else label
        if key in self._rows:
            old_label, old_value, old_error, old_match, old_not_yet = self._rows[key]
            if error is not ERRORS and old_error is not ERRORS and error is not old_error:
                raise ValueError(f"{case.name} {name}={label}: both {error} and {old_error}")
            if match is not None and old_match is not None and match != old_match:
                raise ValueError(f"{case.name} {name}={label}: two message patterns")
            error = old_error if error is ERRORS else error
            match = old_match if match is None else match
            self._rows[key] = (old_label, old_value, error, match, not_yet_ok and old_not_yet)
        else:
            self._rows[key] = (label, value, error, match, not_yet_ok)

    def params(self, sep="="):
        cases = {c.name: c for c in REGISTRY}
        return [
            pytest.param(cases[case], name, value, error, match, not_yet_ok,
                         id=f"{case}-{name}{sep}{label}")
            for (case, name, _), (label, value, error, match, not_yet_ok) in self._rows.items()
        ]


def _key(value):
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    return (type(value).__name__, repr(value))


def _label(value):
    if type(value) is int and abs(value) > 10**30:
        return "10**400" if value == 10**400 else f"{value:.3g}"
    return repr(value)


def _reductions(case):
    """The reductions a row runs with: those its tables were written for."""
    return tuple(dict.fromkeys(("mean", "sum", case.default_reduction)))


def _scalar_options(case):
    return [o for o in case.options if o.kind in (_spec.FLOAT, _spec.INT) and not o.per_call]


def spec_bad_values(opt):
    """Invalid values of a FLOAT or INT option, from its kind and range."""
    if opt.kind == _spec.INT:
        return [None, 1.5, "3", 2**70, -(2**70), [1], np.float64(2.0)]
    values = [NAN, INF, -INF, "1", None, True, 1j, np.ones(1), [1.0], 1e39, -1e39]
    if opt.low is not None:
        values += [opt.low - 1.0, opt.low - 1e-9]
        if opt.positive:
            values += [opt.low, opt.low + 1e-46]  # (1e-46 is 0 in float32)
    if opt.high is not None:
        values += [opt.high + 0.5]
    return values


# Hand-written, by option name (every loss with the option).
BAD_OPTIONS = {
    "reduction": ["none ", b"sum", ["mean"], "elementwise_mean", 0, NAN],
    "ignore_index": [None, 1.5, "3", 2**70, -(2**70), [1], np.float64(2.0)],
    "label_smoothing": [-0.1, 1.5, NAN, INF, "0.1", None, True, np.ones(2), 1e39],
    "z_loss": [-1.0, NAN, INF, "0", None, True, 1j, 1e39, 1e300],
    "alpha": [NAN, INF, -INF, "a", None, True, [0.25], 1e39, -1e300],
    "gamma": [-1.0, NAN, INF, None, "2", 2j, 1e39],
    "delta": [0.0, -1.0, NAN, INF, None, "1", np.ones(1), 1e39, 1e-46],
    "beta": [-1.0, NAN, INF, None, "1", -0.0 - 1e-9, 1e39],
}

# A reduction that is not 'none', 'mean' or 'sum': a ValueError on every loss.
UNKNOWN_REDUCTIONS = ["avg", "MEAN", "", None, 1, "elementwise_mean"]

# (case, option, value, exception, message pattern): the exact expectation.
EXACT = [
    (CROSS_ENTROPY, "label_smoothing", -0.1, ValueError, "label_smoothing"),
    (CROSS_ENTROPY, "label_smoothing", 1.5, ValueError, "label_smoothing"),
    (CROSS_ENTROPY, "label_smoothing", NAN, ValueError, "label_smoothing"),
    (CROSS_ENTROPY, "label_smoothing", "0.1", TypeError, "label_smoothing"),
    (CROSS_ENTROPY, "z_loss", -1.0, ValueError, "z_loss"),
    (CROSS_ENTROPY, "z_loss", INF, ValueError, "z_loss"),
    (HUBER, "delta", 0.0, ValueError, "delta"),
    (HUBER, "delta", -1.0, ValueError, "delta"),
    (HUBER, "delta", NAN, ValueError, "delta"),
    (HUBER, "delta", INF, ValueError, "delta"),
    (HUBER, "delta", "1", TypeError, "delta"),
    (SMOOTH_L1, "beta", -0.5, ValueError, "beta"),
    (SMOOTH_L1, "beta", NAN, ValueError, "beta"),
    (SMOOTH_L1, "beta", INF, ValueError, "beta"),
    (SMOOTH_L1, "beta", None, TypeError, "beta"),
    (SIGMOID_FOCAL, "gamma", -0.5, ValueError, "gamma"),
    (SIGMOID_FOCAL, "gamma", NAN, ValueError, "gamma"),
    (SIGMOID_FOCAL, "gamma", INF, ValueError, "gamma"),
    (SIGMOID_FOCAL, "alpha", NAN, ValueError, "alpha"),
    (SIGMOID_FOCAL, "alpha", -INF, ValueError, "alpha"),
    (SIGMOID_FOCAL, "alpha", "0.25", TypeError, "alpha"),
    # Beyond float32's range: finite Python floats that the kernels, which
    # take float32 options, cannot hold. (Until c23a127 delta=1e39,
    # delta=1e-50 and beta=1e39 gave "invalid arguments to the C kernel
    # (status 3)", naming nothing, and alpha=1e39 a NaN loss.)
    (HUBER, "delta", 1e39, ValueError, "delta"),
    (HUBER, "delta", 1e-50, ValueError, "delta"),
    (SMOOTH_L1, "beta", 1e39, ValueError, "beta"),
    (SIGMOID_FOCAL, "alpha", 1e39, ValueError, "alpha"),
]


def _scalar_rows():
    rows = Rows()
    for case in REGISTRY:
        for value in BAD_OPTIONS["reduction"]:
            rows.add(case, "reduction", value)
        for value in UNKNOWN_REDUCTIONS:
            rows.add(case, "reduction", value, ValueError, "reduction", not_yet_ok=False)
        for opt in _scalar_options(case):
            for value in BAD_OPTIONS.get(opt.name, []) + spec_bad_values(opt):
                rows.add(case, opt.name, value)
            if opt.kind == _spec.FLOAT:  # beyond float64 too: never "not yet"
                rows.add(case, opt.name, 10**400, not_yet_ok=False)
    for case, name, value, error, match in EXACT:
        rows.add(case, name, value, error, match, not_yet_ok=False)
    return rows.params()


def _option_calls(case, name, value, x, t):
    if name == "reduction":
        return entry_points(case, x, t, reduction=value)
    return [call for reduction in _reductions(case)
            for call in entry_points(case, x, t, options={name: value}, reduction=reduction)]


@pytest.mark.parametrize("case,name,value,error,match,not_yet_ok", _scalar_rows())
def test_invalid_option_value(case, name, value, error, match, not_yet_ok):
    x, t = data(case)
    assert_refused(_option_calls(case, name, value, x, t), name, error=error, match=match,
                   not_yet_ok=not_yet_ok)


# ---------------------------------------------------------------------------
# Array options: NaN, infinities, wrong shapes and types
# ---------------------------------------------------------------------------


def _bad_weights(opt, shape):
    """label -> invalid value of a WEIGHT (elementwise) or CLASS_WEIGHT option."""
    if opt.kind == _spec.CLASS_WEIGHT:
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


# (case, option, label, value, exception, message pattern), for the (6, 5) data.
EXACT_WEIGHTS = [
    (CROSS_ENTROPY, "weight", "ones-4", np.ones(4), ValueError, "weight"),
    (CROSS_ENTROPY, "weight", "ones-5x1", np.ones((5, 1)), ValueError, "weight"),
    (CROSS_ENTROPY, "weight", "nan-2", np.array([1, 1, np.nan, 1, 1]), ValueError, "weight"),
    (CROSS_ENTROPY, "weight", "inf-2", np.array([1, 1, np.inf, 1, 1]), ValueError, "weight"),
    (CROSS_ENTROPY, "weight", "letters", np.array(["a"] * 5), TypeError, "weight"),
    (BCE_WITH_LOGITS, "weight", "nan-1", np.array([1.0, np.nan, 1.0, 1.0, 1.0]), ValueError,
     "^weight"),
    (BCE_WITH_LOGITS, "weight", "inf-6x5", np.full((6, 5), INF), ValueError, "^weight"),
    (BCE_WITH_LOGITS, "pos_weight", "-inf-2", np.array([1.0, 1.0, -INF, 1.0, 1.0]), ValueError,
     "^pos_weight"),
    (BCE_WITH_LOGITS, "pos_weight", "nan-scalar", np.float64(NAN), ValueError, "^pos_weight"),
    (BCE_WITH_LOGITS, "weight", "ones-6", np.ones(6), ValueError, "^weight"),
    (BCE_WITH_LOGITS, "weight", "ones-6x5x1", np.ones((6, 5, 1)), ValueError, "^weight"),
    (BCE_WITH_LOGITS, "pos_weight", "ones-4", np.ones(4), ValueError, "^pos_weight"),
    (BCE_WITH_LOGITS, "pos_weight", "ones-2x5", np.ones((2, 5)), ValueError, "^pos_weight"),
    (BCE_WITH_LOGITS, "weight", "letters", np.array(["a"] * 5), TypeError, "^weight"),
    (BCE_WITH_LOGITS, "pos_weight", "complex128-5", np.ones(5, complex), TypeError,
     "^pos_weight"),
    (MSE, "weight", "nan-2", np.array([1.0, 1.0, NAN, 1.0, 1.0]), ValueError, "^weight"),
    (MSE, "weight", "ones-5x6", np.ones((5, 6)), ValueError, "^weight"),
    (L1, "weight", "-inf-5", np.full(5, -INF), ValueError, "^weight"),
    (L1, "weight", "ones-3x5", np.ones((3, 5)), ValueError, "^weight"),
    (HUBER, "weight", "inf-1", np.array([1.0, INF, 1.0, 1.0, 1.0]), ValueError, "^weight"),
    (HUBER, "weight", "ones-7", np.ones(7), ValueError, "^weight"),
    (HUBER, "weight", "list-2x1", [[1.0], [2.0]], ValueError, "^weight"),
]


def _weight_rows():
    rows = Rows()
    for case in REGISTRY:
        for opt in case.options_of_kind(_spec.WEIGHT, _spec.CLASS_WEIGHT):
            for label, value in _bad_weights(opt, (6, 5)).items():
                rows.add(case, opt.name, value, label=label)
    for case, name, label, value, error, match in EXACT_WEIGHTS:
        rows.add(case, name, value, error, match, not_yet_ok=False, label=label)
    return rows.params(sep="-")


@pytest.mark.parametrize("case,name,value,error,match,not_yet_ok", _weight_rows())
def test_bad_weight(case, name, value, error, match, not_yet_ok):
    x, t = data(case)
    for reduction in _reductions(case):
        assert_refused(entry_points(case, x, t, options={name: value}, reduction=reduction),
                       name, error=error, match=match, not_yet_ok=not_yet_ok)


# ---------------------------------------------------------------------------
# Flags: an array has no truth value
# ---------------------------------------------------------------------------

FLAGS = list(_spec.LEGACY) + list(dict.fromkeys(
    o.name for c in REGISTRY for o in c.options_of_kind(_spec.BOOL)))


@pytest.mark.parametrize("name", FLAGS)
def test_ambiguous_truth_value_names_the_argument(name):
    cases = [c for c in REGISTRY if name in inspect.signature(c.func).parameters]
    if not cases:
        pytest.skip(f"no loss takes {name}")
    x, t = data(cases[0])
    with pytest.raises((TypeError, ValueError), match=name):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cases[0].func(x, t, **{name: np.array([True, False])})
