"""The seam between fastloss.torch and fastloss's NumPy layer.

Every call that fastloss.torch makes into fastloss goes through this module,
and only through fastloss's public API: the loss classes' forward call and
``loss_and_grad(input, target, out=...)``, and the thread setting. The
arguments are NumPy arrays that share memory with the caller's tensors
(``tensor.numpy()`` views: no copy for C-contiguous float32) and plain
Python scalars.

Each function returns ``(loss, grad)``: the loss as fastloss gives it (a
Python float for 'mean' and 'sum', accumulated in double; a float32 array
for 'none') and d(loss)/d(input) from the same fused kernel call (for
'none', the gradient of the sum of the per-sample losses), or None when
not asked for.

Errors: fastloss's ``ValueError`` / ``TypeError`` for anything it refuses
(shapes, out-of-range targets, non-finite weights, ...) propagate; the
callers in fastloss.torch then run PyTorch's own function instead, which
gives PyTorch's result or PyTorch's error.

Cost of the public API for small calls (cross-entropy (64, 10), one
thread, the 2-core development machine, best of many interleaved runs):
``loss_and_grad`` takes about 4.8 us with ``out=None`` (43.6k instructions
under callgrind) and 9 us with ``out=`` (its overlap checks of ``out``
against every other argument cost more than the kernel at this size); the
forward call alone about 3.7 us; building a loss object about 1 us (so loss
objects without array options are cached here). The Cython kernel call it
ends in, with its output allocated, takes about 2.4 us. PyTorch's own
cross-entropy forward + backward through autograd takes about 46 us here,
fastloss.torch's about 48-50 us: this difference is what a lower-level
entry would close.

The entry that would: a "trusted" fused call that validates nothing the
caller has already checked, e.g. ::

    fastloss.fused.cross_entropy(x, target, grad_out=None, *, weight=None,
                                 ignore_index=-100, reduction="mean",
                                 label_smoothing=0.0, n_threads=None) -> float | ndarray
    fastloss.fused.elementwise(kind, x, y, grad_out=None, *, weight=None,
                               pos_weight=None, param0=0.0, param1=0.0,
                               reduction="mean", n_threads=None) -> float | ndarray

with x, target/y, weights already C-contiguous, aligned, of the kernel's
dtype and of consistent shapes, grad_out a fresh float32 array of x's shape
(or None for the loss only); it would still raise for an out-of-range target
(the C kernel reports it). Cost: the ~2.4 us of the kernel call instead of
~4.8 us, i.e. about 2.5 us (5% of the whole forward + backward at (64, 10))
per call; ``n_threads=`` would also let fastloss.torch pass
``torch.get_num_threads()`` per call instead of following it through
fastloss's global setting (fastloss/_threads.py's ``_follow_host_threads``).
"""

import fastloss
from fastloss import _spec, _threads

__all__ = ["follow_torch_threads", "cross_entropy", "nll_loss", "elementwise"]


def follow_torch_threads(get_num_threads):
    """Make fastloss's default thread count follow `get_num_threads()`
    (``torch.get_num_threads``) until fastloss's own setting is made
    (``fastloss.set_num_threads`` / ``fastloss.threads``)."""
    _threads._follow_host_threads(get_num_threads)


# Loss objects without array options, built once per set of options: building
# one costs about a microsecond, a tenth of a whole call at (64, 10).
_cache: dict = {}


def _cached(key, make):
    crit = _cache.get(key)
    if crit is None:
        if len(_cache) >= 256:   # options swept over many values: start again
            _cache.clear()
        crit = _cache[key] = make()
    return crit


def _call(crit, x, target, grad):
    """(loss, grad array or None). `grad`: None for the loss alone, True for
    a new gradient array (fastloss allocates it: no overlap checks to pay),
    or an array to write it into (``out=``)."""
    if grad is None:
        return crit(x, target), None
    if grad is True:
        return crit.loss_and_grad(x, target)
    return crit.loss_and_grad(x, target, out=grad)


def cross_entropy(x, target, weight, ignore_index, reduction, label_smoothing, grad=None):
    """Softmax cross-entropy: class-index (integer) or probability (float32,
    the input's shape) targets; ``weight`` a float32 (C,) array or None.
    Returns (loss, grad) as :func:`_call` says."""
    if weight is None:
        key = (ignore_index, reduction, label_smoothing)
        crit = _cache.get(key)
        if crit is None:
            crit = _cached(key, lambda: fastloss.CrossEntropyLoss(
                ignore_index=ignore_index, reduction=reduction,
                label_smoothing=label_smoothing))
    else:
        crit = fastloss.CrossEntropyLoss(weight=weight, ignore_index=ignore_index,
                                         reduction=reduction, label_smoothing=label_smoothing)
    if grad is True:   # the common case first (see _call)
        return crit.loss_and_grad(x, target)
    return _call(crit, x, target, grad)


def nll_loss(x, target, weight, ignore_index, reduction, grad=None):
    """Negative log-likelihood: integer class targets, ``weight`` a float32
    (C,) array or None. Returns (loss, grad) as :func:`_call` says."""
    if weight is None:
        crit = _cached(("nll_loss", ignore_index, reduction), lambda: fastloss.NLLLoss(
            ignore_index=ignore_index, reduction=reduction))
    else:
        crit = fastloss.NLLLoss(weight=weight, ignore_index=ignore_index, reduction=reduction)
    return _call(crit, x, target, grad)


# torch.nn.functional name -> fastloss class, for every elementwise loss the
# spec declares (fastloss._spec: the function and class names).
_ELEMENTWISE = {loss.func: getattr(fastloss, loss.cls)
                for loss in _spec.LOSSES if loss.family == _spec.ELEMENTWISE}


def elementwise(name, x, y, reduction, options, grad=None):
    """An elementwise loss by its torch.nn.functional name (or
    "sigmoid_focal_loss"); `options` maps its option names (weight,
    pos_weight, alpha, gamma, delta, beta, ...) to float32 arrays (or None),
    floats and bools. Returns (loss, grad) as :func:`_call` says."""
    cls = _ELEMENTWISE[name]
    if any(v is not None and type(v) is not float and type(v) is not bool
           for v in options.values()):
        crit = cls(reduction=reduction, **options)   # array options: not cached
    else:
        crit = _cached((name, reduction, *sorted(options.items())),
                       lambda: cls(reduction=reduction, **options))
    return _call(crit, x, y, grad)
