"""tools/bench_linear_ce.py runs: every provider's workload on a small shape
(twice: its gradients are reset in between), and the memory child reports a
peak. Nothing here asserts a speed or a memory size."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "bench_linear_ce.py")


def _tool():
    spec = importlib.util.spec_from_file_location("bench_linear_ce", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_provider_runs_the_same_problem():
    tool = _tool()
    assert tool.PROVIDERS == ("fastloss", "fastloss.torch", "torch", "torch_chunked")
    for provider in tool.PROVIDERS:
        run = tool.runner(provider, (40, 8, 50))
        run()
        run()   # a second call: the gradients were reset in between
    # the NumPy provider's problem (inputs drawn as runner() draws them) is
    # the one torch's reference path computes
    import fastloss

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 8, generator=g)
    W = torch.randn(50, 8, generator=g) / 8 ** 0.5
    t = torch.randint(0, 50, (40,), generator=g)
    loss, *_ = fastloss.LinearCrossEntropyLoss().loss_and_grad(x.numpy(), W.numpy(),
                                                               t.numpy(), np.zeros(50))
    expected = torch.nn.functional.linear_cross_entropy(x.double(), W.double(), t).item()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


@pytest.mark.parametrize("provider", ["fastloss", "fastloss.torch"])
def test_memory_child_reports_a_peak(provider):
    out = subprocess.run([sys.executable, TOOL, "--child", provider, "64,8,3000", "1"],
                         capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rss"] >= 0
    assert (result["traced"] is not None) == (provider == "fastloss")
    if provider == "fastloss":
        # at least the gradients it returns: grad_weight, grad_input, grad_bias
        assert result["traced"] >= (3000 * 8 + 64 * 8 + 3000) * 4
