"""Run by tests/values/test_isa.py in a child process with FASTLOSS_ISA set
(``python -m _support.isa_check`` from tests/).

The instruction-set path is chosen once, at import, from FASTLOSS_ISA; this
script checks that path against the reference on every registry shape (the
SIMD tails differ per vector width) and for thread-count independence.
Exit status: 0 all good, 1 a check failed (details on stderr), 3 the
requested path is not the one in use (not available on this CPU).
"""

import sys

import fastloss

from .isa_child import run_jobs
from .registry import (
    REDUCTIONS,
    REGISTRY,
    assert_grad_close,
    assert_loss_close,
    assert_same,
)


def check(case, shape, reduction):
    x, t = case.make_data(shape, 1 + sum(shape) % 97)
    if not case.elementwise and len(shape) == 2 and shape[0] > 2:
        t[1] = -100
    g = case.random_grad_output(reduction, shape, 4)
    obj = case.cls(reduction=reduction)
    loss, grad = obj.loss_and_grad(x, t)
    assert_loss_close(loss, case.ref(x, t, reduction))
    assert_grad_close(grad, case.ref_gradient(x, t, reduction))
    assert_grad_close(obj.backward(x, t, grad_output=g), case.ref_gradient(x, t, reduction, grad_output=g))
    assert_same(obj(x, t), loss)
    assert_same(obj.backward(x, t), grad)


def check_threads(case, shape, reduction):
    x, t = case.make_data(shape, 8)
    obj = case.cls(reduction=reduction)
    with fastloss.threads(1):
        serial = obj.loss_and_grad(x, t)
    with fastloss.threads(2):
        parallel = obj.loss_and_grad(x, t)
    assert_same(serial[0], parallel[0])
    assert_same(serial[1], parallel[1])


def main():
    jobs = [(check, (case, shape, r)) for case in REGISTRY for shape in case.shapes
            for r in REDUCTIONS]
    jobs += [(check_threads, (case, case.big_shapes[0], r)) for case in REGISTRY
             for r in REDUCTIONS]
    return run_jobs(jobs)


if __name__ == "__main__":
    sys.exit(main())
