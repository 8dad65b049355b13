"""The test data of each loss: the one table a new loss adds a row to.

Everything else the test registry knows about a loss comes from its
declaration in ``fastloss._spec`` (names, options, default reduction, its
PyTorch function) and its float64 reference in ``fastloss.reference``
(``<func>`` and ``<func>_grad``); see ``registry.py``. A row here gives:

* ``make_data(shape, seed) -> (float32 input, target)``: random data in the
  loss's domain, with the awkward values a kernel must get right (hard labels,
  exact ties) at a realistic rate;
* ``shapes``: the shapes every registry-driven test runs on; ``big_shapes``:
  shapes that span several OpenMP blocks (the thread-count tests);
* ``torch_func``: only where PyTorch has no function of the loss's name
  (``Loss.torch`` outside ``torch.nn.functional``): its formula in torch
  ops, called as ``torch_func(input, target, reduction=..., **options)``.

A loss declared in the spec without a row here is reported by
tests/values/test_losses.py::test_every_declared_loss_has_test_data.
"""

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

# Odd sizes exercise SIMD tails and partial blocks; (256, 1000) and
# (4, 131072) span several OpenMP blocks.
CE_SHAPES = (
    (0, 5),
    (1, 1),
    (7, 3),
    (9, 7),
    (5, 17),
    (3, 33),
    (64, 10),
    (2, 1023),
    (256, 1000),
    (4, 131072),
)
ELEMENTWISE_SHAPES = CE_SHAPES + ((1,), (13,), (4, 5, 6), (1000003,))

# Inputs big enough that several blocks, and so both threads, take part.
CE_BIG_SHAPES = ((512, 1000), (3, 200000), (4, 131072))
ELEMENTWISE_BIG_SHAPES = ((2**20,), (3, 200000), (512, 1000))

# The elementwise kernels see only the flattened size, and L1, Huber, smooth
# L1 and the focal loss run through the same block driver as BCE and MSE:
# for them one multi-block size with a partial last block (1000003, and
# 600000 for the thread tests) stands for the big shapes, which keeps the
# suite's run time in check.  Their options are covered at ~2^20 elements
# in tests/options/test_elementwise_options.py.
ELEMENTWISE_SHAPES_LEAN = tuple(
    s for s in ELEMENTWISE_SHAPES if s not in ((256, 1000), (4, 131072))
)
ELEMENTWISE_BIG_SHAPES_LEAN = ((3, 200000),)


@dataclass(frozen=True)
class LossData:
    make_data: Callable  # (shape, seed) -> (float32 input, target)
    shapes: tuple
    big_shapes: tuple
    torch_func: Optional[Callable] = None


# ---------------------------------------------------------------------------
# Data generators
# ---------------------------------------------------------------------------


def _ce_data(shape, seed):
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    n_classes = shape[-1]
    if len(shape) == 1:
        target = np.int64(rng.integers(0, n_classes))
    else:
        target = rng.integers(0, n_classes, size=shape[:-1], dtype=np.int64)
    return x, target


def _log_probability_data(shape, seed):
    # log_softmax of cross-entropy's logits (the input nll_loss expects after a
    # log_softmax layer): confident rows with log-probabilities near 0 and far
    # below it; class targets as for cross-entropy.
    x, target = _ce_data(shape, seed)
    z = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        m = np.max(z, axis=-1, keepdims=True) if z.size else z
        logp = z - m - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))
    return logp.astype(np.float32), target


def _bce_data(shape, seed):
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    y = rng.random(shape, dtype=np.float32)
    # A third of the targets are hard labels, as in most real uses.
    hard = rng.random(shape) < 1 / 3
    y[hard] = np.round(y[hard])
    return x, y


def _mse_data(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.standard_normal(shape).astype(np.float32)
    return x, y


def _l1_data(shape, seed):
    x, y = _mse_data(shape, seed)
    # Exact ties (d == 0) in about one element in eight: L1's gradient there
    # is sign(0) = 0, as in PyTorch.
    tie = np.random.default_rng(seed + 1).random(shape) < 1 / 8
    y[tie] = x[tie]
    return x, y


def _robust_data(shape, seed):
    # |x - y| spread over [0, ~6]: both sides of delta = beta = 1, often.
    x, y = _mse_data(shape, seed)
    return np.float32(1.5) * x, y


def _probability_data(shape, seed):
    # Probabilities sigmoid(3 z), away from the exact 0 and 1 where PyTorch's
    # gradient is 1e12-sized (tests/values/test_bce.py covers those).
    x, y = _bce_data(shape, seed)
    p = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    return np.clip(p, 2.0**-20, 1.0 - 2.0**-20).astype(np.float32), y


def _count_data(shape, seed):
    # Log-rates x ~ N(-1, 1) and Poisson counts drawn at those rates: zeros,
    # ones and counts above 1 (where full=True adds Stirling's term) all occur.
    # (Centred at 0, the per-element losses e^x - y x cancel in a sum of 10^6 of
    # them down to a millionth of their magnitudes: below float32's reach.)
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.standard_normal(shape) - 1.0, np.float32)
    y = np.asarray(rng.poisson(np.exp(x.astype(np.float64))), np.float32)
    return x, y


