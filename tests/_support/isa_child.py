"""Checks on one instruction-set path, in a child process.

fastloss picks its ISA path once per process (``FASTLOSS_ISA``), so a test
that covers every compiled path runs its checks in one child process per
path:

* the test calls :func:`run_on_isa` with the name of a module of this
  package, which runs ``python -m _support.<module>`` from tests/ with
  ``FASTLOSS_ISA=<isa>``, skips when the CPU lacks that path (exit code 3)
  and asserts that every check passed;
* the module's ``main()`` returns :func:`run_jobs` of its checks, which
  refuses to run on another path than the one asked for, runs every check
  (reporting each failure with its traceback on stderr) and prints
  ``N passed, M failed``.
"""

import os
import subprocess
import sys
import traceback

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRONG_ISA = 3   # the exit code of a child whose ISA path is not the one asked for


def child_env(**extra):
    """The environment of a child process run from tests/: it imports the
    fastloss this process imported (its folder first on PYTHONPATH)."""
    import fastloss

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(fastloss.__file__)))
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    return env


def run_on_isa(module, isa, timeout=300):
    """Run ``_support.<module>`` on ISA path `isa`; skip or assert."""
    import pytest

    result = subprocess.run([sys.executable, "-m", f"_support.{module}"], cwd=TESTS,
                            env=child_env(FASTLOSS_ISA=isa), capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode == WRONG_ISA:
        pytest.skip(f"{isa} is not available on this CPU: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert " 0 failed" in result.stdout


def run_jobs(jobs, traceback_limit=1):
    """Run `jobs`, pairs (function, args); the child's exit code."""
    import fastloss

    wanted = os.environ["FASTLOSS_ISA"]
    if fastloss.isa() != wanted:
        print(f"isa in use is {fastloss.isa()!r}, not {wanted!r}", file=sys.stderr)
        return WRONG_ISA
    failures = 0
    for fn, args in jobs:
        try:
            fn(*args)
        except AssertionError:
            failures += 1
            label = " ".join(str(getattr(a, "name", a)) for a in args)  # a registry case: its name
            print(f"FAILED {fn.__name__} {label}", file=sys.stderr)
            traceback.print_exc(limit=traceback_limit, file=sys.stderr)
    print(f"{len(jobs) - failures} passed, {failures} failed")
    return 1 if failures else 0
