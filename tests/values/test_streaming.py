"""Cross-entropy gradients of 32 MiB and more are written with streaming
(non-temporal) stores on the SIMD paths (src/cross_entropy/rows.c): the
same values as the cached path, bit for bit. Without label smoothing the
rows of a block are pipelined too: a row's gradient is written during the
next row's exps, from one of two scratch rows (row 5, ignored, falls inside
a block of four rows).

Rows are independent, so the gradient of the whole (128, 65536) problem (32
MiB: streamed) must equal the gradients of its two halves (16 MiB each:
cached), on every ISA path this machine runs, plain and with class weights
and label smoothing (not pipelined), with a new gradient array, in place,
and into an output whose rows start off the vector alignment.
"""

import numpy as np
import pytest
from _support.registry import assert_in_place, assert_same

from fastloss import _core

ISAS = [isa for isa in ("baseline", "avx2", "avx512") if _core.isa_available(isa)]


@pytest.fixture(params=ISAS)
def isa(request):
    previous = _core.isa_name()
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa(previous)


OPTIONS = {
    "plain": {},
    "weighted-zloss": {"weight": True, "z_loss": 1e-3},
    "weighted-smoothed": {"weight": True, "label_smoothing": 0.1},
}


@pytest.mark.parametrize("options", list(OPTIONS))
def test_streamed_gradient_equals_the_cached_one(isa, options):
    import fastloss

    rng = np.random.default_rng(7)
    n, c = 128, 65536
    assert n * c * 4 >= 32 << 20
    x = (3 * rng.standard_normal((n, c))).astype(np.float32)
    t = rng.integers(0, c, n)
    t[5] = -100
    kwargs = dict(OPTIONS[options])
    if kwargs.pop("weight", False):
        kwargs["weight"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
    crit = fastloss.CrossEntropyLoss(reduction="none", **kwargs)
    loss, grad = crit.loss_and_grad(x, t)
    halves = [crit.loss_and_grad(x[k:k + n // 2], t[k:k + n // 2]) for k in (0, n // 2)]
    assert_same(loss, np.concatenate([h[0] for h in halves]))
    assert_same(grad, np.concatenate([h[1] for h in halves]))
    assert not grad[5].any()
    assert_in_place(crit, x, t, loss, grad)
    # one float past an aligned start: every row's first elements are
    # written before the streamed, aligned middle
    unaligned = np.empty(n * c + 1, np.float32)[1:].reshape(n, c)
    assert_in_place(crit, x, t, loss, grad, out=unaligned)


def test_big_input_sums_alike_forward_fused_and_any_thread_count(isa):
    """Inputs of 32 MiB and more run in blocks of several rows (whose rows are
    pipelined when a gradient is written): a forward call uses the same
    blocks, so its mean is the fused call's, bit for bit, and neither
    depends on the thread count."""
    import fastloss

    rng = np.random.default_rng(11)
    n, c = 160, 65536                       # 40 blocks of 4 rows
    x = (3 * rng.standard_normal((n, c))).astype(np.float32)
    t = rng.integers(0, c, n)
    t[::9] = -100
    crit = fastloss.CrossEntropyLoss()
    previous = fastloss.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            fastloss.set_num_threads(threads)
            loss, grad = crit.loss_and_grad(x, t)
            results.append((crit(x, t), loss, grad))
    finally:
        fastloss.set_num_threads(previous)
    forward, fused, grad = results[0]
    assert forward == fused
    for f, lo, g in results[1:]:
        assert f == forward and lo == fused
        assert_same(g, grad)
