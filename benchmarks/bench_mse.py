"""Mean squared error, 1-D float32 input and target: forward, backward and
fused loss+gradient of fastloss against the floor (np.add(input, target,
out=buf)), PyTorch, JAX, scikit-learn's HalfSquaredError (half the squared
error, same work) and the float64 reference. See _common.py for how to run and
read it."""

import pytest
from _common import cases, run_case


@pytest.mark.parametrize(("loss", "shape", "mode", "threads", "provider"), cases("mse"))
def bench_mse(benchmark, loss, shape, mode, threads, provider):
    run_case(benchmark, loss, shape, mode, threads, provider)