def _distribution_data(shape, seed):
    # Log-probabilities of the last axis and probability targets of another
    # distribution (positive: PyTorch's target gradient, log y + 1 - x, is
    # -inf at y = 0; tests/values/test_kl_div.py covers exact zeros).
    rng = np.random.default_rng(seed)
    z = 2.0 * rng.standard_normal(shape)
    x = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True)) if z.ndim else np.float64(-0.5)
    q = rng.random(shape) + 0.01
    y = q / np.sum(q, axis=-1, keepdims=True) if q.ndim else np.float64(0.3)
    return np.asarray(x, np.float32), np.asarray(y, np.float32)


def _margin_data(shape, seed):
    # Labels -1 and 1, with one in eight a real number in [-2, 2] (the formula
    # takes any y); margins |x| up to ~15, where exp(-y x) is far from 1.
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    y = rng.choice(np.array([-1.0, 1.0], np.float32), size=shape)
    soft = rng.random(shape) < 1 / 8
    y[soft] = rng.uniform(-2.0, 2.0, size=int(soft.sum())).astype(np.float32)
    return x, y


# ---------------------------------------------------------------------------
# PyTorch formulas where torch has no function
# ---------------------------------------------------------------------------


def torch_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss's formula in torch ops (torchvision
    is not a test dependency): the same operations in the same order."""
    import torch.nn.functional as F

    p = inputs.sigmoid()
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"Invalid value for arg 'reduction': '{reduction}'")


# ---------------------------------------------------------------------------
# The table, by the spec's loss name
# ---------------------------------------------------------------------------

DATA = {
    "cross_entropy": LossData(_ce_data, CE_SHAPES, CE_BIG_SHAPES),
    "nll_loss": LossData(_log_probability_data, CE_SHAPES, CE_BIG_SHAPES),
    "bce_with_logits": LossData(_bce_data, ELEMENTWISE_SHAPES, ELEMENTWISE_BIG_SHAPES),
    "sigmoid_focal": LossData(_bce_data, ELEMENTWISE_SHAPES_LEAN, ELEMENTWISE_BIG_SHAPES_LEAN,
                              torch_func=torch_sigmoid_focal_loss),
    "mse": LossData(_mse_data, ELEMENTWISE_SHAPES, ELEMENTWISE_BIG_SHAPES),
    "l1": LossData(_l1_data, ELEMENTWISE_SHAPES_LEAN, ELEMENTWISE_BIG_SHAPES_LEAN),
    "huber": LossData(_robust_data, ELEMENTWISE_SHAPES_LEAN, ELEMENTWISE_BIG_SHAPES_LEAN),
    "smooth_l1": LossData(_robust_data, ELEMENTWISE_SHAPES_LEAN, ELEMENTWISE_BIG_SHAPES_LEAN),
    "soft_margin": LossData(_margin_data, ELEMENTWISE_SHAPES_LEAN, ELEMENTWISE_BIG_SHAPES_LEAN),
    "bce": LossData(_probability_data, ELEMENTWISE_SHAPES_LEAN, ELEMENTWISE_BIG_SHAPES_LEAN),
    "poisson_nll": LossData(_count_data, ELEMENTWISE_SHAPES_LEAN, ELEMENTWISE_BIG_SHAPES_LEAN),
    "kl_div": LossData(_distribution_data, ELEMENTWISE_SHAPES_LEAN, ELEMENTWISE_BIG_SHAPES_LEAN),
    # (scores across the default margin 1; its ties: tests/values/test_hinge_embedding.py)
    "hinge_embedding": LossData(_margin_data, ELEMENTWISE_SHAPES_LEAN,
                                ELEMENTWISE_BIG_SHAPES_LEAN),
}
