"""fastloss's threads among other libraries: defaults, threadpoolctl, PyTorch, fork.

What the process-level tests need (a fresh interpreter, a given import order,
a fork after the thread pool started) runs in a subprocess, with a timeout, so
that a hang fails the test instead of the run. The inputs are just big enough
to span several blocks, so that a kernel with two threads really runs a
parallel region (each script checks that the pool started where it matters).
"""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss
from fastloss import _threads

TIMEOUT = 120  # seconds for one subprocess; each takes a few
LINUX = sys.platform.startswith("linux")


# Subprocesses start in this folder, not the current one: `python -c` puts its
# working folder first on sys.path, and a source checkout there (CI runs from
# the repository root) would shadow the installed fastloss.
HERE = os.path.dirname(os.path.abspath(__file__))


def run_script(code, env=None, timeout=TIMEOUT):
    """Run `code` in a fresh interpreter; return the JSON it prints last."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                              cwd=HERE, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"subprocess hung (killed after {timeout} s); stderr:\n{exc.stderr}")
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Shared by the scripts: deterministic data, the fused results as hashes, and the
# number of OS threads of the process (Linux; it grows when the OpenMP pool starts).
PRELUDE = """
import hashlib, json, os, sys
import numpy as np
import fastloss

def data():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2048, 512)).astype(np.float32)
    t = rng.integers(0, 512, 2048)
    z = rng.standard_normal(1 << 20).astype(np.float32)
    y = (rng.random(1 << 20) < 0.5).astype(np.float32)
    return x, t, z, y

def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()

def fused(x, t, z, y):
    ce, gce = fastloss.CrossEntropyLoss().loss_and_grad(x, t)
    bce, gbce = fastloss.BCEWithLogitsLoss(reduction="sum").loss_and_grad(z, y)
    return [ce, bce], digest(np.float64([ce, bce]), gce, gbce)

