"""Binary cross-entropy with logits, 1-D float32 input and target: forward,
backward and fused loss+gradient of fastloss against the floor
(np.add(input, target, out=buf)), PyTorch, JAX, scikit-learn's HalfBinomialLoss
and the float64 reference. See _common.py for how to run and read it."""

import pytest
from _common import cases, run_case


@pytest.mark.parametrize(("loss", "shape", "mode", "threads", "provider"),
                         cases("bce_with_logits"))
def bench_bce_with_logits(benchmark, loss, shape, mode, threads, provider):
    run_case(benchmark, loss, shape, mode, threads, provider)
