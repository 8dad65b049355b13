"""Concurrency: fastloss called from many Python threads at once.

* Python threads calling every fused kernel at once, one per loss and size,
  on different arrays (small ones that run on the calling thread, big ones
  that start an OpenMP team from each Python thread), give bitwise the
  results of serial calls, every time.
* Errors raised concurrently name their own call's bad row (no shared error
  state in the C or the binding).
* The kernels release the GIL: with the interpreter's forced GIL switching
  turned off, another Python thread runs while a kernel computes.

The C sources keep no mutable global state but one pointer, the dispatched
instruction set, which is written at import (and by the test hook
``_core.set_isa``), atomically, and read once per call.
"""

import sys
import threading
import time

import numpy as np
import pytest
from _support.registry import REGISTRY, assert_same

import fastloss

N_THREADS = 8
REPEATS = 25


def _shape(case, big):
    # big: >= 32768 elements, so the OpenMP block driver starts a team.
    if not case.elementwise:  # cross-entropy: (N, C)
        return (512, 100) if big else (37, 10)
    return (256, 160) if big else (9, 7)


def _results(case, x, t, g):
    """Every fused entry point; the inputs are not modified (in place on a copy)."""
    out = []
    for reduction in ("mean", "sum", "none"):
        obj = case.cls(reduction=reduction)
        loss, grad = obj.loss_and_grad(x, t)
        out += [loss, grad, case.func(x, t, reduction=reduction)]
    obj = case.cls(reduction="none")
    out.append(obj.backward(x, t, grad_output=g))
    inplace = x.copy()
    out.append(case.cls(reduction="sum").loss_and_grad(inplace, t, out=inplace)[0])
    out.append(inplace)
    return out


def _jobs():
    """One job per loss and size (small, big): a thread each."""
    jobs = []
    for i, (case, big) in enumerate((c, b) for c in REGISTRY for b in (True, False)):
        shape = _shape(case, big)
        x, t = case.make_data(shape, 100 + i)
        g = case.random_grad_output("none", shape, 100 + i)
        jobs.append((case, x, t, g))
    return jobs