def os_threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1
"""


# ---------------------------------------------------------------------------
# Defaults: OMP_NUM_THREADS, then the CPUs this process may use.

def test_default_follows_omp_num_threads_capped_at_available_cpus(monkeypatch):
    cpus = _threads._available_cpus()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads._default_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1000")
    assert _threads._default_num_threads() == cpus
    monkeypatch.setenv("OMP_NUM_THREADS", "1,4")  # nested levels: the first counts
    assert _threads._default_num_threads() == 1
    for junk in ("", "zero", "-3", "0"):
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert _threads._default_num_threads() == cpus
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert _threads._default_num_threads() == cpus


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity mask here")
def test_available_cpus_follow_the_affinity_mask():
    assert 1 <= _threads._available_cpus() <= len(os.sched_getaffinity(0))


def test_default_in_a_fresh_process_with_omp_num_threads():
    out = run_script("""
        import json, fastloss
        print(json.dumps(fastloss.get_num_threads()))
    """, env={"OMP_NUM_THREADS": "1"})
    assert out == 1


def _cgroup_fs(tmp_path, proc_lines, files):
    (tmp_path / "proc").mkdir()
    proc = tmp_path / "proc" / "cgroup"
    proc.write_text("\n".join(proc_lines) + "\n")
    root = tmp_path / "cg"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(proc), str(root)


def test_cgroup_v2_quota_takes_the_tightest_ancestor(tmp_path):
    proc, root = _cgroup_fs(tmp_path, ["0::/a/b"], {
        "cpu.max": "max 100000\n",
        "a/cpu.max": "150000 100000\n",      # 1.5 CPUs on the parent binds the child
        "a/b/cpu.max": "max 100000\n",
    })
    assert _threads._cgroup_cpu_quota(proc, root) == pytest.approx(1.5)


def test_cgroup_v2_unlimited_is_none(tmp_path):
    proc, root = _cgroup_fs(tmp_path, ["0::/"], {"cpu.max": "max 100000\n"})
    assert _threads._cgroup_cpu_quota(proc, root) is None


def test_cgroup_v1_quota_and_host_path_fallback(tmp_path):
    # A container that sees its host's cgroup path, with its own cgroup mounted at the root.
    proc, root = _cgroup_fs(tmp_path, ["4:memory:/docker/abc", "2:cpu,cpuacct:/docker/abc"], {
        "cpu,cpuacct/cpu.cfs_quota_us": "300000\n",
        "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    })
    assert _threads._cgroup_cpu_quota(proc, root) == pytest.approx(3.0)


def test_cgroup_v1_no_quota_and_missing_files(tmp_path):
    proc, root = _cgroup_fs(tmp_path, ["1:cpu:/"], {
        "cpu/cpu.cfs_quota_us": "-1\n",
        "cpu/cpu.cfs_period_us": "100000\n",
    })
    assert _threads._cgroup_cpu_quota(proc, root) is None
    assert _threads._cgroup_cpu_quota(str(tmp_path / "missing"), root) is None


# ---------------------------------------------------------------------------
# The OpenMP runtime, show_config and `python -m fastloss info`.

def test_openmp_runtime_is_identified():
    rt = _threads.openmp_runtime()
    if not fastloss.openmp_enabled():
        assert rt["spec"] is None and rt["library"] is None
        return
    assert rt["macro"] >= 200505 and rt["spec"]
    assert rt["library"] and os.path.exists(rt["library"])
    assert rt["name"] != "unknown"
    assert rt["max_threads"] >= 1


def test_show_config_reports_the_openmp_runtime_and_versions():
    buf = io.StringIO()
    fastloss.show_config(file=buf)
    text = buf.getvalue()
    rt = _threads.openmp_runtime()
    assert f"fastloss {fastloss.__version__}" in text
    assert f"numpy:          {np.__version__}" in text
    assert f"isa in use:     {fastloss.isa()}" in text
    assert f"threads:        {fastloss.get_num_threads()} (OpenMP limit" in text
    if fastloss.openmp_enabled():
        assert f"OpenMP {rt['spec']} (_OPENMP {rt['macro']})" in text
        assert f"openmp runtime: {rt['name']}, {rt['library']}" in text
    else:
        assert "DISABLED" in text


def test_python_m_fastloss_info():
    proc = subprocess.run([sys.executable, "-m", "fastloss", "info"], cwd=HERE,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    for key in ("fastloss ", "numpy:", "openmp:", "openmp runtime:", "threads:",
                "isa in use:", "compiler:", "compile flags:"):
        assert key in proc.stdout


# ---------------------------------------------------------------------------
# threadpoolctl.

def test_threadpoolctl_sees_fastloss_openmp_runtime():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not fastloss.openmp_enabled():
        pytest.skip("serial build: no OpenMP runtime")
    library = _threads.openmp_runtime()["library"]
    seen = [os.path.realpath(m["filepath"]) for m in threadpoolctl.threadpool_info()
            if m["user_api"] == "openmp"]
    assert library in seen


@pytest.mark.skipif(not LINUX, reason="counts OS threads in /proc")
def test_threadpool_limits_caps_fastloss_threads():
    pytest.importorskip("threadpoolctl")
    if not fastloss.openmp_enabled():
        pytest.skip("serial build: no OpenMP runtime")
    # OMP_NUM_THREADS=2: OpenMP's own limit is 2 whatever the CPU count, so that
    # without threadpoolctl the pool does start (and the check can fail).
    out = run_script(PRELUDE + """
from threadpoolctl import threadpool_limits
from fastloss import _core
x, t, z, y = data()
fastloss.set_num_threads(2)
before = os_threads()
with threadpool_limits(limits=1, user_api="openmp"):
    limited_max = _core.omp_max_threads()
    limited = fused(x, t, z, y)
    limited_threads = os_threads()
free = fused(x, t, z, y)
print(json.dumps({"before": before, "limited_max": limited_max,
                  "limited_threads": limited_threads, "after_max": _core.omp_max_threads(),
                  "free_threads": os_threads(), "same": limited[1] == free[1]}))
""", env={"OMP_NUM_THREADS": "2"})
    assert out["limited_max"] == 1
    assert out["limited_threads"] == out["before"], "threadpool_limits(1) did not stop the pool"
    assert out["after_max"] == 2
    assert out["free_threads"] > out["before"], "the pool never started: the test proves nothing"
    assert out["same"]


# ---------------------------------------------------------------------------
# PyTorch in the same process (its own OpenMP runtime, or the same one).

TORCH_BODY = """
x, t, z, y = data()
fastloss.set_num_threads(2)
if ORDER == "none":
    print(json.dumps({"fused": fused(x, t, z, y)}))
    sys.exit(0)
