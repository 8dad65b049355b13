"""Short-row cross-entropy (C <= 16) on every compiled instruction-set path.

The tile strategy has one specialisation per C and, on the SIMD paths, moves
8 rows at a time by transposes, with the remainder rows, the tile's last
rows and in-place gradients on separate code paths; tests/_support/short_rows_check.py
checks each C from 1 to 16 with every option, in a child process per path
(the path is picked once per process, from FASTLOSS_ISA).
"""

import os
import subprocess
import sys

import pytest

import fastloss

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastloss.__file__)))


@pytest.mark.parametrize("isa", list(fastloss.build_info().get("isas", {})) or [fastloss.isa()])
def test_short_rows_every_c_every_option(isa):
    env = dict(os.environ, FASTLOSS_ISA=isa)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run(
        [sys.executable, "-m", "_support.short_rows_check"],
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
