"""fastloss's fused kernels with torch.nn.functional's signatures.

``import fastloss.torch.functional as F`` in place of
``import torch.nn.functional as F`` (for the losses fastloss has; the rest of
torch.nn.functional is not here). Eight are written out below; every other
elementwise loss that fastloss._spec declares gets its function from its
declaration (the end of this module). Each function takes torch.nn.functional's
(for ``sigmoid_focal_loss``, torchvision.ops') arguments, defaults and
semantics, returns a tensor and supports autograd, in eager mode and under
``torch.compile``.

When the kernels run
--------------------
For float32 tensors on the CPU (strided, not a tensor subclass), with a
target (and weights) that do not require grad and options the kernels cover.
Everything else runs PyTorch's own function, so it gives PyTorch's result,
or PyTorch's own error where PyTorch refuses the arguments:

* other devices (CUDA, MPS, meta, ...) and sparse layouts;
* float64, float16 and bfloat16 tensors, except under CPU autocast
  (``torch.autocast("cpu", ...)``), where PyTorch computes the six
  torch.nn.functional losses in float32: there a float16/bfloat16 input
  (and target, weight) is cast to float32, as autocast does, and the kernels
  run. (torchvision's sigmoid focal loss is a chain of PyTorch operations that
  autocast mostly runs in the half dtype: under autocast a half input runs
  that chain.);
* a target that requires grad; a regression weight (MSE, L1, Huber) that
  requires grad (PyTorch differentiates it); a cross-entropy or BCE weight
  (or pos_weight) that requires grad (PyTorch raises);
* arguments fastloss refuses where PyTorch computes or raises its own error
  (targets out of range, a broadcast target, weights of another shape,
  non-finite weights, an unknown reduction, ...);
* double backward (``create_graph=True``): the gradient is recomputed by
  PyTorch's loss, whose graph reaches the input;
* torch.func transforms and forward-mode AD.

Mechanics
---------
Eager calls run a ``torch.autograd.Function`` (fastloss/torch/_autograd.py)
that calls the fused kernel once: the loss and d(loss)/d(input) in one pass,
the gradient written into a ``torch.empty`` buffer through its NumPy view.
Backward returns that buffer, untouched when the upstream gradient is 1.
Under ``torch.compiler.is_compiling()`` the same kernels are called through
the ``fastloss::`` custom operators (fastloss/torch/_ops.py), which
torch.compile traces with no graph break; the two routes give bitwise the
same results. Under torch.compile a value fastloss refuses at run time (a
target out of range, non-finite weights) raises fastloss's ValueError: the
compiled graph cannot switch to PyTorch's function then.

``overwrite_input=True`` (keyword-only, every loss, off by default) writes
the gradient over the input's memory instead of a new buffer: it saves an
input-sized allocation and its page faults (about a tenth of the loss's time
at (2048, 32768)). The input then holds the gradient, not the logits: take
anything else you need from it (accuracy, argmax) before the loss. fastloss
bumps the input's autograd version counter, so a node that saved the input
for its own backward (e.g. ``torch.relu`` saves its output) fails with
PyTorch's "modified by an inplace operation" error instead of computing with
the gradient as if it were the input; double backward is then impossible.
It is refused on a leaf tensor that requires grad, and has no effect under
torch.compile (custom operators may not write their inputs here).

Threads: the kernels run on ``torch.get_num_threads()`` threads unless
``fastloss.set_num_threads`` / ``fastloss.threads`` set fastloss's own count.

Gradient buffers of 4 MiB or more are reused once no tensor refers to them
(a fresh one costs page faults that can exceed the kernel's own time);
``fastloss.torch.empty_cache()`` releases them.

Speed: see the README's PyTorch section and tools/bench_torch.py. The
per-call overhead at small sizes, and the lower-level entry into fastloss
that would cut it, are written down in fastloss/torch/_kernels.py.
"""

import torch
import torch.nn.functional as _F
from torch.nn import _reduction

from fastloss import _spec

from . import _autograd, _kernels, _linear_ce, _ops

__all__ = ["cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "mse_loss",
           "l1_loss", "huber_loss", "smooth_l1_loss", "sigmoid_focal_loss",
           "linear_cross_entropy"]

_REDUCTIONS = ("none", "mean", "sum")
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)
_HALF_TYPES = (torch.float16, torch.bfloat16)
_F32_MAX = 3.4028234663852886e38
_F32_TINY = 1.1754943508222875e-38
_STRIDED = torch.strided


