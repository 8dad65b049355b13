"""Binary losses: on logits BCE with logits, the sigmoid focal loss, the soft
margin loss; on probabilities BCE; the hinge embedding loss; and, against
probability targets like BCE, the KL divergence.

C closed forms: src/elementwise/binary.h.
"""

from . import BOOL, ELEMENTWISE, FLOAT, WEIGHT, Loss, Option

_WEIGHT = Option("weight", WEIGHT, None, c_type="fl_weight", type_doc="array_like, optional",
                 doc="Finite weights broadcastable to the input's shape.")

BCE_WITH_LOGITS = Loss(
    name="bce_with_logits",
    func="binary_cross_entropy_with_logits",
    cls="BCEWithLogitsLoss",
    torch="torch.nn.functional.binary_cross_entropy_with_logits",
    family=ELEMENTWISE,
    signature=("weight", "size_average", "reduce", "reduction", "pos_weight"),
    options=(
        _WEIGHT,
        Option("pos_weight", WEIGHT, None, c_type="fl_weight", type_doc="array_like, optional",
               doc="Finite weights of the positive term, broadcastable to the input's shape "
                   "(usually one per class along the last axis)."),
    ),
    weight="weight",
    aux="pos_weight",
    c_header="elementwise/binary.h",
    summary="Binary cross-entropy on logits "
            "(``torch.nn.functional.binary_cross_entropy_with_logits``).",
    doc=r"""
    .. math::

        \ell_i = w_i \bigl[ (1 - y_i) x_i + (1 + (p_i - 1) y_i)
                 \bigl(\log(1 + e^{-|x_i|}) + \max(-x_i, 0)\bigr) \bigr]

    with :math:`w` the ``weight`` and :math:`p` the ``pos_weight`` (1 when
    omitted), i.e. :math:`\max(x, 0) - x y + \log(1 + e^{-|x|})` without them;
    computed in log space so that nothing overflows for any finite logit.
    ``'mean'`` divides by the number of elements, weights or not (NaN for an
    empty input), as in PyTorch.""",
    input_doc="""input : array_like, any shape
        Logits; converted to C-contiguous float32 if it is not already.""",
    target_doc="""target : array_like, same shape as input
        Targets, usually in [0, 1] (other values are computed as the formula says).""",
)

SIGMOID_FOCAL = Loss(
    name="sigmoid_focal",
    func="sigmoid_focal_loss",
    cls="SigmoidFocalLoss",
    torch="torchvision.ops.sigmoid_focal_loss",
    family=ELEMENTWISE,
    inputs=("inputs", "targets"),
    signature=("alpha", "gamma", "reduction"),
    options=(
        Option("alpha", FLOAT, 0.25, type_doc="float, default 0.25",
               doc="Weight of the positive class; ``alpha < 0`` turns the weighting off."),
        Option("gamma", FLOAT, 2.0, low=0.0, type_doc="float >= 0, default 2.0",
               doc="The focusing exponent."),
    ),
    default_reduction="none",
    c_header="elementwise/binary.h",
    c_setup=True,
    summary="Sigmoid focal loss (``torchvision.ops.sigmoid_focal_loss``; Lin et al., 2017).",
    doc=r"""
    .. math::

        \ell_i = \alpha_t\, \mathrm{BCE}(x_i, y_i)\, (1 - p_t)^\gamma, \quad
        p_t = p y + (1 - p)(1 - y), \quad \alpha_t = \alpha y + (1 - \alpha)(1 - y)

    with :math:`p = \sigma(x)`; :math:`\alpha_t = 1` when ``alpha < 0``.
    ``'mean'`` divides by the number of elements. Note torchvision's default
    reduction is ``'none'``. :math:`1 - p_t` is formed from
    :math:`\sigma(x)` and :math:`\sigma(-x)` separately, so confident
    predictions do not lose it to cancellation.""",
    input_doc="""inputs : array_like, any shape
        Logits.""",
    target_doc=r"""targets : array_like, same shape
        Binary (or soft) targets. Targets outside [0, 1] follow the formula,
        as in torchvision: :math:`1 - p_t` may then be negative, and
        :math:`(1 - p_t)^\gamma` is ``torch.pow``'s (real for an integral
        ``gamma``, NaN otherwise).""",
)

SOFT_MARGIN = Loss(
    name="soft_margin",
    func="soft_margin_loss",
    cls="SoftMarginLoss",
    torch="torch.nn.functional.soft_margin_loss",
    family=ELEMENTWISE,
    signature=("size_average", "reduce", "reduction"),
    c_header="elementwise/binary.h",
    summary="Soft margin loss (``torch.nn.functional.soft_margin_loss``).",
    doc=r"""
    .. math::

        \ell_i = \log(1 + e^{-y_i x_i}) = \max(z_i, 0) + \log(1 + e^{-|z_i|}),
        \quad z_i = -y_i x_i

    computed in log space, so it is finite and exact for every finite
    :math:`z` (PyTorch's ``log(1 + exp(z))`` is ``inf`` past :math:`z \approx 88.7`,
    with a NaN gradient). ``'mean'`` divides by the number of elements (NaN
    for an empty input), as in PyTorch.""",
    input_doc="""input : array_like, any shape
        Scores; converted to C-contiguous float32 if it is not already.""",
    target_doc="""target : array_like, same shape as input
        Labels, usually -1 or 1 (other values are computed as the formula says).""",
)

