"""The fast path (fastloss/_core.pyx) gives the general path's bits, and steps
aside for everything it does not take.

Every public entry first tries its loss's fast binding (``_core.<name>_fast``,
``_core.cross_entropy_fast``); the class's ``_run`` is the general path
(validation in fastloss/_validate.py, the runner in fastloss/_run.py). Both call
the same C entry point, so the results must be bitwise equal.
"""

import numpy as np
import pytest
from _support.registry import CROSS_ENTROPY, REDUCTIONS, REGISTRY, assert_same, shape_id

from fastloss import _core, _spec

SHAPES = [(7, 3), (64, 10), (33, 1000), (300, 257)]
SLOW = _core.SLOW
# The losses with a fast binding: every family but NLL (its entries call its
# runner directly; tools/codegen_api.py).
FAST = tuple(case for case in REGISTRY if case.family != _spec.NLL)


def _fast_name(case):
    return "cross_entropy_fast" if case is CROSS_ENTROPY else f"{case.name}_fast"


def _spy(monkeypatch, case):
    """Count the fast binding's answers: results and SLOWs."""
    seen = {"fast": 0, "slow": 0}
    real = getattr(_core, _fast_name(case))

    def spy(*args):
        r = real(*args)
        seen["slow" if r is SLOW else "fast"] += 1
        return r

    monkeypatch.setattr(_core, _fast_name(case), spy)
    return seen


def _same(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            _same(u, v)
    else:
        assert_same(a, b)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("case", FAST, ids=repr)
def test_fast_path_gives_the_general_paths_bits(case, shape, reduction, monkeypatch):
    x, t = case.make_data(shape, 3)
    seen = _spy(monkeypatch, case)
    obj = case.cls(reduction=reduction)
    # forward, fused (new gradient, out=, out=input), backward with a float
    _same(obj(x, t), obj._run(x, t))
    _same(case.func(x, t, reduction=reduction), obj._run(x, t))
    _same(obj.loss_and_grad(x, t), obj._run(x, t, grad=True))
    out = np.empty_like(x)
    got = obj.loss_and_grad(x, t, out=out)
    assert got[1] is out
    _same(got, obj._run(x, t, grad=True))
    xi = x.copy()
    got = obj.loss_and_grad(xi, t, out=xi)
    assert got[1] is xi
    _same(got, obj._run(x, t, grad=True))
    _same(obj.backward(x, t, grad_output=0.37), obj._run(x, t, loss=False, grad=True,
                                                        grad_output=0.37))
    assert seen["fast"] == 6 and seen["slow"] == 0, seen


@pytest.mark.parametrize("case", FAST, ids=repr)
def test_fast_path_steps_aside(case, monkeypatch):
    """Calls of any other kind reach the general path, which gives its result
    or its documented error."""
    x, t = case.make_data((16, 9), 5)
    obj = case.cls(reduction="sum")
    expected = obj._run(x, t, grad=True)
    seen = _spy(monkeypatch, case)
    fortran = np.asfortranarray(x)
    _same(obj.loss_and_grad(fortran, t), expected)                  # not C-contiguous
    _same(obj.loss_and_grad(x.astype(np.float64), t), expected)     # another dtype
    _same(obj.backward(x, t, grad_output=1), expected[1])          # an int grad_output
    _same(obj.backward(x, t, grad_output=np.float32(1.0)), expected[1])
    assert seen["fast"] == 0 and seen["slow"] == 4, seen
    if case is CROSS_ENTROPY:
        _same(obj.loss_and_grad(x, t.astype(np.int32)), expected)   # target of another dtype
        bad = t.copy()
        bad[3] = 99
        with pytest.raises(ValueError, match=r"target\[3\] = 99 is out of range"):
            obj.loss_and_grad(x, bad)                              # C reports, SLOW, general raises
    else:
        tt = t.copy()
        with pytest.raises(ValueError, match="out must not overlap target"):
            obj.loss_and_grad(x, tt, out=tt)
    empty_x, empty_t = case.make_data((0, 9), 5)
    _same(obj.loss_and_grad(empty_x, empty_t), obj._run(empty_x, empty_t, grad=True))


def test_fast_binding_answers_slow_directly():
    x = np.zeros((4, 3), np.float32)
    t = np.zeros(4, np.int64)
    fast = _core.cross_entropy_fast
    # equal logits: each row's loss is log 3 (lse computed in float32, so to float32 precision)
    assert abs(fast(x, t, -100, 0.0, 0.0, 1, None, 0, None) - np.log(3)) < 1e-6
    assert fast(x.astype(np.float64), t, -100, 0.0, 0.0, 1, None, 0, None) is SLOW
    assert fast(x, t[:3], -100, 0.0, 0.0, 1, None, 0, None) is SLOW
    assert fast(x[:, :2], t, -100, 0.0, 0.0, 1, None, 0, None) is SLOW
    assert fast(x, t, -100, 0.0, 0.0, 7, None, 0, None) is SLOW          # reduction code
    assert fast(x, t, -100, 0.0, 0.0, 1, x[:2], 1, None) is SLOW         # out of another shape
    ro = np.zeros_like(x)
    ro.flags.writeable = False
    assert fast(x, t, -100, 0.0, 0.0, 1, ro, 1, None) is SLOW
    assert fast(x, t, -100, 0.0, 0.0, 1, None, 2, 2) is SLOW             # grad_output not a float
