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
    fastloss_class: str   # the fastloss loss class, built with `options`
    reference: tuple      # (loss, gradient) function names in fastloss.reference
    torch_function: str   # the torch.nn.functional function (eager and compiled)
    sklearn_class: object  # the sklearn._loss.loss class, or None (no such loss there)
    jax_loss: object      # jax_loss(jax, jnp) -> f(x, t), the mean loss in jax.numpy, or None
    target: str           # how the target is drawn (a kind of ARRAY_KINDS)
    floor: str            # 'copy': np.copyto(grad, x) per differentiable input;
                          # 'add': np.add(x, t, out=grad)
    ndim: int             # 2: shapes are (N, C) (or (N, D)); 1: a number of elements
    full_shapes: tuple    # the shapes of a full run (BENCHMARKS.md)
    quick_shapes: tuple   # the shapes of --quick
    input: str = "normal"   # how the differentiable input is drawn (ARRAY_KINDS)
    call: tuple = ()      # the call's arrays in order, (kind, differentiable) pairs;
                          # () means ((input, True), (target, False))
    options: tuple = ()   # (name, value) pairs given to the fastloss class, the torch
                          # function and the reference (PyTorch's defaults otherwise)
    headline: bool = True  # in a run without --losses (the others: --losses all)

    @property
    def arrays(self):
        """The call's arrays, (kind, differentiable) pairs in argument order."""
        return self.call or ((self.input, True), (self.target, False))

    @property
    def n_grads(self):
        return sum(1 for _, diff in self.arrays if diff)


# How an array of each kind is drawn, for a loss whose input has `shape`
# (float32, except class indices).
ARRAY_KINDS = ("normal", "probability", "log_probability", "positive", "count", "sign",
               "sign_rows", "binary", "class")


def _draw(rng, kind, shape):
    if kind == "normal":
        return rng.standard_normal(shape, dtype=np.float32)
    if kind == "probability":   # in [0, 1): targets; (0, 1) away from the ends: inputs
        return rng.random(shape, dtype=np.float32)
    if kind == "log_probability":   # log-softmax rows for (N, C), log of (0, 1] otherwise
        x = rng.standard_normal(shape).astype(np.float64)
        if len(shape) == 2:
            x -= np.log(np.exp(x).sum(axis=1, keepdims=True))
            return x.astype(np.float32)
        return np.log(rng.uniform(0.01, 1.0, shape)).astype(np.float32)
    if kind == "positive":      # variances
        return rng.uniform(0.1, 2.0, shape).astype(np.float32)
    if kind == "count":         # Poisson counts, as floats
        return rng.poisson(2.0, shape).astype(np.float32)
    if kind == "sign":          # -1 or +1 per element
        return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)
    if kind == "sign_rows":     # -1 or +1 per row of (N, D)
        return np.where(rng.random(shape[0]) < 0.5, -1.0, 1.0).astype(np.float32)
    if kind == "binary":        # 0 or 1 per element
        return (rng.random(shape) < 0.5).astype(np.float32)
    if kind == "class":         # int64 in [0, C) per row
        return rng.integers(0, shape[1], shape[0])
    raise ValueError(f"unknown array kind {kind!r}")


def _spec(name, cls, reference, torch_function, call, floor, ndim, full, quick, **kw):
    """A loss of the 'more losses' runs: no scikit-learn or JAX form, not a headline."""
    return LossSpec(name, kw.pop("aliases", ()), cls, reference, torch_function, None, None,
                    next(kind for kind, diff in call if not diff) if any(
                        not diff for _, diff in call) else "normal",
                    floor, ndim, full, quick, input=call[0][0], call=call, headline=False,
                    **kw)


