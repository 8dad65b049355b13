"""The registry of losses that the test-suite is parametrised over.

Each :class:`LossCase` says how to call one loss through fastloss (function
and class), through the float64 reference and through PyTorch, and how to
make random float32 data for it.  A test that takes a ``case`` runs for every
loss; adding a loss to fastloss means adding one entry here.

Also here: the shapes, and the tolerance helpers that every comparison with
the reference uses.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.testing import assert_allclose

from fastloss import reference

REDUCTIONS = ("mean", "sum", "none")

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
# in test_elementwise_options.py.
ELEMENTWISE_SHAPES_LEAN = tuple(
    s for s in ELEMENTWISE_SHAPES if s not in ((256, 1000), (4, 131072))
)
ELEMENTWISE_BIG_SHAPES_LEAN = ((3, 200000),)

LOSS_RTOL = 1e-5  # |got - ref| <= LOSS_RTOL * max(1, |ref|)
GRAD_RTOL = 1e-5  # |got - ref| <= GRAD_RTOL * max |ref|


def _ce_data(shape, seed):
    rng = np.random.default_rng(seed)
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    n_classes = shape[-1]
    if len(shape) == 1:
        target = np.int64(rng.integers(0, n_classes))
    else:
        target = rng.integers(0, n_classes, size=shape[:-1], dtype=np.int64)
    return x, target


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


@dataclass(frozen=True)
class LossCase:
    """How to reach one loss everywhere the tests need it."""

    name: str
    func_name: str  # in fastloss and in torch.nn.functional
    cls_name: str  # in fastloss and in torch.nn
    ref_loss: Callable
    ref_grad: Callable
    make_data: Callable  # (shape, seed) -> (float32 input, target)
    shapes: tuple
    big_shapes: tuple
    # torch.nn.functional.<func_name> and torch.nn.<cls_name> exist (False for
    # sigmoid_focal_loss, which torchvision.ops has and torch does not).
    in_torch: bool = True
    # PyTorch's formula written with torch ops, where torch has no function:
    # called as torch_func(input, target, reduction=..., **options).
    torch_func: Callable = None
    # The deprecated size_average/reduce arguments (huber_loss and
    # sigmoid_focal_loss never had them).
    has_legacy_args: bool = True
    default_reduction: str = "mean"

    def __repr__(self):  # used in test ids
        return self.name

    @property
    def func(self):
        import fastloss

        return getattr(fastloss, self.func_name)

    @property
    def cls(self):
        import fastloss

        return getattr(fastloss, self.cls_name)

    @property
    def elementwise(self):
        """Per-element loss, target of the input's shape (all but cross-entropy)."""
        return self.name != "cross_entropy"

    def torch_function(self):
        """The PyTorch function (or its formula in torch ops) for this loss."""
        if self.torch_func is not None:
            return self.torch_func
        import torch.nn.functional as F

        return getattr(F, self.func_name)

    def per_sample_shape(self, input_shape):
        """Shape of the 'none' loss (and so of 'none' grad_output)."""
        if self.name == "cross_entropy":
            return tuple(input_shape[:-1])
        return tuple(input_shape)

    def random_grad_output(self, reduction, input_shape, seed):
        """0.37 for 'mean'/'sum'; a float32 array of the per-sample shape for 'none'."""
        if reduction != "none":
            return 0.37
        rng = np.random.default_rng(seed + 1000)
        shape = self.per_sample_shape(input_shape)
        return rng.uniform(-2.0, 2.0, size=shape).astype(np.float32)

    def ref(self, x, t, reduction, **kwargs):
        """Reference loss on the float32 data cast to float64."""
        return self.ref_loss(_f64(x), _ref_target(t), reduction=reduction, **kwargs)

    def ref_gradient(self, x, t, reduction, grad_output=1.0, **kwargs):
        return self.ref_grad(
            _f64(x),
            _ref_target(t),
            reduction=reduction,
            grad_output=_f64(grad_output),
            **kwargs,
        )


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _ref_target(t):
    t = np.asarray(t)
    return t if t.dtype.kind in "iu" else t.astype(np.float64)


