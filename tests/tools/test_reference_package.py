"""The layout of fastloss.reference: its exports, and the docstrings that its
shared sections (fastloss/reference/_docs.py) complete at import.

The references' values are tested in test_reference.py.
"""

import inspect
import pydoc
import re

import pytest

from fastloss import reference
from fastloss.reference import (
    _docs,
    binary,
    embedding,
    nll,
    pairwise,
    regression,
    rows,
    softmax,
)

FAMILIES = (softmax, binary, regression, nll, rows, pairwise, embedding)
PUBLIC = [getattr(reference, name) for name in reference.__all__]


def test_exports_are_the_families_names():
    assert reference.__all__ == [n for family in FAMILIES for n in family.__all__]
    assert len(set(reference.__all__)) == len(reference.__all__)
    for family in FAMILIES:
        for name in family.__all__:
            assert getattr(reference, name) is getattr(family, name)
    assert reference.REDUCTIONS == ("none", "mean", "sum")


def test_every_loss_has_its_gradient():
    losses = [n for n in reference.__all__ if not n.endswith("_grad")]
    assert sorted(reference.__all__) == sorted(losses + [n + "_grad" for n in losses])
    for name in losses:
        loss, grad = getattr(reference, name), getattr(reference, name + "_grad")
        params = [p for p in inspect.signature(grad).parameters if p != "grad_output"]
        assert params == list(inspect.signature(loss).parameters), name


def _documented_parameters(doc):
    """The names that the Parameters section documents ('a : type' or 'a, b')."""
    section = re.search(r"^Parameters\n-+\n(.*?)(?:\n\n[A-Z][a-z]+\n-+\n|\Z)", doc, re.S | re.M)
    assert section, "no Parameters section"
    names = []
    for line in section.group(1).split("\n"):
        if line and not line.startswith(" "):
            names += [n.strip() for n in line.split(" : ")[0].split(",")]
    return names


@pytest.mark.parametrize("f", PUBLIC, ids=lambda f: f.__name__)
def test_docstring_is_complete(f):
    doc = inspect.getdoc(f)
    assert not re.search(r"\{\{\w+\}\}", doc)  # every placeholder filled
    for section in ("Parameters", "Returns", "Notes"):
        assert f"\n{section}\n{'-' * len(section)}\n" in doc, section
    assert sorted(_documented_parameters(doc)) == sorted(inspect.signature(f).parameters)
    summary = doc.split("\n", 1)[0]
    assert summary.endswith(".") and len(summary) > 20
    assert summary in pydoc.render_doc(f, renderer=pydoc.plaintext)


def test_gradient_docstring_is_written_from_the_signatures():
    doc = inspect.getdoc(reference.huber_loss_grad)
    assert doc.startswith("``grad_output`` times the gradient of :func:`huber_loss` w.r.t. "
                          "``input``.\n\nParameters\n----------\n"
                          "input, target, reduction, delta, weight\n"
                          "    As in :func:`huber_loss`.\n"
                          "grad_output : float or array_like, default 1.0\n")
    assert "Returns\n-------\nndarray\n    float64, of ``input``'s shape." in doc
    focal = inspect.getdoc(reference.sigmoid_focal_loss_grad)
    assert "an array of\n    ``inputs``' shape" in focal
    assert "of ``inputs``' shape." in inspect.getdoc(reference.sigmoid_focal_loss)


def test_loss_doc_fragments_keep_their_indentation():
    def toy(input, target, reduction="mean"):
        """Toy.

        Parameters
        ----------
        {{elementwise_input}}
        {{reduction}}

        {{elementwise_returns}}
        """

    doc = inspect.cleandoc(_docs.loss_doc(toy).__doc__)
    assert doc == ("Toy.\n\nParameters\n----------\ninput : array_like, any shape\n"
                   "target : array_like, shape of ``input``\n"
                   "reduction : {'mean', 'sum', 'none'}, default 'mean'\n\n"
                   "Returns\n-------\nfloat or ndarray\n"
                   "    The mean or sum as a ``float``; for ``'none'`` the float64\n"
                   "    elementwise losses, of ``input``'s shape.")


def test_loss_doc_refuses_unknown_and_misplaced_placeholders():
    def unknown(input):
        """Doc.

        {{no_such_fragment}}
        """

    with pytest.raises(KeyError, match=r"unknown: unknown docstring fragment "
                                       r"\{\{no_such_fragment\}\}"):
        _docs.loss_doc(unknown)

    def inline(input):
        """Doc with {{reduction}} inside a line."""

    with pytest.raises(ValueError, match="inline: a docstring placeholder is not on a line "
                                         "of its own"):
        _docs.loss_doc(inline)
