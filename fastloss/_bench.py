"""Benchmark engine: fastloss against its peers and against the memory floor.

Shared by ``fastloss bench`` (fastloss/__main__.py), tools/make_benchmarks_md.py
(which writes BENCHMARKS.md) and the pytest-benchmark suites in benchmarks/.
Only NumPy and fastloss are required; each peer is used when it is installed.

What is timed
-------------
For every loss, shape, mode ('forward', 'backward', 'fused') and thread count,
the median time of one whole call (Python overhead included) of each provider:

==============  ==============================================================
fastloss        the loss object with its default reduction ('mean'):
                ``loss(x, t)``, ``loss.backward(x, t, out=buf)``,
                ``loss.loss_and_grad(x, t, out=buf)``; threads set around the
                timing loop with ``fastloss.threads(n)``
fastloss_alloc  the same with ``out=None``: a fresh gradient array per call
                (backward and fused only)
floor           the memory traffic of a fused call and nothing else:
                ``np.copyto(buf, x)`` for cross-entropy (read the logits, write
                the gradient), ``np.add(x, y, out=buf)`` for the elementwise
                losses (read two arrays, write one). NumPy, one thread.
torch           ``torch.nn.functional`` on tensors that share the arrays'
                memory. forward: no autograd. backward: ``torch.autograd.grad``
                over a graph built once and retained, i.e. the backward pass
                alone. fused: forward + ``.backward()``.
                ``torch.set_num_threads(n)`` around the timing loop.
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

Timing: one warm-up call; then a loop whose iteration count is calibrated so
that it lasts at least ``min_time`` seconds; ``repeats`` such loops (the
calibration loop counts as the first when it was long enough). The result is
the median over loops of loop time / iterations. The garbage collector is off
while timing, and the process sleeps briefly between providers so that one
library's spinning OpenMP workers do not steal a core from the next.

Memory: the tracemalloc peak of one call above what was allocated before it.
NumPy reports its data buffers to tracemalloc, so this sees the arrays that
fastloss, the reference and sklearn allocate; PyTorch's and XLA's allocators
are invisible to it and are not reported.
"""

import contextlib
import datetime
import functools
import gc
import importlib.metadata
import importlib.util
import math
import os
import platform
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np

import fastloss
from fastloss import reference

__all__ = [
    "LOSSES", "MODES", "PROVIDERS", "PEERS", "Config", "Report", "Unavailable",
    "Workload", "make_runner", "unavailable_reason", "measure", "traced_peak",
    "run", "environment", "parse_shape", "shape_label", "format_time",
]

LOSSES = ("cross_entropy", "bce_with_logits", "mse")
MODES = ("forward", "backward", "fused")
PEERS = ("torch", "jax", "sklearn", "reference")
PROVIDERS = ("fastloss", "fastloss_alloc", "floor") + PEERS
# Providers whose thread count is not ours to set: timed once per shape and mode
# and compared with every thread count's fastloss row.
THREAD_AGNOSTIC = frozenset({"floor", "jax", "reference"})

_LOSS_ALIASES = {
    "cross_entropy": "cross_entropy", "ce": "cross_entropy",
    "bce_with_logits": "bce_with_logits", "bce": "bce_with_logits",
    "binary_cross_entropy_with_logits": "bce_with_logits",
    "mse": "mse", "mse_loss": "mse",
}

FULL_SHAPES = {
    "cross_entropy": [(64, 10), (4096, 1000), (65536, 10), (2048, 32768), (16, 131072)],
    "bce_with_logits": [(2**10,), (2**20,), (2**24,)],
    "mse": [(2**10,), (2**20,), (2**24,)],
}
QUICK_SHAPES = {
    "cross_entropy": [(64, 10), (512, 1000)],
    "bce_with_logits": [(2**10,), (2**16,)],
    "mse": [(2**10,), (2**16,)],
}
DEFAULT_THREADS = (1, 2)
FULL_TIMING = {"repeats": 5, "min_time": 0.1}
QUICK_TIMING = {"repeats": 3, "min_time": 0.01}
REFERENCE_MAX_ELEMENTS = 2**22
PAUSE_BETWEEN_PROVIDERS_S = 0.01