_ELEMENTS, _ELEMENTS_QUICK = ((2**22,),), ((2**10,),)
_ROWS, _ROWS_QUICK = ((4096, 1000),), ((64, 10),)
_EMBEDDINGS, _EMBEDDINGS_QUICK = ((16384, 256),), ((64, 16),)

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
    # The losses after the first seven: one large shape each, fastloss against
    # torch and torch.compile (BENCHMARKS.md's "More losses").
    _spec("nll_loss", "NLLLoss", ("nll_loss", "nll_loss_grad"), "nll_loss",
          (("log_probability", True), ("class", False)), "copy", 2, _ROWS, _ROWS_QUICK,
          aliases=("nll",)),
    _spec("binary_cross_entropy", "BCELoss",
          ("binary_cross_entropy", "binary_cross_entropy_grad"), "binary_cross_entropy",
          (("probability", True), ("probability", False)), "add", 1, _ELEMENTS,
          _ELEMENTS_QUICK, aliases=("bce_prob",)),
    _spec("kl_div", "KLDivLoss", ("kl_div", "kl_div_grad"), "kl_div",
          (("log_probability", True), ("probability", False)), "add", 1, _ELEMENTS,
          _ELEMENTS_QUICK, options=(("reduction", "batchmean"),)),
    _spec("poisson_nll_loss", "PoissonNLLLoss", ("poisson_nll_loss", "poisson_nll_loss_grad"),
          "poisson_nll_loss", (("normal", True), ("count", False)), "add", 1, _ELEMENTS,
          _ELEMENTS_QUICK, aliases=("poisson_nll",)),
    _spec("soft_margin_loss", "SoftMarginLoss", ("soft_margin_loss", "soft_margin_loss_grad"),
          "soft_margin_loss", (("normal", True), ("sign", False)), "add", 1, _ELEMENTS,
          _ELEMENTS_QUICK, aliases=("soft_margin",)),
    _spec("hinge_embedding_loss", "HingeEmbeddingLoss",
          ("hinge_embedding_loss", "hinge_embedding_loss_grad"), "hinge_embedding_loss",
          (("normal", True), ("sign", False)), "add", 1, _ELEMENTS, _ELEMENTS_QUICK,
          aliases=("hinge_embedding",)),
    _spec("multilabel_soft_margin_loss", "MultiLabelSoftMarginLoss",
          ("multilabel_soft_margin_loss", "multilabel_soft_margin_loss_grad"),
          "multilabel_soft_margin_loss", (("normal", True), ("binary", False)), "add", 2, _ROWS,
          _ROWS_QUICK, aliases=("multilabel_soft_margin",)),
    _spec("multi_margin_loss", "MultiMarginLoss", ("multi_margin_loss", "multi_margin_loss_grad"),
          "multi_margin_loss", (("normal", True), ("class", False)), "copy", 2, _ROWS,
          _ROWS_QUICK, aliases=("multi_margin",)),
    _spec("margin_ranking_loss", "MarginRankingLoss",
          ("margin_ranking_loss", "margin_ranking_loss_grad"), "margin_ranking_loss",
          (("normal", True), ("normal", True), ("sign", False)), "copy", 1, _ELEMENTS,
          _ELEMENTS_QUICK, aliases=("margin_ranking",)),
    _spec("gaussian_nll_loss", "GaussianNLLLoss", ("gaussian_nll_loss", "gaussian_nll_loss_grad"),
          "gaussian_nll_loss", (("normal", True), ("normal", False), ("positive", True)),
          "copy", 1, _ELEMENTS, _ELEMENTS_QUICK, aliases=("gaussian_nll",)),
    _spec("cosine_embedding_loss", "CosineEmbeddingLoss",
          ("cosine_embedding_loss", "cosine_embedding_loss_grad"), "cosine_embedding_loss",
          (("normal", True), ("normal", True), ("sign_rows", False)), "copy", 2, _EMBEDDINGS,
          _EMBEDDINGS_QUICK, aliases=("cosine_embedding",)),
    _spec("triplet_margin_loss", "TripletMarginLoss",
          ("triplet_margin_loss", "triplet_margin_loss_grad"), "triplet_margin_loss",
          (("normal", True), ("normal", True), ("normal", True)), "copy", 2, _EMBEDDINGS,
          _EMBEDDINGS_QUICK, aliases=("triplet_margin",)),
)}

LOSSES = tuple(SPECS)
#: The losses of a run without --losses (the others: --losses all, or by name).
DEFAULT_LOSSES = tuple(name for name, spec in SPECS.items() if spec.headline)
FULL_SHAPES = {name: list(spec.full_shapes) for name, spec in SPECS.items()}
QUICK_SHAPES = {name: list(spec.quick_shapes) for name, spec in SPECS.items()}
_ALIASES = {alias: spec.name for spec in SPECS.values() for alias in (spec.name,) + spec.aliases}

# How each floor is written in the tables, and the bytes it moves per element.
FLOOR_LABELS = {"copy": "np.copyto(grad, input)", "add": "np.add(input, target, out=grad)"}
FLOOR_BYTES_PER_ELEMENT = {"copy": 2 * 4, "add": 3 * 4}   # float32 read + written


def floor_label(loss):
    """The floor of `loss` as the tables write it."""
    spec = SPECS[loss]
    label = FLOOR_LABELS[spec.floor]
    return f"{spec.n_grads} x {label}" if spec.floor == "copy" and spec.n_grads > 1 else label


def floor_bytes_per_element(loss):
    """Bytes the floor of `loss` reads and writes per element of the input's shape."""
    spec = SPECS[loss]
    return FLOOR_BYTES_PER_ELEMENT[spec.floor] * (spec.n_grads if spec.floor == "copy" else 1)


def canonical_loss(name):
    """'ce' -> 'cross_entropy'; ValueError naming the choices for an unknown loss."""
    try:
        return _ALIASES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)} "
                         "(or ce, bce, or all)") from None


def canonical_losses(names):
    """The canonical names of a --losses list; 'all' stands for every loss."""
    out = []
    for name in names:
        out += list(LOSSES) if name.strip().lower() == "all" else [canonical_loss(name)]
    return tuple(dict.fromkeys(out))


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
        #: the call's arrays in argument order, and which of them are differentiable
        self.args = [_draw(rng, kind, self.shape) for kind, _ in self.spec.arrays]
        self.diff = [i for i, (_, d) in enumerate(self.spec.arrays) if d]
        #: one gradient buffer per differentiable array
        self.bufs = [np.empty_like(self.args[i]) for i in self.diff]
        self.x, self.buf = self.args[self.diff[0]], self.bufs[0]
        rest = [a for a, (_, d) in zip(self.args, self.spec.arrays) if not d]
        self.target = rest[0] if rest else None
        self.options = dict(self.spec.options)
        self._views = {}

    def view(self, key, make):
        """``make()``, made once per workload and kept under ``key``."""
        if key not in self._views:
            self._views[key] = make()
        return self._views[key]
