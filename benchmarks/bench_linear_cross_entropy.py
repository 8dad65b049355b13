"""Linear + cross-entropy (an LM head and its loss) under pytest-benchmark:
fastloss (NumPy), fastloss.torch, torch's reference path and torch's chunked
path, forward + backward (the gradients of input, weight and bias).

    pytest benchmarks/bench_linear_cross_entropy.py --benchmark-group-by=group

The workloads and providers of fastloss/bench/lm_head.py (``fastloss bench
--lm-head`` prints them as markdown tables, interleaved, with the peak memory
of each provider); groups
are "linear_cross_entropy <tokens>x<hidden>x<vocabulary> <threads>t".
FASTLOSS_BENCH_THREADS=1,2 picks the thread counts (default 2);
FASTLOSS_BENCH_QUICK=1 runs a small shape (256 x 64 x 4000) instead.
"""

import os

import pytest

torch = pytest.importorskip("torch")

from fastloss.bench import lm_head as workloads  # noqa: E402

THREADS = tuple(int(x) for x in os.environ.get("FASTLOSS_BENCH_THREADS", "2").split(",")
                if x.strip())
QUICK = os.environ.get("FASTLOSS_BENCH_QUICK", "") not in ("", "0")
SHAPES = ((256, 64, 4000),) if QUICK else workloads.TIME_SHAPES


@pytest.mark.parametrize("provider", workloads.PROVIDERS)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def bench_linear_cross_entropy(benchmark, shape, threads, provider):
    benchmark.group = f"linear_cross_entropy {'x'.join(map(str, shape))} {threads}t"
    limits = workloads.set_threads(threads)
    try:
        run = workloads.runner(provider, shape)
        run()
        benchmark.pedantic(run, rounds=3 if not QUICK else 10, iterations=1, warmup_rounds=0)
    finally:
        limits.restore_original_limits()