# --------------------------------------------------------------------------
# What the kernels accept.

def _eager_ok():
    """Not under a torch.func transform or forward-mode AD (eager mode only)."""
    return torch.autograd.forward_ad._current_level < 0 and \
        not torch._C._are_functorch_transforms_active()


def _plain(t):
    """A plain (not a subclass) strided CPU tensor, or None (eager mode only)."""
    return t is None or (type(t) in _PLAIN_TYPES and t.is_cpu and t.layout is _STRIDED)


def _cpu(t):
    return isinstance(t, torch.Tensor) and t.is_cpu and t.layout is _STRIDED


def _f32(t, autocast=True):
    """`t` as float32: itself, or under CPU autocast its float32 cast (what
    autocast does for these losses); None for any other dtype."""
    dtype = t.dtype
    if dtype is torch.float32:
        return t
    if autocast and dtype in _HALF_TYPES and torch.is_autocast_enabled("cpu"):
        return t.float()
    return None


def _weight(w, shape, exact):
    """(ok, float32 weight or None): a weight that does not require grad and
    has `shape` (`exact`) or broadcasts to it."""
    if w is None:
        return True, None
    if not _cpu(w) or w.requires_grad:
        return False, None
    w32 = _f32(w)
    if w32 is None:
        return False, None
    ws = tuple(w32.shape)
    if exact:
        return ws == tuple(shape), w32
    if len(ws) > len(shape):
        return False, None
    tail = tuple(shape)[len(shape) - len(ws):]
    return all(a == 1 or a == b for a, b in zip(ws, tail)), w32


def _real(v, low=None, high=None, positive=False):
    """A plain number within bounds that stays finite (and, for `positive`,
    nonzero) in float32, as a float; None otherwise (PyTorch then decides)."""
    if type(v) is not float and type(v) is not int:
        return None
    try:
        v = float(v)
    except OverflowError:   # an int beyond float64
        return None
    if not abs(v) <= _F32_MAX or (positive and not v >= _F32_TINY):
        return None
    if (low is not None and v < low) or (high is not None and v > high):
        return None
    return v


def _reduction_of(reduction, size_average, reduce):
    if size_average is not None or reduce is not None:
        return _reduction.legacy_get_string(size_average, reduce)
    return reduction


# --------------------------------------------------------------------------
# Cross-entropy.

def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0, *,
                  overwrite_input=False):
    r"""Softmax cross-entropy (``torch.nn.functional.cross_entropy``).

    .. math::

        \ell_i = (1 - \varepsilon)\, w_{t_i} (\mathrm{lse}_i - x_{i,t_i})
               + \frac{\varepsilon}{C} \sum_c w_c (\mathrm{lse}_i - x_{ic})

    with :math:`\mathrm{lse}_i` the row's log-sum-exp, :math:`w` the class
    weights and :math:`\varepsilon` the label smoothing; 'mean' divides by
    the kept targets' weights (PyTorch's weighted mean). Probability targets
    (floats of the input's shape) give
    :math:`-\sum_c w_c y'_c \log p_c` and a mean over samples.

    Parameters
    ----------
    input : Tensor, shape (N, C), (C,) or (N, C, d1, ..., dk)
        Logits. The fused kernel runs for float32 CPU tensors.
    target : Tensor
        Class indices (int64 or uint8) of shape (N,), () or (N, d1, ..., dk),
        or probabilities of the input's shape.
    weight : Tensor of shape (C,), optional
        Class weights (PyTorch raises when it requires grad).
    size_average, reduce : deprecated, as in PyTorch
    ignore_index : int, default -100
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    label_smoothing : float in [0, 1], default 0.0
    overwrite_input : bool, keyword-only, default False
        Write the gradient over the input's memory (see the module notes:
        the input holds the gradient afterwards).

    Returns
    -------
    Tensor
        0-d for 'mean' and 'sum'; per-sample shape for 'none'.
    """
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)

    def torch_loss(inp):
        return _F.cross_entropy(inp, target, weight, ignore_index=ignore_index,
                                reduction=reduction, label_smoothing=label_smoothing)

    if torch.compiler.is_compiling():
        args = _cross_entropy_args(input, target, weight, ignore_index, reduction,
                                   label_smoothing, True)
        if args is None:
            return torch_loss(input)
        x, t, w, eps = args
        need_grad = x.requires_grad and torch.is_grad_enabled()
        return _ops.cross_entropy(x, t, w, ignore_index, reduction, eps, need_grad)[0]
    args = None
    if torch.autograd.forward_ad._current_level < 0 and \
            not torch._C._are_functorch_transforms_active():   # _eager_ok(), inline
        args = _cross_entropy_args(input, target, weight, ignore_index, reduction,
                                   label_smoothing, False)
    if args is None:
        return torch_loss(input)
    x, t, w, eps = args
    t_np = (t if t.is_contiguous() else t.contiguous()).numpy()
    w_np = None if w is None else w.contiguous().numpy()

    def kernel(x_np, grad):
        return _kernels.cross_entropy(x_np, t_np, w_np, ignore_index, reduction, eps, grad)

    return _autograd.fused_loss(input, x, kernel, torch_loss, x.dim() != 1,
                                overwrite_input is True or bool(overwrite_input))


