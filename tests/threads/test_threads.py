"""The thread-count API, and bitwise-identical results for any thread count.

The kernels reduce fixed-size blocks in a fixed order, so the thread count
must not change a single bit.  The inputs are big enough to span many
blocks, and so to give both threads work.
"""

import numpy as np
import pytest
from _support.registry import REDUCTIONS, REGISTRY, assert_same, case_shapes, shape_id

import fastloss

BIG_CASE_SHAPES = [
    pytest.param(case, shape, id=f"{case.name}-{shape_id(shape)}")
    for case, shape in case_shapes(big=True)
]


def _everything(case, x, t, reduction, g):
    obj = case.cls(reduction=reduction)
    loss, grad = obj.loss_and_grad(x, t)
    inplace = x.copy()
    obj.loss_and_grad(inplace, t, out=inplace)
    return [
        case.func(x, t, reduction=reduction),
        loss,
        grad,
        obj.backward(x, t, grad_output=g),
        inplace,
    ]


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case,shape", BIG_CASE_SHAPES)
def test_results_do_not_depend_on_thread_count(case, shape, reduction, n_threads):
    x, t = case.make_data(shape, 21)
    if not case.elementwise:
        t[::5] = -100  # ignored rows change the mean's denominator: keep it honest
    g = case.random_grad_output(reduction, shape, 21)
    with fastloss.threads(1):
        serial = _everything(case, x, t, reduction, g)
    with fastloss.threads(n_threads):
        parallel = _everything(case, x, t, reduction, g)
    for a, b in zip(serial, parallel):
        assert_same(a, b)


def test_openmp_enabled_is_a_bool():
    assert isinstance(fastloss.openmp_enabled(), bool)


def test_get_num_threads_is_a_positive_int():
    n = fastloss.get_num_threads()
    assert isinstance(n, int) and n >= 1


@pytest.mark.parametrize("n", [0, -1, -8])
def test_set_num_threads_rejects_non_positive(n):
    before = fastloss.get_num_threads()
    with pytest.raises(ValueError):
        fastloss.set_num_threads(n)
    with pytest.raises(ValueError):
        with fastloss.threads(n):
            pass
    assert fastloss.get_num_threads() == before


@pytest.mark.parametrize("n", [1.5, 2.0, "2", None, [2]])
def test_set_num_threads_rejects_non_integers(n):
    before = fastloss.get_num_threads()
    with pytest.raises(TypeError):
        fastloss.set_num_threads(n)
    assert fastloss.get_num_threads() == before


def test_set_num_threads_accepts_numpy_integers():
    before = fastloss.get_num_threads()
    try:
        fastloss.set_num_threads(np.int64(3))
        assert fastloss.get_num_threads() == 3
    finally:
        fastloss.set_num_threads(before)
    assert fastloss.get_num_threads() == before


def test_threads_context_manager_sets_and_restores():
    before = fastloss.get_num_threads()
    with fastloss.threads(1):
        assert fastloss.get_num_threads() == 1
        with fastloss.threads(3):
            assert fastloss.get_num_threads() == 3
        assert fastloss.get_num_threads() == 1
    assert fastloss.get_num_threads() == before


def test_threads_context_manager_restores_after_an_exception():
    before = fastloss.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        with fastloss.threads(1):
            raise RuntimeError("boom")
    assert fastloss.get_num_threads() == before


def test_set_num_threads_is_used_and_restorable():
    before = fastloss.get_num_threads()
    try:
        fastloss.set_num_threads(1)
        assert fastloss.get_num_threads() == 1
        x, t = np.zeros((4, 3), np.float32), np.zeros(4, np.int64)
        assert fastloss.cross_entropy(x, t) == pytest.approx(np.log(3.0), rel=1e-6)
    finally:
        fastloss.set_num_threads(before)
    assert fastloss.get_num_threads() == before


@pytest.mark.parametrize("n", [2**31, 2**40])
def test_set_num_threads_beyond_c_int(n):
    before = fastloss.get_num_threads()
    x, t = REGISTRY[0].make_data((6, 5), 0)
    try:
        try:
            fastloss.set_num_threads(n)
        except (TypeError, ValueError) as exc:
            assert "n" in str(exc)
            return
        REGISTRY[0].func(x, t)  # either refuse n, or keep working
    finally:
        fastloss.set_num_threads(before)
