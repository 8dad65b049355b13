"""Command line: ``fastloss [info|compare]`` (also ``python -m fastloss``).

* ``info``: the build configuration (version, compiler and flags, OpenMP,
  threads, dispatch path).
* ``compare``: a quick timing of fastloss's fused loss+gradient against the
  float64 NumPy reference (``fastloss.reference``) and, when installed,
  PyTorch's forward+backward, on a few shapes. Medians of repeated runs.
* no argument: both.
"""

import argparse
import sys
import time

import numpy as np

import fastloss
from fastloss import reference


def _median_time(fn, repeats):
    fn()  # warm-up: page faults, thread-pool start
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _torch_runner(name, x, y):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(fastloss.get_num_threads())
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    fn = getattr(F, name)

    def run():
        xx = xt.detach().requires_grad_()
        fn(xx, yt).backward()
        return xx.grad

    return run


def _cases(rng):
    """(label, fastloss loss object, reference (loss, grad), torch name, x, y)."""
    for n, c in ((64, 10), (4096, 1000), (512, 32768)):
        x = rng.standard_normal((n, c), dtype=np.float32)
        t = rng.integers(0, c, n)
        yield (f"cross_entropy {n}x{c}", fastloss.CrossEntropyLoss(),
               (reference.cross_entropy, reference.cross_entropy_grad), "cross_entropy", x, t)
    for n in (2**10, 2**20):
        x = rng.standard_normal(n, dtype=np.float32)
        y = rng.random(n, dtype=np.float32)
        yield (f"bce_with_logits {n}", fastloss.BCEWithLogitsLoss(),
               (reference.binary_cross_entropy_with_logits,
                reference.binary_cross_entropy_with_logits_grad),
               "binary_cross_entropy_with_logits", x, y)
        yield (f"mse {n}", fastloss.MSELoss(), (reference.mse_loss, reference.mse_loss_grad),
               "mse_loss", x, y)


def compare(repeats=5, file=sys.stdout):
    rng = np.random.default_rng(0)
    print(f"\nfused loss+gradient, median of {repeats} runs, "
          f"{fastloss.get_num_threads()} thread(s), path {fastloss.isa()}", file=file)
    header = f"{'case':<30} {'fastloss':>11} {'reference':>11} {'speed-up':>9} " \
             f"{'torch':>11} {'speed-up':>9} {'max |loss diff|':>16}"
    print(header, file=file)
    print("-" * len(header), file=file)
    for label, loss, (ref_loss, ref_grad), torch_name, x, y in _cases(rng):
        out = np.empty_like(x)
        t_fl = _median_time(lambda: loss.loss_and_grad(x, y, out=out), repeats)
        t_ref = _median_time(lambda: (ref_loss(x, y), ref_grad(x, y)), max(1, repeats // 2))
        value, _ = loss.loss_and_grad(x, y)
        diff = abs(value - ref_loss(x, y))
        runner = _torch_runner(torch_name, x, y)
        if runner is not None:
            t_t = _median_time(runner, repeats)
            torch_cols = f"{t_t * 1e3:9.3f}ms {t_t / t_fl:8.1f}x"
        else:
            torch_cols = f"{'-':>11} {'-':>9}"
        print(f"{label:<30} {t_fl * 1e3:9.3f}ms {t_ref * 1e3:9.3f}ms {t_ref / t_fl:8.1f}x "
              f"{torch_cols} {diff:16.2e}", file=file, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastloss", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=["info", "compare"],
                        help="what to run (default: both)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case")
    parser.add_argument("--threads", type=int, default=None, help="threads for fastloss")
    args = parser.parse_args(argv)
    if args.threads is not None:
        fastloss.set_num_threads(args.threads)
    if args.command in (None, "info"):
        fastloss.show_config()
    if args.command in (None, "compare"):
        compare(repeats=args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
