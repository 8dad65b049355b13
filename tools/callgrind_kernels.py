"""Instruction counts of the hot kernels, per ISA path, under callgrind.

Counts are repeatable where timings are not (the same binary, inputs and
environment give the same count, whatever else the machine is doing), so
this is the check that a refactoring left the kernels' speed alone, and the
first measurement of a speed change.

    python tools/callgrind_kernels.py                 # every case, every ISA path here
    python tools/callgrind_kernels.py --isa avx2 --cases ce_long,bce
    python tools/callgrind_kernels.py --json counts.json
    python tools/callgrind_kernels.py --compare before.json after.json

Each case calls one public loss once on fixed data, in a single-threaded
process (one thread runs no OpenMP region). Only instructions executed
inside the C entry points (functions named ``fl_*_f32``) are counted:
``--toggle-collect`` switches collection on when one is entered and off when
it returns, so Python and NumPy overhead are excluded. One callgrind run per
case and ISA path (a few seconds each: most of it is importing NumPy).
Needs valgrind (Debian: ``apt-get install valgrind``) and an installed
fastloss.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

# name -> (Python statement run once, with x/t/y prepared by SETUP, elements)
CASES = {
    "ce_long": ("fastloss.CrossEntropyLoss().loss_and_grad(x2, t2, out=g2)", "256x1000"),
    "ce_long_opts": ("fastloss.CrossEntropyLoss(weight=w1000, label_smoothing=0.1, "
                     "z_loss=1e-4).loss_and_grad(x2, t2, out=g2)", "256x1000"),
    "ce_short": ("fastloss.CrossEntropyLoss().loss_and_grad(x10, t10, out=g10)", "8192x10"),
    "ce_split": ("fastloss.CrossEntropyLoss().loss_and_grad(xs, ts, out=gs)", "4x131072"),
    "ce_kdim": ("fastloss.CrossEntropyLoss().loss_and_grad(xk, tk, out=gk)", "8x21x1024"),
    "ce_soft": ("fastloss.CrossEntropyLoss().loss_and_grad(x2, p2, out=g2)", "256x1000"),
    "ce_forward": ("fastloss.cross_entropy(x2, t2)", "256x1000"),
    "bce": ("fastloss.BCEWithLogitsLoss().loss_and_grad(a, b01, out=ga)", "2^18"),
    "bce_pos_weight": ("fastloss.BCEWithLogitsLoss(pos_weight=pw).loss_and_grad(a, b01, out=ga)",
                       "2^18"),
    "focal": ("fastloss.SigmoidFocalLoss().loss_and_grad(a, b01, out=ga)", "2^18"),
    "mse": ("fastloss.MSELoss().loss_and_grad(a, b, out=ga)", "2^18"),
    "mse_none": ("fastloss.MSELoss(reduction='none').loss_and_grad(a, b, out=ga)", "2^18"),
    "l1": ("fastloss.L1Loss().loss_and_grad(a, b, out=ga)", "2^18"),
    "huber": ("fastloss.HuberLoss().loss_and_grad(a, b, out=ga)", "2^18"),
    "smooth_l1": ("fastloss.SmoothL1Loss().loss_and_grad(a, b, out=ga)", "2^18"),
}

SETUP = """
import numpy as np
import fastloss
fastloss.set_num_threads(1)
rng = np.random.default_rng(0)
f32 = np.float32
x2 = (3 * rng.standard_normal((256, 1000))).astype(f32); t2 = rng.integers(0, 1000, 256)
g2 = np.empty_like(x2); w1000 = rng.uniform(0.5, 2, 1000).astype(f32)
p2 = rng.random((256, 1000)).astype(f32); p2 /= p2.sum(1, keepdims=True)
x10 = (3 * rng.standard_normal((8192, 10))).astype(f32); t10 = rng.integers(0, 10, 8192)
g10 = np.empty_like(x10)
xs = (3 * rng.standard_normal((4, 131072))).astype(f32); ts = rng.integers(0, 131072, 4)
gs = np.empty_like(xs)
xk = (3 * rng.standard_normal((8, 21, 1024))).astype(f32); tk = rng.integers(0, 21, (8, 1024))
gk = np.empty_like(xk)
a = (3 * rng.standard_normal(2**18)).astype(f32); b = rng.standard_normal(2**18).astype(f32)
b01 = rng.random(2**18).astype(f32); ga = np.empty_like(a)
pw = rng.uniform(0.5, 4, 2**18).astype(f32)[:512].copy()
a = a.reshape(512, 512); b = b.reshape(512, 512); b01 = b01.reshape(512, 512)
ga = ga.reshape(512, 512)
"""


def count_one(isa, case, python=sys.executable):
    """Instructions executed inside fl_*_f32 by one call of `case` on path `isa`."""
    with tempfile.TemporaryDirectory(prefix="fl-callgrind-") as tmp:
        script = os.path.join(tmp, "run.py")
        with open(script, "w") as f:
            f.write(SETUP + "\n" + CASES[case][0] + "\n")
        out = os.path.join(tmp, "cg.out")
        env = dict(os.environ, FASTLOSS_ISA=isa, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
        cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no",
               "--toggle-collect=fl_*_f32", f"--callgrind-out-file={out}", python, script]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"callgrind failed ({isa}, {case}):\n{proc.stderr[-3000:]}")
        with open(out) as f:
            for line in f:
                if line.startswith("totals:") or line.startswith("summary:"):
                    return int(line.split()[1])
        raise RuntimeError(f"no totals in callgrind output ({isa}, {case})")


def count(isa, cases, python=sys.executable):
    """{case: instructions} for one ISA path."""
    return {case: count_one(isa, case, python) for case in cases}


def available_isas():
    import fastloss._core as core

    return [name for name in ("baseline", "avx2", "avx512") if core.isa_available(name)]


def _table(results):
    isas = list(results)
    cases = list(next(iter(results.values())))
    lines = ["| case | shape | " + " | ".join(isas) + " |",
             "|---|---|" + "---|" * len(isas)]
    for c in cases:
        lines.append(f"| {c} | {CASES[c][1]} | "
                     + " | ".join(f"{results[i][c]:,}" for i in isas) + " |")
    return "\n".join(lines)


def _compare(before, after):
    lines = ["| isa | case | before | after | after/before |", "|---|---|---|---|---|"]
    for isa in before:
        for c, b in before[isa].items():
            a = after.get(isa, {}).get(c)
            if a is None:
                continue
            lines.append(f"| {isa} | {c} | {b:,} | {a:,} | {a / b:.4f} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--isa", default=None, help="comma list (default: every path this CPU runs)")
    ap.add_argument("--cases", default=None, help="comma list of " + ", ".join(CASES))
    ap.add_argument("--json", default=None, help="write {isa: {case: count}} here")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="print the ratio table of two --json files and exit")
    args = ap.parse_args(argv)
    if args.compare:
        with open(args.compare[0]) as f:
            before = json.load(f)
        with open(args.compare[1]) as f:
            after = json.load(f)
        print(_compare(before, after))
        return 0
    isas = args.isa.split(",") if args.isa else available_isas()
    cases = args.cases.split(",") if args.cases else list(CASES)
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s): {', '.join(unknown)}")
    results = {isa: count(isa, cases) for isa in isas}
    print(_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
