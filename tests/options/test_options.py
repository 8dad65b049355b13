"""The loss options: cross_entropy's weight and label_smoothing and
binary_cross_entropy_with_logits's weight and pos_weight, against the float64
reference (test_ce_options.py covers cross-entropy's options in depth).

The reference itself is checked for these options against PyTorch and finite
differences in test_reference.py.

Also, for every option the spec declares: the public signatures follow the
spec (names, PyTorch's order, keyword-only, defaults), and an option passed
at its default changes nothing.
"""

import inspect

import numpy as np
import pytest
from _support.registry import (
    BCE_WITH_LOGITS,
    CROSS_ENTROPY,
    REDUCTIONS,
    REGISTRY,
    assert_grad_close,
    assert_loss_close,
    assert_same,
)

import fastloss
from fastloss import _spec
from fastloss import reference as ref

W7 = np.linspace(0.5, 2.0, 7)

CE_OPTIONS = [
    pytest.param({"weight": W7}, "weight", id="weight"),
    pytest.param({"label_smoothing": 0.1}, "label_smoothing", id="label_smoothing"),
    pytest.param({"weight": W7, "label_smoothing": 0.3}, "weight|label_smoothing", id="both"),
]
BCE_OPTIONS = [
    pytest.param({"weight": np.linspace(0.0, 2.0, 63).reshape(9, 7)}, "weight", id="weight-full"),
    pytest.param({"weight": W7}, "weight", id="weight-row"),
    pytest.param({"pos_weight": W7}, "pos_weight", id="pos_weight"),
    pytest.param({"weight": W7[::-1].copy(), "pos_weight": W7}, "weight|pos_weight", id="both"),
]


def _ce_data():
    x, t = CROSS_ENTROPY.make_data((9, 7), 0)
    t[[0, 4]] = -100
    return x, t


def test_default_option_values_are_accepted():
    x, t = _ce_data()
    assert_same(fastloss.cross_entropy(x, t, weight=None, label_smoothing=0.0), fastloss.cross_entropy(x, t))
    x, y = BCE_WITH_LOGITS.make_data((9, 7), 0)
    assert_same(
        fastloss.binary_cross_entropy_with_logits(x, y, weight=None, pos_weight=None),
        fastloss.binary_cross_entropy_with_logits(x, y),
    )


@pytest.mark.parametrize("options,name", CE_OPTIONS)
def test_cross_entropy_options_match_reference(options, name):
    x, t = _ce_data()
    x64 = x.astype(np.float64)
    for reduction in REDUCTIONS:
        obj = fastloss.CrossEntropyLoss(reduction=reduction, **options)
        loss, grad = obj.loss_and_grad(x, t)
        assert_loss_close(loss, ref.cross_entropy(x64, t, reduction=reduction, **options))
        assert_grad_close(grad, ref.cross_entropy_grad(x64, t, reduction=reduction, **options))


@pytest.mark.parametrize("options,name", BCE_OPTIONS)
def test_bce_options_match_reference(options, name):
    x, y = BCE_WITH_LOGITS.make_data((9, 7), 0)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    for reduction in REDUCTIONS:
        obj = fastloss.BCEWithLogitsLoss(reduction=reduction, **options)
        loss, grad = obj.loss_and_grad(x, y)
        assert_loss_close(
            loss, ref.binary_cross_entropy_with_logits(x64, y64, reduction=reduction, **options)
        )
        assert_grad_close(
            grad, ref.binary_cross_entropy_with_logits_grad(x64, y64, reduction=reduction, **options)
        )


# ---------------------------------------------------------------------------
# Every declared option, from the spec
# ---------------------------------------------------------------------------


def _spec_parameters(case, per_call):
    """(name, keyword-only) after the inputs, in the spec's (PyTorch's) order."""
    out, keyword_only = [], False
    for name in case.spec.signature:
        if name == _spec.KEYWORD_ONLY:
            keyword_only = True
        elif per_call or name not in {o.name for o in case.options if o.per_call}:
            out.append((name, keyword_only))
    return out


def _default(case, name):
    if name == "reduction":
        return case.default_reduction
    if name in _spec.LEGACY:
        return None
    return case.spec.option(name).default


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_signatures_follow_the_spec(case):
    # The function takes the inputs and then every parameter the spec lists,
    # in its order, keyword-only after '*', with the declared defaults; the
    # class the same without the inputs and the per-call options, which its
    # forward and loss_and_grad take (keyword-only).
    kw_only = inspect.Parameter.KEYWORD_ONLY
    func = list(inspect.signature(case.func).parameters.values())
    assert [p.name for p in func[:len(case.spec.inputs)]] == list(case.spec.inputs)
    for params, per_call in ((func[len(case.spec.inputs):], True),
                             (list(inspect.signature(case.cls).parameters.values()), False)):
        expected = _spec_parameters(case, per_call)
        assert [(p.name, p.kind == kw_only) for p in params] == expected
        for p in params:
            assert p.default == _default(case, p.name), (p.name, p.default)
    for method in (case.cls.forward, case.cls.loss_and_grad):
        params = inspect.signature(method).parameters
        for opt in case.options:
            if opt.per_call:
                assert params[opt.name].kind == kw_only and params[opt.name].default == opt.default


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_every_option_at_its_default_changes_nothing(case):
    # Passing each option (and the reduction) at its declared default is
    # bitwise the same as leaving it out, for the function and the class.
    x, t = case.make_data((9, 7), 3)
    defaults = {o.name: o.default for o in case.options}
    defaults["reduction"] = case.default_reduction
    per_call = {o.name: o.default for o in case.options if o.per_call}
    built = {k: v for k, v in defaults.items() if k not in per_call}
    assert_same(case.func(x, t, **defaults), case.func(x, t))
    loss, grad = case.cls(**built).loss_and_grad(x, t, **per_call)
    expected_loss, expected_grad = case.cls().loss_and_grad(x, t)
    assert_same(loss, expected_loss)
    assert_same(grad, expected_grad)
    assert_same(case.cls(**built).forward(x, t, **per_call), expected_loss)