CROSS_ENTROPY = LossCase(
    name="cross_entropy",
    func_name="cross_entropy",
    cls_name="CrossEntropyLoss",
    ref_loss=reference.cross_entropy,
    ref_grad=reference.cross_entropy_grad,
    make_data=_ce_data,
    shapes=CE_SHAPES,
    big_shapes=CE_BIG_SHAPES,
)
BCE_WITH_LOGITS = LossCase(
    name="bce_with_logits",
    func_name="binary_cross_entropy_with_logits",
    cls_name="BCEWithLogitsLoss",
    ref_loss=reference.binary_cross_entropy_with_logits,
    ref_grad=reference.binary_cross_entropy_with_logits_grad,
    make_data=_bce_data,
    shapes=ELEMENTWISE_SHAPES,
    big_shapes=ELEMENTWISE_BIG_SHAPES,
)
MSE = LossCase(
    name="mse",
    func_name="mse_loss",
    cls_name="MSELoss",
    ref_loss=reference.mse_loss,
    ref_grad=reference.mse_loss_grad,
    make_data=_mse_data,
    shapes=ELEMENTWISE_SHAPES,
    big_shapes=ELEMENTWISE_BIG_SHAPES,
)

L1 = LossCase(
    name="l1",
    func_name="l1_loss",
    cls_name="L1Loss",
    ref_loss=reference.l1_loss,
    ref_grad=reference.l1_loss_grad,
    make_data=_l1_data,
    shapes=ELEMENTWISE_SHAPES_LEAN,
    big_shapes=ELEMENTWISE_BIG_SHAPES_LEAN,
)
HUBER = LossCase(
    name="huber",
    func_name="huber_loss",
    cls_name="HuberLoss",
    ref_loss=reference.huber_loss,
    ref_grad=reference.huber_loss_grad,
    make_data=_robust_data,
    shapes=ELEMENTWISE_SHAPES_LEAN,
    big_shapes=ELEMENTWISE_BIG_SHAPES_LEAN,
    has_legacy_args=False,
)
SMOOTH_L1 = LossCase(
    name="smooth_l1",
    func_name="smooth_l1_loss",
    cls_name="SmoothL1Loss",
    ref_loss=reference.smooth_l1_loss,
    ref_grad=reference.smooth_l1_loss_grad,
    make_data=_robust_data,
    shapes=ELEMENTWISE_SHAPES_LEAN,
    big_shapes=ELEMENTWISE_BIG_SHAPES_LEAN,
)


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


SIGMOID_FOCAL = LossCase(
    name="sigmoid_focal",
    func_name="sigmoid_focal_loss",
    cls_name="SigmoidFocalLoss",
    ref_loss=reference.sigmoid_focal_loss,
    ref_grad=reference.sigmoid_focal_loss_grad,
    make_data=_bce_data,
    shapes=ELEMENTWISE_SHAPES_LEAN,
    big_shapes=ELEMENTWISE_BIG_SHAPES_LEAN,
    in_torch=False,
    torch_func=torch_sigmoid_focal_loss,
    has_legacy_args=False,
    default_reduction="none",
)

REGISTRY = (CROSS_ENTROPY, BCE_WITH_LOGITS, MSE, L1, HUBER, SMOOTH_L1, SIGMOID_FOCAL)
ELEMENTWISE = tuple(case for case in REGISTRY if case.elementwise)


def case_shapes(cases=REGISTRY, big=False):
    """``(case, shape)`` pairs, for ``pytest.mark.parametrize``."""
    return [
        (case, shape)
        for case in cases
        for shape in (case.big_shapes if big else case.shapes)
    ]


def shape_id(shape):
    return "x".join(map(str, shape)) if len(shape) else "scalar"


# ---------------------------------------------------------------------------
# Comparisons
# ---------------------------------------------------------------------------