def _cross_entropy_args(input, target, weight, ignore_index, reduction, label_smoothing,
                        compiling):
    """(x, target, weight, label_smoothing) for the kernel, or None."""
    if reduction not in _REDUCTIONS or type(ignore_index) is not int:
        return None
    if compiling:
        if not (_cpu(input) and _cpu(target) and (weight is None or _cpu(weight))):
            return None
    elif not (type(input) in _PLAIN_TYPES and input.is_cpu and input.layout is _STRIDED
              and type(target) in _PLAIN_TYPES and target.is_cpu
              and target.layout is _STRIDED and _plain(weight)):
        return None
    if target.requires_grad:
        return None
    eps = label_smoothing if type(label_smoothing) is float and \
        0.0 <= label_smoothing <= 1.0 else _real(label_smoothing, 0.0, 1.0)
    x = _f32(input)
    if eps is None or x is None:
        return None
    shape = x.shape
    ndim = len(shape)
    if ndim == 0:
        return None
    c = shape[0] if ndim == 1 else shape[1]
    tdtype = target.dtype
    if tdtype is torch.int64 or tdtype is torch.uint8:
        tshape = target.shape
        if ndim == 2:   # the common case: (N, C) and (N,)
            if len(tshape) != 1 or tshape[0] != shape[0]:
                return None
        elif ndim == 1:
            if len(tshape) != 0:
                return None
        elif len(tshape) != ndim - 1 or tshape[0] != shape[0] or tshape[1:] != shape[2:]:
            return None
        t = target
    else:
        t = _f32(target)
        if t is None or t.shape != shape or ignore_index != -100 or c == 0:
            return None
    if weight is None:
        return x, t, None, eps
    ok, w = _weight(weight, (c,), exact=True)
    if not ok:
        return None
    return x, t, w, eps


# --------------------------------------------------------------------------
# Negative log-likelihood.

def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean", *, overwrite_input=False):
    r"""Negative log-likelihood (``torch.nn.functional.nll_loss``).

    .. math::

        \ell_i = -w_{t_i}\, x_{i, t_i}

    with :math:`x` the log-probabilities and :math:`w` the class weights;
    'mean' divides by the kept targets' weights (PyTorch's weighted mean,
    NaN when they sum to 0). The kernel reads one element per sample and
    writes the whole gradient once.

    Parameters
    ----------
    input : Tensor, shape (N, C), (C,) or (N, C, d1, ..., dk)
        Log-probabilities. The fused kernel runs for float32 CPU tensors.
    target : Tensor
        Class indices (int64 or uint8) of shape (N,), () or (N, d1, ..., dk).
    weight : Tensor of shape (C,), optional
        Class weights.
    size_average, reduce : deprecated, as in PyTorch
    ignore_index : int, default -100
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    overwrite_input : bool, keyword-only, default False
        Write the gradient over the input's memory (see the module notes:
        the input holds the gradient afterwards).

    Returns
    -------
    Tensor
        0-d for 'mean' and 'sum'; per-sample shape for 'none'.
    """
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)

    def torch_loss(inp):
        return _F.nll_loss(inp, target, weight, ignore_index=ignore_index, reduction=reduction)

    if torch.compiler.is_compiling():
        args = _nll_args(input, target, weight, ignore_index, reduction, True)
        if args is None:
            return torch_loss(input)
        x, t, w = args
        need_grad = x.requires_grad and torch.is_grad_enabled()
        return _ops.nll_loss(x, t, w, ignore_index, reduction, need_grad)[0]
    args = _nll_args(input, target, weight, ignore_index, reduction, False) \
        if _eager_ok() else None
    if args is None:
        return torch_loss(input)
    x, t, w = args
    t_np = (t if t.is_contiguous() else t.contiguous()).numpy()
    w_np = None if w is None else w.contiguous().numpy()

    def kernel(x_np, grad):
        return _kernels.nll_loss(x_np, t_np, w_np, ignore_index, reduction, grad)

    return _autograd.fused_loss(input, x, kernel, torch_loss, x.dim() != 1,
                                overwrite_input is True or bool(overwrite_input))


