"""Linear + cross-entropy (an LM head and its loss): time and peak memory of
fastloss (NumPy), fastloss.torch, torch's reference path and torch's chunked
path, side by side: markdown tables (needs torch).

    fastloss bench --lm-head [--threads 2] [--repeats 3]     # what BENCHMARKS.md runs
    python -m fastloss.bench.lm_head [--threads 2] [--repeats 3] [--only time|memory]
                                     [--large-vocab]

Providers (each computes the loss and the gradients of input, weight and bias):

* ``fastloss``       ``fastloss.LinearCrossEntropyLoss().loss_and_grad(x, W, t, b)``
                     (NumPy arrays; NumPy's BLAS held at the thread count)
* ``fastloss.torch`` ``fastloss.torch.functional.linear_cross_entropy(...)``, backward
* ``torch``          ``F.linear_cross_entropy(..., options=None)`` (the reference
                     path: the whole logits), backward
* ``torch_chunked``  ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``,
                     backward

Time: forward + backward at 2048 tokens x hidden 512 x vocabulary 32000 and
4096 x 128 x 32000, interleaved (each repeat runs every provider once, one
after the other; the table gives the median), after one untimed warm-up call
each. Memory: peak extra memory of one forward + backward at 8192 x 256 x 32000
(and with --large-vocab 2048 x 512 x 128256), each provider in its own
subprocess after a warm-up call on a small problem (64 tokens, vocabulary
1000): the peak resident set size (VmHWM, reset through /proc/self/clear_refs)
minus the resident size before the call, inputs allocated; the gradients
(outputs) count;
for NumPy also tracemalloc's peak (what NumPy allocates, outputs included).
The machine line gives the CPU, fastloss's ISA path and the load average
before and after: on a shared machine compare the ratios of one run.

benchmarks/bench_linear_cross_entropy.py runs the timing under pytest-benchmark.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

PROVIDERS = ("fastloss", "fastloss.torch", "torch", "torch_chunked")
TIME_SHAPES = ((2048, 512, 32000), (4096, 128, 32000))
MEMORY_SHAPES = ((8192, 256, 32000),)
LARGE_VOCAB = (2048, 512, 128256)


def set_threads(n):
    """Every pool at `n` threads: torch's, fastloss's, NumPy's BLAS (kept
    for the process's life)."""
    import torch
    from threadpoolctl import threadpool_limits

    import fastloss

    torch.set_num_threads(n)
    fastloss.set_num_threads(n)
    return threadpool_limits(n, user_api="blas")


def runner(provider, shape, seed=0):
    """A zero-argument callable: one forward + backward of `provider` on
    float32 inputs of `shape` = (tokens, hidden, vocabulary), with a bias."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    n, h, v = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, generator=g)
    W = torch.randn(v, h, generator=g) / h ** 0.5
    b = torch.zeros(v)
    t = torch.randint(0, v, (n,), generator=g)
    if provider == "fastloss":
        import fastloss

        crit = fastloss.LinearCrossEntropyLoss()
        xn, Wn, bn, tn = x.numpy(), W.numpy(), b.numpy(), t.numpy()
        assert np.shares_memory(xn, x.numpy())
        return lambda: crit.loss_and_grad(xn, Wn, tn, bn)
    if provider == "fastloss.torch":
        import fastloss.torch.functional as FT

        fn, kw = FT.linear_cross_entropy, {}
    elif provider == "torch":
        fn, kw = F.linear_cross_entropy, {"options": None}
    else:
        fn, kw = F.linear_cross_entropy, {"options": torch.nn.LinearCrossEntropyOptions()}
    x.requires_grad_()
    W.requires_grad_()
    b.requires_grad_()

    def run():
        fn(x, W, t, linear_bias=b, **kw).backward()
        x.grad = W.grad = b.grad = None

    return run


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load():
    return "/".join(f"{a:.2f}" for a in os.getloadavg())


def time_table(threads, repeats):
    limits = set_threads(threads)
    rows = []
    for shape in TIME_SHAPES:
        runs = {p: runner(p, shape) for p in PROVIDERS}
        for p in PROVIDERS:
            runs[p]()        # warm-up: buffers, page faults, BLAS threads
        times = {p: [] for p in PROVIDERS}
        for _ in range(repeats):
            for p in PROVIDERS:
                t0 = time.perf_counter()
                runs[p]()
                times[p].append(time.perf_counter() - t0)
        med = {p: statistics.median(ts) for p, ts in times.items()}
        rows.append((shape, med))
        print(f"  {shape}: " + ", ".join(f"{p} {m:.3f} s" for p, m in med.items()),
              file=sys.stderr, flush=True)
        del runs
    limits.restore_original_limits()
    return rows


def _memory_child(provider, shape, threads):
    """Run in a subprocess: prints a JSON line with the peak extra RSS (bytes)
    and, for NumPy, tracemalloc's peak."""
    import gc
    import tracemalloc

    set_threads(threads)
    # warm-up on a small problem: the libraries' lazy initialisations (thread
    # pools, kernels) are not the call's memory, but anything a provider
    # keeps from one call to the next at the full size is
    runner(provider, (64, shape[1], 1000))()
    run = runner(provider, shape)
    gc.collect()

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(key)

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")   # reset VmHWM to the current RSS
    before = status("VmRSS:")
    traced = None
    if provider == "fastloss":
        tracemalloc.start()
        run()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        run()
    print(json.dumps({"rss": status("VmHWM:") - before, "traced": traced}))


