"""The contention rule of src/runtime.c: a stalled parallel call sends the next
calls to one thread for a while (see fastloss/_threads.py's module notes).

The rule is a function of three times (when a call ended, how long the calling
thread worked, how long it waited for the team); _core's test hooks feed it
chosen times, so these tests do not depend on how busy the machine is.
"""

import numpy as np
import pytest
from _support.registry import BCE_WITH_LOGITS, CROSS_ENTROPY, assert_same

import fastloss
from fastloss import _core


@pytest.fixture
def fresh_rule():
    on = _core._thread_policy_enabled()
    fastloss.set_adaptive_threads(False)   # off forgets past stalls
    fastloss.set_adaptive_threads(True)
    yield
    fastloss.set_adaptive_threads(False)
    fastloss.set_adaptive_threads(on)


def test_a_call_that_waited_little_is_not_a_stall(fresh_rule):
    assert _core._thread_policy_update(100.0, 1e-3, 1e-4) is False
    assert _core._thread_policy_serial_until() == 0.0


def test_a_stall_sends_calls_to_one_thread_and_the_window_doubles(fresh_rule):
    # waited 5 ms after 1 ms of work: stalled; serial for 50 ms
    assert _core._thread_policy_update(100.0, 1e-3, 5e-3) is True
    assert _core._thread_policy_serial_until() == pytest.approx(100.05)
    # the next stall doubles the window, up to 2 s
    assert _core._thread_policy_update(101.0, 1e-3, 5e-3) is True
    assert _core._thread_policy_serial_until() == pytest.approx(101.1)
    for k in range(10):
        _core._thread_policy_update(200.0 + k, 1e-3, 5e-3)
    assert _core._thread_policy_serial_until() == pytest.approx(209.0 + 2.0)
    # a parallel call that does not stall resets the window
    assert _core._thread_policy_update(300.0, 1e-3, 0.0) is False
    assert _core._thread_policy_update(301.0, 1e-3, 5e-3) is True
    assert _core._thread_policy_serial_until() == pytest.approx(301.05)


def test_the_threshold_is_half_the_work_plus_50_us(fresh_rule):
    assert _core._thread_policy_update(10.0, 2e-3, 1e-3 + 49e-6) is False
    assert _core._thread_policy_update(10.0, 2e-3, 1e-3 + 51e-6) is True


def test_turning_the_rule_off_forgets_the_stalls(fresh_rule):
    _core._thread_policy_update(1e9, 1e-3, 5e-3)
    assert _core._thread_policy_serial_until() > 0.0
    fastloss.set_adaptive_threads(False)
    assert _core._thread_policy_enabled() is False
    assert _core._thread_policy_serial_until() == 0.0
    fastloss.set_adaptive_threads(True)
    assert _core._thread_policy_enabled() is True


@pytest.mark.parametrize("bad", ["yes", None, 1.5])
def test_set_adaptive_threads_takes_a_bool(bad):
    with pytest.raises(TypeError, match="on must be True or False"):
        fastloss.set_adaptive_threads(bad)


@pytest.mark.parametrize("case", [CROSS_ENTROPY, BCE_WITH_LOGITS], ids=repr)
def test_results_do_not_depend_on_the_rule(case, fresh_rule):
    """Serial because of a stall, or parallel: the same bits."""
    x, t = case.make_data((512, 1000), 11)
    obj = case.cls(reduction="sum")
    with fastloss.threads(2):
        fastloss.set_adaptive_threads(False)
        parallel = obj.loss_and_grad(x, t)
        fastloss.set_adaptive_threads(True)
        _core._thread_policy_update(1e12, 1e-3, 1.0)    # "stalled": serial until far ahead
        serial = obj.loss_and_grad(x, t)
    with fastloss.threads(1):
        one = obj.loss_and_grad(x, t)
    for a, b in ((parallel, serial), (parallel, one)):
        assert a[0] == b[0]
        assert_same(a[1], b[1])
