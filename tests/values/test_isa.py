"""Every compiled instruction-set path against the reference.

The path is picked once per process, at import, from the FASTLOSS_ISA
environment variable, so each path runs in a child process (tests/_support/isa_check.py);
the main process's own path is covered by the rest of the suite.
"""

import os
import subprocess
import sys

import pytest

import fastloss

# The child runs ``python -m _support.isa_check`` from tests/ (the helper package).
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastloss.__file__)))


def _other_isas():
    compiled = list(fastloss.build_info().get("isas", {}))
    return [name for name in compiled if name != fastloss.isa()]


@pytest.mark.parametrize(
    "isa", _other_isas() or [pytest.param(None, marks=pytest.mark.skip(reason="one ISA path only"))]
)
def test_isa_path_matches_reference(isa):
    env = dict(os.environ, FASTLOSS_ISA=isa)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run(
        [sys.executable, "-m", "_support.isa_check"],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode == 3:
        pytest.skip(f"{isa} is not available on this CPU: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert " 0 failed" in result.stdout
