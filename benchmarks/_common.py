"""Shared setup for the pytest-benchmark suites (imported as _common).

Run:  pytest benchmarks/ --benchmark-group-by=group
Each benchmark's group is "<loss> <shape> <threads>t", so one shape's
providers print side by side. Save results with --benchmark-json=FILE.
Providers that are not installed (torch) are skipped.
"""

import numpy as np
import pytest

import fastloss

THREADS = (fastloss.get_num_threads(),)


def ce_data(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    t = rng.integers(0, shape[1], shape[0])
    return x, t


def elementwise_data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n, dtype=np.float32), rng.random(n, dtype=np.float32)


def torch_fused(fn_name, x, y, n_threads):
    """PyTorch forward + autograd backward, as a training step runs it."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    torch.set_num_threads(n_threads)
    fn = getattr(F, fn_name)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def run():
        xx = xt.detach().requires_grad_()
        fn(xx, yt).backward()
        return xx.grad

    return run


def run_benchmark(benchmark, fn, slow=False):
    """Time fn; slow providers (the float64 reference) get fewer rounds."""
    if slow:
        return benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    return benchmark(fn)
