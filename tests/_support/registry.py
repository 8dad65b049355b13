"""The registry of losses that the test-suite is parametrised over.

One :class:`LossCase` per loss, derived from two sources:

* its declaration in ``fastloss._spec`` (the single source of truth): the
  public function and class, the default reduction, the legacy
  ``size_average``/``reduce`` arguments, the options with their kinds and
  ranges, the family (elementwise or cross-entropy), and whether its
  PyTorch function is ``torch.nn.functional``'s;
* its row in ``loss_data.DATA`` (the test data): the data generator, the
  shapes and big shapes, and a torch formula where torch has no function.

The float64 references come from ``fastloss.reference`` by name (``<func>``
and ``<func>_grad``). A test that takes a ``case`` runs for every loss, so a
new loss joins every registry-driven test with its spec declaration and its
test-data row; a declared loss without a row is left out of ``REGISTRY`` and
named by tests/values/test_losses.py::test_every_declared_loss_has_test_data.

Also here: the tolerance helpers that every comparison with the reference
uses, bitwise equality and the out= / in-place checks built on it, and
PyTorch's loss and gradient (``torch_loss_and_grad``, which skips the calling
test when PyTorch is not installed).
"""

from dataclasses import dataclass, field

import numpy as np
import pytest
from numpy.testing import assert_allclose

from fastloss import _spec, reference

from .loss_data import DATA, torch_sigmoid_focal_loss

REDUCTIONS = ("mean", "sum", "none")

LOSS_RTOL = 1e-5  # |got - ref| <= LOSS_RTOL * max(1, |ref|)
GRAD_RTOL = 1e-5  # |got - ref| <= GRAD_RTOL * max |ref|

TORCH_FUNCTIONAL = "torch.nn.functional."


@dataclass(frozen=True, eq=False)
class LossCase:
    """How to reach one loss everywhere the tests need it (compared by identity)."""

    spec: _spec.Loss = field(repr=False)
    make_data: object  # (shape, seed) -> (float32 input, target)
    shapes: tuple
    big_shapes: tuple
    # PyTorch's formula written with torch ops, where torch has no function:
    # called as torch_func(input, target, reduction=..., **options).
    torch_func: object = None

    def __repr__(self):  # used in test ids
        return self.name

    # -- from the spec -------------------------------------------------------

    @property
    def name(self):
        return self.spec.name

    @property
    def func_name(self):
        """The function's name, in fastloss (and in torch.nn.functional when in_torch)."""
        return self.spec.func

    @property
    def cls_name(self):
        """The class's name, in fastloss (and in torch.nn when in_torch)."""
        return self.spec.cls

    @property
    def family(self):
        return self.spec.family

    @property
    def options(self):
        """The spec's options (``fastloss._spec.Option``), in declaration order."""
        return self.spec.options

    def options_of_kind(self, *kinds):
        return tuple(o for o in self.spec.options if o.kind in kinds)

    @property
    def in_torch(self):
        """torch.nn.functional.<func_name> and torch.nn.<cls_name> exist (False
        for sigmoid_focal_loss, which torchvision.ops has and torch does not)."""
        return self.spec.torch.startswith(TORCH_FUNCTIONAL)

    @property
    def has_legacy_args(self):
        """The deprecated size_average/reduce arguments (huber_loss and
        sigmoid_focal_loss never had them)."""
        return self.spec.has_legacy_args

    @property
    def default_reduction(self):
        return self.spec.default_reduction

    @property
    def elementwise(self):
        """Per-element loss, target of the input's shape (all but cross-entropy
        and NLL, whose targets are class indices)."""
        return self.spec.family == _spec.ELEMENTWISE

    # -- fastloss and the reference, by name ----------------------------------

    @property
    def func(self):
        import fastloss

        return getattr(fastloss, self.func_name)

    @property
    def cls(self):
        import fastloss

        return getattr(fastloss, self.cls_name)

    @property
    def ref_loss(self):
        return getattr(reference, self.func_name)

    @property
    def ref_grad(self):
        return getattr(reference, self.func_name + "_grad")

    def torch_function(self):
        """The PyTorch function (or its formula in torch ops) for this loss."""
        if self.torch_func is not None:
            return self.torch_func
        import torch.nn.functional as F

        return getattr(F, self.func_name)

    def per_sample_shape(self, input_shape):
        """Shape of the 'none' loss (and so of 'none' grad_output)."""
        if not self.elementwise:
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


def build(losses, data):
    """(cases, missing, unknown): a LossCase for each declaration in `losses`
    that has a row in `data`, in declaration order; the names of those
    without one; the rows that name no declaration."""
    cases = tuple(
        LossCase(spec=loss, make_data=data[loss.name].make_data, shapes=data[loss.name].shapes,
                 big_shapes=data[loss.name].big_shapes, torch_func=data[loss.name].torch_func)
        for loss in losses if loss.name in data)
    declared = {loss.name for loss in losses}
    missing = tuple(loss.name for loss in losses if loss.name not in data)
    unknown = tuple(name for name in data if name not in declared)
    return cases, missing, unknown


