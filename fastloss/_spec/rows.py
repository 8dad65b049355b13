"""The row losses: one loss value per row of an (N, C) input, a pass over
each row's C elements.

Their C is a family of its own (src/rows/rows.c: blocks of whole rows, the
row pass vectorised in 8 float lanes) with hand-written options structs in
src/rows/rows.h; these declarations drive their Python signatures,
argument checks and docs (fastloss/_api.py), and the runners are
fastloss/_run.py's ``multilabel_soft_margin_loss`` and ``multi_margin_loss``.
"""

from . import CLASS_WEIGHT, FLOAT, INT, MEAN_ROWS, ROWS, WEIGHT, Loss, Option

MULTILABEL_SOFT_MARGIN_LOSS = Loss(
    name="multilabel_soft_margin_loss",
    func="multilabel_soft_margin_loss",
    cls="MultiLabelSoftMarginLoss",
    torch="torch.nn.functional.multilabel_soft_margin_loss",
    family=ROWS,
    signature=("weight", "size_average", "reduce", "reduction"),
    options=(
        Option("weight", WEIGHT, None, c_type=None,
               type_doc="array_like, optional",
               doc="Finite weight broadcastable to the input's shape (per class: shape "
                   "(C,)), multiplying each element's loss before the sum over classes."),
    ),
    mean=MEAN_ROWS,
    summary="Multilabel soft margin loss: binary cross-entropy with logits averaged over "
            "the classes of each row (``torch.nn.functional.multilabel_soft_margin_loss``).",
    doc=r"""
    .. math::

        \ell_n = -\frac{1}{C} \sum_c w_{n,c} \left[ y_{n,c} \log \sigma(x_{n,c})
                 + (1 - y_{n,c}) \log \sigma(-x_{n,c}) \right]

    computed as :math:`(x > 0 ? x (1 - y) : -x y) + \log(1 + e^{-|x|})` (no
    overflow for any finite score). Each row's sum is divided by the number
    of classes C, not by the weights' sum; ``'mean'`` divides the rows' sum
    by their number. The gradient is
    :math:`w_{n,c} (\sigma(x_{n,c}) - y_{n,c}) / C` times the upstream
    gradient (the target gets none).""",
    input_doc="""input : array_like, shape (N, C), (C,) or (d1, ..., dk, C)
        Scores (logits), the classes on the last axis; the leading axes are
        the rows. A C-contiguous float32 array is used as is; any other real
        dtype or memory layout is converted to one once (a copy).""",
    target_doc="""target : array_like
        Targets of the input's shape, usually 0 or 1.""",
    returns_doc="""float or ndarray
        A Python float for 'mean' and 'sum' (accumulated in double); a float32
        array of the input's shape without its last axis for 'none'.

    Raises
    ------
    ValueError
        Wrong shapes (a 0-d input, a target of another shape, a weight that
        does not broadcast to the input), a weight with NaN or inf, or an
        unknown reduction.
    TypeError
        Non-numeric input, target or weight.""",
)

MULTI_MARGIN_LOSS = Loss(
    name="multi_margin_loss",
    func="multi_margin_loss",
    cls="MultiMarginLoss",
    torch="torch.nn.functional.multi_margin_loss",
    family=ROWS,
    signature=("p", "margin", "weight", "size_average", "reduce", "reduction"),
    options=(
        Option("p", INT, 1, c_type=None, type_doc="int, default 1",
               doc="The power of each hinge term: 1 or 2."),
        Option("margin", FLOAT, 1.0, c_type=None, type_doc="float, default 1.0",
               doc="The margin by which the target's score should exceed the others."),
        Option("weight", CLASS_WEIGHT, None, c_type=None,
               type_doc="array_like, shape (C,), optional",
               doc="Finite class weights; row n is weighted by that of its target."),
    ),
    mean=MEAN_ROWS,
    summary="Multi-class hinge (margin) loss of class indices "
            "(``torch.nn.functional.multi_margin_loss``).",
    doc=r"""
    .. math::

        \ell_n = \frac{w_{y_n}}{C} \sum_{i \ne y_n}
                 \max(0, \mathrm{margin} - x_{n,y_n} + x_{n,i})^p

    with :math:`p` 1 or 2 and the class weight outside the power (what
    PyTorch computes; its documentation writes :math:`(w_y z)^p`). ``'mean'``
    divides the rows' sum by their number, not by the weights' sum. The
    gradient of a term is :math:`w_{y_n} p z^{p-1} / C` at class :math:`i`
    and its negative at the target; a term at exactly 0 (a tie) has none.
    NaN in a row gives a NaN loss and gradient (PyTorch drops NaN terms).""",
    input_doc="""input : array_like, shape (N, C), (C,) or ()
        Scores, the classes on the last axis (a 0-d input is one class). A
        C-contiguous float32 array is used as is; any other real dtype or
        memory layout is converted to one once (a copy).""",
    target_doc="""target : array_like
        Class indices in ``[0, C)``, any integer dtype: shape (N,) for (N, C)
        input, () or (1,) for a single row.""",
    returns_doc="""float or ndarray
        A Python float for 'mean' and 'sum' (accumulated in double); a float32
        array of the target's shape for 'none'.

    Raises
    ------
    ValueError
        Wrong shapes, no classes (C = 0), p other than 1 or 2, a non-finite
        margin, an unknown reduction, or a target outside ``[0, C)`` (the
        message names the index and the value).
    TypeError
        Non-numeric input, or a target that is not integer.""",
)

LOSSES = (MULTILABEL_SOFT_MARGIN_LOSS, MULTI_MARGIN_LOSS)