# Per loss: fastloss class, reference (loss, grad), torch.nn.functional name,
# sklearn._loss.loss class, the floor as it is written in the tables.
_SPEC = {
    "cross_entropy": ("CrossEntropyLoss", (reference.cross_entropy, reference.cross_entropy_grad),
                      "cross_entropy", "HalfMultinomialLoss", "np.copyto(grad, logits)"),
    "bce_with_logits": ("BCEWithLogitsLoss", (reference.binary_cross_entropy_with_logits,
                                              reference.binary_cross_entropy_with_logits_grad),
                        "binary_cross_entropy_with_logits", "HalfBinomialLoss",
                        "np.add(input, target, out=grad)"),
    "mse": ("MSELoss", (reference.mse_loss, reference.mse_loss_grad), "mse_loss",
            "HalfSquaredError", "np.add(input, target, out=grad)"),
}
_MODULES = {"torch": "torch", "jax": "jax", "sklearn": "sklearn"}


class Unavailable(Exception):
    """A provider that cannot run a case: not installed, not applicable, or too slow."""


# --------------------------------------------------------------------------
# Names and shapes.

def canonical_loss(name):
    try:
        return _LOSS_ALIASES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)} "
                         "(or ce, bce)") from None


def _parse_int(text):
    text = text.strip()
    for op in ("^", "**"):
        if op in text:
            base, exp = text.split(op, 1)
            return int(base) ** int(exp)
    return int(text)


def parse_shape(text):
    """'4096x1000' -> (4096, 1000); '2^20' or '1048576' -> (1048576,)."""
    try:
        shape = tuple(_parse_int(p) for p in text.strip().lower().split("x"))
    except ValueError:
        raise ValueError(f"bad shape {text!r}: write NxC (4096x1000) or a number of "
                         "elements (2^20, 1048576)") from None
    if not 1 <= len(shape) <= 2 or min(shape) < 1:
        raise ValueError(f"bad shape {text!r}: one or two positive sizes")
    return shape


def shape_label(shape):
    """(4096, 1000) -> '4096x1000'; (2**20,) -> '2^20'; (1000,) -> '1000'."""
    if len(shape) == 1:
        n = shape[0]
        if n >= 1024 and n & (n - 1) == 0:
            return f"2^{n.bit_length() - 1}"
        return str(n)
    return "x".join(str(d) for d in shape)


def shape_id(shape):
    """A label that pytest's -k can match: '2^20' is written '2pow20'."""
    return shape_label(shape).replace("^", "pow")


def shapes_for(losses, shapes):
    """Split a list of shapes among losses: NxC shapes go to cross-entropy,
    element counts to the elementwise losses."""
    out = {}
    for loss in losses:
        want = 2 if loss == "cross_entropy" else 1
        out[loss] = [s for s in shapes if len(s) == want]
    return out


def format_time(seconds):
    """Seconds as a short string with 3 significant digits and a unit."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            v = seconds / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"


def format_bytes(n):
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


# --------------------------------------------------------------------------
# Data and runners.

class Workload:
    """The arrays of one (loss, shape): input, target, a gradient buffer, and
    the peers' versions of them (tensors, device arrays), made on first use."""

    def __init__(self, loss, shape, seed=0):
        self.loss, self.shape = loss, tuple(shape)
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal(self.shape, dtype=np.float32)
        if loss == "cross_entropy":
            self.target = rng.integers(0, self.shape[1], self.shape[0])  # int64
        elif loss == "bce_with_logits":
            self.target = rng.random(self.shape, dtype=np.float32)
        else:
            self.target = rng.standard_normal(self.shape, dtype=np.float32)
        self.buf = np.empty_like(self.x)
        self._views = {}

    def view(self, key, make):
        if key not in self._views:
            self._views[key] = make()
        return self._views[key]


@dataclass
class Runner:
    """fn() is one call; threads() is a context manager to time it under."""

    fn: object
    threads: object = contextlib.nullcontext


def installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def unavailable_reason(provider, loss, shape, mode):
    """Why `provider` does not run this case (a string), or None when it does.
    Cheap: no import of the peer libraries."""
    if provider not in PROVIDERS:
        return f"unknown provider {provider!r}"
    if provider in _MODULES and not installed(_MODULES[provider]):
        return f"{_MODULES[provider]} is not installed"
    if provider == "fastloss_alloc" and mode == "forward":
        return "the forward pass allocates no gradient"
    if provider == "reference" and math.prod(shape) > REFERENCE_MAX_ELEMENTS:
        return "the float64 reference takes seconds above 2^22 elements"
    return None


def make_runner(provider, w, mode, n_threads):
    """A Runner timing `provider` on workload `w` in `mode` with `n_threads`."""
    reason = unavailable_reason(provider, w.loss, w.shape, mode)
    if reason:
        raise Unavailable(reason)
    return _RUNNERS[provider](w, mode, n_threads)


def _fastloss(w, mode, n, alloc=False):
    obj = getattr(fastloss, _SPEC[w.loss][0])()
    out = None if alloc else w.buf
    if mode == "forward":
        fn = functools.partial(obj, w.x, w.target)
    elif mode == "backward":
        fn = functools.partial(obj.backward, w.x, w.target, out=out)
    else:
        fn = functools.partial(obj.loss_and_grad, w.x, w.target, out=out)
    return Runner(fn, lambda: fastloss.threads(n))


def _floor(w, mode, n):
    if w.loss == "cross_entropy":
        return Runner(functools.partial(np.copyto, w.buf, w.x))
    return Runner(functools.partial(np.add, w.x, w.target, out=w.buf))


def _reference(w, mode, n):
    ref_loss, ref_grad = _SPEC[w.loss][1]
    x, t = w.x, w.target
    if mode == "forward":
        fn = functools.partial(ref_loss, x, t)
    elif mode == "backward":
        fn = functools.partial(ref_grad, x, t)
    else:
        def fn():
            return ref_loss(x, t), ref_grad(x, t)
    return Runner(fn)


@contextlib.contextmanager
def _torch_threads(torch, n):
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _torch(w, mode, n):
    import torch

    f = getattr(torch.nn.functional, _SPEC[w.loss][2])
    xt = w.view("torch_x", lambda: torch.from_numpy(w.x))
    tt = w.view("torch_t", lambda: torch.from_numpy(w.target))
    if mode == "forward":
        fn = functools.partial(f, xt, tt)  # xt does not require grad: no graph is built
    elif mode == "backward":
        xx = xt.detach().requires_grad_()
        with _torch_threads(torch, n):
            value = f(xx, tt)
        fn = functools.partial(torch.autograd.grad, value, xx, retain_graph=True)
    else:
        def fn():
            xx = xt.detach().requires_grad_()
            value = f(xx, tt)
            value.backward()
            return value, xx.grad
    return Runner(fn, lambda: _torch_threads(torch, n))


@functools.lru_cache(maxsize=None)
def _jax_functions(loss):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp

    def cross_entropy(x, t):
        lse = jax.nn.logsumexp(x, axis=1)
        picked = jnp.take_along_axis(x, t[:, None], axis=1)[:, 0]
        return jnp.mean(lse - picked)

    def bce_with_logits(x, y):
        return jnp.mean(jnp.maximum(x, 0) - x * y + jnp.log1p(jnp.exp(-jnp.abs(x))))

    def mse(x, y):
        return jnp.mean(jnp.square(x - y))

    f = {"cross_entropy": cross_entropy, "bce_with_logits": bce_with_logits, "mse": mse}[loss]
    return {"forward": jax.jit(f), "backward": jax.jit(jax.grad(f)),
            "fused": jax.jit(jax.value_and_grad(f))}


