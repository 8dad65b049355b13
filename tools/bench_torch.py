"""fastloss.torch against PyTorch's own losses, through autograd: a markdown table.

    python tools/bench_torch.py [--quick] [--threads 1,2] [--repeats N] [--only loss|step]

Rows (each timed for torch.nn.functional / torch.nn and for fastloss.torch,
interleaved: every repeat times each provider once, one after the other, and
the table shows the median over the repeats):

* loss forward + backward through autograd (``loss = f(x, t); loss.backward()``
  with ``x`` a leaf that requires grad): cross-entropy at (64, 10),
  (4096, 1000) and (2048, 32768); BCE-with-logits at 2^22 elements;
* a whole training step (forward, loss, backward, SGD step) of an LM-style
  head (``nn.Linear(512, 32000)`` on 2048 tokens) and of the digits MLP
  (64 -> 128 -> 10, batch 64), eager and ``torch.compile(fullgraph=True)``
  (the model and loss compiled; the optimizer step eager).

Both providers run on ``torch.set_num_threads(n)`` threads (fastloss.torch
follows torch's count). The machine line gives the CPU, fastloss's ISA path and
the load average before and after: on a shared machine compare the ratios of
one run, not absolute times across runs.

benchmarks/bench_torch.py runs the same workloads under pytest-benchmark.
"""

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

import fastloss
import fastloss.torch as ft
import fastloss.torch.functional as FT

PROVIDERS = ("torch", "fastloss")
LOSS_CASES = (("cross_entropy", (64, 10)), ("cross_entropy", (4096, 1000)),
              ("cross_entropy", (2048, 32768)), ("binary_cross_entropy_with_logits", (2**22,)))
STEP_CASES = (("lm_head", False), ("lm_head", True), ("digits_mlp", False),
              ("digits_mlp", True))
QUICK_LOSS_CASES = LOSS_CASES[:2]
QUICK_STEP_CASES = (("digits_mlp", False),)


def shape_label(shape):
    if len(shape) == 1 and shape[0] & (shape[0] - 1) == 0:
        return f"2^{shape[0].bit_length() - 1}"
    return "(" + ", ".join(map(str, shape)) + ")"


# --------------------------------------------------------------------------
# Workloads: each returns a zero-argument callable that runs one iteration.

def loss_runner(provider, loss, shape):
    """Forward + backward of one loss through autograd, input a leaf tensor."""
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(shape, generator=g)).requires_grad_()
    if loss == "cross_entropy":
        t = torch.randint(0, shape[-1], shape[:-1], generator=g)
    else:
        t = (torch.rand(shape, generator=g) < 0.3).float()
    fn = getattr(torch.nn.functional if provider == "torch" else FT, loss)

    def run():
        fn(x, t).backward()
        x.grad = None

    return run


def _digits_batch():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data[:64].astype(np.float32)
    return torch.from_numpy((x - x.mean(0)) / (x.std(0) + 1e-3)), \
        torch.from_numpy(data.target[:64].astype(np.int64))


def step_runner(provider, workload, compiled):
    """One training step: forward, loss, backward, SGD step."""
    torch.manual_seed(0)
    if workload == "lm_head":
        model = torch.nn.Linear(512, 32000)
        x = torch.randn(2048, 512)
        y = torch.randint(0, 32000, (2048,))
    else:
        model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 10))
        x, y = _digits_batch()
    criterion = torch.nn.CrossEntropyLoss() if provider == "torch" else ft.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def loss_of(inp, tgt):
        return criterion(model(inp), tgt)

    forward = torch.compile(loss_of, fullgraph=True) if compiled else loss_of

    def run():
        loss = forward(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return run


# --------------------------------------------------------------------------
# Timing.

def _calibrate(run, target_s):
    """Iterations per sample so that one sample takes about target_s."""
    start = time.perf_counter()
    run()
    once = time.perf_counter() - start
    return max(1, min(10000, int(target_s / max(once, 1e-7))))


def measure(runners, threads, repeats, target_s):
    """Median seconds per iteration of each runner, interleaved."""
    torch.set_num_threads(threads)
    for run in runners.values():   # warm-up (compiles, page faults, thread pools)
        run()
        run()
    numbers = {name: _calibrate(run, target_s) for name, run in runners.items()}
    samples = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            n = numbers[name]
            start = time.perf_counter()
            for _ in range(n):
                run()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(v) for name, v in samples.items()}, numbers


def fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def machine_line():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs; fastloss {fastloss.__version__} "
            f"(ISA {fastloss.isa()}), torch {torch.__version__}, Python "
            f"{platform.python_version()}")


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two loss shapes, one step")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved repeats per row (default 7, quick 3)")
    parser.add_argument("--only", choices=("loss", "step"), default=None)
    args = parser.parse_args(argv)
    threads = [int(n) for n in args.threads.split(",") if n.strip()]
    repeats = args.repeats or (3 if args.quick else 7)
    loss_cases = QUICK_LOSS_CASES if args.quick else LOSS_CASES
    step_cases = QUICK_STEP_CASES if args.quick else STEP_CASES

    before = loadavg()
    rows = []
    if args.only in (None, "loss"):
        for loss, shape in loss_cases:
            for n in threads:
                runners = {p: loss_runner(p, loss, shape) for p in PROVIDERS}
                med, _ = measure(runners, n, repeats, target_s=0.05)
                name = "cross-entropy" if loss == "cross_entropy" else "BCE with logits"
                rows.append((f"{name} {shape_label(shape)}, forward+backward", n, med))
                del runners
    if args.only in (None, "step"):
        for workload, compiled in step_cases:
            for n in threads:
                runners = {p: step_runner(p, workload, compiled) for p in PROVIDERS}
                med, _ = measure(runners, n, repeats, target_s=0.05)
                label = ("LM head step (Linear(512, 32000), 2048 tokens)" if workload == "lm_head"
                         else "digits MLP step (batch 64)")
                rows.append((f"{label}, {'torch.compile' if compiled else 'eager'}", n, med))
                del runners
    after = loadavg()

    print(f"Machine: {machine_line()}")
    print(f"Load average (1, 5, 15 min): {before} before, {after} after; "
          f"{repeats} interleaved repeats, medians")
    print()
    print("| workload | threads | torch | fastloss.torch | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for label, n, med in rows:
        print(f"| {label} | {n} | {fmt_time(med['torch'])} | {fmt_time(med['fastloss'])} | "
              f"{med['torch'] / med['fastloss']:.2f}x |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
