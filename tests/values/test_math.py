"""The kernels' own exp and log against double precision, on every compiled
instruction-set path, over dense sweeps of their domains.

fastloss does not call libm's expf/log1pf in its hot loops (they would not
vectorise): it has a branch-free exp for x <= 0 and log1p / log built on one
polynomial (src/fl_math.h). _core._math_eval runs the dispatched path's
copy on an array.
"""

import numpy as np
import pytest

from fastloss import _core

ISAS = [isa for isa in ("baseline", "avx2", "avx512") if _core.isa_available(isa)]
EXP, LOG1P, LOG = 0, 1, 2
MAX_ULP = 2.0


@pytest.fixture(params=ISAS)
def isa(request):
    previous = _core.isa_name()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(previous)


def _ulp_error(got, exact):
    """|got - exact| in units of the float32 spacing at the exact result."""
    spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


def test_exp_nonpos_within_2_ulp(isa):
    x = np.linspace(-87.3, 0.0, 2_000_001, dtype=np.float32)
    x = np.concatenate([x, -np.logspace(-30, 1.9, 100_001).astype(np.float32)])
    err = _ulp_error(_core._math_eval(EXP, x), np.exp(x.astype(np.float64)))
    assert err.max() <= MAX_ULP, (isa, err.max(), x[np.argmax(err)])


def test_exp_nonpos_special_values(isa):
    x = np.array([0.0, -0.0, -np.inf, np.nan, -88.0, -100.0, -1e30, -87.3365], np.float32)
    got = _core._math_eval(EXP, x)
    assert got[0] == 1.0 and got[1] == 1.0
    assert got[2] == 0.0  # exp(-inf) is exactly 0
    assert np.isnan(got[3])  # NaN passes through
    assert (got[4:7] == 0.0).all()  # below the normal range: flushed to 0
    # where the exact result is subnormal, the error is below the smallest normal
    assert abs(float(got[7]) - np.exp(-87.3365)) < np.finfo(np.float32).tiny


def test_log1p_unit_within_2_ulp(isa):
    u = np.concatenate([np.linspace(0.0, 1.0, 2_000_001, dtype=np.float32),
                        np.logspace(-38, 0, 100_001).astype(np.float32)])
    exact = np.log1p(u.astype(np.float64))
    got = _core._math_eval(LOG1P, u)
    nonzero = exact > 0
    err = _ulp_error(got[nonzero], exact[nonzero])
    assert err.max() <= MAX_ULP, (isa, err.max(), u[nonzero][np.argmax(err)])
    assert (got[~nonzero] == 0.0).all()
    assert np.isnan(_core._math_eval(LOG1P, np.array([np.nan], np.float32))[0])


def test_log_pos_within_2_ulp(isa):
    s = np.concatenate([np.linspace(1.0, 17.0, 2_000_001),
                        np.logspace(-37.9, 38.5, 200_001)]).astype(np.float32)
    exact = np.log(s.astype(np.float64))
    got = _core._math_eval(LOG, s)
    nonzero = exact != 0
    err = _ulp_error(got[nonzero], exact[nonzero])
    assert err.max() <= MAX_ULP, (isa, err.max(), s[nonzero][np.argmax(err)])
    assert (got[~nonzero] == 0.0).all()
    special = _core._math_eval(LOG, np.array([np.nan, np.finfo(np.float32).tiny], np.float32))
    assert np.isnan(special[0])
    assert abs(float(special[1]) - np.log(np.finfo(np.float32).tiny)) < 1e-5


def test_every_path_is_tested_here():
    """This machine's CPU determines which paths run; baseline always does."""
    assert "baseline" in ISAS
    assert _core.isa_name() in ISAS
