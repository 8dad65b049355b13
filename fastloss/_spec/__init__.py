"""One declaration per loss: the single source of truth of fastloss.

Each loss is one :class:`Loss` in its family's module (``cross_entropy.py``,
``binary.py``, ``regression.py``, ``nll.py``): its names (C, Python function, class,
PyTorch), its array arguments, its options with their types, defaults and
valid ranges, PyTorch's parameter order, its reduction and the denominator
of ``'mean'``, where its C closed forms live, and its documentation.

``tools/codegen.py`` turns :data:`LOSSES` into everything that must agree
with it (run by ``setup.py`` before every build, and checked by the tests):

* ``src/generated/fl_losses.h``: the C options struct of each loss, the
  X-macro list of the elementwise losses (enum, dispatch table, entry
  points) and their prototypes;
* ``src/generated/elementwise_kernels.c``: each elementwise loss's block
  kernel and entry point, from the one template ``src/elementwise/template.c``;
* ``fastloss/_binding.pxi``: the Cython declarations and one binding per
  loss (included by ``fastloss/_core.pyx``);
* ``fastloss/_api.py``: the public functions and classes, with PyTorch's
  signatures, argument handling and numpydoc docstrings.

The test registry (``tests/_support/registry.py``) reads :data:`LOSSES` at run
time; a loss's test data is its row in ``tests/_support/loss_data.py``.

This package imports nothing from fastloss (the build loads it by path,
before the extension exists), only the standard library.
"""

from dataclasses import dataclass, field
from typing import Optional

# Option kinds.
FLOAT = "float"             # a real scalar, rounded to float32, finite, in [low, high]
INT = "int"                 # an int64 scalar (ignore_index)
BOOL = "bool"               # True or False (return_correct)
WEIGHT = "weight"           # finite float array broadcastable to the input (period P in C)
CLASS_WEIGHT = "class_weight"   # finite float array of shape (C,)
BUFFER = "buffer"           # a caller's float32 output of the per-sample shape (lse_out)

# Families: how the kernels walk the data.
ELEMENTWISE = "elementwise"     # one closed form per element (src/elementwise/)
CROSS_ENTROPY = "cross_entropy"  # softmax over classes, several strategies (src/cross_entropy/)
NLL = "nll"                     # one log-probability read per sample (src/nll/)
ROWS = "rows"                   # one loss per row of (N, C), one pass per row (src/rows/)

# The denominator of reduction='mean'.
MEAN_ELEMENTS = "elements"          # the number of elements, weights or not
MEAN_WEIGHT_SUM = "weight_sum"      # the sum of the broadcast weight (elements without one)
MEAN_KEPT_WEIGHT = "kept_target_weight"   # cross-entropy, NLL: sum of w[t] over kept targets
MEAN_ROWS = "rows"                  # the number of rows (per-sample losses), weights or not

# Parameters every loss may have, known to the generator (not options).
REDUCTION = "reduction"
LEGACY = ("size_average", "reduce")
KEYWORD_ONLY = "*"


@dataclass(frozen=True)
class Option:
    """One option of a loss.

    ``low``/``high`` bound a FLOAT (inclusive; ``positive`` makes ``low = 0``
    exclusive). ``per_call`` options are arguments of the call (the
    function, ``forward`` and ``loss_and_grad``), not of the class
    constructor. ``c_type`` is the field's type in the loss's C options
    struct (None: the option never reaches C as a field).
    """

    name: str
    kind: str
    default: object = None
    low: Optional[float] = None
    high: Optional[float] = None
    positive: bool = False
    per_call: bool = False
    c_type: Optional[str] = "float"
    type_doc: str = ""
    doc: str = ""