def _jax(w, mode, n):
    import jax
    import jax.numpy as jnp

    g = _jax_functions(w.loss)[mode]
    xj = w.view("jax_x", lambda: jnp.asarray(w.x))
    if w.loss == "cross_entropy":
        tj = w.view("jax_t", lambda: jnp.asarray(w.target.astype(np.int32)))
    else:
        tj = w.view("jax_t", lambda: jnp.asarray(w.target))

    def fn():
        return jax.block_until_ready(g(xj, tj))

    return Runner(fn)


def _sklearn(w, mode, n):
    from sklearn._loss import loss as sk

    name = _SPEC[w.loss][3]
    if w.loss == "cross_entropy":
        obj = sk.HalfMultinomialLoss(n_classes=w.shape[1])
        y = w.view("sklearn_y", lambda: w.target.astype(np.float32))
    else:
        obj = getattr(sk, name)()
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
    "jax": _jax,
    "sklearn": _sklearn,
}


# --------------------------------------------------------------------------
# Measuring.

@dataclass
class Timing:
    median_s: float
    samples_s: list
    number: int


def _loop(fn, number, timer=time.perf_counter):
    t0 = timer()
    for _ in range(number):
        fn()
    return timer() - t0


def measure(fn, repeats=5, min_time=0.1):
    """Median seconds per call of fn(): warm-up, calibrate, `repeats` loops."""
    fn()  # warm-up: page faults, thread pools, JIT compilation
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        number, samples = 1, []
        while True:
            elapsed = _loop(fn, number)
            if elapsed >= min_time:
                samples.append(elapsed / number)
                break
            grow = 1.1 * min_time / max(elapsed, 1e-9)
            number = int(min(max(2 * number, math.ceil(number * grow)), number * 1000))
        while len(samples) < max(1, repeats):
            samples.append(_loop(fn, number) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing(float(np.median(samples)), samples, number)


def traced_peak(fn):
    """Bytes that one call of fn() allocated at its peak (tracemalloc), the
    returned value included. fn is called once before, untraced."""
    fn()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - before
        del result
    finally:
        if started:
            tracemalloc.stop()
    return max(0, peak)


# What the memory line reports: (label, provider, mode).
MEMORY_PROBES = (
    ("fastloss fused out=buf", "fastloss", "fused"),
    ("fastloss fused out=None", "fastloss_alloc", "fused"),
    ("fastloss forward", "fastloss", "forward"),
    ("reference fused", "reference", "fused"),
)


# --------------------------------------------------------------------------
# The environment a run is reported with.

def _cpuinfo_field(*names):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(names):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model():
    return (_cpuinfo_field("model name", "cpu model", "hardware")
            or platform.processor() or platform.machine() or "unknown")


def cpu_vector_flags():
    """The vector extensions the kernels may use that this CPU reports (x86 /proc/cpuinfo)."""
    flags = set((_cpuinfo_field("flags") or "").split())
    return [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                        "avx512dq") if f in flags]


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(providers=PROVIDERS):
    """Machine, library versions and thread settings, as a JSON-able dict."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count()
    env = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_vector_flags": cpu_vector_flags(),
        "cpu_count": os.cpu_count(),
        "cpus_available": available,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastloss": {
            "version": fastloss.__version__,
            "path": os.path.dirname(os.path.abspath(fastloss.__file__)),
            "isa": fastloss.isa(),
            "openmp": fastloss.openmp_enabled(),
            "default_threads": fastloss.get_num_threads(),
            "build": fastloss.build_info(),
        },
        "torch": _version("torch") if "torch" in providers else None,
        "jax": _version("jax") if "jax" in providers else None,
        "jaxlib": _version("jaxlib") if "jax" in providers else None,
        "sklearn": _version("scikit-learn") if "sklearn" in providers else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    if env["torch"] and "torch" in sys.modules:
        env["torch_default_threads"] = sys.modules["torch"].get_num_threads()
    return env


# --------------------------------------------------------------------------
# A run.

@dataclass
class Config:
    """What to run. Build with Config.make(...) to get defaults and checks."""

    losses: tuple
    shapes: dict            # loss -> list of shape tuples
    modes: tuple
    threads: tuple
    providers: tuple
    repeats: int
    min_time: float
    memory: bool = True
    seed: int = 0
    quick: bool = False

    @classmethod
    def make(cls, losses=None, shapes=None, modes=None, threads=None, providers=None,
             repeats=None, min_time=None, memory=True, quick=False, seed=0):
        losses = tuple(dict.fromkeys(canonical_loss(x) for x in (losses or LOSSES)))
        if shapes is None:
            table = QUICK_SHAPES if quick else FULL_SHAPES
            by_loss = {loss: list(table[loss]) for loss in losses}
        else:
            by_loss = shapes_for(losses, [tuple(s) for s in shapes])
        modes = tuple(dict.fromkeys(modes or MODES))
        for m in modes:
            if m not in MODES:
                raise ValueError(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
        threads = tuple(dict.fromkeys(int(n) for n in (threads or DEFAULT_THREADS)))
        if min(threads) < 1:
            raise ValueError("thread counts must be >= 1")
        providers = tuple(dict.fromkeys(providers or PROVIDERS))
        for p in providers:
            if p not in PROVIDERS:
                raise ValueError(f"unknown provider {p!r}; choose from {', '.join(PROVIDERS)}")
        if "fastloss" not in providers:
            providers = ("fastloss",) + providers
        if "floor" not in providers:
            providers = providers + ("floor",)
        timing = QUICK_TIMING if quick else FULL_TIMING
        return cls(losses, by_loss, modes, threads, providers,
                   int(repeats or timing["repeats"]),
                   float(min_time if min_time is not None else timing["min_time"]),
                   memory, seed, quick)

    def to_dict(self):
        return {"losses": list(self.losses),
                "shapes": {k: [list(s) for s in v] for k, v in self.shapes.items()},
                "modes": list(self.modes), "threads": list(self.threads),
                "providers": list(self.providers), "repeats": self.repeats,
                "min_time_s": self.min_time, "memory": self.memory, "seed": self.seed,
                "quick": self.quick}


@dataclass
class Step:
    """One timing: threads is None for thread-agnostic providers, mode is None for the floor."""

    loss: str
    shape: tuple
    mode: object
    threads: object
    provider: str

    def label(self):
        parts = [self.loss, shape_label(self.shape)]
        if self.mode:
            parts.append(self.mode)
        parts.append(self.provider)
        if self.threads is not None:
            parts.append(f"{self.threads}t")
        return " ".join(parts)


def plan(config):
    """The timings of a run, in order: per loss and shape, the floor, then for
    each mode and thread count every provider side by side."""
    steps = []
    for loss in config.losses:
        for shape in config.shapes[loss]:
            steps.append(Step(loss, shape, None, None, "floor"))
            for mode in config.modes:
                for i, n in enumerate(config.threads):
                    for p in config.providers:
                        if p == "floor" or unavailable_reason(p, loss, shape, mode):
                            continue
                        if p in THREAD_AGNOSTIC:
                            if i:
                                continue
                            steps.append(Step(loss, shape, mode, None, p))
                        else:
                            steps.append(Step(loss, shape, mode, n, p))
    return steps


@dataclass
class Result:
    loss: str
    shape: tuple
    mode: object
    threads: object
    provider: str
    median_s: object = None
    samples_s: list = field(default_factory=list)
    number: int = 0
    error: object = None

    def to_dict(self):
        return {"loss": self.loss, "shape": list(self.shape),
                "shape_label": shape_label(self.shape), "mode": self.mode,
                "threads": self.threads, "provider": self.provider,
                "median_s": self.median_s, "samples_s": self.samples_s,
                "iterations": self.number, "error": self.error}


class Report:
    """The results of a run, with lookups and table formatting."""

    def __init__(self, config, env, results=(), memory=None, elapsed_s=None, command=None):
        self.config, self.env = config, env
        self.results = list(results)
        self.memory = memory if memory is not None else {}   # (loss, shape) -> {label: bytes}
        self.elapsed_s, self.command = elapsed_s, command
        self._index = {}
        for r in self.results:
            self._add(r)

    def _add(self, r):
        self._index[(r.loss, tuple(r.shape), r.mode, r.threads, r.provider)] = r

    def add(self, r):
        self.results.append(r)
        self._add(r)

    def time(self, loss, shape, mode, threads, provider):
        """Median seconds of a provider in a case; thread-agnostic providers and the
        floor answer for every thread count and mode. None when not measured."""
        shape = tuple(shape)
        for key in ((loss, shape, mode, threads, provider), (loss, shape, mode, None, provider),
                    (loss, shape, None, None, provider)):
            r = self._index.get(key)
            if r is not None:
                return r.median_s
        return None

    def to_dict(self):
        mem = [{"loss": loss, "shape": list(shape), "shape_label": shape_label(shape),
                "traced_peak_bytes": probes}
               for (loss, shape), probes in self.memory.items()]
        return {"schema": "fastloss-bench/1", "command": self.command, "environment": self.env,
                "config": self.config.to_dict(), "notes": notes(self.config.providers),
                "elapsed_s": self.elapsed_s,
                "results": [r.to_dict() for r in self.results], "memory": mem}

    # ---- tables ----------------------------------------------------------

    def _peer_columns(self, loss, shape):
        return [p for p in PEERS if p in self.config.providers
                and any(r.provider == p and r.median_s is not None and r.loss == loss
                        and tuple(r.shape) == tuple(shape) for r in self.results)]

    def table_rows(self, loss, shape):
        """(header, rows) of one loss and shape; cells are strings."""
        peers = self._peer_columns(loss, shape)
        alloc = "fastloss_alloc" in self.config.providers
        header = ["mode", "threads", "fastloss", "floor", "/floor"]
        if alloc:
            header.append("out=None")
        header += [f"{p} (speed-up)" for p in peers]
        rows = []
        floor = self.time(loss, shape, None, None, "floor")
        for mode in self.config.modes:
            for n in self.config.threads:
                t = self.time(loss, shape, mode, n, "fastloss")
                if t is None:
                    continue
                row = [mode, str(n), format_time(t), format_time(floor),
                       f"{t / floor:.2f}x" if floor else "-"]
                if alloc:
                    ta = self.time(loss, shape, mode, n, "fastloss_alloc")
                    row.append(format_time(ta) if ta else "-")
                for p in peers:
                    tp = self.time(loss, shape, mode, n, p)
                    row.append(f"{format_time(tp)} ({_ratio(tp / t)})" if tp else "-")
                rows.append(row)
        return header, rows

    def title(self, loss, shape, markdown=False):
        """What the table is of, and the floor with its bandwidth."""
        floor = self.time(loss, shape, None, None, "floor")
        n = math.prod(shape)
        traffic = (2 if loss == "cross_entropy" else 3) * 4 * n  # bytes read + written
        bw = f", {traffic / floor / 1e9:.1f} GB/s" if floor else ""
        q = "`" if markdown else ""
        text = (f"float32, {n:,} elements; floor = {q}{_SPEC[loss][4]}{q}: "
                f"{format_time(floor)}{bw}")
        return text[0].upper() + text[1:] + "." if markdown else (
            f"{loss} {shape_label(shape)}: {text}")

    def memory_line(self, loss, shape):
        probes = self.memory.get((loss, tuple(shape)))
        if not probes:
            return None
        grad = 4 * math.prod(shape)
        parts = [f"{label} {format_bytes(b)}" for label, b in probes.items()]
        return (f"memory allocated by one call (tracemalloc peak; the gradient is "
                f"{format_bytes(grad)}): " + ", ".join(parts)
                + "; torch and jax allocate outside tracemalloc's view")

    def format_text(self, loss, shape):
        header, rows = self.table_rows(loss, shape)
        widths = [max(len(c) for c in col) for col in zip(header, *rows)]

        def line(cells):  # mode and threads left-aligned, numbers right-aligned
            return "  ".join(c.rjust(w) if i > 1 else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths)))

        out = [self.title(loss, shape), line(header), line(["-" * w for w in widths])]
        out += [line(row) for row in rows]
        mem = self.memory_line(loss, shape)
        if mem:
            out.append(mem)
        return "\n".join(out)

    def format_markdown(self, loss, shape, level=3):
        header, rows = self.table_rows(loss, shape)
        out = [f"{'#' * level} {loss} {shape_label(shape)}", "",
               self.title(loss, shape, markdown=True), "",
               "| " + " | ".join(header) + " |",
               "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
        mem = self.memory_line(loss, shape)
        if mem:
            out += ["", mem[0].upper() + mem[1:] + "."]
        return "\n".join(out)

    def cases(self):
        """(loss, shape) pairs with results, in run order."""
        return list(dict.fromkeys((r.loss, tuple(r.shape)) for r in self.results))


def _ratio(x):
    return f"{x:.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 1 else f"{x:.2f}x"


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


class Progress:
    """'[3/40] cross_entropy 4096x1000 fused torch 2t' on stderr; overwritten in
    place on a terminal, one line each otherwise."""

    def __init__(self, total, file=None, enabled=True):
        self.total, self.file, self.enabled = total, file or sys.stderr, enabled
        self.tty = enabled and hasattr(self.file, "isatty") and self.file.isatty()
        self.i, self._width = 0, 0

    def step(self, text):
        if not self.enabled:
            return
        self.i += 1
        msg = f"[{self.i}/{self.total}] {text}"
        if self.tty:
            pad = max(0, self._width - len(msg))
            self.file.write("\r" + msg + " " * pad)
            self._width = len(msg)
        else:
            self.file.write(msg + "\n")
        self.file.flush()

    def clear(self):
        if self.tty and self._width:
            self.file.write("\r" + " " * self._width + "\r")
            self.file.flush()
            self._width = 0


def run(config, progress=True, progress_file=None, on_case_done=None, command=None):
    """Run `config`; returns a Report. `on_case_done(report, loss, shape)` is
    called after each loss and shape (to print its table as soon as it is ready)."""
    steps = plan(config)
    n_mem = sum(len(config.shapes[loss]) for loss in config.losses) if config.memory else 0
    prog = Progress(len(steps) + n_mem, progress_file, progress)
    env = environment(config.providers)
    report = Report(config, env, command=command)
    started = time.perf_counter()
    workload = None
    for k, step in enumerate(steps):
        if workload is None or (workload.loss, workload.shape) != (step.loss, step.shape):
            workload = None  # free the previous arrays first
            workload = Workload(step.loss, step.shape, config.seed)
        prog.step(step.label())
        result = Result(step.loss, step.shape, step.mode, step.threads, step.provider)
        try:
            runner = make_runner(step.provider, workload, step.mode or "fused",
                                 step.threads or config.threads[0])
            time.sleep(PAUSE_BETWEEN_PROVIDERS_S)
            with runner.threads():
                timing = measure(runner.fn, config.repeats, config.min_time)
            result.median_s, result.samples_s, result.number = (
                timing.median_s, timing.samples_s, timing.number)
        except Unavailable as exc:
            result.error = str(exc)
        except Exception as exc:  # a peer failing must not end the run
            result.error = f"{type(exc).__name__}: {exc}"
            prog.clear()
            print(f"warning: {step.label()} failed: {result.error}", file=prog.file)
        runner = None
        report.add(result)
        last = k + 1 == len(steps) or (steps[k + 1].loss, steps[k + 1].shape) != (step.loss,
                                                                                    step.shape)
        if last:
            if config.memory:
                prog.step(f"{step.loss} {shape_label(step.shape)} memory")
                report.memory[(step.loss, tuple(step.shape))] = _memory(workload, config)
            prog.clear()
            if on_case_done is not None:
                on_case_done(report, step.loss, step.shape)
    prog.clear()
    report.elapsed_s = time.perf_counter() - started
    return report


def _memory(w, config):
    probes = {}
    with fastloss.threads(config.threads[-1]):
        for label, provider, mode in MEMORY_PROBES:
            if provider not in config.providers:
                continue
            try:
                probes[label] = traced_peak(make_runner(provider, w, mode, config.threads[-1]).fn)
            except Unavailable:
                continue
    return probes
