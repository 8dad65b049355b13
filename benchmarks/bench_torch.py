"""fastloss.torch against PyTorch's own losses, through autograd (pytest-benchmark).

    pytest benchmarks/bench_torch.py --benchmark-group-by=group

The workloads of tools/bench_torch.py (which prints them as a markdown table,
interleaved): loss forward + backward at (64, 10), (4096, 1000) and
(2048, 32768) for cross-entropy and 2^22 for BCE-with-logits; a training step
of an LM-style head (Linear(512, 32000), 2048 tokens) and of the digits MLP,
eager and torch.compile. Groups are "<workload> <threads>t", providers
"torch" and "fastloss". FASTLOSS_BENCH_THREADS=1,2 picks the thread counts;
FASTLOSS_BENCH_QUICK=1 keeps the small workloads only.
"""

import importlib.util
import os

import pytest

torch = pytest.importorskip("torch")

_spec = importlib.util.spec_from_file_location(
    "bench_torch_workloads",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                 "bench_torch.py"))
workloads = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(workloads)

THREADS = tuple(int(x) for x in os.environ.get("FASTLOSS_BENCH_THREADS", "1,2").split(",")
                if x.strip())
QUICK = os.environ.get("FASTLOSS_BENCH_QUICK", "") not in ("", "0")
LOSS_CASES = workloads.QUICK_LOSS_CASES if QUICK else workloads.LOSS_CASES
STEP_CASES = workloads.QUICK_STEP_CASES if QUICK else workloads.STEP_CASES
BIG = 2**24   # elements: fewer rounds above this


def _label(loss, shape):
    return f"{loss} {workloads.shape_label(shape).replace('^', 'pow')}"


@pytest.mark.parametrize("provider", workloads.PROVIDERS)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("loss,shape", LOSS_CASES,
                         ids=[_label(loss, shape).replace(" ", "-") for loss, shape in LOSS_CASES])
def bench_loss_forward_backward(benchmark, loss, shape, threads, provider):
    benchmark.group = f"{_label(loss, shape)} forward+backward {threads}t"
    torch.set_num_threads(threads)
    run = workloads.loss_runner(provider, loss, shape)
    run()
    numel = 1
    for d in shape:
        numel *= d
    if numel >= BIG:
        benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    else:
        benchmark(run)


@pytest.mark.parametrize("provider", workloads.PROVIDERS)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("workload,compiled", STEP_CASES,
                         ids=[f"{w}-{'compile' if c else 'eager'}" for w, c in STEP_CASES])
def bench_training_step(benchmark, workload, compiled, threads, provider):
    benchmark.group = f"{workload} step {'compile' if compiled else 'eager'} {threads}t"
    torch.set_num_threads(threads)
    run = workloads.step_runner(provider, workload, compiled)
    run()   # compiles
    run()
    if workload == "lm_head":
        benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=0)
    else:
        benchmark(run)
