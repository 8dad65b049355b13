"""torch.compile(fullgraph=True) traces fastloss.torch's losses as the
``fastloss::`` custom operators, with no graph break, and the compiled
forward and backward equal eager mode's.

Compiling is slow (seconds per graph with inductor), so the inductor tests
share their compiled functions across asserts (module-scoped fixtures), and
the per-loss coverage uses the "aot_eager" backend (dynamo + AOTAutograd,
no code generation), which runs the same custom operators.
"""

import numpy as np
import pytest
from _support.registry import (
    BCE_WITH_LOGITS,
    CROSS_ENTROPY,
    HUBER,
    L1,
    MSE,
    NLL,
    REGISTRY,
    SIGMOID_FOCAL,
    SMOOTH_L1,
    assert_grad_close,
    assert_loss_close,
)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")

from _support.torch_util import (
    as_tensors,
    functional,
    kernel_calls,
    skip_without_a_cxx_compiler,
)

import fastloss.torch as ft
import fastloss.torch.functional as FT

OPTIONS = {
    CROSS_ENTROPY: {"weight": torch.linspace(0.5, 2.0, 10), "label_smoothing": 0.1,
                    "ignore_index": 2},
    NLL: {"weight": torch.linspace(0.5, 2.0, 10), "ignore_index": 2},
    BCE_WITH_LOGITS: {"pos_weight": torch.linspace(2.0, 0.5, 10)},
    MSE: {"weight": torch.rand(16, 10, generator=torch.Generator().manual_seed(0))},
    L1: {},
    HUBER: {"delta": 0.5},
    SMOOTH_L1: {"beta": 0.3},
    SIGMOID_FOCAL: {"alpha": 0.3, "gamma": 1.5},
}
# A loss without a row here runs at its default options.


def _ops_in(graph_module):
    return {str(n.target) for n in graph_module.graph.nodes if n.op == "call_function"}


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_traced_as_the_custom_operator_and_bitwise_equal_to_eager(case, reduction,
                                                                  kernel_calls):
    torch._dynamo.reset()   # f below is a new closure each time: no recompile limit
    graphs = []
    aot_eager = torch._dynamo.lookup_backend("aot_eager")

    def recording_backend(gm, example_inputs):
        graphs.append(gm)
        return aot_eager(gm, example_inputs)

    x, t = case.make_data((16, 10), 1)
    if not case.elementwise:
        t[::4] = 2
    options = OPTIONS.get(case, {})

    def f(inp, tgt):
        return functional(case)(inp, tgt, reduction=reduction, **options)

    compiled = torch.compile(f, fullgraph=True, backend=recording_backend)
    results = []
    for fn in (compiled, f):
        xt, tt, _ = as_tensors(case, x, t, {})
        loss = fn(xt, tt)
        go = torch.full_like(loss, 0.37) if reduction == "mean" else \
            torch.linspace(-1.0, 2.0, loss.numel()).reshape(loss.shape)
        loss.backward(go)
        results.append((loss.detach(), xt.grad))
    (c_loss, c_grad), (e_loss, e_grad) = results
    assert torch.equal(c_loss, e_loss)
    assert torch.equal(c_grad, e_grad)
    assert len(graphs) == 1
    assert f"fastloss.{case.func_name}.default" in _ops_in(graphs[0]), _ops_in(graphs[0])
    assert len(kernel_calls) == 2


def test_fallback_is_traced_as_torchs_own_loss():
    # float64 under torch.compile: PyTorch's loss in the graph, no custom op.
    graphs = []

    def recording_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    x = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (8,))
    compiled = torch.compile(lambda a, b: FT.cross_entropy(a, b), fullgraph=True,
                             backend=recording_backend)
    loss = compiled(x, t)
    assert torch.equal(loss, torch.nn.functional.cross_entropy(x, t))
    assert not any("fastloss" in op for op in _ops_in(graphs[0])), _ops_in(graphs[0])


# ---------------------------------------------------------------------------
# Inductor: a small model plus fastloss losses, compiled with fullgraph=True.

class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.ReLU(),
                                       torch.nn.Linear(32, 10))
        self.ce = ft.CrossEntropyLoss(label_smoothing=0.1, weight=torch.linspace(0.5, 2, 10))
        self.bce = ft.BCEWithLogitsLoss()
        self.huber = ft.HuberLoss(delta=0.5)

    def forward(self, x, labels, onehot, values):
        logits = self.net(x)
        return (self.ce(logits, labels) + 0.5 * self.bce(logits, onehot)
                + 0.25 * self.huber(logits, values))


@pytest.fixture(scope="module")
def model_pair():
    skip_without_a_cxx_compiler()
    torch.manual_seed(0)
    eager = MLP()
    compiled_model = MLP()
    compiled_model.load_state_dict(eager.state_dict())
    return eager, compiled_model, torch.compile(compiled_model, fullgraph=True)


def _batch(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 12, generator=g)
    labels = torch.randint(0, 10, (64,), generator=g)
    onehot = torch.nn.functional.one_hot(labels, 10).float()
    values = torch.randn(64, 10, generator=g)
    return x, labels, onehot, values


def test_inductor_model_matches_eager_forward_backward_and_steps(model_pair, kernel_calls):
    eager, compiled_model, compiled = model_pair
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.1)
    opt_c = torch.optim.SGD(compiled_model.parameters(), lr=0.1)
    for step in range(3):
        batch = _batch(step)
        loss_e = eager(*batch)
        loss_c = compiled(*batch)
        assert_loss_close(loss_c.item(), loss_e.item(), rtol=2e-6)
        opt_e.zero_grad()
        opt_c.zero_grad()
        loss_e.backward()
        loss_c.backward()
        for (name, p_e), p_c in zip(eager.named_parameters(), compiled_model.parameters()):
            assert_grad_close(p_c.grad.numpy(), p_e.grad.numpy(), rtol=1e-5), name
        opt_e.step()
        opt_c.step()
    for p_e, p_c in zip(eager.parameters(), compiled_model.parameters()):
        assert_grad_close(p_c.detach().numpy(), p_e.detach().numpy(), rtol=1e-5)
    # Three fused kernels per forward, in both modes.
    assert len(kernel_calls) == 3 * 3 * 2


def test_inductor_loss_bitwise_equal_to_eager(kernel_calls):
    skip_without_a_cxx_compiler()
    x, t = CROSS_ENTROPY.make_data((64, 10), 3)

    def f(inp, tgt):
        per_sample = FT.cross_entropy(inp, tgt, reduction="none", label_smoothing=0.05)
        return per_sample, FT.cross_entropy(inp, tgt)

    compiled = torch.compile(f, fullgraph=True)
    go = torch.linspace(-1.0, 1.0, 64)
    results = []
    for fn in (compiled, f):
        xt = torch.tensor(x, requires_grad=True)
        per_sample, mean = fn(xt, torch.as_tensor(t))
        (g_none,) = torch.autograd.grad(per_sample, xt, go, retain_graph=True)
        (g_mean,) = torch.autograd.grad(mean, xt)
        results.append((per_sample.detach(), mean.detach(), g_none, g_mean))
    for c, e in zip(*results):
        assert torch.equal(c, e)
    assert len(kernel_calls) == 4
    # and these are PyTorch's numbers
    ref = torch.tensor(x, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(ref, torch.as_tensor(t))
    expected.backward()
    assert_loss_close(results[0][1].numpy(), expected.detach().numpy(), rtol=2e-5)
    assert_grad_close(results[0][3].numpy(), ref.grad.numpy(), rtol=2e-5)
    assert np.array_equal(xt.detach().numpy(), x)
