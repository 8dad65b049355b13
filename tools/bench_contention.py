"""Per-call times of fused losses under CPU contention: 1 thread vs the default.

    python tools/bench_contention.py              # one busy process per core beside it
    python tools/bench_contention.py --load 0     # a quiet machine (nothing started)

Starts `--load` CPU-bound processes (default: one per available CPU) that spin
while the measurement runs, then times `--calls` consecutive fused calls
(loss_and_grad with out=) of each case, interleaving three settings call
block by call block: 1 thread; the default thread count with fastloss's
contention rule (the default); and the default thread count with the rule
off (set_adaptive_threads(False)). Prints the median and 90th percentile per
call, and their ratio to the 1-thread median measured in the same run.
The load processes stop when the script ends (or is interrupted).
"""

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

import fastloss

CASES = {
    "ce_512x1000": lambda rng: ("ce", (3 * rng.standard_normal((512, 1000))).astype(np.float32),
                                rng.integers(0, 1000, 512)),
    "ce_4096x1000": lambda rng: ("ce", (3 * rng.standard_normal((4096, 1000))).astype(np.float32),
                                 rng.integers(0, 1000, 4096)),
    "bce_2^20": lambda rng: ("bce", rng.standard_normal(2**20).astype(np.float32),
                             rng.random(2**20).astype(np.float32)),
}


def _spin(stop):
    x = 0
    while not stop.is_set():
        for _ in range(10000):
            x += 1


def _percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def measure(case, calls, block, threads):
    kind, x, t = CASES[case](np.random.default_rng(0))
    loss = fastloss.CrossEntropyLoss() if kind == "ce" else fastloss.BCEWithLogitsLoss()
    g = np.empty_like(x)
    settings = {"1 thread": (1, True), f"{threads} threads": (threads, True),
                f"{threads} threads, rule off": (threads, False)}
    times = {name: [] for name in settings}
    for _ in range(3):   # warm-up
        loss.loss_and_grad(x, t, out=g)
    done = 0
    while done < calls:
        for name, (n, adaptive) in settings.items():
            if fastloss._core._thread_policy_enabled() != adaptive:
                fastloss.set_adaptive_threads(adaptive)
            with fastloss.threads(n):
                for _ in range(block):
                    t0 = time.perf_counter()
                    loss.loss_and_grad(x, t, out=g)
                    times[name].append(time.perf_counter() - t0)
        done += block
    fastloss.set_adaptive_threads(True)
    return times


def main(argv=None):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--load", type=int, default=cpus, help="busy processes to start "
                    f"(default: {cpus}, one per CPU)")
    ap.add_argument("--calls", type=int, default=400, help="calls per setting and case")
    ap.add_argument("--block", type=int, default=20, help="consecutive calls per setting")
    ap.add_argument("--threads", type=int, default=fastloss.get_num_threads())
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args(argv)
    stop = mp.Event()
    procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.load)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5 if procs else 0.0)
        print(f"# fastloss {fastloss.__version__}, isa {fastloss.isa()}, {cpus} CPUs, "
              f"{args.load} busy processes, load average {os.getloadavg()[0]:.2f}")
        print("| case | setting | median | p90 | median / 1-thread median | "
              "p90 / 1-thread median |")
        print("|---|---|---|---|---|---|")
        for case in args.cases.split(","):
            times = measure(case, args.calls, args.block, args.threads)
            base = statistics.median(times["1 thread"])
            for name, ts in times.items():
                med, p90 = statistics.median(ts), _percentile(ts, 0.9)
                print(f"| {case} | {name} | {med * 1e3:.3f} ms | {p90 * 1e3:.3f} ms | "
                      f"{med / base:.2f} | {p90 / base:.2f} |")
            sys.stdout.flush()
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