BCE = Loss(
    name="bce",
    func="binary_cross_entropy",
    cls="BCELoss",
    torch="torch.nn.functional.binary_cross_entropy",
    family=ELEMENTWISE,
    signature=("weight", "size_average", "reduce", "reduction"),
    options=(_WEIGHT,),
    weight="weight",
    ranges=(("input", 0.0, 1.0), ("target", 0.0, 1.0)),
    c_header="elementwise/binary.h",
    summary="Binary cross-entropy on probabilities "
            "(``torch.nn.functional.binary_cross_entropy``).",
    doc=r"""
    .. math::

        \ell_i = -w_i \bigl[ y_i \max(\log x_i, -100)
                 + (1 - y_i) \max(\log(1 - x_i), -100) \bigr]

    with PyTorch's clamp of each log at -100, and PyTorch's gradient
    :math:`w_i (x_i - y_i) / \max(x_i (1 - x_i), 10^{-12})` (not the
    derivative of the clamped loss). ``'mean'`` divides by the number of
    elements, weights or not (NaN for an empty input). Input and target must
    lie in [0, 1], as PyTorch requires: anything else raises ValueError naming
    the first element outside (NaN is let through and gives NaN, where
    PyTorch raises). Prefer :func:`binary_cross_entropy_with_logits` on
    logits: it is exact where the probability rounds to 0 or 1.""",
    input_doc="""input : array_like, any shape
        Probabilities in [0, 1]; converted to C-contiguous float32 if it is not
        already.""",
    target_doc="""target : array_like, same shape as input
        Targets in [0, 1].""",
)

HINGE_EMBEDDING = Loss(
    name="hinge_embedding",
    func="hinge_embedding_loss",
    cls="HingeEmbeddingLoss",
    torch="torch.nn.functional.hinge_embedding_loss",
    family=ELEMENTWISE,
    signature=("margin", "size_average", "reduce", "reduction"),
    options=(Option("margin", FLOAT, 1.0, type_doc="float, default 1.0",
                    doc="The margin of the negative pairs (any finite value)."),),
    c_header="elementwise/binary.h",
    summary="Hinge embedding loss (``torch.nn.functional.hinge_embedding_loss``).",
    doc=r"""
    .. math::

        \ell_i = [y_i \ne 1] \max(\Delta - x_i, 0) + [y_i \ne -1]\, x_i

    with :math:`\Delta` the ``margin``: :math:`x_i` for :math:`y_i = 1`, the
    hinge for :math:`y_i = -1`, both for any other label, as PyTorch computes
    it. At the tie :math:`x_i = \Delta` the gradient is -1, as in PyTorch.
    ``'mean'`` divides by the number of elements (NaN for an empty input). A
    NaN input or label gives NaN loss and gradient (PyTorch's masks give a
    finite loss for a NaN label, and a gradient of 0 or 1).""",
    input_doc="""input : array_like, any shape
        Distances (or other scores); converted to C-contiguous float32 if it
        is not already.""",
    target_doc="""target : array_like, same shape as input
        Labels, 1 (similar) or -1 (dissimilar).""",
)

KL_DIV = Loss(
    name="kl_div",
    func="kl_div",
    cls="KLDivLoss",
    torch="torch.nn.functional.kl_div",
    family=ELEMENTWISE,
    signature=("size_average", "reduce", "reduction", "log_target"),
    options=(Option("log_target", BOOL, False, c_type="int", type_doc="bool, default False",
                    doc="The target is given as log-probabilities."),),
    batchmean=True,
    c_header="elementwise/binary.h",
    c_setup=True,
    c_modes=2,
    summary="Kullback-Leibler divergence (``torch.nn.functional.kl_div``).",
    doc=r"""
    .. math::

        \ell_i = y_i (\log y_i - x_i) \quad (0 \text{ where } y_i = 0), \qquad
        \ell_i = e^{y_i} (y_i - x_i) \quad (\text{log_target})

    with :math:`x` the log-probabilities, as PyTorch computes it (NaN
    propagates; a target below 0 gives NaN). ``'mean'`` divides by the
    number of elements (PyTorch warns that this is not the KL divergence;
    fastloss does not warn), ``'batchmean'`` by ``input.shape[0]`` (by 1 for
    a 0-d input), the KL divergence per sample.""",
    input_doc="""input : array_like, any shape
        Log-probabilities; converted to C-contiguous float32 if it is not
        already.""",
    target_doc="""target : array_like, same shape as input
        Probabilities (log-probabilities with ``log_target=True``).""",
)

LOSSES = (BCE_WITH_LOGITS, SIGMOID_FOCAL, SOFT_MARGIN, BCE, HINGE_EMBEDDING, KL_DIV)