def _nll_args(input, target, weight, ignore_index, reduction, compiling):
    """(x, target, weight) for the kernel, or None: cross-entropy's checks
    for class-index targets (no probabilities: PyTorch's nll_loss takes none)."""
    if not (isinstance(target, torch.Tensor)
            and (target.dtype is torch.int64 or target.dtype is torch.uint8)):
        return None
    args = _cross_entropy_args(input, target, weight, ignore_index, reduction, 0.0, compiling)
    if args is None:
        return None
    x, t, w, _ = args
    return x, t, w


# --------------------------------------------------------------------------
# Elementwise losses.

def _elementwise_args(input, target, reduction, autocast, compiling, reductions=_REDUCTIONS):
    """(x, y) for the kernel, or None."""
    if reduction not in reductions:
        return None
    if compiling:
        if not (_cpu(input) and _cpu(target)):
            return None
    elif not (_plain(input) and _plain(target)):
        return None
    if target.requires_grad:
        return None
    x, y = _f32(input, autocast), _f32(target, autocast)
    if x is None or y is None or y.shape != x.shape:
        return None
    return x, y


def _elementwise(name, input, target, reduction, torch_loss, overwrite, weights, scalars,
                 reductions=_REDUCTIONS):
    """The loss `name` with `weights`, (name, tensor, exact shape) triples,
    and `scalars`, a dict of float options already checked (None: refused);
    `reductions`: those the kernels run (kl_div's add 'batchmean')."""
    compiling = torch.compiler.is_compiling()
    if not compiling and not _eager_ok():
        return torch_loss(input)
    # torchvision's focal loss is made of PyTorch operations, most of which
    # autocast runs in the half dtype: that has no float32 equivalent to run.
    args = _elementwise_args(input, target, reduction, name != "sigmoid_focal_loss", compiling,
                             reductions)
    if args is None or None in scalars.values():
        return torch_loss(input)
    x, y = args
    ws = {}
    for key, w, exact in weights:
        if w is not None and not compiling and not _plain(w):
            return torch_loss(input)
        ok, ws[key] = _weight(w, x.shape, exact)
        if not ok:
            return torch_loss(input)
    if compiling:
        return _ops_call(name, x, y, reduction, ws, scalars,
                         x.requires_grad and torch.is_grad_enabled())
    y_np = (y if y.is_contiguous() else y.contiguous()).numpy()
    options = dict(scalars)
    for key, w in ws.items():
        options[key] = None if w is None else w.contiguous().numpy()

    def kernel(x_np, grad):
        return _kernels.elementwise(name, x_np, y_np, reduction, options, grad)

    return _autograd.fused_loss(input, x, kernel, torch_loss, False, bool(overwrite))


