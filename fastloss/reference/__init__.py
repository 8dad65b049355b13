"""Plain float64 NumPy reference implementations of the fastloss losses.

These functions are the executable documentation of the maths that the C
kernels implement.  They favour clarity over speed: every input is converted
to float64 once, and every formula is written the way it appears in the
docstring.  The semantics follow ``torch.nn.functional`` (argument names,
defaults, ``ignore_index``, the denominator of ``'mean'``, label smoothing,
``pos_weight``, the weights of the regression losses;
``sigmoid_focal_loss`` follows ``torchvision.ops``), and the test-suite checks
them against PyTorch and against finite differences.

Each loss comes in two functions:

``<loss>(input, target, ..., reduction="mean")``
    The loss: a Python ``float`` for ``'mean'`` and ``'sum'``, a float64
    array of per-sample losses for ``'none'``.
``<loss>_grad(input, target, ..., reduction="mean", grad_output=1.0)``
    ``grad_output`` times the gradient of the loss with respect to
    ``input``: a float64 array of ``input``'s shape.  ``grad_output`` is a
    scalar for ``'mean'`` and ``'sum'``; for ``'none'`` it is an array of
    the per-sample-loss shape (a scalar is broadcast), so the result is the
    gradient of ``sum(grad_output * loss)``.

``sigmoid_focal_loss`` keeps torchvision's default ``reduction="none"``.
Options added after a function's first release (``weight`` of the
regression losses, ``z_loss``) are keyword-only.

Layout
------
One file per family of losses, each with the helpers only it uses:

============  ================================================================
softmax       ``cross_entropy`` (class-index targets)
nll           ``nll_loss`` (class-index targets, log-probability input)
rows          ``multilabel_soft_margin_loss``, ``multi_margin_loss`` (one loss per row)
pairwise      ``margin_ranking_loss``, ``gaussian_nll_loss`` (several float inputs,
              a gradient each)
embedding     ``cosine_embedding_loss``, ``triplet_margin_loss`` (several
              differentiable inputs: ``<loss>_grad`` returns a tuple)
binary        ``binary_cross_entropy_with_logits``, ``sigmoid_focal_loss``
regression    ``mse_loss``, ``l1_loss``, ``huber_loss``, ``smooth_l1_loss``
_common       argument conversion and checks, ``_reduce`` (the reductions),
              ``_grad_scale`` (``grad_output`` and the ``'mean'`` denominator)
_docs         the shared docstring sections (``loss_doc``, ``gradient_of``)
============  ================================================================

Adding a loss's reference is one function pair in its family's file, plus
its two names in that file's ``__all__`` (this package exports every
family's ``__all__``):

1. ``def <loss>(input, target, ..., reduction="mean")``: check the reduction
   (``_check_reduction``) and the options, compute the per-sample loss in
   float64, and return ``_reduce(loss, reduction, denominator)``.  Decorate
   it with ``@loss_doc`` and write ``{{elementwise_input}}``,
   ``{{reduction}}``, ``{{elementwise_returns}}`` (see ``_docs.FRAGMENTS``)
   where those standard sections go; write its formula and its ``'mean'``
   denominator in Notes.
2. ``def <loss>_grad(..., grad_output=1.0)``: the same arguments plus
   ``grad_output``; return ``_grad_scale(grad_output, reduction, shape,
   denominator) * local_gradient``.  Decorate it with
   ``@gradient_of(<loss>)``, which writes the summary, Parameters and
   Returns; its own docstring is the Notes with the derivative.

Notes
-----
Everything is computed in float64 with NumPy's own ``exp``/``log``; the
reference is not meant to be fast, only unambiguous.  Non-finite inputs
propagate the way the formulas make them propagate (a NaN logit gives a NaN
loss and NaN gradients for its row), which is also what PyTorch does.
"""

from . import binary, embedding, nll, pairwise, regression, rows, softmax
from ._common import REDUCTIONS as REDUCTIONS  # re-exported: the reduction names
from .binary import *  # noqa: F403  (each family's __all__ is its public names)
from .embedding import *  # noqa: F403
from .nll import *  # noqa: F403
from .pairwise import *  # noqa: F403
from .regression import *  # noqa: F403
from .rows import *  # noqa: F403
from .softmax import *  # noqa: F403

__all__ = []
__all__ += softmax.__all__
__all__ += binary.__all__
__all__ += regression.__all__
__all__ += nll.__all__
__all__ += rows.__all__
__all__ += pairwise.__all__
__all__ += embedding.__all__
