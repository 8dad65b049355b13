"""fastloss.bench.lm_head (``fastloss bench --lm-head``) runs: every provider's
workload on a small shape (twice: its gradients are reset in between), the
memory child reports a peak, and the command prints its tables. Nothing here
asserts a speed or a memory size."""

import json
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastloss.bench import lm_head


def test_every_provider_runs_the_same_problem():
    tool = lm_head
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
    cmd, cwd, env = lm_head.child_command(provider, (64, 8, 3000), 1)
    out = subprocess.run(cmd, cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rss"] >= 0
    assert (result["traced"] is not None) == (provider == "fastloss")
    if provider == "fastloss":
        # at least the gradients it returns: grad_weight, grad_input, grad_bias
        assert result["traced"] >= (3000 * 8 + 64 * 8 + 3000) * 4


def test_fastloss_bench_lm_head_prints_both_tables(monkeypatch, capsys):
    """The command's plumbing, on small shapes (the module's shape tables
    patched): one time row and one memory row per shape, every provider."""
    from fastloss.__main__ import main

    monkeypatch.setattr(lm_head, "TIME_SHAPES", ((48, 8, 300),))
    monkeypatch.setattr(lm_head, "MEMORY_SHAPES", ((48, 8, 300),))
    assert main(["bench", "--lm-head", "--threads", "1", "--repeats", "1", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "| 48 x 8 x 300 | " in out
    assert out.count("| 48 x 8 x 300 |") == 2
    assert "ISA path" in out and "1 threads" in out


def test_fastloss_bench_lm_head_without_torch_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    from fastloss.__main__ import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    assert main(["bench", "--lm-head"]) == 2
    assert 'needs torch (pip install "fastloss[torch]")' in capsys.readouterr().err