import torch
import torch.nn.functional as F
torch.set_num_threads(2)

def torch_fused():
    xt = torch.from_numpy(x).requires_grad_()
    zt = torch.from_numpy(z).requires_grad_()
    ce = F.cross_entropy(xt, torch.from_numpy(t))
    bce = F.binary_cross_entropy_with_logits(zt, torch.from_numpy(y), reduction="sum")
    (ce + bce).backward()
    return [ce.item(), bce.item()], xt.grad.numpy().copy(), zt.grad.numpy().copy()

results = []
for _ in range(2):  # interleaved: each library's threads run between the other's calls
    results.append(fused(x, t, z, y))
    theirs, gx, gz = torch_fused()
with fastloss.threads(1):
    results.append(fused(x, t, z, y))
_, gce = fastloss.CrossEntropyLoss().loss_and_grad(x, t)
_, gbce = fastloss.BCEWithLogitsLoss(reduction="sum").loss_and_grad(z, y)
print(json.dumps({"fused": results[0], "all": [r[1] for r in results], "torch": theirs,
                  "torch_threads": torch.get_num_threads(),
                  "grad_err": [float(np.max(np.abs(gce - gx))),
                               float(np.max(np.abs(gbce - gz)))]}))
"""


def torch_script(order):
    """fastloss and torch in one process; torch imported before fastloss for 'torch-first'."""
    head = "import torch\n" if order == "torch-first" else ""
    return head + f"ORDER = {order!r}\n" + PRELUDE + TORCH_BODY


@pytest.fixture(scope="module")
def fastloss_alone():
    pytest.importorskip("torch")
    return run_script(torch_script("none"))


@pytest.mark.parametrize("order", ["torch-first", "fastloss-first"])
def test_torch_in_the_same_process(order, fastloss_alone):
    pytest.importorskip("torch")
    out = run_script(torch_script(order))
    alone_losses, alone_digest = fastloss_alone["fused"]
    # fastloss: bitwise the same as without torch, for every call and thread count.
    assert out["all"] == [alone_digest] * 3
    assert out["fused"][0] == alone_losses
    # torch still works, with its threads, and agrees with fastloss.
    assert out["torch_threads"] == 2
    np.testing.assert_allclose(out["torch"], alone_losses, rtol=1e-5)
    assert max(out["grad_err"]) < 1e-6


# ---------------------------------------------------------------------------
# Fork after the thread pool started (multiprocessing 'fork', as DataLoader).

FORK_SCRIPT = PRELUDE + """
import multiprocessing as mp
import warnings
from fastloss import _threads

x, t, z, y = data()
fastloss.set_num_threads(2)
before = os_threads()
parent = fused(x, t, z, y)
pool_started = os_threads() > before

def child(q):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        default = fastloss.get_num_threads()
        fastloss.set_num_threads(2)  # asks for threads; must not hang
        res = fused(x, t, z, y)
    q.put({"default": default, "after_set": fastloss.get_num_threads(), "fused": res,
           "warned": any("forked" in str(w.message) for w in caught)})

ctx = mp.get_context("fork")
q = ctx.Queue()
p = ctx.Process(target=child, args=(q,))
p.start()
p.join(60)
hung = p.is_alive()
if hung:
    p.kill()
    p.join()
got = None if hung else q.get(timeout=10)
again = fused(x, t, z, y)  # the parent's pool still works
print(json.dumps({"hung": hung, "exitcode": p.exitcode, "child": got, "parent": parent,
                  "again": again, "pool_started": pool_started,
                  "unsafe": _threads._FORK_UNSAFE}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_fork_after_the_pool_started_does_not_hang():
    out = run_script(FORK_SCRIPT, env={"OMP_NUM_THREADS": "2"})
    assert not out["hung"], "the forked child hung in a fastloss kernel"
    assert out["exitcode"] == 0
    child = out["child"]
    assert child["fused"] == out["parent"]  # the same losses, the same gradient bits
    assert out["again"] == out["parent"]
    if out["unsafe"]:  # GNU libgomp: the child runs serially and says so when asked for more
        assert child["default"] == 1 and child["after_set"] == 1 and child["warned"]
    if LINUX and fastloss.openmp_enabled():
        assert out["pool_started"], "the pool never started: the test proves nothing"
