"""The benchmark engine (fastloss.bench) and its command lines.

The pure parts (shape parsing, formatting, the plan, the tables, the timing
loop's bookkeeping) on made-up numbers, and two small end-to-end runs in a
child process: ``fastloss bench`` and tools/make_benchmarks_md.py. Nothing
here asserts a speed.
"""

import importlib.util
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastloss
from fastloss import bench
from fastloss.bench import engine

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # tests/tools/ -> the repository
TOOL = os.path.join(ROOT, "tools", "make_benchmarks_md.py")


# ---------------------------------------------------------------------------
# Names, shapes, formatting


@pytest.mark.parametrize(("text", "shape", "label"), [
    ("4096x1000", (4096, 1000), "4096x1000"),
    (" 64X10 ", (64, 10), "64x10"),
    ("2^20", (2**20,), "2^20"),
    ("2**10", (1024,), "2^10"),
    ("1048576", (2**20,), "2^20"),
    ("1000", (1000,), "1000"),
    ("2^4x3", (16, 3), "16x3"),
])
def test_parse_shape_and_label(text, shape, label):
    assert bench.parse_shape(text) == shape
    assert bench.shape_label(shape) == label
    assert bench.parse_shape(label) == shape


def test_shape_id_has_no_caret():
    assert bench.shape_id((2**20,)) == "2pow20"
    assert bench.shape_id((4096, 1000)) == "4096x1000"


@pytest.mark.parametrize(("text", "match"), [
    ("abc", "bad shape 'abc': write NxC"),
    ("4096x", "bad shape '4096x': write NxC"),
    ("0x5", "bad shape '0x5': one or two positive sizes"),
    ("2x3x4", "bad shape '2x3x4': one or two positive sizes"),
    ("-3", "bad shape '-3': one or two positive sizes"),
])
def test_parse_shape_errors(text, match):
    with pytest.raises(ValueError, match=match):
        bench.parse_shape(text)


@pytest.mark.parametrize(("name", "canonical"), [
    ("ce", "cross_entropy"), ("Cross_Entropy", "cross_entropy"), ("bce", "bce_with_logits"),
    ("binary_cross_entropy_with_logits", "bce_with_logits"), ("mse_loss", "mse"),
    (" mse ", "mse"),
])
def test_canonical_loss(name, canonical):
    assert bench.canonical_loss(name) == canonical


def test_canonical_loss_unknown():
    with pytest.raises(ValueError, match="unknown loss 'ctc'; choose from cross_entropy"):
        bench.canonical_loss("ctc")


def test_canonical_losses_all():
    assert bench.canonical_losses(["all"]) == bench.LOSSES
    assert bench.canonical_losses(["ce", "nll", "cross_entropy"]) == ("cross_entropy",
                                                                       "nll_loss")
    assert set(bench.DEFAULT_LOSSES) == {"cross_entropy", "bce_with_logits", "mse"}
    assert bench.Config.make(losses=["all"]).losses == bench.LOSSES


def test_every_loss_spec_is_complete():
    """Each entry names things that exist: the fastloss class, the reference pair."""
    assert set(bench.LOSSES) == set(bench.SPECS)
    for spec in bench.SPECS.values():
        assert callable(getattr(fastloss, spec.fastloss_class))
        for name in spec.reference:
            assert callable(getattr(fastloss.reference, name))
        assert spec.floor in ("copy", "add")
        assert all(kind in bench.ARRAY_KINDS for kind, _ in spec.arrays)
        assert spec.arrays[0][1] and spec.n_grads >= 1
        assert spec.floor == "copy" or spec.n_grads == 1  # 'add' reads one input and a target
        assert all(len(s) == spec.ndim for s in spec.full_shapes + spec.quick_shapes)
        assert spec.headline == (spec.name in bench.DEFAULT_LOSSES)


def test_shapes_for_splits_by_kind():
    got = bench.shapes_for(["cross_entropy", "mse"], [(8, 4), (16,), (2, 2)])
    assert got == {"cross_entropy": [(8, 4), (2, 2)], "mse": [(16,)]}


