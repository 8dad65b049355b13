"""BCE-with-logits and MSE, fused forward+backward: fastloss vs the float64
NumPy reference vs PyTorch, and the memory floor (np.add(input, target, out=grad))."""

import numpy as np
import pytest

import fastloss
from fastloss import reference

from _common import THREADS, elementwise_data, run_benchmark, torch_fused

SIZES = [2**10, 2**20, 2**24]
LOSSES = {
    "bce_with_logits": (fastloss.BCEWithLogitsLoss, reference.binary_cross_entropy_with_logits,
                        reference.binary_cross_entropy_with_logits_grad,
                        "binary_cross_entropy_with_logits"),
    "mse": (fastloss.MSELoss, reference.mse_loss, reference.mse_loss_grad, "mse_loss"),
}


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("provider", ["fastloss", "floor", "reference", "torch"])
@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"2^{n.bit_length() - 1}")
@pytest.mark.parametrize("loss_name", list(LOSSES))
def bench_elementwise_fused(benchmark, loss_name, n, provider, threads):
    cls, ref_loss, ref_grad, torch_name = LOSSES[loss_name]
    benchmark.group = f"{loss_name} 2^{n.bit_length() - 1} {threads}t"
    x, y = elementwise_data(n)
    out = np.empty_like(x)
    if provider == "fastloss":
        loss = cls()

        def fn():
            with fastloss.threads(threads):
                return loss.loss_and_grad(x, y, out=out)
    elif provider == "floor":
        def fn():
            np.add(x, y, out=out)
    elif provider == "reference":
        if n > 2**22:
            pytest.skip("the float64 reference takes seconds at this size")

        def fn():
            return ref_loss(x, y), ref_grad(x, y)
    else:
        fn = torch_fused(torch_name, x, y, threads)
    run_benchmark(benchmark, fn, slow=provider == "reference")