def _ops_call(name, x, y, reduction, ws, scalars, need_grad):
    op = _ops.SPEC_OPS.get(name)
    if op is not None:
        values = {**ws, **scalars}
        return op(x, y, *[values[o.name] for o in _ops.spec_options(_SPEC_LOSSES[name])],
                  reduction, need_grad)[0]
    if name == "binary_cross_entropy_with_logits":
        out = _ops.binary_cross_entropy_with_logits(x, y, ws["weight"], ws["pos_weight"],
                                                    reduction, need_grad)
    elif name == "mse_loss":
        out = _ops.mse_loss(x, y, ws["weight"], reduction, need_grad)
    elif name == "l1_loss":
        out = _ops.l1_loss(x, y, ws["weight"], reduction, need_grad)
    elif name == "huber_loss":
        out = _ops.huber_loss(x, y, ws["weight"], reduction, scalars["delta"], need_grad)
    elif name == "smooth_l1_loss":
        out = _ops.smooth_l1_loss(x, y, reduction, scalars["beta"], need_grad)
    else:
        out = _ops.sigmoid_focal_loss(x, y, scalars["alpha"], scalars["gamma"], reduction,
                                      need_grad)
    return out[0]


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None, *,
                                     overwrite_input=False):
    r"""Binary cross-entropy on logits (``torch.nn.functional.binary_cross_entropy_with_logits``).

    .. math::

        \ell_i = w_i \bigl[ (1 - y_i) x_i + (1 + (p_i - 1) y_i)
                 \log(1 + e^{-x_i}) \bigr]

    computed in log space; :math:`w` the ``weight`` and :math:`p` the
    ``pos_weight`` (both broadcast to the input's shape; PyTorch raises when
    either requires grad). 'mean' divides by the number of elements.

    Parameters
    ----------
    input : Tensor, any shape
        Logits. The fused kernel runs for float32 CPU tensors.
    target : Tensor, the input's shape
    weight, pos_weight : Tensor, optional
    size_average, reduce : deprecated, as in PyTorch
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    overwrite_input : bool, keyword-only, default False
        Write the gradient over the input's memory (see the module notes).

    Returns
    -------
    Tensor
        0-d for 'mean' and 'sum'; the input's shape for 'none'.
    """
    reduction = _reduction_of(reduction, size_average, reduce)

    def torch_loss(inp):
        return _F.binary_cross_entropy_with_logits(inp, target, weight, reduction=reduction,
                                                   pos_weight=pos_weight)

    return _elementwise("binary_cross_entropy_with_logits", input, target, reduction,
                        torch_loss, overwrite_input,
                        (("weight", weight, False), ("pos_weight", pos_weight, False)), {})


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None, *,
             overwrite_input=False):
    r"""Mean squared error (``torch.nn.functional.mse_loss``): :math:`\ell_i = w_i (x_i - y_i)^2`.

    'mean' divides by the number of elements, or by the weight's sum when
    ``weight`` (the input's shape, as PyTorch requires) is given.

    Parameters
    ----------
    input, target : Tensor, the same shape
        (PyTorch broadcasts a target of another shape, with a warning: that
        runs PyTorch's function.)
    size_average, reduce : deprecated, as in PyTorch
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    weight : Tensor, optional
        Elementwise weights; one that requires grad runs PyTorch's function.
    overwrite_input : bool, keyword-only, default False

    Returns
    -------
    Tensor
    """
    reduction = _reduction_of(reduction, size_average, reduce)

    def torch_loss(inp):
        return _F.mse_loss(inp, target, reduction=reduction, weight=weight)

    return _elementwise("mse_loss", input, target, reduction, torch_loss, overwrite_input,
                        (("weight", weight, True),), {})


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None, *,
            overwrite_input=False):
    r"""Mean absolute error (``torch.nn.functional.l1_loss``): :math:`\ell_i = w_i |x_i - y_i|`.

    'mean' divides by the number of elements, or by the weight's sum when
    ``weight`` is given. The gradient at :math:`x = y` is 0.

    Parameters
    ----------
    input, target : Tensor, the same shape
    size_average, reduce : deprecated, as in PyTorch
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    weight : Tensor of the input's shape, optional
    overwrite_input : bool, keyword-only, default False

    Returns
    -------
    Tensor
    """
    reduction = _reduction_of(reduction, size_average, reduce)

    def torch_loss(inp):
        return _F.l1_loss(inp, target, reduction=reduction, weight=weight)

    return _elementwise("l1_loss", input, target, reduction, torch_loss, overwrite_input,
                        (("weight", weight, True),), {})


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None, *,
               overwrite_input=False):
    r"""Huber loss (``torch.nn.functional.huber_loss``).

    .. math::

        \ell_i = w_i \begin{cases} d_i^2 / 2 & |d_i| < \delta \\
                 \delta (|d_i| - \delta / 2) & \text{otherwise} \end{cases}

    with :math:`d = x - y`; 'mean' divides by the number of elements (with or
    without a weight, as PyTorch 2.13 does).

    Parameters
    ----------
    input, target : Tensor, the same shape
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    delta : float > 0, default 1.0
    weight : Tensor of the input's shape, optional
    overwrite_input : bool, keyword-only, default False

    Returns
    -------
    Tensor
    """
    def torch_loss(inp):
        return _F.huber_loss(inp, target, reduction=reduction, delta=delta, weight=weight)

    return _elementwise("huber_loss", input, target, reduction, torch_loss, overwrite_input,
                        (("weight", weight, True),), {"delta": _real(delta, positive=True)})


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0,
                   *, overwrite_input=False):
    r"""Smooth L1 loss (``torch.nn.functional.smooth_l1_loss``).

    .. math::

        \ell_i = \begin{cases} d_i^2 / (2\beta) & |d_i| < \beta \\
                 |d_i| - \beta / 2 & \text{otherwise} \end{cases}

    with :math:`d = x - y`; ``beta = 0`` is the L1 loss. 'mean' divides by the
    number of elements.

    Parameters
    ----------
    input, target : Tensor, the same shape
    size_average, reduce : deprecated, as in PyTorch
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    beta : float >= 0, default 1.0
    overwrite_input : bool, keyword-only, default False

    Returns
    -------
    Tensor
    """
    reduction = _reduction_of(reduction, size_average, reduce)

    def torch_loss(inp):
        return _F.smooth_l1_loss(inp, target, reduction=reduction, beta=beta)

    return _elementwise("smooth_l1_loss", input, target, reduction, torch_loss,
                        overwrite_input, (), {"beta": _real(beta, low=0.0)})


