"""fastloss.torch falls back to PyTorch's own loss for everything its kernels
do not cover, with PyTorch's result or PyTorch's own error: one test per
fallback, each checking that the kernels did not run (``kernel_calls``) and
that the result is PyTorch's, bit for bit where both sides run the same code.
Also: CPU autocast, double backward, torch.func and forward-mode AD, and the
thread policy in a PyTorch program.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from _support.registry import (
    BCE_WITH_LOGITS,
    CROSS_ENTROPY,
    ELEMENTWISE,
    HUBER,
    L1,
    MSE,
    REGISTRY,
    SIGMOID_FOCAL,
    SMOOTH_L1,
    assert_grad_close,
    assert_loss_close,
)

torch = pytest.importorskip("torch")

from _support.torch_util import functional, kernel_calls, torch_raises_in_cxx

import fastloss.torch.functional as FT

HERE = os.path.dirname(os.path.abspath(__file__))


def _data(case, dtype=torch.float32, seed=0, shape=(16, 5)):
    x, t = case.make_data(shape, seed)
    xt = torch.tensor(x, dtype=dtype)
    tt = torch.as_tensor(t) if not case.elementwise else torch.tensor(t, dtype=dtype)
    return xt, tt


def _torch_fn(case):
    return case.torch_function() if case is SIGMOID_FOCAL else \
        getattr(torch.nn.functional, case.func_name)


def _both(case, xt, tt, go=0.37, **kwargs):
    """(our loss, our grad, torch's loss, torch's grad) on copies of xt."""
    ours_x = xt.detach().clone().requires_grad_()
    theirs_x = xt.detach().clone().requires_grad_()
    ours = functional(case)(ours_x, tt, **kwargs)
    theirs = _torch_fn(case)(theirs_x, tt, **kwargs)
    (ours.sum() * go).backward()
    (theirs.sum() * go).backward()
    return ours, ours_x.grad, theirs, theirs_x.grad


def _assert_equal(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    assert torch.equal(a, b) or (torch.isnan(a).all() and torch.isnan(b).all()), (a, b)


# ---------------------------------------------------------------------------
# Devices and dtypes.

@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_other_device_runs_torch(case, kernel_calls):
    # The meta device stands for CUDA & co. (none in CI): PyTorch's result is
    # a meta tensor of the loss's shape, and the gradient too.
    xt, tt = _data(case)
    xm = xt.to("meta").requires_grad_()
    loss = functional(case)(xm, tt.to("meta"), reduction="none")
    expected = _torch_fn(case)(xt.to("meta"), tt.to("meta"), reduction="none")
    assert loss.device.type == "meta" and loss.shape == expected.shape
    (grad,) = torch.autograd.grad(loss.sum(), xm)
    assert grad.device.type == "meta" and grad.shape == xm.shape
    assert len(kernel_calls) == 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16],
                         ids=str)
@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_other_dtypes_run_torch(case, dtype, kernel_calls):
    xt, tt = _data(case, dtype)
    for reduction in ("mean", "none"):
        ours, ours_grad, theirs, theirs_grad = _both(case, xt, tt, reduction=reduction)
        _assert_equal(ours, theirs)
        _assert_equal(ours_grad, theirs_grad)
    assert len(kernel_calls) == 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_cpu_autocast_runs_the_kernels_in_float32(case, dtype, kernel_calls):
    # Under CPU autocast PyTorch computes these losses in float32 (half
    # inputs cast up); fastloss.torch does the same cast and runs its kernel.
    xt, tt = _data(case, torch.float32, seed=1)
    low = xt.to(dtype)
    ours_x = low.clone().requires_grad_()
    theirs_x = low.clone().requires_grad_()
    with torch.autocast("cpu", dtype=dtype):
        ours = functional(case)(ours_x, tt, reduction="mean")
        theirs = _torch_fn(case)(theirs_x, tt, reduction="mean")
    (ours * 0.5).backward()
    (theirs * 0.5).backward()
    if case is SIGMOID_FOCAL:
        # torchvision's formula is PyTorch operations, mostly run in `dtype`
        # by autocast: fastloss.torch runs the same chain.
        assert len(kernel_calls) == 0
        _assert_equal(ours, theirs)
        _assert_equal(ours_x.grad, theirs_x.grad)
        return
    assert ours.dtype == theirs.dtype == torch.float32
    assert len(kernel_calls) == 1
    assert_loss_close(ours.detach().numpy(), theirs.detach().numpy(), rtol=2e-5)
    assert ours_x.grad.dtype == dtype
    # Both gradients are float32 values rounded to `dtype`: equal but for
    # the odd value next to a rounding boundary.
    assert_grad_close(ours_x.grad.float().numpy(), theirs_x.grad.float().numpy(),
                      rtol=2.0 ** -7)


# ---------------------------------------------------------------------------
# Arguments that require grad.

@pytest.mark.parametrize("case", ELEMENTWISE + (CROSS_ENTROPY,), ids=repr)
def test_target_that_requires_grad_runs_torch(case, kernel_calls):
    xt, tt = _data(case, seed=2)
    if case is CROSS_ENTROPY:   # probabilities are differentiable; class indices are not
        tt = torch.softmax(torch.randn(16, 5, generator=torch.Generator().manual_seed(2)), 1)
    ours_t = tt.clone().requires_grad_()
    theirs_t = tt.clone().requires_grad_()
    try:
        theirs = _torch_fn(case)(xt, theirs_t, reduction="sum")
        (theirs * 0.37).backward()
    except RuntimeError as exc:
        # soft_margin_loss refuses a differentiable target; hinge_embedding_loss
        # reads it only through masks, so the loss has no graph to go back through
        with pytest.raises(RuntimeError, match=re.escape(str(exc))):
            ours = functional(case)(xt, ours_t, reduction="sum")
            (ours * 0.37).backward()
        assert len(kernel_calls) == 0
        return
    ours = functional(case)(xt, ours_t, reduction="sum")
    (ours * 0.37).backward()
    _assert_equal(ours, theirs)
    _assert_equal(ours_t.grad, theirs_t.grad)
    assert len(kernel_calls) == 0


@pytest.mark.parametrize("case", [MSE, L1, HUBER], ids=repr)
def test_regression_weight_that_requires_grad_runs_torch(case, kernel_calls):
    xt, tt = _data(case, seed=3)
    w = torch.rand(16, 5, generator=torch.Generator().manual_seed(3))
    ours_w, theirs_w = w.clone().requires_grad_(), w.clone().requires_grad_()
    ours = functional(case)(xt, tt, weight=ours_w)
    theirs = _torch_fn(case)(xt, tt, weight=theirs_w)
    ours.backward()
    theirs.backward()
    _assert_equal(ours, theirs)
    _assert_equal(ours_w.grad, theirs_w.grad)
    assert len(kernel_calls) == 0


@torch_raises_in_cxx
@pytest.mark.parametrize("case,key", [(CROSS_ENTROPY, "weight"), (BCE_WITH_LOGITS, "weight"),
                                      (BCE_WITH_LOGITS, "pos_weight")])
def test_weight_that_requires_grad_raises_torchs_error(case, key, kernel_calls):
    xt, tt = _data(case, seed=4)
    w = torch.ones(5, requires_grad=True)
    with pytest.raises(RuntimeError, match=f"not differentiable with respect to argument "
                                           f"'{key}'"):
        _torch_fn(case)(xt.requires_grad_(), tt, **{key: w})
    with pytest.raises(RuntimeError, match=f"not differentiable with respect to argument "
                                           f"'{key}'"):
        functional(case)(xt.requires_grad_(), tt, **{key: w})
    assert len(kernel_calls) == 0


# ---------------------------------------------------------------------------
# Double backward, torch.func, forward-mode AD.

@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_double_backward_is_torchs(case, kernel_calls):
    # create_graph=True: the first-order gradient comes from the fused kernel's
    # forward and is recomputed by PyTorch's loss, whose graph reaches the input.
    xt, tt = _data(case, seed=5)
    v = torch.randn(16, 5, generator=torch.Generator().manual_seed(5))
    results = []
    for fn in (functional(case), _torch_fn(case)):
        x = xt.clone().requires_grad_()
        loss = fn(x, tt, reduction="mean")
        (g,) = torch.autograd.grad(loss * 0.37, x, create_graph=True)
        if not g.requires_grad:
            # a piecewise linear loss (hinge_embedding_loss): PyTorch's gradient
            # is a constant with no graph, and so is the recomputed one
            assert not any(r[1].requires_grad for r in results)
            results.append((loss, g, torch.zeros_like(x)))
            continue
        (hv,) = torch.autograd.grad((g * v).sum(), x)     # Hessian-vector product
        results.append((loss, g, hv))
    assert len(kernel_calls) == 1
    (ours, ours_g, ours_hv), (theirs, theirs_g, theirs_hv) = results
    assert_loss_close(ours.detach().numpy(), theirs.detach().numpy(), rtol=2e-5)
    assert_grad_close(ours_g.detach().numpy(), theirs_g.detach().numpy(), rtol=2e-5)
    _assert_equal(ours_hv, theirs_hv)


@torch_raises_in_cxx
def test_double_backward_after_input_changed_raises():
    xt, tt = _data(CROSS_ENTROPY, seed=6)
    x = xt.clone().requires_grad_()
    logits = x * 1.0
    loss = FT.cross_entropy(logits, tt)
    with torch.no_grad():
        logits.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(loss, logits, create_graph=True)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", [CROSS_ENTROPY, BCE_WITH_LOGITS, HUBER], ids=repr)
def test_torch_func_and_forward_ad_run_torch(case, kernel_calls):
    xt, tt = _data(case, seed=7)
    v = torch.randn(16, 5, generator=torch.Generator().manual_seed(7))
    grads = [torch.func.grad(lambda x, fn=fn: fn(x, tt))(xt)
             for fn in (functional(case), _torch_fn(case))]
    _assert_equal(*grads)
    jvps = [torch.func.jvp(lambda x, fn=fn: fn(x, tt), (xt,), (v,))[1]
            for fn in (functional(case), _torch_fn(case))]
    _assert_equal(*jvps)
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        ours = fwad.unpack_dual(functional(case)(fwad.make_dual(xt, v), tt)).tangent
        theirs = fwad.unpack_dual(_torch_fn(case)(fwad.make_dual(xt, v), tt)).tangent
    _assert_equal(ours, theirs)
    assert len(kernel_calls) == 0


# ---------------------------------------------------------------------------
# Arguments fastloss refuses: PyTorch's result or PyTorch's error.

def test_broadcast_target_runs_torch(kernel_calls):
    xt, tt = _data(MSE, seed=8)
    with pytest.warns(UserWarning, match="Using a target size"):
        ours, ours_g, theirs, theirs_g = _both(MSE, xt, tt[:, :1])
    _assert_equal(ours, theirs)
    _assert_equal(ours_g, theirs_g)
    assert len(kernel_calls) == 0


@torch_raises_in_cxx   # fastloss's refusal leaves autograd.Function.apply as an exception
def test_non_finite_class_weight_runs_torch(kernel_calls):
    xt, tt = _data(CROSS_ENTROPY, seed=9)
    w = torch.tensor([1.0, float("inf"), 1.0, 2.0, 0.5])
    ours, ours_g, theirs, theirs_g = _both(CROSS_ENTROPY, xt, tt, weight=w, reduction="sum")
    _assert_equal(ours, theirs)
    assert torch.equal(ours_g.isnan(), theirs_g.isnan())
    assert len(kernel_calls) == 1   # fastloss refused it (ValueError): PyTorch ran


@torch_raises_in_cxx
def test_ignore_index_with_probabilities_runs_torch(kernel_calls):
    xt, _ = _data(CROSS_ENTROPY, seed=10)
    p = torch.softmax(torch.randn(16, 5), 1)
    for fn in (FT.cross_entropy, torch.nn.functional.cross_entropy):
        with pytest.raises(RuntimeError, match="ignore_index is not supported for floating "
                                               "point target"):
            fn(xt, p, ignore_index=1)
    assert len(kernel_calls) == 0


def _cxx(*args, id):
    return pytest.param(*args, id=id, marks=torch_raises_in_cxx)


@pytest.mark.parametrize("call,error,match", [
    _cxx(lambda F, x, t, y: F.cross_entropy(x, t.int()), RuntimeError, "expected target dtype",
         id="int32-target"),
    _cxx(lambda F, x, t, y: F.cross_entropy(x, torch.full_like(t, 7)), IndexError,
         "out of bounds", id="target-out-of-range"),
    pytest.param(lambda F, x, t, y: F.cross_entropy(x, t, reduction="avg"), ValueError,
                 "avg is not a valid value for reduction", id="reduction"),
    _cxx(lambda F, x, t, y: F.cross_entropy(x, t, label_smoothing=2.0), RuntimeError,
         "label_smoothing must be between 0.0 and 1.0", id="label-smoothing"),
    _cxx(lambda F, x, t, y: F.cross_entropy(x, t, weight=torch.ones(5, dtype=torch.float64)),
         RuntimeError, "expected scalar type Float but found Double", id="float64-weight"),
    _cxx(lambda F, x, t, y: F.cross_entropy(x, t, ignore_index=1.0), TypeError, "ignore_index",
         id="float-ignore-index"),
    pytest.param(lambda F, x, t, y: F.mse_loss(x, y, weight=torch.ones(5)), ValueError,
                 "Weights and input must have the same size", id="weight-shape"),
    _cxx(lambda F, x, t, y: F.huber_loss(x, y, delta=0.0), RuntimeError,
         "does not support non-positive values for delta", id="delta"),
    _cxx(lambda F, x, t, y: F.smooth_l1_loss(x, y, beta=-1.0), RuntimeError,
         "does not support negative values for beta", id="beta"),
    pytest.param(lambda F, x, t, y: F.binary_cross_entropy_with_logits(x, y[:, :2]),
                 ValueError, "Target size .* must be the same as input size", id="bce-shape"),
])
def test_refused_arguments_raise_torchs_error(call, error, match, kernel_calls):
    x, t = _data(CROSS_ENTROPY, seed=11)
    y = torch.rand(16, 5)
    x.requires_grad_()
    with pytest.raises(error, match=match):
        call(torch.nn.functional, x, t, y)
    with pytest.raises(error, match=match):
        call(FT, x, t, y)


def test_focal_loss_unknown_reduction():
    x, y = _data(SIGMOID_FOCAL, seed=12)
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum'"):
        FT.sigmoid_focal_loss(x, y, reduction="avg")


def test_tensor_subclass_runs_torch(kernel_calls):
    class Tagged(torch.Tensor):
        pass

    xt, tt = _data(CROSS_ENTROPY, seed=13)
    x = xt.as_subclass(Tagged).requires_grad_()
    loss = FT.cross_entropy(x, tt)
    expected = torch.nn.functional.cross_entropy(xt.as_subclass(Tagged), tt)
    assert type(loss) is Tagged
    _assert_equal(loss.as_subclass(torch.Tensor).detach(),
                  expected.as_subclass(torch.Tensor).detach())
    assert len(kernel_calls) == 0


# ---------------------------------------------------------------------------
# Threads in a PyTorch program: torch's count, unless fastloss's own was set;
# no oversubscription or hang beside torch's OpenMP runtime.

def _run(code, timeout=120, env=None):
    full_env = dict(os.environ, **(env or {}))
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=HERE,
                              env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"subprocess hung (killed after {timeout} s): {exc.stderr}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_threads_follow_torch_unless_set():
    out = _run("""
        import json, fastloss, torch
        before = fastloss.get_num_threads()
        import fastloss.torch
        torch.set_num_threads(2)
        seen = [fastloss.get_num_threads()]
        torch.set_num_threads(1)
        seen.append(fastloss.get_num_threads())
        with fastloss.threads(2):
            seen.append(fastloss.get_num_threads())
        seen.append(fastloss.get_num_threads())      # following torch again
        fastloss.set_num_threads(2)
        torch.set_num_threads(1)
        seen.append(fastloss.get_num_threads())      # explicit: stays
        print(json.dumps(seen))
    """)
    assert out == [2, 1, 2, 1, 2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_kernels_use_torchs_thread_count_and_do_not_hang():
    # Interleaves torch's own parallel ops (its OpenMP runtime) with fused
    # losses large enough to run parallel regions; then forks a child that
    # computes the same losses (fastloss goes serial there instead of hanging).
    out = _run("""
        import json, os, multiprocessing as mp
        import torch, fastloss, fastloss.torch.functional as F
        def threads():
            return len(os.listdir("/proc/self/task"))
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2048, 512, generator=g)
        t = torch.randint(0, 512, (2048,), generator=g)
        w = torch.randn(512, 512, generator=g)
        torch.set_num_threads(1)
        before = threads()
        one = F.cross_entropy(x, t).item()
        serial_threads = threads()
        torch.set_num_threads(2)
        losses = []
        for _ in range(10):
            h = (x @ w).relu_() @ w          # torch's threads
            losses.append(F.cross_entropy(x, t).item())
            F.binary_cross_entropy_with_logits(h, torch.sigmoid(h)).item()
        parallel_threads = threads()
        def child(q):
            q.put(F.cross_entropy(x, t).item())
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        p.join(60)
        hung = p.is_alive()
        if hung:
            p.kill()
        print(json.dumps({"before": before, "serial": serial_threads,
                          "parallel": parallel_threads, "one": one, "losses": losses,
                          "hung": hung, "child": None if hung else q.get(timeout=10)}))
    """, env={"OMP_NUM_THREADS": "2"})
    assert out["serial"] == out["before"], "torch.set_num_threads(1) did not keep fastloss serial"
    assert out["parallel"] > out["before"], "no pool ever started: the test proves nothing"
    # At most one extra OpenMP pool (fastloss's, when its runtime is not torch's),
    # each of torch.get_num_threads() - 1 workers, beyond torch's own threads.
    assert out["parallel"] <= out["before"] + 2 * (2 - 1) + 2
    assert not out["hung"], "a forked child hung in a fastloss kernel"
    assert out["losses"] == [out["one"]] * 10 and out["child"] == out["one"]
