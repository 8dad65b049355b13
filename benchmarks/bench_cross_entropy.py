"""Softmax cross-entropy, (N, C) float32 logits and int64 class targets:
forward, backward and fused loss+gradient of fastloss against the floor
(np.copyto of the logits), PyTorch, JAX, scikit-learn's HalfMultinomialLoss
and the float64 reference. See _common.py for how to run and read it."""

import pytest
from _common import cases, run_case


@pytest.mark.parametrize(("loss", "shape", "mode", "threads", "provider"),
                         cases("cross_entropy"))
def bench_cross_entropy(benchmark, loss, shape, mode, threads, provider):
    run_case(benchmark, loss, shape, mode, threads, provider)