#: Families the registry-driven tests leave out, with the reason; their losses
#: have test files of their own that check the same properties.
OWN_TESTS = {
    # one loss per row of (N, C), the classes on the LAST axis, no K-dim input,
    # multilabel's float targets of the input's shape with a per-row loss: the
    # registry's shapes, argument grids and torch helpers assume elementwise or
    # class-on-axis-1 losses. Each has tests/values/test_<loss>.py and
    # tests/pytorch/test_torch_<loss>.py.
    _spec.ROWS: "row losses: tests/values/test_<loss>.py, tests/pytorch/test_torch_<loss>.py",
}

#: Every declared loss that has test data, in the spec's order; MISSING_DATA:
#: declared losses without a row in loss_data.DATA (left out here, and named by
#: a test); UNKNOWN_DATA: rows that name no declared loss.
REGISTRY, MISSING_DATA, UNKNOWN_DATA = build(
    tuple(loss for loss in _spec.LOSSES if loss.family not in OWN_TESTS), DATA)
BY_NAME = {case.name: case for case in REGISTRY}
ELEMENTWISE = tuple(case for case in REGISTRY if case.elementwise)

CROSS_ENTROPY = BY_NAME["cross_entropy"]
NLL = BY_NAME["nll_loss"]
#: The losses with class-index targets (per-sample loss without the class axis).
CLASS_TARGETS = (CROSS_ENTROPY, NLL)
BCE_WITH_LOGITS = BY_NAME["bce_with_logits"]
MSE = BY_NAME["mse"]
L1 = BY_NAME["l1"]
HUBER = BY_NAME["huber"]
SMOOTH_L1 = BY_NAME["smooth_l1"]
SIGMOID_FOCAL = BY_NAME["sigmoid_focal"]


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


def assert_in_place(obj, x, target, loss, grad, out=None, **kwargs):
    """``obj.loss_and_grad`` of x into ``out``, or by default in place over a
    copy of x (the gradient written over its own input), returns that very
    buffer with `loss` and `grad` bit for bit; returns the buffer."""
    buf = x.copy() if out is None else out
    got_loss, got_grad = obj.loss_and_grad(buf if out is None else x, target, out=buf, **kwargs)
    assert got_grad is buf
    assert_same(got_loss, loss)
    assert_same(got_grad, grad)
    return buf


def assert_out_and_in_place(obj, x, target):
    """A new gradient, one into a given out= buffer and one in place over a
    copy of x: the same loss and gradient, bit for bit. Returns them."""
    loss, grad = obj.loss_and_grad(x, target)
    assert_in_place(obj, x, target, loss, grad, out=np.empty_like(x))
    assert_in_place(obj, x, target, loss, grad)
    return loss, grad


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------


def torch_loss_and_grad(
    case, x, t, reduction, grad_output=1.0, dtype="float64", **options
):
    """Loss and ``grad_output``-weighted input gradient from PyTorch autograd.

    ``options`` are the keyword arguments of the torch function (``weight``,
    ``ignore_index``, ``label_smoothing``, ``pos_weight``, ``size_average``,
    ``reduce``, ``delta``, ``beta``, ``alpha``, ``gamma``); the array options
    (the spec's WEIGHT and CLASS_WEIGHT kinds: ``weight``, ``pos_weight``)
    become tensors of ``dtype``.  The function is
    ``case.torch_function()``: torch.nn.functional's, or torchvision's
    formula for the focal loss.  Returns ``(loss, grad)`` as NumPy arrays (the
    loss 0-d when reduced).  Skips the calling test when PyTorch is not
    installed (it is in the ``test`` extra, but the suite runs without it).
    """
    torch = pytest.importorskip("torch", reason="needs PyTorch (the test extra has it)")

    tdtype = getattr(torch, dtype)
    xt = torch.tensor(np.asarray(x), dtype=tdtype, requires_grad=True)
    if not case.elementwise:  # class indices
        tt = torch.as_tensor(np.asarray(t, dtype=np.int64))
    else:
        tt = torch.as_tensor(np.asarray(t), dtype=tdtype)
    arrays = {o.name for o in case.options_of_kind(_spec.WEIGHT, _spec.CLASS_WEIGHT)}
    kwargs = {
        key: torch.as_tensor(np.asarray(value), dtype=tdtype)
        if key in arrays and value is not None
        else value
        for key, value in options.items()
    }
    loss = case.torch_function()(xt, tt, reduction=reduction, **kwargs)
    go = torch.as_tensor(np.asarray(grad_output), dtype=tdtype)
    (grad,) = torch.autograd.grad((loss * go).sum(), xt)
    return loss.detach().numpy(), grad.numpy()