def child_command(provider, shape, threads):
    """The memory child's command, cwd and environment: it imports the fastloss
    this process imported (its folder first on PYTHONPATH), from a neutral
    working directory (``python -m`` puts the working directory first on
    sys.path, and a source checkout there would shadow the installed package)."""
    import tempfile

    import fastloss

    root = os.path.dirname(os.path.dirname(os.path.abspath(fastloss.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "fastloss.bench.lm_head", "--child", provider,
           ",".join(map(str, shape)), str(threads)]
    return cmd, tempfile.gettempdir(), env


def memory_table(threads, shapes):
    rows = []
    for shape in shapes:
        peaks = {}
        for p in PROVIDERS:
            cmd, cwd, env = child_command(p, shape, threads)
            out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                                 check=True)
            peaks[p] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  memory {shape} {p}: {peaks[p]}", file=sys.stderr, flush=True)
        rows.append((shape, peaks))
    return rows


def mib(nbytes):
    return f"{nbytes / 2**20:.0f} MiB"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=("time", "memory"))
    ap.add_argument("--large-vocab", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        p, shape, threads = args.child
        _memory_child(p, tuple(int(s) for s in shape.split(",")), int(threads))
        return
    import numpy
    import torch

    import fastloss

    print(f"CPU: {cpu_model()}; fastloss {fastloss.__version__}, ISA path "
          f"{fastloss.isa()}; torch {torch.__version__}; numpy {numpy.__version__}; "
          f"{args.threads} threads; load average before {load()}")
    if args.only != "memory":
        rows = time_table(args.threads, args.repeats)
        print(f"\nForward + backward (loss and the gradients of input, weight and bias), "
              f"median of {args.repeats} interleaved repeats:\n")
        print("| tokens x hidden x vocabulary | " + " | ".join(PROVIDERS)
              + " | torch / fastloss.torch | chunked / fastloss.torch | "
              "fastloss / fastloss.torch |")
        print("|---" * (len(PROVIDERS) + 4) + "|")
        for (n, h, v), med in rows:
            ft = med["fastloss.torch"]
            print(f"| {n} x {h} x {v} | " + " | ".join(f"{med[p]:.2f} s" for p in PROVIDERS)
                  + f" | {med['torch'] / ft:.2f}x | {med['torch_chunked'] / ft:.2f}x | "
                  f"{med['fastloss'] / ft:.2f}x |")
    if args.only != "time":
        shapes = MEMORY_SHAPES + ((LARGE_VOCAB,) if args.large_vocab else ())
        rows = memory_table(args.threads, shapes)
        print("\nPeak extra memory of one forward + backward (peak RSS in a subprocess; "
              "tracemalloc for NumPy), against the logits' size:\n")
        print("| tokens x hidden x vocabulary | logits | " + " | ".join(PROVIDERS)
              + " | fastloss (tracemalloc) |")
        print("|---" * (len(PROVIDERS) + 3) + "|")
        for (n, h, v), peaks in rows:
            logits = n * v * 4
            cells = [f"{mib(peaks[p]['rss'])} ({peaks[p]['rss'] / logits:.3f})"
                     for p in PROVIDERS]
            traced = peaks["fastloss"]["traced"]
            print(f"| {n} x {h} x {v} | {mib(logits)} | " + " | ".join(cells)
                  + f" | {mib(traced)} ({traced / logits:.3f}) |")
    print(f"\nload average after {load()}")


if __name__ == "__main__":
    main()
