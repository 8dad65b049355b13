"""The repaired wheel, installed where there is no compiler, passes the test suite.

Runs when FASTLOSS_WHEEL_TEST=1 (.ci/run sets it; it takes a few minutes):

1. tools/build_wheels.sh, into a temporary folder: the sdist, the wheel built
   from the sdist, and ``auditwheel repair`` (libgomp bundled).
2. The wheel: a manylinux tag, libgomp in fastloss.libs/, the licences, no
   generated C.
3. A fresh virtual environment without setuptools, whose PATH is its own bin/
   only (no gcc, no cc) and with CC/CXX pointing nowhere; the wheel is installed
   with ``--only-binary :all:``, so pip could not build anything even if it tried.
   PyTorch is installed too when the running environment has it, so that the
   torch tests run against the bundled runtime.
4. fastloss is imported there from site-packages, with OpenMP and the bundled
   libgomp; then the test suite, copied away from the source tree, runs against
   that install. Inside that run, ``test_imported_from_the_install`` checks where
   fastloss came from.

Everything lives in one temporary folder, removed at the end.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENABLED = os.environ.get("FASTLOSS_WHEEL_TEST") == "1"
INSTALLED_AT = os.environ.get("FASTLOSS_INSTALLED_AT")  # set for the run inside the venv

needs_wheel_test = pytest.mark.skipif(
    not ENABLED or not sys.platform.startswith("linux"),
    reason="builds and installs the wheel (minutes): set FASTLOSS_WHEEL_TEST=1 on Linux "
           "(.ci/run does)")


def _run(cmd, timeout, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
        f"--- stdout (end)\n{proc.stdout[-6000:]}\n--- stderr (end)\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="module")
def scratch():
    path = tempfile.mkdtemp(prefix="fastloss-wheel-test-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def built(scratch):
    out = os.path.join(scratch, "dist")
    proc = _run(["bash", os.path.join(ROOT, "tools", "build_wheels.sh"), out], timeout=900,
                env={**os.environ, "PYTHON": sys.executable})
    tag = re.search(r"^manylinux tag reached: (\S+)$", proc.stdout, re.M)
    assert tag, proc.stdout[-3000:]
    wheels = [f for f in os.listdir(out) if f.endswith(".whl")]
    sdists = [f for f in os.listdir(out) if f.endswith(".tar.gz")]
    assert len(wheels) == 1 and len(sdists) == 1, os.listdir(out)
    print(f"\nwheel: {wheels[0]} (manylinux tag reached: {tag.group(1)})")
    return {"wheel": os.path.join(out, wheels[0]), "sdist": os.path.join(out, sdists[0]),
            "tag": tag.group(1)}


def _clean_env(venv):
    """The environment of the no-compiler venv: its bin/ alone on PATH, no compiler."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "FASTLOSS_", "VIRTUAL_ENV", "CONDA"))}
    env.update(PATH=os.path.join(venv, "bin"), CC="/nonexistent/cc", CXX="/nonexistent/c++",
               VIRTUAL_ENV=venv, PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.fixture(scope="module")
def venv(scratch, built):
    path = os.path.join(scratch, "venv")
    _run([sys.executable, "-m", "venv", path], timeout=300)
    py = os.path.join(path, "bin", "python")
    env = _clean_env(path)
    reqs = [built["wheel"] + "[test]"]
    if importlib.util.find_spec("torch") is not None:
        reqs.append(f"torch=={metadata.version('torch')}")
    _run([py, "-m", "pip", "install", "--quiet", "--only-binary", ":all:", *reqs],
         timeout=900, env=env)
    # No build tools: setuptools (which Python 3.11's venv seeds, and which torch
    # declares but does not import) and wheel go.
    _run([py, "-m", "pip", "uninstall", "--quiet", "-y", "setuptools", "wheel"], timeout=300,
         env=env)
    return {"path": path, "python": py, "env": env}


@needs_wheel_test
def test_sdist_holds_the_sources_not_the_generated_c(built):
    import tarfile

    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for need in ("fastloss/_core.pyx", "src/fastloss.h", "src/runtime.c", "LICENSE",
                 "LICENSES/bundled-openmp-runtimes.txt", "CHANGELOG.md", "tests/conftest.py",
                 "tests/_support/registry.py", "tests/_support/loss_data.py"):
        assert need in names
    assert "fastloss/_core.c" not in names
    assert not [n for n in names if n.endswith((".so", ".o"))]


@needs_wheel_test
def test_wheel_is_manylinux_with_openmp_and_licences(built):
    assert built["tag"].startswith("manylinux")
    assert built["wheel"].endswith(f"-{built['tag']}.whl")
    with zipfile.ZipFile(built["wheel"]) as whl:
        names = whl.namelist()
    assert [n for n in names if re.match(r"fastloss\.libs/libgomp-[0-9a-f]+\.so", n)], names
    licences = [n for n in names if ".dist-info/licenses/" in n]
    for need in ("LICENSE", "LICENSES/bundled-openmp-runtimes.txt", "LICENSES/GPL-3.0.txt"):
        assert any(n.endswith("/licenses/" + need) for n in licences), licences
    assert "fastloss/_core.c" not in names


@needs_wheel_test
def test_installed_wheel_without_a_compiler(venv):
    probe = r"""
import importlib.util, json, os, shutil, sys
from importlib import metadata
import fastloss
from fastloss import _threads
print(json.dumps({
    "gcc": shutil.which("gcc"), "cc": shutil.which("cc"), "cxx": shutil.which("c++"),
    "setuptools": importlib.util.find_spec("setuptools") is not None,
    "cython": importlib.util.find_spec("Cython") is not None,
    "file": fastloss.__file__, "prefix": sys.prefix,
    "openmp": fastloss.openmp_enabled(), "runtime": _threads.openmp_runtime(),
    "version": fastloss.__version__, "dist_version": metadata.version("fastloss"),
}))
"""
    proc = _run([venv["python"], "-c", probe], timeout=300, env=venv["env"],
                cwd=os.path.dirname(venv["path"]))
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["gcc"] is None and info["cc"] is None and info["cxx"] is None
    assert not info["setuptools"] and not info["cython"]
    assert info["file"].startswith(os.path.realpath(venv["path"])) or \
        info["file"].startswith(venv["path"])
    assert "site-packages" in info["file"]
    assert info["openmp"] is True
    assert re.search(r"/fastloss\.libs/libgomp-[0-9a-f]+\.so", info["runtime"]["library"])
    assert info["version"] == info["dist_version"]


@needs_wheel_test
def test_suite_passes_against_the_installed_wheel(venv, scratch):
    # The tests, away from the source tree: nothing but the install provides fastloss.
    run_dir = os.path.join(scratch, "run")
    shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(run_dir, "tests"),
                    ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    # tests/tools/test_demo.py runs the scripts in examples/ (the wheel does not ship them)
    shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(run_dir, "examples"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), run_dir)  # the pytest settings
    env = dict(venv["env"], FASTLOSS_INSTALLED_AT=venv["path"])
    proc = subprocess.run([venv["python"], "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests"], cwd=run_dir, env=env, capture_output=True, text=True,
                          timeout=1800)
    tail = proc.stdout[-8000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    summary = proc.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    # "\d+ failed" and not the bare word: "3 xfailed" is a pass.
    assert passed and int(passed.group(1)) > 100 and not re.search(
        r"\d+ (failed|errors?)\b", summary), tail
    print(f"\nsuite against the installed wheel: {summary}")


@pytest.mark.installed_only  # deselected (not skipped) outside that run: tests/conftest.py
def test_imported_from_the_install():
    import fastloss
    from fastloss import _threads

    assert os.path.realpath(fastloss.__file__).startswith(os.path.realpath(INSTALLED_AT))
    library = _threads.openmp_runtime()["library"] or ""
    assert re.search(r"/fastloss\.libs/libgomp-[0-9a-f]+\.so", library), library
