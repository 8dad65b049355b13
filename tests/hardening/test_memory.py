"""Memory stays flat over many calls: no leaked arrays, exceptions or C buffers.

Each loss in the registry is called 200,000 times (1,000,000 in the slow
variant) on tiny inputs, cycling through every entry point -- the function,
loss_and_grad for each reduction, backward with a per-sample grad_output,
``out=``, the loss's options -- and through calls that raise (a bad dtype and a
bad shape refused in Python, an out-of-range class target refused by the C
kernel). Every 500th call is big enough for the OpenMP driver's per-block
partial sums (and, for cross-entropy, the split-row path's buffers), so the
C allocations are exercised too. The resident set size (/proc/self/statm)
and the number of objects the garbage collector tracks must not grow.

A leak of one small array per call would grow the RSS by ~20 MB over 200k
calls; the tolerance is 3 MiB.

The slow variant runs only when asked for: ``pytest -m slow`` (or
FASTLOSS_SLOW=1).
"""

import gc
import inspect
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from _support import argspace
from _support.isa_child import TESTS, child_env
from _support.registry import REGISTRY

RSS_TOLERANCE = 3 * 2**20
GC_TOLERANCE = 200


@pytest.fixture
def slow_enabled(request):
    markexpr = request.config.getoption("markexpr", "") or ""
    if os.environ.get("FASTLOSS_SLOW") != "1" and not re.search(r"(?<!not )\bslow\b", markexpr):
        pytest.skip("slow: run with -m slow (or FASTLOSS_SLOW=1)")


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _workload(case):
    """The cycle of calls (zero-argument callables; the raising ones are flagged)."""
    kind = argspace.target_kind(case)
    params = set(inspect.signature(case.func).parameters)
    x, t = case.make_data((4, 3), 1)
    g = case.random_grad_output("none", x.shape, 1)
    out = np.empty_like(x)
    objs = {r: case.cls(reduction=r) for r in ("mean", "sum", "none")}
    calls = [
        (False, lambda: objs["mean"].loss_and_grad(x, t)),
        (False, lambda: objs["none"].loss_and_grad(x, t)),
        (False, lambda: objs["sum"].loss_and_grad(x, t, out=out)),
        (False, lambda: objs["none"].backward(x, t, grad_output=g)),
        (False, lambda: case.func(x, t, reduction="mean")),
        (False, lambda: objs["sum"](x, t)),
        (True, lambda: objs["sum"].loss_and_grad(x.astype(np.complex64), t)),
        (True, lambda: objs["sum"].loss_and_grad(x, np.zeros((7, 2), t.dtype))),
    ]
    if kind == "class":
        bad = t.copy()
        bad[2] = 99
        calls.append((True, lambda: objs["sum"].loss_and_grad(x, bad)))  # refused in C
    if "weight" in params:
        w = np.linspace(0.5, 2.0, x.shape[-1])
        calls.append((False, lambda: case.func(x, t, weight=w)))
    if "lse_out" in params:
        lse = np.empty(x.shape[0], np.float32)
        calls.append((False, lambda: case.func(x, t, lse_out=lse)))
    big = [(40, 1000)] + ([(2, 40000)] if kind == "class" else [])
    big_calls = []
    for shape in big:
        bx, bt = case.make_data(shape, 2)
        big_calls.append(lambda bx=bx, bt=bt: objs["mean"].loss_and_grad(bx, bt))
    return calls, big_calls


def _run(calls, big_calls, n):
    raised = 0
    k = len(calls)
    for i in range(n):
        fails, call = calls[i % k]
        if fails:
            try:
                call()
            except (TypeError, ValueError):
                raised += 1
        else:
            call()
        if i % 500 == 0:
            big_calls[(i // 500) % len(big_calls)]()
    return raised


def _check_flat(case, n):
    """Skip where RSS means nothing; else measure in a child process of its
    own: in the suite's process, allocations left by earlier tests (freed
    and reused as these calls run) once moved the RSS by 3.6 MiB over a
    run that leaks nothing in a process of its own."""
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc/self/statm (Linux)")
    if "asan" in os.environ.get("LD_PRELOAD", "") or "valgrind" in os.environ.get("LD_PRELOAD", ""):
        # AddressSanitizer's quarantine holds freed memory back (256 MB by
        # default): the RSS then grows whatever the code does.
        pytest.skip("RSS is not meaningful under AddressSanitizer/valgrind")
    code = ("import sys; from hardening.test_memory import check_flat_here; "
            "check_flat_here(sys.argv[1], int(sys.argv[2]))")
    result = subprocess.run([sys.executable, "-c", code, case.name, str(n)], cwd=TESTS,
                            env=child_env(), capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert f"{case.name}: flat over {n} calls" in result.stdout


def check_flat_here(name, n):
    """The measurement, in this process (the child's side of _check_flat)."""
    case = next(c for c in REGISTRY if c.name == name)
    calls, big_calls = _workload(case)
    _run(calls, big_calls, max(n // 20, 2000))  # warm-up: caches, pools, arenas
    gc.collect()
    rss0, objects0 = _rss(), len(gc.get_objects())
    raised = _run(calls, big_calls, n)
    gc.collect()
    rss1, objects1 = _rss(), len(gc.get_objects())
    assert raised >= n // len(calls) - 1  # the raising calls did raise
    assert rss1 - rss0 < RSS_TOLERANCE, (
        f"{case.name}: RSS grew by {(rss1 - rss0) / 2**20:.1f} MiB over {n} calls")
    assert objects1 - objects0 < GC_TOLERANCE, (
        f"{case.name}: {objects1 - objects0} more objects tracked by the GC after {n} calls")
    print(f"{case.name}: flat over {n} calls")


@pytest.mark.parametrize("case", REGISTRY, ids=[c.name for c in REGISTRY])
def test_memory_flat_over_200k_calls(case):
    _check_flat(case, 200_000)


@pytest.mark.slow
@pytest.mark.parametrize("case", REGISTRY, ids=[c.name for c in REGISTRY])
def test_memory_flat_over_a_million_calls(case, slow_enabled):
    _check_flat(case, 1_000_000)
