"""Property-based fuzzing of every public entry point (Hypothesis).

The argument space and the oracle live in ``tests/test_hardening_argspace.py``,
shared with the coverage-guided harness ``fuzz/fuzz_args.py``: shapes (every CE kernel
path, zero-size dimensions, inputs big enough for the OpenMP driver), dtypes,
memory layouts (Fortran order, negative strides, views with offsets, strided
views, read-only arrays, nested lists), reductions and the other options,
``grad_output`` and ``out=`` (fresh, in place, or wrong), each call valid or
with deliberate defects. A valid call must match the float64 reference; a
defective one must raise TypeError or ValueError naming a defective argument.

Every loss in ``tests/_registry.py`` takes part.
"""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _support import argspace

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
