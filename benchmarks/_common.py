"""Shared setup of the pytest-benchmark suites (imported as _common).

Run::

    pytest benchmarks/ --benchmark-group-by=group [--benchmark-json=FILE]

Every benchmark's group is "<loss> <shape> <mode> <threads>t", e.g.
"cross_entropy 4096x1000 fused 2t", so each printed table holds one case with
its providers side by side:

* fastloss        the loss object; backward/fused write into a preallocated buffer
* fastloss_alloc  the same with out=None (backward and fused only)
* floor           np.copyto(buf, logits) (cross-entropy) or np.add(input, target,
                  out=buf) (BCE, MSE): the memory traffic of a fused call
* torch, jax, sklearn, reference   when installed (reference: below 2^22 elements)

What each provider runs in each mode is written down in
fastloss/bench/providers.py, the engine that ``fastloss bench`` and
tools/make_benchmarks_md.py use too (torch_compile: torch.compile, inductor,
compiled when its case is set up, outside the timing).
JAX's thread pool is fixed when it starts: its rows are the same configuration
in every thread count's group (extra_info "threads": "xla").

Test ids are "<shape>-<mode>-<threads>t-<provider>", with 2^20 written 2pow20
because pytest's -k cannot contain '^': e.g. -k "4096x1000 and fused" or
-k "64x10 or 2pow10".

Environment: FASTLOSS_BENCH_THREADS=1,2 (thread counts, default 1,2),
FASTLOSS_BENCH_QUICK=1 (the small shapes of ``fastloss bench --quick``),
FASTLOSS_ISA=avx2 (fastloss's instruction-set path, e.g. the AVX2 one on an
AVX-512 machine; recorded in each benchmark's extra_info "isa").
"""

import os

import pytest

import fastloss
from fastloss import bench as _bench

THREADS = tuple(int(x) for x in os.environ.get("FASTLOSS_BENCH_THREADS", "1,2").split(",")
                if x.strip())
QUICK = os.environ.get("FASTLOSS_BENCH_QUICK", "") not in ("", "0")
SLOW_PROVIDERS = {"reference": 3}  # provider -> rounds (pedantic); the rest calibrate


def cases(loss):
    """pytest params (loss, shape, mode, threads, provider), one shape at a time
    so that a shape's arrays are made once."""
    shapes = (_bench.QUICK_SHAPES if QUICK else _bench.FULL_SHAPES)[loss]
    params = []
    for shape in shapes:
        for mode in _bench.MODES:
            for n in THREADS:
                for provider in _bench.PROVIDERS:
                    if provider == "fastloss_alloc" and mode == "forward":
                        continue
                    params.append(pytest.param(
                        loss, shape, mode, n, provider,
                        id=f"{_bench.shape_id(shape)}-{mode}-{n}t-{provider}"))
    return params


_workloads = {}


def workload(loss, shape):
    """The arrays of one (loss, shape); only the latest is kept (up to 512 MiB each)."""
    key = (loss, tuple(shape))
    if key not in _workloads:
        _workloads.clear()
        _workloads[key] = _bench.Workload(loss, shape)
    return _workloads[key]


def run_case(benchmark, loss, shape, mode, threads, provider):
    benchmark.group = f"{loss} {_bench.shape_label(shape)} {mode} {threads}t"
    reason = _bench.unavailable_reason(provider, loss, shape, mode)
    if reason:
        pytest.skip(reason)
    runner = _bench.make_runner(provider, workload(loss, shape), mode, threads)
    benchmark.extra_info.update(
        loss=loss, shape=list(shape), mode=mode, provider=provider,
        isa=fastloss.isa() if provider in _bench.ISA_DEPENDENT else None,
        threads="xla" if provider == "jax" else 1 if provider in ("floor", "reference")
        else threads)
    with runner.context():
        if provider in ("fastloss", "fastloss_alloc"):
            benchmark.extra_info["traced_peak_bytes"] = _bench.traced_peak(runner.fn)
        runner.fn()  # warm-up: JIT compilation, page faults, thread pools
        rounds = SLOW_PROVIDERS.get(provider)
        if rounds:
            benchmark.pedantic(runner.fn, rounds=rounds, iterations=1, warmup_rounds=0)
        else:
            benchmark(runner.fn)
