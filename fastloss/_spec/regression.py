"""Regression losses: MSE, L1, Huber, smooth L1, Poisson NLL.

C closed forms: src/elementwise/regression.h. With d = x - y.
"""

import textwrap

from . import BOOL, ELEMENTWISE, FLOAT, MEAN_ELEMENTS, MEAN_WEIGHT_SUM, WEIGHT, Loss, Option

_WEIGHT = Option("weight", WEIGHT, None, c_type="fl_weight", type_doc="array_like, optional",
                 doc="Finite elementwise weights, broadcastable to the input's shape "
                     "(PyTorch 2.13 requires exactly the input's shape).")
_NOTE = "Unlike PyTorch, a target of a different shape is an error, not a broadcast."


def _regression(name, func, cls, signature, options, mean, summary, formula, mean_doc,
                weight="weight", **c):
    return Loss(
        name=name, func=func, cls=cls, torch=f"torch.nn.functional.{func}",
        family=ELEMENTWISE, signature=signature, options=options, mean=mean,
        weight=weight, c_header="elementwise/regression.h", summary=summary, **c,
        doc="\n    .. math::\n\n        " + formula + "\n\n" + textwrap.fill(
            f"with :math:`d_i = x_i - y_i`. {mean_doc} {_NOTE}", 80,
            initial_indent="    ", subsequent_indent="    "),
        input_doc="""input : array_like, any shape
        Predictions; converted to C-contiguous float32 if it is not already.""",
        target_doc="""target : array_like, same shape as input
        Targets.""",
    )


MSE = _regression(
    "mse", "mse_loss", "MSELoss", ("size_average", "reduce", "reduction", "weight"),
    (_WEIGHT,), MEAN_WEIGHT_SUM, "Mean squared error (``torch.nn.functional.mse_loss``).",
    r"\ell_i = w_i d_i^2",
    "``'mean'`` divides by the number of elements, or by the sum of the "
    "(broadcast) weight when one is given, as PyTorch 2.13 does.")

L1 = _regression(
    "l1", "l1_loss", "L1Loss", ("size_average", "reduce", "reduction", "weight"),
    (_WEIGHT,), MEAN_WEIGHT_SUM, "Mean absolute error (``torch.nn.functional.l1_loss``).",
    r"\ell_i = w_i |d_i|",
    "``'mean'`` divides by the number of elements, or by the sum of the "
    "(broadcast) weight when one is given. The gradient at d = 0 is 0 "
    "(sign(0) = 0), as in PyTorch.")

HUBER = _regression(
    "huber", "huber_loss", "HuberLoss", ("reduction", "delta", "weight"),
    (Option("delta", FLOAT, 1.0, low=0.0, positive=True, type_doc="float > 0, default 1.0",
            doc="Where the loss turns from quadratic to linear."), _WEIGHT),
    MEAN_ELEMENTS, "Huber loss (``torch.nn.functional.huber_loss``).",
    r"\ell_i = w_i \begin{cases} d_i^2 / 2 & |d_i| < \delta \\ "
    r"\delta (|d_i| - \delta / 2) & \text{otherwise} \end{cases}",
    "``'mean'`` divides by the number of elements, with or without a weight "
    "(as PyTorch 2.13 does). ``delta`` must be positive and finite.")

SMOOTH_L1 = _regression(
    "smooth_l1", "smooth_l1_loss", "SmoothL1Loss",
    ("size_average", "reduce", "reduction", "beta"),
    (Option("beta", FLOAT, 1.0, low=0.0, type_doc="float >= 0, default 1.0",
            doc="Where the loss turns from quadratic to linear; 0 is the L1 loss."),),
    MEAN_ELEMENTS, "Smooth L1 loss (``torch.nn.functional.smooth_l1_loss``).",
    r"\ell_i = \begin{cases} d_i^2 / (2\beta) & |d_i| < \beta \\ "
    r"|d_i| - \beta / 2 & \text{otherwise} \end{cases}",
    "``'mean'`` divides by the number of elements. ``beta = 0`` is the L1 "
    "loss; ``beta`` must be finite and >= 0.", weight=None, c_setup=True, c_modes=2)

POISSON_NLL = Loss(
    name="poisson_nll",
    func="poisson_nll_loss",
    cls="PoissonNLLLoss",
    torch="torch.nn.functional.poisson_nll_loss",
    family=ELEMENTWISE,
    signature=("log_input", "full", "size_average", "eps", "reduce", "reduction"),
    options=(
        Option("log_input", BOOL, True, c_type="int", type_doc="bool, default True",
               doc="The input is the log of the rate (else the rate itself)."),
        Option("full", BOOL, False, c_type="int", type_doc="bool, default False",
               doc="Add Stirling's approximation of log(t!) where t > 1."),
        Option("eps", FLOAT, 1e-8, type_doc="float, default 1e-8",
               doc="Added to the rate inside the log when log_input is False."),
    ),
    c_header="elementwise/regression.h",
    c_setup=True,
    c_modes=4,
    summary="Poisson negative log-likelihood (``torch.nn.functional.poisson_nll_loss``).",
    doc=r"""
    .. math::

        \ell_i = \begin{cases} e^{x_i} - y_i x_i & \text{log_input} \\
                 x_i - y_i \log(x_i + \varepsilon) & \text{otherwise} \end{cases}
                 \;+\; [\text{full},\ y_i > 1]\,
                 \bigl(y_i \log y_i - y_i + \tfrac12 \log(2\pi y_i)\bigr)

    as PyTorch computes it: the gradient of the second form is
    :math:`1 - y_i / (x_i + \varepsilon)`, finite even where a negative
    :math:`x_i + \varepsilon` makes the loss NaN; the Stirling term (``full``)
    has no gradient. ``'mean'`` divides by the number of elements (NaN for an
    empty input). Unlike PyTorch, a target of a different shape is an error,
    not a broadcast.""",
    input_doc="""input : array_like, any shape
        The log-rate (``log_input=True``) or the rate; converted to
        C-contiguous float32 if it is not already.""",
    target_doc="""target : array_like, same shape as input
        Counts (any real numbers are computed as the formula says).""",
)

LOSSES = (MSE, L1, HUBER, SMOOTH_L1, POISSON_NLL)
