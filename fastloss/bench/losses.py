"""The losses the benchmarks know, one :class:`LossSpec` entry each, and their shapes.

A new loss is one entry in ``SPECS``: every provider (fastloss, the floor, the
reference, torch, torch.compile, JAX, scikit-learn), the plan and the tables
read what they need from it. Also here: the names and shapes as they are
written on the command line and in the tables, and :class:`Workload`, the
arrays of one (loss, shape).
"""

from dataclasses import dataclass

import numpy as np


def _jax_cross_entropy(jax, jnp):
    def f(x, t):
        lse = jax.nn.logsumexp(x, axis=1)
        picked = jnp.take_along_axis(x, t[:, None], axis=1)[:, 0]
        return jnp.mean(lse - picked)
    return f


def _jax_bce_with_logits(jax, jnp):
    def f(x, y):
        return jnp.mean(jnp.maximum(x, 0) - x * y + jnp.log1p(jnp.exp(-jnp.abs(x))))
    return f


def _jax_mse(jax, jnp):
    def f(x, y):
        return jnp.mean(jnp.square(x - y))
    return f


@dataclass(frozen=True)
class LossSpec:
    """What every provider needs to know about one loss."""

    name: str             # canonical name, as in the tables and the JSON
    aliases: tuple        # other names accepted by --losses
    fastloss_class: str   # the fastloss loss class, built with its defaults
    reference: tuple      # (loss, gradient) function names in fastloss.reference
    torch_function: str   # the torch.nn.functional function (eager and compiled)
    sklearn_class: str    # the sklearn._loss.loss class
    jax_loss: object      # jax_loss(jax, jnp) -> f(x, t), the mean loss in jax.numpy
    target: str           # how targets are drawn: 'class' (int64 in [0, C)),
                          # 'probability' (uniform [0, 1)) or 'normal'
    floor: str            # 'copy': np.copyto(grad, x); 'add': np.add(x, t, out=grad)
    ndim: int             # 2: shapes are (N, C); 1: a number of elements
    full_shapes: tuple    # the shapes of a full run (BENCHMARKS.md)
    quick_shapes: tuple   # the shapes of --quick


SPECS = {spec.name: spec for spec in (
    LossSpec("cross_entropy", ("ce",), "CrossEntropyLoss",
             ("cross_entropy", "cross_entropy_grad"), "cross_entropy", "HalfMultinomialLoss",
             _jax_cross_entropy, "class", "copy", 2,
             ((64, 10), (4096, 1000), (65536, 10), (2048, 32768), (16, 131072)),
             ((64, 10), (512, 1000))),
    LossSpec("bce_with_logits", ("bce", "binary_cross_entropy_with_logits"),
             "BCEWithLogitsLoss",
             ("binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_grad"),
             "binary_cross_entropy_with_logits", "HalfBinomialLoss", _jax_bce_with_logits,
             "probability", "add", 1, ((2**10,), (2**20,), (2**24,)), ((2**10,), (2**16,))),
    LossSpec("mse", ("mse_loss",), "MSELoss", ("mse_loss", "mse_loss_grad"), "mse_loss",
             "HalfSquaredError", _jax_mse, "normal", "add", 1,
             ((2**10,), (2**20,), (2**24,)), ((2**10,), (2**16,))),
)}

LOSSES = tuple(SPECS)
FULL_SHAPES = {name: list(spec.full_shapes) for name, spec in SPECS.items()}
QUICK_SHAPES = {name: list(spec.quick_shapes) for name, spec in SPECS.items()}
_ALIASES = {alias: spec.name for spec in SPECS.values() for alias in (spec.name,) + spec.aliases}

# How each floor is written in the tables, and the bytes it moves per element.
FLOOR_LABELS = {"copy": "np.copyto(grad, logits)", "add": "np.add(input, target, out=grad)"}
FLOOR_BYTES_PER_ELEMENT = {"copy": 2 * 4, "add": 3 * 4}   # float32 read + written


def canonical_loss(name):
    """'ce' -> 'cross_entropy'; ValueError naming the choices for an unknown loss."""
    try:
        return _ALIASES[name.strip().lower()]
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
    return {loss: [s for s in shapes if len(s) == SPECS[loss].ndim] for loss in losses}


class Workload:
    """The arrays of one (loss, shape): input, target, a gradient buffer, and
    the peers' versions of them (tensors, device arrays), made on first use."""

    def __init__(self, loss, shape, seed=0):
        self.loss, self.shape = loss, tuple(shape)
        self.spec = SPECS[loss]
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal(self.shape, dtype=np.float32)
        if self.spec.target == "class":
            self.target = rng.integers(0, self.shape[1], self.shape[0])  # int64
        elif self.spec.target == "probability":
            self.target = rng.random(self.shape, dtype=np.float32)
        else:
            self.target = rng.standard_normal(self.shape, dtype=np.float32)
        self.buf = np.empty_like(self.x)
        self._views = {}

    def view(self, key, make):
        """``make()``, made once per workload and kept under ``key``."""
        if key not in self._views:
            self._views[key] = make()
        return self._views[key]
