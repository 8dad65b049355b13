"""What is timed: each provider's call per loss and mode.

For every loss, shape, mode ('forward', 'backward', 'fused'), thread count and,
for fastloss, instruction-set path, the median time of one whole call (Python
overhead included) of each provider:

==============  ==============================================================
fastloss        the loss object with its default reduction ('mean') or the
                options of the loss's spec (kl_div: 'batchmean'):
                ``loss(x, t)``, ``loss.backward(x, t, out=buf)``,
                ``loss.loss_and_grad(x, t, out=buf)`` (every array of the call
                in its order; for several gradients out= is a tuple of
                buffers); threads set around the
                timing loop with ``fastloss.threads(n)``, and the ISA path
                (``--isa``) with ``fastloss._core.set_isa``
fastloss_alloc  the same with ``out=None``: a fresh gradient array per call
                (backward and fused only)
floor           the memory traffic of a fused call and nothing else:
                ``np.copyto(buf, x)`` for cross-entropy and the other row losses
                (read the input, write the gradient; once per differentiable
                input), ``np.add(x, y, out=buf)`` for the elementwise losses
                (read two arrays, write one). NumPy, one thread.
torch           ``torch.nn.functional`` on tensors that share the arrays'
                memory. forward: no autograd. backward: ``torch.autograd.grad``
                over a graph built once and retained, i.e. the backward pass
                alone. fused: forward + ``.backward()``.
                ``torch.set_num_threads(n)`` around the timing loop.
torch_compile   the same calls of ``torch.compile(f, backend="inductor",
                dynamic=False)`` of the same ``torch.nn.functional`` function,
                compiled afresh for each shape, mode and thread count (inductor
                bakes the thread count into its kernels) before timing; the
                compilation, forward and backward graphs, happens in the
                runner's set-up and the warm-up call, never in a timed loop.
                backward is compiled without donated buffers, which a
                retained graph's repeated backward does not allow.
                Left out of --quick runs unless named: compiling costs seconds
                per case.
jax             ``jax.jit`` of the loss, of ``jax.grad`` and of
                ``jax.value_and_grad``, with ``block_until_ready``. XLA sizes
                its thread pool at start-up and it cannot be changed, so jax
                is timed once per shape and mode, as configured.
sklearn         ``sklearn._loss.loss``: HalfMultinomialLoss (cross-entropy),
                HalfBinomialLoss (BCE with logits), HalfSquaredError (half
                the squared error): ``loss`` / ``gradient`` / ``loss_gradient``
                with preallocated outputs and ``n_threads=n``; the per-sample
                losses are summed with NumPy. That is reduction='sum' (the
                gradient unscaled); 'mean' would cost the same.
reference       ``fastloss.reference``, float64 NumPy: loss, grad, or both.
                One thread; skipped above 2^22 elements (seconds per call).
==============  ==============================================================

A provider is one function ``_<provider>(workload, mode, n_threads)`` in
``_RUNNERS`` returning a :class:`Runner`; what differs between losses comes
from the loss's entry in :data:`fastloss.bench.losses.SPECS`.
"""

import contextlib
import functools
import importlib.util
import math
import os
from dataclasses import dataclass

import numpy as np

import fastloss
from fastloss import _core, reference

from .losses import SPECS

MODES = ("forward", "backward", "fused")
PEERS = ("torch", "torch_compile", "jax", "sklearn", "reference")
PROVIDERS = ("fastloss", "fastloss_alloc", "floor") + PEERS
# Providers whose thread count is not ours to set: timed once per shape and mode
# and compared with every thread count's fastloss row.
THREAD_AGNOSTIC = frozenset({"floor", "jax", "reference"})
# Providers that run fastloss's kernels, timed once per ISA path of the run.
ISA_DEPENDENT = frozenset({"fastloss", "fastloss_alloc"})
# Providers left out of --quick runs unless asked for by name.
NOT_QUICK = frozenset({"torch_compile"})
ISAS = ("baseline", "avx2", "avx512")
REFERENCE_MAX_ELEMENTS = 2**22
_MODULES = {"torch": "torch", "torch_compile": "torch", "jax": "jax", "sklearn": "sklearn"}


class Unavailable(Exception):
    """A provider that cannot run a case: not installed, not applicable, or too slow."""


@dataclass
class Runner:
    """fn() is one call; context() is a context manager to time it under
    (the thread count, and for fastloss the ISA path)."""

    fn: object
    context: object = contextlib.nullcontext