def torch_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction="none"):
    r"""The sigmoid focal loss in PyTorch operations (the fallback of
    :func:`sigmoid_focal_loss`; torchvision is not a dependency)."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    p = torch.sigmoid(inputs)
    bce = _F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = bce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2, reduction="none", *,
                       overwrite_input=False):
    r"""Sigmoid focal loss (``torchvision.ops.sigmoid_focal_loss``; Lin et al., 2017).

    .. math::

        \ell_i = \alpha_t\, \mathrm{BCE}(x_i, y_i)\, (1 - p_t)^\gamma, \quad
        p_t = p y + (1 - p)(1 - y), \quad \alpha_t = \alpha y + (1 - \alpha)(1 - y)

    with :math:`p = \sigma(x)`; :math:`\alpha_t = 1` when ``alpha < 0``.
    Note the default reduction is 'none', as in torchvision.

    Parameters
    ----------
    inputs, targets : Tensor, the same shape
    alpha : float, default 0.25
    gamma : float >= 0, default 2
    reduction : {'none', 'mean', 'sum'}, default 'none'
    overwrite_input : bool, keyword-only, default False

    Returns
    -------
    Tensor
    """
    def torch_loss(inp):
        return torch_sigmoid_focal_loss(inp, targets, alpha, gamma, reduction)

    return _elementwise("sigmoid_focal_loss", inputs, targets, reduction, torch_loss,
                        overwrite_input, (),
                        {"alpha": _real(alpha), "gamma": _real(gamma, low=0.0)})


# --------------------------------------------------------------------------
# Linear cross-entropy (a language model's head and its loss).

def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         reduction="mean", ignore_index=None, label_smoothing=0.0,
                         options=None, chunk_size=None):
    r"""Cross-entropy of a linear layer's output (``torch.nn.functional.linear_cross_entropy``)
    without the (N, V) logits: :func:`fastloss.linear_cross_entropy`'s chunked
    loop with torch's GEMMs (fastloss/torch/_linear_ce.py).

    .. math::

        \ell_i = \mathrm{CE}(W x_i + b,\, t_i)

    with PyTorch's cross-entropy (class weights, label smoothing,
    ``ignore_index``); 'mean' divides by the kept targets' weights over all
    tokens.

    The fused path runs for float32 CPU tensors: input (N, H) or (H,),
    linear_weight (V, H), linear_bias (V,), an int64 class-index target that
    does not require grad, float32 class weights (V,) that do not; everything
    else (other devices and dtypes, probability targets, K-dimensional
    weights, torch.func transforms, targets fastloss refuses, ...) runs
    PyTorch's function with the same arguments. The forward computes the loss
    and the gradients of input, linear_weight and linear_bias ('mean' and
    'sum'; 'none' computes them in backward, from the per-token upstream
    gradient); autograd keeps only the gradients. Under torch.compile it is
    the ``fastloss::linear_cross_entropy`` custom operator (no graph break).
    Double backward is recomputed by PyTorch's reference path.

    Parameters
    ----------
    input : Tensor, shape (N, H) or (H,)
    linear_weight : Tensor, shape (V, H)
    target : Tensor of int64, shape (N,) or ()
    linear_bias : Tensor, shape (V,), optional
    weight : Tensor, shape (V,), optional
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    ignore_index : int or None, default None (-100, as in PyTorch)
    label_smoothing : float in [0, 1], default 0.0
    options : torch.nn.LinearCrossEntropyOptions, optional
        Accepted for compatibility: fastloss always chunks; its
        ``batch_chunk_size``, when set, is the chunk size.
    chunk_size : int >= 1, keyword-only, optional
        Tokens per chunk (default: about 16 MiB of logits, ``16 MiB / (4 V)``
        tokens, at least 64: half the NumPy API's, since torch accumulates
        grad_weight in place). Only memory and speed depend on it.

    Returns
    -------
    Tensor
        0-d for 'mean' and 'sum'; (N,) (or () for (H,) input) for 'none'.
    """
    def torch_loss(x, W, b):
        return _F.linear_cross_entropy(x, W, target, linear_bias=b, weight=weight,
                                       reduction=reduction, ignore_index=ignore_index,
                                       label_smoothing=label_smoothing, options=options)

    compiling = torch.compiler.is_compiling()
    args = None
    if compiling or _eager_ok():
        args = _linear_ce_args(input, linear_weight, target, linear_bias, weight, reduction,
                               ignore_index, label_smoothing, options, chunk_size, compiling)
    if args is None:
        return torch_loss(input, linear_weight, linear_bias)
    w, ignore, eps, chunk = args
    need_grad = torch.is_grad_enabled() and (
        input.requires_grad or linear_weight.requires_grad
        or (linear_bias is not None and linear_bias.requires_grad))
    if compiling:
        return _ops.linear_cross_entropy(input, linear_weight, target, linear_bias, w, ignore,
                                         reduction, eps, chunk or 0,
                                         need_grad and reduction != "none")[0]
    try:
        if not need_grad:
            return _linear_ce.run(input, linear_weight, linear_bias, target, w, ignore,
                                  reduction, eps, chunk, False)[0]
        return _linear_ce.LinearCrossEntropyFunction.apply(
            input, linear_weight, linear_bias,
            (target, w, ignore, reduction, eps, chunk, torch_loss))
    except (ValueError, TypeError):   # fastloss refuses (a target out of range, ...)
        return torch_loss(input, linear_weight, linear_bias)


def _linear_ce_args(input, linear_weight, target, linear_bias, weight, reduction,
                    ignore_index, label_smoothing, options, chunk_size, compiling):
    """(float32 weight or None, ignore_index, label_smoothing, chunk size or
    None) for the kernels, or None (PyTorch's function runs)."""
    if reduction not in _REDUCTIONS:
        return None
    if ignore_index is None:
        ignore_index = -100
    elif type(ignore_index) is not int:
        return None
    tensors = (input, linear_weight, target, linear_bias, weight)
    if compiling:
        if not all(t is None or _cpu(t) for t in tensors):
            return None
    elif not all(_plain(t) for t in tensors):
        return None
    if input.dtype is not torch.float32 or linear_weight.dtype is not torch.float32:
        return None
    if input.dim() not in (1, 2) or linear_weight.dim() != 2:
        return None
    if target.dtype is not torch.int64 or target.requires_grad:
        return None
    if target.shape != (input.shape[:1] if input.dim() == 2 else ()):
        return None
    v_classes = linear_weight.shape[0]
    if linear_bias is not None and (linear_bias.dtype is not torch.float32
                                    or linear_bias.shape != (v_classes,)):
        return None
    eps = _real(label_smoothing, 0.0, 1.0)
    if eps is None:
        return None
    chunk = chunk_size
    if chunk is None and options is not None:
        chunk = getattr(options, "batch_chunk_size", None)
    if chunk is not None and (type(chunk) is not int or chunk < 1):
        return None
    if weight is None:
        return None, ignore_index, eps, chunk
    ok, w = _weight(weight, (v_classes,), exact=True)
    if not ok or w.dtype is not torch.float32:
        return None
    return w, ignore_index, eps, chunk


# Every other elementwise loss of fastloss._spec, derived from its
# declaration: torch.nn.functional's signature (the spec's `signature`, with
# ``overwrite_input`` keyword-only after it), the fused kernel through
# fastloss's class of the spec's `cls`, the custom operator
# ``fastloss::<func>`` (_ops.SPEC_OPS) under torch.compile, and PyTorch's
# ``torch.nn.functional.<func>`` for everything the kernels do not take. The
# fast path takes what the seven above take (float32 tensors, or half ones
# under CPU autocast, which computes these losses in float32 too), weights
# that broadcast to the input's shape and do not require grad, FLOAT options
# within the spec's range and BOOL options that are bools.

def _spec_call(loss, input, target, reduction, size_average, reduce, overwrite, options):
    reduction = _reduction_of(reduction, size_average, reduce)
    torch_fn = getattr(_F, loss.func)

    def torch_loss(inp):
        return torch_fn(inp, target, reduction=reduction, **options)

    weights, scalars = [], {}
    for o in _ops.spec_options(loss):
        value = options[o.name]
        if o.kind == _spec.WEIGHT:
            weights.append((o.name, value, False))
        elif o.kind == _spec.FLOAT:
            scalars[o.name] = _real(value, o.low, o.high, o.positive)
        else:
            scalars[o.name] = value if type(value) is bool else None
    return _elementwise(loss.func, input, target, reduction, torch_loss, overwrite, weights,
                        scalars, _REDUCTIONS + ("batchmean",) if loss.batchmean else _REDUCTIONS)


def _spec_parameters(loss):
    """The parameter list of `loss`'s function, as Python source."""
    params = list(loss.inputs)
    keyword_only = False
    for name in loss.signature:
        if name == _spec.KEYWORD_ONLY:
            params.append("*")
            keyword_only = True
        elif name == _spec.REDUCTION:
            params.append(f"reduction={loss.default_reduction!r}")
        elif name in _spec.LEGACY:
            params.append(f"{name}=None")
        else:
            params.append(f"{name}={loss.option(name).default!r}")
    if not keyword_only:
        params.append("*")
    params.append("overwrite_input=False")
    return ", ".join(params)


def _spec_function(loss):
    names = [o.name for o in _ops.spec_options(loss)]
    legacy = "size_average, reduce" if loss.has_legacy_args else "None, None"
    source = (f"def {loss.func}({_spec_parameters(loss)}):\n"
              f"    return _spec_call(_loss, {loss.inputs[0]}, {loss.inputs[1]}, reduction, "
              f"{legacy}, overwrite_input, {{{', '.join(f'{n!r}: {n}' for n in names)}}})\n")
    scope = {"_spec_call": _spec_call, "_loss": loss}
    exec(compile(source, f"<fastloss.torch.functional.{loss.func}>", "exec"), scope)
    fn = scope[loss.func]
    fn.__module__ = __name__
    fn.__doc__ = f"""{loss.summary}
{loss.doc}

    fastloss's fused kernel for float32 CPU tensors, PyTorch's
    ``{loss.torch}`` otherwise (see this module's notes).
    ``overwrite_input`` (keyword-only, default False) writes the gradient over
    the input's memory.
    """
    return fn


_SPEC_LOSSES = {loss.func: loss for loss in _spec.LOSSES if loss.family == _spec.ELEMENTWISE}
_SPEC_FUNCTIONS = {func: _spec_function(loss) for func, loss in _SPEC_LOSSES.items()
                   if func in _ops.SPEC_OPS}
__all__ += list(_SPEC_FUNCTIONS)
globals().update(_SPEC_FUNCTIONS)


# The row losses (fastloss/torch/_rows.py: their functional forms, custom
# operators and modules).
from ._rows import multi_margin_loss, multilabel_soft_margin_loss  # noqa: E402

__all__ += ["multilabel_soft_margin_loss", "multi_margin_loss"]

# The pairwise family (several float inputs, a gradient each): hand-written
# in fastloss/torch/_pairwise.py.
from ._pairwise import gaussian_nll_loss, margin_ranking_loss  # noqa: E402

__all__ += ["margin_ranking_loss", "gaussian_nll_loss"]

# The embedding losses (several differentiable inputs): fastloss/torch/_embedding.py.
from ._embedding import cosine_embedding_loss, triplet_margin_loss  # noqa: E402

__all__ += ["cosine_embedding_loss", "triplet_margin_loss"]
