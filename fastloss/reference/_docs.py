"""The numpydoc sections that the reference functions share, written once.

Two decorators complete a function's docstring when the module is imported:

* :func:`loss_doc` on a loss: every line ``{{name}}`` in its docstring is
  replaced by the fragment ``name`` of ``FRAGMENTS``, indented as the
  placeholder was, with ``{input}`` replaced by the function's first
  parameter's name (``input``, or ``inputs`` for the focal loss).
* :func:`gradient_of` on a gradient: its docstring holds the sections that
  are its own (usually only Notes); the summary line, the Parameters ("As in
  :func:`<loss>`" and ``grad_output``) and the Returns section are written
  from the signatures.

An unknown placeholder, or one left over, is an error at import, so a typo
cannot ship a broken docstring. Under ``python -OO`` (no docstrings) both
leave the function alone.
"""

import inspect
import re
import sys

# Fragments for loss_doc; "{input}" is the name of the function's first parameter.
FRAGMENTS = {
    "elementwise_input": (
        "{input} : array_like, any shape\n"
        "target : array_like, shape of ``{input}``"
    ),
    "reduction": "reduction : {{'mean', 'sum', 'none'}}, default 'mean'",
    "regression_weight": (
        "weight : array_like, keyword-only, optional\n"
        "    Element weights ``w``, broadcast to ``{input}``'s shape (PyTorch 2.13\n"
        "    requires exactly ``{input}``'s shape; a broadcast weight means the\n"
        "    same as its materialised copy)."
    ),
    "elementwise_returns": (
        "Returns\n"
        "-------\n"
        "float or ndarray\n"
        "    The mean or sum as a ``float``; for ``'none'`` the float64\n"
        "    elementwise losses, of {input_shape}."
    ),
}

# grad_output of an elementwise loss's gradient: one value per element.
ELEMENTWISE_GRAD_OUTPUT = (
    "A scalar for ``'mean'`` and ``'sum'``; for ``'none'`` an array of\n"
    "{input_shape} (or anything that broadcasts to it)."
)

_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)\{\{(?P<name>\w+)\}\}[ \t]*$", re.MULTILINE)


def _shape_of(name):
    """``input`` -> "``input``'s shape"; ``inputs`` -> "``inputs``' shape"."""
    return f"``{name}``' shape" if name.endswith("s") else f"``{name}``'s shape"


def _first_parameter(f):
    return next(iter(inspect.signature(f).parameters))


def _fill(text, first):
    return text.format(input=first, input_shape=_shape_of(first))


def loss_doc(f):
    """Replace the ``{{name}}`` lines of f's docstring by the shared fragments."""
    if f.__doc__ is None:  # python -OO strips docstrings
        return f
    first = _first_parameter(f)

    def expand(match):
        name = match.group("name")
        if name not in FRAGMENTS:
            raise KeyError(f"{f.__name__}: unknown docstring fragment {{{{{name}}}}}")
        indent = match.group("indent")
        return "\n".join(indent + line if line else line
                         for line in _fill(FRAGMENTS[name], first).split("\n"))

    f.__doc__ = _PLACEHOLDER.sub(expand, f.__doc__)
    if "{{" in f.__doc__:
        raise ValueError(f"{f.__name__}: a docstring placeholder is not on a line of its own")
    return f


def gradient_of(loss, grad_output=ELEMENTWISE_GRAD_OUTPUT):
    """Write the docstring of ``loss``'s gradient function from the signatures.

    The decorated function's own docstring (its Notes) follows the generated
    summary, Parameters and Returns. ``grad_output`` describes that parameter
    (``{input_shape}`` is replaced by "``input``'s shape").
    """
    def decorate(f):
        if sys.flags.optimize >= 2:  # python -OO: no docstrings
            return f
        params = [p for p in inspect.signature(f).parameters if p != "grad_output"]
        first = params[0]
        grad_output_text = _fill(grad_output, first).replace("\n", "\n    ")
        head = (
            f"``grad_output`` times the gradient of :func:`{loss.__name__}` w.r.t. "
            f"``{first}``.\n"
            "\n"
            "Parameters\n"
            "----------\n"
            f"{', '.join(params)}\n"
            f"    As in :func:`{loss.__name__}`.\n"
            "grad_output : float or array_like, default 1.0\n"
            f"    {grad_output_text}\n"
            "\n"
            "Returns\n"
            "-------\n"
            "ndarray\n"
            f"    float64, of {_shape_of(first)}."
        )
        own = inspect.cleandoc(f.__doc__ or "")
        f.__doc__ = head + ("\n\n" + own if own else "") + "\n"
        return f
    return decorate
