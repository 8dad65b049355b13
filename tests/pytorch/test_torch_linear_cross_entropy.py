"""fastloss.torch's linear cross-entropy against torch's F.linear_cross_entropy
in float64: every reduction and option, with and without a bias, chunk sizes
that do not divide N, an odd vocabulary, every target ignored; accuracy no
worse than torch's own float32; agreement with the NumPy API; the custom
operators' opcheck; torch.compile(fullgraph=True); the module; the
fallbacks; double backward; a tiny language-model head trained with it and
with torch's function giving the same loss curve.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")

import torch.nn.functional as F

import fastloss
import fastloss.torch as ft
import fastloss.torch.functional as FT
from fastloss.torch import _linear_ce

N, H, V = 61, 24, 257         # V odd; N not a multiple of the chunk sizes used

OPTIONS = {
    "plain": {},
    "weight": {"weight": True},
    "smoothing": {"label_smoothing": 0.2},
    "all": {"weight": True, "label_smoothing": 0.1, "ignore_index": 3},
}


def make(n=N, h=H, c=V, seed=0, ignore_index=-100):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, generator=g)
    W = torch.randn(c, h, generator=g) / h ** 0.5
    b = torch.randn(c, generator=g)
    t = torch.randint(0, c, (n,), generator=g)
    t[::5] = ignore_index
    w = torch.rand(c, generator=g) + 0.25
    return x, W, b, t, w


def kwargs_of(name, w):
    return {k: (w if k == "weight" else val) for k, val in OPTIONS[name].items()}


def grads(fn, x, W, b, t, dtype, go=None, **kw):
    """(loss, grad_input, grad_weight, grad_bias) of fn in `dtype`, through
    autograd, with upstream gradient go (per token for 'none')."""
    xs = x.detach().to(dtype, copy=True).requires_grad_()
    Ws = W.detach().to(dtype, copy=True).requires_grad_()
    bs = None if b is None else b.detach().to(dtype, copy=True).requires_grad_()
    kw = {k: (val.to(dtype) if isinstance(val, torch.Tensor) else val) for k, val in kw.items()}
    loss = fn(xs, Ws, t, linear_bias=bs, **kw)
    up = torch.ones_like(loss) if go is None else go.to(dtype)
    loss.backward(up)
    return (loss.detach().double(), xs.grad.double(), Ws.grad.double(),
            None if bs is None else bs.grad.double())


def errors(result, expected):
    return [None if e is None else (r - e).abs().max().item() for r, e in zip(result, expected)]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("opts", sorted(OPTIONS))
@pytest.mark.parametrize("chunk_size", [None, 16])
def test_against_torch_float64(reduction, bias, opts, chunk_size):
    x, W, b, t, w = make(ignore_index=OPTIONS[opts].get("ignore_index", -100))
    b = b if bias else None
    kw = dict(kwargs_of(opts, w), reduction=reduction)
    go = torch.linspace(-1.0, 2.0, N) if reduction == "none" else torch.tensor(1.5)
    expected = grads(F.linear_cross_entropy, x, W, b, t, torch.float64, go, **kw)
    ours = grads(FT.linear_cross_entropy, x, W, b, t, torch.float32, go,
                 chunk_size=chunk_size, **kw)
    theirs = grads(F.linear_cross_entropy, x, W, b, t, torch.float32, go, **kw)
    for e_ours, e_torch, ref in zip(errors(ours, expected), errors(theirs, expected), expected):
        if ref is None:
            continue
        # no less accurate than torch's float32 (a small margin for the
        # rounding of a different summation order), and close in absolute terms
        scale = ref.abs().max().item()
        assert e_ours <= 2.0 * e_torch + 1e-6 * scale, (e_ours, e_torch)
        assert e_ours <= 1e-5 * scale + 1e-7
    if not bias:
        assert ours[3] is None


def test_fused_path_runs(monkeypatch):
    # the chunked loop ran (not a fallback to torch): count its calls
    calls = []
    run = _linear_ce.run
    monkeypatch.setattr(_linear_ce, "run", lambda *a, **k: calls.append(1) or run(*a, **k))
    x, W, b, t, w = make()
    W.requires_grad_()
    loss = FT.linear_cross_entropy(x, W, t, linear_bias=b)
    assert type(loss.grad_fn).__name__ == "LinearCrossEntropyFunctionBackward"
    loss.backward()
    assert len(calls) == 1      # forward only: backward returns the saved gradients
    loss = FT.linear_cross_entropy(x, W, t, reduction="none")
    loss.sum().backward()
    assert len(calls) == 3      # 'none': the gradients come from a second pass
    with torch.no_grad():
        FT.linear_cross_entropy(x, W, t)
    assert len(calls) == 4


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_target_ignored(reduction):
    x, W, b, t, w = make(seed=1)
    t[:] = -100
    for kw in ({}, {"weight": w, "label_smoothing": 0.1}):
        ours = grads(FT.linear_cross_entropy, x, W, b, t, torch.float32, reduction=reduction,
                     **kw)
        theirs = grads(F.linear_cross_entropy, x, W, b, t, torch.float64, reduction=reduction,
                       **kw)
        for a, e in zip(ours, theirs):
            torch.testing.assert_close(a, e, equal_nan=True, rtol=0, atol=0)
        assert torch.isnan(ours[0]).all() == (reduction == "mean")


def test_numpy_and_torch_apis_agree():
    x, W, b, t, w = make(seed=2)
    kw = dict(weight=w, label_smoothing=0.1)
    ours = grads(FT.linear_cross_entropy, x, W, b, t, torch.float32, chunk_size=16, **kw)
    crit = fastloss.LinearCrossEntropyLoss(weight=w.numpy(), label_smoothing=0.1, chunk_size=16)
    np_result = crit.loss_and_grad(x.numpy(), W.numpy(), t.numpy(), b.numpy())
    for a, e in zip(ours, np_result):
        e = torch.as_tensor(np.asarray(e, np.float64))
        # the same cross-entropy kernel on the same chunks; the GEMMs are two
        # BLAS libraries (torch's, NumPy's), so equal up to their rounding
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6 * e.abs().max().item())


def test_unbatched_input_and_options_argument():
    x, W, b, t, w = make(seed=3)
    t[0] = 7
    ours = grads(FT.linear_cross_entropy, x[0], W, b, t[0], torch.float32)
    theirs = grads(F.linear_cross_entropy, x[0], W, b, t[0], torch.float64)
    for a, e in zip(ours, theirs):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6)
    # torch's chunking options are accepted; batch_chunk_size is the chunk size
    opts = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=8)
    got = grads(FT.linear_cross_entropy, x, W, b, t, torch.float32, options=opts)
    ref = grads(F.linear_cross_entropy, x, W, b, t, torch.float64)
    for a, e in zip(got, ref):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6)


def test_module_subclasses_torch_and_matches_it():
    torch.manual_seed(0)
    ours = ft.LinearCrossEntropyLoss(H, V, bias=True, label_smoothing=0.1, chunk_size=20)
    theirs = torch.nn.LinearCrossEntropyLoss(H, V, bias=True, label_smoothing=0.1)
    assert isinstance(ours, torch.nn.LinearCrossEntropyLoss)
    theirs.load_state_dict(ours.state_dict())
    x, _, _, t, _ = make(seed=4)
    lo, lt = ours(x, t), theirs(x, t)
    lo.backward()
    lt.backward()
    torch.testing.assert_close(lo, lt, rtol=1e-5, atol=1e-6)
    for po, pt in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(po.grad, pt.grad, rtol=1e-4, atol=1e-6)
    assert type(lo.grad_fn).__name__ == "LinearCrossEntropyFunctionBackward"


def test_fallbacks_to_torch():
    x, W, b, t, w = make(seed=5)
    # float64: torch's function (its result exactly)
    x64, W64 = x.double().requires_grad_(), W.double()
    got = FT.linear_cross_entropy(x64, W64, t)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, F.linear_cross_entropy(x64, W64, t), rtol=0, atol=0)
    assert "LinearCrossEntropyFunction" not in type(got.grad_fn).__name__
    # probability targets: torch's function
    probs = torch.softmax(torch.randn(N, V), 1)
    torch.testing.assert_close(FT.linear_cross_entropy(x, W, probs),
                               F.linear_cross_entropy(x, W, probs), rtol=0, atol=0)
    # a target fastloss refuses: torch's own error
    bad = t.clone()
    bad[2] = V
    with pytest.raises((IndexError, RuntimeError), match="out of bounds|Target"):
        FT.linear_cross_entropy(x, W, bad)


def test_double_backward_uses_torchs_graph():
    x, W, b, t, w = make(n=9, h=5, c=7, seed=6)
    x.requires_grad_()
    Wr = W.clone().requires_grad_()
    results = []
    for fn in (FT.linear_cross_entropy, F.linear_cross_entropy):
        loss = fn(x, Wr, t, weight=w[:7], label_smoothing=0.1)
        gx, gW = torch.autograd.grad(loss, (x, Wr), create_graph=True)
        hx, hW = torch.autograd.grad((gx ** 2).sum() + (gW ** 2).sum(), (x, Wr))
        results.append((gx.detach(), gW.detach(), hx, hW))
    for a, e in zip(*results):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6)


def test_fastloss_thread_count_does_not_change_results():
    # fastloss's part (the chunk loop, the cross-entropy kernel) is bitwise
    # the same for any thread count; torch's GEMMs are held at one thread
    x, W, b, t, w = make(n=300, h=16, c=2001, seed=7)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = []
        for n in (1, 2, 3):
            with fastloss.threads(n):
                results.append(grads(FT.linear_cross_entropy, x, W, b, t, torch.float32,
                                     weight=w, label_smoothing=0.1, chunk_size=64))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, e in zip(other, results[0]):
            assert torch.equal(a, e)


# --------------------------------------------------------------------------
# The custom operators.

def _op_args(bias, weight, reduction, need_grad, chunk=16):
    x, W, b, t, w = make(n=21, h=6, c=13, seed=8)
    return (x.requires_grad_(need_grad), W.requires_grad_(need_grad), t,
            b.requires_grad_(need_grad) if bias else None, w if weight else None, -100,
            reduction, 0.1, chunk, need_grad)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reduction,need_grad", [("mean", True), ("sum", True),
                                                 ("none", False), ("mean", False)])
def test_opcheck(bias, reduction, need_grad):
    args = _op_args(bias, True, reduction, need_grad)
    result = torch.library.opcheck(torch.ops.fastloss.linear_cross_entropy.default, args)
    assert all(v == "SUCCESS" for v in result.values()), result
    loss, gx, gW, gb = torch.ops.fastloss.linear_cross_entropy(*args)
    assert loss.shape == ((21,) if reduction == "none" else ())
    assert gx.shape == ((21, 6) if need_grad else (0,))
    assert gb.shape == ((13,) if need_grad and bias else (0,))


def test_opcheck_backward_operator():
    x, W, b, t, w = make(n=21, h=6, c=13, seed=9)
    args = (x, W, t, b, w, torch.linspace(0, 1, 21), -100, "none", 0.0, 5)
    result = torch.library.opcheck(torch.ops.fastloss.linear_cross_entropy_backward.default,
                                   args)
    assert all(v == "SUCCESS" for v in result.values()), result


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_compile_fullgraph_equals_eager(reduction):
    x, W, b, t, w = make(seed=10)
    kw = dict(weight=w, label_smoothing=0.1, reduction=reduction, chunk_size=16)
    go = torch.linspace(-1.0, 1.0, N) if reduction == "none" else None
    torch._dynamo.reset()
    compiled = torch.compile(FT.linear_cross_entropy, backend="aot_eager", fullgraph=True)
    eager = grads(FT.linear_cross_entropy, x, W, b, t, torch.float32, go, **kw)
    traced = grads(compiled, x, W, b, t, torch.float32, go, **kw)
    for a, e in zip(traced, eager):
        # the same loop and kernels; the traced backward multiplies by the
        # upstream gradient where eager skips a 1
        torch.testing.assert_close(a, e, rtol=1e-6, atol=1e-7)


def test_compile_module_with_inductor():
    from _support.torch_util import skip_without_a_cxx_compiler

    skip_without_a_cxx_compiler()
    torch._dynamo.reset()
    torch.manual_seed(1)
    head = ft.LinearCrossEntropyLoss(H, V, bias=True)
    x, _, _, t, _ = make(seed=11)
    compiled = torch.compile(head, fullgraph=True)
    loss = compiled(x, t)
    loss.backward()
    grads_compiled = [p.grad.clone() for p in head.parameters()]
    head.zero_grad()
    eager = head(x, t)
    eager.backward()
    torch.testing.assert_close(loss, eager, rtol=1e-6, atol=1e-7)
    for a, p in zip(grads_compiled, head.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------
# A tiny language model's head trained with it.

def _train(loss_fn, steps=300, vocab=97, hidden=16, context=32, batch=8, seed=0):
    """SGD on a synthetic corpus (a random first-order Markov chain over
    `vocab` tokens): an embedding of the previous token, a tanh layer and the
    head; returns the loss of every step."""
    g = torch.Generator().manual_seed(seed)
    transition = torch.softmax(3.0 * torch.randn(vocab, vocab, generator=g), 1)
    corpus = [int(torch.randint(0, vocab, (1,), generator=g))]
    for _ in range(steps * batch * context // 4 + context + 1):
        corpus.append(int(torch.multinomial(transition[corpus[-1]], 1, generator=g)))
    corpus = torch.tensor(corpus)
    torch.manual_seed(seed)
    emb = torch.nn.Embedding(vocab, hidden)
    mix = torch.nn.Linear(hidden, hidden)
    head = torch.nn.Linear(hidden, vocab)
    params = [*emb.parameters(), *mix.parameters(), *head.parameters()]
    opt = torch.optim.SGD(params, lr=0.5)
    losses = []
    for _ in range(steps):
        starts = torch.randint(0, len(corpus) - context - 1, (batch,), generator=g)
        idx = starts[:, None] + torch.arange(context)
        inputs, targets = corpus[idx].reshape(-1), corpus[idx + 1].reshape(-1)
        targets[::11] = -100      # some padding
        hidden_states = torch.tanh(mix(emb(inputs)))
        loss = loss_fn(hidden_states, head.weight, targets, linear_bias=head.bias,
                       label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def test_training_curve_matches_torch():
    ours = _train(lambda *a, **k: FT.linear_cross_entropy(*a, chunk_size=100, **k))
    theirs = _train(F.linear_cross_entropy)
    assert ours[-20:].mean() < ours[:20].mean() - 0.5     # it learns
    np.testing.assert_allclose(ours, theirs, rtol=2e-4, atol=0)
