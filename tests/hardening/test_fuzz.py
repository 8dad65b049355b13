"""Property-based fuzzing of every public entry point (Hypothesis).

The argument space and the oracle live in ``tests/_support/argspace.py``,
shared with the coverage-guided harness ``fuzz/fuzz_args.py``: shapes (every CE kernel
path, zero-size dimensions, inputs big enough for the OpenMP driver), dtypes,
memory layouts (Fortran order, negative strides, views with offsets, strided
views, read-only arrays, nested lists), reductions and the other options,
``grad_output`` and ``out=`` (fresh, in place, or wrong), each call valid or
with deliberate defects. A valid call must match the float64 reference; a
defective one must raise TypeError or ValueError naming a defective argument.

Every loss in ``tests/_support/registry.py`` takes part, with the options it
declares (a hand-written draw, or one derived from the spec).
"""

from collections import Counter

import pytest
from _support import argspace
from _support.registry import assert_loss_close
from hypothesis import given, settings
from hypothesis import strategies as st

from fastloss import _spec

OUTCOMES = Counter()


@settings(max_examples=400)
@given(data=st.data())
def test_fuzz_public_api(data):
    d = argspace.Draw(lambda lo, hi: data.draw(st.integers(lo, hi)))
    call = argspace.draw_call(d)
    OUTCOMES[argspace.check(call)] += 1


def test_fuzz_reached_every_outcome():
    # Guards the fuzzer itself: a change that made every draw invalid (or
    # every draw valid) would leave the property test passing and useless.
    # Runs after test_fuzz_public_api in file order; alone, it draws its own.
    if sum(OUTCOMES.values()) < 100:
        test_fuzz_public_api()
    assert OUTCOMES["ok"] >= 50, OUTCOMES
    assert OUTCOMES["refused"] >= 50, OUTCOMES


@pytest.mark.parametrize("case", argspace.REGISTRY, ids=repr)
def test_every_loss_is_drawn(case):
    # Each registered loss is reachable by the draws (one forced choice).
    picks = iter([argspace.REGISTRY.index(case)])
    d = argspace.Draw(lambda lo, hi: next(picks, lo))
    call = argspace.draw_call(d)
    assert call.case is case and not call.defects
    assert argspace.check(call) in ("ok", "not_yet")


def _derived_draws():
    return [pytest.param(case, opt.name, id=f"{case.name}-{opt.name}")
            for case in argspace.REGISTRY for opt in case.options
            if opt.kind == _spec.FLOAT and not opt.per_call]


@pytest.mark.parametrize("case,name", _derived_draws())
def test_spec_derived_draws_are_labelled_right(case, name):
    # The draw a FLOAT option gets when _OPTION_DRAWS has no entry for it
    # (a new loss's options): every value it may give is valid (matches the
    # reference) or defective (refused naming the option), as it says.
    draw = argspace._spec_draw(case.spec.option(name))
    x, t = case.make_data((6, 5), 0)
    for defective in (False, True):
        seen = []
        for k in range(64):  # choice k of the drawn list, until it repeats
            answers = iter([2 if defective else 0, k])  # d.chance(3), then d.pick
            ends = []

            def int_in_range(lo, hi):
                ends.append(hi)
                return min(next(answers), hi)

            value, flagged = draw(argspace.Draw(int_in_range), None, (6, 5), 5)
            assert flagged == defective, (value, flagged)
            if k > ends[-1]:
                break
            seen.append(value)
            if defective:
                with pytest.raises((TypeError, ValueError), match=argspace.name_pattern(name)):
                    case.func(x, t, reduction="sum", **{name: value})
            else:
                assert_loss_close(case.func(x, t, reduction="sum", **{name: value}),
                                  case.ref(x, t, "sum", **{name: value}))
        assert seen, "the draw offered no value"