def installed(module):
    """Whether `module` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_isas():
    """The ISA paths this build has and this CPU runs, in ISAS order."""
    return [name for name in ISAS if _core.isa_available(name)]


@contextlib.contextmanager
def _setting(get, set_, value):
    """set_(value) inside the block, and back to what get() gave before."""
    previous = get()
    set_(value)
    try:
        yield
    finally:
        set_(previous)


def isa_path(name):
    """Run fastloss's kernels on ISA path `name` (None: leave it) inside the block."""
    if name is None:
        return contextlib.nullcontext()
    return _setting(fastloss.isa, _core.set_isa, name)


def unavailable_reason(provider, loss, shape, mode):
    """Why `provider` does not run this case (a string), or None when it does.
    Cheap: no import of the peer libraries."""
    if provider not in PROVIDERS:
        return f"unknown provider {provider!r}"
    spec = SPECS.get(loss)
    if spec is not None:
        if provider == "jax" and spec.jax_loss is None:
            return f"no JAX form of {loss} in the benchmarks"
        if provider == "sklearn" and spec.sklearn_class is None:
            return f"scikit-learn has no {loss}"
    if provider in _MODULES and not installed(_MODULES[provider]):
        return f"{_MODULES[provider]} is not installed"
    if provider == "fastloss_alloc" and mode == "forward":
        return "the forward pass allocates no gradient"
    if provider == "reference" and math.prod(shape) > REFERENCE_MAX_ELEMENTS:
        return "the float64 reference takes seconds above 2^22 elements"
    return None


def make_runner(provider, w, mode, n_threads, isa=None):
    """A Runner timing `provider` on workload `w` in `mode` with `n_threads`
    (and, for fastloss's providers, on ISA path `isa`; None: the current one)."""
    reason = unavailable_reason(provider, w.loss, w.shape, mode)
    if reason:
        raise Unavailable(reason)
    runner = _RUNNERS[provider](w, mode, n_threads)
    if provider in ISA_DEPENDENT and isa is not None:
        inner = runner.context

        @contextlib.contextmanager
        def context():
            with isa_path(isa), inner():
                yield

        runner.context = context
    return runner


def _fastloss(w, mode, n, alloc=False):
    obj = getattr(fastloss, w.spec.fastloss_class)(**w.options)
    out = None if alloc else (w.buf if len(w.bufs) == 1 else tuple(w.bufs))
    if mode == "forward":
        fn = functools.partial(obj, *w.args)
    elif mode == "backward":
        fn = functools.partial(obj.backward, *w.args, out=out)
    else:
        fn = functools.partial(obj.loss_and_grad, *w.args, out=out)
    return Runner(fn, lambda: fastloss.threads(n))


def _floor(w, mode, n):
    if w.spec.floor == "copy":
        pairs = [(buf, w.args[i]) for buf, i in zip(w.bufs, w.diff)]

        def fn():
            for buf, x in pairs:
                np.copyto(buf, x)
        return Runner(functools.partial(np.copyto, w.buf, w.x) if len(pairs) == 1 else fn)
    return Runner(functools.partial(np.add, w.x, w.target, out=w.buf))


def _reference(w, mode, n):
    ref_loss, ref_grad = (functools.partial(getattr(reference, name), **w.options)
                          for name in w.spec.reference)
    args = w.args
    if mode == "forward":
        fn = functools.partial(ref_loss, *args)
    elif mode == "backward":
        fn = functools.partial(ref_grad, *args)
    else:
        def fn():
            return ref_loss(*args), ref_grad(*args)
    return Runner(fn)


def _torch_threads(torch, n):
    return _setting(torch.get_num_threads, torch.set_num_threads, n)


def _torch_calls(torch, f, w, mode, n):
    """fn() of torch function `f` in `mode` on `w`'s tensors (eager or compiled):
    the gradients of every differentiable array (one tensor for one array)."""
    tensors = w.view("torch_args", lambda: [torch.from_numpy(a) for a in w.args])
    f = functools.partial(f, **w.options)
    if mode == "forward":
        return functools.partial(f, *tensors)  # nothing requires grad: no graph is built

    def leaves():
        args = list(tensors)
        for i in w.diff:
            args[i] = args[i].detach().requires_grad_()
        return args, [args[i] for i in w.diff]

    if mode == "backward":
        args, wrt = leaves()
        with _torch_threads(torch, n):
            value = f(*args)
        return functools.partial(torch.autograd.grad, value, wrt, retain_graph=True)

    def fn():
        args, wrt = leaves()
        value = f(*args)
        value.backward()
        grads = [a.grad for a in wrt]
        return value, grads[0] if len(grads) == 1 else grads
    return fn


def _torch(w, mode, n):
    import torch

    f = getattr(torch.nn.functional, w.spec.torch_function)
    return Runner(_torch_calls(torch, f, w, mode, n), lambda: _torch_threads(torch, n))


