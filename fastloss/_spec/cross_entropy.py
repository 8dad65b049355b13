"""Softmax cross-entropy: class-index and probability targets, K-dimensional input.

Its C is a family of its own (src/cross_entropy/: one file per strategy)
with a hand-written options struct, ``fl_ce_options`` in src/fastloss.h;
this declaration drives its Python signature, argument checks and docs.
"""

from . import (
               BOOL,
               BUFFER,
               CLASS_WEIGHT,
               CROSS_ENTROPY,
               FLOAT,
               INT,
               KEYWORD_ONLY,
               MEAN_KEPT_WEIGHT,
               Loss,
               Option,
)

CROSS_ENTROPY_LOSS = Loss(
    name="cross_entropy",
    func="cross_entropy",
    cls="CrossEntropyLoss",
    torch="torch.nn.functional.cross_entropy",
    family=CROSS_ENTROPY,
    signature=("weight", "size_average", "ignore_index", "reduce", "reduction",
               "label_smoothing", KEYWORD_ONLY, "z_loss", "lse_out", "return_correct"),
    options=(
        Option("weight", CLASS_WEIGHT, None, c_type=None,
               type_doc="array_like, shape (C,), optional", doc="Finite class weights."),
        Option("ignore_index", INT, -100, c_type=None, type_doc="int, default -100",
               doc="Targets equal to it contribute nothing and are left out of the mean."),
        Option("label_smoothing", FLOAT, 0.0, low=0.0, high=1.0, c_type=None,
               type_doc="float in [0, 1], default 0.0",
               doc="PyTorch's label smoothing (with class weights inside the sum)."),
        Option("z_loss", FLOAT, 0.0, low=0.0, c_type=None,
               type_doc="float >= 0, keyword-only, default 0.0",
               doc="Adds ``z_loss * lse**2`` per kept row (not weighted), as in PaLM and "
                   "Liger-Kernel; its gradient comes from the same pass."),
        Option("lse_out", BUFFER, None, per_call=True, c_type=None,
               type_doc="float32 ndarray of shape (N,) (``()`` unbatched), keyword-only, optional",
               doc="Filled with each row's log-sum-exp (NaN for ignored rows), at no extra cost."),
        Option("return_correct", BOOL, False, per_call=True, c_type=None,
               type_doc="bool, keyword-only, default False",
               doc="Also return the number of rows whose ``argmax`` (first maximum, as "
                   "``torch.argmax``) equals the target, computed in the same pass; rows "
                   "holding NaN never count."),
    ),
    mean=MEAN_KEPT_WEIGHT,
    summary="Softmax cross-entropy between logits and class indices "
            "(``torch.nn.functional.cross_entropy``).",
    doc=r"""
    .. math::

        \mathrm{lse}_i = m_i + \log \sum_j e^{x_{ij} - m_i}, \quad m_i = \max_j x_{ij}

        \ell_i = (1 - \varepsilon)\, w_{t_i} (\mathrm{lse}_i - x_{i,t_i})
               + \frac{\varepsilon}{C} \sum_c w_c (\mathrm{lse}_i - x_{ic})
               + z\, \mathrm{lse}_i^2

    with :math:`w` the class weights (all 1 without ``weight``),
    :math:`\varepsilon` the label smoothing and :math:`z` the z-loss (PaLM). This
    is PyTorch's formula, weights inside the smoothing sum included. Rows whose
    target equals ``ignore_index`` contribute 0 and are left out of the mean's
    denominator: ``'mean'`` is :math:`\sum_i \ell_i / \sum_{i\, kept} w_{t_i}`
    (the number of kept rows without weights; NaN when it is 0).""",
    input_doc="""input : array_like, shape (N, C), (C,) or (N, C, d1, ..., dk)
        Logits, the classes on axis 1 as in PyTorch (K-dimensional input, e.g.
        segmentation, is computed in place without transposing it). A
        C-contiguous float32 array is used as is; any other real dtype or
        memory layout is converted to one once (a copy).""",
    target_doc=r"""target : array_like
        Class indices of shape (N,), () or (N, d1, ..., dk) in ``[0, C)``, or
        ``ignore_index``, any integer dtype; or probabilities ("soft" targets):
        floats of the input's shape. With probabilities the per-sample loss is
        :math:`-\sum_c w_c y'_c \log p_c (+ z\, \mathrm{lse}^2)` with
        :math:`y' = (1 - \varepsilon) y + \varepsilon / C`, ``'mean'`` divides
        by the number of samples, and ``ignore_index`` must stay -100, as in
        PyTorch.""",
    returns_doc="""float or ndarray
        A Python float for 'mean' and 'sum' (accumulated in double); a float32
        array of shape (N,) (or ``()`` for unbatched input) for 'none'. With
        ``return_correct``, a tuple ``(loss, num_correct)``.

    Raises
    ------
    ValueError
        Wrong shapes, an unknown reduction, or a target outside ``[0, C)`` that
        is not ``ignore_index`` (the message names the row and the value).
    TypeError
        Non-numeric input, or a target that is not integer.""",
)

LOSSES = (CROSS_ENTROPY_LOSS,)