@dataclass(frozen=True)
class Loss:
    """One loss: everything generated from it, and the tests, read this.

    name       C and test name: ``fl_<name>_f32``, ``fl_<name>_options``.
    func, cls  the public function and class (PyTorch's names).
    torch      the PyTorch (or torchvision) function it matches, dotted.
    family     ELEMENTWISE, CROSS_ENTROPY, NLL or ROWS.
    inputs     the array arguments' names, differentiable input first.
    signature  PyTorch's parameter order after the inputs: option names,
               'reduction', the legacy 'size_average'/'reduce', and '*'
               where the keyword-only (fastloss-only) options start.
    mean       the denominator of 'mean' (MEAN_*).
    c_header   (elementwise) the header with its closed forms, under src/.
    aux        (elementwise) a WEIGHT option that the closed forms read per
               element (BCE's pos_weight), rather than a plain multiplier.
    weight     (elementwise) the WEIGHT option multiplying loss and gradient.
    c_setup    (elementwise) its closed forms define fl_<name>_k and
               fl_<name>_setup: constants derived from the options once per
               block (src/elementwise/elementwise.h).
    c_modes    (elementwise) how many variants of the formula the options
               select (1..4); each gets its own vectorised loop.
    batchmean  (elementwise) it also takes reduction='batchmean' (kl_div's):
               the sum divided by the input's first dimension (by 1 for a 0-d
               input), computed as 'sum' in C and divided in the Python layer.
    ranges     (elementwise) ((array name, low, high), ...): the closed
               interval each named input array must lie in (BCE's
               probabilities), as PyTorch requires; the Python layer checks
               it (NaN passes, and gives NaN) and raises ValueError naming the
               array and the first element outside; the binding's fast path
               checks it in one pass and leaves such a call to that layer.
    """

    name: str
    func: str
    cls: str
    torch: str
    family: str
    signature: tuple[str, ...]
    options: tuple[Option, ...] = ()
    inputs: tuple[str, ...] = ("input", "target")
    default_reduction: str = "mean"
    mean: str = MEAN_ELEMENTS
    c_header: str = ""
    aux: Optional[str] = None
    weight: Optional[str] = None
    c_setup: bool = False
    c_modes: int = 1
    ranges: tuple[tuple[str, float, float], ...] = ()
    batchmean: bool = False
    summary: str = ""
    doc: str = ""
    input_doc: str = ""
    target_doc: str = ""
    returns_doc: str = ""
    extra: dict = field(default_factory=dict)

    def option(self, name):
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(f"{self.name} has no option {name!r}")

    @property
    def has_legacy_args(self):
        return "size_average" in self.signature

    @property
    def scalar_options(self):
        """FLOAT/INT/BOOL options, in declaration order."""
        return tuple(o for o in self.options if o.kind in (FLOAT, INT, BOOL))

    @property
    def c_options(self):
        """The fields of the C options struct, in declaration order."""
        return tuple(o for o in self.options if o.c_type is not None)

    def check(self):
        """Raise ValueError when the declaration contradicts itself."""
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate options")
        for p in self.signature:
            if p not in names and p not in (REDUCTION, KEYWORD_ONLY) + LEGACY:
                raise ValueError(f"{self.name}: signature names {p!r}, not an option")
        for o in self.options:
            if not o.per_call and o.name not in self.signature:
                raise ValueError(f"{self.name}: option {o.name!r} missing from signature")
        if REDUCTION not in self.signature:
            raise ValueError(f"{self.name}: no reduction in the signature")
        if self.family == ELEMENTWISE:
            for role in (self.aux, self.weight):
                if role is not None and self.option(role).kind != WEIGHT:
                    raise ValueError(f"{self.name}: {role!r} must be a WEIGHT option")
            if self.mean == MEAN_WEIGHT_SUM and self.weight is None:
                raise ValueError(f"{self.name}: a weight-sum mean needs a weight")
            if not self.c_header:
                raise ValueError(f"{self.name}: no c_header")
            if not 1 <= self.c_modes <= 4:
                raise ValueError(f"{self.name}: c_modes must be 1..4")
            for array, low, high in self.ranges:
                if array not in self.inputs or not low <= high:
                    raise ValueError(f"{self.name}: bad range {(array, low, high)!r}")


def _collect():
    from . import binary, cross_entropy, nll, regression, rows

    losses = cross_entropy.LOSSES + binary.LOSSES + regression.LOSSES + nll.LOSSES
    losses += rows.LOSSES
    for loss in losses:
        loss.check()
    return losses


#: Every loss, in the order of the public API (and of the C enum).
LOSSES = _collect()
#: name -> Loss
BY_NAME = {loss.name: loss for loss in LOSSES}
