"""Measuring one call: the median time per call, and the memory it allocates.

Timing: one warm-up call; then a loop whose iteration count is calibrated so
that it lasts at least ``min_time`` seconds; ``repeats`` such loops (the
calibration loop counts as the first when it was long enough). The result is
the median over loops of loop time / iterations. The garbage collector is off
while timing. (The engine also sleeps briefly between providers so that one
library's spinning OpenMP workers do not steal a core from the next.)

Memory: the tracemalloc peak of one call above what was allocated before it.
NumPy reports its data buffers to tracemalloc, so this sees the arrays that
fastloss, the reference and sklearn allocate; PyTorch's and XLA's allocators
are invisible to it and are not reported.
"""

import gc
import math
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np


@dataclass
class Timing:
    """The median seconds per call, every loop's seconds per call, and the
    iterations per loop."""

    median_s: float
    samples_s: list
    number: int


def _loop(fn, number, timer=time.perf_counter):
    t0 = timer()
    for _ in range(number):
        fn()
    return timer() - t0


def measure(fn, repeats=5, min_time=0.1):
    """Median seconds per call of fn(): warm-up, calibrate, `repeats` loops."""
    fn()  # warm-up: page faults, thread pools, JIT compilation
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        number, samples = 1, []
        while True:
            elapsed = _loop(fn, number)
            if elapsed >= min_time:
                samples.append(elapsed / number)
                break
            grow = 1.1 * min_time / max(elapsed, 1e-9)
            number = int(min(max(2 * number, math.ceil(number * grow)), number * 1000))
        while len(samples) < max(1, repeats):
            samples.append(_loop(fn, number) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(float(np.median(samples)), samples, number)


def traced_peak(fn):
    """Bytes that one call of fn() allocated at its peak (tracemalloc), the
    returned value included. fn is called once before, untraced."""
    fn()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - before
        del result
    finally:
        if started:
            tracemalloc.stop()
    return max(0, peak)