def _torch_compile(w, mode, n):
    import torch

    # Dynamo keeps its compiled graphs on the function's code object, with a
    # limit of 8 recompilations: start every case from an empty cache, so that
    # each case gets its own specialised graph and never falls back to eager.
    torch._dynamo.reset()
    f = torch.compile(getattr(torch.nn.functional, w.spec.torch_function),
                      backend="inductor", dynamic=False)
    # The backward mode calls one graph's backward again and again (retain_graph),
    # which a backward compiled with donated buffers refuses (it frees what it
    # saved): compile that mode without them.
    donated = contextlib.nullcontext() if mode != "backward" else (
        torch._functorch.config.patch(donated_buffer=False))
    with donated:
        fn = _torch_calls(torch, f, w, mode, n)
        with _torch_threads(torch, n):
            fn()  # compile here (the backward graph at its first call), not in a timed loop
    return Runner(fn, lambda: _torch_threads(torch, n))


@functools.cache
def _jax_functions(loss):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp

    f = SPECS[loss].jax_loss(jax, jnp)
    return {"forward": jax.jit(f), "backward": jax.jit(jax.grad(f)),
            "fused": jax.jit(jax.value_and_grad(f))}


def _jax(w, mode, n):
    import jax
    import jax.numpy as jnp

    g = _jax_functions(w.loss)[mode]
    xj = w.view("jax_x", lambda: jnp.asarray(w.x))
    if w.spec.target == "class":
        tj = w.view("jax_t", lambda: jnp.asarray(w.target.astype(np.int32)))
    else:
        tj = w.view("jax_t", lambda: jnp.asarray(w.target))

    def fn():
        return jax.block_until_ready(g(xj, tj))

    return Runner(fn)


def _sklearn(w, mode, n):
    from sklearn._loss import loss as sk

    cls = getattr(sk, w.spec.sklearn_class)
    if w.spec.target == "class":
        obj = cls(n_classes=w.shape[1])
        y = w.view("sklearn_y", lambda: w.target.astype(np.float32))
    else:
        obj = cls()
        y = w.target
    raw, grad = w.x, w.buf
    per_sample = w.view("sklearn_loss", lambda: np.empty(w.shape[0], np.float32))
    if mode == "forward":
        def fn():
            return obj.loss(y, raw, loss_out=per_sample, n_threads=n).sum()
    elif mode == "backward":
        fn = functools.partial(obj.gradient, y, raw, gradient_out=grad, n_threads=n)
    else:
        def fn():
            value, g = obj.loss_gradient(y, raw, loss_out=per_sample, gradient_out=grad,
                                         n_threads=n)
            return value.sum(), g
    return Runner(fn)


_RUNNERS = {
    "fastloss": _fastloss,
    "fastloss_alloc": functools.partial(_fastloss, alloc=True),
    "floor": _floor,
    "reference": _reference,
    "torch": _torch,
    "torch_compile": _torch_compile,
    "jax": _jax,
    "sklearn": _sklearn,
}


def notes(providers=PROVIDERS):
    """How to read the tables (for the headers of the text and markdown output),
    for the providers in `providers`."""
    by_provider = {
        "fastloss": "fastloss: reduction='mean'; backward and fused write into a preallocated "
        "buffer (out=buf); 'fastloss out=None' allocates the gradient each call",
        "floor": "floor: the memory traffic of a fused call (NumPy copy or add, one thread)",
        "torch": "torch: forward without autograd; backward = torch.autograd.grad over a "
        "retained graph (the backward pass alone, forward not timed); fused = forward + "
        ".backward()",
        "torch_compile": "torch_compile: the same calls of torch.compile(backend='inductor', "
        "dynamic=False) of the same function, compiled for each shape, mode and thread count "
        "before timing (left out of --quick runs unless named in --providers)",
        "jax": "jax: jit(loss) / jit(grad) / jit(value_and_grad), block_until_ready; XLA's own "
        "thread pool, fixed at start-up: one measurement per mode, compared with every "
        "thread count",
        "sklearn": "sklearn: sklearn._loss HalfMultinomialLoss / HalfBinomialLoss / "
        "HalfSquaredError loss / gradient / loss_gradient with preallocated outputs and "
        "n_threads, per-sample losses summed (reduction='sum')",
        "reference": "reference: fastloss.reference, float64 NumPy, one thread; not run above "
        "2^22 elements",
    }
    return ["times are medians of one whole call (Python overhead included); speed-up = peer "
            "time / fastloss time, same mode and thread count"] + [
        note for p, note in by_provider.items() if p in providers]
