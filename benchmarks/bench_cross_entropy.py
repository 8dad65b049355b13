"""Softmax cross-entropy, fused forward+backward: fastloss vs the float64
NumPy reference vs PyTorch (F.cross_entropy + autograd), and the memory floor
(one copy of the logits)."""

import numpy as np
import pytest

import fastloss
from fastloss import reference

from _common import THREADS, ce_data, run_benchmark, torch_fused

SHAPES = [(64, 10), (4096, 1000), (2048, 32768)]
PROVIDERS = ["fastloss", "floor", "reference", "torch"]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def bench_cross_entropy_fused(benchmark, shape, provider, threads):
    benchmark.group = f"cross_entropy {shape[0]}x{shape[1]} {threads}t"
    x, t = ce_data(shape)
    out = np.empty_like(x)
    if provider == "fastloss":
        loss = fastloss.CrossEntropyLoss()

        def fn():
            with fastloss.threads(threads):
                return loss.loss_and_grad(x, t, out=out)
    elif provider == "floor":
        def fn():
            np.copyto(out, x)
    elif provider == "reference":
        if x.size > 10**7:
            pytest.skip("the float64 reference takes seconds at this size")

        def fn():
            return reference.cross_entropy(x, t), reference.cross_entropy_grad(x, t)
    else:
        fn = torch_fused("cross_entropy", x, t, threads)
    run_benchmark(benchmark, fn, slow=provider == "reference")
