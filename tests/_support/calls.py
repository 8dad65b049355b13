"""Every public way of calling a loss, and the check that each refuses a bad
argument: shared by the error tests (tests/errors/).
"""

import re
import warnings

import numpy as np
import pytest

from .argspace import name_pattern, names_argument

MISSING = object()  # an argument left out of the call
ERRORS = (TypeError, ValueError)


def data(case, shape=(6, 5), seed=0):
    """The registry's data for `case` as arrays."""
    x, t = case.make_data(shape, seed)
    return np.asarray(x), np.asarray(t)


def misaligned(a):
    """A C-contiguous copy of `a` one byte past an aligned address."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    view = buf[1:].view(a.dtype).reshape(a.shape)
    view[...] = a
    assert not view.flags.aligned and view.flags.c_contiguous
    return view


def entry_points(case, x, t, *, options=None, out=MISSING, grad_output=MISSING,
                 reduction="sum", call_options=None):
    """(name, zero-argument callable) for each public way of calling the loss.

    The function, the object's __call__ and forward, loss_and_grad and
    backward (the class constructed inside each call, so that what the
    constructor refuses is refused there); only the last two when ``out`` is
    given, only backward when ``grad_output`` is, and not backward with
    ``call_options`` (the per-call options: lse_out, return_correct)."""
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


def assert_refused(calls, name, *, error=ERRORS, match=None, not_yet_ok=False):
    """Every call raises `error` (TypeError or ValueError unless narrowed)
    whose message names `name` (argspace.name_pattern) and, when given,
    matches the regular expression `match` too.

    With not_yet_ok, a NotImplementedError naming the option skips the test
    (an option that is not implemented yet: the row enables itself once it is).
    """
    pattern = name_pattern(name)
    for label, call in calls:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with pytest.raises(ERRORS, match=pattern) as info:
                    call()
            except NotImplementedError as exc:
                if not_yet_ok and names_argument(str(exc), [name]):
                    pytest.skip(f"{name} is not implemented yet: {exc}")
                raise
            except (AssertionError, pytest.fail.Exception) as exc:  # no error, or unnamed
                raise AssertionError(f"{label}: a bad {name} is not refused with a message "
                                     f"naming it (pattern {pattern}): {exc}") from None
        exc = info.value
        assert isinstance(exc, error), (
            f"{label}: {type(exc).__name__} ({exc}), expected {_names(error)}")
        if match is not None:
            assert re.search(match, str(exc)), f"{label}: {exc!s} does not match {match!r}"


def _names(error):
    errors = error if isinstance(error, tuple) else (error,)
    return " or ".join(e.__name__ for e in errors)
