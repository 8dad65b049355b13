"""Negative log-likelihood over log-probabilities: class-index targets,
K-dimensional input.

Its C is a family of its own (src/nll/nll.c: one read of the input per
sample, the whole gradient written once) with a hand-written options
struct, ``fl_nll_options`` in src/fastloss.h; this declaration drives its
Python signature, argument checks and docs.
"""

from . import CLASS_WEIGHT, INT, MEAN_KEPT_WEIGHT, NLL, Loss, Option

NLL_LOSS = Loss(
    name="nll_loss",
    func="nll_loss",
    cls="NLLLoss",
    torch="torch.nn.functional.nll_loss",
    family=NLL,
    signature=("weight", "size_average", "ignore_index", "reduce", "reduction"),
    options=(
        Option("weight", CLASS_WEIGHT, None, c_type=None,
               type_doc="array_like, shape (C,), optional", doc="Finite class weights."),
        Option("ignore_index", INT, -100, c_type=None, type_doc="int, default -100",
               doc="Targets equal to it contribute nothing and are left out of the mean."),
    ),
    mean=MEAN_KEPT_WEIGHT,
    summary="Negative log-likelihood of class indices given log-probabilities "
            "(``torch.nn.functional.nll_loss``).",
    doc=r"""
    .. math::

        \ell_i = -w_{t_i}\, x_{i, t_i}

    with :math:`x` the log-probabilities (e.g. a ``log_softmax`` output) and
    :math:`w` the class weights (all 1 without ``weight``). Rows whose target
    equals ``ignore_index`` contribute 0 and are left out of the mean's
    denominator: ``'mean'`` is :math:`\sum_i \ell_i / \sum_{i\, kept} w_{t_i}`
    (the number of kept rows without weights; NaN when it is 0), as in
    PyTorch. The gradient is :math:`-w_{t_i}` times the upstream gradient at
    the target and 0 elsewhere.""",
    input_doc="""input : array_like, shape (N, C), (C,) or (N, C, d1, ..., dk)
        Log-probabilities, the classes on axis 1 as in PyTorch (K-dimensional
        input is read in place without transposing it). A C-contiguous
        float32 array is used as is; any other real dtype or memory layout is
        converted to one once (a copy).""",
    target_doc="""target : array_like
        Class indices of shape (N,), () or (N, d1, ..., dk) in ``[0, C)``, or
        ``ignore_index``, any integer dtype.""",
    returns_doc="""float or ndarray
        A Python float for 'mean' and 'sum' (accumulated in double); a float32
        array of shape (N,) (or ``()`` for unbatched input, or (N, d1, ..., dk))
        for 'none'.

    Raises
    ------
    ValueError
        Wrong shapes, an unknown reduction, or a target outside ``[0, C)`` that
        is not ``ignore_index`` (the message names the index and the value).
    TypeError
        Non-numeric input, or a target that is not integer.""",
)

LOSSES = (NLL_LOSS,)