def assert_loss_close(got, ref, rtol=LOSS_RTOL):
    """``|got - ref| <= rtol * max(1, |ref|)`` elementwise.

    NaN must meet NaN and an infinity the same infinity.  ``got`` may be a
    float32 array or a Python float; ``ref`` is float64.
    """
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"shape {got.shape} != reference {ref.shape}"
    with np.errstate(invalid="ignore"):
        err = np.abs(got - ref)
        ok = (err <= rtol * np.maximum(1.0, np.abs(ref))) | (got == ref)
    ok |= np.isnan(got) & np.isnan(ref)
    if not ok.all():
        bad = np.argwhere(~ok.reshape(ok.shape or (1,)))[:5]
        where = [tuple(int(i) for i in b) for b in bad]
        raise AssertionError(
            f"{(~ok).sum()} of {ok.size} losses differ from the reference; "
            f"first at {where}: got {got.reshape(-1)[~ok.reshape(-1)][:5]}, "
            f"reference {ref.reshape(-1)[~ok.reshape(-1)][:5]}"
        )


def assert_grad_close(got, ref, rtol=GRAD_RTOL, scale=0.0):
    """``|got - ref| <= rtol * max|ref|`` elementwise (NaN matches NaN).

    ``scale``, when given, is the largest factor multiplying a per-sample
    gradient (``|grad_output|``, over the mean's denominator for 'mean').
    The tolerance is then at least ``4 * eps32 * scale``: a float32 kernel
    (PyTorch's too) cannot resolve ``softmax - 1`` or ``sigmoid - y`` for a
    confident prediction any better than the float32 spacing near 1, which
    matters only when every gradient entry is tiny.
    """
    got = np.asarray(got)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"shape {got.shape} != reference {ref.shape}"
    finite = np.abs(ref[np.isfinite(ref)])
    atol = rtol * finite.max() if finite.size else 0.0
    atol = max(atol, 4 * float(np.finfo(np.float32).eps) * scale)
    assert_allclose(got.astype(np.float64), ref, rtol=0.0, atol=atol, equal_nan=True)


def assert_float32_array(a, shape):
    assert isinstance(a, np.ndarray), type(a)
    assert a.dtype == np.float32, a.dtype
    assert a.shape == tuple(shape), (a.shape, shape)


def assert_same(a, b):
    """Bitwise equality of two losses or gradients (any NaN matches any NaN).

    Arrays must agree in type, dtype, shape, every value and the sign of
    every zero; floats must be equal.
    """
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), (type(a), type(b))
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
        assert np.array_equal(a, b, equal_nan=True), "arrays differ"
        numbers = ~np.isnan(a)
        assert np.array_equal(np.signbit(a[numbers]), np.signbit(b[numbers])), (
            "arrays differ in the sign of a zero"
        )
    else:
        assert isinstance(a, float) and isinstance(b, float), (type(a), type(b))
        assert (a == b) or (np.isnan(a) and np.isnan(b)), (a, b)


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------


def torch_loss_and_grad(
    case, x, t, reduction, grad_output=1.0, dtype="float64", **options
):
    """Loss and ``grad_output``-weighted input gradient from PyTorch autograd.

    ``options`` are the keyword arguments of the torch function (``weight``,
    ``ignore_index``, ``label_smoothing``, ``pos_weight``, ``size_average``,
    ``reduce``, ``delta``, ``beta``, ``alpha``, ``gamma``); ``weight`` and
    ``pos_weight`` become tensors of ``dtype``.  The function is
    ``case.torch_function()``: torch.nn.functional's, or torchvision's
    formula for the focal loss.  Returns ``(loss, grad)`` as NumPy arrays (the
    loss 0-d when reduced).
    """
    import torch

    tdtype = getattr(torch, dtype)
    xt = torch.tensor(np.asarray(x), dtype=tdtype, requires_grad=True)
    if case is CROSS_ENTROPY:
        tt = torch.as_tensor(np.asarray(t, dtype=np.int64))
    else:
        tt = torch.as_tensor(np.asarray(t), dtype=tdtype)
    kwargs = {
        key: torch.as_tensor(np.asarray(value), dtype=tdtype)
        if key in ("weight", "pos_weight") and value is not None
        else value
        for key, value in options.items()
    }
    loss = case.torch_function()(xt, tt, reduction=reduction, **kwargs)
    go = torch.as_tensor(np.asarray(grad_output), dtype=tdtype)
    (grad,) = torch.autograd.grad((loss * go).sum(), xt)
    return loss.detach().numpy(), grad.numpy()
