"""The loss options: cross_entropy's weight and label_smoothing and
binary_cross_entropy_with_logits's weight and pos_weight, against the float64
reference (test_ce_options.py covers cross-entropy's options in depth).

The reference itself is checked for these options against PyTorch and finite
differences in test_reference.py.
"""

import numpy as np
import pytest

import fastloss
from _support.registry import (
    BCE_WITH_LOGITS,
    CROSS_ENTROPY,
    REDUCTIONS,
    assert_grad_close,
    assert_loss_close,
    assert_same,
)
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