@pytest.mark.parametrize(("seconds", "text"), [
    (2.0, "2 s"), (1.5e-3, "1.5 ms"), (123e-6, "123 us"), (12.34e-6, "12.3 us"),
    (5e-10, "0.5 ns"), (None, "-"), (float("inf"), "-"), (float("nan"), "-"),
])
def test_format_time(seconds, text):
    assert bench.format_time(seconds) == text


@pytest.mark.parametrize(("n", "text"), [
    (None, "-"), (512, "512 B"), (2048, "2.0 KiB"), (3 * 2**20 // 2, "1.5 MiB"),
    (2**31, "2.0 GiB"),
])
def test_format_bytes(n, text):
    assert bench.format_bytes(n) == text


@pytest.mark.parametrize(("x", "text"), [(0.523, "0.52x"), (3.44, "3.4x"), (140.2, "140x")])
def test_format_ratio(x, text):
    assert bench.format_ratio(x) == text


# ---------------------------------------------------------------------------
# Config and plan


def test_config_defaults():
    cfg = bench.Config.make()
    assert cfg.losses == bench.DEFAULT_LOSSES
    assert cfg.shapes == {loss: bench.FULL_SHAPES[loss] for loss in bench.DEFAULT_LOSSES}
    assert cfg.threads == bench.DEFAULT_THREADS
    assert cfg.providers == bench.PROVIDERS
    assert cfg.isas == (fastloss.isa(),)
    assert (cfg.repeats, cfg.min_time) == (bench.FULL_TIMING["repeats"],
                                           bench.FULL_TIMING["min_time"])
    quick = bench.Config.make(quick=True)
    assert quick.shapes == {loss: bench.QUICK_SHAPES[loss] for loss in bench.DEFAULT_LOSSES}
    assert "torch_compile" not in quick.providers  # compiling costs seconds per case
    assert bench.Config.make(quick=True, providers=["torch_compile"]).providers == (
        "fastloss", "torch_compile", "floor")


def test_config_always_has_fastloss_and_floor():
    cfg = bench.Config.make(providers=["reference", "reference"])
    assert cfg.providers == ("fastloss", "reference", "floor")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"modes": ["sideways"]}, "unknown mode 'sideways'; choose from forward, backward, fused"),
    ({"providers": ["tensorflow"]}, "unknown provider 'tensorflow'; choose from fastloss"),
    ({"threads": [0]}, "thread counts must be >= 1"),
    ({"losses": ["ctc"]}, "unknown loss 'ctc'"),
    ({"isas": ["sse2"]}, "unknown ISA path 'sse2'; choose from baseline, avx2, avx512, "
                         "default, all"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench.Config.make(**kwargs)


def test_resolve_isas():
    available = bench.available_isas()
    assert "baseline" in available
    assert bench.resolve_isas(None) == (fastloss.isa(),)
    assert bench.resolve_isas(["default", "default"]) == (fastloss.isa(),)
    assert bench.resolve_isas(["all"]) == tuple(available)
    assert bench.resolve_isas(["baseline", "default"])[0] == "baseline"


def test_resolve_isas_unavailable(monkeypatch):
    monkeypatch.setattr(engine, "available_isas", lambda: ["baseline"])
    with pytest.raises(ValueError, match="ISA path 'avx2' is not available here "
                                         r"\(this build and CPU run baseline\)"):
        bench.resolve_isas(["avx2"])


def test_isa_path_switches_and_restores():
    before = fastloss.isa()
    for name in bench.available_isas():
        with bench.isa_path(name):
            assert fastloss.isa() == name
        assert fastloss.isa() == before
    with bench.isa_path(None):
        assert fastloss.isa() == before


def test_plan_order():
    isas = ("baseline", fastloss.isa()) if fastloss.isa() != "baseline" else ("baseline",)
    cfg = bench.Config.make(losses=["ce"], shapes=[(8, 4), (16,)], modes=["forward", "fused"],
                            threads=[1, 2], isas=list(isas),
                            providers=["fastloss", "fastloss_alloc", "reference"])
    labels = [s.label() for s in bench.plan(cfg)]
    expected = ["cross_entropy 8x4 floor"]
    for mode in ("forward", "fused"):
        for n in (1, 2):
            expected += [f"cross_entropy 8x4 {mode} fastloss[{i}] {n}t" for i in isas]
            if mode == "fused":  # the forward pass allocates no gradient
                expected += [f"cross_entropy 8x4 {mode} fastloss_alloc[{i}] {n}t" for i in isas]
            if n == 1:  # the reference is timed once, for every thread count
                expected.append(f"cross_entropy 8x4 {mode} reference")
    assert labels == expected


# ---------------------------------------------------------------------------
# Report and tables, on made-up numbers


def _report(isas):
    cfg = bench.Config(losses=("cross_entropy",), shapes={"cross_entropy": [(100, 10)]},
                       modes=("fused",), threads=(1, 2),
                       providers=("fastloss", "fastloss_alloc", "floor", "torch", "jax"),
                       repeats=1, min_time=0.0, isas=isas)
    R = bench.Result
    shape = (100, 10)
    results = [R("cross_entropy", shape, None, None, "floor", median_s=1e-6),
               R("cross_entropy", shape, "fused", None, "jax", median_s=40e-6)]
    for n in (1, 2):
        for k, isa in enumerate(isas):
            results += [R("cross_entropy", shape, "fused", n, "fastloss", isa,
                          median_s=(2 + k) * 1e-6 / n),
                        R("cross_entropy", shape, "fused", n, "fastloss_alloc", isa,
                          median_s=(3 + k) * 1e-6 / n)]
        results.append(R("cross_entropy", shape, "fused", n, "torch", median_s=20e-6 / n))
    return bench.Report(cfg, {}, results)


def test_report_time_lookups():
    rep = _report(("avx512", "avx2"))
    s = (100, 10)
    assert rep.time("cross_entropy", s, "fused", 2, "fastloss") == 1e-6      # first ISA
    assert rep.time("cross_entropy", s, "fused", 2, "fastloss", "avx2") == 1.5e-6
    assert rep.time("cross_entropy", s, "fused", 2, "jax") == 40e-6         # thread-agnostic
    assert rep.time("cross_entropy", s, "fused", 1, "floor") == 1e-6        # the floor: any mode
    assert rep.time("cross_entropy", s, "forward", 1, "fastloss") is None
    assert rep.time("mse", (4,), "fused", 1, "fastloss") is None


def test_table_rows_one_isa():
    header, rows = _report(("avx512",)).table_rows("cross_entropy", (100, 10))
    assert header == ["mode", "threads", "fastloss", "floor", "/floor", "out=None",
                      "torch (speed-up)", "jax (speed-up)"]
    assert rows == [
        ["fused", "1", "2 us", "1 us", "2.00x", "3 us", "20 us (10.0x)", "40 us (20.0x)"],
        ["fused", "2", "1 us", "1 us", "1.00x", "1.5 us", "10 us (10.0x)", "40 us (40.0x)"],
    ]


def test_table_rows_two_isas_and_formats():
    rep = _report(("avx512", "avx2"))
    header, rows = rep.table_rows("cross_entropy", (100, 10))
    assert header[:3] == ["mode", "threads", "isa"]
    assert [r[:4] for r in rows] == [
        ["fused", "1", "avx512", "2 us"], ["fused", "1", "avx2", "3 us"],
        ["fused", "2", "avx512", "1 us"], ["fused", "2", "avx2", "1.5 us"]]
    # the peers are the same in both ISA rows; the speed-up is over that row's fastloss
    assert [r[-2] for r in rows] == ["20 us (10.0x)", "20 us (6.7x)", "10 us (10.0x)",
                                     "10 us (6.7x)"]
    text = rep.format_text("cross_entropy", (100, 10)).splitlines()
    assert text[0] == ("cross_entropy 100x10: float32, 1,000 elements; floor = "
                       "np.copyto(grad, input): 1 us, 8.0 GB/s; fastloss on ISA paths "
                       "avx512, avx2 (column isa)")
    assert text[1].split() == ["mode", "threads", "isa", "fastloss", "floor", "/floor",
                               "out=None", "torch", "(speed-up)", "jax", "(speed-up)"]
    assert text[3].startswith("fused  1        avx512      2 us   1 us   2.00x")
    md = rep.format_markdown("cross_entropy", (100, 10)).splitlines()
    assert md[0] == "### cross_entropy 100x10"
    assert md[2].startswith("Float32, 1,000 elements; floor = `np.copyto(grad, input)`")
    assert md[2].endswith("fastloss on ISA paths `avx512`, `avx2` (column isa).")
    assert md[5] == "|---|---|---|" + "---:|" * 6
    assert md[6] == ("| fused | 1 | avx512 | 2 us | 1 us | 2.00x | 3 us | 20 us (10.0x) | "
                     "40 us (20.0x) |")


def test_report_json_round_trip():
    rep = _report(("avx2",))
    data = json.loads(json.dumps(rep.to_dict()))
    assert data["schema"] == "fastloss-bench/2"
    assert data["config"]["isas"] == ["avx2"]
    fused = [r for r in data["results"] if r["provider"] == "fastloss"]
    assert [(r["threads"], r["isa"], r["median_s"]) for r in fused] == [
        (1, "avx2", 2e-6), (2, "avx2", 1e-6)]


# ---------------------------------------------------------------------------
# Timing, memory, progress, environment


def test_measure_counts_calls():
    calls = []
    timing = bench.measure(lambda: calls.append(1), repeats=3, min_time=0.0)
    # one warm-up call, then 3 loops of `number` calls each
    assert len(calls) == 1 + 3 * timing.number
    assert len(timing.samples_s) == 3
    assert timing.median_s == sorted(timing.samples_s)[1]


def test_measure_calibrates_to_min_time():
    timing = bench.measure(lambda: None, repeats=2, min_time=0.002)
    assert timing.number > 1
    assert all(s * timing.number > 0 for s in timing.samples_s)


def test_traced_peak():
    n = 1 << 20
    peak = bench.traced_peak(lambda: np.ones(n, np.uint8))
    assert n <= peak < n + 64 * 1024
    assert bench.traced_peak(lambda: None) < 4096


def test_progress_lines():
    f = io.StringIO()
    p = bench.Progress(2, f)
    p.step("a")
    p.step("b")
    p.clear()
    assert f.getvalue() == "[1/2] a\n[2/2] b\n"
    g = io.StringIO()
    bench.Progress(2, g, enabled=False).step("a")
    assert g.getvalue() == ""


def test_environment():
    env = bench.environment(("fastloss", "floor"))
    assert env["fastloss"]["isa"] == fastloss.isa()
    assert env["fastloss"]["isas_available"] == bench.available_isas()
    assert set(env["cpu_vector_flags"]) <= {"sse4_2", "avx", "avx2", "fma", "avx512f",
                                            "avx512bw", "avx512vl", "avx512dq"}
    assert env["torch"] is None and env["jax"] is None  # not asked for
    assert isinstance(env["cpu_model"], str) and env["cpu_model"]
    load = env["load_average"]
    assert load is None or (len(load) == 3 and min(load) >= 0)
    assert bench.format_load([0.5, 1.25, 2]) == "0.50/1.25/2.00"
    assert bench.format_load(None) == "unknown"


# ---------------------------------------------------------------------------
# Runners


def test_workload_targets():
    ce = bench.Workload("cross_entropy", (50, 7))
    assert ce.target.dtype == np.int64 and 0 <= ce.target.min() and ce.target.max() < 7
    bce = bench.Workload("bce_with_logits", (64,))
    assert bce.target.dtype == np.float32 and 0 <= bce.target.min() and bce.target.max() < 1
    assert bce.buf.shape == bce.x.shape


def _as_list(grads):
    return list(grads) if isinstance(grads, (list, tuple)) else [grads]


@pytest.mark.parametrize("loss", bench.LOSSES)
def test_fastloss_and_reference_runners_agree(loss):
    spec = bench.SPECS[loss]
    w = bench.Workload(loss, (33, 5) if spec.ndim == 2 else (200,))
    isa = bench.available_isas()[0]
    fast = bench.make_runner("fastloss", w, "fused", 1, isa)
    with fast.context():
        assert fastloss.isa() == isa
        value, grads = fast.fn()
    ref_value, ref_grads = bench.make_runner("reference", w, "fused", 1).fn()
    assert_allclose(value, ref_value, rtol=1e-5)
    assert len(_as_list(grads)) == spec.n_grads
    for got, want in zip(_as_list(grads), _as_list(ref_grads), strict=True):
        assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    assert all(g is b for g, b in zip(_as_list(grads), w.bufs, strict=True))
    alloc = bench.make_runner("fastloss_alloc", w, "backward", 1).fn()
    for got, buf, want in zip(_as_list(alloc), w.bufs, _as_list(ref_grads), strict=True):
        assert got is not buf
        assert_allclose(got, want, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(("provider", "shape", "threads", "modes"), [
    ("torch", (16, 5), 1, bench.MODES),
    ("torch_compile", (16, 5), 1, ("fused",)),
    # a backward compiled for 2 threads at this shape has donated buffers, which
    # a retained graph's second backward refuses unless compiled without them
    ("torch_compile", (512, 1000), 2, ("backward",)),
])
def test_torch_runners_compute_the_loss(provider, shape, threads, modes):
    """The peers' runners time the same loss: torch's values match the reference,
    call after call (torch_compile: two modes only, compiling takes seconds)."""
    pytest.importorskip("torch")
    if provider == "torch_compile":
        from _support.torch_util import skip_without_a_cxx_compiler
        skip_without_a_cxx_compiler()
    w = bench.Workload("cross_entropy", shape)
    ref_value = fastloss.reference.cross_entropy(w.x, w.target)
    ref_grad = fastloss.reference.cross_entropy_grad(w.x, w.target)
    for mode in modes:
        runner = bench.make_runner(provider, w, mode, threads)
        with runner.context():
            runner.fn()
            got = runner.fn()
        if mode == "forward":
            assert_allclose(float(got), ref_value, rtol=1e-5)
        elif mode == "backward":
            assert_allclose(got[0].numpy(), ref_grad, rtol=1e-4, atol=1e-7)
        else:
            assert_allclose(float(got[0]), ref_value, rtol=1e-5)
            assert_allclose(got[1].numpy(), ref_grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("loss", [n for n in bench.LOSSES if n not in bench.DEFAULT_LOSSES])
def test_torch_runner_and_floor_of_more_losses(loss):
    """The losses beyond the headline three: torch's fused runner computes the
    reference's loss and every gradient with the spec's options; the floor
    writes each gradient buffer."""
    pytest.importorskip("torch")
    spec = bench.SPECS[loss]
    w = bench.Workload(loss, (17, 6) if spec.ndim == 2 else (150,))
    assert len(w.args) == len(spec.arrays) and len(w.bufs) == spec.n_grads
    ref_value, ref_grads = bench.make_runner("reference", w, "fused", 1).fn()
    value, grads = bench.make_runner("torch", w, "fused", 1).fn()
    assert_allclose(value.item(), ref_value, rtol=1e-5)
    for got, want in zip(_as_list(grads), _as_list(ref_grads), strict=True):
        assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-7)
    for buf in w.bufs:
        buf.fill(np.nan)
    bench.make_runner("floor", w, "fused", 1).fn()
    assert all(np.isfinite(buf).all() for buf in w.bufs)


def test_unavailable():
    assert bench.unavailable_reason("jax", "nll_loss", (8, 4), "fused") == (
        "no JAX form of nll_loss in the benchmarks")
    assert bench.unavailable_reason("sklearn", "kl_div", (8,), "fused") == (
        "scikit-learn has no kl_div")
    w = bench.Workload("mse", (8,))
    with pytest.raises(bench.Unavailable, match="the forward pass allocates no gradient"):
        bench.make_runner("fastloss_alloc", w, "forward", 1)
    assert bench.unavailable_reason("nope", "mse", (8,), "fused") == "unknown provider 'nope'"
    assert bench.unavailable_reason("reference", "mse", (2**23,), "fused") == (
        "the float64 reference takes seconds above 2^22 elements")


# ---------------------------------------------------------------------------
# End to end, in a child process (the installed package, not the source folder)


def _run(args, cwd, timeout=120):
    return subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_fastloss_bench_command(tmp_path):
    out = tmp_path / "ce.json"
    result = _run(["-m", "fastloss", "bench", "--quick", "--losses", "ce", "--shapes", "64x10",
                   "--threads", "1", "--repeats", "1", "--isa", "all", "--providers",
                   "fastloss,reference", "--json", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cross_entropy 64x10: float32, 640 elements" in result.stdout
    assert "load average" in result.stdout
    data = json.loads(out.read_text())
    assert data["config"]["isas"] == bench.available_isas()
    ran = {(r["provider"], r["mode"], r["isa"]) for r in data["results"] if r["median_s"]}
    for isa in bench.available_isas():
        for mode in bench.MODES:
            assert ("fastloss", mode, isa) in ran
    assert ("reference", "fused", None) in ran
    assert data["environment"]["load_average_after"] is None or len(
        data["environment"]["load_average_after"]) == 3


@pytest.mark.parametrize(("args", "match"), [
    (["--isa", "sse9"], "fastloss bench: unknown ISA path 'sse9'"),
    (["--losses", "ctc"], "unknown loss 'ctc'"),
    (["--shapes", "0x3"], "bad shape '0x3'"),
])
def test_fastloss_bench_command_errors(tmp_path, args, match):
    result = _run(["-m", "fastloss", "bench", "--quick"] + args, tmp_path)
    assert result.returncode == 2
    assert match in result.stderr


@pytest.mark.skipif(not os.path.exists(TOOL), reason="the repository's tools/ is not beside tests/")
def test_make_benchmarks_md_quick(tmp_path):
    md = tmp_path / "bm.md"
    result = _run([TOOL, "--quick", "--losses", "ce", "--shapes", "64x10", "--threads", "1",
                   "--repeats", "1", "--min-time", "0.001", "--providers", "fastloss",
                   "--no-memory", "--output", str(md)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    text = md.read_text()
    isas = bench.resolve_isas(["default"] + (["avx2"] if "avx2" in bench.available_isas()
                                             else []))
    assert "| ISA paths | " + ", ".join(
        f"`{i}`" + (" (default)" if k == 0 else "") for k, i in enumerate(isas)) in text
    assert "| load average | " in text and " before, " in text
    assert "### cross_entropy 64x10" in text
    for isa in isas:  # the targets are evaluated on every path
        assert f"| {isa}: cross_entropy 64x10 fused, 1t: whole call < 5 us |" in text


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_benchmarks_md", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not os.path.exists(TOOL), reason="the repository's tools/ is not beside tests/")
def test_targets_per_isa():
    tool = _load_tool()
    rows = {name: (measured, status) for name, measured, status
            in tool.evaluate_targets(_report(("avx512", "avx2")))}
    assert rows["avx2: 1 -> 2 thread speed-up, shapes >= 2^20 elements"] == (
        "no large shape in this run", "info")
    assert rows["avx2: cross_entropy: fused faster than jax at every shape and thread count"] \
        == ("faster in 2/2; smallest margin 13.33x at 100x10 1t", "met")
    assert rows["avx512: cross_entropy 2048x32768 fused, 1t: fastloss / floor <= 1.5x"] == (
        "2048x32768 not in this run", "not measured")


@pytest.mark.skipif(not os.path.exists(TOOL), reason="the repository's tools/ is not beside tests/")
def test_more_losses_run_config():
    """BENCHMARKS.md's second run: the losses beyond the headline ones, fused only,
    against the floor and torch, with the main run's threads, ISA paths and timing."""
    tool = _load_tool()
    main = bench.Config.make(threads=[1], repeats=2, min_time=0.01, isas=["default"],
                             providers=["fastloss", "torch", "jax", "sklearn"])
    more = tool.more_losses_config(main)
    assert set(more.losses) == set(bench.LOSSES) - set(bench.DEFAULT_LOSSES)
    assert more.modes == ("fused",) and more.threads == (1,) and more.isas == main.isas
    assert more.providers == ("fastloss", "torch", "floor")
    assert (more.repeats, more.min_time, more.memory) == (2, 0.01, False)
