"""Run by tests/values/test_ce_short_rows.py in a child process with
FASTLOSS_ISA set (``python -m _support.short_rows_check`` from tests/).

Short-row cross-entropy (C <= 16, the tile strategy, one specialisation
per C) on the path in use: every C from 1 to 16, row counts that are not
a multiple of the 8-row SIMD groups nor of the 64-row tile, with and
without class weights, label smoothing, z-loss, ignore_index, lse_out and
return_correct, each reduction, the gradient written in place (out=input),
and an invalid target reported with its row. Exit status: 0 all good, 1 a
check failed (details on stderr), 3 the requested path is not the one in use.
"""

import sys

import numpy as np

import fastloss
import fastloss.reference as ref

from .isa_child import run_jobs
from .registry import assert_grad_close, assert_in_place, assert_loss_close, assert_same

OPTIONS = [
    {},
    {"ignore_index": 2},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-3},
    {"weight": True, "label_smoothing": 0.05},
]


def data(n, c, seed):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal((n, c))).astype(np.float32)
    t = rng.integers(0, c, n)
    t[::5] = -100
    return x, t


def check(n, c, opts, reduction):
    x, t = data(n, c, 1000 * c + n)
    kw = dict(opts)
    if kw.get("weight"):
        kw["weight"] = np.random.default_rng(c).uniform(0.5, 2, c).astype(np.float32)
    ignore = kw.get("ignore_index", -100)
    if ignore != -100:
        t[t == -100] = ignore if ignore < c else -100
        ignore = ignore if ignore < c else -100
        kw["ignore_index"] = ignore
    obj = fastloss.CrossEntropyLoss(reduction=reduction, **kw)
    rkw = {k: v for k, v in kw.items() if k != "z_loss"}
    z = kw.get("z_loss", 0.0)
    want_loss = ref.cross_entropy(x.astype(np.float64), t, reduction=reduction, z_loss=z, **rkw)
    want_grad = ref.cross_entropy_grad(x.astype(np.float64), t, reduction=reduction, z_loss=z, **rkw)

    lse = np.empty(n, np.float32)
    loss, grad = obj.loss_and_grad(x, t, lse_out=lse)
    assert_loss_close(loss, want_loss)
    assert_grad_close(grad, want_grad)
    x64 = x.astype(np.float64)
    m = x64.max(axis=1)
    want_lse = m + np.log(np.exp(x64 - m[:, None]).sum(axis=1))
    kept = t != ignore
    assert np.all(np.isnan(lse[~kept]))
    np.testing.assert_allclose(lse[kept], want_lse[kept], rtol=1e-6, atol=1e-6)

    loss2, grad2, correct = obj.loss_and_grad(x, t, return_correct=True)
    assert_same(loss2, loss)
    assert_same(grad2, grad)
    assert correct == int(np.sum(kept & (np.argmax(x, axis=1) == t)))

    assert_in_place(obj, x, t, loss, grad)


def check_bad_target(n, c):
    x, t = data(n, c, 7)
    t[n - 2] = c
    try:
        fastloss.CrossEntropyLoss().loss_and_grad(x, t)
    except ValueError as exc:
        assert f"target[{n - 2}] = {c}" in str(exc), str(exc)
    else:
        raise AssertionError("an out-of-range target raised nothing")


def main():
    jobs = [(check, (n, c, o, r)) for c in range(1, 17) for n in (5, 203)
            for o in OPTIONS for r in ("mean", "sum", "none")]
    jobs += [(check_bad_target, (203, c)) for c in range(1, 17)]
    return run_jobs(jobs, traceback_limit=2)


if __name__ == "__main__":
    sys.exit(main())