def _run_threads(target, n):
    errors = []
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # re-raised in the main thread
            errors.append((i, exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "a thread hung"
    if errors:
        raise errors[0][1]


def test_threads_match_serial_calls():
    jobs = _jobs()
    serial = [_results(*job) for job in jobs]
    inputs = [(job[1].copy(), np.array(job[2], copy=True)) for job in jobs]
    got = [None] * len(jobs)

    def work(i):
        for _ in range(REPEATS):
            results = _results(*jobs[i])
            for a, b in zip(results, serial[i]):
                assert_same(a, b)
        got[i] = results

    _run_threads(work, len(jobs))
    for i, job in enumerate(jobs):
        assert got[i] is not None
        assert np.array_equal(job[1], inputs[i][0]) and np.array_equal(job[2], inputs[i][1])


def test_concurrent_errors_name_their_own_row():
    cases = [c for c in REGISTRY if not c.elementwise]
    if not cases:
        pytest.skip("no class-target loss")
    case = cases[0]

    def work(i):
        big = i % 2 == 0
        x, t = case.make_data(_shape(case, big), 200 + i)
        bad_row = (3 + 5 * i) % len(t)
        t[bad_row] = 10**6 + i
        for _ in range(REPEATS):
            with pytest.raises(ValueError, match=rf"target\[{bad_row}\] = {10**6 + i}\b"):
                case.cls(reduction="sum").loss_and_grad(x, t)
            # A valid call in between, on the same thread.
            t2 = t.copy()
            t2[bad_row] = 0
            assert np.isfinite(case.func(x, t2))

    _run_threads(work, N_THREADS)


def test_switching_the_isa_while_threads_compute():
    """``_core.set_isa`` while other threads run kernels: every call runs on
    one path from start to end (the dispatch pointer is read once per call,
    atomically), so each result is bitwise one path's result. The split-row
    cross-entropy (C >= 32768, few rows) makes two kernel passes per call,
    and its baseline and AVX results differ, so a call that mixed paths
    could match neither."""
    from fastloss import _core

    paths = [name for name in ("baseline", "avx2", "avx512") if _core.isa_available(name)]
    if len(paths) < 2:
        pytest.skip("one instruction-set path on this machine")
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((4, 40000)) * 3).astype(np.float32)
    t = rng.integers(0, 40000, 4)
    y = rng.standard_normal(1 << 16).astype(np.float32)
    z = rng.standard_normal(1 << 16).astype(np.float32)
    ce = fastloss.CrossEntropyLoss(reduction="none", label_smoothing=0.1)
    bce = fastloss.BCEWithLogitsLoss(reduction="none")

    target = (z > 0).astype(np.float32)
    calls = [lambda: ce.loss_and_grad(x, t), lambda: bce.loss_and_grad(y, target)]

    before = _core.isa_name()
    try:
        expected = []   # per call: one (loss, grad) per path
        for name in paths:
            _core.set_isa(name)
            expected.append([call() for call in calls])
        expected = list(zip(*expected))
        stop = threading.Event()

        def switch():
            for k in range(200):
                _core.set_isa(paths[k % len(paths)])
                time.sleep(0.001)
            stop.set()

        def work(i):
            seen = 0
            while not stop.is_set() or seen < 3:
                for call, results in zip(calls, expected):
                    got = call()
                    assert any(all(np.array_equal(a, b) for a, b in zip(got, e))
                               for e in results), "a call mixed two paths"
                seen += 1

        switcher = threading.Thread(target=switch)
        switcher.start()
        try:
            _run_threads(work, 4)
        finally:
            stop.set()
            switcher.join(timeout=60)
    finally:
        _core.set_isa(before)


def test_kernels_release_the_gil(monkeypatch):
    """With forced GIL switching off (a 1000 s switch interval), the main
    thread can only run while the worker is in a kernel call if the kernel
    released the GIL; each C call is wrapped to flag that it is running."""
    from fastloss import _core

    inside = {"flag": False}

    def flagging(kernel):
        def wrapper(*args):
            inside["flag"] = True
            try:
                return kernel(*args)
            finally:
                inside["flag"] = False
        return wrapper

    # every loss binding: cross-entropy's two and one per elementwise loss,
    # and their fast paths
    names = ("cross_entropy", "cross_entropy_soft") + tuple(c.name for c in REGISTRY)
    for name in names + tuple(n + "_fast" for n in names):
        if hasattr(_core, name):
            monkeypatch.setattr(_core, name, flagging(getattr(_core, name)))

    for case in REGISTRY:
        shape = (1024, 2048)  # 2M elements: milliseconds per call
        x, t = case.make_data(shape, 7)
        state = {"done": False}
        counted = [0]

        def worker():
            # Until the main thread has been seen running during a call (one
            # call normally; a loaded machine may not schedule it in time).
            with fastloss.threads(1):
                for _ in range(50):
                    case.cls(reduction="sum").loss_and_grad(x, t)
                    if counted[0]:
                        break
            state["done"] = True

        old = sys.getswitchinterval()
        sys.setswitchinterval(1000.0)
        try:
            th = threading.Thread(target=worker)
            th.start()
            spins = 0
            while not state["done"]:
                if inside["flag"]:
                    counted[0] += 1
                spins += 1
                if spins % 1000 == 0:
                    time.sleep(0)  # let the worker take the GIL back after its call
            th.join()
        finally:
            sys.setswitchinterval(old)
        assert counted[0] > 0, f"{case.name}: the main thread never ran during a kernel call"


def test_build_fixes_floating_point_contraction():
    # With GCC's default -ffp-contract=fast, whether a*b+c becomes an FMA is
    # the compiler's choice in each specialised loop, and the bitwise "fused
    # == separate calls" guarantee held by luck: an ASan build (different
    # code generation) had BCE backward(grad_output=ones) 1 ulp off
    # loss_and_grad on the avx2/avx512 paths.
    flags = fastloss.build_info().get("compile_flags", [])
    assert any(f in flags for f in ("-ffp-contract=off", "-ffp-contract=on")), flags
